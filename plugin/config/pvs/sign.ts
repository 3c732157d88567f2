// `pvdisk sign`: a pvs@2 signature of a state, written as `pvr sig add` writes
// _sigs/<name>.json: the protected header as go-jose writes it (alg, the public key as jwk,
// pvs include/exclude, typ PVS, x5c), the payload the device rebuilds from those globs, and
// the file as canonical JSON. RSA keys sign RS256; EC keys ES256/384/512 by curve, with the
// signature DER-encoded as the device verifies it (pvr itself writes r||s, which the device
// refuses). The private key is read as bytes and never becomes a string.
import { crypto } from '../../host/lazy-crypto.js'
import type { KeyObject } from 'node:crypto'
import type { Json } from '../json-source.js'
import { canonicalJson } from './canonical-json.js'
import { HASH_OF_ALG, pairsOf, select } from './verify.js'

export interface SignOptions {
  /** PEM bytes of the private key */
  key: Buffer
  /** PEM bytes of the certificate chain, leaf first, for x5c */
  x5c?: Buffer
  include: string[]
  exclude: string[]
}

const CURVES: Record<string, string> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' }

const algOf = (key: KeyObject): string => {
  if (key.asymmetricKeyType === 'rsa') return 'RS256'
  const curve = key.asymmetricKeyDetails?.namedCurve ?? ''
  if (key.asymmetricKeyType === 'ec' && CURVES[curve]) return CURVES[curve]
  throw new Error(`a ${key.asymmetricKeyType ?? 'unknown'} ${curve} key cannot sign pvs (RSA, or EC on P-256, P-384 or P-521)`)
}

/** the public key as go-jose embeds it: its fields in go-jose's order */
const jwkOf = (pub: KeyObject): string => {
  const j = pub.export({ format: 'jwk' }) as { kty: string, n?: string, e?: string, crv?: string, x?: string, y?: string }
  return j.kty === 'RSA' ? `{"kty":"RSA","n":"${j.n}","e":"${j.e}"}` : `{"kty":"EC","crv":"${j.crv}","x":"${j.x}","y":"${j.y}"}`
}

const certsOf = (pem: Buffer): string[] =>
  (pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map(c => new (crypto().X509Certificate)(c).raw.toString('base64'))

/** the text of _sigs/<name>.json for the state, and the state keys its payload covers */
export const signState = (state: { [key: string]: Json }, o: SignOptions): { text: string, entries: string[] } => {
  const c = crypto()
  const key = c.createPrivateKey(o.key)
  const alg = algOf(key)
  const x5c = o.x5c ? certsOf(o.x5c) : []
  const header = `{"alg":"${alg}","jwk":${jwkOf(c.createPublicKey(key))},"pvs":{"include":${canonicalJson(o.include)},"exclude":${canonicalJson(o.exclude)}},"typ":"PVS"${x5c.length ? `,"x5c":${JSON.stringify(x5c)}` : ''}}`
  const protectedB64 = Buffer.from(header).toString('base64url')
  const pairs = pairsOf(state)
  const payload = select(pairs, o.include, o.exclude)
  const input = Buffer.from(`${protectedB64}.${Buffer.from(payload).toString('base64url')}`)
  const sig = c.sign(HASH_OF_ALG[alg]!, input, key.asymmetricKeyType === 'ec' ? { key, dsaEncoding: 'der' } : { key, padding: c.constants.RSA_PKCS1_PADDING })
  return { text: canonicalJson({ '#spec': 'pvs@2', protected: protectedB64, signature: sig.toString('base64url') }), entries: pairs.filter(p => p.included).map(p => p.key) }
}

/** pvr sig add's globs: --part P takes P/** and _config/P/** (unless noconfig), less P/src.json and the signature itself */
export const partGlobs = (part: string, o: { include?: string[], exclude?: string[], noconfig?: boolean, raw?: boolean }): { include: string[], exclude: string[] } => {
  const join = (g: string) => (o.raw ? g : `${part}/${g}`)
  const include = (o.include ?? ['**']).map(join)
  const exclude = [...(o.exclude ?? ['src.json']).map(join), `_sigs/${part}.json`]
  if (!o.raw && !o.noconfig) include.push(`_config/${part}/**`)
  return { include, exclude }
}
