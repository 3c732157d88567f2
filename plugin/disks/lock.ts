// One lock per disk, so that concurrent pvdisk processes serialise on it. The lock file
// holds the owner's pid and start time; a lock whose owner is gone (kill -9, power loss
// with a persistent /run) is stale and taken over. Waiting is bounded.
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { PvdiskError } from '../errors.js'

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

export const acquireLock = async (dir: string, name: string, opts: { timeoutMs?: number } = {}): Promise<Lock> => {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const file = join(dir, `${name}.lock`)
  const me = `${process.pid} ${startTimeOf(process.pid) ?? '0'}\n`
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000)
  for (;;) {
    try {
      const fd = openSync(file, 'wx', 0o600)
      writeSync(fd, me)
      closeSync(fd)
      return {
        release: () => {
          try {
            if (readFileSync(file, 'utf8') === me) unlinkSync(file)
          } catch {
            // already gone
          }
        },
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
    }
    let content = ''
    try {
      content = readFileSync(file, 'utf8')
    } catch {
      continue // released meanwhile
    }
    // an empty file is an owner between create and write: give it a moment
    if (content !== '' && !ownerAlive(content)) {
      try {
        unlinkSync(file)
      } catch {
        // another waiter took it over first
      }
      continue
    }
    if (Date.now() > deadline) {
      throw new PvdiskError('ELOCKED', `disk "${name}" is locked by another pvdisk process (pid ${content.split(' ')[0] || '?'})`,
        [`wait for it to finish, or check ${file}`])
    }
    await sleep(100)
  }
}
