// Atomic replacement of a file: a new temp file (O_EXCL, so a planted symlink is never
// followed), fsync, rename over the target, fsync of the directory. A crash at any point
// leaves either the old or the new content, never a mix.
import * as nodeFs from 'node:fs'
import { closeSync, fsyncSync, openSync, promises as fs } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { Worker } from 'node:worker_threads'

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

/**
 * The steps of an atomic write, synchronously, with nothing from outside but its arguments:
 * the same function runs in this thread (writeFileAtomicSync) and, sent as its source, in
 * the writer thread of GroupedFile. fs is node:fs.
 */
function atomicWriteSteps(fs: typeof nodeFs, path: string, dir: string, tmp: string, data: string | Uint8Array, mode: number): void {
  const fd = fs.openSync(tmp, 'wx', mode)
  try {
    try {
      fs.fchmodSync(fd, mode) // exactly this mode, whatever the umask
      fs.writeFileSync(fd, data)
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    fs.renameSync(tmp, path)
  } catch (e) {
    fs.rmSync(tmp, { force: true })
    throw e
  }
  const d = fs.openSync(dir, 'r') // the rename made durable
  try {
    fs.fsyncSync(d)
  } finally {
    fs.closeSync(d)
  }
}

/** the same, synchronously, for callers that hold a lock in synchronous code */
export const writeFileAtomicSync = (path: string, data: string | Uint8Array, mode = 0o644): void =>
  atomicWriteSteps(nodeFs, path, dirname(path), tempOf(path), data, mode)

/** makes a file's content, or a rename or new entry in a directory, durable */
export const fsyncPath = (path: string): void => {
  const fd = openSync(path, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** what the writer thread runs: atomicWriteSteps for each message, answered by its id */
const WRITER_SOURCE = `'use strict'
const { parentPort } = require('node:worker_threads')
const fs = require('node:fs')
const steps = (${atomicWriteSteps.toString()})
parentPort.on('message', m => {
  try {
    steps(fs, m.path, m.dir, m.tmp, m.data, m.mode)
    parentPort.postMessage({ id: m.id })
  } catch (e) {
    const error = { message: String(e && e.message) }
    for (const k of ['code', 'errno', 'syscall', 'path']) if (e && e[k] !== undefined) error[k] = e[k]
    parentPort.postMessage({ id: m.id, error })
  }
})
`

interface WriterReply { id: number, error?: { message: string, code?: string, errno?: number, syscall?: string, path?: string } }

/**
 * One thread that does atomic writes, each from start to end (temp file, fsync, rename,
 * fsync of the directory) as one task: the event loop hears of it once, when it is done.
 * Done here with fs.promises, a write is nine steps, each waiting for a turn of an event
 * loop that may be busy with hundreds of connections (tens of milliseconds a write, measured
 * under bench/plugin-load.mjs). Started at the first write; it keeps the process alive only
 * while a write is under way. If it dies, the writes it had fail and the next starts another.
 */
class WriterThread {
  private current: { worker: Worker, waiting: Map<number, { resolve: () => void, reject: (e: Error) => void }> } | undefined
  private nextId = 0

  write(path: string, data: string | Uint8Array, mode: number): Promise<void> {
    const t = this.current ?? this.start()
    const id = ++this.nextId
    return new Promise((resolve, reject) => {
      t.waiting.set(id, { resolve, reject })
      t.worker.ref()
      t.worker.postMessage({ id, path, dir: dirname(path), tmp: tempOf(path), data, mode })
    })
  }

  /** ends the thread: writes it has not finished fail; the next write starts another */
  async stop(): Promise<void> {
    const t = this.current
    this.current = undefined
    await t?.worker.terminate()
  }

  private start(): NonNullable<WriterThread['current']> {
    const worker = new Worker(WRITER_SOURCE, { eval: true, execArgv: [], stdout: false, stderr: false })
    const t = { worker, waiting: new Map<number, { resolve: () => void, reject: (e: Error) => void }>() }
    worker.on('message', (m: WriterReply) => {
      const w = t.waiting.get(m.id)
      t.waiting.delete(m.id)
      if (t.waiting.size === 0) worker.unref()
      if (!w) return
      if (m.error) w.reject(Object.assign(new Error(m.error.message), m.error))
      else w.resolve()
    })
    const fail = (e: Error): void => {
      if (this.current === t) this.current = undefined
      for (const w of t.waiting.values()) w.reject(e)
      t.waiting.clear()
    }
    worker.on('error', fail)
    worker.on('exit', code => fail(new Error(`the thread writing pvdisk's state files stopped (exit code ${code}); the write may not have happened`)))
    worker.unref()
    this.current = t
    return t
  }
}

const writer = new WriterThread()

/** ends the writer thread of GroupedFile (a daemon that stops, a test); its unfinished writes fail */
export const stopWriterThread = (): Promise<void> => writer.stop()

/**
 * A file written again and again (a daemon's state): write() resolves once the content it
 * asked for, or a later one, is on disk. Writes asked for while one is under way become one
 * write of the content as it is when that one ends (content is a function, read when a write
 * starts), so requests that arrive together share a write. The write itself is done by the
 * writer thread: the daemon's event loop goes on accepting connections meanwhile (libuv
 * accepts one per turn of the loop).
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
          await writer.write(this.path, this.content(), this.mode)
        })().then(() => { this.done = Math.max(this.done, covers) }).finally(() => { this.writing = undefined })
      }
      await this.writing
    }
  }
}
