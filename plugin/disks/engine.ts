// Layer disks/ (above config/): the disk engine. One backend per disk type (bind, crypt
// with a scheme per type and mode), key files, ext4 probing and one lock per disk. It
// brings disks up and down and reports their state from the kernel; it knows nothing of
// volumes or containers.
//
// Disks of a device.json brought up, taken down, and reported, one lock per disk.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { resolveDisk, type DiskEntry, type DiskIndex } from '../config/check-device.js'
import { PvdiskError } from '../errors.js'
import { acquireLock } from './lock.js'
import { mkdirNoFollow } from '../host/no-follow.js'
import { requireTools } from '../host/run.js'
import { didYouMean } from '../config/suggest.js'
import { bindBackend } from './bind.js'
import { lockDirOf, type Backend, type DiskContext, type DiskStatus } from './context.js'
import { cryptBackend } from './crypt.js'
import { fscryptBackend } from './fscrypt.js'
import { recordExpected } from './expected.js'
import { provisionedVolumeBackend } from './provisioned-volume.js'
import { swapBackend } from './swap.js'
import { dualBackend } from './dual.js'

const isBindDisk = (disk: DiskEntry): boolean =>
  disk.type === 'directory' || (disk.type === 'volume-disk' && !('provision' in disk.fields))

const isSwap = (disk: DiskEntry): boolean => disk.type === 'swap-disk'

/** every type Pantavisor knows, and pvdisk's own (a dual disk whose sub-disks resolve) */
export const isProvisionedByPvdisk = (disk: DiskEntry): boolean =>
  disk.crypt !== undefined || disk.vault !== undefined || isSwap(disk) || disk.type === 'volume-disk' || isBindDisk(disk) || (disk.type === 'dual' && disk.subDisks !== undefined)

export const backendFor = (ctx: DiskContext, disk: DiskEntry): Backend | undefined => {
  if (disk.crypt) return cryptBackend(ctx, disk, disk.crypt)
  if (disk.vault !== undefined) return fscryptBackend(ctx, disk)
  if (isSwap(disk)) return swapBackend(ctx, disk)
  if (disk.type === 'dual') return disk.subDisks ? dualBackend(ctx, disk, d => backendFor(ctx, d)) : undefined
  if (disk.type === 'volume-disk' && !isBindDisk(disk)) return provisionedVolumeBackend(ctx, disk)
  return isBindDisk(disk) ? bindBackend(ctx, disk) : undefined
}

/** swap comes up before the other disks and goes down after them, as in Pantavisor */
const swapFirst = (disks: DiskEntry[], op: 'up' | 'down' | { recover: Buffer }): DiskEntry[] =>
  op === 'down' ? [...disks.filter(d => !isSwap(d)), ...disks.filter(isSwap)] : [...disks.filter(isSwap), ...disks.filter(d => !isSwap(d))]

/** NAME arguments (names or aliases), or every disk pvdisk provisions */
export const selectDisks = (index: DiskIndex, names: readonly string[]): DiskEntry[] => {
  if (names.length === 0) return [...index.disks.values()].filter(isProvisionedByPvdisk)
  return names.map(n => {
    const disk = resolveDisk(index, n)
    if (!disk) {
      // "disk status mystate": a state where a disk name goes
      const aState = n.includes('/') || existsSync(join(n, 'device.json'))
      throw new PvdiskError('EUSAGE', `no disk named "${n}" in device.json`,
        [aState ? `to name the state directory, write --state ${n}` : didYouMean(n, [...index.disks.keys(), ...index.aliases.keys()]) ?? `disks: ${[...index.disks.keys()].join(', ') || 'none'}`])
    }
    return disk
  })
}

const backendsOf = (ctx: DiskContext, disks: DiskEntry[]): [DiskEntry, Backend][] => disks.map(d => {
  const b = backendFor(ctx, d)
  if (!b) throw new PvdiskError('EUSAGE', `disk "${d.name}" (${d.type}) is not provisioned by pvdisk`, ['Pantavisor provisions it on the device'])
  return [d, b]
})

const requireRoot = (ctx: DiskContext): void => {
  if (!ctx.runner.planning && process.getuid?.() !== 0) {
    throw new PvdiskError('ENOTROOT', 'disk operations need root (mount, loop devices, device-mapper)', ['run pvdisk as root, or use pvdisk plan to see what it would do'])
  }
}

export interface DiskOutcome {
  name: string
  result: string
}

const each = async (ctx: DiskContext, disks: DiskEntry[], op: 'up' | 'down' | { recover: Buffer }): Promise<DiskOutcome[]> => {
  const pairs = backendsOf(ctx, swapFirst(disks, op))
  requireRoot(ctx)
  if (!ctx.runner.planning) requireTools([...new Set(pairs.flatMap(([, b]) => b.tools()))])
  const out: DiskOutcome[] = []
  for (const [disk, backend] of pairs) {
    if (!ctx.runner.planning) mkdirNoFollow(ctx.root, lockDirOf(ctx), 0o700)
    const lock = ctx.runner.planning ? undefined : await acquireLock(lockDirOf(ctx), disk.name)
    try {
      const result = typeof op === 'string' ? await backend[op]() : await recoverWith(disk, backend, op.recover)
      recordExpected(ctx, disk.name, op !== 'down')
      out.push({ name: disk.name, result })
    } finally {
      lock?.release()
    }
  }
  return out
}

const recoverWith = (disk: DiskEntry, backend: Backend, key: Buffer): Promise<string> => {
  if (!backend.recover) throw new PvdiskError('EUSAGE', `disk "${disk.name}" (${disk.type}) has no recovery key`, ['disk recover is for dm-crypt-luks2 disks and fscrypt vaults'])
  return backend.recover(key)
}

/** unlocks one disk with its recovery key, binds its pins again and mounts it */
export const diskRecover = async (ctx: DiskContext, disk: DiskEntry, recoveryKey: Buffer): Promise<string> =>
  (await each(ctx, [disk], { recover: recoveryKey }))[0]?.result ?? ''

export const disksUp = (ctx: DiskContext, disks: DiskEntry[]) => each(ctx, disks, 'up')
export const disksDown = (ctx: DiskContext, disks: DiskEntry[]) => each(ctx, [...disks].reverse(), 'down')
export const disksStatus = (ctx: DiskContext, disks: DiskEntry[]): DiskStatus[] => backendsOf(ctx, disks).map(([, b]) => b.status())
