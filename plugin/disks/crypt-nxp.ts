// The NXP vendor schemes: dm-crypt-caam nxp (caam-keygen black blobs and a logon key) and
// dm-crypt-dcp nxp (the vendor DCP tool's grey blob), and dcp mainline's fallback to an
// NXP grey blob, as Pantavisor's crypt script does them.
import { chmodSync, existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { PvdiskError } from '../errors.js'
import { findInPath } from '../host/run.js'
import { act, type DiskContext } from './context.js'
import { randomKey } from './key-file.js'
import {
  copySecret, crypt, cryptsetupPlain, dmCreate, dmRemove, keyDescription, readSecret, removeFile, trustedScheme, unlinkKey, versatile,
  type CryptKeyRef, type CryptScheme,
} from './crypt-keys.js'

// where caam-keygen (pantacor/keyctl_caam) reads and writes blobs; fixed in the tool, a tmpfs on devices
const caamBlobDir = (): string => process.env.PVDISK_CAAM_BLOB_DIR ?? '/data/caam'
/** said in the plan, because it is the one path pvdisk touches outside --root */
const blobDirNote = (ctx: DiskContext): string | undefined => (ctx.root === '/' ? undefined : "caam-keygen's own blob directory, fixed in the tool: outside --root")

/** Pantavisor installs its DCP tool next to the crypt script, not in PATH */
const dcpTool = (): string => findInPath('x--pv-dcp-tool') ??
  ['/usr/lib/pantavisor/pv/volmount/crypt/x--pv-dcp-tool', '/lib/pv/volmount/crypt/x--pv-dcp-tool'].find(p => existsSync(p)) ?? 'x--pv-dcp-tool'

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
    act.mkdirTool(ctx, caamBlobDir(), 0o700, blobDirNote(ctx))
    const blob = join(caamBlobDir(), `${ref.keyName}.bb`)
    await caamKeygen(ctx, ref, ['create', ref.keyName, 'ecb', '-s', '16'], blob)
    await copySecret(ctx, blob, caamNxp.keyFile(ref))
    removeFile(ctx, join(caamBlobDir(), ref.keyName)) // the black key: loaded from the blob at every open
  },
  open: async (ctx, ref, loop, dm, sectors) => {
    act.mkdirTool(ctx, caamBlobDir(), 0o700, blobDirNote(ctx))
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
