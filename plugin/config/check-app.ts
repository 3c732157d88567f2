// Semantic checks of a container's src.json persistence and of storage maps (run.json
// storage, device.json volumes), and the run.json storage that src.json implies.
import { resolveDisk, checkUnknownKeys, type DiskIndex } from './check-device.js'
import type { RunVolume } from './generated/schema-types.js'
import { isJsonObject, type Json } from './json-source.js'
import { containerPathError, nameError } from './path-rules.js'
import {
  LXC_OVERLAY, parsePersistenceKey, parsePersistenceValue, toRunVolume, volumeNameOf, type PersistenceKey,
} from './persistence.js'
import { appendPointer } from './pointer.js'
import type { FileProblems } from './problems.js'
import { didYouMean } from './suggest.js'

export type Storage = { [volume: string]: RunVolume }

/** the storage src.json implies, and the container path behind each volume name */
export interface PlannedStorage {
  storage: Storage
  keys: Map<string, PersistenceKey>
}

const SRC_KEYS = ['#spec', 'name', 'template', 'args', 'persistence', 'docker_name', 'docker_tag', 'docker_digest', 'docker_ovl_digest',
  'docker_source', 'docker_platform', 'docker_config', 'config', 'dm_enabled', 'base', 'logs', 'exports', 'format_options', 'pvr',
  'pvr_digest', 'rootfs_url', 'rootfs_digest', '$schema']


/** a disk reference must name a disk or alias that pvdisk can put volumes on */
export const checkDiskRef = (ref: string, at: string, disks: DiskIndex | undefined, problems: FileProblems): void => {
  if (!disks) return // a single file validated alone: nothing to resolve against
  const disk = resolveDisk(disks, ref)
  if (disk?.type === 'swap-disk') {
    problems.error('persistence-disk-unusable', at, `disk "${ref}" is a swap disk and cannot hold volumes`, 'name a crypt, directory or volume disk')
    return
  }
  if (disk) return
  const known = [...disks.disks.keys(), ...disks.aliases.keys()]
  const hint = disks.skipped.has(ref) ? `disk "${ref}" is in disks_v3 with a type this version does not know, so it was skipped`
    : didYouMean(ref, known) ?? (known.length === 0 ? `declare a disk named "${ref}" in device.json "disks"` : `known disks: ${known.join(', ')}`)
  problems.error('persistence-disk-unknown', at, `unknown disk "${ref}"`, hint)
}

/** run.json storage or device.json volumes */
export const checkStorage = (storage: Json | undefined, at: string, disks: DiskIndex | undefined, problems: FileProblems): void => {
  if (!isJsonObject(storage)) return
  for (const [volume, entry] of Object.entries(storage)) {
    const vAt = appendPointer(at, volume)
    const bad = nameError(volume, 'volume')
    if (bad) problems.error(bad.code, vAt, bad.message, bad.hint)
    if (!isJsonObject(entry)) continue
    checkUnknownKeys(entry, ['persistence', 'disk'], vAt, problems)
    if (typeof entry.disk === 'string') {
      if (entry.disk === '') problems.error('persistence-disk-unknown', `${vAt}/disk`, 'the disk name is empty', 'name a disk, or remove "disk"')
      else checkDiskRef(entry.disk, `${vAt}/disk`, disks, problems)
    }
  }
}

interface Planned {
  key: string
  at: string
  parsed: PersistenceKey
  volume?: RunVolume // undefined when the value was invalid
}

const imageVolumes = (src: { [key: string]: Json }): [Json | undefined, string] => {
  // pvr: the image config (docker_config) overridden key by key by src.json "config"
  const config = src.config
  if (isJsonObject(config) && config.Volumes !== undefined && config.Volumes !== null) return [config.Volumes, '/config/Volumes']
  const image = src.docker_config
  return isJsonObject(image) ? [image.Volumes, '/docker_config/Volumes'] : [undefined, '']
}

// pvr ranges over a Go map of trimmed keys ("ovl:" included): byte order
const sortKey = (p: PersistenceKey): Buffer => Buffer.from(`${p.overlay ? 'ovl:' : ''}${p.path}`)
const pvrOrder = (a: Planned, b: Planned): number => Buffer.compare(sortKey(a.parsed), sortKey(b.parsed))

/**
 * Checks src.json and returns the run.json storage it implies, as pvr writes it: image
 * volumes as permanent, persistence entries over them, sorted, lxc-overlay last.
 * Returns undefined when a problem prevents computing it.
 */
export const checkSrc = (data: Json, disks: DiskIndex | undefined, problems: FileProblems): PlannedStorage | undefined => {
  if (!isJsonObject(data)) return undefined
  checkUnknownKeys(data, SRC_KEYS, '', problems)
  if (isJsonObject(data.persistence) && data.docker_name === undefined && data.docker_digest === undefined) {
    problems.warn('src-no-image', '', 'names no image (docker_name or docker_digest), so pvdisk up cannot start it with Docker',
      'set docker_name (and docker_tag) for Docker; LXC (pvdisk volumes up) and the OCI hook need none')
  }
  const before = problems.list.filter(p => p.severity === 'error').length
  const planned = new Map<string, Planned>() // by volume name
  const plan = (key: string, at: string, volume: RunVolume | undefined, fromImage: boolean): void => {
    const parsed = parsePersistenceKey(key)
    if (parsed.path !== LXC_OVERLAY) {
      const bad = containerPathError(key.startsWith('ovl:') ? key.slice(4) : key)
      if (bad) return problems.error(bad.code, at, bad.message, bad.hint)
    }
    const name = volumeNameOf(parsed)
    const first = planned.get(name)
    if (first) {
      const same = first.parsed.path === parsed.path && first.parsed.overlay === parsed.overlay
      if (same && fromImage) return // persistence overrides the image's own volume
      problems.error(same ? 'persistence-path-duplicate' : 'volume-name-collision', at,
        same ? `"${key}" is the same path as "${first.key}"` : `"${key}" and "${first.key}" both become volume "${name}"`,
        same ? 'keep one of them' : 'pvr names volumes by turning "/" into "-"; rename one of the paths')
      return
    }
    planned.set(name, { key, at, parsed, volume })
  }

  const persistence = data.persistence
  if (isJsonObject(persistence)) {
    for (const [key, value] of Object.entries(persistence)) {
      const at = appendPointer('/persistence', key)
      if (typeof value !== 'string') continue // the schema reported it
      const v = parsePersistenceValue(value)
      if (!v.ok) {
        const type = value.split('@')[0] ?? ''
        problems.error(v.code, at, v.message, v.hint ?? didYouMean(type, ['permanent', 'revision', 'boot']) ??
          (type === 'built-in' ? 'Pantavisor treats "built-in" as "boot"; write "boot"' : 'write permanent, revision or boot, optionally @DISK'))
      } else if (v.disk !== undefined) checkDiskRef(v.disk, at, disks, problems)
      plan(key, at, v.ok ? toRunVolume(v) : undefined, false)
    }
  }
  const [volumes, volumesAt] = imageVolumes(data)
  if (isJsonObject(volumes)) {
    for (const key of Object.keys(volumes)) plan(key, appendPointer(volumesAt, key), { persistence: 'permanent' }, true)
  }
  if (problems.list.filter(p => p.severity === 'error').length > before) return undefined

  const storage: Storage = {}
  const keys = new Map<string, PersistenceKey>()
  const sorted = [...planned.values()].filter(p => p.parsed.path !== LXC_OVERLAY).sort(pvrOrder)
  for (const p of sorted) {
    if (!p.volume) continue
    storage[volumeNameOf(p.parsed)] = p.volume
    keys.set(volumeNameOf(p.parsed), p.parsed)
  }
  storage[LXC_OVERLAY] = planned.get(LXC_OVERLAY)?.volume ?? { persistence: 'boot' }
  keys.set(LXC_OVERLAY, { overlay: false, path: LXC_OVERLAY })
  return { storage, keys }
}

/** the same volumes with the same persistence and disk, in whatever order and style: "already right" for validate and app install alike */
export const sameStorage = (a: Json | undefined, b: Storage): boolean => {
  if (!isJsonObject(a)) return false
  const keys = Object.keys(b)
  if (Object.keys(a).length !== keys.length) return false
  return keys.every(k => {
    const x = a[k]
    const y = b[k]
    return isJsonObject(x) && y !== undefined && x.persistence === y.persistence && x.disk === y.disk && Object.keys(x).length === Object.keys(y).length
  })
}

/**
 * pvr before late 2021 read the image config itself and recorded no docker_config in
 * src.json: the image's volumes (plain permanent, "docker-..." names) are then known only
 * from the run.json pvr wrote. They are kept, with a warning, instead of silently dropped.
 */
export const keepImageVolumes = (src: Json, run: Json | undefined, planned: Storage, problems: FileProblems): Storage => {
  if (!isJsonObject(src) || 'docker_config' in src || !isJsonObject(run) || !isJsonObject(run.storage)) return planned
  if (isJsonObject(src.config) && src.config.Volumes !== undefined && src.config.Volumes !== null) return planned
  const kept = Object.entries(run.storage)
    .filter(([name, v]) => !(name in planned) && name.startsWith('docker-') && isJsonObject(v) && v.persistence === 'permanent' && v.disk === undefined)
    .map(([name]) => name).sort()
  if (kept.length === 0) return planned
  problems.warn('image-volumes-kept', '', `records no docker_config (pvr before late 2021 read the image config itself), so the image's volumes are known only from run.json: kept ${kept.join(', ')}`,
    'record the image config in src.json (pvr app update does) so that its volumes are known; remove a kept volume from run.json to drop it')
  const out: Storage = {}
  for (const [name, v] of Object.entries(planned)) if (name !== LXC_OVERLAY) out[name] = v
  for (const name of kept) out[name] = { persistence: 'permanent' }
  out[LXC_OVERLAY] = planned[LXC_OVERLAY] ?? { persistence: 'boot' }
  return out
}

export const checkRun = (data: Json, disks: DiskIndex | undefined, problems: FileProblems, fromSrc?: Storage): void => {
  if (!isJsonObject(data)) return
  checkStorage(data.storage, '/storage', disks, problems)
  if (fromSrc && !sameStorage(data.storage, fromSrc)) {
    problems.warn('run-json-stale', '/storage', 'storage does not match what src.json declares', 'run "pvdisk app install APP" to refresh it')
  }
}
