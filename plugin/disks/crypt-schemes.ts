// How each crypt type and mode creates, loads and drops its key and maps the image, with
// the same key files, keyring descriptions and dm tables as Pantavisor's crypt script
// (reference/pantavisor.md §2.2), so a device can move between the two without
// re-keying. Key material travels only through stdin, never argv or logs.
import { existsSync, readFileSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { findInPath } from '../host/run.js'
import { randomKey, writeKeyFile } from './key-file.js'
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

const cryptsetupPlain = (ctx: DiskContext, cipher: string, keyFileArg: string, loop: string, dm: string, input?: Uint8Array) =>
  ctx.runner.run({
    argv: ['cryptsetup', 'open', '--type', 'plain', '-s', '256', '-c', cipher, `--key-file=${keyFileArg}`, '--', loop, dm],
    ...(input ? { input, secretInput: true } : {}),
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
    await cryptsetupPlain(ctx, 'aes-cbc-essiv:sha256', versatile.keyFile(ref), loop, dm)
  },
  close: async (ctx, _ref, dm) => {
    await ctx.runner.run({ argv: ['cryptsetup', 'close', '--', dm] })
  },
}

export const caamNxp: CryptScheme = {
  label: 'caam nxp',
  tools: ['caam-keygen', 'keyctl', 'dmsetup'],
  keyFile: ref => join(ref.dir, `${ref.keyName}.bb`),
  createKey: async (ctx, ref) => {
    act.mkdirp(ctx, caamBlobDir(), 0o700)
    await ctx.runner.run({ argv: ['caam-keygen', 'create', ref.keyName, 'ecb', '-s', '16'] })
    await copySecret(ctx, join(caamBlobDir(), `${ref.keyName}.bb`), caamNxp.keyFile(ref))
  },
  open: async (ctx, ref, loop, dm, sectors) => {
    act.mkdirp(ctx, caamBlobDir(), 0o700)
    await copySecret(ctx, caamNxp.keyFile(ref), join(caamBlobDir(), `${ref.keyName}.bb`))
    await ctx.runner.run({ argv: ['caam-keygen', 'import', `${ref.keyName}.bb`, `${ref.keyName}.import`] })
    const imported = join(caamBlobDir(), `${ref.keyName}.import`)
    await ctx.runner.run({ argv: ['keyctl', 'padd', 'logon', keyDescription(ref), '@u'], input: readSecret(ctx, imported), secretInput: true })
    removeFile(ctx, imported)
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
      const blob = await ctx.runner.run({ argv: ['keyctl', 'pipe', id] })
      ctx.runner.note(`write the sealed blob to ${scheme.keyFile(ref)} (mode 0600)`)
      if (!ctx.runner.planning) await writeKeyFile(scheme.keyFile(ref), Buffer.from(blob.stdout, 'latin1'))
      await ctx.runner.run({ argv: ['keyctl', 'unlink', id, '@u'] })
    },
    open: async (ctx, ref, loop, dm, sectors) => {
      const blob = readSecret(ctx, scheme.keyFile(ref))
      const payload = Buffer.concat([Buffer.from('load '), Buffer.from(blob.toString('latin1').trim(), 'latin1')])
      await ctx.runner.run({ argv: ['keyctl', 'padd', 'trusted', keyDescription(ref), '@u'], input: payload, secretInput: true })
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
export const dcpMainline = trustedScheme('dcp mainline', 'capi:cbc(aes)-essiv:sha256')

export const dcpNxp: CryptScheme = {
  label: 'dcp nxp',
  tools: ['cryptsetup', 'x--pv-dcp-tool'],
  keyFile: ref => join(ref.dir, ref.keyName), // the grey blob
  createKey: async (ctx, ref) => {
    const file = dcpNxp.keyFile(ref)
    const { key } = randomKey()
    await ctx.runner.run({ argv: [dcpTool(), 'encrypt', `${file}.new`], input: key, secretInput: true })
    key.fill(0)
    act.rename(ctx, `${file}.new`, file)
  },
  open: async (ctx, ref, loop, dm) => {
    const decrypted = await ctx.runner.run({ argv: [dcpTool(), 'decrypt', dcpNxp.keyFile(ref)] })
    const key = Buffer.from(decrypted.stdout, 'latin1')
    try {
      await cryptsetupPlain(ctx, ctx.cipherOverride ?? 'capi:cbc(aes)-essiv:sha256', '-', loop, dm, key)
    } finally {
      key.fill(0)
    }
  },
  close: versatile.close,
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
