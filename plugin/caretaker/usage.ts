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

export interface DirEntry {
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

/**
 * One measurement of any number of trees against one cache: whether it walks everything
 * (every `fullEvery`th measurement, counted per measurement and not per tree), and the
 * entries it saw, which become the cache at the end. Linear in what it visits.
 */
export interface Measurement {
  full: boolean
  seen: Record<string, DirEntry>
}

export const beginMeasurement = (cache: TreeCache, fullEvery = 24): Measurement => {
  const full = cache.measurements % fullEvery === 0
  cache.measurements++
  return { full, seen: {} }
}

/** what was not seen goes: a directory removed since, or a volume no longer measured */
export const endMeasurement = (cache: TreeCache, m: Measurement): void => {
  cache.dirs = m.seen
}

const listDir = (dir: string, key: string): { entry: DirEntry, stats: number } => {
  const entry: DirEntry = { key, bytes: 0, files: 0, subdirs: [] }
  let stats = 0
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
  return { entry, stats }
}

/** bytes (allocated, as du counts them) and files under root, never following links, within a measurement */
export const measureIn = (m: Measurement, cache: TreeCache, root: string): TreeUsage & { stats: number } => {
  let stats = 0
  const total: TreeUsage = { bytes: 0, files: 0, dirs: 0 }
  const pending = [root]
  for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
    let st
    try {
      st = lstatSync(dir)
    } catch {
      continue
    }
    stats++
    if (!st.isDirectory()) continue
    total.dirs++
    const key = keyOf(st)
    let entry = cache.dirs[dir]
    if (m.full || !entry || entry.key !== key) {
      const listed = listDir(dir, key)
      entry = listed.entry
      stats += listed.stats
    }
    m.seen[dir] = entry
    total.files += entry.files
    total.bytes += entry.bytes
    for (const sub of entry.subdirs) pending.push(sub)
  }
  return { ...total, stats }
}

/**
 * The subdirectories of dir, from the cache while dir's mtime and ctime have not moved (a
 * subdirectory added, removed or renamed moves them), within a measurement; sorted. Usage
 * lists the layout's directories (perm/<app>, rev/<revision>/<app>, ...) this way: a cached
 * measurement costs one stat per directory of the layout, not one listing.
 */
export const subdirsIn = (m: Measurement, cache: TreeCache, dir: string): string[] => {
  let st
  try {
    st = lstatSync(dir)
  } catch {
    return []
  }
  if (!st.isDirectory()) return []
  const key = keyOf(st)
  let entry = cache.dirs[dir]
  if (m.full || !entry || entry.key !== key) entry = listDir(dir, key).entry
  m.seen[dir] = entry
  return entry.subdirs.map(p => p.slice(dir.length + 1)).sort()
}

/** one tree as its own measurement; the cache keeps what it holds of other trees */
export const measureTree = (root: string, cache: TreeCache, opts: { fullEvery?: number } = {}): TreeUsage & { stats: number } => {
  const m = beginMeasurement(cache, opts.fullEvery)
  const r = measureIn(m, cache, root)
  for (const [d, e] of Object.entries(cache.dirs)) if (d !== root && !d.startsWith(`${root}/`) && !(d in m.seen)) m.seen[d] = e
  endMeasurement(cache, m)
  return r
}

/** the subdirectories of dir (links are not directories here), sorted; none if unreadable */
export const subdirs = (dir: string): string[] => {
  try {
    // the entry types readdir gives (Node lstats only where the filesystem gives none): no stat per entry
    return readdirSync(dir, { withFileTypes: true }).filter(e => e.isDirectory()).map(e => e.name).sort()
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
