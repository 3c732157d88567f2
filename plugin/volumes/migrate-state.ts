// `pvdisk migrate [--dry-run]`: the migrations a state's apps need, listed with their sizes,
// or done, without starting anything (pvdisk up and the hooks do the same before a start).
import { resolve } from 'node:path'
import type { DiskEntry } from '../config/check-device.js'
import { InvalidInputError } from '../config/problems.js'
import { loadState } from '../config/state.js'
import { liveKernel, type DiskContext } from '../disks/context.js'
import { backendFor, disksUp, isProvisionedByPvdisk } from '../disks/engine.js'
import { ProcessRunner } from '../host/run.js'
import { followVolumes, measureMigration, planMigrations, type Migration } from './migrate.js'
import { appVolumes, currentRevision } from './volumes.js'

export interface MigrateOptions {
  state: string
  root: string
  revision?: string
  dryRun: boolean
  log?: (m: string) => void
}

export interface Listed extends Migration {
  /** for a dry run: the sizes are unknown while the old disk is down */
  unknownSize?: string
}

export const stateMigrations = async (opts: MigrateOptions): Promise<Listed[]> => {
  const state = await loadState(opts.state)
  const errors = state.problems.filter(p => p.severity === 'error')
  if (errors.length > 0) throw new InvalidInputError(`${opts.state}: ${errors.length} error(s) in the state; nothing migrated`, state.problems)
  const ctx: DiskContext = { root: resolve(opts.root), runner: new ProcessRunner(), kernel: liveKernel, log: opts.log ?? (() => undefined) }
  const revision = currentRevision(opts.revision)
  const volumes = state.apps.filter(a => a.storage).flatMap(a => appVolumes(a, state.disks))
  if (opts.dryRun) {
    return planMigrations(ctx, state.disks, volumes, revision).map(m => (m.fromDisk && isProvisionedByPvdisk(m.fromDisk) && backendFor(ctx, m.fromDisk)?.status().state !== 'mounted'
      ? { ...m, unknownSize: `disk "${m.fromDisk.name}" is not up` }
      : measureMigration(m)))
  }
  const needed = new Map<string, DiskEntry>()
  for (const v of volumes) if (v.disk && isProvisionedByPvdisk(v.disk)) needed.set(v.disk.name, v.disk)
  await disksUp(ctx, [...needed.values()])
  return followVolumes(ctx, state.disks, volumes, revision)
}
