import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { readStateFile } from '../../plugin/host/state-file.js'
import { loadCache } from '../../plugin/caretaker/usage-report.js'

const isObj = (v: unknown): v is { a: number } => typeof (v as { a?: unknown } | null)?.a === 'number'

t.test('a missing state file is a first run; a good one is read', async t => {
  const dir = t.testdir({ 'good.json': '{"a": 1}' })
  const warnings: string[] = []
  t.equal(readStateFile(join(dir, 'none.json'), isObj, m => warnings.push(m)), undefined)
  t.same(readStateFile(join(dir, 'good.json'), isObj, m => warnings.push(m)), { a: 1 })
  t.same(warnings, [])
})

t.test('a damaged or mis-shaped state file is moved aside with a warning, never overwritten', async t => {
  const dir = t.testdir({ 'cut.json': '{"a": 1', 'shape.json': '{"b": 2}', 'usage-cache.json': '[1, 2' })
  const warnings: string[] = []
  t.equal(readStateFile(join(dir, 'cut.json'), isObj, m => warnings.push(m)), undefined)
  t.equal(readStateFile(join(dir, 'shape.json'), isObj, m => warnings.push(m)), undefined)
  t.match(warnings, [/cut\.json is damaged \(.*JSON.*\); moved to .*cut\.json\.damaged-/, /shape\.json is damaged \(not the shape pvdisk writes\)/])
  const aside = readdirSync(dir).filter(f => f.includes('.damaged-')).sort()
  t.equal(aside.length, 2)
  t.equal(readFileSync(join(dir, aside.find(f => f.startsWith('cut')) ?? ''), 'utf8'), '{"a": 1', 'kept as it was, for a person to look at')
  t.same(loadCache(join(dir, 'usage-cache.json'), m => warnings.push(m)), { dirs: {}, measurements: 0 }, 'a damaged usage cache: the next measurement walks everything')
  t.match(warnings[2], /usage-cache\.json is damaged/)
})
