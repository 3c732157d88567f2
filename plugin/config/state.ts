// Layer config/ (above host/): every file pvdisk reads, read strictly and checked against
// schemas/ and Pantavisor's rules, each problem with file, pointer, line and hint; the
// state model (disk index, apps, planned storage) the layers above work from; and
// `app install`, the one command that writes config. It runs no command and mounts nothing.
//
// Loading and validating a state directory (device.json at its root, <app>/src.json and
// <app>/run.json) or single files. All problems are collected; nothing is written.
import { policyFromEnv, signatureProblems } from './pvs/policy.js'
import { promises as fs, lstatSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { checkRun, checkSrc } from './check-app.js'
import { emptyDiskIndex, type DiskIndex } from './check-device.js'
import type { DeviceJson, RunJson, SrcJson } from './generated/schema-types.js'
import { isJsonObject, type Json } from './json-source.js'
import { nameError } from './path-rules.js'
import { FileProblems, sortProblems, type Problem } from './problems.js'
import { readJsonFile } from './read-json-file.js'
import type { FileKind } from './schema-check.js'
import { LEGACY_FILES, isLegacyFile, readLegacyDevice, type LegacyFile } from './legacy-device.js'
import { checkStateJson, isStateJson } from './state-json.js'
import { checkVerity } from './verity.js'
import {
  RUN_SPEC, SRC_SPEC, appProblems, checkAppParts, checkDeviceChecked, checkedFrom, specOf, type AppState, type CheckedFile, type LoadedState,
} from './state-parts.js'

export { RUN_SPEC, SRC_SPEC, appProblems, type AppState, type CheckedFile, type LoadedState } from './state-parts.js'

const exists = (path: string): boolean => lstatSync(path, { throwIfNoEntry: false }) !== undefined

/** reads a file and checks it against its kind's schema */
export const readChecked = async <K extends FileKind>(kind: K, file: string): Promise<CheckedFile<K>> => {
  const problems = new FileProblems(file)
  return checkedFrom(kind, file, problems, (await readJsonFile(file, problems))?.value)
}

export const checkDeviceFile = async (file: string): Promise<{ device: CheckedFile<'device'>, disks: DiskIndex }> =>
  checkDeviceChecked(await readChecked('device', file))

const legacyFilesIn = (stateDir: string): LegacyFile[] => (Object.keys(LEGACY_FILES) as LegacyFile[]).filter(n => exists(join(stateDir, n)))

/**
 * A state's device: its device.json, else the legacy disks.json, disks_v3.json and
 * groups.json at its root, as Pantavisor reads them; undefined when it has none of these.
 */
export const checkStateDevice = async (stateDir: string): Promise<{ device: CheckedFile<'device'>, disks: DiskIndex } | undefined> => {
  const result = await deviceOf(stateDir)
  // a signed state is checked before anything in it is used
  result?.device.problems.list.push(...signatureProblems(stateDir, policyFromEnv()))
  return result
}

const deviceOf = async (stateDir: string): Promise<{ device: CheckedFile<'device'>, disks: DiskIndex } | undefined> => {
  const legacy = legacyFilesIn(stateDir)
  const devicePath = join(stateDir, 'device.json')
  if (exists(devicePath)) {
    const result = await checkDeviceFile(devicePath)
    for (const name of legacy) {
      const ignored = new FileProblems(join(stateDir, name))
      ignored.warn('legacy-file-ignored', '', 'is ignored: the state has a device.json (Pantavisor ignores it too)', `move what it declares into device.json "${LEGACY_FILES[name]}", then remove ${name}`)
      result.device.problems.list.push(...ignored.list)
    }
    return result
  }
  if (legacy.length === 0) return undefined
  const { file, raw, problems } = readLegacyDevice(stateDir, legacy)
  return checkDeviceChecked(checkedFrom('device', file, problems, raw))
}

/** for commands that need disks: the state's device, or device.json's own "cannot read" problem */
export const requireStateDevice = async (stateDir: string): Promise<{ device: CheckedFile<'device'>, disks: DiskIndex }> =>
  (await checkStateDevice(stateDir)) ?? checkDeviceFile(join(stateDir, 'device.json'))

/** checks one app directory against the device's disks */
export const checkApp = async (stateDir: string, name: string, disks: DiskIndex | undefined): Promise<AppState | undefined> => {
  const dir = join(stateDir, name)
  const src = exists(join(dir, 'src.json')) ? await readChecked('src', join(dir, 'src.json')) : undefined
  const run = exists(join(dir, 'run.json')) ? await readChecked('run', join(dir, 'run.json')) : undefined
  const app = checkAppParts(name, dir, src, run, disks)
  if (app && run?.raw !== undefined) {
    const { volumes, problems } = checkVerity(name, dir, run.raw, run.problems, src?.raw)
    app.verity = volumes
    app.manifests = problems
  }
  return app
}

const listApps = async (dir: string, top: FileProblems): Promise<string[]> => {
  const names: string[] = []
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('_') || entry.name.startsWith('.')) continue // _sigs, _config, _hostconfig, hidden
    if (entry.isSymbolicLink()) {
      if (exists(join(dir, entry.name, 'src.json'))) {
        top.warn('app-symlink', '', `app directory "${entry.name}" is a symbolic link and is ignored`, 'keep apps as real directories in the state')
      }
      continue
    }
    if (!entry.isDirectory()) continue
    const bad = nameError(entry.name, 'app')
    if (bad) {
      top.error(bad.code, '', `${bad.message} (directory ${JSON.stringify(entry.name)})`, bad.hint)
      continue
    }
    names.push(entry.name)
  }
  return names.sort()
}

/** loads and validates a whole state directory */
export const loadState = async (dir: string): Promise<LoadedState> => {
  const top = new FileProblems(dir)
  const st = await fs.stat(dir).catch(() => undefined)
  if (!st?.isDirectory()) {
    top.error('state-not-found', '', st ? 'is not a directory' : 'does not exist', 'give the state directory (a pvr checkout) with --state (validate, up and down also take it as PATH)')
    return { dir, disks: emptyDiskIndex(), apps: [], problems: top.list }
  }
  const [deviceResult, names] = await Promise.all([
    checkStateDevice(dir),
    listApps(dir, top).catch(e => {
      top.error('state-unreadable', '', `cannot list the directory: ${(e as Error).message}`, 'check its permissions')
      return []
    }),
  ])
  const disks = deviceResult?.disks ?? emptyDiskIndex()
  const apps = (await Promise.all(names.map(n => checkApp(dir, n, disks)))).filter((a): a is AppState => a !== undefined)
  if (!deviceResult) {
    top.list.push(...signatureProblems(dir, policyFromEnv()))
    if (apps.length === 0) {
      top.error('state-empty', '', 'has no device.json (nor disks.json or groups.json) and no <app>/src.json or <app>/run.json', 'is this a state directory (a pvr checkout)?')
    } else {
      top.warn('device-json-missing', '', 'has no device.json, so no disks are declared', 'create device.json at the root of the state')
    }
  }
  const problems = [
    ...top.list,
    ...(deviceResult?.device.problems.list ?? []),
    ...apps.flatMap(appProblems),
  ]
  const state: LoadedState = { dir, disks, apps, problems: sortProblems(problems) }
  if (deviceResult) state.device = deviceResult.device
  return state
}

const kindOfFile = (file: string, raw: Json | undefined): FileKind | undefined => {
  const name = basename(file)
  if (name === 'device.json') return 'device'
  if (name === 'src.json') return 'src'
  if (name === 'run.json') return 'run'
  const spec = specOf(raw)
  if (spec === SRC_SPEC) return 'src'
  if (spec === RUN_SPEC) return 'run'
  if (isJsonObject(raw) && ['disks', 'disks_v2', 'disks_v3', 'volumes', 'groups'].some(k => k in raw)) return 'device'
  return undefined
}

/** validates one file on its own (disk references are not resolved); the file is read once */
export const validateFile = async (file: string): Promise<Problem[]> => {
  const name = basename(file)
  if (isLegacyFile(name)) {
    const legacy = readLegacyDevice(dirname(file), [name])
    return checkDeviceChecked(checkedFrom('device', legacy.file, legacy.problems, legacy.raw)).device.problems.list
  }
  const problems = new FileProblems(file)
  const parsed = await readJsonFile(file, problems)
  if (!parsed) return problems.list
  if (isStateJson(parsed.value)) return [...checkStateJson(file, parsed.value, problems), ...signatureProblems(file, policyFromEnv())]
  const kind = kindOfFile(file, parsed.value)
  if (kind === undefined) {
    problems.error('file-kind-unknown', '', 'is not recognisably a device.json, src.json, run.json, legacy disks.json or groups.json, or a state JSON',
      'name the file device.json, src.json or run.json, or give it a "#spec"')
    return problems.list
  }
  if (kind === 'device') return checkDeviceChecked(checkedFrom('device', file, problems, parsed.value)).device.problems.list
  const checked = checkedFrom(kind, file, problems, parsed.value)
  if (kind === 'src') checkSrc(parsed.value, undefined, checked.problems)
  else checkRun(parsed.value, undefined, checked.problems)
  return checked.problems.list
}

/** PATH arguments: each a state directory or a single file */
export const validatePaths = async (paths: string[]): Promise<Problem[]> => {
  const results = await Promise.all(paths.map(async p => {
    const st = await fs.stat(p).catch(() => undefined)
    return st?.isDirectory() ? (await loadState(p)).problems : validateFile(p)
  }))
  return sortProblems(results.flat())
}

export type { DeviceJson, RunJson, SrcJson }
