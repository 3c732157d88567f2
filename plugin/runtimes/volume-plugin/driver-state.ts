// What the plugin remembers: its volumes and, per volume, the caller IDs that have it
// mounted. Written atomically after every change, so it survives a plugin restart.
import { dirname, join } from 'node:path'
import { GroupedFile } from '../../host/atomic-write.js'
import { mkdirNoFollow } from '../../host/no-follow.js'
import { readStateFile } from '../../host/state-file.js'
import type { PersistenceType } from '../../config/persistence.js'

export interface DriverVolume {
  name: string
  app: string
  persistence: PersistenceType
  disk?: string
  /** a verity volume: the dm: volume of app this is (-o verity=VOL) */
  verity?: string
  /** caller IDs that have it mounted */
  mountedBy: string[]
  createdAt: string
}

export interface DriverState {
  volumes: Record<string, DriverVolume>
}

const isRecord = (v: unknown): v is DriverVolume => {
  const r = v as Partial<DriverVolume> | null
  return typeof r === 'object' && r !== null && typeof r.name === 'string' && typeof r.app === 'string' &&
    ['permanent', 'revision', 'boot'].includes(r.persistence ?? '') && (r.disk === undefined || typeof r.disk === 'string') && (r.verity === undefined || typeof r.verity === 'string') &&
    Array.isArray(r.mountedBy) && r.mountedBy.every(id => typeof id === 'string') && typeof r.createdAt === 'string'
}

const hasVolumes = (v: unknown): v is { volumes: Record<string, unknown> } => {
  const volumes = (v as { volumes?: unknown } | null)?.volumes
  return typeof volumes === 'object' && volumes !== null && !Array.isArray(volumes)
}

/**
 * The state as saved. A damaged file is moved aside with a warning (host/state-file.ts) and
 * the plugin starts with no volumes; a record that is not a volume is dropped, with a warning.
 */
/** where the plugin keeps its state, below root */
export const driverStateFileOf = (root: string): string => join(root, 'var/lib/pvdisk/volume-driver.json')

export const loadDriverState = (file: string, warn: (message: string) => void = () => undefined): DriverState => {
  const out: DriverState = { volumes: {} }
  for (const [name, v] of Object.entries(readStateFile(file, hasVolumes, m => warn(`${m}: Docker's volumes of driver pvdisk must be created again`))?.volumes ?? {})) {
    if (isRecord(v) && v.name === name) out.volumes[name] = v
    else warn(`${file}: dropped the record of "${name}", which is not a volume record`)
  }
  return out
}

/** the plugin's volumes below root, for the commands that list or move them (migrate, plan) */
export const recordedPluginVolumes = (root: string, warn?: (message: string) => void): DriverVolume[] => Object.values(loadDriverState(driverStateFileOf(root), warn).volumes)

/** the plugin's writes of its state (compact: written for every group of requests) */
export const driverStateWriter = (root: string, file: string, state: () => DriverState): GroupedFile =>
  new GroupedFile(file, () => `${JSON.stringify(state())}\n`, 0o600, () => mkdirNoFollow(root, dirname(file), 0o700))
