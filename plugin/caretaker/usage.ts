// Usage per disk (filesystem size, used, free, inodes; the image file's allocated size)
// and per volume (bytes and files). A volume is measured by walking it once; later
// measurements reuse the totals of every directory whose mtime and ctime have not moved
// (a file added, removed or renamed changes them), so an unchanged tree costs one stat per
// directory instead of one per file. Growth of an existing file does not touch its
// directory: a full walk every `fullEvery` measurements (and whenever the cache is cold)
// catches it, which bounds how stale a figure can get.
import { lstatSync, readdirSync, statfsSync, statSync } from 'node:fs'
import { join } from 'node:path'

export interface TreeUsage {
  bytes: number
  files: number
  dirs: number
}

interface DirEntry {
  key: string // dev:ino:mtime:ctime
  bytes: number // of its direct files
  files: number
  subdirs: string[]
}

export interface TreeCache {
  dirs: Record<string, DirEntry>
  measurements: number
}

export const emptyCache = (): TreeCache => ({ dirs: {}, measurements: 0 })

const keyOf = (st: { dev: number, ino: number, mtimeMs: number, ctimeMs: number }): string => `${st.dev}:${st.ino}:${st.mtimeMs}:${st.ctimeMs}`

/** bytes (allocated, as du counts them) and files under root, never following links */
export const measureTree = (root: string, cache: TreeCache, opts: { fullEvery?: number } = {}): TreeUsage & { stats: number } => {
  const full = cache.measurements % (opts.fullEvery ?? 24) === 0
  cache.measurements++
  const seen = new Set<string>()
  let stats = 0
  const total: TreeUsage = { bytes: 0, files: 0, dirs: 0 }
  const walk = (dir: string): void => {
    let st
    try {
      st = lstatSync(dir)
    } catch {
      return
    }
    stats++
    if (!st.isDirectory()) return
    seen.add(dir)
    total.dirs++
    const key = keyOf(st)
    let entry = cache.dirs[dir]
    if (full || !entry || entry.key !== key) {
      entry = { key, bytes: 0, files: 0, subdirs: [] }
      let names: string[] = []
      try {
        names = readdirSync(dir)
      } catch {
        // unreadable: counted as empty
      }
      for (const name of names) {
        const p = join(dir, name)
        let s
        try {
          s = lstatSync(p)
        } catch {
          continue // removed meanwhile
        }
        stats++
        if (s.isDirectory()) entry.subdirs.push(p)
        else {
          entry.files++
          entry.bytes += s.blocks * 512
        }
      }
      cache.dirs[dir] = entry
    }
    total.files += entry.files
    total.bytes += entry.bytes
    for (const sub of entry.subdirs) walk(sub)
  }
  walk(root)
  for (const d of Object.keys(cache.dirs)) if ((d === root || d.startsWith(`${root}/`)) && !seen.has(d)) delete cache.dirs[d]
  return { ...total, stats }
}

/** the subdirectories of dir (links are not directories here), sorted; none if unreadable */
export const subdirs = (dir: string): string[] => {
  try {
    return readdirSync(dir).filter(n => lstatSync(join(dir, n)).isDirectory()).sort()
  } catch {
    return []
  }
}

export interface FsUsage {
  size: number
  used: number
  free: number
  inodes: number
  inodesFree: number
}

export const fsUsageOf = (path: string): FsUsage | undefined => {
  try {
    const s = statfsSync(path)
    return { size: s.blocks * s.bsize, used: (s.blocks - s.bfree) * s.bsize, free: s.bavail * s.bsize, inodes: s.files, inodesFree: s.ffree }
  } catch {
    return undefined
  }
}

/** bytes a (possibly sparse) file really occupies */
export const allocatedBytes = (file: string): number | undefined => {
  try {
    return statSync(file).blocks * 512
  } catch {
    return undefined
  }
}
