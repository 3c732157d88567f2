// pvdisk's own encrypted disk types, dm-crypt-luks2 and fscrypt: allowed only in disks_v3
// (which Pantavisor skips with a warning; in disks or disks_v2 Pantavisor refuses the whole
// state), with an "unlock" field and an optional "recovery_key" file kept away from the data.
import { imageDir, parseCryptPath } from './crypt-path.js'
import type { Json } from './json-source.js'
import { hostPathError } from './path-rules.js'
import type { FileProblems } from './problems.js'
import { parseUnlock } from './unlock.js'
import type { CryptPath } from './crypt-path.js'
import type { UnlockSpec } from './unlock.js'

export const OWN_TYPES = ['dm-crypt-luks2', 'fscrypt']

export interface OwnDiskFacts {
  crypt?: CryptPath
  /** fscrypt: the vault directory */
  vault?: string
  unlock?: UnlockSpec
}

const IGNORED = ['format', 'provision', 'provision_options', 'format_options', 'mount_target', 'mode', 'migrate_keyblob']

const inside = (dir: string, p: string): boolean => p === dir || p.startsWith(dir === '/' ? '/' : `${dir}/`)

/** the checks of a dm-crypt-luks2 or fscrypt disk; undefined when it cannot be used */
export const checkOwnDisk = (disk: { [key: string]: Json }, type: string, name: string, at: string, strict: boolean, problems: FileProblems): OwnDiskFacts | undefined => {
  if (strict) {
    problems.error('pvdisk-type-in-strict-array', `${at}/type`, `disk "${name}" has type ${type}, a pvdisk extension, in a strict disks array: Pantavisor refuses the whole state`,
      'declare it in "disks_v3", which Pantavisor skips with a warning')
    return undefined
  }
  const facts: OwnDiskFacts = {}
  const { path } = disk
  let keptNear: string | undefined
  if (typeof path === 'string' && type === 'dm-crypt-luks2') {
    const parsed = parseCryptPath(path)
    if ('error' in parsed) problems.error(parsed.error.code, `${at}/path`, parsed.error.message, parsed.error.hint)
    else if (parsed.value.v2) problems.error('crypt-path-syntax', `${at}/path`, 'the "-v2 " prefix is for dm-crypt-caam', 'write "<absolute image path>,<size in MiB>,<key name>"')
    else if (parsed.value.sizeMiB <= 16) {
      problems.error('crypt-size-invalid', `${at}/path`, `${parsed.value.sizeMiB} MiB leaves no room for data: LUKS2 keeps the first 16 MiB for its header and keyslots`, 'declare at least 17 MiB (32 or more is sensible)')
    } else {
      facts.crypt = parsed.value
      keptNear = imageDir(parsed.value.image)
    }
  } else if (typeof path === 'string') {
    const e = hostPathError(path)
    if (e) problems.error(e.code, `${at}/path`, e.message, e.hint)
    else if (path === '/') problems.error('path-root', `${at}/path`, 'the vault cannot be "/"', 'name a directory, e.g. /storage/vault')
    else {
      facts.vault = path.replace(/\/$/, '')
      keptNear = facts.vault
    }
  }
  facts.unlock = parseUnlock(disk.unlock, `${at}/unlock`, problems)
  const recovery = disk.recovery_key
  if (recovery !== undefined) {
    const e = typeof recovery === 'string' ? hostPathError(recovery) : { code: 'recovery-key-invalid', message: 'recovery_key is not a string', hint: 'write an absolute file path' }
    if (e) problems.error(e.code, `${at}/recovery_key`, e.message, e.hint)
    else if (keptNear !== undefined && inside(keptNear, recovery as string)) {
      problems.error('recovery-key-near-data', `${at}/recovery_key`, `the recovery key ${recovery as string} would sit ${type === 'fscrypt' ? 'inside the vault' : 'next to the image'}: whoever takes the storage takes the key`,
        'name a file on other storage (removable media, a provisioning share), or leave recovery_key out to have it printed once')
    }
  }
  for (const key of IGNORED) {
    if (key in disk) problems.warn('field-ignored', `${at}/${key}`, `"${key}" is ignored for ${type} disks`, 'remove it')
  }
  return facts.unlock && (facts.crypt || facts.vault) ? facts : undefined
}
