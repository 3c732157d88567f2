// The scheduled side of `pvdisk serve`: usage metrics, garbage collection and health
// checks on node-cron schedules. Jobs never overlap themselves; a bad schedule is an error
// at start, not a crash at 3 a.m.
import cron, { type ScheduledTask } from 'node-cron'
import { lstatSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { InvalidInputError } from '../config/app-install.js'
import { writeFileAtomic } from '../host/atomic-write.js'
import type { DiskEntry, DiskIndex } from '../config/check-device.js'
import { hostPath, mountPointOf, type DiskContext } from '../disks/context.js'
import { backendFor, disksUp } from '../disks/engine.js'
import { allNamespaceMounts, runGc } from './gc.js'
import { mountAt } from '../host/kernel.js'
import { FileProblems } from '../config/problems.js'
import { readJsonFile } from '../config/read-json-file.js'
import { closest } from '../config/suggest.js'
import { cacheFileOf, collectUsage, loadCache, writeUsage } from './usage-report.js'
import { readExpected } from '../disks/expected.js'

export interface CaretakerConfig {
  schedules: { usage: string, gc: string, health: string }
  /** where usage.json, pvdisk.prom and health.json go (node_exporter textfile directory) */
  metricsDir: string
  gc: { keep: number, pruneOrphans: boolean, graceDays: number }
  usage: { fullEvery: number }
}

/** suits a small device: usage every 15 min, health every 5 min, GC nightly */
export const defaultConfig = (): CaretakerConfig => ({
  schedules: { usage: '*/15 * * * *', gc: '17 3 * * *', health: '*/5 * * * *' },
  metricsDir: '/var/lib/pvdisk/metrics',
  gc: { keep: 2, pruneOrphans: false, graceDays: 30 },
  usage: { fullEvery: 24 },
})

interface Shape { [key: string]: 'string' | 'number' | 'boolean' | 'cron' | Shape }
const SHAPE: Shape = {
  schedules: { usage: 'cron', gc: 'cron', health: 'cron' },
  metricsDir: 'string',
  gc: { keep: 'number', pruneOrphans: 'boolean', graceDays: 'number' },
  usage: { fullEvery: 'number' },
}

const merge = (sink: FileProblems, target: Record<string, unknown>, value: unknown, shape: Shape, at: string): void => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return sink.error('config-type', at, 'must be an object')
  for (const [k, v] of Object.entries(value)) {
    const want = shape[k]
    const p = `${at}/${k}`
    if (want === undefined) {
      const near = closest(k, Object.keys(shape))
      sink.error('config-unknown-key', p, `unknown key "${k}"`, near ? `did you mean "${near}"?` : `known keys: ${Object.keys(shape).join(', ')}`)
    } else if (typeof want === 'object') merge(sink, target[k] as Record<string, unknown>, v, want, p)
    else if (want === 'cron') {
      if (typeof v === 'string' && cron.validate(v)) target[k] = v
      else sink.error('config-cron', p, `${JSON.stringify(v)} is not a valid cron expression`, 'write five or six fields, e.g. "*/15 * * * *"')
    } else if (typeof v !== want || (want === 'number' && (!Number.isInteger(v) || (v as number) < 0))) {
      sink.error('config-type', p, `must be ${want === 'number' ? 'a whole number, 0 or more' : `a ${want}`}`)
    } else target[k] = v
  }
}

/** a JSON config file, then command-line overrides, over the defaults; every problem reported */
export const loadConfig = async (file: string | undefined, overrides: Partial<Record<'usage' | 'gc' | 'health', string>> & { metricsDir?: string } = {}): Promise<CaretakerConfig> => {
  const config = defaultConfig()
  const target = config as unknown as Record<string, unknown>
  const fromFile = new FileProblems(file ?? '')
  if (file !== undefined) {
    const parsed = await readJsonFile(file, fromFile)
    if (parsed) merge(fromFile, target, parsed.value, SHAPE, '')
  }
  const schedules = Object.fromEntries((['usage', 'gc', 'health'] as const).filter(k => overrides[k] !== undefined).map(k => [k, overrides[k]]))
  const flags = new FileProblems('(command line)')
  merge(flags, target, { ...(Object.keys(schedules).length ? { schedules } : {}), ...(overrides.metricsDir !== undefined ? { metricsDir: overrides.metricsDir } : {}) }, SHAPE, '')
  const all = [...fromFile.list, ...flags.list]
  if (all.some(p => p.severity === 'error')) throw new InvalidInputError('invalid caretaker configuration; not starting', all)
  return config
}

export interface HealthItem {
  disk: string
  ok: boolean
  repaired: boolean
  problem?: string
  /** a volume mounted into a container, when the item is about one */
  volume?: string
}

/** volumes of this disk mounted into containers (any mount namespace) whose directory is gone from the disk */
const vanishedVolumes = (ctx: DiskContext, disk: DiskEntry): string[] => {
  const mnt = mountPointOf(ctx, disk)
  const host = ctx.kernel.mounts()
  const own = mountAt(host, mnt)
  if (!own) return []
  const gone: string[] = []
  for (const table of allNamespaceMounts()) {
    for (const m of table) {
      if (m.major !== own.major || m.minor !== own.minor || m.root === own.root) continue
      const prefix = own.root === '/' ? '' : own.root
      if (!m.root.startsWith(`${prefix}/`)) continue
      const rel = m.root.slice(prefix.length).replace(/\/\/deleted$/, '') // a removed directory shows as //deleted
      if (!/^\/(perm|boot|rev)\//.test(rel)) continue
      const path = `${mnt}${rel}`
      if (!lstatSync(path, { throwIfNoEntry: false })?.isDirectory() && !gone.includes(path)) gone.push(path)
    }
  }
  return gone
}

/** every disk expected up is mounted from the right source (and its mapping active); drift is remounted where safe */
export const checkHealth = async (ctx: DiskContext, index: DiskIndex): Promise<HealthItem[]> => {
  const out: HealthItem[] = []
  for (const name of readExpected(ctx)) {
    const disk: DiskEntry | undefined = index.disks.get(name)
    const backend = disk && backendFor(ctx, disk)
    if (!disk || !backend) {
      out.push({ disk: name, ok: false, repaired: false, problem: 'no longer declared in device.json' })
      continue
    }
    const s = backend.status()
    if (s.state === 'mounted') {
      out.push({ disk: name, ok: true, repaired: false })
      for (const v of vanishedVolumes(ctx, disk)) out.push({ disk: name, volume: v, ok: false, repaired: false, problem: `${v} is mounted into a container but no longer exists on the disk` })
      continue
    }
    if (s.problems.length > 0) {
      out.push({ disk: name, ok: false, repaired: false, problem: s.problems.join('; ') }) // something else took its place: never touched
      continue
    }
    try {
      await disksUp(ctx, [disk])
      out.push({ disk: name, ok: true, repaired: true, problem: `was ${s.state}, remounted at ${mountPointOf(ctx, disk)}` })
    } catch (e) {
      out.push({ disk: name, ok: false, repaired: false, problem: `${s.state}, and remounting failed: ${(e as Error).message}` })
    }
  }
  return out
}

export const healthProm = (items: HealthItem[]): string =>
  ['# HELP pvdisk_disk_healthy Whether a disk expected up is mounted from the right source (1) or not (0).', '# TYPE pvdisk_disk_healthy gauge',
    ...items.filter(i => i.volume === undefined).map(i => `pvdisk_disk_healthy{disk="${i.disk.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"} ${i.ok && !items.some(v => v.volume !== undefined && v.disk === i.disk) ? 1 : 0}`),
    '# HELP pvdisk_disk_repairs_total Remounts done by the health check since pvdisk serve started.', '# TYPE pvdisk_disk_repairs_total counter',
  ].join('\n') + '\n'

export type Log = (level: 'info' | 'warn' | 'error', event: string, fields?: Record<string, unknown>) => void

export interface Jobs {
  tasks: Record<'usage' | 'gc' | 'health', ScheduledTask>
  stop(): Promise<void>
}

export const startJobs = (ctx: DiskContext, index: DiskIndex, config: CaretakerConfig, opts: { revision: string, apps: () => string[], log: Log }): Jobs => {
  const metricsDir = hostPath(ctx, config.metricsDir)
  let repairs = 0
  const usage = async () => {
    const cache = loadCache(cacheFileOf(ctx))
    const report = collectUsage(ctx, index, cache, config.usage)
    mkdirSync(dirname(cacheFileOf(ctx)), { recursive: true, mode: 0o700 })
    await writeFileAtomic(cacheFileOf(ctx), JSON.stringify(cache), 0o600)
    await writeUsage(metricsDir, report)
    opts.log('info', 'usage', { disks: report.disks.length, volumes: report.volumes.length })
  }
  const gc = async () => {
    const items = await runGc(ctx, index, { revision: opts.revision, keep: config.gc.keep, pruneOrphans: config.gc.pruneOrphans, graceDays: config.gc.graceDays, dryRun: false, apps: opts.apps() })
    for (const i of items) opts.log(i.action === 'removed' ? 'info' : 'warn', 'gc', { path: i.path, action: i.action, bytes: i.bytes })
  }
  const health = async () => {
    const items = await checkHealth(ctx, index)
    for (const i of items) {
      if (i.repaired) repairs++
      if (!i.ok) opts.log('error', 'health', { disk: i.disk, ...(i.volume ? { volume: i.volume } : {}), problem: i.problem })
      else if (i.repaired) opts.log('warn', 'health', { disk: i.disk, repaired: i.problem })
    }
    mkdirSync(metricsDir, { recursive: true, mode: 0o755 })
    await writeFileAtomic(join(metricsDir, 'health.json'), JSON.stringify({ time: new Date().toISOString(), disks: items }, null, 2) + '\n', 0o644)
    await writeFileAtomic(join(metricsDir, 'pvdisk-health.prom'), `${healthProm(items)}pvdisk_disk_repairs_total ${repairs}\n`, 0o644)
  }
  const guarded = (name: string, fn: () => Promise<void>) => async () => {
    try {
      await fn()
    } catch (e) {
      opts.log('error', name, { error: (e as Error).message })
    }
  }
  const tasks = {
    usage: cron.schedule(config.schedules.usage, guarded('usage', usage), { name: 'pvdisk-usage', noOverlap: true }),
    gc: cron.schedule(config.schedules.gc, guarded('gc', gc), { name: 'pvdisk-gc', noOverlap: true }),
    health: cron.schedule(config.schedules.health, guarded('health', health), { name: 'pvdisk-health', noOverlap: true }),
  }
  return {
    tasks,
    stop: async () => {
      for (const t of Object.values(tasks)) await t.destroy()
    },
  }
}
