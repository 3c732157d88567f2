// `directory` and `volume-disk` without provision: a host directory bind-mounted at the
// disk's mount point.
import { existsSync, lstatSync } from 'node:fs'
import type { DiskEntry } from '../config/check-device.js'
import { PvdiskError } from '../errors.js'
import { isBindOf, mountAt } from '../host/kernel.js'
import { refuseLinksBelow } from '../host/no-follow.js'
import { act, fsUsage, hostPath, mountPointOf, type Backend, type DiskContext, type DiskStatus } from './context.js'

/** directory: its path; volume-disk: <root>/storage/pv/volume-disk/<name>, as Pantavisor */
export const backingDirOf = (ctx: DiskContext, disk: DiskEntry): string =>
  disk.type === 'directory' && typeof disk.fields.path === 'string'
    ? hostPath(ctx, disk.fields.path.replace(/(.)\/$/, '$1'))
    : hostPath(ctx, `/storage/pv/volume-disk/${disk.name}`)

export const bindBackend = (ctx: DiskContext, disk: DiskEntry): Backend => {
  const backing = backingDirOf(ctx, disk)
  const mnt = mountPointOf(ctx, disk)

  const status = (): DiskStatus => {
    const mounts = ctx.kernel.mounts()
    const at = mountAt(mounts, mnt)
    const base = { name: disk.name, type: disk.type, mountPoint: mnt, backing, problems: [] as string[] }
    if (at) {
      if (isBindOf(at, mounts, backing)) return { ...base, state: 'mounted', ...fsUsage(mnt) }
      return { ...base, state: existsSync(backing) ? 'provisioned' : 'absent', problems: [`${mnt} is mounted from something else (${at.source}${at.root})`] }
    }
    return { ...base, state: existsSync(backing) ? 'provisioned' : 'absent' }
  }

  return {
    tools: () => ['mount', 'umount'],
    mountSpec: () => ({ source: backing, target: mnt, fsType: 'none', options: ['bind'] }),
    status,
    up: async () => {
      const s = status()
      if (s.state === 'mounted') return 'already mounted'
      if (s.problems.length > 0) throw new PvdiskError('EDISK', `disk "${disk.name}": ${s.problems.join('; ')}`, [`unmount ${mnt} first`])
      for (const dir of [backing, mnt]) {
        const st = lstatSync(dir, { throwIfNoEntry: false })
        if (st?.isSymbolicLink()) throw new PvdiskError('EDISK', `disk "${disk.name}": ${dir} is a symbolic link; refusing to follow it`, ['replace it with a directory'])
      }
      refuseLinksBelow(ctx.root, mnt, 'the mount point') // and no link above it either: the disk would be mounted elsewhere
      act.mkdirp(ctx, backing)
      act.mkdirp(ctx, mnt)
      await ctx.runner.run({ argv: ['mount', '--bind', '--', backing, mnt] })
      if (!ctx.runner.planning && status().state !== 'mounted') {
        // never leave a mount behind a failed check
        await ctx.runner.run({ argv: ['umount', '--', mnt] }).catch(() => undefined)
        throw new PvdiskError('EDISK', `disk "${disk.name}": mount reported success but ${mnt} is not bound to ${backing}; unmounted again`)
      }
      return `mounted ${backing} at ${mnt}`
    },
    down: async () => {
      const s = status()
      if (!mountAt(ctx.kernel.mounts(), mnt)) {
        if (existsSync(mnt)) act.removeMountPoint(ctx, mnt)
        return 'not mounted'
      }
      if (s.state !== 'mounted') throw new PvdiskError('EDISK', `disk "${disk.name}": ${s.problems.join('; ')}`, ['leaving it alone'])
      await ctx.runner.run({ argv: ['umount', '--', mnt] })
      act.removeMountPoint(ctx, mnt)
      return `unmounted ${mnt}`
    },
  }
}
