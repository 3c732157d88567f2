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
import { writeFileAtomicSync } from '../host/atomic-write.js'
import { mkdirNoFollow } from '../host/no-follow.js'
import { readStateFile } from '../host/state-file.js'
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

export const readPlacements = (ctx: DiskContext, app: string, scope: PlacementScope = 'state'): Record<string, Placement> => {
  const raw = readStateFile(placementsFileOf(ctx, app, scope), hasVolumes, m => ctx.log(`warning: ${m}: where ${app}'s volumes lived is forgotten; none will be migrated this time`))
  const out: Record<string, Placement> = {}
  for (const [k, v] of Object.entries(raw?.volumes ?? {})) if (isPlacement(v)) out[k] = v
  return out
}

/**
 * records where the app's volumes live now, written only when that changed; returns what is
 * recorded, so that a caller holding known need not read the file again
 */
export const recordPlacements = (ctx: DiskContext, app: string, volumes: readonly AppVolume[], revision: string, known: Record<string, Placement>, scope: PlacementScope = 'state'): Record<string, Placement> => {
  if (ctx.runner.planning) return known
  const next: Record<string, Placement> = { ...known }
  let changed = false
  for (const v of volumes) {
    const p = placementOf(v, revision)
    if (known[v.name] && samePlacement(known[v.name] as Placement, p)) continue
    next[v.name] = p
    changed = true
  }
  if (!changed) return known
  const file = placementsFileOf(ctx, app, scope)
  mkdirNoFollow(ctx.root, dirname(file), 0o700)
  writeFileAtomicSync(file, `${JSON.stringify({ volumes: next })}\n`, 0o600)
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
