// One lock per disk, so that concurrent pvdisk processes serialise on it. The lock file
// holds the owner's pid and start time; a lock whose owner is gone (kill -9, power loss
// with a persistent /run) is stale and taken over. Waiting is bounded.
import { closeSync, constants, lstatSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { PvdiskError } from '../errors.js'
import { forgetMounts } from '../host/kernel.js'

export interface Lock {
  release(): void
}

/** the process start time from /proc, which tells a live owner from a reused pid */
const startTimeOf = (pid: number): string | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

const ownerAlive = (content: string): boolean => {
  const [pid, start] = content.trim().split(' ')
  return pid !== undefined && start !== undefined && startTimeOf(Number(pid)) === start
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** an owner writes its pid right after creating the file: an empty lock older than this was never finished (ENOSPC, a crash) */
const EMPTY_LOCK_GRACE_MS = 5_000

/** creates the lock file, never through a link; a lock that cannot be written is removed again */
const tryCreate = (file: string, me: string): boolean => {
  let fd: number
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw new PvdiskError('EDISK', `cannot create the lock ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, ['check that the directory is writable and has space'])
  }
  try {
    writeSync(fd, me)
  } catch (e) {
    unlinkSync(file) // never leave an empty lock behind (ENOSPC): it would block the disk for good
    throw new PvdiskError('EDISK', `cannot write the lock ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, ['free some space and retry'])
  } finally {
    closeSync(fd)
  }
  return true
}

/** what holds the lock path: its content, or undefined when it vanished meanwhile */
const holderOf = (file: string): { content: string, ageMs: number } | undefined => {
  const st = lstatSync(file, { throwIfNoEntry: false })
  if (!st) return undefined
  if (!st.isFile()) {
    throw new PvdiskError('EDISK', `the lock ${file} is ${st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'a directory' : 'not a regular file'}; pvdisk never follows or replaces it`,
      ['remove it (no pvdisk process creates such a thing) and retry'])
  }
  try {
    return { content: readFileSync(file, 'utf8'), ageMs: Date.now() - st.mtimeMs }
  } catch {
    return undefined // released meanwhile
  }
}

export const acquireLock = async (dir: string, name: string, opts: { timeoutMs?: number } = {}): Promise<Lock> => {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const file = join(dir, `${name}.lock`)
  const me = `${process.pid} ${startTimeOf(process.pid) ?? '0'}\n`
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000)
  for (;;) {
    if (tryCreate(file, me)) {
      forgetMounts() // the last owner may have mounted or unmounted: what this one sees is read afresh
      return {
        release: () => {
          try {
            if (readFileSync(file, 'utf8') === me) unlinkSync(file)
          } catch {
            // already gone
          }
        },
      }
    }
    const holder = holderOf(file)
    const content = holder?.content ?? ''
    // an empty file is an owner between create and write: give it a moment, not forever
    const stale = holder !== undefined && (content === '' ? holder.ageMs > EMPTY_LOCK_GRACE_MS : !ownerAlive(content))
    if (stale) {
      try {
        unlinkSync(file)
      } catch {
        // another waiter took it over first
      }
    }
    if (Date.now() > deadline) {
      throw new PvdiskError('ELOCKED', `disk "${name}" is locked by another pvdisk process (pid ${content.split(' ')[0] || '?'})`,
        [`wait for it to finish, or check ${file}`])
    }
    if (!stale && holder !== undefined) await sleep(100)
  }
}
