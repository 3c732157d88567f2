// Where a plugin volume lives and how it is mounted: a directory of PRODUCT.md's layout
// on its disk (the disk brought up at the first Mount), or, for boot without a disk, a
// tmpfs of its own from the first Mount to the last Unmount.
import { lstatSync } from 'node:fs'
import type { DiskIndex } from '../../config/check-device.js'
import { hostPath, type DiskContext } from '../../disks/context.js'
import { mountAt, type MountEntry } from '../../host/kernel.js'
import { mkdirNoFollow } from '../../host/no-follow.js'
import { backendFor, disksUp } from '../../disks/engine.js'
import { followVolumes, knownPlacements } from '../../volumes/migrate.js'
import { emptyBootVolume, mkdirBelow, prepareVolume, recordedVolume, volumeSource, type AppVolume } from '../../volumes/volumes.js'
import type { DriverVolume } from './driver-state.js'
import { appProblems, checkApp } from '../../config/state.js'
import { InvalidInputError } from '../../config/problems.js'
import type { VerityVolume } from '../../config/verity.js'
import { verityDown, verityMountPoint, verityUp } from '../../disks/verity.js'
import { PvdiskError } from '../../errors.js'

export interface MountEnv {
  ctx: DiskContext
  disks: DiskIndex
  revision: string
  /** the state directory, where verity volumes' manifests are read at each first Mount */
  state?: string
}

export const asAppVolume = (env: MountEnv, v: DriverVolume): AppVolume => recordedVolume(env.disks, v)

export const isTmpfs = (v: DriverVolume): boolean => v.persistence === 'boot' && v.disk === undefined

export const tmpfsDir = (env: MountEnv, v: DriverVolume): string => hostPath(env.ctx, `/run/pvdisk/tmpfs/${v.app}/${v.name}`)

/** what Docker is told: the path while someone has it mounted, else "" */
export const mountpointOf = (env: MountEnv, v: DriverVolume): string => {
  if (v.mountedBy.length === 0) return ''
  if (v.verity !== undefined) return verityMountPoint(env.ctx, v.app, v.verity)
  if (isTmpfs(v)) return tmpfsDir(env, v)
  const src = volumeSource(env.ctx, asAppVolume(env, v), env.revision)
  return src.kind === 'dir' && lstatSync(src.path, { throwIfNoEntry: false })?.isDirectory() ? src.path : ''
}

/** after a reboot or a crash: volumes whose tmpfs or disk is no longer mounted have no users */
export const hasLostItsMount = (env: MountEnv, v: DriverVolume, mounts: MountEntry[]): boolean => v.verity !== undefined
  ? !mountAt(mounts, verityMountPoint(env.ctx, v.app, v.verity))
  : isTmpfs(v) ? !mountAt(mounts, tmpfsDir(env, v)) : v.disk !== undefined && !mountAt(mounts, hostPath(env.ctx, `/media/pv/dmcrypt/${v.disk}`))

/**
 * makes the volume ready and returns its mount point; first: no container has it mounted
 * yet. What it records of where the volume lives is written in the plugin's group commit:
 * writes gets those writes, to be awaited before the reply.
 */
export const mountVolume = async (env: MountEnv, v: DriverVolume, first: boolean, writes: Promise<void>[]): Promise<string> => {
  if (v.verity !== undefined) {
    const vv = await verityOf(env, v.app, v.verity)
    await verityUp(env.ctx, vv) // verified at each first Mount; already mounted for the others
    return verityMountPoint(env.ctx, v.app, v.verity)
  }
  const av = asAppVolume(env, v)
  // the disk is up most of the time: then a look at the mount table is enough, with no lock or tool lookup
  if (av.disk && backendFor(env.ctx, av.disk)?.status().state !== 'mounted') await disksUp(env.ctx, [av.disk])
  // its first user: a volume created again elsewhere (docker volume rm keeps the data) finds its data there
  if (first) await followVolumes(env.ctx, env.disks, [av], env.revision, { ...knownPlacements(env.ctx, [av.app], 'plugin'), writes })
  if (!isTmpfs(v)) {
    const src = prepareVolume(env.ctx, av, env.revision)
    if (first) emptyBootVolume(env.ctx, av, env.revision) // its first user is starting
    return src.kind === 'dir' ? src.path : ''
  }
  const mountpoint = tmpfsDir(env, v)
  if (!mountAt(env.ctx.kernel.mounts(), mountpoint)) {
    const base = hostPath(env.ctx, '/run/pvdisk/tmpfs')
    mkdirNoFollow(env.ctx.root, base)
    mkdirBelow(base, [v.app, v.name])
    await env.ctx.runner.run({ argv: ['mount', '-t', 'tmpfs', '-o', 'mode=0755', '--', 'pvdisk-boot', mountpoint] })
  }
  return mountpoint
}

/** the last user is gone: a boot tmpfs goes with it */
export const releaseVolume = async (env: MountEnv, v: DriverVolume): Promise<void> => {
  if (v.verity !== undefined) {
    await verityDown(env.ctx, await verityOf(env, v.app, v.verity))
    return
  }
  if (isTmpfs(v) && mountAt(env.ctx.kernel.mounts(), tmpfsDir(env, v))) {
    await env.ctx.runner.run({ argv: ['umount', '--', tmpfsDir(env, v)] })
  }
}

/** the app's dm: volume of that name, from the state as it is now; its problems refuse it */
export const verityOf = async (env: MountEnv, app: string, volume: string): Promise<VerityVolume> => {
  if (env.state === undefined) throw new PvdiskError('EUSAGE', 'verity volumes need the plugin to serve a state (pvdisk serve --state DIR)')
  const checked = await checkApp(env.state, app, env.disks)
  const errors = appProblems(checked).filter(p => p.severity === 'error')
  if (errors.length > 0) throw new InvalidInputError(`${env.state}: app "${app}" has ${errors.length} error(s)`, errors)
  const found = checked?.verity?.find(x => x.name === volume)
  if (!found) throw new PvdiskError('EINVALID', `app "${app}" in ${env.state} has no dm: volume "${volume}"`, ['run.json must name it "dm:' + volume + '", with its manifest _dm/' + volume + '.json (pvdisk verity make)'])
  return found
}
