// Atomic replacement of a file: a new temp file (O_EXCL, so a planted symlink is never
// followed), fsync, rename over the target, fsync of the directory. A crash at any point
// leaves either the old or the new content, never a mix.
import { closeSync, fchmodSync, fsyncSync, openSync, promises as fs, renameSync, rmSync, writeFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'

/**
 * the temp file's name beside path: unique to this process and write. It needs no secrecy:
 * O_EXCL refuses anything planted there, so a guessed name can only make the write fail. Not
 * node:crypto, whose loading costs ~4 ms of every command that writes a state file.
 */
const tempOf = (path: string): string =>
  join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}.tmp`)

export const writeFileAtomic = async (path: string, data: string | Uint8Array, mode = 0o644): Promise<void> => {
  const dir = dirname(path)
  const tmp = tempOf(path)
  const fh = await fs.open(tmp, 'wx', mode)
  try {
    try {
      await fh.chmod(mode) // exactly this mode, whatever the umask
      await fh.writeFile(data)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await fs.rename(tmp, path)
  } catch (e) {
    await fs.unlink(tmp).catch(() => undefined)
    throw e
  }
  const d = await fs.open(dir, 'r')
  try {
    await d.sync()
  } finally {
    await d.close()
  }
}

/** the same, synchronously, for callers that hold a lock in synchronous code */
export const writeFileAtomicSync = (path: string, data: string | Uint8Array, mode = 0o644): void => {
  const dir = dirname(path)
  const tmp = tempOf(path)
  const fd = openSync(tmp, 'wx', mode)
  try {
    try {
      fchmodSync(fd, mode)
      writeFileSync(fd, data)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, path)
  } catch (e) {
    rmSync(tmp, { force: true })
    throw e
  }
  fsyncPath(dir)
}

/** makes a file's content, or a rename or new entry in a directory, durable */
export const fsyncPath = (path: string): void => {
  const fd = openSync(path, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}
