// Anti-rollback: the highest state version this device has applied, in a monotonic counter:
// a TPM 2.0 NV counter (PVDISK_COUNTER=tpm:0x01500020; it can only count up) or, by default,
// <root>/var/lib/pvdisk/applied-version.json written atomically with fsync. A lower version
// is refused before any change. The counter is raised after every check has passed and
// before the first change, so it never lags a state the device began to apply (no older
// state slips in after a crash) and is never ahead of a state that failed its checks; a
// rerun of the same version converges (equal versions re-apply). A valid state that cannot
// be applied on this device is the one case --allow-downgrade exists for.
import { existsSync, readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { stateVersion } from '../config/pvs/version.js'
import { PvdiskError } from '../errors.js'
import { writeFileAtomic } from '../host/atomic-write.js'
import { mkdirNoFollow } from '../host/no-follow.js'
import { hostPath, type DiskContext } from './context.js'

const MAX_STEPS = 10_000

type Counter = { kind: 'file', file: string } | { kind: 'tpm', index: string }

export const counterOf = (ctx: DiskContext, spec = process.env.PVDISK_COUNTER ?? 'file'): Counter => {
  if (spec === 'file' || spec === '') return { kind: 'file', file: hostPath(ctx, '/var/lib/pvdisk/applied-version.json') }
  const m = /^tpm:(0x01[0-9a-fA-F]{6})$/.exec(spec)
  if (!m) throw new PvdiskError('EUSAGE', `PVDISK_COUNTER=${spec} is not "file" or "tpm:0x01XXXXXX" (an NV index in the owner range)`)
  return { kind: 'tpm', index: m[1]!.toLowerCase() }
}

const readTpm = async (ctx: DiskContext, index: string): Promise<number | undefined> => {
  const r = await ctx.runner.run({ argv: ['tpm2_nvread', index, '-C', 'o'], binaryOutput: true, okCodes: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10] })
  if (r.code !== 0 || !r.output || r.output.length !== 8) return undefined // not defined, or never incremented
  return Number(r.output.readBigUInt64BE(0))
}

export const readCounter = async (ctx: DiskContext, c: Counter): Promise<number | undefined> => {
  if (c.kind === 'tpm') return readTpm(ctx, c.index)
  if (!existsSync(c.file)) return undefined
  const v = (JSON.parse(readFileSync(c.file, 'utf8')) as { version?: unknown }).version
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new PvdiskError('EDISK', `${c.file} does not hold an applied version`, ['restore it; pvdisk does not guess the version it protects'])
  return v
}

const raise = async (ctx: DiskContext, c: Counter, from: number | undefined, to: number): Promise<void> => {
  ctx.runner.note(`raise the applied state version${from === undefined ? '' : ` from ${from}`} to ${to}`)
  if (c.kind === 'file') {
    if (ctx.runner.planning) return
    mkdirNoFollow(ctx.root, dirname(c.file), 0o755)
    await writeFileAtomic(c.file, `${JSON.stringify({ version: to })}\n`, 0o644)
    return
  }
  if (from === undefined) {
    await ctx.runner.run({ argv: ['tpm2_nvdefine', c.index, '-C', 'o', '-s', '8', '-a', 'ownerread|ownerwrite|nt=counter'], okCodes: [0, 1] })
  }
  let now = from
  for (let steps = 0; now === undefined || now < to; steps++) {
    if (steps > MAX_STEPS) throw new PvdiskError('EDISK', `the TPM counter ${c.index} would need more than ${MAX_STEPS} increments to reach version ${to}`, ['raise versions in small steps (one per release)'])
    await ctx.runner.run({ argv: ['tpm2_nvincrement', c.index, '-C', 'o'] })
    if (ctx.runner.planning) return
    now = await readTpm(ctx, c.index)
    if (now === undefined) throw new PvdiskError('EDISK', `the TPM counter ${c.index} cannot be read after an increment`)
    if (from === undefined && steps === 0 && now > to) {
      throw new PvdiskError('EDISK', `the TPM counter ${c.index} starts at ${now} (a TPM counter starts at the highest any counter reached), above version ${to}`, ['use versions above that, or another counter'])
    }
  }
}

/**
 * refuses a state older than the one applied (exit 2, both versions named), else raises the
 * counter to its version; allowDowngrade (root only) lets an older one through, logged
 */
export const guardVersion = async (ctx: DiskContext, version: number, allowDowngrade = process.env.PVDISK_ALLOW_DOWNGRADE === '1'): Promise<void> => {
  const c = counterOf(ctx)
  const applied = await readCounter(ctx, c)
  if (applied !== undefined && version < applied) {
    if (!allowDowngrade) {
      throw new PvdiskError('EUSAGE', `state version ${version} is older than version ${applied}, already applied: refused as a downgrade`,
        ['apply a state of version ' + applied + ' or later; to go back on purpose, run as root with --allow-downgrade (it is logged)'])
    }
    if (process.getuid?.() !== 0) throw new PvdiskError('ENOTROOT', '--allow-downgrade needs root')
    ctx.log(`warning: downgrade from state version ${applied} to ${version} allowed by --allow-downgrade (the counter stays at ${applied})`)
    return
  }
  if (version > (applied ?? 0)) await raise(ctx, c, applied, version)
}

/** the state's own version (pvdisk.json) guarded: for every command that applies a state */
export const guardStateVersion = async (ctx: DiskContext, stateDir: string): Promise<void> => {
  const v = stateVersion(stateDir)
  if ('error' in v) throw new PvdiskError('EUSAGE', v.error, ['write {"#spec": "pvdisk-state@1", "version": N}'])
  await guardVersion(ctx, v.version)
}
