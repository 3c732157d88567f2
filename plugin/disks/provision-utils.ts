// What provisioned disks (Pantavisor's volume-disk with provision, swap-disk) share: a
// low-level probe of what a device or file holds (blkid -p: filesystems, swap, LUKS,
// partition tables), Pantavisor's MS_* mount flags as mount(8) options, dd-style sizes,
// and the zram devices of disk_zram_utils.c (first uninitialised zramN, or hot_add).
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { PvdiskError } from '../errors.js'
import { writeFileAtomicSync } from '../host/atomic-write.js'
import { mkdirNoFollow } from '../host/no-follow.js'
import { hostPath, type DiskContext } from './context.js'

/** a device.json field that must be a string, or undefined */
export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)

export interface Probe {
  /** TYPE: ext4, swap, crypto_LUKS, xfs, ... */
  type?: string
  /** PTTYPE: a partition table */
  pttype?: string
}

/** what blkid's low-level probe finds on a device or file; {} when it holds no signature at all */
export const probe = async (ctx: DiskContext, path: string): Promise<Probe> => {
  const r = await ctx.runner.run({ argv: ['blkid', '-p', '-o', 'export', '--', path], okCodes: [0, 2] })
  if (ctx.runner.planning || r.code === 2) return {}
  const field = (k: string): string | undefined => new RegExp(`^${k}=(.*)$`, 'm').exec(r.stdout)?.[1]
  const out: Probe = {}
  const type = field('TYPE')
  const pttype = field('PTTYPE')
  if (type !== undefined) out.type = type
  if (pttype !== undefined) out.pttype = pttype
  return out
}

export const describeProbe = (p: Probe): string => (p.type !== undefined ? `a ${p.type} signature` : `a ${p.pttype ?? 'partition'} partition table`)

/** refuses anything but nothing or the expected type: pvdisk never formats what may hold data */
export const refuseForeign = (disk: string, path: string, p: Probe, expected: string[]): void => {
  if (p.pttype !== undefined || (p.type !== undefined && !expected.includes(p.type))) {
    throw new PvdiskError('EDISK', `disk "${disk}": ${path} holds ${describeProbe(p)}, not ${expected.join(' or ')}; pvdisk never formats a device that may hold data`,
      [`if its content can go, wipe it yourself (wipefs -a ${path}), then run this again`])
  }
}

// Pantavisor's mount_options (disk_utils.c): MS_* flag names, comma-separated
const MS_FLAGS: Record<string, string> = {
  MS_DIRSYNC: 'dirsync', MS_LAZYTIME: 'lazytime', MS_MANDLOCK: 'mand', MS_NOATIME: 'noatime', MS_NODEV: 'nodev',
  MS_NODIRATIME: 'nodiratime', MS_NOEXEC: 'noexec', MS_NOSUID: 'nosuid', MS_RDONLY: 'ro', MS_RELATIME: 'relatime',
  MS_SILENT: 'silent', MS_STRICTATIME: 'strictatime', MS_SYNCHRONOUS: 'sync',
}

/** mount_options as mount -o options: MS_* names translated (MS_REC and unknown names ignored, as Pantavisor does) */
export const mountOptionsOf = (options: unknown, log: (m: string) => void): string[] => {
  if (typeof options !== 'string') return []
  const out: string[] = []
  for (const tok of options.replace(/\s/g, '').split(',').filter(Boolean)) {
    const flag = MS_FLAGS[tok]
    if (flag) out.push(flag)
    else if (tok !== 'MS_REC') log(`warning: mount option ${tok} is not one of Pantavisor's MS_* flags; ignored`)
  }
  return out
}

/** provision_options: space-separated key=value pairs (tokens without "=" are skipped) */
export const provisionOptionsOf = (options: unknown): [string, string][] =>
  typeof options !== 'string' ? [] : options.split(/\s+/).filter(t => t.includes('=')).map(t => [t.slice(0, t.indexOf('=')), t.slice(t.indexOf('=') + 1)])

// ---- zram: the device each disk was given, kept under /run (a reboot forgets zram too)

const zramFileOf = (ctx: DiskContext): string => hostPath(ctx, '/run/pvdisk/zram.json')

export const zramRecord = (ctx: DiskContext): Record<string, number> => {
  try {
    return JSON.parse(readFileSync(zramFileOf(ctx), 'utf8')) as Record<string, number>
  } catch {
    return {}
  }
}

const setZramRecord = (ctx: DiskContext, disk: string, devno: number | undefined): void => {
  const rec = zramRecord(ctx)
  if (devno === undefined) delete rec[disk]
  else rec[disk] = devno
  mkdirNoFollow(ctx.root, dirname(zramFileOf(ctx)), 0o700)
  writeFileAtomicSync(zramFileOf(ctx), JSON.stringify(rec), 0o600)
}

const sysOf = (n: number, attr: string): string => `/sys/block/zram${n}/${attr}`

const initialised = (n: number): boolean | undefined => {
  try {
    return readFileSync(sysOf(n, 'initstate'), 'utf8').trim() !== '0'
  } catch {
    return undefined
  }
}

/** the disk's zram device, set up with its provision_options: an uninitialised one, else a hot-added one */
export const zramDevice = (ctx: DiskContext, disk: string, options: unknown): { device: string, fresh: boolean } => {
  // disksize initialises the device, after which comp_algorithm and the rest are refused: it goes last
  const all = provisionOptionsOf(options)
  const opts = [...all.filter(([k]) => k !== 'disksize'), ...all.filter(([k]) => k === 'disksize')]
  if (ctx.runner.planning) {
    ctx.runner.note(`find an uninitialised /sys/block/zramN (or hot_add one) as $ZRAM, write ${opts.map(([k, v]) => `${k}=${v}`).join(' ') || 'nothing'} to it`)
    return { device: '$ZRAM', fresh: true }
  }
  const mine = zramRecord(ctx)[disk]
  if (mine !== undefined && initialised(mine) === true) return { device: `/dev/zram${mine}`, fresh: false }
  if (!existsSync('/sys/class/zram-control') && !existsSync('/sys/block/zram0')) {
    throw new PvdiskError('ETOOL', `disk "${disk}": this kernel has no zram (no /sys/class/zram-control)`, ['modprobe zram, or build the kernel with CONFIG_ZRAM'])
  }
  const claimed = new Set(Object.values(zramRecord(ctx)))
  let n = [...Array(100).keys()].find(i => !claimed.has(i) && initialised(i) === false)
  if (n === undefined) n = Number(readFileSync('/sys/class/zram-control/hot_add', 'utf8').trim())
  for (const [key, value] of opts) {
    ctx.runner.note(`write ${value} to ${sysOf(n, key)}`)
    try {
      writeFileSync(sysOf(n, key), value)
    } catch (e) {
      try {
        writeFileSync(sysOf(n, 'reset'), '1') // not left half set up
      } catch {
        // nothing to undo
      }
      throw new PvdiskError('EDISK', `disk "${disk}": cannot set ${key}=${value} on zram${n}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, ['check provision_options (e.g. "disksize=64M comp_algorithm=lz4")'])
    }
  }
  setZramRecord(ctx, disk, n)
  return { device: `/dev/zram${n}`, fresh: true }
}

/** down: the device is reset (its content goes, as zram's always does) and forgotten */
export const zramReset = (ctx: DiskContext, disk: string): void => {
  const mine = zramRecord(ctx)[disk]
  if (mine === undefined) return
  ctx.runner.note(`write 1 to ${sysOf(mine, 'reset')}`)
  if (existsSync(sysOf(mine, 'reset'))) writeFileSync(sysOf(mine, 'reset'), '1')
  setZramRecord(ctx, disk, undefined)
}
