// Layer volumes/ (above disks/): where each app volume lives on its disk, per persistence
// type and revision, created without following links, and the disks volumes need brought
// up. Every runtime above resolves and prepares volumes through this layer only.
//
// Where each app volume lives (PRODUCT.md "Volume layout"), created without ever following
// a symbolic link that an app could have planted:
//   with a disk mounted at M:  M/perm/<app>/<vol>, M/rev/<rev>/<app>/<vol>, M/boot/<app>/<vol>
//   without a disk:            <root>/storage/disks/perm/<app>/<vol>, .../rev/<rev>/<app>/<vol>,
//                              and boot is a fresh tmpfs
import { lstatSync, mkdirSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { resolveDisk, type DiskEntry, type DiskIndex } from '../config/check-device.js'
import { hostPath, mountPointOf, type DiskContext } from '../disks/context.js'
import { PvdiskError } from '../errors.js'
import { mkdirNoFollow } from '../host/no-follow.js'
import type { PersistenceType } from '../config/persistence.js'
import { nameError } from '../config/path-rules.js'
import type { AppState } from '../config/state.js'

export interface AppVolume {
  app: string
  /** the run.json storage name, e.g. docker--data */
  name: string
  /** the path inside the container; undefined for lxc-overlay */
  containerPath?: string
  /** "ovl:": a writable layer over the image content */
  overlay: boolean
  persistence: PersistenceType
  /** the disk it lives on (aliases resolved, the default disk when none is named) */
  disk?: DiskEntry
}

export type VolumeSource = { kind: 'dir', path: string } | { kind: 'tmpfs' }

/** --revision, else PVDISK_REVISION, else "0" */
export const currentRevision = (given?: string, env: NodeJS.ProcessEnv = process.env): string => {
  const rev = given ?? env.PVDISK_REVISION ?? '0'
  const bad = nameError(rev, 'revision')
  if (bad) throw new PvdiskError('EUSAGE', `revision ${JSON.stringify(rev)}: ${bad.message}`, ['use a plain revision name such as 3 or locals'])
  return rev
}

/** the disk of volumes that name none: the one marked "default": "yes" */
export const defaultDisk = (disks: DiskIndex): DiskEntry | undefined => [...disks.disks.values()].find(d => d.fields.default === 'yes')

/** a volume recorded by app and name (the plugin's): its disk resolved, and absent when no longer declared */
export const recordedVolume = (disks: DiskIndex, r: { app: string, name: string, persistence: PersistenceType, disk?: string }): AppVolume => {
  const out: AppVolume = { app: r.app, name: r.name, overlay: false, persistence: r.persistence }
  const disk = r.disk !== undefined ? resolveDisk(disks, r.disk) : undefined
  if (disk) out.disk = disk
  return out
}

/** the volumes of a validated app (src.json planned storage) */
export const appVolumes = (app: AppState, disks: DiskIndex): AppVolume[] => {
  if (!app.storage || !app.keys) return []
  return Object.entries(app.storage).map(([name, v]) => {
    const key = app.keys?.get(name)
    const disk = v.disk !== undefined ? resolveDisk(disks, v.disk) : defaultDisk(disks)
    if (v.disk !== undefined && !disk) throw new PvdiskError('EINVALID', `app "${app.name}": volume ${name} names unknown disk "${v.disk}"`)
    const out: AppVolume = { app: app.name, name, overlay: key?.overlay ?? false, persistence: v.persistence }
    if (key && key.path !== 'lxc-overlay') out.containerPath = key.path
    if (disk) out.disk = disk
    return out
  })
}

/** the directory (or tmpfs) a volume resolves to; nothing is created */
export const volumeSource = (ctx: DiskContext, v: AppVolume, revision: string): VolumeSource => {
  const base = v.disk ? mountPointOf(ctx, v.disk) : hostPath(ctx, '/storage/disks')
  switch (v.persistence) {
    case 'permanent': return { kind: 'dir', path: join(base, 'perm', v.app, v.name) }
    case 'revision': return { kind: 'dir', path: join(base, 'rev', revision, v.app, v.name) }
    case 'boot': return v.disk ? { kind: 'dir', path: join(base, 'boot', v.app, v.name) } : { kind: 'tmpfs' }
  }
}

/** mkdir -p below base, refusing any component that is a symbolic link or not a directory */
export const mkdirBelow = (base: string, relative: string[]): string => {
  let cur = base
  const st = lstatSync(base, { throwIfNoEntry: false })
  if (!st?.isDirectory()) throw new PvdiskError('EDISK', `${base} is not a directory`, ['is the disk up?'])
  for (const part of relative) {
    cur = join(cur, part)
    const s = lstatSync(cur, { throwIfNoEntry: false })
    if (!s) {
      mkdirSync(cur, { mode: 0o755 })
      continue
    }
    if (s.isSymbolicLink()) throw new PvdiskError('EDISK', `${cur} is a symbolic link; refusing to follow it`, ['a volume path may not be redirected; remove the link'])
    if (!s.isDirectory()) throw new PvdiskError('EDISK', `${cur} is not a directory`, ['remove or rename it'])
  }
  return cur
}

/** creates the volume's directory (its disk must be up) and returns where it is */
export const prepareVolume = (ctx: DiskContext, v: AppVolume, revision: string): VolumeSource => {
  const src = volumeSource(ctx, v, revision)
  if (src.kind === 'tmpfs') return src
  const base = v.disk ? mountPointOf(ctx, v.disk) : hostPath(ctx, '/storage/disks')
  if (ctx.runner.planning) {
    ctx.runner.note(`mkdir -p ${src.path}`)
    return src
  }
  if (!v.disk) mkdirNoFollow(ctx.root, base)
  mkdirBelow(base, src.path.slice(base.length + 1).split('/'))
  return src
}

/**
 * A container starts: its boot volume starts empty, as Pantavisor removes and recreates a
 * boot volume's directory every time its container starts (a boot volume without a disk is
 * a fresh tmpfs anyway). Parents are checked component by component; inside, links are
 * removed, never followed. Call it only when the container really starts, not when it is
 * already running.
 */
export const emptyBootVolume = (ctx: DiskContext, v: AppVolume, revision: string): void => {
  const src = volumeSource(ctx, v, revision)
  if (v.persistence !== 'boot' || !v.disk || src.kind !== 'dir') return
  ctx.runner.note(`empty ${src.path}`)
  if (ctx.runner.planning) return
  const base = mountPointOf(ctx, v.disk)
  const rel = src.path.slice(base.length + 1).split('/')
  mkdirBelow(base, rel.slice(0, -1))
  const st = lstatSync(src.path, { throwIfNoEntry: false })
  if (st && !st.isDirectory()) throw new PvdiskError('EDISK', `${src.path} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}; refusing to follow it`, ['remove it'])
  // already what a fresh one would be (empty, 0755, ours): nothing to remove; a plugin Mount often finds this
  if (st && (st.mode & 0o7777) === 0o755 && st.uid === process.getuid?.() && st.gid === process.getgid?.() && readdirSync(src.path).length === 0) return
  rmSync(src.path, { recursive: true, force: true }) // rmSync removes links themselves, never what they point to
  mkdirSync(src.path, { mode: 0o755 })
}

/**
 * An ovl: volume is the writable layer over the image's own content at its path, as pvr's
 * template lays it out: the changes in <volume>/upper, overlayfs's scratch in <volume>/work.
 * Both are made without following links; paths that overlayfs options cannot carry are refused.
 */
export const overlayLayersOf = (ctx: DiskContext, dir: string): { upper: string, work: string } => {
  if (/[,:\\\s]/.test(dir)) throw new PvdiskError('EDISK', `${dir}: an overlay's upper directory cannot contain a comma, colon, backslash or space`, ['use a disk and app whose paths have none'])
  const upper = join(dir, 'upper')
  const work = join(dir, 'work')
  ctx.runner.note(`mkdir -p ${upper} ${work}`)
  if (!ctx.runner.planning) {
    mkdirBelow(dir, ['upper'])
    mkdirBelow(dir, ['work'])
  }
  return { upper, work }
}
