// src.json persistence: keys (container paths) and values ("TYPE" or "TYPE@DISK"), and
// the volume names pvr derives from them for run.json storage.
import type { RunVolume } from './generated/schema-types.js'

export const PERSISTENCE_TYPES = ['permanent', 'revision', 'boot'] as const
export type PersistenceType = (typeof PERSISTENCE_TYPES)[number]

export const isPersistenceType = (s: string): s is PersistenceType =>
  (PERSISTENCE_TYPES as readonly string[]).includes(s)

export const LXC_OVERLAY = 'lxc-overlay'
export const OVL_PREFIX = 'ovl:'

export interface PersistenceKey {
  overlay: boolean // "ovl:" prefix: a copy-on-write layer over the image content
  path: string // the container path without prefix and trailing "/", or "lxc-overlay"
}

export const parsePersistenceKey = (key: string): PersistenceKey => {
  if (key === LXC_OVERLAY) return { overlay: false, path: LXC_OVERLAY }
  const overlay = key.startsWith(OVL_PREFIX)
  const raw = overlay ? key.slice(OVL_PREFIX.length) : key
  return { overlay, path: raw.length > 1 && raw.endsWith('/') ? raw.slice(0, -1) : raw }
}

/** pvr's naming: "docker-" (or "dockerovl-") + the path with "/" turned into "-" */
export const volumeNameOf = (key: PersistenceKey): string =>
  key.path === LXC_OVERLAY ? LXC_OVERLAY : `${key.overlay ? 'dockerovl-' : 'docker-'}${key.path.replace(/\//g, '-')}`

export type PersistenceValue =
  | { ok: true, persistence: PersistenceType, disk?: string }
  | { ok: false, code: string, message: string, hint?: string }

export const parsePersistenceValue = (value: string): PersistenceValue => {
  const parts = value.split('@')
  if (parts.length > 2) {
    return { ok: false, code: 'persistence-value-syntax', message: `${JSON.stringify(value)} has more than one "@"`, hint: 'write TYPE or TYPE@DISK' }
  }
  const [type = '', disk] = parts
  if (!isPersistenceType(type)) {
    return { ok: false, code: 'persistence-type-unknown', message: `persistence type ${JSON.stringify(type)} is not permanent, revision or boot` }
  }
  if (disk === undefined) return { ok: true, persistence: type }
  if (disk === '') return { ok: false, code: 'persistence-value-syntax', message: `${JSON.stringify(value)} names no disk after "@"`, hint: 'write TYPE@DISK, or TYPE alone' }
  return { ok: true, persistence: type, disk }
}

export const toRunVolume = (v: { persistence: PersistenceType, disk?: string }): RunVolume =>
  v.disk === undefined ? { persistence: v.persistence } : { persistence: v.persistence, disk: v.disk }
