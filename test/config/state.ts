import t from 'tap'
import { symlinkSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { loadState, validatePaths } from '../../plugin/config/state.js'
import { codes, json, sameSet } from '../fixtures/helpers.js'

const src = (persistence: Record<string, string>) => json({ '#spec': 'service-manifest-src@1', persistence, docker_name: 'local/app' })

t.test('discovers apps and skips what is not one', async t => {
  const dir = t.testdir({
    'device.json': json({ groups: [{ name: 'app' }], disks: [{ name: 'd', type: 'volume-disk' }] }),
    web: { 'src.json': src({ '/data': 'permanent@d' }) },
    legacy: { 'run.json': json({ '#spec': 'service-manifest-run@1', storage: { 'docker--x': { persistence: 'boot', disk: 'nope' } } }) },
    bsp: { 'src.json': json({ '#spec': 'bsp-manifest-src@1', pvr: 'https://example.invalid/x#bsp' }), 'run.json': json({ linux: 'kernel.img' }) },
    _sigs: { 'web.json': '{}' },
    _config: { 'src.json': 'not json' },
    '.git': { 'src.json': 'not json' },
    empty: {},
    'notes.txt': 'x',
    elsewhere: { 'src.json': src({ '/x': 'boot' }) },
  })
  symlinkSync('elsewhere', join(dir, 'linked'))
  const state = await loadState(dir)
  t.same(state.apps.map(a => a.name), ['elsewhere', 'legacy', 'web'])
  sameSet(t, codes(state.problems), ['W app-symlink ', 'E persistence-disk-unknown /storage/docker--x/disk'])
  t.same(state.apps.find(a => a.name === 'web')?.storage, { 'docker--data': { persistence: 'permanent', disk: 'd' }, 'lxc-overlay': { persistence: 'boot' } })
  t.ok(state.device?.data, 'typed device data once valid')
  t.same(state.disks.disks.get('d')?.type, 'volume-disk')
})

t.test('a state without device.json, and app names that are paths', async t => {
  const dir = t.testdir({ web: { 'src.json': src({ '/data': 'boot' }) } })
  mkdirSync(join(dir, 'a\nb'))
  const state = await loadState(dir)
  sameSet(t, codes(state.problems), ['W device-json-missing ', 'E app-name-invalid '])
})

t.test('a stale run.json is reported', async t => {
  const dir = t.testdir({
    'device.json': json({ groups: [] }),
    web: { 'src.json': src({ '/data': 'boot' }), 'run.json': json({ '#spec': 'service-manifest-run@1', storage: { 'lxc-overlay': { persistence: 'boot' } } }) },
  })
  t.same(codes((await loadState(dir)).problems), ['W run-json-stale /storage'])
})

t.test('paths that are not states', async t => {
  const dir = t.testdir({ 'f.json': '{}' })
  t.same(codes(await validatePaths([join(dir, 'nope')])), ['E file-unreadable '])
  t.same(codes((await loadState(join(dir, 'nope'))).problems), ['E state-not-found '])
  t.same(codes((await loadState(join(dir, 'f.json'))).problems), ['E state-not-found '])
  t.same(codes(await validatePaths([dir])), ['E state-empty '])
})

t.test('single run.json and src.json files are checked alone', async t => {
  const dir = t.testdir({
    'run.json': json({ '#spec': 'service-manifest-run@1', storage: { a: { persistence: 'boot', disk: 'anything' } } }),
    'mysrc.json': src({ '/a': 'permanent@anything', '/b': 'forever' }),
  })
  t.same(codes(await validatePaths([join(dir, 'run.json')])), [])
  t.same(codes(await validatePaths([join(dir, 'mysrc.json')])), ['E persistence-type-unknown /persistence/~1b'])
})
