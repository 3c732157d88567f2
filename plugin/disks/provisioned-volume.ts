// volume-disk with provision (Pantavisor's disk_volume.c and disk_zram.c): a block device
// at `path` (or a zram device, with provision "zram"), formatted ext3/ext4 with
// format_options and mounted at mount_target with mount_options. Unlike Pantavisor, which
// runs mkfs at every mount and so loses the data each boot, pvdisk formats only a device
// that shows no signature at all, and refuses one that holds anything else.
import { statSync } from 'node:fs'
import type { DiskEntry } from '../config/check-device.js'
import { PvdiskError } from '../errors.js'
import { isMountOf, mountAt } from '../host/kernel.js'
import { mkdirNoFollow, refuseLinksBelow } from '../host/no-follow.js'
import { fsUsage, hostPath, mountPointOf, type Backend, type DiskContext, type DiskStatus } from './context.js'
import { mountOptionsOf, probe, refuseForeign, str, zramDevice, zramRecord, zramReset } from './provision-utils.js'

/** the filesystem types a declared format mounts: ext4's driver mounts ext2 and ext3 too */
const accepted = (format: string): string[] => (format === 'ext4' ? ['ext4', 'ext3', 'ext2'] : [format, 'ext2'])

export const provisionedVolumeBackend = (ctx: DiskContext, disk: DiskEntry): Backend => {
  const zram = disk.fields.provision === 'zram'
  const format = str(disk.fields.format) ?? 'ext4'
  const target = mountPointOf(ctx, disk)
  const options = () => mountOptionsOf(disk.fields.mount_options, ctx.log)
  const deviceNow = (): string | undefined => {
    if (!zram) return hostPath(ctx, str(disk.fields.path) ?? '')
    const n = zramRecord(ctx)[disk.name]
    return n === undefined ? undefined : `/dev/zram${n}`
  }
  const rdevOf = (device: string | undefined) => {
    const st = device === undefined ? undefined : statSync(device, { throwIfNoEntry: false })
    return st?.isBlockDevice() ? { major: Math.floor(st.rdev / 256) & 0xfff, minor: (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00) } : undefined
  }
  const status = (): DiskStatus => {
    const device = deviceNow()
    const base = { name: disk.name, type: disk.type, mountPoint: target, backing: device ?? 'zram', problems: [] as string[] }
    const at = mountAt(ctx.kernel.mounts(), target)
    const dev = rdevOf(device)
    if (at && dev && isMountOf(at, dev)) return { ...base, state: 'mounted', ...fsUsage(target) }
    if (at) return { ...base, state: dev ? 'provisioned' : 'absent', problems: [`${target} is mounted from something else (${at.source})`] }
    return { ...base, state: dev ? 'provisioned' : 'absent' }
  }
  return {
    tools: () => ['mount', 'umount', 'blkid', `mkfs.${format}`],
    mountSpec: () => ({ source: deviceNow() ?? '', target, fsType: format, options: options() }),
    status,
    up: async () => {
      const s = status()
      if (s.state === 'mounted') return 'already mounted'
      if (s.problems.length > 0) throw new PvdiskError('EDISK', `disk "${disk.name}": ${s.problems.join('; ')}`, [`unmount ${target} first`])
      const device = zram ? zramDevice(ctx, disk.name, disk.fields.provision_options).device : hostPath(ctx, str(disk.fields.path) ?? '')
      if (!ctx.runner.planning && !rdevOf(device)) {
        throw new PvdiskError('EDISK', `disk "${disk.name}": ${device} is not a block device`, ['check "path": a device or partition such as /dev/sdb1 or /dev/disk/by-label/data'])
      }
      const found = await probe(ctx, device)
      refuseForeign(disk.name, device, found, accepted(format))
      if (found.type === undefined) {
        const extra = (str(disk.fields.format_options) ?? '').split(/\s+/).filter(Boolean)
        await ctx.runner.run({ argv: [`mkfs.${format}`, '-q', ...extra, '--', device], timeoutMs: 3_600_000 })
      }
      refuseLinksBelow(ctx.root, target, 'the mount point')
      if (!ctx.runner.planning) mkdirNoFollow(ctx.root, target)
      else ctx.runner.note(`mkdir -p ${target}`)
      const opts = options()
      await ctx.runner.run({ argv: ['mount', '-t', found.type ?? format, ...(opts.length ? ['-o', opts.join(',')] : []), '--', device, target] })
      return found.type === undefined ? `formatted ${device} (${format}) and mounted it at ${target}` : `mounted ${device} at ${target}`
    },
    down: async () => {
      const mounted = mountAt(ctx.kernel.mounts(), target) !== undefined
      if (mounted) {
        if (status().state !== 'mounted') throw new PvdiskError('EDISK', `disk "${disk.name}": ${status().problems.join('; ')}`, ['leaving it alone'])
        await ctx.runner.run({ argv: ['umount', '--', target] })
      }
      if (zram) zramReset(ctx, disk.name) // zram's content goes with it, as in Pantavisor
      return `${mounted ? `unmounted ${target}` : 'not mounted'}${zram ? ', zram reset' : ''}`
    },
  }
}
