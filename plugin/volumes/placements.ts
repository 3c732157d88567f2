// Where each app volume lived when it was last brought up (its placement: persistence,
// disk and, for revision volumes, the revision), and the journal of migrations. Both live
// in <root>/var/lib/pvdisk and survive reboots: they are what lets a volume's data follow
// it when a new state moves it to another disk or persistence.
//   placements/<app>.json   {"volumes": {"docker--data": {"persistence", "disk"?, "revision"?}}}
//   placements/plugin/<app>.json   the same for the VolumeDriver plugin's volumes, a history of
//                                  their own (a plugin volume may share its app and name with a
//                                  state's, and the two must not move one another's data)
//   migrations.json         {"migrations": [{app, volume, from, to, state: "copied"|"done", at}]}
import { dirname, join } from 'node:path'
import type { PersistenceType } from '../config/persistence.js'
import { hostPath, type DiskContext } from '../disks/context.js'
import { GroupedFile, writeFileAtomicSync } from '../host/atomic-write.js'
import { mkdirNoFollow } from '../host/no-follow.js'
import { parseStateText, readStateFile, readStateText } from '../host/state-file.js'
import type { AppVolume } from './volumes.js'

export interface Placement {
  persistence: PersistenceType
  disk?: string
  revision?: string
}

export interface MigrationRecord {
  app: string
  volume: string
  from: string
  to: string
  /** copied: verified and synced, about to be renamed into place; done: in place */
  state: 'copied' | 'done'
  /** when it reached its state (ms since the epoch) */
  at: number
}

const dirOf = (ctx: DiskContext): string => hostPath(ctx, '/var/lib/pvdisk')

/** whose volumes: a state's apps (pvdisk up, volumes up, the OCI hook) or the plugin's */
export type PlacementScope = 'state' | 'plugin'

export const placementsDirOf = (ctx: DiskContext, scope: PlacementScope): string =>
  join(dirOf(ctx), 'placements', ...(scope === 'plugin' ? ['plugin'] : []))

export const placementsFileOf = (ctx: DiskContext, app: string, scope: PlacementScope = 'state'): string => join(placementsDirOf(ctx, scope), `${app}.json`)

export const placementOf = (v: AppVolume, revision: string): Placement => ({
  persistence: v.persistence, ...(v.disk ? { disk: v.disk.name } : {}), ...(v.persistence === 'revision' ? { revision } : {}),
})

export const samePlacement = (a: Placement, b: Placement): boolean =>
  a.persistence === b.persistence && a.disk === b.disk && a.revision === b.revision

export const describePlacement = (p: Placement): string =>
  `${p.persistence}${p.disk !== undefined ? `@${p.disk}` : ''}${p.revision !== undefined ? ` (revision ${p.revision})` : ''}`

const isPlacement = (v: unknown): v is Placement => {
  const p = v as Partial<Placement> | null
  return typeof p === 'object' && p !== null && ['permanent', 'revision', 'boot'].includes(p.persistence ?? '') &&
    (p.disk === undefined || typeof p.disk === 'string') && (p.revision === undefined || typeof p.revision === 'string')
}

const hasVolumes = (v: unknown): v is { volumes: Record<string, unknown> } =>
  typeof (v as { volumes?: unknown } | null)?.volumes === 'object' && (v as { volumes: unknown }).volumes !== null

/**
 * The last text this process read or wrote of each placements file, with what it says: the
 * plugin reads its app's file at every first Mount, and parses it again only when its bytes
 * changed. pending: written into a group commit (the plugin's), not yet on disk; what is
 * recorded here is then the newest, whatever the file still says, and its text is made when
 * the write starts (once for every record that write holds, not once per record).
 */
interface Seen { text?: string, placements: Record<string, Placement>, pending: boolean }
const lastSeen = new Map<string, Seen>()
const groupedWrites = new Map<string, GroupedFile>()

const textOf = (placements: Record<string, Placement>): string => `${JSON.stringify({ volumes: placements })}\n`

/** shared between readers: frozen, so that no one changes what another was given */
const frozen = (placements: Record<string, Placement>): Record<string, Placement> => {
  for (const p of Object.values(placements)) Object.freeze(p)
  return Object.freeze(placements)
}

export const readPlacements = (ctx: DiskContext, app: string, scope: PlacementScope = 'state'): Record<string, Placement> => {
  const file = placementsFileOf(ctx, app, scope)
  const seen = lastSeen.get(file)
  if (seen?.pending) return seen.placements
  const warn = (m: string) => ctx.log(`warning: ${m}: where ${app}'s volumes lived is forgotten; none will be migrated this time`)
  const text = readStateText(file, warn)
  if (text !== undefined && seen?.text === text) return seen.placements
  const raw = text === undefined ? undefined : parseStateText(file, text, hasVolumes, warn)
  const out: Record<string, Placement> = {}
  for (const [k, v] of Object.entries(raw?.volumes ?? {})) if (isPlacement(v)) out[k] = v
  if (raw && text !== undefined) lastSeen.set(file, { text, placements: frozen(out), pending: false })
  else lastSeen.delete(file)
  return out
}

/**
 * records where the app's volumes live now, written only when that changed; returns what is
 * recorded, so that a caller holding known need not read the file again. With writes (the
 * plugin's), the write joins a group commit: its promise goes there, to be awaited before
 * the reply; without, the file is written before this returns.
 */
export const recordPlacements = (ctx: DiskContext, app: string, volumes: readonly AppVolume[], revision: string, known: Record<string, Placement>, scope: PlacementScope = 'state', writes?: Promise<void>[]): Record<string, Placement> => {
  if (ctx.runner.planning) return known
  const moved = volumes.filter(v => !known[v.name] || !samePlacement(known[v.name] as Placement, placementOf(v, revision)))
  if (moved.length === 0) return known // most of the time: copying known would cost more than all the rest
  const next: Record<string, Placement> = { ...known }
  for (const v of moved) next[v.name] = placementOf(v, revision)
  const file = placementsFileOf(ctx, app, scope)
  if (!writes) {
    const text = textOf(next)
    mkdirNoFollow(ctx.root, dirname(file), 0o700)
    writeFileAtomicSync(file, text, 0o600)
    lastSeen.set(file, { text, placements: frozen(next), pending: false })
    return next
  }
  const seen: Seen = { placements: frozen(next), pending: true }
  lastSeen.set(file, seen)
  let grouped = groupedWrites.get(file)
  if (!grouped) {
    grouped = new GroupedFile(file, () => {
      const newest = lastSeen.get(file) as Seen // set above before any write of it is asked for
      newest.text ??= textOf(newest.placements)
      return newest.text
    }, 0o600, () => mkdirNoFollow(ctx.root, dirname(file), 0o700))
    groupedWrites.set(file, grouped)
  }
  const written = grouped.write().then(() => {
    if (lastSeen.get(file) === seen) seen.pending = false // nothing newer was recorded meanwhile: the file holds this
  })
  written.catch(() => undefined) // the caller awaits it; this only keeps a failure from going unhandled before then
  writes.push(written)
  return next
}

const journalFileOf = (ctx: DiskContext): string => join(dirOf(ctx), 'migrations.json')

const hasMigrations = (v: unknown): v is { migrations: MigrationRecord[] } => Array.isArray((v as { migrations?: unknown } | null)?.migrations)

export const readJournal = (ctx: DiskContext): MigrationRecord[] =>
  readStateFile(journalFileOf(ctx), hasMigrations, m => ctx.log(`warning: ${m}`))?.migrations.filter(r => typeof r?.from === 'string' && typeof r.to === 'string') ?? []

/** replaces the records of the same volume move with this one (or drops them with record undefined) */
export const writeJournal = (ctx: DiskContext, records: MigrationRecord[]): void => {
  mkdirNoFollow(ctx.root, dirOf(ctx), 0o700)
  writeFileAtomicSync(journalFileOf(ctx), `${JSON.stringify({ migrations: records })}\n`, 0o600)
}

export const journalSet = (ctx: DiskContext, record: MigrationRecord): void =>
  writeJournal(ctx, [...readJournal(ctx).filter(r => !(r.from === record.from && r.to === record.to)), record])
