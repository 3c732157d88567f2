// Many mounts in one command: a private, transient fstab that a single `mount --all
// --fstab FILE` applies in order (one process instead of one per mount, which matters on
// every container start).
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { mkdirNoFollow } from './no-follow.js'

export interface FstabEntry {
  source: string
  target: string
  fsType: string
  options: string[]
}

// fstab fields are separated by whitespace: escape it (and backslash) as mount(8) reads it back
const fstabField = (s: string): string => s.replace(/[\\ \t\n]/g, c => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`)

export const fstabLine = (m: FstabEntry): string =>
  `${fstabField(m.source)} ${fstabField(m.target)} ${m.fsType} ${m.options.join(',')} 0 0\n`

/** writes entries to <dir>/<name>.<pid>.fstab (made below root without following links), runs fn with it, removes it */
export const withFstab = async <T>(root: string, dir: string, name: string, entries: FstabEntry[], fn: (file: string) => Promise<T>): Promise<T> => {
  mkdirNoFollow(root, dir, 0o700)
  // transient and private: written exclusively, read at once, removed (no fsync needed)
  const file = join(dir, `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}.${process.pid}.fstab`)
  writeFileSync(file, entries.map(fstabLine).join(''), { mode: 0o600, flag: 'wx' })
  try {
    return await fn(file)
  } finally {
    rmSync(file, { force: true })
  }
}
