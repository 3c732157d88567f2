// Pantavisor's /volumes step, for LXC (Pantavisor's own runtime): before a container starts,
// every one of its volumes is mounted on the host at <root>/volumes/<app>/<volume> (a bind of
// its directory on its disk, or a fresh tmpfs for boot without a disk); the container then
// bind-mounts them through the lxc.mount.entry lines pvr writes. After it stops they go.
// `pvdisk volumes up|down APP` is what lxc.hook.pre-start and lxc.hook.post-stop run.
import { lstatSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { DiskEntry } from '../../config/check-device.js'
import { isJsonObject, type Json } from '../../config/json-source.js'
import { InvalidInputError } from '../../config/problems.js'
import { nameError } from '../../config/path-rules.js'
import { appProblems, checkApp, requireStateDevice } from '../../config/state.js'
import { liveKernel, type DiskContext } from '../../disks/context.js'
import { disksUp, isProvisionedByPvdisk } from '../../disks/engine.js'
import { guardStateVersion } from '../../disks/version-counter.js'
import { closeUnmountedVerity, verityMountPoint, verityUp } from '../../disks/verity.js'
import { DM_PREFIX } from '../../config/verity.js'
import { PvdiskError } from '../../errors.js'
import { isBindOf, mountAt, type MountEntry } from '../../host/kernel.js'
import { withFstab, type FstabEntry } from '../../host/fstab.js'
import { mkdirNoFollow } from '../../host/no-follow.js'
import { ProcessRunner, type Runner } from '../../host/run.js'
import { followVolumes, knownPlacements, refuseIntoBoot } from '../../volumes/migrate.js'
import { appVolumes, currentRevision, emptyBootVolume, overlayLayersOf, prepareVolume } from '../../volumes/volumes.js'

export interface VolumesOptions {
  state: string
  root: string
  app: string
  revision?: string
  runner?: Runner
}

export interface VolumeMount {
  volume: string
  target: string
  /** the volume's directory, or "tmpfs" */
  source: string
  result: 'mounted' | 'already mounted' | 'unmounted'
}

const contextOf = (root: string, runner: Runner): DiskContext => ({ root: resolve(root), runner, kernel: liveKernel, log: () => undefined })

export const volumesDirOf = (ctx: DiskContext, app: string): string => join(ctx.root, 'volumes', app)

const checkedAppName = (app: string): string => {
  const bad = nameError(app, 'app')
  if (bad) throw new PvdiskError('EUSAGE', `app ${JSON.stringify(app)}: ${bad.message}`, ['give the name of an app directory in the state'])
  return app
}

/** what is mounted at target is this volume: a bind of its directory, or its tmpfs */
const holds = (at: MountEntry, mounts: readonly MountEntry[], source: string): boolean =>
  source === 'tmpfs' ? at.fsType === 'tmpfs' : isBindOf(at, mounts, source)

export const volumesUp = async (opts: VolumesOptions): Promise<VolumeMount[]> => {
  const app = checkedAppName(opts.app)
  const { device, disks } = await requireStateDevice(opts.state)
  const checked = await checkApp(opts.state, app, disks)
  const problems = [...device.problems.list, ...appProblems(checked)]
  const errors = problems.filter(p => p.severity === 'error')
  if (errors.length > 0) throw new InvalidInputError(`${opts.state}: ${errors.length} error(s); nothing mounted for ${app}`, problems)
  if (!checked?.storage) throw new PvdiskError('EINVALID', `app "${app}" is not in ${opts.state} (or has no src.json)`, ['check the app name'])
  const ctx = contextOf(opts.root, opts.runner ?? new ProcessRunner())
  const revision = currentRevision(opts.revision)
  const volumes = appVolumes(checked, disks)
  const needed = new Map<string, DiskEntry>()
  for (const v of volumes) if (v.disk && isProvisionedByPvdisk(v.disk)) needed.set(v.disk.name, v.disk)
  const known = knownPlacements(ctx, [app])
  refuseIntoBoot(ctx, disks, volumes, revision, known) // before any disk comes up
  await guardStateVersion(ctx, opts.state)
  await disksUp(ctx, [...needed.values()])
  await followVolumes(ctx, disks, volumes, revision, known)
  const out: VolumeMount[] = []
  const mounts = ctx.kernel.mounts()
  const entries: FstabEntry[] = imageVolumes(ctx, opts.state, app, checked.run?.raw, mounts, out)
  for (const v of checked.verity ?? []) {
    out.push({ volume: v.name, target: verityMountPoint(ctx, app, v.name), source: v.data, result: await verityUp(ctx, v) })
  }
  for (const v of volumes) {
    const target = join(volumesDirOf(ctx, app), v.name)
    const src = prepareVolume(ctx, v, revision)
    const source = src.kind === 'dir' ? src.path : 'tmpfs'
    const at = mountAt(mounts, target)
    if (at) {
      if (!holds(at, mounts, source)) throw new PvdiskError('EDISK', `${target} is mounted from ${at.source}${at.root}, not from volume ${v.name}`, ['run pvdisk volumes down first; pvdisk leaves what it did not mount alone'])
      out.push({ volume: v.name, target, source, result: 'already mounted' }) // its container may be running: boot is left as it is
      continue
    }
    emptyBootVolume(ctx, v, revision) // the container is about to start
    if (v.overlay && src.kind === 'dir') overlayLayersOf(ctx, src.path) // the upper and work dirs the overlay mount entry names
    mkdirNoFollow(ctx.root, target)
    entries.push(src.kind === 'dir' ? { source, target, fsType: 'none', options: ['bind'] } : { source: 'pvdisk-boot', target, fsType: 'tmpfs', options: ['mode=0755'] })
    out.push({ volume: v.name, target, source, result: 'mounted' })
  }
  // one mount for all of them: this runs at every container start
  if (entries.length > 0) {
    await withFstab(ctx.root, join(ctx.root, 'run/pvdisk/hooks'), `volumes-${app}`, entries, fstab => ctx.runner.run({ argv: ['mount', '--all', '--fstab', fstab] }))
  }
  return out
}

/** Pantavisor's filesystem type for an image: its name's extension (root.squashfs, conf.ext4) */
const fsTypeOf = (name: string): string => (name.includes('.') ? name.slice(name.lastIndexOf('.') + 1) : 'squashfs')

/**
 * The app's read-only images (run.json "root-volume", root.squashfs when it names none, and
 * "volumes"), loop mounted at <root>/volumes/<app>/<image> as Pantavisor does: root.squashfs
 * is the lower layer of the rootfs overlay and of every ovl: volume. dm: (verity) images are
 * verified and mounted by verityUp instead.
 */
const imageVolumes = (ctx: DiskContext, stateDir: string, app: string, run: Json | undefined, mounts: readonly MountEntry[], out: VolumeMount[]): FstabEntry[] => {
  const obj = isJsonObject(run) ? run : {}
  const rootVolume = typeof obj['root-volume'] === 'string' ? obj['root-volume'] : 'root.squashfs'
  const listed = [rootVolume, ...(Array.isArray(obj.volumes) ? obj.volumes.filter((n): n is string => typeof n === 'string') : [])]
  const entries: FstabEntry[] = []
  for (const name of new Set(listed.filter(n => !n.startsWith(DM_PREFIX) && nameError(n, 'volume') === undefined && !['bind', 'data'].includes(fsTypeOf(n))))) {
    const image = join(stateDir, app, name)
    if (!lstatSync(image, { throwIfNoEntry: false })?.isFile()) continue
    const target = join(volumesDirOf(ctx, app), name)
    const at = mountAt(mounts, target)
    if (at) {
      if (at.fsType !== fsTypeOf(name)) throw new PvdiskError('EDISK', `${target} is mounted from ${at.source}, not from the image ${image}`, ['run pvdisk volumes down first'])
      out.push({ volume: name, target, source: image, result: 'already mounted' })
      continue
    }
    mkdirNoFollow(ctx.root, target)
    entries.push({ source: image, target, fsType: fsTypeOf(name), options: ['loop', 'ro'] })
    out.push({ volume: name, target, source: image, result: 'mounted' })
  }
  return entries
}

/** unmounts whatever is mounted under <root>/volumes/<app>/, innermost first; another app's volumes and the disks stay */
export const volumesDown = async (opts: VolumesOptions): Promise<VolumeMount[]> => {
  const app = checkedAppName(opts.app)
  const ctx = contextOf(opts.root, opts.runner ?? new ProcessRunner())
  const dir = volumesDirOf(ctx, app)
  const ours = ctx.kernel.mounts().filter(m => m.mountPoint.startsWith(`${dir}/`)).reverse()
  const out: VolumeMount[] = []
  for (const m of ours) {
    await ctx.runner.run({ argv: ['umount', '--', m.mountPoint] })
    out.push({ volume: m.mountPoint.slice(dir.length + 1), target: m.mountPoint, source: m.fsType === 'tmpfs' ? 'tmpfs' : `${m.source}${m.root}`, result: 'unmounted' })
  }
  await closeUnmountedVerity(ctx, ours) // and the verity mappings behind them, with their loop devices
  return out
}
