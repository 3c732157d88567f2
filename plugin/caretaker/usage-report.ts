// `pvdisk usage`: per disk and per volume, as data, as JSON, and in Prometheus text format
// (node_exporter textfile-collector convention: a .prom file in a directory it watches).
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from '../host/atomic-write.js'
import { readStateFile } from '../host/state-file.js'
import type { DiskIndex } from '../config/check-device.js'
import { hostPath, mountPointOf, type DiskContext } from '../disks/context.js'
import { backendFor, isProvisionedByPvdisk } from '../disks/engine.js'
import { servingDuals } from '../disks/dual.js'
import { allocatedBytes, beginMeasurement, emptyCache, endMeasurement, fsUsageOf, measureIn, subdirsIn, type FsUsage, type TreeCache } from './usage.js'

export interface DiskUsage extends Partial<FsUsage> {
  disk: string
  type: string
  state: string
  mountPoint: string
  imageAllocated?: number
}

export interface VolumeUsage {
  disk: string // "" without a disk
  app: string
  volume: string
  persistence: 'permanent' | 'revision' | 'boot'
  revision: string // "" unless revision
  path: string
  bytes: number
  files: number
}

export interface UsageReport {
  time: string
  disks: DiskUsage[]
  volumes: VolumeUsage[]
}

/** every <base>/{perm,boot}/<app>/<vol> and <base>/rev/<rev>/<app>/<vol> that exists */
const volumeDirs = (list: (dir: string) => string[], base: string) => [
  ...['perm', 'boot'].flatMap(kind => list(join(base, kind)).flatMap(app => list(join(base, kind, app)).map(volume =>
    ({ persistence: kind === 'perm' ? 'permanent' as const : 'boot' as const, revision: '', app, volume, path: join(base, kind, app, volume) })))),
  ...list(join(base, 'rev')).flatMap(revision => list(join(base, 'rev', revision)).flatMap(app => list(join(base, 'rev', revision, app)).map(volume =>
    ({ persistence: 'revision' as const, revision, app, volume, path: join(base, 'rev', revision, app, volume) })))),
]

export const cacheFileOf = (ctx: DiskContext): string => hostPath(ctx, '/var/lib/pvdisk/usage-cache.json')

const isCache = (v: unknown): v is TreeCache =>
  typeof v === 'object' && v !== null && typeof (v as TreeCache).dirs === 'object' && (v as TreeCache).dirs !== null && typeof (v as TreeCache).measurements === 'number'

/** the cache as saved; a damaged one is moved aside (warn) and the next measurement walks everything */
export const loadCache = (file: string, warn: (message: string) => void = () => undefined): TreeCache => readStateFile(file, isCache, warn) ?? emptyCache()

export const collectUsage = (ctx: DiskContext, index: DiskIndex, cache: TreeCache, opts: { fullEvery?: number } = {}): UsageReport => {
  const disks: DiskUsage[] = []
  const volumes: VolumeUsage[] = []
  // one measurement for every volume: each directory is visited once, whatever the number of volumes
  const m = beginMeasurement(cache, opts.fullEvery)
  const measure = (disk: string, base: string) => {
    for (const v of volumeDirs(dir => subdirsIn(m, cache, dir), base)) {
      const t = measureIn(m, cache, v.path)
      volumes.push({ disk, ...v, bytes: t.bytes, files: t.files })
    }
  }
  const shown = servingDuals(ctx, index.disks.values()) // measured once, through the dual's place
  for (const d of [...index.disks.values()].filter(isProvisionedByPvdisk)) {
    const status = backendFor(ctx, d)?.status()
    const u: DiskUsage = { disk: d.name, type: d.type, state: status?.state ?? 'absent', mountPoint: mountPointOf(ctx, d) }
    if (status?.state === 'mounted' && d.type === 'swap-disk') Object.assign(u, { size: status.size, used: status.used, free: status.free }) // swapping: /proc/swaps' figures
    else if (status?.state === 'mounted') {
      Object.assign(u, fsUsageOf(u.mountPoint))
      if (!shown.has(d.name)) measure(d.name, u.mountPoint)
    }
    if (d.crypt) {
      const alloc = allocatedBytes(hostPath(ctx, d.crypt.image))
      if (alloc !== undefined) u.imageAllocated = alloc
    }
    disks.push(u)
  }
  const plain = hostPath(ctx, '/storage/disks')
  if (existsSync(plain)) measure('', plain)
  endMeasurement(cache, m)
  return { time: new Date().toISOString(), disks, volumes }
}

const esc = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
const labels = (l: Record<string, string>): string => `{${Object.entries(l).map(([k, v]) => `${k}="${esc(v)}"`).join(',')}}`

export const METRICS: [string, string][] = [
  ['pvdisk_disk_mounted', 'Whether the disk is mounted (1) or not (0).'],
  ['pvdisk_disk_size_bytes', 'Size of the disk\'s filesystem.'],
  ['pvdisk_disk_used_bytes', 'Bytes used on the disk\'s filesystem.'],
  ['pvdisk_disk_free_bytes', 'Bytes available to unprivileged users on the disk\'s filesystem.'],
  ['pvdisk_disk_inodes', 'Inodes of the disk\'s filesystem.'],
  ['pvdisk_disk_inodes_free', 'Free inodes of the disk\'s filesystem.'],
  ['pvdisk_disk_image_allocated_bytes', 'Bytes the image file of an encrypted disk occupies on its host filesystem.'],
  ['pvdisk_volume_bytes', 'Bytes allocated by the files of a volume.'],
  ['pvdisk_volume_files', 'Files (not directories) in a volume.'],
]

export const toPrometheus = (r: UsageReport): string => {
  const lines: Record<string, string[]> = Object.fromEntries(METRICS.map(([m]) => [m, []]))
  const add = (m: string, l: Record<string, string>, v: number | undefined) => {
    if (v !== undefined) lines[m]?.push(`${m}${labels(l)} ${v}`)
  }
  for (const d of r.disks) {
    const l = { disk: d.disk, type: d.type }
    add('pvdisk_disk_mounted', l, d.state === 'mounted' ? 1 : 0)
    add('pvdisk_disk_size_bytes', l, d.size)
    add('pvdisk_disk_used_bytes', l, d.used)
    add('pvdisk_disk_free_bytes', l, d.free)
    add('pvdisk_disk_inodes', l, d.inodes)
    add('pvdisk_disk_inodes_free', l, d.inodesFree)
    add('pvdisk_disk_image_allocated_bytes', l, d.imageAllocated)
  }
  for (const v of r.volumes) {
    const l = { disk: v.disk, app: v.app, volume: v.volume, persistence: v.persistence, revision: v.revision }
    add('pvdisk_volume_bytes', l, v.bytes)
    add('pvdisk_volume_files', l, v.files)
  }
  return METRICS.flatMap(([m, help]) => [`# HELP ${m} ${help}`, `# TYPE ${m} gauge`, ...(lines[m] ?? [])]).join('\n') + '\n'
}

/** usage.json and pvdisk.prom, each written atomically (a collector never reads half a file) */
export const writeUsage = async (dir: string, r: UsageReport): Promise<string[]> => {
  mkdirSync(dir, { recursive: true, mode: 0o755 })
  const json = join(dir, 'usage.json')
  const prom = join(dir, 'pvdisk.prom')
  await writeFileAtomic(json, JSON.stringify(r, null, 2) + '\n', 0o644)
  await writeFileAtomic(prom, toPrometheus(r), 0o644)
  return [json, prom]
}
