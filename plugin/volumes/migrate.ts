// Data that follows its volume. When a new state moves a volume (its container path keeps
// its volume name, docker--data) to another disk or persistence, and the new place is empty
// while the old one holds data, the data is migrated once, before the container starts:
// copied next to the new place, compared byte for byte with its source, synced, and only
// then renamed into place. The old copy stays, recorded in the journal, until gc removes it
// after its grace period. A kill -9 at any step leaves the new place empty or complete: the
// next run restarts the copy or finishes the rename. Space is checked before copying.
import { lstatSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { resolveDisk, type DiskEntry, type DiskIndex } from '../config/check-device.js'
import { lockDirOf, type DiskContext } from '../disks/context.js'
import { backendFor, disksUp, isProvisionedByPvdisk } from '../disks/engine.js'
import { PvdiskError } from '../errors.js'
import { copyVerified, freeBytesAt, treeSize } from '../host/tree-copy.js'
import { describePlacement, journalSet, placementOf, placementsDirOf, placementsFileOf, readJournal, readPlacements, recordPlacements, samePlacement, writeJournal, type Placement, type PlacementScope } from './placements.js'
import { prepareVolume, volumeSource, type AppVolume } from './volumes.js'
import { acquireLock } from '../disks/lock.js'
import { fsyncPath } from '../host/atomic-write.js'

export interface Migration {
  app: string
  volume: string
  containerPath?: string
  old: Placement
  new: Placement
  from: string
  to: string
  /** the old disk, when it must be up to be read */
  fromDisk?: DiskEntry
  /** the new place holds the stale copy an earlier move left behind: it is set aside, for gc */
  replace?: boolean
  files: number
  bytes: number
}

/** where the volumes of some apps lived at their last start, read once per command and kept up to date */
export interface KnownPlacements {
  scope: PlacementScope
  byApp: Map<string, Record<string, Placement>>
  /** the plugin's: placements are written in its group commit, and their writes go here to be awaited before the reply */
  writes?: Promise<void>[]
}

export const knownPlacements = (ctx: DiskContext, apps: Iterable<string>, scope: PlacementScope = 'state'): KnownPlacements =>
  ({ scope, byApp: new Map([...new Set(apps)].map(app => [app, readPlacements(ctx, app, scope)])) })

const recordedOf = (ctx: DiskContext, known: KnownPlacements, app: string): Record<string, Placement> => {
  const found = known.byApp.get(app)
  if (found) return found
  const read = readPlacements(ctx, app, known.scope)
  known.byApp.set(app, read)
  return read
}

const isEmptyDir = (p: string): boolean => {
  const st = lstatSync(p, { throwIfNoEntry: false })
  return !st || (st.isDirectory() && readdirSync(p).length === 0)
}

const tmpOf = (to: string): string => join(dirname(to), `.${basename(to)}.pvdisk-migrating`)

/** where a recorded placement kept the volume, with its disk (which may have to be brought up) */
const oldPlace = (ctx: DiskContext, disks: DiskIndex, v: AppVolume, p: Placement, scope: PlacementScope): { path?: string, disk?: DiskEntry } => {
  const disk = p.disk !== undefined ? resolveDisk(disks, p.disk) : undefined
  if (p.disk !== undefined && !disk) {
    throw new PvdiskError('EINVALID', `app "${v.app}": volume ${v.name} was on disk "${p.disk}", which device.json no longer declares; its data cannot follow it to ${describePlacement(placementOf(v, p.revision ?? ''))}`,
      [`declare disk "${p.disk}" again until its data has moved, or remove ${v.name} from ${placementsFileOf(ctx, v.app, scope)} to start it empty`])
  }
  const { disk: _new, ...rest } = v
  const src = volumeSource(ctx, { ...rest, persistence: p.persistence, ...(disk ? { disk } : {}) }, p.revision ?? '')
  return { ...(src.kind === 'dir' ? { path: src.path } : {}), ...(disk ? { disk } : {}) }
}

/**
 * The moves an app's volumes need, from the placements recorded at its last start: only
 * where the disk or persistence changed, the old place holds data and the new one is empty.
 * A new revision of a revision volume starts empty, as always. Permanent data never goes
 * into a boot volume: that is an error naming both declarations.
 */
export const planMigrations = (ctx: DiskContext, disks: DiskIndex, volumes: readonly AppVolume[], revision: string, known = knownPlacements(ctx, volumes.map(v => v.app))): Migration[] => {
  const out: Migration[] = []
  for (const v of volumes) {
    const old = recordedOf(ctx, known, v.app)[v.name]
    const now = placementOf(v, revision)
    if (!old || samePlacement(old, now) || old.persistence === 'boot') continue
    if (now.persistence === 'revision' && old.persistence === 'revision' && old.revision !== now.revision) continue
    const from = oldPlace(ctx, disks, v, old, known.scope)
    // the old disk must be up to tell whether it holds data
    const readable = !from.disk || !isProvisionedByPvdisk(from.disk) || backendFor(ctx, from.disk)?.status().state === 'mounted'
    if (from.path === undefined || (readable && isEmptyDir(from.path))) continue
    const to = volumeSource(ctx, v, revision)
    const what = `${v.containerPath ?? v.name} of app "${v.app}"`
    if (to.kind !== 'dir' || now.persistence === 'boot') {
      throw new PvdiskError('EINVALID', `${what} was ${describePlacement(old)} and is now ${describePlacement(now)}: its data (in ${from.path}) would not follow into a boot volume, which starts empty at every start`,
        ['declare it permanent or revision, or move the data away yourself first'])
    }
    const journal = readJournal(ctx)
    // moved back within the grace period: what is there is the copy left behind by the earlier move, now stale
    const replace = journal.some(r => r.state === 'done' && r.from === to.path)
    if (!isEmptyDir(to.path) && !replace && !lstatSync(tmpOf(to.path), { throwIfNoEntry: false })) {
      if (!journal.some(r => r.to === to.path && r.from === from.path)) ctx.log(`warning: ${what} holds data both in ${from.path} (${describePlacement(old)}) and in ${to.path}: the new place is used, the old one is left as it is`)
      continue
    }
    out.push({ app: v.app, volume: v.name, ...(v.containerPath ? { containerPath: v.containerPath } : {}), old, new: now, from: from.path, to: to.path, ...(from.disk ? { fromDisk: from.disk } : {}), ...(replace ? { replace } : {}), files: 0, bytes: 0 })
  }
  return out
}

/** sizes, for a listing: needs the old disks up */
export const measureMigration = (m: Migration): Migration => {
  const size = lstatSync(m.from, { throwIfNoEntry: false }) ? treeSize(m.from) : { files: 0, bytes: 0 }
  return { ...m, files: size.files - 1, bytes: size.bytes }
}

/** one move, crash-safe: copy beside the new place, compare, sync, record, rename, record */
export const runMigration = async (ctx: DiskContext, v: AppVolume, m: Migration, revision: string): Promise<Migration> => {
  if (ctx.runner.planning) {
    ctx.runner.note(`migrate ${m.from} to ${m.to}: cp -a beside it, compare every byte, sync, rename`)
    return m
  }
  const lock = await acquireLock(lockDirOf(ctx), `migrate-${m.app}`)
  try {
    prepareVolume(ctx, v, revision) // the new place's parents (and the place itself, empty)
    const tmp = tmpOf(m.to)
    const journal = readJournal(ctx).filter(r => r.from === m.from && r.to === m.to)
    // another process (the plugin, a hook, pvdisk migrate) made this very move while this one waited for the lock
    if (journal.some(r => r.state === 'done') && !isEmptyDir(m.to)) return measureMigration(m)
    const done = journal.find(r => r.state === 'copied')
    if (done && !lstatSync(tmp, { throwIfNoEntry: false }) && !isEmptyDir(m.to)) {
      journalSet(ctx, { ...done, state: 'done', at: Date.now() }) // renamed just before a crash
      return measureMigration(m)
    }
    rmSync(tmp, { recursive: true, force: true }) // an interrupted copy starts again
    if (isEmptyDir(m.from)) return m
    const size = treeSize(m.from)
    const free = freeBytesAt(dirname(m.to))
    if (size.bytes > free) {
      throw new PvdiskError('EDISK', `not enough space for the data of ${m.containerPath ?? m.volume} of app "${m.app}": it needs ${size.bytes} bytes and ${dirname(m.to)} has ${free} free; nothing copied, nothing started`,
        ['free space on the new disk, or make it larger, then run pvdisk migrate'])
    }
    mkdirSync(tmp, { mode: 0o700 })
    const diff = await copyVerified(ctx.runner, m.from, tmp)
    if (diff) throw new PvdiskError('EDISK', `the copy of ${m.from} is not exact (${diff}); nothing started`, [`the copy is left in ${tmp} for inspection; the data stays in ${m.from}`])
    await ctx.runner.run({ argv: ['sync', '-f', '--', tmp] })
    ctx.runner.note(`record the copy of ${m.from} to ${m.to}`)
    journalSet(ctx, { app: m.app, volume: m.volume, from: m.from, to: m.to, state: 'copied', at: Date.now() })
    ctx.runner.note(`rename ${tmp} to ${m.to}`)
    if (m.replace && !isEmptyDir(m.to)) {
      const aside = join(dirname(m.to), `.${basename(m.to)}.pvdisk-superseded-${Date.now()}`)
      writeJournal(ctx, [...readJournal(ctx).filter(r => r.from !== m.to), { app: m.app, volume: m.volume, from: aside, to: m.to, state: 'done', at: Date.now() }])
      renameSync(m.to, aside)
    } else rmdirSync(m.to)
    renameSync(tmp, m.to)
    fsyncPath(dirname(m.to))
    journalSet(ctx, { app: m.app, volume: m.volume, from: m.from, to: m.to, state: 'done', at: Date.now() })
    return { ...m, files: size.files - 1, bytes: size.bytes }
  } finally {
    lock.release()
  }
}

/**
 * Before an app's container starts (pvdisk up, volumes up, the OCI hook, a plugin Mount; its
 * new disks already up): brings up the old disks that hold data to move, migrates it, and
 * records where every volume lives now.
 */
export const followVolumes = async (ctx: DiskContext, disks: DiskIndex, volumes: readonly AppVolume[], revision: string, known = knownPlacements(ctx, volumes.map(v => v.app))): Promise<Migration[]> => {
  const moves = planMigrations(ctx, disks, volumes, revision, known)
  const oldDisks = [...new Map(moves.flatMap(m => (m.fromDisk && isProvisionedByPvdisk(m.fromDisk) ? [[m.fromDisk.name, m.fromDisk] as const] : []))).values()]
  if (oldDisks.length > 0) await disksUp(ctx, oldDisks)
  const again = oldDisks.length > 0 ? planMigrations(ctx, disks, volumes, revision, known) : moves // now that the old disks can be read
  const done: Migration[] = []
  for (const m of again) {
    const v = volumes.find(x => x.app === m.app && x.name === m.volume)
    if (v) done.push(await runMigration(ctx, v, m, revision))
  }
  notePlacements(ctx, volumes, revision, known)
  return done
}

/**
 * Before any disk comes up: a volume whose permanent data would go into a boot volume is
 * refused (the same error planMigrations gives), so that nothing is mounted for a state or a
 * plugin volume that cannot start.
 */
export const refuseIntoBoot = (ctx: DiskContext, disks: DiskIndex, volumes: readonly AppVolume[], revision: string, known: KnownPlacements): void => {
  planMigrations(ctx, disks, volumes.filter(v => v.persistence === 'boot'), revision, known)
}

/** records where the volumes live now (written only where that changed) */
export const notePlacements = (ctx: DiskContext, volumes: readonly AppVolume[], revision: string, known = knownPlacements(ctx, volumes.map(v => v.app))): void => {
  for (const app of new Set(volumes.map(v => v.app))) {
    known.byApp.set(app, recordPlacements(ctx, app, volumes.filter(v => v.app === app), revision, recordedOf(ctx, known, app), known.scope, known.writes))
  }
}

/** every place where a recorded volume (of either scope) lives now: gc never removes one as an old copy */
export const livePlaces = (ctx: DiskContext, disks: DiskIndex): Set<string> => {
  const out = new Set<string>()
  for (const scope of ['state', 'plugin'] as const) {
    const dir = placementsDirOf(ctx, scope)
    const files = lstatSync(dir, { throwIfNoEntry: false })?.isDirectory() ? readdirSync(dir, { withFileTypes: true }) : []
    for (const f of files.filter(e => e.isFile() && e.name.endsWith('.json'))) {
      const app = f.name.slice(0, -'.json'.length)
      for (const [name, p] of Object.entries(readPlacements(ctx, app, scope))) {
        const disk = p.disk !== undefined ? resolveDisk(disks, p.disk) : undefined
        if (p.disk !== undefined && !disk) continue // a disk no longer declared: nothing of it is cleaned either
        const src = volumeSource(ctx, { app, name, overlay: false, persistence: p.persistence, ...(disk ? { disk } : {}) }, p.revision ?? '')
        if (src.kind === 'dir') out.add(src.path)
      }
    }
  }
  return out
}

export const migratedLine = (m: Migration): string =>
  `migrated ${m.containerPath ?? m.volume} of ${m.app} (${describePlacement(m.old)} -> ${describePlacement(m.new)}): ${m.files} files, ${m.bytes} bytes, ${m.from} -> ${m.to}`
