// ovl: volumes on Docker: a real overlay, mounted on the host just before the container
// starts at <root>/run/pvdisk/ovl/<app>/<volume> and bind-mounted into the container. The
// lower layer is the image's own content at that path (its overlay2 layer directories,
// top first); the volume's upper and work directories take the container's changes.
import { lstatSync } from 'node:fs'
import { join } from 'node:path'
import { hostPath, type DiskContext } from '../../disks/context.js'
import { mountAt } from '../../host/kernel.js'
import { mkdirNoFollow } from '../../host/no-follow.js'
import { overlayLayersOf, volumeSource, type AppVolume } from '../../volumes/volumes.js'

export const ovlDirOf = (ctx: DiskContext, app: string): string => hostPath(ctx, `/run/pvdisk/ovl/${app}`)

/** where the overlay of an ovl: volume is mounted, made now: Docker checks a bind source when it creates the container */
export const overlayTargetOf = (ctx: DiskContext, app: string, v: AppVolume): string => {
  const target = join(ovlDirOf(ctx, app), v.name)
  mkdirNoFollow(ctx.root, target)
  return target
}

export const isDockerOverlay = (v: AppVolume): boolean => v.overlay && v.containerPath !== undefined && !(v.persistence === 'boot' && !v.disk)

/** (re)mounts the app's ovl: overlays; the container is about to start, so nothing uses them */
export const mountOverlays = async (ctx: DiskContext, app: string, layers: () => Promise<string[]>, volumes: AppVolume[], revision: string): Promise<void> => {
  const ovl = volumes.filter(isDockerOverlay)
  if (ovl.length === 0) return
  const dirs = await layers()
  for (const v of ovl) {
    const src = volumeSource(ctx, v, revision)
    if (src.kind !== 'dir') continue
    const { upper, work } = overlayLayersOf(ctx, src.path)
    const target = join(ovlDirOf(ctx, app), v.name)
    if (mountAt(ctx.kernel.mounts(), target)) await ctx.runner.run({ argv: ['umount', '--', target] })
    overlayTargetOf(ctx, app, v)
    const lowers = dirs.map(d => join(d, v.containerPath ?? '')).filter(d => lstatSync(d, { throwIfNoEntry: false })?.isDirectory() && !/[,:\\\s]/.test(d))
    // an image without that directory has nothing to show there: the changes alone
    await ctx.runner.run({ argv: lowers.length === 0 ? ['mount', '--bind', '--', upper, target]
      : ['mount', '-t', 'overlay', '-o', `lowerdir=${lowers.join(':')},upperdir=${upper},workdir=${work}`, '--', 'overlay', target] })
  }
}

/** after the containers are gone: the overlays of these apps go too */
export const unmountOverlays = async (ctx: DiskContext, apps: string[]): Promise<void> => {
  const mounts = ctx.kernel.mounts()
  for (const app of apps) {
    const dir = ovlDirOf(ctx, app)
    for (const m of mounts.filter(x => x.mountPoint.startsWith(`${dir}/`)).reverse()) await ctx.runner.run({ argv: ['umount', '--', m.mountPoint] })
  }
}
