// A seeded fuzz run of validate and app install: realistic files mutated at random (bytes,
// types, nulls, hostile names and paths, deep nesting, huge strings). Whatever the input,
// pvdisk answers with problems or a PvdiskError, never a crash; an input with errors makes
// app install write nothing. FUZZ_CASES and FUZZ_SEED run more, or another sequence, by hand:
//   FUZZ_CASES=100000 FUZZ_SEED=7 npx tap test/config/fuzz.ts
import t from 'tap'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { installApp } from '../../plugin/config/app-install.js'
import { isPvdiskError } from '../../plugin/errors.js'
import { validatePaths } from '../../plugin/config/state.js'

const CASES = Number(process.env.FUZZ_CASES ?? 2000)
const SEED = Number(process.env.FUZZ_SEED ?? 20261201)

/** mulberry32: small, fast, reproducible */
const rng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
  return ((x ^ (x >>> 14)) >>> 0) / 4294967296
}

const HOSTILE = ['..', '../..', '/', '', ' ', 'a/../b', '\u0000', '\n', 'ovl:', 'lxc-overlay', '@', 'permanent@', '@disk', 'x'.repeat(4096),
  '/data/', '//data', '/da\tta', '__proto__', 'constructor', '🙂', '\ud800', 'revision@dm-versatile', 'boot@../x', 'built-in', null, true, 0, -1, 1e308, [], {}]

const base = {
  device: { groups: [{ name: 'app' }], disks: [{ name: 'sec', type: 'dm-crypt-versatile', path: '/storage/s/v.img,2,k', aliases: ['dm-versatile'] }, { name: 'data', type: 'volume-disk' }], volumes: { 'pv--devmeta': { persistence: 'permanent', disk: 'sec' } } },
  src: { '#spec': 'service-manifest-src@1', docker_name: 'x/web', docker_config: { Entrypoint: null, Volumes: { '/var/lib/x': {} } }, persistence: { '/data': 'permanent@sec', 'ovl:/etc/app/': 'boot', '/cache': 'revision@data' } },
  run: { '#spec': 'service-manifest-run@1', name: 'web', storage: { 'docker--data': { persistence: 'permanent', disk: 'sec' } } },
}

type J = null | boolean | number | string | J[] | { [k: string]: J }

const mutateValue = (r: () => number, v: J, depth = 0): J => {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T
  if (r() < 0.15 || depth > 6) return pick(HOSTILE) as J
  if (Array.isArray(v)) {
    const out = v.map(x => (r() < 0.3 ? mutateValue(r, x, depth + 1) : x))
    if (r() < 0.2) out.push(pick(HOSTILE) as J)
    if (r() < 0.1 && out.length) out.splice(Math.floor(r() * out.length), 1)
    return out
  }
  if (v && typeof v === 'object') {
    const out: { [k: string]: J } = {}
    for (const [k, x] of Object.entries(v)) {
      if (r() < 0.08) continue
      const key = r() < 0.08 ? String(pick(HOSTILE)) : k
      Object.defineProperty(out, key, { value: r() < 0.35 ? mutateValue(r, x, depth + 1) : x, enumerable: true, writable: true, configurable: true })
    }
    if (r() < 0.1) out[String(pick(HOSTILE))] = pick(HOSTILE) as J
    return out
  }
  return r() < 0.5 ? (pick(HOSTILE) as J) : v
}

/** text-level damage on top: a byte changed, cut, duplicated, or the nesting made very deep */
const mutateText = (r: () => number, text: string): string => {
  const at = Math.floor(r() * text.length)
  const roll = r()
  if (roll < 0.05) return text.slice(0, at)
  if (roll < 0.1) return text.slice(0, at) + String.fromCharCode(Math.floor(r() * 256)) + text.slice(at + 1)
  if (roll < 0.12) return '['.repeat(300) + text + ']'.repeat(300)
  if (roll < 0.14) return text.slice(0, at) + text.slice(at, at + 40) + text.slice(at)
  return text
}

const snapshot = (dir: string): string => readdirSync(dir, { recursive: true }).map(String).sort()
  .map(p => `${p}:${statSync(join(dir, p)).isFile() ? readFileSync(join(dir, p), 'latin1') : 'dir'}`).join('\n')

t.test(`${CASES} seeded cases (seed ${SEED}): problems or a PvdiskError, never a crash; errors write nothing`, async t => {
  const r = rng(SEED)
  const dir = t.testdir({ state: { web: {} } })
  const state = join(dir, 'state')
  let crashes = 0
  let wroteOnError = 0
  let withErrors = 0
  for (let i = 0; i < CASES; i++) {
    for (const [file, value] of [['device.json', base.device], ['web/src.json', base.src], ['web/run.json', base.run]] as const) {
      const mutated = r() < 0.5 ? mutateValue(r, value as J) : value
      writeFileSync(join(state, file), mutateText(r, JSON.stringify(mutated, null, r() < 0.5 ? '\t' : 4)))
    }
    try {
      const problems = await validatePaths([state])
      const errors = problems.some(p => p.severity === 'error')
      if (errors) withErrors++
      const before = snapshot(state)
      try {
        await installApp(state, 'web')
      } catch (e) {
        if (!isPvdiskError(e)) throw e
        if (snapshot(state) !== before) wroteOnError++
      }
      if (errors && problems.some(p => p.file.endsWith('src.json') && p.severity === 'error') && snapshot(state) !== before) wroteOnError++
    } catch (e) {
      crashes++
      if (crashes <= 3) t.comment(`case ${i}: ${(e as Error).stack ?? String(e)}`)
    }
  }
  t.equal(crashes, 0, 'no crash')
  t.equal(wroteOnError, 0, 'invalid input never writes')
  t.ok(withErrors > CASES / 10, `${withErrors} cases with errors: the mutations bite`)
})
