// The recovery key of a LUKS2 disk or fscrypt vault: 32 random bytes written as 64 hex
// digits (so it can be typed, and used as cryptsetup --key-file as it is), saved once to the
// file the operator named or shown once on the terminal of the first init. For a vault it
// wraps the vault key (AES-256-GCM under an HKDF of the recovery key), for LUKS2 it is a
// keyslot of its own. Bytes stay bytes: hex is made and read without JS strings.
import { crypto } from '../host/lazy-crypto.js'
import { isatty } from 'node:tty'
import { writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { writeFileAtomic } from '../host/atomic-write.js'
import { mkdirNoFollow } from '../host/no-follow.js'
import { PvdiskError } from '../errors.js'
import { randomKey } from './key-file.js'

const HEX = Buffer.from('0123456789abcdef')

export const newRecoveryKey = (): Buffer => {
  const { key } = randomKey()
  const out = Buffer.alloc(key.length * 2)
  for (let i = 0; i < key.length; i++) {
    out[2 * i] = HEX[key[i]! >> 4]!
    out[2 * i + 1] = HEX[key[i]! & 15]!
  }
  key.fill(0)
  return out
}

/** the 64 hex digits of what the operator gave (a file or stdin), without surrounding white space; else a usage error */
export const readRecoveryKey = (given: Buffer): Buffer => {
  const key = hexDigitsOf(given)
  if (!key) throw new PvdiskError('EUSAGE', 'the recovery key must be 64 hexadecimal digits', ['give the file first init wrote, or type the key shown then'])
  return key
}

const hexDigitsOf = (given: Buffer): Buffer | undefined => {
  let start = 0
  let end = given.length
  const space = (b: number): boolean => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09
  while (start < end && space(given[start]!)) start++
  while (end > start && space(given[end - 1]!)) end--
  if (end - start !== 64) return undefined
  const out = Buffer.alloc(64)
  for (let i = 0; i < 64; i++) {
    let b = given[start + i]!
    if (b >= 0x41 && b <= 0x46) b += 0x20 // A-F typed in capitals
    if (!((b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66))) {
      out.fill(0)
      return undefined
    }
    out[i] = b
  }
  return out
}

/** a recovery key is made only where it can be kept: a declared file, or a terminal to show it on */
export const canKeepRecoveryKey = (file: string | undefined): boolean => file !== undefined || isatty(2)

/** where the recovery key went, for the log (never the key itself) */
export const keepRecoveryKey = async (key: Buffer, file: string | undefined, disk: string, root: string): Promise<string> => {
  if (file !== undefined) {
    mkdirNoFollow(root, dirname(file), 0o700)
    await writeFileAtomic(file, key, 0o600)
    return `recovery key written to ${file} (mode 0600): move it off the device`
  }
  if (!isatty(2)) return ''
  writeSync(2, Buffer.from(`\nRecovery key of disk "${disk}" (shown once; write it down, it unlocks the disk when the TPM or Tang cannot):\n  `))
  writeSync(2, key)
  writeSync(2, Buffer.from('\n\n'))
  return 'recovery key shown on the terminal'
}

const INFO = Buffer.from('pvdisk fscrypt recovery v1')

const wrapKeyOf = (recovery: Buffer, salt: Buffer): Buffer => Buffer.from(crypto().hkdfSync('sha256', recovery, salt, INFO, 32))

/** the vault key sealed under the recovery key, as JSON (nothing secret in it) */
export const wrapWithRecovery = (vaultKey: Buffer, recovery: Buffer): string => {
  const c = crypto()
  const salt = c.randomBytes(16)
  const iv = c.randomBytes(12)
  const k = wrapKeyOf(recovery, salt)
  const cipher = c.createCipheriv('aes-256-gcm', k, iv)
  const ct = Buffer.concat([cipher.update(vaultKey), cipher.final()])
  k.fill(0)
  const b64 = (b: Buffer): string => b.toString('base64')
  return `${JSON.stringify({ pvdisk_recovery: 1, kdf: 'hkdf-sha256', cipher: 'aes-256-gcm', salt: b64(salt), iv: b64(iv), tag: b64(cipher.getAuthTag()), ct: b64(ct) })}\n`
}

/** the vault key, or undefined when the recovery key is not the one it was wrapped with */
export const unwrapWithRecovery = (wrapped: string, recovery: Buffer): Buffer | undefined => {
  const w = JSON.parse(wrapped) as { salt: string, iv: string, tag: string, ct: string }
  const k = wrapKeyOf(recovery, Buffer.from(w.salt, 'base64'))
  try {
    const d = crypto().createDecipheriv('aes-256-gcm', k, Buffer.from(w.iv, 'base64'))
    d.setAuthTag(Buffer.from(w.tag, 'base64'))
    return Buffer.concat([d.update(Buffer.from(w.ct, 'base64')), d.final()])
  } catch {
    return undefined
  } finally {
    k.fill(0)
  }
}
