// The crypt schemes' common ground: how a scheme is described, the helpers every scheme
// uses (key files, cryptsetup, dm tables, the user keyring), the software scheme
// (dm-crypt-versatile) and the kernel trusted-key schemes (caam/dcp mainline), with the same
// key files, keyring descriptions and dm tables as Pantavisor's crypt script (reference/
// pantavisor.md §2.2). Key material travels only through stdin, never argv or logs.
import { readFileSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { randomKey, writeKeyFile } from './key-file.js'
import type { DiskContext } from './context.js'

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

export const writeNewKey = async (ctx: DiskContext, file: string): Promise<void> => {
  ctx.runner.note(`write 32 random bytes to ${file} (mode 0600)`)
  if (ctx.runner.planning) return
  const { key, source } = randomKey()
  await writeKeyFile(file, key)
  key.fill(0)
  ctx.log(`created key ${file} from ${source}`)
}

/** plain dm-crypt with a 256-bit key from a key file, or (key given) the same 32 bytes raw on stdin */
export const cryptsetupPlain = (ctx: DiskContext, cipher: string, loop: string, dm: string, key: { file: string } | { bytes: Uint8Array }) =>
  ctx.runner.run({
    argv: ['cryptsetup', 'open', '--type', 'plain', '-s', '256', '-c', cipher,
      // from a file cryptsetup takes the bytes raw; from stdin it would hash them, unless told --hash plain
      ...('file' in key ? [`--key-file=${key.file}`] : ['--hash', 'plain', '--key-file=-', '--keyfile-size', '32']), '--', loop, dm],
    ...('bytes' in key ? { input: key.bytes, secretInput: true } : {}),
  })

export const dmCreate = (ctx: DiskContext, dm: string, table: string) =>
  ctx.runner.run({ argv: ['dmsetup', 'create', dm, '--table', table] })

export const dmRemove = (ctx: DiskContext, dm: string) => ctx.runner.run({ argv: ['dmsetup', 'remove', '--', dm] })

/** drops logkey:<key> from the user keyring; absent is fine */
export const unlinkKey = async (ctx: DiskContext, ref: CryptKeyRef, type: 'logon' | 'trusted'): Promise<void> => {
  const found = await ctx.runner.run({ argv: ['keyctl', 'search', '@u', type, keyDescription(ref)], okCodes: [0, 1] })
  const id = found.stdout.trim()
  if (ctx.runner.planning) {
    await ctx.runner.run({ argv: ['keyctl', 'unlink', '$KEY_ID', '@u'] })
  } else if (found.code === 0 && /^[0-9]+$/.test(id)) {
    await ctx.runner.run({ argv: ['keyctl', 'unlink', id, '@u'], okCodes: [0, 1] })
  }
}

export const crypt = (cipher: string, keySpec: string, loop: string, sectors: number): string =>
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

/** mainline kernels: a trusted key sealed by CAAM or DCP (trusted.source=caam|dcp) */
export const trustedScheme = (label: string, cipher: string): CryptScheme => {
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

export function readSecret(ctx: DiskContext, file: string): Buffer {
  if (ctx.runner.planning) return Buffer.alloc(32)
  return readFileSync(file)
}

export async function copySecret(ctx: DiskContext, from: string, to: string): Promise<void> {
  ctx.runner.note(`copy ${from} to ${to} (mode 0600)`)
  if (ctx.runner.planning) return
  await writeKeyFile(to, readFileSync(from))
}

export function removeFile(ctx: DiskContext, file: string): void {
  ctx.runner.note(`remove ${file}`)
  if (ctx.runner.planning) return
  try {
    unlinkSync(file)
  } catch {
    // already gone
  }
}
