// How each crypt type and mode creates, loads and drops its key and maps the image:
// crypt-keys.ts (versatile, kernel trusted keys, and what they share) and crypt-nxp.ts (the
// NXP vendor tools). Same key files, keyring descriptions and dm tables as Pantavisor's
// crypt script, so a device can move between the two without re-keying.
import { caamMainline, versatile, type CryptScheme } from './crypt-keys.js'
import { caamNxp, dcpMainline, dcpNxp } from './crypt-nxp.js'

export type { CryptKeyRef, CryptScheme } from './crypt-keys.js'

export const schemeOf = (type: string, mode: string | undefined): CryptScheme => {
  if (type === 'dm-crypt-caam') return mode === 'mainline' ? caamMainline : caamNxp
  if (type === 'dm-crypt-dcp') return mode === 'mainline' ? dcpMainline : dcpNxp
  return versatile
}

