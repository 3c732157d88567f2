#!/usr/bin/env node
// Benchmark (run by hand, after `npm run build`): usage of a volume holding 100,000 small
// files, the first measurement against a later one when nothing changed, in one run.
// Target: the later measurement at least 20x cheaper.
//   node bench/usage.mjs [FILES]
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { emptyCache, measureTree } from '../dist/usage.js'

const files = Number(process.argv[2] ?? 100_000)
const dir = mkdtempSync(join(tmpdir(), 'pvdisk-usage-'))
try {
  const perDir = 1000
  for (let d = 0; d < files / perDir; d++) {
    const sub = join(dir, `d${d % 10}`, `e${d}`)
    mkdirSync(sub, { recursive: true })
    for (let f = 0; f < perDir; f++) writeFileSync(join(sub, `f${f}`), 'x'.repeat(f % 300))
  }
  const cache = emptyCache()
  const time = fn => { const t0 = process.hrtime.bigint(); const r = fn(); return [Number(process.hrtime.bigint() - t0) / 1e6, r] }
  const [first, a] = time(() => measureTree(dir, cache))
  const later = []
  let b
  for (let i = 0; i < 5; i++) { const [ms, r] = time(() => measureTree(dir, cache)); later.push(ms); b = r }
  later.sort((x, y) => x - y)
  const m = later[2]
  console.log(`${a.files} files in ${a.dirs} directories, ${a.bytes} bytes`)
  console.log(`first measurement ${first.toFixed(1)} ms (${a.stats} stats); later, unchanged: median ${m.toFixed(1)} ms (${b.stats} stats)`)
  console.log(`ratio ${(first / m).toFixed(1)}x cheaper (target >= 20x): ${first / m >= 20 ? 'met' : 'NOT met'}`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
