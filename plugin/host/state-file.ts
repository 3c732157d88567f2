// Reading pvdisk's own state files (the plugin's volumes, the usage cache, the gc state).
// A missing file is a first run. A file that does not parse, or that is not what it should
// be, is moved aside (<file>.damaged-<time>) with a warning, never overwritten in place, so
// that a person can look at it; the caller then rebuilds from what the kernel and disks show.
import { existsSync, readFileSync, renameSync } from 'node:fs'

export const readStateFile = <T>(file: string, isValid: (v: unknown) => v is T, warn: (message: string) => void): T | undefined => {
  if (!existsSync(file)) return undefined
  let why: string
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'))
    if (isValid(parsed)) return parsed
    why = 'not the shape pvdisk writes'
  } catch (e) {
    why = (e as Error).message
  }
  const aside = `${file}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`
  try {
    renameSync(file, aside)
    warn(`${file} is damaged (${why}); moved to ${aside}, rebuilding it`)
  } catch (e) {
    warn(`${file} is damaged (${why}) and cannot be moved aside (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); rebuilding it`)
  }
  return undefined
}
