// Reading pvdisk's own state files (the plugin's volumes, the usage cache, the gc state).
// A missing file is a first run. A file that does not parse, or that is not what it should
// be, is moved aside (<file>.damaged-<time>) with a warning, never overwritten in place, so
// that a person can look at it; the caller then rebuilds from what the kernel and disks show.
import { existsSync, readFileSync, renameSync } from 'node:fs'

const setAside = (file: string, why: string, warn: (message: string) => void): undefined => {
  const aside = `${file}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`
  try {
    renameSync(file, aside)
    warn(`${file} is damaged (${why}); moved to ${aside}, rebuilding it`)
  } catch (e) {
    warn(`${file} is damaged (${why}) and cannot be moved aside (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); rebuilding it`)
  }
  return undefined
}

/** a state file's text; undefined when there is none, or when it cannot be read (it is then moved aside) */
export const readStateText = (file: string, warn: (message: string) => void): string | undefined => {
  if (!existsSync(file)) return undefined
  try {
    return readFileSync(file, 'utf8')
  } catch (e) {
    return setAside(file, (e as Error).message, warn)
  }
}

/** what a state file's text says; undefined when it is damaged (the file is then moved aside) */
export const parseStateText = <T>(file: string, text: string, isValid: (v: unknown) => v is T, warn: (message: string) => void): T | undefined => {
  let why: string
  try {
    const parsed: unknown = JSON.parse(text)
    if (isValid(parsed)) return parsed
    why = 'not the shape pvdisk writes'
  } catch (e) {
    why = (e as Error).message
  }
  return setAside(file, why, warn)
}

export const readStateFile = <T>(file: string, isValid: (v: unknown) => v is T, warn: (message: string) => void): T | undefined => {
  const text = readStateText(file, warn)
  return text === undefined ? undefined : parseStateText(file, text, isValid, warn)
}
