// Clevis, the standard for binding a disk key to a TPM's PCRs or a Tang server: seal 32 key
// bytes into a JWE, unseal them again, and turn Clevis's failures into a sentence that says
// which pin refused and what to do. Key bytes travel only through stdin and stdout, as
// bytes, never through argv or a JS string; the JWE itself holds no secret.
import { isJsonObject, type Json } from '../config/json-source.js'
import type { UnlockSpec } from '../config/unlock.js'
import { errorSaid } from '../errors.js'
import type { DiskContext } from './context.js'

type ClevisUnlock = Extract<UnlockSpec, { kind: 'clevis' }>

/** the programs each pin runs, checked before anything is created */
export const clevisTools = (spec: UnlockSpec): string[] => {
  if (spec.kind !== 'clevis') return []
  const text = JSON.stringify({ [spec.pin]: spec.config })
  return ['clevis', 'jose', ...(text.includes('"tpm2"') ? ['clevis-encrypt-tpm2', 'tpm2_createprimary', 'tpm2_unseal'] : []),
    ...(text.includes('"tang"') ? ['clevis-encrypt-tang', 'curl'] : [])]
}

/** the JWE of key under the disk's pins (tang's advertised keys are trusted unless "thp" pins one) */
export const seal = async (ctx: DiskContext, spec: ClevisUnlock, key: Uint8Array): Promise<Buffer> => {
  const r = await ctx.runner.run({ argv: ['clevis', 'encrypt', spec.pin, JSON.stringify(spec.config), '-y'], input: key, secretInput: true, timeoutMs: 120_000 })
  return Buffer.from(r.stdout, 'utf8')
}

/** the key bytes a JWE holds; the caller wipes them */
export const unseal = async (ctx: DiskContext, jwe: Uint8Array): Promise<Buffer> => {
  const r = await ctx.runner.run({ argv: ['clevis', 'decrypt'], input: jwe, binaryOutput: true, timeoutMs: 120_000 })
  return r.output ?? Buffer.alloc(32)
}

const tangUrls = (pin: string, config: Json): string[] => {
  if (!isJsonObject(config)) return []
  if (pin === 'tang') return typeof config.url === 'string' ? [config.url] : []
  if (pin !== 'sss' || !isJsonObject(config.pins)) return []
  return Object.entries(config.pins).flatMap(([p, list]) => (Array.isArray(list) ? list : [list]).flatMap(c => tangUrls(p, c)))
}

/** the Tang servers of a pin that do not answer (sss hides its pins' own messages, so ask them) */
export const unreachableTang = async (ctx: DiskContext, spec: UnlockSpec): Promise<string[]> => {
  if (spec.kind !== 'clevis') return []
  const down: string[] = []
  for (const url of tangUrls(spec.pin, spec.config)) {
    const r = await ctx.runner.run({ argv: ['curl', '-sS', '-m', '5', '-o', '/dev/null', '--', `${url.replace(/\/$/, '')}/adv`], okCodes: [...Array(100).keys()] })
    if (r.code !== 0) down.push(url)
  }
  return down
}

/** why Clevis could not unseal, from what its pins printed and which Tang servers answer */
export const unsealFailure = (spec: UnlockSpec, e: unknown, tangDown: readonly string[] = []): string => {
  const text = errorSaid(e)
  const reasons: string[] = []
  if (/PCR have changed|policy check failed|TPM_RC_POLICY|0x0000099d|0x00000128/i.test(text)) {
    reasons.push('the TPM refuses to unseal: its PCRs no longer match the policy the key was sealed to (a firmware, boot loader or Secure Boot change)')
  } else if (/out of memory for (session|object) contexts|TPM_RC_(SESSION|OBJECT)_MEMORY/i.test(text)) {
    reasons.push('the TPM has no free session or object slots (reach it through the kernel\'s resource manager, /dev/tpmrm0)')
  } else if (/tcti|Cannot connect to swtpm|resource manager is needed|Could not load|\/dev\/tpm/i.test(text)) {
    reasons.push('no TPM answers (no /dev/tpmrm0, or TPM2TOOLS_TCTI points at nothing)')
  }
  const named = /Error communicating with server (\S+)|Unable to fetch advertisement: '([^']+)'/.exec(text)
  const down = new Set(tangDown.map(u => u.replace(/\/$/, '')))
  if (named) down.add((named[1] ?? named[2] ?? '').replace(/\/adv\/?$/, '').replace(/\/$/, ''))
  for (const url of down) reasons.push(`the Tang server ${url} cannot be reached`)
  if (reasons.length === 0) reasons.push(`Clevis could not unseal the key (${text.split('\n').filter(Boolean).slice(-1)[0] ?? 'no message'})`)
  return `${spec.summary}: ${reasons.join('; and ')}`
}
