// Which disks should be up: recorded when pvdisk brings a disk up or down, under /run so
// that a reboot forgets it. The health check holds the kernel to it.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
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
  mkdirSync(dirname(expectedFileOf(ctx)), { recursive: true, mode: 0o700 })
  writeFileSync(expectedFileOf(ctx), JSON.stringify([...set].sort()))
}
