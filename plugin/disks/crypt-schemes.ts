// How each crypt type and mode creates, loads and drops its key and maps the image, with
// the same key files, keyring descriptions and dm tables as Pantavisor's crypt script
// (reference/pantavisor.md §2.2), so a device can move between the two without
// re-keying. Key material travels only through stdin, never argv or logs.
import { chmodSync, existsSync, readFileSync, statSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { findInPath } from '../host/run.js'
import { randomKey, writeKeyFile } from './key-file.js'
import { PvdiskError } from '../errors.js'
import { act, type DiskContext } from './context.js'

export interface CryptKeyRef {
  /** the image's directory, where Pantavisor keeps the key files */
  dir: string
  keyName: string
}

export interface CryptScheme {
  /** "versatile", "caam nxp", ... */
  label: string
  tools: string[]
  /** the file whose presence means the key exists */
  keyFile(ref: CryptKeyRef): string
  createKey(ctx: DiskContext, ref: CryptKeyRef): Promise<void>
  /** loads the key and creates the mapping /dev/mapper/<dm> over the loop device */
  open(ctx: DiskContext, ref: CryptKeyRef, loop: string, dm: string, sectors: number): Promise<void>
  /** removes the mapping and drops the key from the keyring */
  close(ctx: DiskContext, ref: CryptKeyRef, dm: string): Promise<void>
}

export const keyDescription = (ref: CryptKeyRef): string => `logkey:${ref.keyName}`

// where caam-keygen (pantacor/keyctl_caam) reads and writes blobs; fixed in the tool, a tmpfs on devices
const caamBlobDir = (): string => process.env.PVDISK_CAAM_BLOB_DIR ?? '/data/caam'

/** Pantavisor installs its DCP tool next to the crypt script, not in PATH */
const dcpTool = (): string => findInPath('x--pv-dcp-tool') ??
  ['/usr/lib/pantavisor/pv/volmount/crypt/x--pv-dcp-tool', '/lib/pv/volmount/crypt/x--pv-dcp-tool'].find(p => existsSync(p)) ?? 'x--pv-dcp-tool'

const writeNewKey = async (ctx: DiskContext, file: string): Promise<void> => {
  ctx.runner.note(`write 32 random bytes to ${file} (mode 0600)`)
  if (ctx.runner.planning) return
  const { key, source } = randomKey()
  await writeKeyFile(file, key)
  key.fill(0)
  ctx.log(`created key ${file} from ${source}`)
}

/** plain dm-crypt with a 256-bit key from a key file, or (key given) the same 32 bytes raw on stdin */
const cryptsetupPlain = (ctx: DiskContext, cipher: string, loop: string, dm: string, key: { file: string } | { bytes: Uint8Array }) =>
  ctx.runner.run({
    argv: ['cryptsetup', 'open', '--type', 'plain', '-s', '256', '-c', cipher,
      // from a file cryptsetup takes the bytes raw; from stdin it would hash them, unless told --hash plain
      ...('file' in key ? [`--key-file=${key.file}`] : ['--hash', 'plain', '--key-file=-', '--keyfile-size', '32']), '--', loop, dm],
    ...('bytes' in key ? { input: key.bytes, secretInput: true } : {}),
  })

const dmCreate = (ctx: DiskContext, dm: string, table: string) =>
  ctx.runner.run({ argv: ['dmsetup', 'create', dm, '--table', table] })

const dmRemove = (ctx: DiskContext, dm: string) => ctx.runner.run({ argv: ['dmsetup', 'remove', '--', dm] })

/** drops logkey:<key> from the user keyring; absent is fine */
const unlinkKey = async (ctx: DiskContext, ref: CryptKeyRef, type: 'logon' | 'trusted'): Promise<void> => {
  const found = await ctx.runner.run({ argv: ['keyctl', 'search', '@u', type, keyDescription(ref)], okCodes: [0, 1] })
  const id = found.stdout.trim()
  if (ctx.runner.planning) {
    await ctx.runner.run({ argv: ['keyctl', 'unlink', '$KEY_ID', '@u'] })
  } else if (found.code === 0 && /^[0-9]+$/.test(id)) {
    await ctx.runner.run({ argv: ['keyctl', 'unlink', id, '@u'], okCodes: [0, 1] })
  }
}

const crypt = (cipher: string, keySpec: string, loop: string, sectors: number): string =>
  `0 ${sectors} crypt ${cipher} ${keySpec} 0 ${loop} 0 1 sector_size:512`

export const versatile: CryptScheme = {
  label: 'versatile',
  tools: ['cryptsetup'],
  keyFile: ref => join(ref.dir, `${ref.keyName}.txt`),
  createKey: (ctx, ref) => writeNewKey(ctx, versatile.keyFile(ref)),
  open: async (ctx, ref, loop, dm) => {
    await cryptsetupPlain(ctx, 'aes-cbc-essiv:sha256', loop, dm, { file: versatile.keyFile(ref) })
  },
  close: async (ctx, _ref, dm) => {
    await ctx.runner.run({ argv: ['cryptsetup', 'close', '--', dm] })
  },
}

/**
 * caam-keygen (pantacor/keyctl_caam) writes into its fixed blob directory, resolves a blob
 * path against its working directory, and exits 0 whatever happened (its errors go to
 * stdout). So pvdisk runs it from the image directory, as Pantavisor's script does, clears
 * the file it is to produce first, and checks that the file is there afterwards.
 */
const caamKeygen = async (ctx: DiskContext, ref: CryptKeyRef, args: string[], produces: string): Promise<void> => {
  removeFile(ctx, produces)
  const r = await ctx.runner.run({ argv: ['caam-keygen', ...args], cwd: ref.dir })
  if (ctx.runner.planning) return
  const size = statSync(produces, { throwIfNoEntry: false })?.size ?? 0
  if (size === 0) {
    const said = (r.stdout + r.stderr).trim().split('\n').filter(Boolean).slice(0, 2) // its error comes first, then its usage text
    throw new PvdiskError('ECOMMAND', `caam-keygen ${args[0]} produced no ${produces} (it exits 0 even when it fails)`,
      [...said.map(l => `caam-keygen: ${l}`), 'is /dev/caam-keygen there (CAAM enabled in the kernel), and is the blob readable?'])
  }
}

export const caamNxp: CryptScheme = {
  label: 'caam nxp',
  tools: ['caam-keygen', 'keyctl', 'dmsetup'],
  keyFile: ref => join(ref.dir, `${ref.keyName}.bb`),
  createKey: async (ctx, ref) => {
    act.mkdirp(ctx, caamBlobDir(), 0o700)
    const blob = join(caamBlobDir(), `${ref.keyName}.bb`)
    await caamKeygen(ctx, ref, ['create', ref.keyName, 'ecb', '-s', '16'], blob)
    await copySecret(ctx, blob, caamNxp.keyFile(ref))
    removeFile(ctx, join(caamBlobDir(), ref.keyName)) // the black key: loaded from the blob at every open
  },
  open: async (ctx, ref, loop, dm, sectors) => {
    act.mkdirp(ctx, caamBlobDir(), 0o700)
    await copySecret(ctx, caamNxp.keyFile(ref), join(caamBlobDir(), `${ref.keyName}.bb`))
    const imported = join(caamBlobDir(), `${ref.keyName}.import`)
    // the blob argument is relative: caam-keygen finds <key>.bb in its working directory, the image directory
    await caamKeygen(ctx, ref, ['import', `${ref.keyName}.bb`, `${ref.keyName}.import`], imported)
    try {
      await ctx.runner.run({ argv: ['keyctl', 'padd', 'logon', keyDescription(ref), '@u'], input: readSecret(ctx, imported), secretInput: true })
    } finally {
      removeFile(ctx, imported)
    }
    const cipher = ctx.cipherOverride ?? 'capi:tk(cbc(aes))-plain'
    await dmCreate(ctx, dm, crypt(cipher, `:${ctx.cipherOverride ? 32 : 36}:logon:${keyDescription(ref)}`, loop, sectors))
  },
  close: async (ctx, ref, dm) => {
    await dmRemove(ctx, dm)
    await unlinkKey(ctx, ref, 'logon')
  },
}

/** mainline kernels: a trusted key sealed by CAAM or DCP (trusted.source=caam|dcp) */
const trustedScheme = (label: string, cipher: string): CryptScheme => {
  const scheme: CryptScheme = {
    label,
    tools: ['keyctl', 'dmsetup'],
    keyFile: ref => join(ref.dir, `${ref.keyName}.bb`),
    createKey: async (ctx, ref) => {
      const added = await ctx.runner.run({ argv: ['keyctl', 'add', 'trusted', keyDescription(ref), 'new 32', '@u'] })
      const id = ctx.runner.planning ? '$KEY_ID' : added.stdout.trim()
      const blob = await ctx.runner.run({ argv: ['keyctl', 'pipe', id], binaryOutput: true })
      ctx.runner.note(`write the sealed blob to ${scheme.keyFile(ref)} (mode 0600)`)
      if (!ctx.runner.planning && blob.output) await writeKeyFile(scheme.keyFile(ref), blob.output)
      blob.output?.fill(0)
      await ctx.runner.run({ argv: ['keyctl', 'unlink', id, '@u'] })
    },
    open: async (ctx, ref, loop, dm, sectors) => {
      const blob = readSecret(ctx, scheme.keyFile(ref))
      // Pantavisor reads the blob's first line (`read -r`): the hex-encoded sealed key
      const nl = blob.indexOf(0x0a)
      const payload = Buffer.concat([Buffer.from('load '), nl === -1 ? blob : blob.subarray(0, nl)])
      blob.fill(0)
      try {
        await ctx.runner.run({ argv: ['keyctl', 'padd', 'trusted', keyDescription(ref), '@u'], input: payload, secretInput: true })
      } finally {
        payload.fill(0)
      }
      await dmCreate(ctx, dm, crypt(ctx.cipherOverride ?? cipher, `:32:trusted:${keyDescription(ref)}`, loop, sectors))
    },
    close: async (ctx, ref, dm) => {
      await dmRemove(ctx, dm)
      await unlinkKey(ctx, ref, 'trusted')
    },
  }
  return scheme
}

export const caamMainline = trustedScheme('caam mainline', 'capi:cbc(aes)-plain64')

/**
 * The DCP tool's decrypted key, opened as Pantavisor does: it writes the key to a mktemp
 * file, which cryptsetup reads raw. pvdisk gives cryptsetup the same 32 bytes on stdin with
 * --hash plain (without it plain mode would hash them, ripemd160 by default), so the key
 * never touches a disk and never becomes a string; the live dm table key is the same.
 */
const openWithGreyBlob = async (ctx: DiskContext, blob: string, loop: string, dm: string): Promise<void> => {
  const decrypted = await ctx.runner.run({ argv: [dcpTool(), 'decrypt', blob], binaryOutput: true })
  const key = decrypted.output ?? Buffer.alloc(0)
  try {
    if (key.length !== 32) {
      throw new PvdiskError('ECOMMAND', `${dcpTool()} decrypt ${blob} gave ${key.length} bytes, not a 32-byte key`,
        ['is the grey blob intact, and is this the board that made it?'])
    }
    await cryptsetupPlain(ctx, ctx.cipherOverride ?? 'capi:cbc(aes)-essiv:sha256', loop, dm, { bytes: key })
  } finally {
    key.fill(0)
  }
}

export const dcpNxp: CryptScheme = {
  label: 'dcp nxp',
  tools: ['cryptsetup', 'x--pv-dcp-tool'],
  keyFile: ref => join(ref.dir, ref.keyName), // the grey blob
  createKey: async (ctx, ref) => {
    const file = dcpNxp.keyFile(ref)
    const { key } = randomKey()
    try {
      await ctx.runner.run({ argv: [dcpTool(), 'encrypt', `${file}.new`], input: key, secretInput: true })
    } finally {
      key.fill(0)
    }
    ctx.runner.note(`chmod 0600 ${file}.new`)
    if (!ctx.runner.planning) chmodSync(`${file}.new`, 0o600)
    act.rename(ctx, `${file}.new`, file)
  },
  open: (ctx, ref, loop, dm) => openWithGreyBlob(ctx, dcpNxp.keyFile(ref), loop, dm),
  close: versatile.close,
}

/**
 * dcp mainline: the trusted-key blob <key>.bb; on a disk made in nxp mode that has no .bb
 * yet, the NXP grey blob <key> opens it, as Pantavisor's script falls back to it
 * (migrate_keyblob is what turns the one into the other, on Pantavisor).
 */
const dcpTrusted = trustedScheme('dcp mainline', 'capi:cbc(aes)-essiv:sha256')
const usesGreyBlob = (ref: CryptKeyRef): boolean => !existsSync(dcpTrusted.keyFile(ref)) && existsSync(dcpNxp.keyFile(ref))
export const dcpMainline: CryptScheme = {
  ...dcpTrusted,
  tools: [...dcpTrusted.tools, 'cryptsetup'],
  keyFile: ref => (usesGreyBlob(ref) ? dcpNxp.keyFile(ref) : dcpTrusted.keyFile(ref)),
  open: (ctx, ref, loop, dm, sectors) => (usesGreyBlob(ref) ? openWithGreyBlob(ctx, dcpNxp.keyFile(ref), loop, dm) : dcpTrusted.open(ctx, ref, loop, dm, sectors)),
}

export const schemeOf = (type: string, mode: string | undefined): CryptScheme => {
  if (type === 'dm-crypt-caam') return mode === 'mainline' ? caamMainline : caamNxp
  if (type === 'dm-crypt-dcp') return mode === 'mainline' ? dcpMainline : dcpNxp
  return versatile
}

function readSecret(ctx: DiskContext, file: string): Buffer {
  if (ctx.runner.planning) return Buffer.alloc(32)
  return readFileSync(file)
}

async function copySecret(ctx: DiskContext, from: string, to: string): Promise<void> {
  ctx.runner.note(`copy ${from} to ${to} (mode 0600)`)
  if (ctx.runner.planning) return
  await writeKeyFile(to, readFileSync(from))
}

function removeFile(ctx: DiskContext, file: string): void {
  ctx.runner.note(`remove ${file}`)
  if (ctx.runner.planning) return
  try {
    unlinkSync(file)
  } catch {
    // already gone
  }
}
