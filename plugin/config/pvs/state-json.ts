// The state JSON a signature covers, as pvr builds it from a checkout (GetWorkingJson):
// "#spec", every file but .pvr/ and .pv/ (and .git/), a *.json file as its JSON, any other
// file as the sha256 of its bytes. A state JSON file (a device's .pvr/json, a pvr export's
// json) is taken as it is. Links are not followed: a link in a signed state is refused.
import { crypto } from '../../host/lazy-crypto.js'
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { isJsonObject, type Json } from '../json-source.js'

const SKIP = new Set(['.pvr', '.pv', '.git'])

const sha256File = (file: string): string => {
  const h = crypto().createHash('sha256')
  const fd = openSync(file, 'r')
  try {
    const buf = Buffer.alloc(1 << 20)
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n))
  } finally {
    closeSync(fd)
  }
  return h.digest('hex')
}

export class StateJsonError extends Error {}

/** the state JSON of a checkout directory or a state JSON file */
export const stateJsonOf = (path: string): { [key: string]: Json } => {
  // the state itself may be reached through a link (trails/current); nothing inside it may
  if (!statSync(path).isDirectory()) {
    const v = JSON.parse(readFileSync(path, 'utf8')) as Json
    if (!isJsonObject(v)) throw new StateJsonError(`${path} is not a state JSON object`)
    return v
  }
  const state: { [key: string]: Json } = { '#spec': 'pantavisor-service-system@1' }
  const walk = (dir: string, rel: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const key = rel === '' ? entry.name : `${rel}/${entry.name}`
      if (rel === '' && SKIP.has(entry.name)) continue
      const file = join(dir, entry.name)
      if (entry.isSymbolicLink()) throw new StateJsonError(`${file} is a symbolic link: a signed state holds files only`)
      if (entry.isDirectory()) walk(file, key)
      else if (entry.isFile()) {
        if (entry.name.endsWith('.json')) {
          try {
            state[key] = JSON.parse(readFileSync(file, 'utf8')) as Json
          } catch (e) {
            throw new StateJsonError(`${file} is not JSON (${(e as Error).message})`)
          }
        } else state[key] = sha256File(file)
      }
    }
  }
  walk(path, '')
  return state
}
