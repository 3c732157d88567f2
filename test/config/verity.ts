// Validation of Pantavisor's dm: volumes: run.json references, _dm/<volume>.json manifests as
// pvr dm-convert writes them, the files they name, and where PV_VOLUME_MOUNTS puts them.
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { symlinkSync } from 'node:fs'
import { loadState } from '../../plugin/config/state.js'
import { dmRefsOf, volumeMountsOf } from '../../plugin/config/verity.js'
import { codes, json, sameSet } from '../fixtures/helpers.js'

const HASH = 'ab'.repeat(32)
const run = (volumes: unknown[], extra: Record<string, unknown> = {}) => json({ '#spec': 'service-manifest-run@1', name: 'web', type: 'lxc', 'root-volume': 'root.squashfs', storage: { 'lxc-overlay': { persistence: 'boot' } }, volumes, ...extra })
const src = (args: Record<string, string> = {}) => json({ '#spec': 'service-manifest-src@1', docker_name: 'x/web', args, persistence: {} })
const manifest = (m: Record<string, unknown>) => JSON.stringify(m)
const pvr = { data_device: 'data.squashfs', hash_device: 'data.squashfs.hash', root_hash: HASH, salt: 'cd'.repeat(32), type: 'dm-verity', uuid: '5b2c2d3e-0000-4000-8000-000000000000' }

const stateWith = (t: Test, files: Parameters<Test['testdir']>[0] & object) => t.testdir({ 'device.json': json({ groups: [{ name: 'app' }] }), web: files })

t.test('a volume as pvr dm-convert makes it validates; the app knows its verity volumes and their container paths', async t => {
  const dir = stateWith(t, {
    'run.json': run(['dm:data.squashfs', 'plain.squashfs'], { 'root-volume': 'dm:root.squashfs' }), 'src.json': src({ PV_VOLUME_MOUNTS: 'data.squashfs:/opt/data,plain.squashfs:opt/plain' }),
    'data.squashfs': 'x', 'data.squashfs.hash': 'y', 'root.squashfs': 'r', 'root.squashfs.hash': 'h',
    _dm: { 'data.squashfs.json': manifest(pvr), 'root.squashfs.json': '{\n    "data_device": "root.squashfs",\n    "hash_device": "root.squashfs.hash",\n    "root_hash": "' + HASH.toUpperCase() + '",\n    "type": "dm-verity"\n}' },
  })
  const state = await loadState(dir)
  t.same(codes(state.problems), [])
  const app = state.apps.find(a => a.name === 'web')
  t.same(app?.verity?.map(v => [v.name, v.data.slice(dir.length), v.hash.slice(dir.length), v.rootHash, v.containerPath]), [
    ['root.squashfs', '/web/root.squashfs', '/web/root.squashfs.hash', HASH, undefined],
    ['data.squashfs', '/web/data.squashfs', '/web/data.squashfs.hash', HASH, '/opt/data'],
  ], 'root-volume first, as run.json lists them; the root hash in lower case; PV_VOLUME_MOUNTS gives the container path')
})

t.test('a broken manifest: each problem at its pointer and line, with what to do', async t => {
  const dir = stateWith(t, {
    'run.json': run(['dm:data.squashfs']), 'src.json': src(), 'data.squashfs': 'x',
    _dm: { 'data.squashfs.json': '{\n  "type": "dm-crypt",\n  "data_device": "../../etc/shadow",\n  "hash_device": 7,\n  "root_hash": "abc"\n}\n' },
  })
  const problems = (await loadState(dir)).problems
  sameSet(t, codes(problems), ['W verity-manifest-type /type', 'E verity-device-path /data_device', 'E verity-manifest-field /hash_device', 'E verity-root-hash /root_hash'])
  const path = problems.find(p => p.code === 'verity-device-path')
  t.match(path, { file: join(dir, 'web/_dm/data.squashfs.json'), line: 3, message: /"\.\.\/\.\.\/etc\/shadow" has an empty, "\." or "\.\." component/ })
  t.match(problems.find(p => p.code === 'verity-root-hash'), { line: 5, hint: /pvdisk verity make/ })
})

t.test('hostile and odd device paths are refused; the same file twice too', async t => {
  for (const [data, why] of [['/etc/shadow', /absolute path/], ['a b.squashfs', /whitespace/], ['a/./b', /component/], ['x\u0001', /control character/]] as const) {
    const dir = stateWith(t, { 'run.json': run(['dm:v']), _dm: { 'v.json': manifest({ ...pvr, data_device: data }) } })
    const p = (await loadState(dir)).problems.find(x => x.code === 'verity-device-path')
    t.match(p?.message, why, JSON.stringify(data))
  }
  const dir = stateWith(t, { 'run.json': run(['dm:v']), v: 'x', _dm: { 'v.json': manifest({ ...pvr, data_device: 'v', hash_device: 'v' }) } })
  t.match(codes((await loadState(dir)).problems), ['E verity-device-same /hash_device'])
})

t.test('a dm: reference without a manifest is an error; missing images are warnings (a checkout without its objects)', async t => {
  const dir = stateWith(t, { 'run.json': run(['dm:gone.squashfs', 'dm:data.squashfs', 'dm:../x', 'dm:']), _dm: { 'data.squashfs.json': manifest(pvr) } })
  const problems = (await loadState(dir)).problems
  sameSet(t, codes(problems), ['E verity-manifest-missing /volumes/0', 'E verity-name-invalid /volumes/2', 'E verity-name-invalid /volumes/3',
    'W verity-device-missing /data_device', 'W verity-device-missing /hash_device'])
  t.match(problems.find(p => p.code === 'verity-manifest-missing'), { hint: /pvdisk verity make web gone\.squashfs .*pvr dm-convert/ })
  const state = await loadState(dir)
  t.same(state.apps[0]?.verity?.map(v => v.name), ['data.squashfs'], 'a volume whose files are missing is still known, and refused when it is mounted')
})

t.test('a symbolic link as an image or a manifest is not followed', async t => {
  const dir = stateWith(t, { 'run.json': run(['dm:data.squashfs', 'dm:b']), 'real.squashfs': 'x', 'data.squashfs.hash': 'y', _dm: { 'data.squashfs.json': manifest(pvr), real: manifest(pvr) } })
  symlinkSync('real.squashfs', join(dir, 'web/data.squashfs'))
  symlinkSync('real', join(dir, 'web/_dm/b.json'))
  const problems = (await loadState(dir)).problems
  t.match(problems.find(p => p.code === 'verity-device-missing'), { message: /data\.squashfs is a symbolic link/ })
  t.match(problems.find(p => p.code === 'verity-manifest-missing'), { pointer: '/volumes/1', message: /is not a regular file/ })
})

t.test('the parts: references in all four keys, PV_VOLUME_MOUNTS', async t => {
  t.same(dmRefsOf({ 'root-volume': 'dm:r', volumes: ['a', 'dm:b'], modules: 'dm:m', firmware: 'f' }).map(r => [r.name, r.pointer]),
    [['r', '/root-volume'], ['b', '/volumes/1'], ['m', '/modules']])
  t.same([...volumeMountsOf({ args: { PV_VOLUME_MOUNTS: 'a.squashfs:/opt/a, b.img:var/b,bad' } })], [['a.squashfs', '/opt/a'], ['b.img', '/var/b']])
  const dir = stateWith(t, { 'run.json': run(['dm:data.squashfs']), 'src.json': src({ PV_VOLUME_MOUNTS: 'data.squashfs:/opt/my data' }), 'data.squashfs': 'x', 'data.squashfs.hash': 'y', _dm: { 'data.squashfs.json': manifest(pvr) } })
  t.match(codes((await loadState(dir)).problems), ['E verity-mount-path /volumes/0'])
})

t.test('in a signed state the signature covers the root hash: a changed manifest fails the signature check', async t => {
  const { generateKeyPairSync } = await import('node:crypto')
  const { spawnSync } = await import('node:child_process')
  const { writeFileSync, readFileSync, mkdirSync, mkdtempSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const keys = mkdtempSync(join(tmpdir(), 'pvdisk-verity-sign-'))
  t.teardown(() => rmSync(keys, { recursive: true, force: true }))
  const cli = new URL('../../dist/pvdisk.cjs', import.meta.url).pathname
  const dir = stateWith(t, { 'run.json': run(['dm:data.squashfs']), 'src.json': src(), 'data.squashfs': 'x', 'data.squashfs.hash': 'y', _dm: { 'data.squashfs.json': manifest(pvr) } })
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  writeFileSync(join(keys, 'signer.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }))
  mkdirSync(join(keys, 'trust'))
  writeFileSync(join(keys, 'trust/pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }))
  const pv = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' })
  const signed = pv(['sign', 'web', '--state', dir, '--key', join(keys, 'signer.key')])
  t.equal(signed.status, 0, signed.stderr)
  t.match(signed.stdout, /web\/_dm\/data\.squashfs\.json/, 'pvr\'s default globs for the app include its manifest')
  const validate = () => pv(['validate', dir, '--trust', join(keys, 'trust'), '--secureboot', 'lenient'])
  t.equal(validate().status, 0, validate().stdout)
  const file = join(dir, 'web/_dm/data.squashfs.json')
  writeFileSync(file, readFileSync(file, 'utf8').replace(HASH, 'cd'.repeat(32)))
  const refused = validate()
  t.equal(refused.status, 2, 'a root hash changed after signing is refused')
  t.match(refused.stdout + refused.stderr, /signature/)
})
