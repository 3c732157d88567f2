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

/**
 * A file written again and again (a daemon's state): write() resolves once the content it
 * asked for, or a later one, is on disk. Writes asked for while one is under way become one
 * write of the content as it is when that one ends (content is a function, read when a write
 * starts), so requests that arrive together share a write. Asynchronous: a daemon's event
 * loop goes on accepting connections meanwhile (libuv accepts one per turn of the loop).
 */
export class GroupedFile {
  private asked = 0 // writes asked for so far
  private done = 0 // of those, the ones whose content is on disk
  private writing: Promise<void> | undefined

  constructor(private readonly path: string, private readonly content: () => string, private readonly mode = 0o644, private readonly before: () => void = () => undefined) {}

  write(): Promise<void> {
    return this.upTo(++this.asked)
  }

  private async upTo(wanted: number): Promise<void> {
    while (this.done < wanted) {
      if (!this.writing) {
        const covers = this.asked
        this.writing = (async () => {
          this.before()
          await writeFileAtomic(this.path, this.content(), this.mode)
        })().then(() => { this.done = Math.max(this.done, covers) }).finally(() => { this.writing = undefined })
      }
      await this.writing
    }
  }
}
