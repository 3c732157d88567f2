// Pantavisor's verification of a signed state (signature.c, pvs@2), decision for decision:
// every `_sigs/*` pair whose value is a pvs@2 object must verify over the payload its
// protected header selects (include, then exclude, with the device's globs; the selected
// pairs as canonical JSON in key order); in strict and audit mode every other pair must be
// matched by some signature's include or exclude; audit lets an uncovered state through.
// Where pvr and the device disagree, this follows the device: "**" alone selects nothing,
// ECDSA signatures are DER, the alg picks only the hash, certificate dates are not checked.
import { crypto } from '../../host/lazy-crypto.js'
import type { KeyObject, X509Certificate } from 'node:crypto'
import { isJsonObject, type Json } from '../json-source.js'
import { canonicalJson } from './canonical-json.js'
import { pvsGlobMatches } from './fnmatch.js'
import { chainToStore, type TrustStore } from './trust.js'

export const SECUREBOOT_MODES = ['disabled', 'audit', 'lenient', 'strict'] as const
export type SecurebootMode = (typeof SECUREBOOT_MODES)[number]

export interface SignatureCheck {
  /** the _sigs/ key */
  name: string
  ok: boolean
  /** the state keys its payload covers */
  entries: string[]
  why?: string
}

export interface StateVerdict {
  accepted: boolean
  /** Pantavisor's sign_state_res_t, as its log says it */
  result: 'ok' | 'Signature validation failed' | 'State not fully covered by signatures'
  signatures: SignatureCheck[]
  /** state keys no signature covers (never _sigs/) */
  uncovered: string[]
}

const HASHES: Record<string, string> = { RS256: 'sha256', ES256: 'sha256', ES384: 'sha384', ES512: 'sha512' }

export interface Pair { key: string, text: string, included: boolean, covered: boolean }

/** a pair as the device writes it into a payload: objects and arrays as JSON, anything else in quotes */
const pairText = (key: string, v: Json): string => {
  const value = isJsonObject(v) || Array.isArray(v) ? canonicalJson(v) : typeof v === 'string' ? canonicalJson(v) : `"${canonicalJson(v)}"`
  return `${canonicalJson(key)}:${value}`
}

const decodeHeader = (protectedB64: string): { [key: string]: Json } | undefined => {
  try {
    const h = JSON.parse(Buffer.from(protectedB64, 'base64url').toString('utf8')) as Json
    return isJsonObject(h) ? h : undefined
  } catch {
    return undefined
  }
}

const strings = (v: Json | undefined): string[] | undefined => (Array.isArray(v) && v.every(x => typeof x === 'string') ? v as string[] : undefined)

/** the payload bytes one signature covers; marks what it includes and covers */
export const select = (pairs: Pair[], include: string[], exclude: string[]): string => {
  for (const p of pairs) p.included = false
  for (const [globs, included] of [[include, true], [exclude, false]] as const) {
    for (const g of globs) {
      for (const p of pairs) {
        if (pvsGlobMatches(g, p.key)) {
          p.included = included
          p.covered = true
        }
      }
    }
  }
  const parts = pairs.filter(p => p.included).map(p => p.text)
  // signature.c writes "{", the pairs, then "}" over the last comma: with no pair that is "}"
  return parts.length === 0 ? '}' : `{${parts.join(',')}}`
}

const oemSignable = (pairs: Pair[], oemName: string | undefined): boolean => {
  const forbidden = ['bsp/**', ...(oemName ? [`${oemName}/**`] : [])]
  return !pairs.some(p => p.included && forbidden.some(g => pvsGlobMatches(g, p.key)))
}

const commonName = (cert: X509Certificate): string | undefined => /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1]

const checkOne = (name: string, sig: { [key: string]: Json }, pairs: Pair[], trust: TrustStore, oemName: string | undefined): SignatureCheck => {
  const fail = (why: string, entries: string[] = []): SignatureCheck => ({ name, ok: false, entries, why })
  const h = decodeHeader(sig.protected as string)
  if (!h) return fail('its protected header is not base64url JSON')
  if (h.typ !== 'PVS') return fail(`its header says typ ${JSON.stringify(h.typ)}, not "PVS"`)
  const pvs = isJsonObject(h.pvs) ? h.pvs : undefined
  const include = strings(pvs?.include)
  const exclude = strings(pvs?.exclude)
  if (!include || !exclude) return fail('its header has no pvs include and exclude lists')
  const payload = select(pairs, include, exclude)
  const entries = pairs.filter(p => p.included).map(p => p.key)
  if (typeof h.alg !== 'string' || !HASHES[h.alg]) return fail(`unknown algorithm ${JSON.stringify(h.alg)}`, entries)
  let key: KeyObject
  const x5c = strings(h.x5c)
  if (x5c && x5c.length > 0) {
    const oem = oemSignable(pairs, oemName)
    const chain = chainToStore(x5c, store => (oem && oemName !== undefined && commonName(store.leaf) === oemName ? trust.oem : trust.ca))
    if ('error' in chain) return fail(chain.error, entries)
    key = chain.key
  } else if (trust.pub) {
    key = trust.pub
  } else {
    return fail('it has no x5c certificates and the trust store has no pub.pem', entries)
  }
  const input = Buffer.from(`${sig.protected as string}.${Buffer.from(payload).toString('base64url')}`)
  const signature = Buffer.from(sig.signature as string, 'base64url')
  let ok = false
  try {
    ok = crypto().verify(HASHES[h.alg]!, input, key.asymmetricKeyType === 'ec' ? { key, dsaEncoding: 'der' } : { key, padding: crypto().constants.RSA_PKCS1_PADDING }, signature)
  } catch {
    ok = false
  }
  return ok ? { name, ok, entries } : fail(`the signature does not verify over its ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}`, entries)
}

/** the state's pairs in the order of its canonical JSON, each as the device writes it into a payload */
export const pairsOf = (state: { [key: string]: Json }): Pair[] =>
  Object.keys(state).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    .map(key => ({ key, text: pairText(key, state[key] as Json), included: false, covered: false }))

export const HASH_OF_ALG = HASHES

/** whether Pantavisor in this mode would accept the state JSON (an object of state keys) */
export const verifyState = (state: { [key: string]: Json }, mode: SecurebootMode, trust: TrustStore, oemName?: string): StateVerdict => {
  const pairs = pairsOf(state)
  const keys = pairs.map(p => p.key)
  if (mode === 'disabled') return { accepted: true, result: 'ok', signatures: [], uncovered: [] }
  const signatures: SignatureCheck[] = []
  for (const key of keys) {
    const v = state[key] as Json
    // as the device: a pvs@2 value without "protected" and "signature" strings is not a signature at all
    if (isJsonObject(v) && v['#spec'] === 'pvs@2' && typeof v.protected === 'string' && typeof v.signature === 'string') signatures.push(checkOne(key, v, pairs, trust, oemName))
  }
  if (signatures.some(s => !s.ok)) return { accepted: false, result: 'Signature validation failed', signatures, uncovered: [] }
  const uncovered = mode === 'strict' || mode === 'audit' ? pairs.filter(p => !p.key.startsWith('_sigs/') && !p.covered).map(p => p.key) : []
  if (uncovered.length > 0 && mode === 'strict') return { accepted: false, result: 'State not fully covered by signatures', signatures, uncovered }
  return { accepted: true, result: 'ok', signatures, uncovered }
}
