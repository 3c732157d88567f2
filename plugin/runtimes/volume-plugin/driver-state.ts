// What the plugin remembers: its volumes and, per volume, the caller IDs that have it
// mounted. Written atomically after every change, so it survives a plugin restart.
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from '../../host/atomic-write.js'
import type { PersistenceType } from '../../config/persistence.js'

export interface DriverVolume {
  name: string
  app: string
  persistence: PersistenceType
  disk?: string
  /** caller IDs that have it mounted */
  mountedBy: string[]
  createdAt: string
}

export interface DriverState {
  volumes: Record<string, DriverVolume>
}

export const loadDriverState = (file: string): DriverState =>
  existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as DriverState : { volumes: {} }

export const saveDriverState = async (file: string, state: DriverState): Promise<void> => {
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 })
  await writeFileAtomic(file, JSON.stringify(state, null, 2) + '\n', 0o600)
}
