// A whole state in one file, as Pantavisor keeps it and pvr exports it: a JSON object with
// "#spec": "pantavisor-service-system@1" whose keys are the state's paths (device.json,
// <app>/src.json, <app>/run.json, ...) and whose JSON entries are inline. It is checked as
// the state directory it stands for; every problem is placed in the one file, at
// /<entry>/<pointer in the entry>, with its line and column.
import { emptyDiskIndex, type DiskIndex } from './check-device.js'
import { isJsonObject, type Json } from './json-source.js'
import { LEGACY_FILES, legacyDeviceOf, type LegacyFile } from './legacy-device.js'
import { appendPointer } from './pointer.js'
import { FileProblems, type Problem, type Severity } from './problems.js'
import { checkAppParts, checkDeviceChecked, checkedFrom, isBsp } from './state-parts.js'

export const STATE_SPECS = ['pantavisor-service-system@1', 'pantavisor-multi-platform@1']

export const isStateJson = (raw: Json | undefined): raw is { [key: string]: Json } =>
  isJsonObject(raw) && typeof raw['#spec'] === 'string' && STATE_SPECS.includes(raw['#spec'])

/** the problems of one entry, placed in the state JSON below /<entry> */
class EntryProblems extends FileProblems {
  constructor(private readonly base: FileProblems, private readonly prefix: string) {
    super(base.file)
  }

  override add(severity: Severity, code: string, pointer: string, message: string, hint?: string): void {
    this.base.add(severity, code, this.prefix + pointer, message, hint)
    const placed = this.base.list.pop()
    if (placed) this.list.push(placed)
  }

  override has(pointer: string, severity: Severity = 'error'): boolean {
    return this.list.some(p => p.pointer === this.prefix + pointer && p.severity === severity)
  }
}

const LEGACY = Object.keys(LEGACY_FILES) as LegacyFile[]

export const checkStateJson = (file: string, state: { [key: string]: Json }, base: FileProblems): Problem[] => {
  const sinks: FileProblems[] = [base]
  const entry = (key: string): FileProblems => {
    const p = new EntryProblems(base, appendPointer('', key))
    sinks.push(p)
    return p
  }
  const legacy = LEGACY.filter(n => n in state)
  let disks: DiskIndex = emptyDiskIndex()
  if ('device.json' in state) {
    disks = checkDeviceChecked(checkedFrom('device', file, entry('device.json'), state['device.json'])).disks
    for (const name of legacy) entry(name).warn('legacy-file-ignored', '', `${name} is ignored: the state has a device.json (Pantavisor ignores it too)`, `move what it declares into device.json "${LEGACY_FILES[name]}"`)
  } else if (legacy.length > 0) {
    const parts = legacy.map(name => ({ name, problems: entry(name), value: state[name] }))
    const primary = parts.find(p => p.name === 'disks.json') ?? parts[0]
    const device = legacyDeviceOf(file, primary?.problems ?? base, parts)
    sinks.push(device.problems)
    disks = checkDeviceChecked(checkedFrom('device', file, device.problems, device.raw)).disks
  }
  const apps = new Set(Object.keys(state).map(k => /^([^/]+)\/(src|run)\.json$/.exec(k)?.[1]).filter((a): a is string => a !== undefined && !/^[_.]/.test(a)))
  for (const app of [...apps].sort()) {
    if (isBsp(app, state[`${app}/src.json`], `${app}/src.json` in state)) continue
    const part = <K extends 'src' | 'run'>(kind: K) => {
      const key = `${app}/${kind}.json`
      return key in state ? checkedFrom(kind, file, entry(key), state[key]) : undefined
    }
    checkAppParts(app, file, part('src'), part('run'), disks)
  }
  return sinks.flatMap(s => s.list)
}
