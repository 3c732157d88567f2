// swap-disk (Pantavisor's disk_swap.c and disk_zram.c): provision "file" (a swap file at
// `path`, size from provision_options "size=64M"), "zram", or anything else for a block
// device at `path`; mkswap with format_options, swapon with mount_options. Swap comes up
// before the other disks. Unlike Pantavisor, which recreates a swap file at every boot,
// pvdisk creates it once (beside it, then renamed into place) and never recreates or
// reformats a file or device that holds anything but swap.
import { chmodSync, readFileSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import type { DiskEntry } from '../config/check-device.js'
import { PvdiskError } from '../errors.js'
import { fsyncPath } from '../host/atomic-write.js'
import { mkdirNoFollow } from '../host/no-follow.js'
import { hostPath, type Backend, type DiskContext, type DiskStatus } from './context.js'
import { parseSize } from '../config/dd-size.js'
import { probe, provisionOptionsOf, str, refuseForeign, zramDevice, zramRecord, zramReset } from './provision-utils.js'

/** what the kernel swaps to now (/proc/swaps, its octal escapes undone), with sizes in bytes */
export const activeSwaps = (): { path: string, size: number, used: number }[] => {
  try {
    return readFileSync('/proc/swaps', 'utf8').split('\n').slice(1).filter(Boolean).map(l => {
      const [path = '', , size = '0', used = '0'] = l.split(/\s+/)
      return { path: path.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))), size: Number(size) * 1024, used: Number(used) * 1024 }
    })
  } catch {
    return []
  }
}

/** a swap file made once: written beside it, mkswap, then renamed into place */
const createSwapFile = async (ctx: DiskContext, disk: DiskEntry, file: string, extra: string[]): Promise<void> => {
  const sizeOpt = provisionOptionsOf(disk.fields.provision_options).find(([k]) => k === 'size')?.[1]
  const bytes = sizeOpt === undefined ? undefined : parseSize(sizeOpt)
  if (bytes === undefined) throw new PvdiskError('EINVALID', `disk "${disk.name}": a swap file needs its size: provision_options "size=64M" (${sizeOpt === undefined ? 'none given' : `"${sizeOpt}" is not a size`})`, ['write e.g. "provision_options": "size=256M"'])
  const tmp = `${file}.pvdisk-new`
  ctx.runner.note(`create ${file} (${bytes} bytes of zeros, mode 0600) beside it, as ${tmp}`)
  if (!ctx.runner.planning) {
    mkdirNoFollow(ctx.root, dirname(file))
    rmSync(tmp, { force: true }) // left by an interrupted run
  }
  await ctx.runner.run({ argv: ['dd', 'if=/dev/zero', `of=${tmp}`, 'bs=1M', `count=${bytes}`, 'iflag=count_bytes', 'conv=fsync', 'status=none'], timeoutMs: 3_600_000 })
  if (!ctx.runner.planning) chmodSync(tmp, 0o600)
  await ctx.runner.run({ argv: ['mkswap', ...extra, '--', tmp] })
  ctx.runner.note(`rename ${tmp} to ${file}`)
  if (!ctx.runner.planning) {
    renameSync(tmp, file)
    fsyncPath(dirname(file))
  }
}


/** an existing swap file or device: used as it is when it holds swap, made swap when it holds nothing (a device only) */
const prepareExisting = async (ctx: DiskContext, disk: DiskEntry, p: string, kind: 'file' | 'block', extra: string[]): Promise<boolean> => {
  const st = statSync(p, { throwIfNoEntry: false })
  if (!ctx.runner.planning && (kind === 'file' ? !st?.isFile() : !st?.isBlockDevice())) {
    throw new PvdiskError('EDISK', `disk "${disk.name}": ${p} is not a ${kind === 'file' ? 'regular file' : 'block device'}`, ['check "path"'])
  }
  const found = await probe(ctx, p)
  refuseForeign(disk.name, p, found, ['swap'])
  if (found.type !== undefined) return false
  if (kind === 'file') {
    throw new PvdiskError('EDISK', `disk "${disk.name}": ${p} exists but holds no swap signature; pvdisk never overwrites a file that may hold data`, ['remove it if it can go (pvdisk then creates the swap file), or point "path" elsewhere'])
  }
  await ctx.runner.run({ argv: ['mkswap', ...extra, '--', p] })
  return true
}

export const swapBackend = (ctx: DiskContext, disk: DiskEntry): Backend => {
  const kind = disk.fields.provision === 'file' ? 'file' : disk.fields.provision === 'zram' ? 'zram' : 'block'
  const pathNow = (): string | undefined => {
    if (kind !== 'zram') return hostPath(ctx, str(disk.fields.path) ?? '')
    const n = zramRecord(ctx)[disk.name]
    return n === undefined ? undefined : `/dev/zram${n}`
  }
  const activeOf = (p: string | undefined) => {
    if (p === undefined) return undefined
    try {
      const real = realpathSync(p)
      return activeSwaps().find(a => a.path === real)
    } catch {
      return undefined
    }
  }
  const isOn = (p: string | undefined): boolean => activeOf(p) !== undefined
  const status = (): DiskStatus => {
    const p = pathNow()
    const base = { name: disk.name, type: disk.type, mountPoint: '(swap)', backing: p ?? 'zram', problems: [] as string[] }
    const on = activeOf(p)
    if (on) return { ...base, state: 'mounted', size: on.size, used: on.used, free: on.size - on.used }
    return { ...base, state: p !== undefined && statSync(p, { throwIfNoEntry: false }) ? 'provisioned' : 'absent' }
  }
  const extra = (): string[] => (str(disk.fields.format_options) ?? '').split(/\s+/).filter(Boolean)

  return {
    tools: () => ['swapon', 'swapoff', 'mkswap', 'blkid', ...(kind === 'file' ? ['dd'] : [])],
    mountSpec: () => ({ source: pathNow() ?? '', target: '', fsType: 'swap', options: [] }),
    status,
    up: async () => {
      if (isOn(pathNow())) return 'already on'
      let p: string
      let made = false
      if (kind === 'zram') {
        const z = zramDevice(ctx, disk.name, disk.fields.provision_options)
        p = z.device
        if (z.fresh) {
          await ctx.runner.run({ argv: ['mkswap', ...extra(), '--', p] })
          made = true
        }
      } else {
        p = hostPath(ctx, str(disk.fields.path) ?? '')
        if (kind === 'file' && !statSync(p, { throwIfNoEntry: false })) {
          await createSwapFile(ctx, disk, p, extra())
          made = true
        } else made = await prepareExisting(ctx, disk, p, kind, extra())
      }
      const opts = (str(disk.fields.mount_options) ?? '').split(/\s+/).filter(Boolean)
      await ctx.runner.run({ argv: ['swapon', ...opts, '--', p] })
      return `${made ? 'made and ' : ''}swapping on ${p}`
    },
    down: async () => {
      const p = pathNow()
      const on = isOn(p)
      if (on && p !== undefined) await ctx.runner.run({ argv: ['swapoff', '--', p] })
      if (kind === 'zram') zramReset(ctx, disk.name)
      return on ? `swapped off ${p}` : 'not on'
    },
  }
}
