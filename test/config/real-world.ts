// pvdisk against real Pantavisor files: the states and files in ../shared/real-world/
// pantavisor-files (from Pantavisor's own repositories, tests and docs), read by path,
// never copied into the repository. What Pantavisor and pvr accept is accepted; app install
// agrees with validate, changes nothing that is already right, and keeps pvr's style.
import t from 'tap'
import { chmodSync, cpSync, existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { installApp } from '../../plugin/config/app-install.js'
import { loadState, validateFile } from '../../plugin/config/state.js'
import { requirePrereq } from '../fixtures/prereq.js'

const corpus = fileURLToPath(new URL('../../../shared/real-world/pantavisor-files/', import.meta.url))

const states = (): string[] => readdirSync(corpus).flatMap(repo => {
  const dir = join(corpus, repo, 'states')
  return existsSync(dir) ? readdirSync(dir).map(s => join(dir, s)) : []
})

// Pantavisor 028+ refuses a dcp/caam disk without "mode": the states from before it do not boot there
const REFUSED_028: Record<string, string[]> = {
  'bsp_init@ab154827': ['device.json /disks/0/mode'],
  'state_bsp_update@ab154827': ['device.json /disks/0/mode'],
  'bsp_init_groups@ab154827': ['disks.json /0/mode'],
}

t.test('every real state validates as Pantavisor judges it', async t => {
  if (!requirePrereq(t, existsSync(corpus), `the real-world corpus is missing at ${corpus}`)) return
  const all = states()
  t.ok(all.length >= 20, `${all.length} real states`)
  for (const dir of all) {
    const name = dir.split('/').pop() ?? ''
    const state = await loadState(dir)
    const errors = state.problems.filter(p => p.severity === 'error').map(p => `${p.file.slice(dir.length + 1)} ${p.pointer}`)
    t.same(errors, REFUSED_028[name] ?? [], `${name}: ${REFUSED_028[name] ? 'refused by 028+ for the missing mode only' : 'no error'}`)
    t.notOk(state.problems.some(p => p.code === 'run-json-stale' && !name.startsWith('statelib_test')), `${name}: run.json files are up to date`)
  }
})

t.test('the legacy state reads disks.json and groups.json; its disk references resolve', async t => {
  if (!requirePrereq(t, existsSync(corpus), 'the real-world corpus is missing')) return
  const dir = states().find(s => s.endsWith('statelib_test-srcBuff@8c85f041'))
  if (!dir) return t.fail('statelib_test-srcBuff is in the corpus')
  const state = await loadState(dir)
  t.ok(state.disks.disks.has('dm-versatile'), 'dm-versatile comes from disks.json')
  t.notOk(state.problems.some(p => p.code === 'persistence-disk-unknown' || p.code === 'device-json-missing'))
})

t.test('app install on a copy of every real state: nothing already right changes; a stale run.json is brought up to date in pvr checkout style', async t => {
  if (!requirePrereq(t, existsSync(corpus), 'the real-world corpus is missing')) return
  const work = t.testdir({})
  for (const dir of states()) {
    const name = dir.split('/').pop() ?? ''
    const copy = join(work, name)
    cpSync(dir, copy, { recursive: true })
    chmodSync(copy, 0o755)
    for (const app of readdirSync(copy)) {
      const appDir = join(copy, app)
      if (!statSync(appDir).isDirectory() || !existsSync(join(appDir, 'src.json')) || app === 'bsp' || app.startsWith('_')) continue
      chmodSync(appDir, 0o755)
      const run = join(appDir, 'run.json')
      if (existsSync(run)) chmodSync(run, 0o644)
      const before = existsSync(run) ? readFileSync(run, 'utf8') : undefined
      const r = await installApp(copy, app)
      const stale = name.startsWith('statelib_test') && app === 'pvr-sdk' // its run.json lacks the /var/dmcrypt/volume its src.json declares
      t.equal(r.changed, stale, `${name} ${app}: ${stale ? 'brought up to date' : 'already right'}`)
      if (stale && before !== undefined) {
        const after = readFileSync(run, 'utf8')
        t.notOk(after.endsWith('\n'), 'no final newline, as pvr checkout writes')
        t.match(after, /^\{\n {4}"#spec"/, '4 spaces, keys sorted')
        const added = ['        "docker--var-dmcrypt-volume": {', '            "disk": "dm-versatile",', '            "persistence": "permanent"', '        },', ''].join('\n')
        t.ok(after.includes(added), 'the missing volume is added in place')
        t.equal(after.replace(added, ''), before, 'and nothing else changes')
        t.equal((await installApp(copy, app)).changed, false, 'a second run changes nothing')
      }
    }
    t.notOk((await loadState(copy)).problems.some(p => p.code === 'run-json-stale'), `${name}: validate agrees afterwards`)
  }
})

t.test('every real device.json, disks.json, groups.json, src.json and run.json file is read as Pantavisor reads it', async t => {
  if (!requirePrereq(t, existsSync(corpus), 'the real-world corpus is missing')) return
  const walk = (d: string): string[] => readdirSync(d).flatMap(f => {
    const p = join(d, f)
    return statSync(p).isDirectory() ? (f === 'states' ? [] : walk(p)) : [p]
  })
  const files = walk(corpus).filter(f => /(^|\/)(device|disks|disks_v3|groups|src|run)\.json$/.test(f))
  t.ok(files.length >= 25, `${files.length} files`)
  for (const f of files) {
    const problems = await validateFile(f)
    t.notOk(problems.some(p => p.code === 'file-kind-unknown' || (p.code === 'schema-type' && /not null/.test(p.message))),
      `${f.slice(corpus.length)}: recognised, and Docker's nulls accepted`)
  }
})

t.test('every real state JSON (a whole state in one file) validates as its checkout does', async t => {
  if (!requirePrereq(t, existsSync(corpus), 'the real-world corpus is missing')) return
  const walk = (d: string): string[] => readdirSync(d).flatMap(f => {
    const p = join(d, f)
    return statSync(p).isDirectory() ? (f === 'states' ? [] : walk(p)) : [p]
  })
  const stateJsons = walk(corpus).filter(f => f.endsWith('.json') && readFileSync(f, 'utf8').includes('"pantavisor-service-system@1"'))
  t.ok(stateJsons.length >= 20, `${stateJsons.length} state JSONs`)
  const refused: Record<string, string[]> = { 'bsp_init.json': ['/device.json/disks/0/mode'], 'state_bsp_update.json': ['/device.json/disks/0/mode'], 'bsp_init_groups.json': ['/disks.json/0/mode'] }
  for (const f of stateJsons) {
    const name = f.split('/').pop() ?? ''
    const problems = await validateFile(f)
    t.same(problems.filter(p => p.severity === 'error').map(p => p.pointer), refused[name] ?? [], `${f.slice(corpus.length)}: ${refused[name] ? 'refused by 028+ for the missing mode only' : 'no error'}`)
    t.ok(problems.every(p => p.file === f && p.line !== undefined), 'every problem is placed in the file, with a line')
  }
})
