// `fscrypt` vaults (EVE's /persist/vault): a directory on the host's ext4/f2fs encrypted with
// an fscrypt v2 policy through Google's fscrypt tool, its 32-byte raw key kept in a key file
// or sealed by Clevis, and a recovery key that wraps it. Unlocked, the vault is bind-mounted
// at the disk's mount point; down unmounts it and locks it. No device-mapper needed.
//
// First init, safe to interrupt anywhere: the recovery wrap and the key source are written
// before the directory is encrypted, so an encrypted vault always has its key; a key source
// is never replaced; <vault>.init_done comes last.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { DiskEntry } from '../config/check-device.js'
import { errorSaid } from '../errors.js'
import { writeFileAtomic } from '../host/atomic-write.js'
import { isBindOf, mountAt, mountHolding, type MountEntry } from '../host/kernel.js'
import { refuseLinksBelow } from '../host/no-follow.js'
import { clevisTools } from './clevis.js'
import { act, type Backend, type DiskContext } from './context.js'
import { fsyncPath } from './crypt-device.js'
import { randomKey } from './key-file.js'
import { ensureFscryptConfig } from './fscrypt-config.js'
import { CANARY, vaultOf, type Vault } from './fscrypt-vault.js'
import { canKeepRecoveryKey, keepRecoveryKey, newRecoveryKey, readRecoveryKey, unwrapWithRecovery, wrapWithRecovery } from './recovery-key.js'

export { vaultFiles } from './fscrypt-vault.js'

/** where fscrypt keeps a filesystem's metadata: a mount of the filesystem's root, not a bind of a subdirectory */
const fsRootOf = (mounts: MountEntry[], dir: string): string => {
  const holder = mountHolding(mounts, dir)
  if (!holder) return '/'
  return mounts.find(m => m.major === holder.major && m.minor === holder.minor && m.root === '/')?.mountPoint ?? holder.mountPoint
}

const firstInit = async (v: Vault): Promise<void> => {
  const encrypted = await v.isEncrypted()
  let key: Buffer
  if (existsSync(v.f.key)) {
    key = await v.loadKey()
  } else {
    if (encrypted) throw v.fail(`${v.f.vault} is an encrypted vault but its key ${v.f.key} is missing`, ['restore the key file; pvdisk never makes a new key for an existing vault', ...v.recoverHint])
    if (existsSync(v.f.vault) && readdirSync(v.f.vault).length > 0) {
      throw v.fail(`${v.f.vault} holds files that are not encrypted`, ['fscrypt encrypts only an empty directory: move the files away, then copy them in once the vault is up'])
    }
    act.mkdirp(v.ctx, dirname(v.f.vault), 0o755)
    key = randomKey().key
    if (canKeepRecoveryKey(v.f.recoveryKey)) {
      const recovery = newRecoveryKey()
      try {
        v.ctx.runner.note(`write the vault key wrapped by a new recovery key to ${v.f.recovery}`)
        if (!v.ctx.runner.planning) {
          await writeFileAtomic(v.f.recovery, wrapWithRecovery(key, recovery), 0o600)
          v.ctx.log(`disk "${v.disk.name}": ${await keepRecoveryKey(recovery, v.f.recoveryKey, v.disk.name, v.ctx.root)}`)
        }
      } finally {
        recovery.fill(0)
      }
    } else {
      v.ctx.log(`warning: disk "${v.disk.name}": no recovery key (no recovery_key file declared, and no terminal to show one on): keep ${v.f.key} safe`)
    }
    await v.keepKey(key)
  }
  try {
    const mountPoint = v.ctx.runner.planning ? dirname(v.f.vault) : fsRootOf(v.ctx.kernel.mounts(), dirname(v.f.vault))
    if (!existsSync(join(mountPoint, '.fscrypt'))) await v.fscrypt(['setup', mountPoint, '--force'])
    if (!encrypted) {
      act.mkdirp(v.ctx, v.f.vault, 0o700)
      await v.fscrypt(['encrypt', v.f.vault, '--source=raw_key', `--name=pvdisk-${v.disk.name}-${randomKey().key.subarray(0, 4).toString('hex')}`, '--no-recovery'], key)
    } else {
      await v.unlock(key)
    }
  } finally {
    key.fill(0)
  }
  act.touch(v.ctx, join(v.f.vault, CANARY))
  if (!v.ctx.runner.planning) fsyncPath(v.f.vault)
  act.touch(v.ctx, v.f.marker)
  if (!v.ctx.runner.planning) fsyncPath(dirname(v.f.marker))
  v.ctx.log(`initialised the fscrypt vault ${v.f.vault} (${v.spec.summary})`)
}

const up = async (v: Vault): Promise<string> => {
  const s = v.status()
  if (s.state === 'mounted') return 'already mounted'
  if (s.problems.length > 0) throw v.fail(s.problems.join('; '), [`unmount ${v.mnt} first`])
  for (const [p, what] of [[v.f.vault, 'vault'], [v.f.key, 'key'], [v.f.recovery, 'recovery file'], [v.f.marker, 'marker'], [v.mnt, 'mount point']] as const) refuseLinksBelow(v.ctx.root, p, `the ${what}`)
  await ensureFscryptConfig(v.ctx)
  if (!existsSync(v.f.marker)) await firstInit(v)
  else if (!existsSync(v.f.vault)) throw v.fail(`${v.f.marker} says the vault was initialised, but ${v.f.vault} is missing`, ['restore it; pvdisk will not create an empty vault in its place'])
  else if (!v.ctx.runner.planning && !v.unlocked()) {
    if (!existsSync(v.f.key)) throw v.fail(`the key ${v.f.key} of the vault is missing`, v.recoverHint)
    const key = await v.loadKey()
    try {
      await v.unlock(key)
    } finally {
      key.fill(0)
    }
  }
  act.mkdirp(v.ctx, v.mnt)
  await v.ctx.runner.run({ argv: ['mount', '--bind', '--', v.f.vault, v.mnt] })
  if (!v.ctx.runner.planning && v.status().state !== 'mounted') {
    await v.ctx.runner.run({ argv: ['umount', '--', v.mnt] }).catch(() => undefined)
    throw v.fail(`mount reported success but ${v.mnt} does not show the unlocked vault; unmounted again`)
  }
  return `mounted the vault ${v.f.vault} at ${v.mnt}`
}

const down = async (v: Vault): Promise<string> => {
  const mounts = v.ctx.kernel.mounts()
  const at = mountAt(mounts, v.mnt)
  if (at && !isBindOf(at, mounts, v.f.vault)) throw v.fail(`${v.mnt} is mounted from ${at.source}${at.root}, not from the vault`, ['leaving it alone'])
  if (at) await v.ctx.runner.run({ argv: ['umount', '--', v.mnt] })
  if (at || existsSync(v.mnt)) act.removeMountPoint(v.ctx, v.mnt)
  if (!v.unlocked()) return at ? `unmounted ${v.mnt}` : 'not open'
  try {
    await v.fscrypt(['lock', v.f.vault])
  } catch (e) {
    if (/still open/.test(errorSaid(e))) {
      throw v.fail(`the vault ${v.f.vault} stays readable: files in it are still open`, ['stop what uses them (fuser -vm), then run pvdisk disk down again'])
    }
    throw e
  }
  return `locked the vault ${v.f.vault}`
}

/** unlocks with the recovery key and seals the vault key to the pins again */
const recover = async (v: Vault, given: Buffer): Promise<string> => {
  const recovery = readRecoveryKey(given)
  if (!existsSync(v.f.recovery)) {
    recovery.fill(0)
    throw v.fail(`no recovery key was made for this vault (${v.f.recovery} is missing)`)
  }
  const key = unwrapWithRecovery(readFileSync(v.f.recovery, 'utf8'), recovery)
  recovery.fill(0)
  if (!key) throw v.fail('that is not the recovery key of this vault', ['nothing was changed'])
  try {
    await v.keepKey(key)
  } finally {
    key.fill(0)
  }
  if (existsSync(v.f.staleKey)) act.remove(v.ctx, v.f.staleKey)
  return `${v.spec.kind === 'keyfile' ? 'wrote the key file again' : `sealed the vault key again to ${v.spec.summary}`}; ${await up(v)}`
}

export const fscryptBackend = (ctx: DiskContext, disk: DiskEntry): Backend => {
  const v = vaultOf(ctx, disk)
  return {
    tools: () => ['fscrypt', 'mount', 'umount', ...clevisTools(v.spec)],
    mountSpec: () => ({ source: v.f.vault, target: v.mnt, fsType: 'none', options: ['bind'] }),
    status: () => v.status(),
    up: () => up(v),
    down: () => down(v),
    recover: key => recover(v, key),
  }
}
