// `pvdisk gc`: revision data of revisions no longer kept, on every disk (encrypted ones
// included) and under <root>/storage/disks; with --prune-orphans, permanent data of apps
// absent from the state for longer than a grace period. Never follows a link out of the
// tree it cleans, never removes what is mounted into any container (every mount namespace
// on the machine is checked), and --dry-run lists what would go, with sizes.
import { lstatSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { writeFileAtomic } from '../host/atomic-write.js'
import { mkdirNoFollow, refuseLinksBelow } from '../host/no-follow.js'
import { readStateFile } from '../host/state-file.js'
import type { DiskIndex } from '../config/check-device.js'
import { hostPath, mountPointOf, type DiskContext } from '../disks/context.js'
import { backendFor, isProvisionedByPvdisk } from '../disks/engine.js'
import { servingDuals } from '../disks/dual.js'
import { mountHolding, parseMountinfo, type MountEntry } from '../host/kernel.js'
import { emptyCache, measureTree, subdirs } from './usage.js'
import { readJournal, writeJournal } from '../volumes/placements.js'
import { livePlaces } from '../volumes/migrate.js'

export interface GcOptions {
  revision: string
  /** revisions kept besides the current one, newest first by modification time */
  keep: number
  pruneOrphans: boolean
  graceDays: number
  dryRun: boolean
  /** apps present in the state */
  apps: string[]
  now?: number
  /** called as each candidate is handled */
  onProgress?: (done: number, total: number, path: string) => void
}

export interface GcItem {
  path: string
  kind: 'revision' | 'orphan' | 'migrated'
  bytes: number
  action: 'removed' | 'would remove' | 'kept: in use' | 'kept: grace period' | 'skipped: not a directory' | 'skipped: a symbolic link, not followed'
}

/** the mount tables of every mount namespace on the machine, once each */
export const allNamespaceMounts = (): MountEntry[][] => {
  const seen = new Set<string>()
  const tables: MountEntry[][] = []
  for (const pid of readdirSync('/proc').filter(p => /^[0-9]+$/.test(p))) {
    try {
      const ns = readlinkSync(`/proc/${pid}/ns/mnt`)
      if (seen.has(ns)) continue
      seen.add(ns)
      tables.push(parseMountinfo(readFileSync(`/proc/${pid}/mountinfo`, 'utf8')))
    } catch {
      // the process went away
    }
  }
  return tables
}

/** is anything under path mounted somewhere (a bind of it, or of something inside it)? */
export const inUse = (path: string, host: MountEntry[], tables: MountEntry[][]): boolean => {
  const holder = mountHolding(host, path)
  if (!holder) return false
  const rel = holder.mountPoint === '/' ? path : path.slice(holder.mountPoint.length)
  const inFs = `${holder.root === '/' ? '' : holder.root}${rel}`
  return tables.some(t => t.some(m => m.major === holder.major && m.minor === holder.minor && m !== holder &&
    (m.root === inFs || m.root.startsWith(`${inFs}/`)) && !(m.mountPoint === holder.mountPoint && m.root === holder.root)))
}

export const gcStateFile = (ctx: DiskContext): string => hostPath(ctx, '/var/lib/pvdisk/gc-state.json')

export const runGc = async (ctx: DiskContext, disks: DiskIndex, opts: GcOptions): Promise<GcItem[]> => {
  const now = opts.now ?? Date.now()
  const bases: string[] = [hostPath(ctx, '/storage/disks')]
  const shown = servingDuals(ctx, disks.disks.values()) // their data is cleaned through the dual's place
  for (const d of [...disks.disks.values()].filter(isProvisionedByPvdisk)) {
    if (!shown.has(d.name) && d.type !== 'swap-disk' && backendFor(ctx, d)?.status().state === 'mounted') bases.push(mountPointOf(ctx, d))
  }
  const host = ctx.kernel.mounts()
  const tables = allNamespaceMounts()
  const items: GcItem[] = []
  const consider = (path: string, kind: GcItem['kind']): boolean => {
    const st = lstatSync(path, { throwIfNoEntry: false })
    if (!st?.isDirectory()) {
      items.push({ path, kind, bytes: 0, action: 'skipped: not a directory' })
      return false
    }
    const bytes = measureTree(path, emptyCache()).bytes
    if (inUse(path, host, tables)) {
      items.push({ path, kind, bytes, action: 'kept: in use' })
      return false
    }
    items.push({ path, kind, bytes, action: opts.dryRun ? 'would remove' : 'removed' })
    if (!opts.dryRun) rmSync(path, { recursive: true, force: true }) // removes links, never what they point to
    return true
  }

  // below a disk's root nothing is followed: a rev or perm that is a link (to anywhere) is reported, never listed
  const below = (base: string, dir: 'rev' | 'perm'): string[] => {
    const linked = (() => {
      try {
        refuseLinksBelow(ctx.root, join(base, dir), 'gc')
        return false
      } catch {
        return true
      }
    })()
    const st = lstatSync(join(base, dir), { throwIfNoEntry: false })
    if (linked || (st && !st.isDirectory())) {
      items.push({ path: join(base, dir), kind: dir === 'rev' ? 'revision' : 'orphan', bytes: 0, action: linked || st?.isSymbolicLink() ? 'skipped: a symbolic link, not followed' : 'skipped: not a directory' })
      return []
    }
    return subdirs(join(base, dir))
  }
  const candidates = bases.flatMap(base => below(base, 'rev').filter(r => r !== opts.revision)
    .map(r => ({ path: join(base, 'rev', r), mtime: lstatSync(join(base, 'rev', r)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime).slice(opts.keep).map(c => c.path))
  candidates.forEach((path, i) => {
    opts.onProgress?.(i, candidates.length, path)
    consider(path, 'revision')
  })
  opts.onProgress?.(candidates.length, candidates.length, '')

  migratedCopies(ctx, disks, opts, now, items, consider)
  if (opts.pruneOrphans) {
    const isGcState = (v: unknown): v is { absentSince: Record<string, number> } => {
      const a = (v as { absentSince?: unknown } | null)?.absentSince
      return typeof a === 'object' && a !== null && Object.values(a).every(n => typeof n === 'number')
    }
    // damaged: moved aside, and every orphan's grace period starts again (nothing is removed early)
    const absentSince = readStateFile(gcStateFile(ctx), isGcState, m => ctx.log(`warning: ${m}`))?.absentSince ?? {}
    const next: Record<string, number> = {}
    for (const base of bases) {
      for (const app of below(base, 'perm').filter(a => !opts.apps.includes(a))) {
        const path = join(base, 'perm', app)
        const since = absentSince[path] ?? now
        if (now - since < opts.graceDays * 86_400_000) {
          next[path] = since
          items.push({ path, kind: 'orphan', bytes: measureTree(path, emptyCache()).bytes, action: 'kept: grace period' })
        } else if (!consider(path, 'orphan') || opts.dryRun) next[path] = since
      }
    }
    if (!opts.dryRun) {
      mkdirNoFollow(ctx.root, dirname(gcStateFile(ctx)), 0o700)
      await writeFileAtomic(gcStateFile(ctx), JSON.stringify({ absentSince: next }, null, 2) + '\n', 0o600)
    }
  }
  return items
}

/** the old copies that migrations left behind (volumes/migrate.ts), once their grace period is over */
const migratedCopies = (ctx: DiskContext, disks: DiskIndex, opts: GcOptions, now: number, items: GcItem[], consider: (path: string, kind: GcItem['kind']) => boolean): void => {
  const journal = readJournal(ctx)
  const live = journal.length > 0 ? livePlaces(ctx, disks) : new Set<string>()
  const keep = journal.filter(r => {
    if (r.state !== 'done' || !lstatSync(r.from, { throwIfNoEntry: false })) return r.state !== 'done' || !lstatSync(dirname(r.from), { throwIfNoEntry: false }) // gone, or its disk is down
    if (live.has(r.from)) {
      // the other history's volume lives there (a plugin volume and a state's app share it), or it moved back
      items.push({ path: r.from, kind: 'migrated', bytes: measureTree(r.from, emptyCache()).bytes, action: 'kept: in use' })
      return true
    }
    if (now - r.at < opts.graceDays * 86_400_000) {
      items.push({ path: r.from, kind: 'migrated', bytes: measureTree(r.from, emptyCache()).bytes, action: 'kept: grace period' })
      return true
    }
    return !consider(r.from, 'migrated') || opts.dryRun
  })
  if (!opts.dryRun && keep.length !== journal.length) writeJournal(ctx, keep)
}
