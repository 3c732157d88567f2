// Layer caretaker/ (above volumes/): what looks after a running device: usage metrics,
// garbage collection, the health check, and their schedules.
//
// The scheduled side of `pvdisk serve`: usage metrics, garbage collection and health
// checks on node-cron schedules. Jobs never overlap themselves; a bad schedule is an error
// at start (config.ts), not a crash at 3 a.m.
import cron, { type ScheduledTask } from 'node-cron'
import { dirname, join } from 'node:path'
import { writeFileAtomic } from '../host/atomic-write.js'
import { mkdirNoFollow } from '../host/no-follow.js'
import type { DiskIndex } from '../config/check-device.js'
import { hostPath, type DiskContext } from '../disks/context.js'
import type { CaretakerConfig } from './config.js'
import { runGc } from './gc.js'
import { checkHealth, healthProm } from './health.js'
import { cacheFileOf, collectUsage, loadCache, writeUsage } from './usage-report.js'

export type Log = (level: 'info' | 'warn' | 'error', event: string, fields?: Record<string, unknown>) => void

export interface Jobs {
  tasks: Record<'usage' | 'gc' | 'health', ScheduledTask>
  stop(): Promise<void>
}

export const startJobs = (ctx: DiskContext, index: DiskIndex, config: CaretakerConfig, opts: { revision: string, apps: () => string[], log: Log }): Jobs => {
  const metricsDir = hostPath(ctx, config.metricsDir)
  let repairs = 0
  const usage = async () => {
    const cache = loadCache(cacheFileOf(ctx), m => opts.log('warn', 'usage', { problem: m }))
    const report = collectUsage(ctx, index, cache, config.usage)
    mkdirNoFollow(ctx.root, dirname(cacheFileOf(ctx)), 0o700)
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
    mkdirNoFollow(ctx.root, metricsDir)
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
