// The rule for paths pvdisk creates, writes, removes or mounts (docs/threat-model.md):
// first-level system directories under --root (/storage, /media, /run, /var) may be links
// the administrator set up; below them nothing is followed. A component that is a
// symbolic link (dangling or not) is refused with a clear error.
import { lstatSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { PvdiskError } from '../errors.js'

/** refuses a symbolic link at any component of path deeper than root's first level; absent components are fine */
export const refuseLinksBelow = (root: string, path: string, what: string): void => {
  const parts = relative(root, path).split(sep).filter(Boolean)
  if (parts[0] === '..') throw new PvdiskError('EDISK', `${what} ${path} is outside ${root}`, ['declare paths inside the root'])
  let cur = join(root, parts[0] ?? '')
  for (const part of parts.slice(1)) {
    cur = join(cur, part)
    const st = lstatSync(cur, { throwIfNoEntry: false })
    if (!st) return
    if (st.isSymbolicLink()) {
      throw new PvdiskError('EDISK', `${cur} is a symbolic link; refusing to follow it (${what} ${path})`,
        ['below its first level pvdisk follows no link: replace the link with a real directory or file'])
    }
  }
}
