// What the kernel says, read from /proc and /sys without running anything: the mount
// table, loop devices and their backing files, device-mapper devices. "Mounted" always
// means the mount table says so, with the right source.
import { readFileSync, readdirSync, statSync } from 'node:fs'

export interface MountEntry {
  id: number
  parent: number
  major: number
  minor: number
  /** path inside the source filesystem that is mounted (a bind mount's subdirectory) */
  root: string
  mountPoint: string
  options: string
  fsType: string
  source: string
}

// mountinfo escapes space, tab, newline and backslash as octal
const unescape = (s: string): string => (s.includes('\\') ? s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))) : s)

export const parseMountinfo = (text: string): MountEntry[] => text.split('\n').filter(Boolean).map(line => {
  const [pre = '', post = ''] = line.split(' - ')
  const f = pre.split(' ')
  const [fsType = '', source = ''] = post.split(' ')
  const [major = '0', minor = '0'] = (f[2] ?? '0:0').split(':')
  return {
    id: Number(f[0]), parent: Number(f[1]), major: Number(major), minor: Number(minor),
    root: unescape(f[3] ?? ''), mountPoint: unescape(f[4] ?? ''), options: f[5] ?? '', fsType, source: unescape(source),
  }
})

let snapshot: MountEntry[] | undefined
let lastRead: { text: string, mounts: MountEntry[] } | undefined // parsed again only when the table changed

/**
 * The mount table, read once per turn of the event loop: a loop over 200 disks reads it
 * once, not 200 times (on a host with thousands of mounts that was most of `disk status`).
 * It is read afresh after every command (host/run.ts forgets it when one ends, since it may
 * have mounted or unmounted something), after a lock is taken, and at the next turn of the
 * loop, when another process may have changed it; read afresh, it is parsed again only when
 * its text changed (the plugin reads it at every Mount).
 */
export const readMounts = (): MountEntry[] => {
  if (snapshot) return snapshot
  const text = readFileSync('/proc/self/mountinfo', 'utf8')
  if (lastRead?.text !== text) lastRead = { text, mounts: Object.freeze(parseMountinfo(text)) as MountEntry[] } // shared: never changed in place
  const read = lastRead.mounts
  snapshot = read
  setImmediate(() => {
    if (snapshot === read) snapshot = undefined // not one read since, after a command
  })
  return read
}

export const forgetMounts = (): void => {
  snapshot = undefined
}

/** the topmost mount at a mount point (later entries stack over earlier ones) */
export const mountAt = (mounts: readonly MountEntry[], mountPoint: string): MountEntry | undefined =>
  mounts.filter(m => m.mountPoint === mountPoint).at(-1)

/** the mount that holds a path: the longest mount point that is a prefix of it */
export const mountHolding = (mounts: readonly MountEntry[], path: string): MountEntry | undefined => {
  let best: MountEntry | undefined
  for (const m of mounts) {
    const inside = m.mountPoint === '/' || path === m.mountPoint || path.startsWith(`${m.mountPoint}/`)
    if (inside && (!best || m.mountPoint.length >= best.mountPoint.length)) best = m
  }
  return best
}

export interface LoopDevice {
  name: string
  node: string
  backingFile: string
  major: number
  minor: number
}

const readSys = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8').trim()
  } catch {
    return undefined
  }
}

const devNumbers = (name: string): [number, number] => {
  const [major = '0', minor = '0'] = (readSys(`/sys/block/${name}/dev`) ?? '0:0').split(':')
  return [Number(major), Number(minor)]
}

const blockDevices = (): string[] => {
  try {
    return readdirSync('/sys/block')
  } catch {
    return []
  }
}

export const readLoops = (): LoopDevice[] => blockDevices().filter(n => n.startsWith('loop')).flatMap(name => {
  const backing = readSys(`/sys/block/${name}/loop/backing_file`)
  if (backing === undefined) return []
  const [major, minor] = devNumbers(name)
  return [{ name, node: `/dev/${name}`, backingFile: backing.replace(/ \(deleted\)$/, ''), major, minor }]
})

export interface DmDevice {
  name: string
  node: string
  major: number
  minor: number
  /** the block devices it sits on, e.g. loop3 */
  slaves: string[]
}

export const readDms = (): DmDevice[] => blockDevices().filter(n => n.startsWith('dm-')).flatMap(kname => {
  const name = readSys(`/sys/block/${kname}/dm/name`)
  if (name === undefined) return []
  const [major, minor] = devNumbers(kname)
  let slaves: string[] = []
  try {
    slaves = readdirSync(`/sys/block/${kname}/slaves`)
  } catch {
    // none
  }
  return [{ name, node: `/dev/mapper/${name}`, major, minor, slaves }]
})

/** whether a mount's source is this block device (by device number, whatever its name) */
export const isMountOf = (m: MountEntry, dev: { major: number, minor: number }): boolean =>
  m.major === dev.major && m.minor === dev.minor

/** whether a bind mount shows exactly this directory (same filesystem, same subdirectory) */
export const isBindOf = (m: MountEntry, mounts: readonly MountEntry[], dir: string): boolean => {
  const holder = mountHolding(mounts.filter(x => x !== m), dir)
  if (!holder) return false
  let st
  try {
    st = statSync(dir)
  } catch {
    return false
  }
  const majorOk = m.major === holder.major && m.minor === holder.minor
  const rel = holder.mountPoint === '/' ? dir : dir.slice(holder.mountPoint.length)
  const expectedRoot = (holder.root === '/' ? '' : holder.root) + (rel === '' ? '/' : rel)
  return majorOk && st.isDirectory() && (m.root === expectedRoot || m.root === expectedRoot.replace(/\/$/, ''))
}
