// Semantic checks of device.json beyond its schema: names, aliases, crypt paths, image
// and key collisions, defaults, dual sub-disks. Works on partly invalid data so that one
// run reports every problem; returns the index of usable disks for volume references.
import { imageDir, pantavisorDmName, parseCryptPath, type CryptPath } from './crypt-path.js'
import { checkOwnDisk, OWN_TYPES } from './check-own-disk.js'
import { checkProvisioned } from './check-provisioned.js'
import { isJsonObject, type Json } from './json-source.js'
import { hostPathError, isPortableName, nameError } from './path-rules.js'
import { appendPointer } from './pointer.js'
import type { FileProblems } from './problems.js'
import { closest, didYouMean } from './suggest.js'
import type { UnlockSpec } from './unlock.js'

export const DISK_ARRAYS = ['disks', 'disks_v2', 'disks_v3'] as const
export type DiskArray = (typeof DISK_ARRAYS)[number]
export const CRYPT_TYPES = ['dm-crypt-versatile', 'dm-crypt-caam', 'dm-crypt-dcp']
export const DISK_TYPES = ['directory', 'volume-disk', ...CRYPT_TYPES, 'swap-disk', 'dual', ...OWN_TYPES]
const DISK_KEYS = ['name', 'type', 'path', 'mode', 'format', 'provision', 'provision_options', 'format_options',
  'mount_options', 'mount_target', 'default', 'uuid', 'aliases', 'migrate_keyblob', 'disks', 'init_order', 'options', 'unlock', 'recovery_key']
const DEVICE_KEYS = ['$schema', ...DISK_ARRAYS, 'volumes', 'groups', 'network', 'remount']
const CRYPT_IGNORED = ['format', 'provision', 'provision_options', 'format_options', 'mount_target']

export interface DiskEntry {
  name: string
  type: string
  pointer: string
  fields: { [key: string]: Json }
  crypt?: CryptPath
  /** fscrypt: the vault directory */
  vault?: string
  /** dm-crypt-luks2 and fscrypt: how the key is unlocked */
  unlock?: UnlockSpec
  subDisks?: DiskEntry[] // dual: its sub-disks, primary first, when every one resolves to a usable disk
}

export interface DiskIndex {
  disks: Map<string, DiskEntry>
  /** alias to canonical name */
  aliases: Map<string, string>
  /** names of disks_v3 entries skipped for an unknown type */
  skipped: Set<string>
}

export const emptyDiskIndex = (): DiskIndex => ({ disks: new Map(), aliases: new Map(), skipped: new Set() })

export const resolveDisk = (index: DiskIndex, ref: string): DiskEntry | undefined =>
  index.disks.get(index.aliases.get(ref) ?? ref)


/** a warning for keys that look like typos of known ones (unknown keys are otherwise accepted) */
export const checkUnknownKeys = (obj: { [key: string]: Json }, known: readonly string[], at: string, problems: FileProblems): void => {
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue
    const misspelt: Record<string, string> = { provision_ops: 'provision_options', format_ops: 'format_options' }
    const suggestion = misspelt[key] ?? closest(key, known)
    if (suggestion !== undefined) {
      problems.warn('unknown-key', appendPointer(at, key),
        `unknown key "${key}" is ignored`, `did you mean "${suggestion}"?`)
    }
  }
}

const checkName = (name: string, at: string, what: string, problems: FileProblems): boolean => {
  const e = nameError(name, what)
  if (e) {
    problems.error(e.code, at, e.message, e.hint)
    return false
  }
  if (!isPortableName(name)) {
    problems.warn(`${what}-name-unportable`, at, `${JSON.stringify(name)} has characters outside letters, digits, "_", ".", "+" and "-"`,
      name.includes('@') ? 'a name with "@" cannot be referenced as TYPE@DISK from src.json; rename it' : 'rename it to stay safe in paths and tools')
  }
  return true
}

const checkDisk = (disk: { [key: string]: Json }, at: string, array: DiskArray, problems: FileProblems): DiskEntry | undefined => {
  const { name, type, path } = disk
  checkUnknownKeys(disk, DISK_KEYS, at, problems)
  if (typeof name !== 'string' || typeof type !== 'string') return undefined
  if (!checkName(name, `${at}/name`, 'disk', problems)) return undefined
  if (!DISK_TYPES.includes(type)) {
    if (array === 'disks_v3') {
      problems.warn('disk-type-unknown', `${at}/type`, `disk "${name}" has unknown type "${type}" and is skipped`,
        didYouMean(type, DISK_TYPES) ?? 'Pantavisor skips it too; volumes cannot use it')
    }
    return undefined // strict arrays: the schema reported it
  }
  const entry: DiskEntry = { name, type, pointer: at, fields: disk }
  if (OWN_TYPES.includes(type)) {
    const facts = checkOwnDisk(disk, type, name, at, array !== 'disks_v3', problems)
    return facts && { ...entry, ...facts }
  }
  if (CRYPT_TYPES.includes(type)) {
    if (typeof path === 'string') {
      const parsed = parseCryptPath(path)
      if ('error' in parsed) problems.error(parsed.error.code, `${at}/path`, parsed.error.message, parsed.error.hint)
      else {
        entry.crypt = parsed.value
        if (type === 'dm-crypt-caam' && !parsed.value.v2) {
          problems.error('caam-needs-v2', `${at}/path`, 'dm-crypt-caam paths need the "-v2 " prefix: Pantavisor 028 and later refuse the disk without it',
            `for 028 and later write "-v2 ${path}" (with "mode": "nxp" for a disk that 027 or older made: the same key files). ` +
            '027 and older took the path without the prefix, and cannot mount a "-v2 " path (that is what it is for): a device that must boot both needs one device.json per version')
        }
      }
    }
    for (const key of CRYPT_IGNORED) {
      if (key in disk) problems.warn('field-ignored', `${at}/${key}`, `"${key}" is ignored for ${type} disks`, 'crypt disks are always ext4; remove it')
    }
  } else if ((type === 'directory' || (type === 'volume-disk' && 'provision' in disk)) && typeof path === 'string') {
    const e = hostPathError(path)
    if (e) problems.error(e.code, `${at}/path`, e.message, e.hint)
  }
  if (typeof disk.mount_target === 'string') {
    const e = hostPathError(disk.mount_target)
    if (e) problems.error(e.code, `${at}/mount_target`, e.message, e.hint)
  }
  checkProvisioned(disk, type, at, problems)
  if (type === 'dual' && array !== 'disks_v3') {
    problems.warn('dual-not-in-v3', at, `dual disk "${name}" is in ${array}`, 'declare dual disks in disks_v3 so that older Pantavisor versions still boot')
  }
  if (typeof disk.default === 'string' && disk.default !== 'yes') {
    problems.warn('default-ignored', `${at}/default`, `"default": ${JSON.stringify(disk.default)} has no effect`, 'only the string "yes" makes a default disk; remove it otherwise')
  }
  if (disk.default === 'yes' && CRYPT_TYPES.includes(type)) {
    problems.warn('default-crypt', `${at}/default`, `default crypt disk "${name}" is never mounted by Pantavisor for volumes without "disk"`,
      'Pantavisor then writes such volumes unencrypted; name the disk in each volume instead')
  }
  return entry
}

const checkCollisions = (entries: DiskEntry[], problems: FileProblems): void => {
  const byImage = new Map<string, DiskEntry>()
  const byKey = new Map<string, DiskEntry>()
  const byDmName = new Map<string, DiskEntry>()
  for (const e of entries) {
    if (!e.crypt) continue
    const { image, keyName } = e.crypt
    const sameImage = byImage.get(image)
    if (sameImage) {
      problems.error('crypt-image-shared', `${e.pointer}/path`, `disk "${e.name}" uses the same image as disk "${sameImage.name}" (${sameImage.pointer})`,
        'give each crypt disk its own image file')
      continue
    }
    byImage.set(image, e)
    const keyId = `${imageDir(image)}/${keyName}`
    const sameKey = byKey.get(keyId)
    if (sameKey) {
      problems.error('crypt-key-shared', `${e.pointer}/path`,
        `disk "${e.name}" uses key "${keyName}" in the same directory as disk "${sameKey.name}": they would share one key and one init_done marker`,
        'give each disk its own key name or image directory')
    } else byKey.set(keyId, e)
    const dm = pantavisorDmName(image)
    const sameDm = byDmName.get(dm)
    if (sameDm) {
      problems.warn('crypt-image-name-collision', `${e.pointer}/path`,
        `disks "${sameDm.name}" and "${e.name}" have images with the same file name: Pantavisor would map both as /dev/mapper/${dm}`,
        'pvdisk keeps them apart, but rename one image if Pantavisor may run this state')
    } else byDmName.set(dm, e)
  }
}

const checkAliases = (entries: DiskEntry[], index: DiskIndex, problems: FileProblems): void => {
  for (const e of entries) {
    const aliases = e.fields.aliases
    if (!Array.isArray(aliases)) continue
    aliases.forEach((alias, i) => {
      const at = `${e.pointer}/aliases/${i}`
      if (typeof alias !== 'string') return
      if (alias === '') return problems.error('alias-empty', at, `disk "${e.name}" has an empty alias`, 'remove it')
      const other = index.disks.get(alias)
      if (other && other !== e) {
        return problems.error('alias-collides-name', at, `alias "${alias}" of disk "${e.name}" is the name of another disk (${other.pointer})`,
          'remove the alias or rename one of the disks')
      }
      const owner = index.aliases.get(alias)
      if (owner !== undefined && owner !== e.name) {
        return problems.error('alias-duplicate', at, `alias "${alias}" is also an alias of disk "${owner}"`, 'an alias must name exactly one disk')
      }
      if (alias.includes('@')) problems.warn('disk-name-unportable', at, `alias "${alias}" contains "@"`, 'it cannot be referenced as TYPE@DISK from src.json')
      if (other !== e) index.aliases.set(alias, e.name)
    })
  }
}

const checkDefaults = (entries: DiskEntry[], problems: FileProblems): void => {
  const defaults = entries.filter(e => e.fields.default === 'yes')
  for (const e of defaults.slice(1)) {
    problems.error('default-duplicate', `${e.pointer}/default`, `disk "${e.name}" is a second default disk (the first is "${defaults[0]?.name}")`,
      'mark exactly one disk "default": "yes"')
  }
}

const checkDual = (entries: DiskEntry[], index: DiskIndex, problems: FileProblems): void => {
  for (const e of entries) {
    if (e.type !== 'dual' || !Array.isArray(e.fields.disks)) continue
    const subs = e.fields.disks.map(sub => (typeof sub === 'string' ? resolveDisk(index, sub) : undefined))
    if (subs.length > 0 && subs.every(d => d !== undefined && d.type !== 'dual' && d.type !== 'swap-disk')) e.subDisks = subs as DiskEntry[]
    e.fields.disks.forEach((sub, i) => {
      if (typeof sub !== 'string') return
      const target = resolveDisk(index, sub)
      if (!target) {
        problems.error('dual-disk-unknown', `${e.pointer}/disks/${i}`, `dual disk "${e.name}" names unknown disk "${sub}"`,
          didYouMean(sub, index.disks.keys()) ?? 'declare the sub-disk too')
      } else if (target.type === 'dual' || target.type === 'swap-disk') {
        problems.error('dual-disk-unusable', `${e.pointer}/disks/${i}`, `dual disk "${e.name}" cannot use ${target.type} "${sub}" as a sub-disk`,
          'use crypt or volume disks as sub-disks')
      }
    })
  }
}

/** checks device.json and returns the disks that volumes may reference */
export const checkDevice = (data: Json, problems: FileProblems): DiskIndex => {
  const index = emptyDiskIndex()
  if (!isJsonObject(data)) return index
  checkUnknownKeys(data, DEVICE_KEYS, '', problems)
  if (!('groups' in data)) {
    problems.warn('groups-missing', '', 'no "groups": Pantavisor ignores the disks and volumes of such a device.json (pvdisk processes them)',
      'add "groups", e.g. Pantavisor\'s defaults data, root, platform and app')
  }
  const entries: DiskEntry[] = []
  for (const array of DISK_ARRAYS) {
    const list = data[array]
    if (!Array.isArray(list)) continue
    if (list.length === 0) {
      problems.error('disks-empty', `/${array}`, `"${array}" is empty: Pantavisor refuses such a state ("empty disks array", "cannot parse disks")`, `remove "${array}" or declare a disk in it`)
    }
    list.forEach((disk, i) => {
      const at = `/${array}/${i}`
      if (!isJsonObject(disk)) return
      const entry = checkDisk(disk, at, array, problems)
      if (!entry) {
        if (array === 'disks_v3' && typeof disk.name === 'string') index.skipped.add(disk.name)
        return
      }
      const first = index.disks.get(entry.name)
      if (first) {
        problems.error('disk-name-duplicate', `${at}/name`, `disk name "${entry.name}" is already used at ${first.pointer}`, 'give every disk a unique name')
        return
      }
      index.disks.set(entry.name, entry)
      entries.push(entry)
    })
  }
  checkAliases(entries, index, problems)
  checkCollisions(entries, problems)
  checkDefaults(entries, problems)
  checkDual(entries, index, problems)
  return index
}
