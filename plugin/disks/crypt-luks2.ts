// dm-crypt-luks2, a pvdisk extension: a LUKS2 image whose key is a key file next to it
// ("unlock": "keyfile") or is bound by Clevis to a TPM, a Tang server or both, in a LUKS2
// token of its own header (clevis luks bind), so stock `clevis luks unlock` opens it too.
// First init formats only <image>.new, which never held data, and gives it a second
// keyslot for a recovery key. Every key is machine-made (256 bits), so keyslots use PBKDF2
// with 1000 iterations, as Clevis's own slots do: a slow KDF protects only guessable keys.
import { closeSync, openSync, readSync } from 'node:fs'
import { join } from 'node:path'
import type { DiskEntry } from '../config/check-device.js'
import { KEYFILE_UNLOCK, type UnlockSpec } from '../config/unlock.js'
import { errorSaid, PvdiskError } from '../errors.js'
import { clevisTools, unreachableTang, unsealFailure } from './clevis.js'
import type { DiskContext } from './context.js'
import { writeNewKey, type CryptKeyRef, type CryptScheme } from './crypt-keys.js'
import { canKeepRecoveryKey, keepRecoveryKey, newRecoveryKey } from './recovery-key.js'

export const LUKS2_PBKDF = ['--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000']

export const keyfileOf = (ref: CryptKeyRef): string => join(ref.dir, `${ref.keyName}.key`)

export interface Luks2Scheme extends CryptScheme {
  /** writes the LUKS2 header with its keyslots on a fresh file; nothing else is written */
  format(ctx: DiskContext, ref: CryptKeyRef, file: string): Promise<void>
  /** adds a Clevis keyslot for the pins, opened by an existing key */
  bind(ctx: DiskContext, file: string, existing: Buffer): Promise<void>
  spec: UnlockSpec
}

/** the LUKS2 scheme is the one that formats its image before opening it */
export const isLuks2 = (scheme: CryptScheme): scheme is Luks2Scheme => 'format' in scheme

export const luks2Scheme = (disk: DiskEntry, recoveryFile: string | undefined): Luks2Scheme => {
  const spec: UnlockSpec = disk.unlock ?? KEYFILE_UNLOCK
  const bind = async (ctx: DiskContext, file: string, existing: Buffer): Promise<void> => {
    if (spec.kind !== 'clevis') return
    try {
      await ctx.runner.run({ argv: ['clevis', 'luks', 'bind', '-y', '-d', file, '-k', '-', spec.pin, JSON.stringify(spec.config)], input: existing, secretInput: true, timeoutMs: 300_000 })
    } catch (e) {
      throw new PvdiskError('EDISK', `disk "${disk.name}": cannot bind the new image to ${spec.summary}: ${unsealFailure(spec, e, await unreachableTang(ctx, spec)).slice(spec.summary.length + 2)}`,
        ['nothing holding data was touched; fix the TPM or Tang server and run pvdisk again'])
    }
  }
  const recoverHint = `run "pvdisk disk recover ${disk.name}" with the recovery key: it opens the disk and binds the pins again`
  const scheme: Luks2Scheme = {
    label: `luks2 ${spec.summary}`,
    spec,
    bind,
    tools: ['cryptsetup', ...(spec.kind === 'clevis' ? [...clevisTools(spec), 'clevis-luks-bind', 'clevis-luks-unlock'] : [])],
    // with pins the key lives in the image's own header: there is no key file to lose, and
    // the image's directory stands for it in the checks that a key exists
    keyFile: ref => (spec.kind === 'keyfile' ? keyfileOf(ref) : ref.dir),
    createKey: async (ctx, ref) => {
      if (spec.kind === 'keyfile') await writeNewKey(ctx, keyfileOf(ref))
    },
    format: async (ctx, ref, file) => {
      const recovery = newRecoveryKey()
      const keep = canKeepRecoveryKey(recoveryFile)
      try {
        if (spec.kind === 'keyfile') {
          await ctx.runner.run({ argv: ['cryptsetup', 'luksFormat', '--batch-mode', '--type', 'luks2', ...LUKS2_PBKDF, `--key-file=${keyfileOf(ref)}`, '--', file] })
          if (keep) await ctx.runner.run({ argv: ['cryptsetup', 'luksAddKey', '--batch-mode', ...LUKS2_PBKDF, `--key-file=${keyfileOf(ref)}`, '--new-keyfile=-', '--', file], input: recovery, secretInput: true })
        } else {
          // the recovery key formats (keyslot 0), Clevis binds with it; kept nowhere, its keyslot goes again
          await ctx.runner.run({ argv: ['cryptsetup', 'luksFormat', '--batch-mode', '--type', 'luks2', ...LUKS2_PBKDF, '--key-slot', '0', '--key-file=-', '--', file], input: recovery, secretInput: true })
          await bind(ctx, file, recovery)
          if (!keep) await ctx.runner.run({ argv: ['cryptsetup', 'luksKillSlot', '--batch-mode', '--', file, '0'] })
        }
        if (!keep) {
          ctx.log(`warning: disk "${disk.name}": no recovery key (no recovery_key file declared, and no terminal to show one on)`)
          return
        }
        ctx.runner.note(`keep the recovery key${recoveryFile ? ` in ${recoveryFile} (mode 0600)` : ' (shown once on the terminal)'}`)
        if (!ctx.runner.planning) ctx.log(`disk "${disk.name}": ${await keepRecoveryKey(recovery, recoveryFile, disk.name, ctx.root)}`)
      } finally {
        recovery.fill(0)
      }
    },
    open: async (ctx, ref, loop, dm) => {
      if (spec.kind === 'keyfile') {
        await ctx.runner.run({ argv: ['cryptsetup', 'open', '--type', 'luks2', `--key-file=${keyfileOf(ref)}`, '--', loop, dm] })
        return
      }
      try {
        await ctx.runner.run({ argv: ['clevis', 'luks', 'unlock', '-d', loop, '-n', dm], timeoutMs: 300_000 })
      } catch (e) {
        const why = /could not be opened/.test(errorSaid(e)) ? unsealFailure(spec, e, await unreachableTang(ctx, spec)) : errorSaid(e).split('\n')[0]
        throw new PvdiskError('EDISK', `disk "${disk.name}": cannot unlock: ${why}`, [recoverHint, 'the image was not changed'])
      }
    },
    close: async (ctx, _ref, dm) => {
      await ctx.runner.run({ argv: ['cryptsetup', 'close', '--', dm] })
    },
  }
  return scheme
}

/** the keyslots of the image's primary LUKS2 header, and those a Clevis token holds; read without tools */
export const luks2Slots = (image: string): { slots: string[], bound: Set<string> } | undefined => {
  try {
    const fd = openSync(image, 'r')
    try {
      const bin = Buffer.alloc(4096)
      readSync(fd, bin, 0, 4096, 0)
      if (bin.subarray(0, 6).compare(Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe])) !== 0 || bin.readUInt16BE(6) !== 2) return undefined
      const size = Math.min(Number(bin.readBigUInt64BE(8)), 4 * 1024 * 1024)
      const area = Buffer.alloc(size - 4096)
      readSync(fd, area, 0, area.length, 4096)
      const end = area.indexOf(0)
      const meta = JSON.parse(area.subarray(0, end < 0 ? area.length : end).toString('utf8')) as { keyslots?: object, tokens?: { [id: string]: { type?: string, keyslots?: string[] } } }
      return { slots: Object.keys(meta.keyslots ?? {}), bound: new Set(Object.values(meta.tokens ?? {}).filter(t => t.type === 'clevis').flatMap(t => t.keyslots ?? [])) }
    } finally {
      closeSync(fd)
    }
  } catch {
    return undefined
  }
}

/** whether a keyslot beyond the unlock ones (the recovery key's) exists */
export const luks2HasRecovery = (image: string, spec: UnlockSpec): boolean | undefined => {
  const m = luks2Slots(image)
  return m && m.slots.filter(s => !m.bound.has(s)).length > (spec.kind === 'keyfile' ? 1 : 0)
}
