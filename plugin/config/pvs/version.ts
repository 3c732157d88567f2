// A state's version, for anti-rollback: <state>/pvdisk.json {"#spec": "pvdisk-state@1",
// "version": N}, a file the state's signature covers like any other. A state without one has
// version 0.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { isJsonObject } from '../json-source.js'

export const VERSION_FILE = 'pvdisk.json'

export const stateVersion = (stateDir: string): { version: number } | { error: string } => {
  const file = join(stateDir, VERSION_FILE)
  if (!existsSync(file)) return { version: 0 }
  let v: unknown
  try {
    v = JSON.parse(readFileSync(file, 'utf8'))
  } catch (e) {
    return { error: `${file} is not JSON (${(e as Error).message})` }
  }
  const version = isJsonObject(v as never) ? (v as { version?: unknown }).version : undefined
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) {
    return { error: `${file}: "version" must be a whole number, 0 or more (found ${JSON.stringify(version)})` }
  }
  return { version }
}
