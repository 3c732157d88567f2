// Which disks should be up: recorded when pvdisk brings a disk up or down, under /run so
// that a reboot forgets it. The health check holds the kernel to it.
import { readFileSync } from 'node:fs'
import { writeFileAtomicSync } from '../host/atomic-write.js'
import { mkdirNoFollow } from '../host/no-follow.js'
import { dirname } from 'node:path'
import { hostPath, type DiskContext } from './context.js'

export const expectedFileOf = (ctx: DiskContext): string => hostPath(ctx, '/run/pvdisk/expected-disks.json')

export const readExpected = (ctx: DiskContext): string[] => {
  try {
    return JSON.parse(readFileSync(expectedFileOf(ctx), 'utf8')) as string[]
  } catch {
    return []
  }
}

export const recordExpected = (ctx: DiskContext, name: string, up: boolean): void => {
  if (ctx.runner.planning) return
  const set = new Set(readExpected(ctx))
  if (up === set.has(name)) return
  if (up) set.add(name)
  else set.delete(name)
  mkdirNoFollow(ctx.root, dirname(expectedFileOf(ctx)), 0o700)
  // temp file and rename: a link planted at the path is replaced, never written through
  writeFileAtomicSync(expectedFileOf(ctx), JSON.stringify([...set].sort()), 0o600)
}
