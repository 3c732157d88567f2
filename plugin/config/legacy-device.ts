// States from before device.json keep their disks and groups in files at the state root:
// disks.json (a strict array, as device.json "disks"), disks_v3.json (lenient, as
// "disks_v3") and groups.json. Pantavisor still reads them when there is no device.json
// (parser_system1.c system1_parse_disks, system1_parse_groups) and ignores them, with a
// warning, when there is one. pvdisk checks them as the device.json they stand for, and
// reports every problem in the file and at the pointer where it is.
import { join } from 'node:path'
import type { Json } from './json-source.js'
import { FileProblems, type Severity } from './problems.js'
import { readJsonFileSync } from './read-json-file.js'

/** each legacy file and the device.json key it stands for */
export const LEGACY_FILES = { 'disks.json': 'disks', 'disks_v3.json': 'disks_v3', 'groups.json': 'groups' } as const
export type LegacyFile = keyof typeof LEGACY_FILES

export const isLegacyFile = (name: string): name is LegacyFile => Object.prototype.hasOwnProperty.call(LEGACY_FILES, name)

/** problems found at /disks/3/name of the device.json they stand for land in disks.json at /3/name */
export class LegacyProblems extends FileProblems {
  private readonly byKey = new Map<string, FileProblems>()

  constructor(private readonly primary: FileProblems) {
    super(primary.file)
  }

  route(key: string, file: FileProblems): void {
    this.byKey.set(key, file)
  }

  private target(pointer: string): { file: FileProblems, pointer: string } {
    const key = pointer.split('/')[1] ?? ''
    const file = this.byKey.get(key)
    return file ? { file, pointer: pointer.slice(key.length + 1) } : { file: this.primary, pointer: '' }
  }

  override add(severity: Severity, code: string, pointer: string, message: string, hint?: string): void {
    const { file, pointer: at } = this.target(pointer)
    file.add(severity, code, at, message, hint)
    const placed = file.list.pop()
    if (placed) this.list.push(placed)
  }

  override has(pointer: string, severity: Severity = 'error'): boolean {
    const { file, pointer: at } = this.target(pointer)
    return this.list.some(p => p.file === file.file && p.pointer === at && p.severity === severity)
  }
}

export interface LegacyDevice {
  /** the file problems without a place are reported in: disks.json, else the first present */
  file: string
  /** the device.json the files stand for, or undefined when one did not parse */
  raw: Json | undefined
  problems: LegacyProblems
}

/** the device.json that legacy parts stand for; a part whose value is undefined did not parse */
export const legacyDeviceOf = (file: string, primary: FileProblems, parts: { name: LegacyFile, problems: FileProblems, value: Json | undefined }[]): LegacyDevice => {
  const problems = new LegacyProblems(primary)
  const device: { [key: string]: Json } = {}
  let parsedAll = true
  for (const part of parts) {
    if (part.value === undefined) {
      parsedAll = false
      continue
    }
    problems.route(LEGACY_FILES[part.name], part.problems)
    device[LEGACY_FILES[part.name]] = part.value
  }
  // without groups.json Pantavisor loads its default groups; the disks are processed either way
  if (!('groups' in device)) device.groups = []
  return { file, raw: parsedAll ? device : undefined, problems }
}

/** reads the legacy files present in stateDir (names from LEGACY_FILES) as one device.json */
export const readLegacyDevice = (stateDir: string, present: LegacyFile[]): LegacyDevice => {
  const primary = join(stateDir, present.includes('disks.json') ? 'disks.json' : present[0] ?? 'disks.json')
  const unreadable: FileProblems[] = []
  const parts = present.map(name => {
    const own = new FileProblems(join(stateDir, name))
    const value = readJsonFileSync(join(stateDir, name), own)?.value
    unreadable.push(own)
    return { name, problems: own, value }
  })
  const legacy = legacyDeviceOf(primary, new FileProblems(primary), parts)
  for (const own of unreadable) legacy.problems.list.push(...own.list.splice(0)) // unreadable or malformed: reported as it is
  return legacy
}
