// Pantavisor's dm: volumes (dm-verity), read as its scripts/volmount/verity/dm reads them:
// run.json names a volume "dm:<file>" (in root-volume, volumes, modules or firmware), and
// <app>/_dm/<file>.json holds {"type": "dm-verity", "data_device", "hash_device",
// "root_hash"} with both devices relative to the app's directory. pvr dm-convert adds
// "salt" and "uuid". In a Docker or OCI container the volume goes where src.json's
// args.PV_VOLUME_MOUNTS ("<file>:<path>,...") puts it, as pvr's template does for LXC.
import { lstatSync } from 'node:fs'
import { join } from 'node:path'
import { isJsonObject, type Json } from './json-source.js'
import { containerPathError, nameError } from './path-rules.js'
import { FileProblems } from './problems.js'
import { readJsonFileSync } from './read-json-file.js'

export interface VerityVolume {
  app: string
  /** the volume's file name in the app directory, as run.json names it after "dm:" */
  name: string
  manifest: string
  data: string
  hash: string
  rootHash: string
  /** where PV_VOLUME_MOUNTS puts it in a Docker or OCI container */
  containerPath?: string
}

/** the run.json keys Pantavisor's verity handler looks at */
export const DM_KEYS = ['root-volume', 'volumes', 'modules', 'firmware'] as const

export const DM_PREFIX = 'dm:'

/** every "dm:" reference of a run.json, with its pointer, in the file's order */
export const dmRefsOf = (run: Json | undefined): { name: string, pointer: string }[] => {
  if (!isJsonObject(run)) return []
  const out: { name: string, pointer: string }[] = []
  for (const key of DM_KEYS) {
    const v = run[key]
    const items: [Json, string][] = Array.isArray(v) ? v.map((x, i) => [x, `/${key}/${i}`]) : v === undefined ? [] : [[v, `/${key}`]]
    for (const [x, pointer] of items) if (typeof x === 'string' && x.startsWith(DM_PREFIX)) out.push({ name: x.slice(DM_PREFIX.length), pointer })
  }
  return out
}

/** src.json args.PV_VOLUME_MOUNTS: volume file name to container path */
export const volumeMountsOf = (src: Json | undefined): Map<string, string> => {
  const args = isJsonObject(src) ? src.args : undefined
  const list = isJsonObject(args) ? args.PV_VOLUME_MOUNTS : undefined
  const out = new Map<string, string>()
  if (typeof list !== 'string') return out
  for (const item of list.split(',')) {
    const at = item.indexOf(':')
    if (at <= 0) continue
    const target = item.slice(at + 1).trim()
    out.set(item.slice(0, at).trim(), target.startsWith('/') ? target : `/${target}`)
  }
  return out
}

export const HEX64 = /^[0-9a-fA-F]{64}$/

/** a device path of a manifest: relative to the app directory, without "..", ".", empty or control parts */
const devicePathError = (p: string): string | undefined => {
  if (p.startsWith('/')) return 'is an absolute path; Pantavisor reads it relative to the app directory'
  if (/[\u0000-\u001f\u007f]/.test(p)) return 'contains a control character'
  if (/\s/.test(p)) return 'contains whitespace, which Pantavisor\'s handler splits on'
  if (p.split('/').some(s => s === '' || s === '.' || s === '..')) return 'has an empty, "." or ".." component'
  return undefined
}

/** the first symbolic link or non-directory on the way to a file below dir, or a non-file at its end */
export const fileProblem = (dir: string, rel: string): string | undefined => {
  const parts = rel.split('/')
  let cur = dir
  for (const [i, part] of parts.entries()) {
    cur = join(cur, part)
    const st = lstatSync(cur, { throwIfNoEntry: false })
    if (!st) return `${cur} does not exist`
    if (st.isSymbolicLink()) return `${cur} is a symbolic link, which pvdisk does not follow`
    if (i < parts.length - 1 ? !st.isDirectory() : !st.isFile()) return `${cur} is not a ${i < parts.length - 1 ? 'directory' : 'regular file'}`
  }
  return undefined
}

const checkDevice = (raw: { [k: string]: Json }, key: 'data_device' | 'hash_device', appDir: string, problems: FileProblems, needFiles: boolean): string | undefined => {
  const v = raw[key]
  if (typeof v !== 'string') {
    problems.error('verity-manifest-field', `/${key}`, v === undefined ? `has no "${key}"` : `"${key}" is not a string`, 'write the file name relative to the app directory, as pvr dm-convert does')
    return undefined
  }
  const bad = devicePathError(v)
  if (bad) {
    problems.error('verity-device-path', `/${key}`, `${JSON.stringify(v)} ${bad}`, 'name a file in the app directory, e.g. "root.squashfs"')
    return undefined
  }
  // a warning: a checkout may lack its objects (a state JSON, pvr without objects); the volume is refused when it is mounted
  const missing = needFiles ? fileProblem(appDir, v) : undefined
  if (missing) problems.warn('verity-device-missing', `/${key}`, `${missing}: the volume cannot be mounted`, key === 'hash_device' ? 'make the hash tree with pvdisk verity make APP VOL (or pvr dm-convert)' : 'put the image into the state (pvr get), or drop the "dm:" volume')
  return join(appDir, v)
}

/** one manifest, checked; undefined when it cannot be used */
const checkManifest = (app: string, appDir: string, name: string, problems: FileProblems, needFiles: boolean): VerityVolume | undefined => {
  const parsed = readJsonFileSync(problems.file, problems)
  if (!parsed) return undefined
  const raw = parsed.value
  if (!isJsonObject(raw)) {
    problems.error('verity-manifest-type', '', 'is not a JSON object', 'write {"type": "dm-verity", "data_device", "hash_device", "root_hash"}')
    return undefined
  }
  if (raw.type !== 'dm-verity') {
    problems.warn('verity-manifest-type', '/type', raw.type === undefined ? 'has no "type"' : `type ${JSON.stringify(raw.type)} is not "dm-verity"`, 'Pantavisor opens every dm: volume with veritysetup; write "type": "dm-verity"')
  }
  const data = checkDevice(raw, 'data_device', appDir, problems, needFiles)
  const hash = checkDevice(raw, 'hash_device', appDir, problems, needFiles)
  const root = raw.root_hash
  if (typeof root !== 'string' || !HEX64.test(root)) {
    problems.error('verity-root-hash', '/root_hash', root === undefined ? 'has no "root_hash"' : 'root_hash is not 64 hex digits (a sha256 root hash)', 'make the manifest again with pvdisk verity make APP VOL')
  }
  if (data !== undefined && data === hash) problems.error('verity-device-same', '/hash_device', 'the hash device is the data image itself', `name the hash tree file, e.g. "${name}.hash"`)
  if (data === undefined || hash === undefined || typeof root !== 'string' || !HEX64.test(root) || data === hash) return undefined
  return { app, name, manifest: problems.file, data, hash, rootHash: root.toLowerCase() }
}

/**
 * The app's dm: volumes: each reference in run.json checked (its name, its manifest, the
 * files it names, unless needFiles is false), with the manifests' own problems.
 */
export const checkVerity = (app: string, appDir: string, run: Json | undefined, runProblems: FileProblems, src: Json | undefined, needFiles = true): { volumes: VerityVolume[], problems: FileProblems[] } => {
  const volumes: VerityVolume[] = []
  const problems: FileProblems[] = []
  const mounts = volumeMountsOf(src)
  const seen = new Set<string>()
  for (const { name, pointer } of dmRefsOf(run)) {
    const bad = nameError(name, 'volume')
    if (bad) {
      runProblems.error('verity-name-invalid', pointer, `dm: volume: ${bad.message}`, bad.hint)
      continue
    }
    if (seen.has(name)) continue
    seen.add(name)
    const manifest = join(appDir, '_dm', `${name}.json`)
    const st = lstatSync(manifest, { throwIfNoEntry: false })
    if (!st?.isFile()) {
      runProblems.error('verity-manifest-missing', pointer, `"dm:${name}" has no manifest: ${manifest} ${st ? 'is not a regular file' : 'does not exist'}`,
        `make it with pvdisk verity make ${app} ${name} (what pvr dm-convert does), or drop the "dm:" prefix`)
      continue
    }
    const own = new FileProblems(manifest)
    problems.push(own)
    const v = checkManifest(app, appDir, name, own, needFiles)
    if (!v) continue
    const target = mounts.get(name)
    if (target !== undefined) {
      const wrong = containerPathError(target)
      if (wrong) runProblems.error('verity-mount-path', pointer, `PV_VOLUME_MOUNTS puts ${name} at ${wrong.message}`, wrong.hint)
      else v.containerPath = target
    }
    volumes.push(v)
  }
  return { volumes, problems }
}
