// A disk session for the CLI: device.json validated, a context for real runs or plans.
import { resolve } from 'node:path'
import { InvalidInputError } from '../config/problems.js'
import { requireStateDevice } from '../config/state.js'
import { ProcessRunner, RecordingRunner } from '../host/run.js'
import { liveKernel, type DiskContext } from '../disks/context.js'
import { guardStateVersion } from '../disks/version-counter.js'
import { diskRecover, disksDown, disksStatus, disksUp, selectDisks } from '../disks/engine.js'
import type { DiskEntry } from '../config/check-device.js'
import { verityStatuses } from '../disks/verity.js'

export const diskSession = async (opts: { state: string, root: string }, planning: boolean) => {
  const { device, disks } = await requireStateDevice(opts.state)
  const errors = device.problems.list.filter(p => p.severity === 'error')
  if (errors.length > 0) throw new InvalidInputError(`${device.file}: ${errors.length} error${errors.length === 1 ? '' : 's'}; nothing done`, device.problems.list)
  const recorder = planning ? new RecordingRunner({ planning: true }) : undefined
  const messages: string[] = []
  const ctx: DiskContext = {
    root: resolve(opts.root),
    runner: recorder ?? new ProcessRunner(),
    kernel: liveKernel,
    // for machines without CAAM/DCP (tests, emulators): a software cipher in place of the hardware one
    ...(process.env.PVDISK_CIPHER_OVERRIDE ? { cipherOverride: process.env.PVDISK_CIPHER_OVERRIDE } : {}),
    log: m => {
      messages.push(m)
      if (!planning && process.stderr.isTTY) process.stderr.write(`${m}\n`)
    },
  }
  return {
    ctx,
    disks,
    messages,
    select: (names: readonly string[]) => selectDisks(disks, names),
    up: async (d: DiskEntry[]) => {
      await guardStateVersion(ctx, opts.state)
      return disksUp(ctx, d)
    },
    down: (d: DiskEntry[]) => disksDown(ctx, d),
    status: (d: DiskEntry[]) => disksStatus(ctx, d),
    verity: () => verityStatuses(ctx),
    recover: (d: DiskEntry, key: Buffer) => diskRecover(ctx, d, key),
    plan: () => recorder?.lines ?? [],
  }
}
