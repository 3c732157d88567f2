// `pvdisk migrate [--dry-run]`: the migrations a state's apps need, and those of the plugin's
// volumes created again elsewhere, listed with their sizes, or done, without starting
// anything (pvdisk up, the hooks and the plugin do the same before a start).
import { resolve } from 'node:path'
import type { DiskEntry, DiskIndex } from '../config/check-device.js'
import type { PersistenceType } from '../config/persistence.js'
import { InvalidInputError } from '../config/problems.js'
import { loadState } from '../config/state.js'
import { liveKernel, type DiskContext } from '../disks/context.js'
import { backendFor, disksUp, isProvisionedByPvdisk } from '../disks/engine.js'
import { ProcessRunner } from '../host/run.js'
import { followVolumes, knownPlacements, measureMigration, planMigrations, type KnownPlacements, type Migration } from './migrate.js'
import { appVolumes, currentRevision, recordedVolume, type AppVolume } from './volumes.js'

export interface MigrateOptions {
  state: string
  root: string
  revision?: string
  dryRun: boolean
  /** the VolumeDriver plugin's volumes, as its state file records them */
  pluginVolumes?: readonly PluginVolume[]
  log?: (m: string) => void
}

export interface PluginVolume {
  name: string
  app: string
  persistence: PersistenceType
  disk?: string
  verity?: string
}

export interface Listed extends Migration {
  /** for a dry run: the sizes are unknown while the old disk is down */
  unknownSize?: string
  /** a plugin volume's (the plugin would move it at its first Mount) */
  plugin?: true
}

/** the plugin's records as volumes; not those of a disk declared no more, nor verity volumes (read-only, never moved) */
const asVolumes = (disks: DiskIndex, records: readonly PluginVolume[]): AppVolume[] => records.flatMap(r => {
  const v = recordedVolume(disks, r)
  return r.verity !== undefined || (r.disk !== undefined && !v.disk) ? [] : [v]
})

export const stateMigrations = async (opts: MigrateOptions): Promise<Listed[]> => {
  const state = await loadState(opts.state)
  const errors = state.problems.filter(p => p.severity === 'error')
  if (errors.length > 0) throw new InvalidInputError(`${opts.state}: ${errors.length} error(s) in the state; nothing migrated`, state.problems)
  const ctx: DiskContext = { root: resolve(opts.root), runner: new ProcessRunner(), kernel: liveKernel, log: opts.log ?? (() => undefined) }
  const revision = currentRevision(opts.revision)
  const groups: { volumes: AppVolume[], known: KnownPlacements, plugin: boolean }[] = [false, true].map(plugin => {
    const volumes = plugin ? asVolumes(state.disks, opts.pluginVolumes ?? []) : state.apps.filter(a => a.storage).flatMap(a => appVolumes(a, state.disks))
    return { volumes, known: knownPlacements(ctx, volumes.map(v => v.app), plugin ? 'plugin' : 'state'), plugin }
  })
  const mark = (plugin: boolean) => (m: Listed): Listed => (plugin ? { ...m, plugin: true } : m)
  if (opts.dryRun) {
    return groups.flatMap(g => planMigrations(ctx, state.disks, g.volumes, revision, g.known).map(m => (m.fromDisk && isProvisionedByPvdisk(m.fromDisk) && backendFor(ctx, m.fromDisk)?.status().state !== 'mounted'
      ? { ...m, unknownSize: `disk "${m.fromDisk.name}" is not up` }
      : measureMigration(m))).map(mark(g.plugin)))
  }
  const needed = new Map<string, DiskEntry>()
  for (const v of groups.flatMap(g => g.volumes)) if (v.disk && isProvisionedByPvdisk(v.disk)) needed.set(v.disk.name, v.disk)
  await disksUp(ctx, [...needed.values()])
  const out: Listed[] = []
  for (const g of groups) out.push(...(await followVolumes(ctx, state.disks, g.volumes, revision, g.known)).map(mark(g.plugin)))
  return out
}
