// The rule for paths pvdisk creates, writes, removes or mounts (docs/threat-model.md):
// system directories under --root (the first level: /storage, /media, /run, /var; and
// /var/lib) may be links the administrator set up; below them nothing is followed. A
// component that is a symbolic link (dangling or not) is refused with a clear error.
import { lstatSync, mkdirSync, statSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { PvdiskError } from '../errors.js'

/** how many leading components are system directories: /var/lib, else the first level */
const systemDepth = (parts: string[]): number => (parts[0] === 'var' && parts[1] === 'lib' ? 2 : 1)

/** refuses a symbolic link at any component of path below the system directories; absent components are fine */
export const refuseLinksBelow = (root: string, path: string, what: string): void => {
  const parts = relative(root, path).split(sep).filter(Boolean)
  if (parts[0] === '..') throw new PvdiskError('EDISK', `${what} ${path} is outside ${root}`, ['declare paths inside the root'])
  const depth = systemDepth(parts)
  let cur = join(root, ...parts.slice(0, depth))
  for (const part of parts.slice(depth)) {
    cur = join(cur, part)
    const st = lstatSync(cur, { throwIfNoEntry: false })
    if (!st) return
    if (st.isSymbolicLink()) {
      throw new PvdiskError('EDISK', `${cur} is a symbolic link; refusing to follow it (${what} ${path})`,
        ['below its first level pvdisk follows no link: replace the link with a real directory or file'])
    }
  }
}

/**
 * mkdir -p below root that follows no link below root's first level: every component is
 * created as a real directory (mode) or found as one; a link or a file there is refused.
 */
export const mkdirNoFollow = (root: string, dir: string, mode = 0o755): void => {
  const parts = relative(root, dir).split(sep).filter(Boolean)
  if (parts[0] === '..') throw new PvdiskError('EDISK', `${dir} is outside ${root}`, ['declare paths inside the root'])
  const depth = systemDepth(parts)
  let cur = root
  for (const [i, part] of parts.entries()) {
    cur = join(cur, part)
    const st = lstatSync(cur, { throwIfNoEntry: false })
    if (!st) {
      mkdirSync(cur, { mode })
      continue
    }
    if (st.isDirectory()) continue
    if (st.isSymbolicLink() && i < depth && statSync(cur, { throwIfNoEntry: false })?.isDirectory()) continue // a system directory the administrator linked
    throw new PvdiskError('EDISK', `${cur} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}; refusing to follow it (making ${dir})`,
      ['below its first level pvdisk follows no link: replace it with a real directory'])
  }
}
