// What every disk backend works with: where host paths live (--root), how commands run
// (for real or recorded for a plan), where locks live, and how progress is reported.
import { mkdirSync, renameSync, rmdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { DiskEntry } from '../config/check-device.js'
import { PvdiskError } from '../errors.js'
import { mkdirNoFollow } from '../host/no-follow.js'
import { readDms, readLoops, readMounts, type DmDevice, type LoopDevice, type MountEntry } from '../host/kernel.js'
import type { Runner } from '../host/run.js'

export interface Kernel {
  mounts(): MountEntry[]
  loops(): LoopDevice[]
  dms(): DmDevice[]
}

export const liveKernel: Kernel = { mounts: readMounts, loops: readLoops, dms: readDms }

export interface DiskContext {
  /** every host path is resolved under it */
  root: string
  runner: Runner
  kernel: Kernel
  /** one line per event, for the user */
  log: (message: string) => void
  /** tests stand in a software cipher for CAAM's hardware one */
  cipherOverride?: string
}

/** a validated absolute path from device.json, resolved under --root */
export const hostPath = (ctx: DiskContext, p: string): string => (ctx.root === '/' ? p : join(ctx.root, p))

/** Pantavisor's media dir: every disk mounts at <root>/media/pv/dmcrypt/<name> */
export const mountPointOf = (ctx: DiskContext, disk: DiskEntry): string =>
  // a provisioned volume-disk is mounted at its mount_target, and its volumes live there (Pantavisor looks under the media path, where nothing is mounted)
  disk.type === 'volume-disk' && 'provision' in disk.fields && typeof disk.fields.mount_target === 'string'
    ? hostPath(ctx, disk.fields.mount_target)
    : hostPath(ctx, `/media/pv/dmcrypt/${disk.name}`)

export const lockDirOf = (ctx: DiskContext): string => hostPath(ctx, '/run/pvdisk/locks')

/** pvdisk's own file steps: done for real, or only noted in a plan */
const step = (ctx: DiskContext, what: string, fn: () => void): void => {
  ctx.runner.note(what)
  if (ctx.runner.planning) return
  try {
    fn()
  } catch (e) {
    throw new PvdiskError('EDISK', `cannot ${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, ['check the path and its permissions'])
  }
}

export const act = {
  mkdirp: (ctx: DiskContext, dir: string, mode = 0o755): void => step(ctx, `mkdir -p ${dir}`, () => mkdirNoFollow(ctx.root, dir, mode)),
  /** a tool's own fixed directory outside --root (caam-keygen's /data/caam) */
  mkdirTool: (ctx: DiskContext, dir: string, mode = 0o700, note?: string): void => step(ctx, `mkdir -p ${dir}${note ? ` (${note})` : ''}`, () => mkdirSync(dir, { recursive: true, mode })),
  rename: (ctx: DiskContext, from: string, to: string): void => step(ctx, `rename ${from} to ${to}`, () => renameSync(from, to)),
  touch: (ctx: DiskContext, file: string): void => step(ctx, `create ${file}`, () => writeFileSync(file, '', { mode: 0o644 })),
  /** a key file that no longer opens anything (after re-binding to other pins) */
  remove: (ctx: DiskContext, file: string): void => step(ctx, `remove ${file}`, () => rmSync(file, { force: true })),
  /**
   * after down: Pantavisor takes an existing <media>/pv/dmcrypt/<name> for a mounted disk, so
   * the mount point goes, as its own umount removes it. Only an empty directory is removed:
   * anything written there while the disk was down stays, with a warning.
   */
  removeMountPoint: (ctx: DiskContext, dir: string): void => {
    ctx.runner.note(`rmdir ${dir}`)
    if (ctx.runner.planning) return
    try {
      rmdirSync(dir)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code !== 'ENOENT') ctx.log(`warning: ${dir} is left in place (${code ?? (e as Error).message}): Pantavisor would take it for a mounted disk`)
    }
  },
}

export type DiskState = 'absent' | 'provisioned' | 'open' | 'mounted'

export interface DiskStatus {
  name: string
  type: string
  state: DiskState
  mountPoint: string
  /** what backs it: a directory or an image file */
  backing: string
  /** filesystem figures in bytes, when mounted */
  size?: number
  used?: number
  free?: number
  /** things that are wrong, e.g. mounted from the wrong source */
  problems: string[]
  /** dm-crypt-luks2 and fscrypt: how the key unlocks, and whether a recovery key exists */
  unlock?: string
  recovery?: boolean
  /** key files that should not be there (a plain key left after re-binding to pins) */
  keyProblems?: string[]
}

export const fsUsage = (mountPoint: string): { size: number, used: number, free: number } | undefined => {
  try {
    const s = statfsSync(mountPoint)
    return { size: s.blocks * s.bsize, used: (s.blocks - s.bfree) * s.bsize, free: s.bavail * s.bsize }
  } catch {
    return undefined
  }
}

export interface Backend {
  /** tools that must be installed before anything is created */
  tools(): string[]
  status(): DiskStatus
  /** provision, open and mount; idempotent; returns what it did */
  up(): Promise<string>
  /** unmount and close; idempotent */
  down(): Promise<string>
  /** how this (open) disk is mounted at its mount point, to repeat it in another namespace */
  mountSpec(): MountSpec
  /** dm-crypt-luks2 and fscrypt: unlock with the recovery key, bind the pins again, and mount */
  recover?(recoveryKey: Buffer): Promise<string>
}

export interface MountSpec {
  source: string
  target: string
  fsType: string
  options: string[]
}
