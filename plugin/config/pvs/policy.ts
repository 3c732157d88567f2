// Which states pvdisk acts on: the secure-boot mode and trust store (flags --secureboot,
// --trust, --oem-name; the environment PVDISK_SECUREBOOT, PVDISK_TRUST, PVDISK_OEM_NAME for
// hooks and the daemon), and the check every command runs before it touches anything.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { FileProblems, type Problem } from '../problems.js'
import { loadTrustStore } from './trust.js'
import { stateJsonOf, StateJsonError } from './state-json.js'
import { VERSION_FILE } from './version.js'
import { SECUREBOOT_MODES, verifyState, type SecurebootMode } from './verify.js'

export interface SecurebootPolicy {
  mode: SecurebootMode
  trust?: string
  oemName?: string
}

/** from the environment: with a trust store and no mode, Pantavisor's default, lenient */
export const policyFromEnv = (env: NodeJS.ProcessEnv = process.env): SecurebootPolicy => {
  const trust = env.PVDISK_TRUST || undefined
  const mode = (env.PVDISK_SECUREBOOT || (trust ? 'lenient' : 'disabled')) as SecurebootMode
  return { mode, ...(trust ? { trust } : {}), ...(env.PVDISK_OEM_NAME ? { oemName: env.PVDISK_OEM_NAME } : {}) }
}

/** problems with the policy itself: an unknown mode, a mode without a trust store */
export const policyProblem = (p: SecurebootPolicy): string | undefined => {
  if (!SECUREBOOT_MODES.includes(p.mode)) return `secure-boot mode "${p.mode}" is not one of ${SECUREBOOT_MODES.join(', ')}`
  if (p.mode !== 'disabled' && !p.trust) return `secure-boot mode ${p.mode} needs a trust store: give --trust DIR (laid out as <etc>/pantavisor/pvs/trust/)`
  if (p.trust && !['ca-certificates.crt', 'ca-oem-certificates.crt', 'pub.pem'].some(f => existsSync(join(p.trust!, f)))) {
    return `${p.trust} holds none of ca-certificates.crt, ca-oem-certificates.crt and pub.pem: not a trust store`
  }
  return undefined
}

/** the problems that make Pantavisor refuse the state (errors) or that it only reports (warnings) */
export const signatureProblems = (stateDir: string, p: SecurebootPolicy): Problem[] => {
  if (p.mode === 'disabled') return []
  const top = new FileProblems(stateDir)
  const bad = policyProblem(p)
  if (bad) {
    top.error('secureboot-config', '', bad, 'see "Signed states" in the README')
    return top.list
  }
  let state
  try {
    state = stateJsonOf(stateDir)
  } catch (e) {
    top.error('state-json-unreadable', '', (e as Error).message, e instanceof StateJsonError ? 'a signed state holds regular files only' : 'check the path')
    return top.list
  }
  const v = verifyState(state, p.mode, loadTrustStore(p.trust!), p.oemName)
  for (const s of v.signatures.filter(s => !s.ok)) {
    top.error('signature-invalid', '', `${s.name}: ${s.why ?? 'invalid'}; Pantavisor (${p.mode}) refuses the state: Signature validation failed`,
      'sign the state again (pvdisk sign or pvr sig), or add the signer\'s CA to the trust store')
  }
  if (VERSION_FILE in state && v.accepted && !v.signatures.some(s => s.ok && s.entries.includes(VERSION_FILE))) {
    top.error('version-unsigned', '', `${VERSION_FILE} is in no valid signature's payload: a version nobody signed protects nothing against a downgrade`,
      `include it in a signature, e.g. pvdisk sign core --raw --include '#spec' --include device.json --include ${VERSION_FILE}`)
  }
  for (const key of v.uncovered) {
    const text = `${key} is not covered by any signature${p.mode === 'audit' ? ' (audit mode: reported, not refused)' : '; Pantavisor (strict) refuses the state: State not fully covered by signatures'}`
    if (p.mode === 'audit') top.warn('state-uncovered', '', text, 'sign it, or include it in a signature')
    else top.error('state-uncovered', '', text, 'sign it (pvdisk sign NAME --include ...), or remove it from the state')
  }
  return top.list
}
