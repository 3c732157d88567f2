// `pvdisk verity make APP VOLUME`: what `pvr dm-convert APP VOLUME` does, crash-safe. The
// image <app>/<volume> is hashed with `veritysetup format` into <volume>.hash; the manifest
// _dm/<volume>.json gets pvr's canonical JSON ({data_device, hash_device, root_hash, salt,
// type, uuid}); src.json gets "dm_enabled": {VOLUME: true}, as pvr records it; and run.json's
// reference becomes "dm:VOLUME". Each file is replaced atomically, in that order, so a
// crash at any point leaves either the plain volume or a complete verity volume, and
// running the command again finishes the job. Data blocks are the filesystem's own block
// size (at most 4 KiB), so ext4 with 1 KiB blocks mounts as well as squashfs.
import { lstatSync, readFileSync, renameSync, rmSync, realpathSync } from 'node:fs'
import { join } from 'node:path'
import { isJsonObject, parseJson, type Json } from '../config/json-source.js'
import { styleOf, stringifyInStyle } from '../config/json-style.js'
import { nameError } from '../config/path-rules.js'
import { DM_KEYS, DM_PREFIX, HEX64 } from '../config/verity.js'
import { hostPath, type DiskContext } from '../disks/context.js'
import { imageKindOf } from '../disks/verity.js'
import { PvdiskError } from '../errors.js'
import { fsyncPath, writeFileAtomic } from '../host/atomic-write.js'
import { mkdirNoFollow } from '../host/no-follow.js'

export interface VerityMade {
  app: string
  volume: string
  rootHash: string
  blockSize: number
  /** the files written, in order; empty when the volume was already made */
  written: string[]
}

const usage = (message: string, hint: string): PvdiskError => new PvdiskError('EUSAGE', message, [hint])

const readJson = (file: string): { text: string, value: Json } | undefined => {
  if (!lstatSync(file, { throwIfNoEntry: false })?.isFile()) return undefined
  const text = readFileSync(file, 'utf8')
  try {
    return { text, value: parseJson(text).value }
  } catch (e) {
    throw usage(`${file}: not valid JSON (${(e as Error).message})`, 'fix it first: pvdisk validate shows where')
  }
}

/** run.json with the volume's reference turned into dm:VOLUME (undefined when it names the volume nowhere) */
export const dmifiedRun = (run: Json, volume: string): Json | undefined => {
  if (!isJsonObject(run)) return undefined
  const out: { [k: string]: Json } = { ...run }
  let found = false
  for (const key of DM_KEYS) {
    const v = out[key]
    if (typeof v === 'string' && (v === volume || v === DM_PREFIX + volume)) {
      out[key] = DM_PREFIX + volume
      found = true
    } else if (Array.isArray(v) && v.some(x => x === volume || x === DM_PREFIX + volume)) {
      out[key] = v.map(x => (x === volume ? DM_PREFIX + volume : x))
      found = true
    }
  }
  return found ? out : undefined
}

/** the data block size: the filesystem's block size (at most 4096) that divides the image size */
export const blockSizeFor = (size: number, fsBlock: number | undefined): number => {
  for (let bs = Math.min(fsBlock ?? 4096, 4096); bs >= 512; bs /= 2) if (size % bs === 0) return bs
  throw usage(`the image's size (${size} bytes) is not a multiple of 512 bytes`, 'pad the image (mksquashfs pads to 4 KiB unless -nopad is given)')
}

/** the image is no container's: not in use by a loop device, not writable by group or others, not inside a volume */
const refuseInUse = (ctx: DiskContext, image: string, mode: number): void => {
  const real = realpathSync(image)
  const loop = ctx.kernel.loops().find(l => l.backingFile === real)
  if (loop) throw new PvdiskError('EDISK', `${image} is in use by ${loop.node} (mounted or opened); refusing to hash an image that may change`, ['unmount it and detach the loop device (pvdisk volumes down APP), then run this again'])
  if ((mode & 0o022) !== 0) throw new PvdiskError('EDISK', `${image} is writable by ${(mode & 0o002) ? 'everyone' : 'its group'} (mode ${(mode & 0o777).toString(8)})`, [`chmod go-w ${image}, then run this again`])
  for (const dir of ['/media/pv/dmcrypt', '/storage/disks', '/volumes']) {
    const d = hostPath(ctx, dir)
    if (real.startsWith(`${d}/`)) throw new PvdiskError('EDISK', `${image} lies in ${d}, where containers write`, ['keep the image in the state directory'])
  }
}

/** `veritysetup format` output: Root hash, Salt and UUID */
export const parseFormatOutput = (out: string): { rootHash: string, salt: string, uuid: string } => {
  const field = (name: string): string => new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(out)?.[1] ?? ''
  const rootHash = field('Root hash')
  if (!HEX64.test(rootHash)) throw new PvdiskError('ECOMMAND', 'veritysetup format printed no sha256 root hash', [out.split('\n').slice(-3).join(' ')])
  return { rootHash, salt: field('Salt'), uuid: field('UUID') }
}

/** the manifest as pvr writes it: canonical JSON (keys sorted, no spaces, no final newline) */
export const manifestText = (m: Record<string, string>): string =>
  JSON.stringify(Object.fromEntries(Object.keys(m).sort().map(k => [k, m[k]])))

export const makeVerity = async (ctx: DiskContext, stateDir: string, app: string, volume: string): Promise<VerityMade> => {
  for (const [name, what] of [[app, 'app'], [volume, 'volume']] as const) {
    const bad = nameError(name, what)
    if (bad) throw usage(`${what} ${JSON.stringify(name)}: ${bad.message}`, bad.hint)
  }
  const appDir = join(stateDir, app)
  const image = join(appDir, volume)
  const st = lstatSync(image, { throwIfNoEntry: false })
  if (!st?.isFile()) throw usage(`${image} ${st ? 'is not a regular file' : 'does not exist'}`, `give the image's file name in ${appDir}, e.g. root.squashfs`)
  const runFile = join(appDir, 'run.json')
  const run = readJson(runFile)
  if (!run) throw usage(`${runFile} does not exist`, 'run pvdisk app install first')
  const newRun = dmifiedRun(run.value, volume)
  if (!newRun) throw usage(`${runFile} does not name ${volume} in ${DM_KEYS.join(', ')}`, `add "${volume}" to "volumes" (or make it the root-volume) first`)
  refuseInUse(ctx, image, st.mode)

  const manifestFile = join(appDir, '_dm', `${volume}.json`)
  const old = readJson(manifestFile)?.value
  const oldOf = (k: string): string | undefined => (isJsonObject(old) && typeof old[k] === 'string' ? old[k] : undefined)
  const kind = imageKindOf(image)
  const blockSize = blockSizeFor(st.size, kind.blockSize)
  const hashName = `${volume}.hash`
  const hashTmp = join(appDir, `.${hashName}.pvdisk-tmp`)
  rmSync(hashTmp, { force: true }) // left by an interrupted run
  // the salt and UUID of an earlier make are kept (as pvr dm-apply does): the same image gives the same root hash
  const salt = oldOf('salt')
  const uuid = oldOf('uuid')
  const { stdout } = await ctx.runner.run({
    argv: ['veritysetup', 'format', `--data-block-size=${blockSize}`, `--hash-block-size=${blockSize}`,
      ...(salt && /^[0-9a-f]+$/i.test(salt) ? [`--salt=${salt}`] : []), ...(uuid && /^[0-9a-f-]{36}$/i.test(uuid) ? [`--uuid=${uuid}`] : []), '--', image, hashTmp],
    timeoutMs: 600_000,
  })
  if (ctx.runner.planning) {
    for (const f of [join(appDir, hashName), manifestFile, join(appDir, 'src.json'), runFile]) ctx.runner.note(`write ${f}`)
    return { app, volume, rootHash: '', blockSize, written: [] }
  }
  const made = parseFormatOutput(stdout)
  const manifest = manifestText({ data_device: volume, hash_device: hashName, root_hash: made.rootHash, salt: made.salt, type: 'dm-verity', uuid: made.uuid })
  const src = readJson(join(appDir, 'src.json'))
  const plan = filesToWrite(appDir, run, newRun, src, volume, manifestFile, manifest, readJson(manifestFile)?.text)
  if (plan.length === 0 && lstatSync(join(appDir, hashName), { throwIfNoEntry: false })?.isFile() && sameFile(hashTmp, join(appDir, hashName))) {
    rmSync(hashTmp, { force: true })
    return { app, volume, rootHash: made.rootHash, blockSize, written: [] }
  }
  fsyncPath(hashTmp)
  ctx.runner.note(`rename ${hashTmp} to ${join(appDir, hashName)}`)
  renameSync(hashTmp, join(appDir, hashName))
  fsyncPath(appDir)
  const written = [join(appDir, hashName)]
  for (const [file, text, mode] of plan) {
    if (file === manifestFile) mkdirNoFollow(appDir, join(appDir, '_dm'))
    ctx.runner.note(`write ${file}`)
    await writeFileAtomic(file, text, mode)
    written.push(file)
  }
  return { app, volume, rootHash: made.rootHash, blockSize, written }
}

const sameFile = (a: string, b: string): boolean => readFileSync(a).equals(readFileSync(b))

/** manifest, src.json, run.json: those whose content changes, in the order they are written */
const filesToWrite = (appDir: string, run: { text: string, value: Json }, newRun: Json, src: { text: string, value: Json } | undefined, volume: string,
  manifestFile: string, manifest: string, oldManifest: string | undefined): [string, string, number][] => {
  const out: [string, string, number][] = []
  if (oldManifest !== manifest) out.push([manifestFile, manifest, 0o644])
  if (src && isJsonObject(src.value)) {
    const enabled = src.value.dm_enabled
    if (!(isJsonObject(enabled) && enabled[volume] === true)) {
      const value = { ...src.value, dm_enabled: { ...(isJsonObject(enabled) ? enabled : {}), [volume]: true } }
      out.push([join(appDir, 'src.json'), stringifyInStyle(value, styleOf(src.text, src.value)), modeOf(join(appDir, 'src.json'))])
    }
  }
  const runText = stringifyInStyle(newRun, styleOf(run.text, run.value))
  if (JSON.stringify(newRun) !== JSON.stringify(run.value)) out.push([join(appDir, 'run.json'), runText, modeOf(join(appDir, 'run.json'))])
  return out
}

const modeOf = (file: string): number => (lstatSync(file).mode & 0o7777)
