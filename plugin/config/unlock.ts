// The "unlock" field of pvdisk's own encrypted disks (dm-crypt-luks2, fscrypt): a key file
// next to the image, or Clevis pins (tpm2, tang, or a Shamir "sss" combination of them).
// Parsed into the exact Clevis configuration the disk engine binds with, and a summary for
// status and plan. Nothing here is secret: pins hold policies and URLs, never keys.
import { isJsonObject, type Json } from './json-source.js'
import { appendPointer } from './pointer.js'
import type { FileProblems } from './problems.js'

export type ClevisPin = 'tpm2' | 'tang' | 'sss'

export type UnlockSpec =
  | { kind: 'keyfile', summary: string }
  | { kind: 'clevis', pin: ClevisPin, config: { [key: string]: Json }, summary: string }

const BANKS = ['sha1', 'sha256', 'sha384', 'sha512']
const PCR_LIST = /^(?:[0-9]|1[0-9]|2[0-3])(?:,(?:[0-9]|1[0-9]|2[0-3]))*$/

/** a key file next to the data: the unlock of a disk that declares none */
export const KEYFILE_UNLOCK: UnlockSpec = { kind: 'keyfile', summary: 'keyfile' }

type Leaf = { config: { [key: string]: Json }, summary: string }

const tpm2 = (v: Json, at: string, problems: FileProblems): Leaf | undefined => {
  if (!isJsonObject(v)) {
    problems.error('unlock-invalid', at, 'a tpm2 pin is an object', 'write {"pcrs": "7"} (the PCRs the key is sealed to), or {} for no PCR policy')
    return undefined
  }
  const pcrs = v.pcrs ?? v.pcr_ids
  if (pcrs !== undefined && (typeof pcrs !== 'string' || !PCR_LIST.test(pcrs))) {
    problems.error('unlock-pcrs-invalid', appendPointer(at, 'pcrs' in v ? 'pcrs' : 'pcr_ids'), `PCRs ${JSON.stringify(pcrs)} are not a comma-separated list of PCR numbers 0 to 23`, 'write e.g. "7" or "0,7"')
    return undefined
  }
  const bank = v.pcr_bank ?? 'sha256'
  if (typeof bank !== 'string' || !BANKS.includes(bank)) {
    problems.error('unlock-bank-invalid', appendPointer(at, 'pcr_bank'), `PCR bank ${JSON.stringify(bank)} is not one of ${BANKS.join(', ')}`, 'leave it out for sha256')
    return undefined
  }
  // Clevis's own default bank is sha1; pvdisk asks for sha256 unless told otherwise
  const config: { [key: string]: Json } = { pcr_bank: bank, ...(pcrs === undefined ? {} : { pcr_ids: pcrs }) }
  return { config, summary: pcrs === undefined ? 'tpm2 (no PCR policy)' : `tpm2 (PCR ${pcrs}, ${bank})` }
}

const tang = (v: Json, at: string, problems: FileProblems): Leaf | undefined => {
  if (!isJsonObject(v) || typeof v.url !== 'string' || !/^https?:\/\/[^\s/]+/.test(v.url)) {
    problems.error('unlock-invalid', isJsonObject(v) ? appendPointer(at, 'url') : at, 'a tang pin needs "url", the Tang server (http:// or https://)',
      'write {"url": "http://tang.example:7500"}, and "thp" with the server key thumbprint to refuse an impostor at first init')
    return undefined
  }
  if (v.thp !== undefined && (typeof v.thp !== 'string' || !/^[A-Za-z0-9_-]{16,}$/.test(v.thp))) {
    problems.error('unlock-invalid', appendPointer(at, 'thp'), '"thp" is not a key thumbprint', 'write the output of `tang-show-keys` on the server')
    return undefined
  }
  return { config: { url: v.url, ...(v.thp === undefined ? {} : { thp: v.thp }) }, summary: `tang (${v.url})` }
}

const LEAVES = { tpm2, tang } as const

const sss = (v: Json, at: string, problems: FileProblems): Leaf | undefined => {
  if (!isJsonObject(v) || !isJsonObject(v.pins)) {
    problems.error('unlock-invalid', at, 'an sss pin needs "t" and "pins"', 'write {"t": 1, "pins": {"tpm2": {"pcrs": "7"}, "tang": {"url": "..."}}}')
    return undefined
  }
  const pins: { [key: string]: Json } = {}
  const parts: string[] = []
  let count = 0
  for (const [name, value] of Object.entries(v.pins)) {
    const leaf = LEAVES[name as keyof typeof LEAVES]
    if (!leaf) {
      problems.error('unlock-pin-unknown', appendPointer(appendPointer(at, 'pins'), name), `unknown pin "${name}"`, 'pins are tpm2 and tang')
      return undefined
    }
    const list = Array.isArray(value) ? value : [value]
    const made: Json[] = []
    for (const [i, item] of list.entries()) {
      const here = appendPointer(appendPointer(at, 'pins'), name)
      const r = leaf(item, Array.isArray(value) ? appendPointer(here, String(i)) : here, problems)
      if (!r) return undefined
      made.push(r.config)
      parts.push(r.summary)
    }
    pins[name] = made
    count += made.length
  }
  const threshold = v.t
  if (typeof threshold !== 'number' || !Number.isInteger(threshold) || threshold < 1 || threshold > count) {
    problems.error('unlock-threshold-invalid', appendPointer(at, 't'), `threshold ${JSON.stringify(threshold)} is not a whole number from 1 to the ${count} pins`, '"t": 1 unlocks with any one pin')
    return undefined
  }
  return { config: { t: threshold, pins }, summary: `sss (${threshold} of: ${parts.join(', ')})` }
}

/** the unlock field of a disk, or undefined (with an error reported) when it is not usable */
export const parseUnlock = (v: Json | undefined, at: string, problems: FileProblems): UnlockSpec | undefined => {
  if (v === undefined || v === 'keyfile') return KEYFILE_UNLOCK
  if (isJsonObject(v)) {
    const keys = Object.keys(v)
    const pin = keys[0] as ClevisPin
    if (keys.length === 1 && (pin === 'tpm2' || pin === 'tang' || pin === 'sss')) {
      const r = (pin === 'sss' ? sss : LEAVES[pin])(v[pin] as Json, appendPointer(at, pin), problems)
      return r && { kind: 'clevis', pin, ...r }
    }
  }
  problems.error('unlock-invalid', at, `unlock ${JSON.stringify(v)} is not "keyfile" or one pin`,
    'write "keyfile", {"tpm2": {"pcrs": "7"}}, {"tang": {"url": "..."}} or {"sss": {"t": 1, "pins": {...}}}')
  return undefined
}
