// Files as Pantavisor and pvr write them, in realistic files of our own: Docker's nulls in
// docker_config, legacy disks.json/disks_v3.json/groups.json states, empty disk arrays,
// caam/dcp declarations from Pantavisor 027 and older, run.json as `pvr checkout` writes
// it, and src.json from before pvr recorded docker_config. (The real files themselves are
// exercised in real-world.ts.)
import t from 'tap'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { installApp } from '../../plugin/config/app-install.js'
import { loadState, validateFile } from '../../plugin/config/state.js'
import { codes, json, sameSet } from '../fixtures/helpers.js'

/** what `pvr checkout` writes: Go's json.MarshalIndent, keys sorted, 4 spaces, no final newline, <>& escaped */
const goJson = (v: unknown): string => {
  const sort = (x: unknown): unknown => (Array.isArray(x) ? x.map(sort) : x && typeof x === 'object'
    ? Object.fromEntries(Object.keys(x).sort().map(k => [k, sort((x as Record<string, unknown>)[k])])) : x)
  return JSON.stringify(sort(v), null, '    ').replace(/[<>&]/g, c => `\\u00${c.charCodeAt(0).toString(16)}`)
}

const dockerConfig = { Cmd: null, Entrypoint: null, Env: ['PATH=/usr/sbin:/usr/bin'], WorkingDir: '', User: '', Volumes: { '/var/lib/app': {} }, ExposedPorts: null, OnBuild: null, Labels: null }

t.test('docker_config as Docker writes it: null means not set', async t => {
  const dir = t.testdir({
    'device.json': json({ groups: [{ name: 'app' }] }),
    web: { 'src.json': json({ '#spec': 'service-manifest-src@1', template: 'builtin-lxc-docker', docker_name: 'x/web', docker_tag: 'v1', docker_config: dockerConfig, config: { Cmd: null }, persistence: { '/data': 'permanent' } }) },
  })
  const state = await loadState(dir)
  t.same(codes(state.problems), [], 'no problem')
  const r = await installApp(dir, 'web')
  t.same(Object.keys(r.storage), ['docker--data', 'docker--var-lib-app', 'lxc-overlay'], 'the image volume is still read')
})

t.test('a legacy state: disks.json, disks_v3.json and groups.json at the root, read as Pantavisor reads them', async t => {
  const dir = t.testdir({
    'disks.json': json([{ name: 'dm-secrets', type: 'dm-crypt-versatile', path: '/storage/dm-crypt-files/dm-secrets/versatile.img,2,versatile_key' }]),
    'disks_v3.json': '[\n  {"name": "zram", "type": "future-type"},\n  {"name": "bad", "type": "dm-crypt-versatile", "path": "relative.img,2,k"}\n]\n',
    'groups.json': json([{ name: 'data', restart_policy: 'system', status_goal: 'MOUNTED' }, { name: 'app', restart_policy: 'container', status_goal: 'STARTED' }]),
    web: { 'src.json': json({ '#spec': 'service-manifest-src@1', persistence: { '/data': 'permanent@dm-secrets' }, docker_name: 'x/web' }) },
  })
  const state = await loadState(dir)
  t.ok(state.disks.disks.has('dm-secrets'), 'disks.json declares the disks')
  const bad = state.problems.find(p => p.severity === 'error')
  t.match(bad, { file: join(dir, 'disks_v3.json'), pointer: '/1/path', line: 3 }, 'a problem names the legacy file, its pointer and line')
  t.match(state.problems.find(p => p.code === 'disk-type-unknown'), { severity: 'warning', file: join(dir, 'disks_v3.json'), pointer: '/0/type' }, 'disks_v3.json is lenient')
  t.notOk(state.problems.some(p => /persistence-disk-unknown|device-json-missing|groups-missing/.test(p.code)), 'the disk reference resolves; no device.json is missing')
})

t.test('legacy files beside a device.json are ignored, as Pantavisor ignores them, with a warning', async t => {
  const dir = t.testdir({ 'device.json': json({ groups: [], disks: [{ name: 'a', type: 'volume-disk' }] }), 'disks.json': json([{ name: 'b', type: 'volume-disk' }]) })
  const state = await loadState(dir)
  t.notOk(state.disks.disks.has('b'))
  t.match(state.problems, [{ severity: 'warning', code: 'legacy-file-ignored', file: join(dir, 'disks.json') }])
})

t.test('a lone disks.json, groups.json or disks_v3.json validates as what it is', async t => {
  const dir = t.testdir({ 'disks.json': json([{ name: 'a', type: 'dm-crypt-caam', path: '/x/caam.img,2,k' }]), 'groups.json': json([{ name: 'app' }]) })
  sameSet(t, codes(await validateFile(join(dir, 'disks.json'))), ['E schema-required /0/mode', 'E caam-needs-v2 /0/path'])
  t.same(await validateFile(join(dir, 'groups.json')), [])
})

t.test('an empty disk array is an error: Pantavisor refuses the state', async t => {
  const dir = t.testdir({ 'device.json': json({ groups: [], disks: [], disks_v3: [] }), legacy: { 'disks.json': '[]' } })
  sameSet(t, codes((await loadState(dir)).problems), ['E disks-empty /disks', 'E disks-empty /disks_v3'])
  sameSet(t, codes((await loadState(join(dir, 'legacy'))).problems), ['E disks-empty '])
})

t.test('caam and dcp from Pantavisor 027 and older (no mode, no -v2): the error says what each version does and what to write', async t => {
  const dir = t.testdir({ 'device.json': json({ groups: [], disks: [
    { name: 'c', type: 'dm-crypt-caam', path: '/storage/dm-crypt-files/c/caam.img,2,caam_key' },
    { name: 'd', type: 'dm-crypt-dcp', path: '/storage/dm-crypt-files/d/dcp.img,2,dcp_key' },
  ] }) })
  const problems = (await loadState(dir)).problems
  sameSet(t, codes(problems), ['E schema-required /disks/0/mode', 'E schema-required /disks/1/mode', 'E caam-needs-v2 /disks/0/path'])
  for (const p of problems.filter(x => x.code === 'schema-required')) {
    t.match(p.hint, /027 and older .* NXP scheme/)
    t.match(p.hint, /028 and later refuse/)
    t.match(p.hint, /"mode": "nxp"/)
  }
  const v2 = problems.find(p => p.code === 'caam-needs-v2')
  t.match(v2?.message, /028 and later refuse/)
  t.match(v2?.hint, /write "-v2 \/storage\/dm-crypt-files\/c\/caam\.img,2,caam_key"/)
  t.match(v2?.hint, /027 and older .* cannot mount a "-v2 " path/)
})

t.test('run.json as pvr checkout writes it: already right means the same to validate and app install; a rewrite keeps its style', async t => {
  const run = { '#spec': 'service-manifest-run@1', name: 'web', type: 'lxc', root_volume: 'root.squashfs', config: 'lxc.container.conf', exports: ['<none> & more'],
    storage: { 'docker--data': { persistence: 'permanent', disk: 'sec' }, 'lxc-overlay': { persistence: 'boot' } } }
  const text = goJson(run)
  const dir = t.testdir({
    'device.json': json({ groups: [], disks: [{ name: 'sec', type: 'volume-disk' }] }),
    web: { 'src.json': json({ '#spec': 'service-manifest-src@1', persistence: { '/data': 'permanent@sec' }, docker_name: 'x/web' }), 'run.json': text },
  })
  t.notOk((await loadState(dir)).problems.some(p => p.code === 'run-json-stale'), 'validate: up to date')
  const file = join(dir, 'web/run.json')
  const mtime = statSync(file).mtimeMs
  t.equal((await installApp(dir, 'web')).changed, false, 'app install: up to date too')
  t.equal(statSync(file).mtimeMs, mtime, 'not written')

  const src = join(dir, 'web/src.json')
  const { writeFileSync } = await import('node:fs')
  writeFileSync(src, json({ '#spec': 'service-manifest-src@1', persistence: { '/data': 'permanent@sec', '/var/log': 'boot' }, docker_name: 'x/web' }))
  t.ok((await loadState(dir)).problems.some(p => p.code === 'run-json-stale'))
  t.equal((await installApp(dir, 'web')).changed, true)
  const after = readFileSync(file, 'utf8')
  t.equal(after, goJson({ ...run, storage: { ...run.storage, 'docker--var-log': { persistence: 'boot' } } }), 'exactly what pvr checkout would write: sorted, 4 spaces, no final newline, <>& escaped')
})

t.test('src.json without docker_config (pvr before late 2021): the image volumes run.json holds are kept, with a warning', async t => {
  const storage = { 'docker--data': { persistence: 'permanent' }, 'docker--etc-ssh': { persistence: 'permanent' }, 'lxc-overlay': { persistence: 'boot' } }
  const dir = t.testdir({
    'device.json': json({ groups: [] }),
    old: { 'src.json': json({ '#spec': 'service-manifest-src@1', docker_name: 'x/old', persistence: { '/data': 'permanent' } }), 'run.json': json({ '#spec': 'service-manifest-run@1', name: 'old', storage }) },
  })
  const state = await loadState(dir)
  t.notOk(state.problems.some(p => p.code === 'run-json-stale'), 'validate: up to date')
  t.match(state.problems.find(p => p.code === 'image-volumes-kept'), { severity: 'warning', file: join(dir, 'old/src.json'), message: /no docker_config .*kept docker--etc-ssh$/ })
  const r = await installApp(dir, 'old')
  t.same(r.storage, storage, 'app install keeps the image volume')
  t.equal(r.changed, false)

  const { writeFileSync } = await import('node:fs')
  writeFileSync(join(dir, 'old/run.json'), json({ '#spec': 'service-manifest-run@1', name: 'old', storage: { ...storage, 'docker--var-cache': { persistence: 'revision' } } }))
  t.ok((await loadState(dir)).problems.some(p => p.code === 'run-json-stale'), 'a volume that is no image volume (revision) is stale')
  t.equal((await installApp(dir, 'old')).changed, true)
  t.same(JSON.parse(readFileSync(join(dir, 'old/run.json'), 'utf8')).storage, storage, 'the rewrite drops it and keeps the image volume')
})

t.test('a state JSON is checked as the state it holds, each problem at /<entry>/<pointer> with its line', async t => {
  const state = {
    '#spec': 'pantavisor-service-system@1',
    'bsp/src.json': { '#spec': 'bsp-manifest-src@1', pvr: 'https://example.invalid/bsp' },
    'bsp/run.json': { addons: [], firmware: 'firmware.squashfs' },
    'device.json': { groups: [], disks: [{ name: 'sec', type: 'dm-crypt-versatile', path: '/storage/s/v.img,2,k' }] },
    'web/src.json': { '#spec': 'service-manifest-src@1', docker_config: { Entrypoint: null }, persistence: { '/data': 'permanent@sec', '/log': 'forever' }, docker_name: 'x/web' },
    'web/run.json': { '#spec': 'service-manifest-run@1', storage: { 'docker--data': { persistence: 'permanent', disk: 'nope' } } },
    'web/root.squashfs': '5b5e8b0de2b8bcd4f1b5a2d55e2bb7a4a5b7f5d6f2e8c7a1b3c5d7e9f1a3b5c7',
  }
  const dir = t.testdir({ 'state.json': JSON.stringify(state, null, 4) })
  const problems = await validateFile(join(dir, 'state.json'))
  sameSet(t, codes(problems), ['E persistence-type-unknown /web~1src.json/persistence/~1log', 'E persistence-disk-unknown /web~1run.json/storage/docker--data/disk'])
  t.ok(problems.every(p => p.file === join(dir, 'state.json') && (p.line ?? 0) > 1), 'placed in the one file, at a line')
  const legacy = { '#spec': 'pantavisor-service-system@1', 'disks.json': [{ name: 'd', type: 'dm-crypt-dcp', path: '/x/d.img,2,k' }], 'groups.json': [{ name: 'app' }] }
  const dir2 = t.testdir({ 'state.json': JSON.stringify(legacy, null, 4) })
  sameSet(t, codes(await validateFile(join(dir2, 'state.json'))), ['E schema-required /disks.json/0/mode'], 'legacy entries are read when there is no device.json')
})
