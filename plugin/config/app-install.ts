// `pvdisk app install APP`: src.json persistence to run.json storage, as pvr does. Every
// other field of an existing run.json is kept; nothing is written when anything is
// invalid or when the storage is already right.
import { promises as fs } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from '../host/atomic-write.js'
import { sameStorage, type PlannedStorage, type Storage } from './check-app.js'
import { isJsonObject } from './json-source.js'
import { mountEntriesOf, newLxcConf, withMountEntries } from './lxc-conf.js'
import { DEFAULT_STYLE, styleOf, stringifyInStyle } from './json-style.js'
import { emptyDiskIndex } from './check-device.js'
import { PvdiskError } from '../errors.js'
import type { Json } from './json-source.js'
import { nameError } from './path-rules.js'
import { FileProblems, InvalidInputError, sortProblems, type Problem } from './problems.js'
import { readJsonFile } from './read-json-file.js'
import { RUN_SPEC, checkApp, checkStateDevice } from './state.js'

export interface InstallResult {
  app: string
  file: string
  changed: boolean
  dryRun: boolean
  storage: Storage
  warnings: Problem[]
  /** the app's lxc.container.conf: its volume mount entries as pvr writes them */
  lxcConf?: { file: string, changed: boolean, created: boolean, diff: string[] }
}

/** what lxc.container.conf becomes: pvr's volume entries replaced (or, for a new app, the template's file) */
const planLxcConf = async (dir: string, app: string, src: Json | undefined, keys: PlannedStorage['keys'], newApp: boolean) => {
  const file = join(dir, 'lxc.container.conf')
  const st = await lstatOrUndefined(file)
  if (st && !st.isFile()) throw new PvdiskError('ESTATE', `${file}: is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}; refusing to replace it`, ['make it a regular file, or remove it'])
  // an app without a config (a volumes-only container, PV_RUNLEVEL=data) gets none, as from pvr
  if (!st && (!newApp || !isJsonObject(src))) return undefined
  const before = st ? await fs.readFile(file, 'utf8') : undefined
  const after = before !== undefined ? withMountEntries(before, app, mountEntriesOf(app, keys.values())) : newLxcConf(app, src as { [k: string]: Json }, keys.values())
  const old = (before ?? '').split('\n')
  const next = after.split('\n')
  const diff = [...old.filter(l => !next.includes(l)).map(l => `- ${l}`), ...next.filter(l => !old.includes(l)).map(l => `+ ${l}`)]
  return { file, before, after, mode: st ? st.mode & 0o7777 : 0o644, result: { file, changed: before !== after, created: before === undefined, diff } }
}

const lstatOrUndefined = (p: string) => fs.lstat(p).catch(() => undefined)

const readExistingRun = async (file: string): Promise<{ value: { [k: string]: Json }, text: string, mode: number } | undefined> => {
  const st = await lstatOrUndefined(file)
  if (!st) return undefined
  if (!st.isFile()) {
    throw new PvdiskError('ESTATE', `${file}: is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}; refusing to replace it`,
      ['make run.json a regular file, or remove it']) 
  }
  const problems = new FileProblems(file)
  const parsed = await readJsonFile(file, problems)
  const v = parsed?.value
  if (!parsed || typeof v !== 'object' || v === null || Array.isArray(v)) {
    if (parsed) problems.error('schema-type', '', 'must be a JSON object', 'fix or remove run.json')
    throw new InvalidInputError(`${file}: cannot update it`, problems.list)
  }
  return { value: v, text: parsed.text, mode: st.mode & 0o7777 }
}

export const installApp = async (stateDir: string, app: string, opts: { dryRun?: boolean } = {}): Promise<InstallResult> => {
  const bad = nameError(app, 'app') ?? (app.startsWith('.') || app.startsWith('_') ? { message: `"${app}" is not an app directory name`, hint: '' } : undefined)
  if (bad) throw new PvdiskError('EUSAGE', `app ${JSON.stringify(app)}: ${bad.message}`, ['give the name of an app directory in the state'])
  const dir = join(stateDir, app)
  const st = await lstatOrUndefined(dir)
  if (!st?.isDirectory()) {
    throw new PvdiskError('ESTATE', `${dir}: ${st?.isSymbolicLink() ? 'is a symbolic link, not an app directory' : st ? 'is not a directory' : 'no such app directory'}`,
      ['give the name of an app directory that holds src.json'])
  }
  const deviceResult = await checkStateDevice(stateDir)
  const disks = deviceResult?.disks ?? emptyDiskIndex()
  const checked = await checkApp(stateDir, app, disks)
  if (!checked?.src) throw new PvdiskError('ESTATE', `${join(dir, 'src.json')}: file not found`, ['app install needs <app>/src.json'])
  const problems = sortProblems([...(deviceResult?.device.problems.list ?? []), ...checked.src.problems.list])
  const errors = problems.filter(p => p.severity === 'error')
  if (errors.length > 0 || !checked.storage) {
    throw new InvalidInputError(`app install ${app}: nothing written, ${errors.length} error${errors.length === 1 ? '' : 's'} in the input`, problems)
  }
  const storage = checked.storage
  const file = join(dir, 'run.json')
  const existing = await readExistingRun(file)
  const result: InstallResult = { app, file, changed: false, dryRun: opts.dryRun === true, storage, warnings: problems }
  const lxc = await planLxcConf(dir, app, checked.src.raw, checked.keys ?? new Map(), existing === undefined)
  if (lxc) result.lxcConf = lxc.result
  // "already right" as validate judges it: order and style do not count
  result.changed = !(existing && sameStorage(existing.value.storage, storage))
  if (opts.dryRun) return result
  if (lxc?.result.changed) await writeFileAtomic(lxc.file, lxc.after, lxc.mode)
  if (!result.changed) return result
  const next: { [k: string]: unknown } = existing ? { ...existing.value, storage } : { '#spec': RUN_SPEC, name: app, storage }
  const text = stringifyInStyle(next, existing ? styleOf(existing.text, existing.value) : DEFAULT_STYLE)
  await writeFileAtomic(file, text, existing?.mode ?? 0o644)
  return result
}
