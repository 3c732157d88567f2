import t from 'tap'
import { checkDevice } from '../../plugin/config/check-device.js'
import { checkRun, checkSrc } from '../../plugin/config/check-app.js'
import { checkSchema } from '../../plugin/config/schema-check.js'
import { at, codes, device, json, sameSet, sink } from '../fixtures/helpers.js'

const disks = (() => {
  const { parsed, problems } = sink(json(device([
    { name: 'secure-disk', type: 'dm-crypt-versatile', path: '/s/v.img,2,k', aliases: ['dm-versatile'] },
    { name: 'swap', type: 'swap-disk', provision: 'zram' },
  ], { disks_v3: [{ name: 'later', type: 'future' }] })))
  return checkDevice(parsed.value, problems)
})()

const src = (persistence: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
  const { parsed, problems } = sink(json({ '#spec': 'service-manifest-src@1', docker_name: 'local/app', persistence, ...extra }), 'src.json')
  checkSchema('src', parsed.value, problems)
  const planned = checkSrc(parsed.value, disks, problems)
  return { storage: planned?.storage, keys: planned?.keys, list: codes(problems.list), problems: problems.list }
}

t.test('storage as pvr writes it', async t => {
  const r = src({
    '/data': 'permanent@secure-disk',
    '/var/lib/app/': 'revision',
    'ovl:/etc/conf/': 'permanent@dm-versatile',
    '/tmp/x': 'boot',
  })
  t.same(r.list, [])
  t.same(r.storage, {
    'docker--data': { persistence: 'permanent', disk: 'secure-disk' },
    'docker--tmp-x': { persistence: 'boot' },
    'docker--var-lib-app': { persistence: 'revision' },
    'dockerovl--etc-conf': { persistence: 'permanent', disk: 'dm-versatile' },
    'lxc-overlay': { persistence: 'boot' },
  })
  t.same(Object.keys(r.storage ?? {}), ['docker--data', 'docker--tmp-x', 'docker--var-lib-app', 'dockerovl--etc-conf', 'lxc-overlay'],
    'sorted by source key as Go templates range over maps, lxc-overlay last')
  t.same(r.keys?.get('dockerovl--etc-conf'), { overlay: true, path: '/etc/conf' })
  t.same(r.keys?.get('docker--var-lib-app'), { overlay: false, path: '/var/lib/app' }, 'the container path keeps its slashes')
})

t.test('lxc-overlay can be set, and image volumes are permanent unless overridden', async t => {
  t.same(src({ 'lxc-overlay': 'revision@secure-disk' }).storage, { 'lxc-overlay': { persistence: 'revision', disk: 'secure-disk' } })
  const r = src({ '/etc/NetworkManager/system-connections': 'boot' }, {
    docker_config: { Volumes: { '/etc/NetworkManager/system-connections/': {}, '/var/log/': {} } },
  })
  t.same(r.storage, {
    'docker--etc-NetworkManager-system-connections': { persistence: 'boot' },
    'docker--var-log': { persistence: 'permanent' },
    'lxc-overlay': { persistence: 'boot' },
  })
  const overridden = src({}, { docker_config: { Volumes: { '/a': {} } }, config: { Volumes: { '/b': {} } } })
  t.same(Object.keys(overridden.storage ?? {}), ['docker--b', 'lxc-overlay'], 'config overrides docker_config')
  t.same(src({}, { docker_config: { Volumes: null } }).storage, { 'lxc-overlay': { persistence: 'boot' } })
})

t.test('persistence types and disk references', async t => {
  const r = src({
    '/a': 'Permanent',
    '/b': 'perm',
    '/c': 'permanent@secure-dsk',
    '/d': 'permanent@',
    '/e': 'revision@a@b',
    '/f': 'permanent@later',
    '/g': 'boot@swap',
    '/h': 'built-in',
    '/i': 1,
  })
  sameSet(t, r.list, [
    'E persistence-type-unknown /persistence/~1a',
    'E persistence-type-unknown /persistence/~1b',
    'E persistence-disk-unknown /persistence/~1c',
    'E persistence-value-syntax /persistence/~1d',
    'E persistence-value-syntax /persistence/~1e',
    'E persistence-disk-unknown /persistence/~1f',
    'E persistence-disk-unusable /persistence/~1g',
    'E persistence-type-unknown /persistence/~1h',
    'E schema-type /persistence/~1i',
  ])
  t.equal(r.storage, undefined)
  t.match(at(r.problems, '/persistence/~1a'), { hint: /did you mean "permanent"/ })
  t.match(at(r.problems, '/persistence/~1c'), { hint: /did you mean "secure-disk"/ })
  t.match(at(r.problems, '/persistence/~1f'), { hint: /disks_v3/ })
  t.match(at(r.problems, '/persistence/~1h'), { hint: /"boot"/ })
})

t.test('container paths', async t => {
  const cases: [string, string][] = [
    ['data', 'persistence-path-relative'],
    ['/', 'persistence-path-root'],
    ['ovl:/', 'persistence-path-root'],
    ['/a/../b', 'persistence-path-dotdot'],
    ['/..', 'persistence-path-dotdot'],
    ['/a//b', 'persistence-path-unnormalised'],
    ['/a/./b', 'persistence-path-unnormalised'],
    ['/a b', 'persistence-path-invalid-char'],
    ['/a:b', 'persistence-path-invalid-char'],
    ['/a,b', 'persistence-path-invalid-char'],
    ['/a\nb', 'persistence-path-invalid-char'],
    ['ovl:data', 'persistence-path-relative'],
  ]
  for (const [key, code] of cases) {
    t.same(src({ [key]: 'boot' }).list, [`E ${code} /persistence/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`], JSON.stringify(key))
  }
  t.same(src({ '/données/ß': 'boot' }).list, [], 'non-ASCII paths are fine')
  t.same(src({ '/a': 'boot' }, { docker_config: { Volumes: { '../x': {} } } }).list, ['E persistence-path-relative /docker_config/Volumes/..~1x'])
})

t.test('duplicates and volume name collisions', async t => {
  t.same(src({ '/data': 'boot', '/data/': 'permanent' }).list, ['E persistence-path-duplicate /persistence/~1data~1'])
  t.same(src({ '/a-b': 'boot', '/a/b': 'boot' }).list, ['E volume-name-collision /persistence/~1a~1b'])
  t.same(src({ '/a-b': 'boot' }, { docker_config: { Volumes: { '/a/b': {} } } }).list, ['E volume-name-collision /docker_config/Volumes/~1a~1b'])
  t.same(src({ '/x': 'boot', 'ovl:/x': 'boot' }).list, [], 'ovl: and plain paths get different volume names')
})

t.test('typos of src.json keys are warned about', async t => {
  const { parsed, problems } = sink(json({ '#spec': 'service-manifest-src@1', persistance: { '/a': 'boot' } }))
  checkSrc(parsed.value, disks, problems)
  t.same(codes(problems.list), ['W unknown-key /persistance'])
})

t.test('an app that names no image is valid, with a warning: pvdisk up cannot start it with Docker', async t => {
  const { parsed, problems } = sink(json({ '#spec': 'service-manifest-src@1', persistence: { '/a': 'boot' } }))
  checkSrc(parsed.value, disks, problems)
  t.same(codes(problems.list), ['W src-no-image '])
  t.match(problems.list[0], { hint: /LXC \(pvdisk volumes up\) and the OCI hook need none/ })
  for (const image of [{ docker_name: 'x' }, { docker_digest: 'sha256:00' }]) {
    const named = sink(json({ '#spec': 'service-manifest-src@1', ...image, persistence: { '/a': 'boot' } }))
    checkSrc(named.parsed.value, disks, named.problems)
    t.same(codes(named.problems.list), [], `${Object.keys(image)[0]} names it`)
  }
})

t.test('#spec must be right', async t => {
  const { parsed, problems } = sink(json({ '#spec': 'service-manifest-src@2' }))
  checkSchema('src', parsed.value, problems)
  t.same(codes(problems.list), ['E schema-const /#spec'])
  const missing = sink(json({ persistence: {} }))
  checkSchema('src', missing.parsed.value, missing.problems)
  t.same(codes(missing.problems.list), ['E schema-required /#spec'])
})

t.test('run.json storage is checked like volumes, and compared with src.json', async t => {
  const run = (storage: unknown, fromSrc?: Record<string, { persistence: 'boot' | 'permanent' | 'revision', disk?: string }>) => {
    const { parsed, problems } = sink(json({ '#spec': 'service-manifest-run@1', storage }), 'run.json')
    checkSchema('run', parsed.value, problems)
    checkRun(parsed.value, disks, problems, fromSrc)
    return codes(problems.list)
  }
  t.same(run({ 'docker--data': { persistence: 'permanent', disk: 'dm-versatile' } }), [])
  sameSet(t, run({ 'docker--data': { persistence: 'forever', disk: 'nope' }, '../x': { persistence: 'boot' } }),
    ['E persistence-type-unknown /storage/docker--data/persistence', 'E persistence-disk-unknown /storage/docker--data/disk', 'E volume-name-invalid /storage/..~1x'])
  t.same(run({ 'lxc-overlay': { persistence: 'boot' } }, { 'lxc-overlay': { persistence: 'boot' } }), [])
  t.same(run({ 'lxc-overlay': { persistence: 'boot' } }, { 'lxc-overlay': { persistence: 'revision' } }), ['W run-json-stale /storage'])
  t.same(run(undefined, { 'lxc-overlay': { persistence: 'boot' } }), ['W run-json-stale /storage'])
  t.same(run({ a: { persistence: 'boot', dsik: 'x' } }), ['W unknown-key /storage/a/dsik'])
})
