// Checks on the parts of a state once they are read, wherever they come from: files in a
// state directory (state.ts) or the entries of a state JSON (state-json.ts).
import { checkRun, checkSrc, checkStorage, keepImageVolumes, type PlannedStorage, type Storage } from './check-app.js'
import { checkDevice, emptyDiskIndex, type DiskIndex } from './check-device.js'
import { isJsonObject, type Json } from './json-source.js'
import type { FileProblems, Problem } from './problems.js'
import { checkSchema, type FileKind, type KindData } from './schema-check.js'
import type { VerityVolume } from './verity.js'

export const SRC_SPEC = 'service-manifest-src@1'
export const RUN_SPEC = 'service-manifest-run@1'

export interface CheckedFile<K extends FileKind> {
  file: string
  raw?: Json // the parsed JSON, when it parsed
  data?: KindData[K] // typed, when it conforms to its schema
  problems: FileProblems
}

export interface AppState {
  name: string
  dir: string
  src?: CheckedFile<'src'>
  run?: CheckedFile<'run'>
  /** the run.json storage src.json implies, when src.json is valid */
  storage?: Storage
  /** the container path behind each volume name */
  keys?: PlannedStorage['keys']
  /** run.json's dm: (verity) volumes that can be opened, and their manifests' problems */
  verity?: VerityVolume[]
  manifests?: FileProblems[]
}

/** every problem found in an app's files */
export const appProblems = (app: AppState | undefined): Problem[] =>
  [...(app?.src?.problems.list ?? []), ...(app?.run?.problems.list ?? []), ...(app?.manifests ?? []).flatMap(m => m.list)]

export interface LoadedState {
  dir: string
  device?: CheckedFile<'device'>
  disks: DiskIndex
  apps: AppState[]
  problems: Problem[]
}

/** checks a file already read (raw undefined when it did not parse) against its kind's schema */
export const checkedFrom = <K extends FileKind>(kind: K, file: string, problems: FileProblems, raw: Json | undefined): CheckedFile<K> => {
  if (raw === undefined) return { file, problems }
  const data = checkSchema(kind, raw, problems)
  return data === undefined ? { file, raw, problems } : { file, raw, data, problems }
}

/** device.json's semantic checks, and the disks volumes may use */
export const checkDeviceChecked = (device: CheckedFile<'device'>): { device: CheckedFile<'device'>, disks: DiskIndex } => {
  if (device.raw === undefined) return { device, disks: emptyDiskIndex() }
  const disks = checkDevice(device.raw, device.problems)
  checkStorage(isJsonObject(device.raw) ? device.raw.volumes : undefined, '/volumes', disks, device.problems)
  return { device, disks }
}

export const specOf = (raw: Json | undefined): unknown => (isJsonObject(raw) ? raw['#spec'] : undefined)

/** bsp/ holds the board support package (its src.json is bsp-manifest-src@1, or it has none), not a container */
export const isBsp = (name: string, srcRaw: Json | undefined, hasSrc: boolean): boolean => {
  if (name !== 'bsp') return false
  const spec = specOf(srcRaw)
  return !hasSrc || (typeof spec === 'string' && spec !== SRC_SPEC && spec.endsWith('@1'))
}

/**
 * One app from its src.json and run.json, already read and schema-checked (either may be
 * absent); undefined when it is no container: the BSP, or a directory with neither.
 */
export const checkAppParts = (name: string, dir: string, src: CheckedFile<'src'> | undefined, run: CheckedFile<'run'> | undefined, disks: DiskIndex | undefined): AppState | undefined => {
  if ((!src && !run) || isBsp(name, src?.raw, src !== undefined)) return undefined
  const app: AppState = { name, dir }
  if (src) {
    app.src = src
    const planned = src.raw === undefined ? undefined : checkSrc(src.raw, disks, src.problems)
    if (planned) {
      app.storage = planned.storage
      app.keys = planned.keys
    }
  }
  if (run) {
    app.run = run
    if (app.storage && app.src?.raw !== undefined) app.storage = keepImageVolumes(app.src.raw, run.raw, app.storage, app.src.problems)
    if (run.raw !== undefined) checkRun(run.raw, disks, run.problems, app.storage)
  }
  return app
}
