// Copying a directory tree so that nothing is lost, and proving it: `cp -a` does the copy
// (every file type, owners, modes, times, hard links, sparse files, extended attributes),
// then the copy is compared with its source entry by entry (type, mode, owner, size, mtime,
// link target, and every byte of every file), and synced. Nothing is followed through a
// symbolic link.
import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync, statfsSync, type Stats } from 'node:fs'
import { dirname, join } from 'node:path'
import type { Runner } from './run.js'

export interface TreeSize {
  files: number
  /** bytes the tree occupies on its filesystem (allocated blocks) */
  bytes: number
}

/** what a tree occupies, walked without following links */
export const treeSize = (dir: string): TreeSize => {
  const out: TreeSize = { files: 0, bytes: 0 }
  const walk = (p: string): void => {
    const st = lstatSync(p)
    out.files++
    out.bytes += st.blocks * 512
    if (st.isDirectory()) for (const name of readdirSync(p)) walk(join(p, name))
  }
  walk(dir)
  return out
}

/** bytes available on the filesystem that holds path (or its nearest existing parent) */
export const freeBytesAt = (path: string): number => {
  let p = path
  while (!lstatSync(p, { throwIfNoEntry: false })) p = dirname(p)
  const s = statfsSync(p)
  return s.bavail * s.bsize
}

/** copies the contents of from into to (an existing, empty directory) with cp -a */
export const copyTree = async (runner: Runner, from: string, to: string): Promise<void> => {
  await runner.run({ argv: ['cp', '-a', '--reflink=auto', '--', `${from}/.`, `${to}/`], timeoutMs: 24 * 3_600_000 })
}

const CHUNK = 1 << 20

const sameBytes = (a: string, b: string, size: number, bufs: [Buffer, Buffer]): boolean => {
  const fa = openSync(a, 'r')
  try {
    const fb = openSync(b, 'r')
    try {
      for (let at = 0; at < size;) {
        const n = readSync(fa, bufs[0], 0, CHUNK, at)
        const m = readSync(fb, bufs[1], 0, CHUNK, at)
        if (n !== m || n === 0 || !bufs[0].subarray(0, n).equals(bufs[1].subarray(0, m))) return false
        at += n
      }
      return readSync(fb, bufs[1], 0, 1, size) === 0 // and nothing more
    } finally {
      closeSync(fb)
    }
  } finally {
    closeSync(fa)
  }
}

const kindOf = (st: Stats): string => (st.isDirectory() ? 'directory' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symbolic link' : 'special file')

/** the first difference between two trees, as a sentence, or undefined when the copy is exact */
export const compareTrees = (from: string, to: string): string | undefined => {
  const bufs: [Buffer, Buffer] = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)]
  const walk = (a: string, b: string): string | undefined => {
    const sa = lstatSync(a)
    const sb = lstatSync(b, { throwIfNoEntry: false })
    if (!sb) return `${b} is missing`
    if (kindOf(sa) !== kindOf(sb)) return `${b} is a ${kindOf(sb)}, not a ${kindOf(sa)}`
    if ((sa.mode & 0o7777) !== (sb.mode & 0o7777) && !sa.isSymbolicLink()) return `${b} has mode ${(sb.mode & 0o7777).toString(8)}, not ${(sa.mode & 0o7777).toString(8)}`
    if (sa.uid !== sb.uid || sa.gid !== sb.gid) return `${b} is owned by ${sb.uid}:${sb.gid}, not ${sa.uid}:${sa.gid}`
    if (sa.isSymbolicLink()) return readlinkSync(a) === readlinkSync(b) ? undefined : `${b} points elsewhere`
    if (sa.isFile()) {
      if (sa.size !== sb.size) return `${b} has ${sb.size} bytes, not ${sa.size}`
      if (Math.trunc(sa.mtimeMs) !== Math.trunc(sb.mtimeMs)) return `${b} has another modification time`
      return sameBytes(a, b, sa.size, bufs) ? undefined : `${b} differs from ${a} in content`
    }
    if (!sa.isDirectory()) return sa.rdev === sb.rdev ? undefined : `${b} is another device`
    const names = readdirSync(a).sort()
    const theirs = readdirSync(b).sort()
    if (names.length !== theirs.length || names.some((n, i) => n !== theirs[i])) {
      const extra = theirs.find(n => !names.includes(n))
      return extra !== undefined ? `${join(b, extra)} is not in the source` : `${join(b, names.find(n => !theirs.includes(n)) ?? '')} is missing`
    }
    for (const n of names) {
      const d = walk(join(a, n), join(b, n))
      if (d) return d
    }
    return undefined
  }
  return walk(from, to)
}
