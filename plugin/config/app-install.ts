// `pvdisk app install APP`: src.json persistence to run.json storage, as pvr does. Every
// other field of an existing run.json is kept; nothing is written when anything is
// invalid or when the storage is already right.
import { promises as fs } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from '../host/atomic-write.js'
import { sameStorage, type Storage } from './check-app.js'
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
  if (existing && sameStorage(existing.value.storage, storage)) return result // as validate judges it: order and style do not count
  const next: { [k: string]: unknown } = existing ? { ...existing.value, storage } : { '#spec': RUN_SPEC, name: app, storage }
  result.changed = true
  if (opts.dryRun) return result
  const text = stringifyInStyle(next, existing ? styleOf(existing.text, existing.value) : DEFAULT_STYLE)
  await writeFileAtomic(file, text, existing?.mode ?? 0o644)
  return result
}
