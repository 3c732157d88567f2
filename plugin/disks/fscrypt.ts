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
import { PvdiskError } from '../errors.js'
import { writeFileAtomic } from '../host/atomic-write.js'
import { isBindOf, mountAt, mountHolding } from '../host/kernel.js'
import { refuseLinksBelow } from '../host/no-follow.js'
import { seal, clevisTools, unseal, unsealFailure } from './clevis.js'
import { act, fsUsage, hostPath, mountPointOf, type Backend, type DiskContext, type DiskStatus } from './context.js'
import { fsyncPath } from './crypt-device.js'
import { KEY_BYTES, randomKey } from './key-file.js'
import { ensureFscryptConfig } from './fscrypt-config.js'
import { keepRecoveryKey, newRecoveryKey, readRecoveryKey, unwrapWithRecovery, wrapWithRecovery } from './recovery-key.js'

/** a file only an unlocked vault shows by this name */
const CANARY = '.pvdisk-vault'

export const vaultFiles = (ctx: DiskContext, disk: DiskEntry) => {
  const vault = hostPath(ctx, disk.vault ?? '/')
  const clevis = disk.unlock?.kind === 'clevis'
  return {
    vault,
    key: clevis ? `${vault}.jwe` : `${vault}.key`,
    recovery: `${vault}.recovery`,
    marker: `${vault}.init_done`,
    recoveryKey: typeof disk.fields.recovery_key === 'string' ? hostPath(ctx, disk.fields.recovery_key) : undefined,
  }
}

export const fscryptBackend = (ctx: DiskContext, disk: DiskEntry): Backend => {
  const f = vaultFiles(ctx, disk)
  const mnt = mountPointOf(ctx, disk)
  const spec = disk.unlock ?? { kind: 'keyfile', summary: 'keyfile' }
  const fail = (message: string, details: string[] = []) => new PvdiskError('EDISK', `disk "${disk.name}": ${message}`, details)
  const recoverHint = [`run "pvdisk disk recover ${disk.name}" with the recovery key: it unlocks the vault and binds it again`]
  const unlocked = (): boolean => existsSync(join(f.vault, CANARY))

  const status = (): DiskStatus => {
    const mounts = ctx.kernel.mounts()
    const at = mountAt(mounts, mnt)
    const base = { name: disk.name, type: disk.type, mountPoint: mnt, backing: f.vault, problems: [] as string[], unlock: spec.summary, recovery: existsSync(f.recovery) }
    const open = unlocked()
    if (at && isBindOf(at, mounts, f.vault) && open) return { ...base, state: 'mounted', ...fsUsage(mnt) }
    if (at) base.problems.push(isBindOf(at, mounts, f.vault) ? `${mnt} shows the vault while it is locked` : `${mnt} is mounted from something else (${at.source}${at.root})`)
    if (open) return { ...base, state: 'open' }
    return { ...base, state: existsSync(f.marker) && existsSync(f.vault) ? 'provisioned' : 'absent' }
  }

  /** the vault key from its key file or Clevis; the caller wipes it */
  const loadKey = async (): Promise<Buffer> => {
    if (spec.kind === 'keyfile') {
      const key = readFileSync(f.key)
      if (key.length !== KEY_BYTES) throw fail(`the key file ${f.key} holds ${key.length} bytes, not ${KEY_BYTES}`, recoverHint)
      return key
    }
    try {
      return await unseal(ctx, readFileSync(f.key))
    } catch (e) {
      throw fail(`cannot unlock: ${unsealFailure(spec, e)}`, recoverHint)
    }
  }

  const keepKey = async (key: Buffer): Promise<void> => {
    if (spec.kind === 'keyfile') {
      ctx.runner.note(`write the 32-byte vault key to ${f.key} (mode 0600)`)
      if (!ctx.runner.planning) await writeFileAtomic(f.key, key, 0o600)
      return
    }
    const jwe = await seal(ctx, spec, key)
    ctx.runner.note(`write the sealed key to ${f.key}`)
    if (!ctx.runner.planning) await writeFileAtomic(f.key, jwe, 0o600)
  }

  const fscrypt = (args: string[], key?: Buffer) => ctx.runner.run({
    // without --key, a raw key is read from stdin: bytes, never a file
    argv: ['fscrypt', ...args, '--quiet'], ...(key ? { input: key, secretInput: true } : {}),
  })

  const isEncrypted = async (): Promise<boolean> => {
    if (!existsSync(f.vault)) return false
    const r = await ctx.runner.run({ argv: ['fscrypt', 'status', '--', f.vault], okCodes: [0, 1] })
    return r.code === 0 && /is encrypted with fscrypt/.test(r.stdout)
  }

  const unlock = async (key: Buffer): Promise<void> => {
    try {
      await fscrypt(['unlock', f.vault], key)
    } catch (e) {
      const text = [(e as Error).message, ...((e as { details?: string[] }).details ?? [])].join(' ')
      if (/already unlocked/.test(text)) return
      if (/incorrect key/.test(text)) throw fail(`the key does not unlock the vault ${f.vault}`, recoverHint)
      throw e
    }
  }

  const firstInit = async (): Promise<void> => {
    const encrypted = await isEncrypted()
    let key: Buffer
    if (existsSync(f.key)) {
      key = await loadKey()
    } else {
      if (encrypted) throw fail(`${f.vault} is an encrypted vault but its key ${f.key} is missing`, ['restore the key file; pvdisk never makes a new key for an existing vault', ...recoverHint])
      if (existsSync(f.vault) && readdirSync(f.vault).length > 0) {
        throw fail(`${f.vault} holds files that are not encrypted`, ['fscrypt encrypts only an empty directory: move the files away, then copy them in once the vault is up'])
      }
      act.mkdirp(ctx, dirname(f.vault), 0o755)
      key = randomKey().key
      const recovery = newRecoveryKey()
      try {
        ctx.runner.note(`write the vault key wrapped by a new recovery key to ${f.recovery}`)
        if (!ctx.runner.planning) {
          await writeFileAtomic(f.recovery, wrapWithRecovery(key, recovery), 0o600)
          const where = await keepRecoveryKey(recovery, f.recoveryKey, disk.name, ctx.root)
          ctx.log(where === '' ? `warning: disk "${disk.name}": no terminal to show the recovery key and no recovery_key file declared: keep ${f.key} safe` : `disk "${disk.name}": ${where}`)
        }
      } finally {
        recovery.fill(0)
      }
      await keepKey(key)
    }
    try {
      const mountPoint = ctx.runner.planning ? dirname(f.vault) : mountHolding(ctx.kernel.mounts(), dirname(f.vault))?.mountPoint ?? '/'
      if (!existsSync(join(mountPoint, '.fscrypt'))) await fscrypt(['setup', mountPoint, '--force'])
      if (!encrypted) {
        act.mkdirp(ctx, f.vault, 0o700)
        await fscrypt(['encrypt', f.vault, '--source=raw_key', `--name=pvdisk-${disk.name}`, '--no-recovery'], key)
      } else {
        await unlock(key)
      }
    } finally {
      key.fill(0)
    }
    act.touch(ctx, join(f.vault, CANARY))
    if (!ctx.runner.planning) fsyncPath(f.vault)
    act.touch(ctx, f.marker)
    if (!ctx.runner.planning) fsyncPath(dirname(f.marker))
    ctx.log(`initialised the fscrypt vault ${f.vault} (${spec.summary})`)
  }

  const up = async (): Promise<string> => {
    const s = status()
    if (s.state === 'mounted') return 'already mounted'
    if (s.problems.length > 0) throw fail(s.problems.join('; '), [`unmount ${mnt} first`])
    for (const [p, what] of [[f.vault, 'vault'], [f.key, 'key'], [f.recovery, 'recovery file'], [f.marker, 'marker'], [mnt, 'mount point']] as const) refuseLinksBelow(ctx.root, p, `the ${what}`)
    await ensureFscryptConfig(ctx)
    if (!existsSync(f.marker)) await firstInit()
    else if (!existsSync(f.vault)) throw fail(`${f.marker} says the vault was initialised, but ${f.vault} is missing`, ['restore it; pvdisk will not create an empty vault in its place'])
    else if (!ctx.runner.planning && !unlocked()) {
      if (!existsSync(f.key)) throw fail(`the key ${f.key} of the vault is missing`, recoverHint)
      const key = await loadKey()
      try {
        await unlock(key)
      } finally {
        key.fill(0)
      }
    }
    act.mkdirp(ctx, mnt)
    await ctx.runner.run({ argv: ['mount', '--bind', '--', f.vault, mnt] })
    if (!ctx.runner.planning && status().state !== 'mounted') {
      await ctx.runner.run({ argv: ['umount', '--', mnt] }).catch(() => undefined)
      throw fail(`mount reported success but ${mnt} does not show the unlocked vault; unmounted again`)
    }
    return `mounted the vault ${f.vault} at ${mnt}`
  }

  const down = async (): Promise<string> => {
    const mounts = ctx.kernel.mounts()
    const at = mountAt(mounts, mnt)
    if (at && !isBindOf(at, mounts, f.vault)) throw fail(`${mnt} is mounted from ${at.source}${at.root}, not from the vault`, ['leaving it alone'])
    if (at) await ctx.runner.run({ argv: ['umount', '--', mnt] })
    if (at || existsSync(mnt)) act.removeMountPoint(ctx, mnt)
    if (!unlocked()) return at ? `unmounted ${mnt}` : 'not open'
    try {
      await fscrypt(['lock', f.vault])
    } catch (e) {
      if (/still open/.test([(e as Error).message, ...((e as { details?: string[] }).details ?? [])].join(' '))) {
        throw fail(`the vault ${f.vault} stays readable: files in it are still open`, ['stop what uses them (fuser -vm), then run pvdisk disk down again'])
      }
      throw e
    }
    return `locked the vault ${f.vault}`
  }

  /** unlocks with the recovery key and seals the vault key to the pins again */
  const recover = async (given: Buffer): Promise<string> => {
    const recovery = readRecoveryKey(given)
    if (!recovery) throw new PvdiskError('EUSAGE', 'the recovery key must be 64 hexadecimal digits', ['give the file first init wrote, or type the key shown then'])
    if (!existsSync(f.recovery)) {
      recovery.fill(0)
      throw fail(`no recovery key was made for this vault (${f.recovery} is missing)`)
    }
    const key = unwrapWithRecovery(readFileSync(f.recovery, 'utf8'), recovery)
    recovery.fill(0)
    if (!key) throw fail('that is not the recovery key of this vault', ['nothing was changed'])
    try {
      await keepKey(key)
    } finally {
      key.fill(0)
    }
    return `${spec.kind === 'keyfile' ? 'wrote the key file again' : `sealed the vault key again to ${spec.summary}`}; ${await up()}`
  }

  return {
    tools: () => ['fscrypt', 'mount', 'umount', ...clevisTools(spec)],
    mountSpec: () => ({ source: f.vault, target: mnt, fsType: 'none', options: ['bind'] }),
    status,
    up,
    down,
    recover,
  }
}
