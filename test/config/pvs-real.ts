// pvs@2 verification against signed states made outside this repo (../shared/real-world/pvs:
// Pantavisor's pvtx tests and meta-pantavisor's OEM-signed export), with VERIFY.tsv's
// Pantavisor-model verdicts for the default trust store as the oracle.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { loadTrustStore } from '../../plugin/config/pvs/trust.js'
import { verifyState } from '../../plugin/config/pvs/verify.js'

const base = fileURLToPath(new URL('../../../shared/real-world/pvs/', import.meta.url))
const verdict = (v: ReturnType<typeof verifyState>): string =>
  v.accepted ? 'accept' : v.result === 'Signature validation failed' ? 'reject:validation' : 'reject:uncovered'

t.test('every real signed state gets Pantavisor\'s verdict, lenient and strict', async t => {
  if (!existsSync(join(base, 'VERIFY.tsv'))) return t.fail(`${base} is missing: the real pvs vectors are needed`)
  const rows = readFileSync(join(base, 'VERIFY.tsv'), 'utf8').trim().split('\n').slice(1).map(l => l.split('\t'))
  const trust = loadTrustStore(join(base, 'trust'))
  const files = new Map<string, { lenient: string, strict: string }>()
  for (const [file, , , , lenient, strict] of rows) files.set(file!, { lenient: lenient!, strict: strict! })
  t.ok(files.size >= 20, `${files.size} states`)
  for (const [file, want] of files) {
    const text = file.endsWith('.tgz') ? execFileSync('tar', ['-xzOf', join(base, file), 'json'], { encoding: 'utf8' }) : readFileSync(join(base, file), 'utf8')
    const state = JSON.parse(text)
    t.equal(verdict(verifyState(state, 'lenient', trust)), want.lenient, `${file}: lenient`)
    t.equal(verdict(verifyState(state, 'strict', trust)), want.strict, `${file}: strict`)
  }
})
