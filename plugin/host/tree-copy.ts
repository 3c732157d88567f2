// Copying a directory tree so that nothing is lost, and proving it: `cp -a` does the copy
// (every file type, owners, modes, times, hard links, sparse files, extended attributes),
// then the copy is compared with its source entry by entry (type, mode, owner, size, mtime,
// link target, and every byte of every file), and synced. Nothing is followed through a
// symbolic link.
import { chmodSync, chownSync, closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync, statfsSync, utimesSync, type Stats } from 'node:fs'
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

/** a comparison of two entries (recursive, or only the entry itself and its names), with its own buffers */
const comparer = () => {
  const bufs: [Buffer, Buffer] = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)]
  const walk = (a: string, b: string, deep = true): string | undefined => {
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
    if (!deep) return undefined
    for (const n of names) {
      const d = walk(join(a, n), join(b, n))
      if (d) return d
    }
    return undefined
  }
  return walk
}

/** the first difference between two trees, as a sentence, or undefined when the copy is exact */
export const compareTrees = (from: string, to: string): string | undefined => comparer()(from, to)

const SLICES = 8
const MAX_NAMES = 500 // per cp command line

/** top-level names in slices of about equal size (and at most MAX_NAMES names each) */
const slicesOf = (from: string, names: string[]): string[][] => {
  const sizes = names.map(n => treeSize(join(from, n)).bytes)
  const target = Math.max(1, sizes.reduce((a, b) => a + b, 0) / SLICES)
  const out: string[][] = []
  let cur: string[] = []
  let bytes = 0
  names.forEach((n, i) => {
    cur.push(n)
    bytes += sizes[i] ?? 0
    if (bytes >= target || cur.length >= MAX_NAMES) {
      out.push(cur)
      cur = []
      bytes = 0
    }
  })
  if (cur.length > 0) out.push(cur)
  return out
}

/**
 * Copies the content of from into to (an existing directory) and proves the copy: cp -a
 * works through slices of the top-level entries, and each slice is compared while cp copies
 * the next, its data still in the page cache (two cores, one pass less over the disk). The
 * top directory's mode, owner and times follow (not its extended attributes). Returns the
 * first difference, or undefined when the copy is exact.
 */
export const copyVerified = async (runner: Runner, from: string, to: string): Promise<string | undefined> => {
  const slices = slicesOf(from, readdirSync(from).sort())
  const cp = (names: string[]) => runner.run({ argv: ['cp', '-a', '--', ...names.map(n => join(from, n)), `${to}/`], timeoutMs: 24 * 3_600_000 })
  const compare = comparer()
  let next = slices[0] ? cp(slices[0]) : undefined
  for (let i = 0; i < slices.length; i++) {
    await next
    next = slices[i + 1] ? cp(slices[i + 1] as string[]) : undefined
    for (const n of slices[i] ?? []) {
      const d = runner.planning ? undefined : compare(join(from, n), join(to, n))
      if (d) {
        await next?.catch(() => undefined)
        return d
      }
    }
  }
  if (runner.planning) return undefined
  const st = lstatSync(from)
  chownSync(to, st.uid, st.gid)
  chmodSync(to, st.mode & 0o7777)
  utimesSync(to, st.atime, st.mtime)
  return compare(from, to, false)
}
