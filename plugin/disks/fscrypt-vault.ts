// One fscrypt vault's facts (the directory, its key source, recovery wrap and marker, the
// mount point) and the steps every operation is made of: its state, loading and keeping its
// key (a key file or a Clevis JWE), and the fscrypt tool's lock state. fscrypt.ts orders them.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { DiskEntry } from '../config/check-device.js'
import { KEYFILE_UNLOCK, type UnlockSpec } from '../config/unlock.js'
import { errorSaid, PvdiskError } from '../errors.js'
import { writeFileAtomic } from '../host/atomic-write.js'
import { isBindOf, mountAt } from '../host/kernel.js'
import type { CommandResult } from '../host/run.js'
import { seal, unreachableTang, unseal, unsealFailure } from './clevis.js'
import { fsUsage, hostPath, mountPointOf, type DiskContext, type DiskStatus } from './context.js'
import { KEY_BYTES } from './key-file.js'

/** a file only an unlocked vault shows by this name */
export const CANARY = '.pvdisk-vault'

export const vaultFiles = (ctx: DiskContext, disk: DiskEntry) => {
  const vault = hostPath(ctx, disk.vault ?? '/')
  const clevis = disk.unlock?.kind === 'clevis'
  return {
    vault,
    key: clevis ? `${vault}.jwe` : `${vault}.key`,
    /** the key source of the other unlock kind: left from before unlock changed, until disk recover removes it */
    staleKey: clevis ? `${vault}.key` : `${vault}.jwe`,
    recovery: `${vault}.recovery`,
    marker: `${vault}.init_done`,
    recoveryKey: typeof disk.fields.recovery_key === 'string' ? hostPath(ctx, disk.fields.recovery_key) : undefined,
  }
}

export interface Vault {
  ctx: DiskContext
  disk: DiskEntry
  f: ReturnType<typeof vaultFiles>
  mnt: string
  spec: UnlockSpec
  fail(message: string, details?: string[]): PvdiskError
  recoverHint: string[]
  unlocked(): boolean
  status(): DiskStatus
  /** the vault key from its key file or Clevis; the caller wipes it */
  loadKey(): Promise<Buffer>
  keepKey(key: Buffer): Promise<void>
  fscrypt(args: string[], key?: Buffer): Promise<CommandResult>
  isEncrypted(): Promise<boolean>
  unlock(key: Buffer): Promise<void>
}

const status = (v: Vault): DiskStatus => {
  const mounts = v.ctx.kernel.mounts()
  const at = mountAt(mounts, v.mnt)
  const base = { name: v.disk.name, type: v.disk.type, mountPoint: v.mnt, backing: v.f.vault, problems: [] as string[], keyProblems: [] as string[], unlock: v.spec.summary, recovery: existsSync(v.f.recovery) }
  if (existsSync(v.f.staleKey)) base.keyProblems.push(`${v.f.staleKey} is left from before "unlock" changed${v.spec.kind === 'clevis' ? ': a plain key next to the vault still opens it' : ''}; run pvdisk disk recover ${v.disk.name} to re-bind and remove it`)
  const open = v.unlocked()
  if (at && isBindOf(at, mounts, v.f.vault) && open) return { ...base, state: 'mounted', ...fsUsage(v.mnt) }
  if (at) base.problems.push(isBindOf(at, mounts, v.f.vault) ? `${v.mnt} shows the vault while it is locked` : `${v.mnt} is mounted from something else (${at.source}${at.root})`)
  if (open) return { ...base, state: 'open' }
  return { ...base, state: existsSync(v.f.marker) && existsSync(v.f.vault) ? 'provisioned' : 'absent' }
}

const loadKey = async (v: Vault): Promise<Buffer> => {
  if (v.spec.kind === 'keyfile') {
    const key = readFileSync(v.f.key)
    if (key.length !== KEY_BYTES) throw v.fail(`the key file ${v.f.key} holds ${key.length} bytes, not ${KEY_BYTES}`, v.recoverHint)
    return key
  }
  try {
    return await unseal(v.ctx, readFileSync(v.f.key))
  } catch (e) {
    throw v.fail(`cannot unlock: ${unsealFailure(v.spec, e, await unreachableTang(v.ctx, v.spec))}`, v.recoverHint)
  }
}

const keepKey = async (v: Vault, key: Buffer): Promise<void> => {
  if (v.spec.kind === 'keyfile') {
    v.ctx.runner.note(`write the 32-byte vault key to ${v.f.key} (mode 0600)`)
    if (!v.ctx.runner.planning) await writeFileAtomic(v.f.key, key, 0o600)
    return
  }
  const jwe = await seal(v.ctx, v.spec, key)
  v.ctx.runner.note(`write the sealed key to ${v.f.key}`)
  if (!v.ctx.runner.planning) await writeFileAtomic(v.f.key, jwe, 0o600)
}

const isEncrypted = async (v: Vault): Promise<boolean> => {
  if (!existsSync(v.f.vault)) return false
  const r = await v.ctx.runner.run({ argv: ['fscrypt', 'status', '--', v.f.vault], okCodes: [0, 1] })
  return r.code === 0 && /is encrypted with fscrypt/.test(r.stdout)
}

const unlock = async (v: Vault, key: Buffer): Promise<void> => {
  try {
    await v.fscrypt(['unlock', v.f.vault], key)
  } catch (e) {
    const text = errorSaid(e)
    if (/already unlocked/.test(text)) return
    if (/incorrect key/.test(text)) throw v.fail(`the key does not unlock the vault ${v.f.vault}`, v.recoverHint)
    throw e
  }
}

export const vaultOf = (ctx: DiskContext, disk: DiskEntry): Vault => {
  const f = vaultFiles(ctx, disk)
  const v: Vault = {
    ctx,
    disk,
    f,
    mnt: mountPointOf(ctx, disk),
    spec: disk.unlock ?? KEYFILE_UNLOCK,
    fail: (message, details = []) => new PvdiskError('EDISK', `disk "${disk.name}": ${message}`, details),
    recoverHint: [`run "pvdisk disk recover ${disk.name}" with the recovery key: it unlocks the vault and binds it again`],
    unlocked: () => existsSync(join(f.vault, CANARY)),
    status: () => status(v),
    loadKey: () => loadKey(v),
    keepKey: key => keepKey(v, key),
    // without --key, a raw key is read from stdin: bytes, never a file
    fscrypt: (args, key) => ctx.runner.run({ argv: ['fscrypt', ...args, '--quiet'], ...(key ? { input: key, secretInput: true } : {}) }),
    isEncrypted: () => isEncrypted(v),
    unlock: key => unlock(v, key),
  }
  return v
}
