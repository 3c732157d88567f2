// node:crypto, loaded at its first use: loading it costs ~4 ms of every start, and the hooks,
// which run at every container start, need it only to make a key or name a crypt mapping.
import { createRequire } from 'node:module'

type Crypto = typeof import('node:crypto')
let loaded: Crypto | undefined

export const crypto = (): Crypto => {
  loaded ??= createRequire(import.meta.url)('node:crypto') as Crypto
  return loaded
}
