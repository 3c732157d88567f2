// Runs the precompiled schema validators and turns their errors into problems a person
// can act on: a stable code, the JSON pointer of the offending value, and a hint.
import { validateDevice, validateRun, validateSrc, type SchemaError } from './generated/validators.js'
import type { DeviceJson, RunJson, SrcJson } from './generated/schema-types.js'
import type { Json } from './json-source.js'
import { appendPointer } from './pointer.js'
import type { FileProblems } from './problems.js'
import { didYouMean } from './suggest.js'

export type FileKind = 'device' | 'src' | 'run'
export type KindData = { device: DeviceJson, src: SrcJson, run: RunJson }

const validators = { device: validateDevice, src: validateSrc, run: validateRun }

export const valueAt = (data: Json, pointer: string): Json | undefined => {
  let cur: Json | undefined = data
  for (const raw of pointer.split('/').slice(1)) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (cur === null || typeof cur !== 'object') return undefined
    cur = Array.isArray(cur) ? cur[Number(token)] : cur[token]
  }
  return cur
}

const jsonType = (v: Json | undefined): string =>
  v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v

const requiredHints: Record<string, string> = {
  path: 'crypt disks need "path": "<absolute image path>,<size in MiB>,<key name>"; directory disks need the directory',
  mode: 'Pantavisor 027 and older have no "mode" and always use the NXP scheme (caam-keygen black blobs, the DCP tool); 028 and later refuse ' +
    'the disk without one. For a disk that 027 or older made, write "mode": "nxp" (the same key files; 027 ignores the field); write "mainline" ' +
    '(kernel trusted keys) only for a new disk or one made with trusted keys',
  provision: 'add "provision": "zram", "file" or a block device',
  format: 'add "format": "ext4"',
  mount_target: 'add "mount_target" with the absolute mount point',
  disks: 'list the sub-disk names in "disks"',
  init_order: 'list the actions in "init_order", e.g. ["primary", "create-primary"]',
  persistence: 'add "persistence": "permanent", "revision" or "boot" (Pantavisor silently drops a volume without it)',
  '#spec': 'add "#spec": "service-manifest-src@1"',
  name: 'give it a "name"',
  type: 'give it a "type", e.g. "dm-crypt-versatile"',
}

// enum errors at these places get a code of their own, shared with the semantic checks
const enumCodes: [RegExp, string][] = [
  [/^\/disks(_v2)?\/\d+\/type$/, 'disk-type-unknown'],
  [/\/persistence$/, 'persistence-type-unknown'],
]

const describeValue = (v: Json | undefined): string => {
  const s = JSON.stringify(v) ?? 'nothing'
  return s.length > 60 ? `${s.slice(0, 57)}...` : s
}

const report = (e: SchemaError, data: Json, problems: FileProblems): void => {
  const at = e.instancePath
  const value = valueAt(data, at)
  switch (e.keyword) {
    case 'if': return // the failing "then" branch is reported on its own
    case 'required': {
      const prop = String(e.params.missingProperty)
      problems.error('schema-required', appendPointer(at, prop), `missing required property "${prop}"`, requiredHints[prop])
      return
    }
    case 'type': {
      const want = String(e.params.type).replace(',', ' or ')
      let hint = `write a ${want}`
      if (at.endsWith('/default') && typeof value === 'boolean') hint = 'Pantavisor only recognises the string "yes"; write "default": "yes"'
      else if (typeof value === 'number' && want === 'string') hint = `quote it: "${String(value)}" (Pantavisor reads every disk field as a string)`
      problems.error('schema-type', at, `must be a ${want}, not ${jsonType(value)}`, hint)
      return
    }
    case 'enum': {
      const allowed = (e.params.allowedValues as Json[]).map(String)
      const code = enumCodes.find(([re]) => re.test(at))?.[1] ?? 'schema-enum'
      let hint = typeof value === 'string' ? didYouMean(value, allowed) : undefined
      if (value === 'built-in') hint = 'pvr writes "built-in" for a missing value; Pantavisor treats it as "boot", so write "boot"'
      if (code === 'disk-type-unknown' && hint === undefined) {
        hint = 'use one of the listed types, or move the disk to disks_v3 where unknown types are skipped'
      }
      problems.error(code, at, `${describeValue(value)} is not one of: ${allowed.join(', ')}`, hint)
      return
    }
    case 'const':
      problems.error('schema-const', at, `must be ${JSON.stringify(e.params.allowedValue)}, not ${describeValue(value)}`,
        `write ${JSON.stringify(e.params.allowedValue)}`)
      return
    case 'pattern':
      problems.error('schema-pattern', at, `${describeValue(value)} is not of the expected form`,
        at.endsWith('/docker_tag') ? 'a tag is letters, digits, "_", "." and "-", at most 128 characters'
          : at.endsWith('/docker_digest') ? 'write "sha256:<64 hex digits>" or "<repository>@sha256:<64 hex digits>"'
            : at.includes('/Env/') ? 'write "NAME=value"' : undefined)
      return
    case 'maxItems':
      problems.error('schema-max-items', at, `has ${Array.isArray(value) ? value.length : '?'} items, at most ${String(e.params.limit)} are allowed`)
      return
    default:
      problems.error(`schema-${e.keyword}`, at, e.message ?? `fails the schema keyword ${e.keyword}`)
  }
}

/** validates against the schema of its kind; returns the typed data when it conforms */
export const checkSchema = <K extends FileKind>(kind: K, data: Json, problems: FileProblems): KindData[K] | undefined => {
  const validate = validators[kind]
  if (validate(data)) return data as KindData[K]
  for (const e of validate.errors ?? []) report(e, data, problems)
  return undefined
}
