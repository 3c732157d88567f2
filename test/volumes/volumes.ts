import t from 'tap'
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { checkDevice } from '../../plugin/config/check-device.js'
import type { DiskContext } from '../../plugin/disks/context.js'
import { RecordingRunner, ProcessRunner } from '../../plugin/host/run.js'
import { loadState } from '../../plugin/config/state.js'
import { appVolumes, currentRevision, emptyBootVolume, mkdirBelow, prepareVolume, volumeSource } from '../../plugin/volumes/volumes.js'
import { json, sink } from '../fixtures/helpers.js'

const device = {
  groups: [],
  disks: [
    { name: 'secure-disk', type: 'dm-crypt-versatile', path: '/s/v.img,8,k', aliases: ['dm-versatile'] },
    { name: 'data', type: 'volume-disk' },
  ],
}
const src = json({
  '#spec': 'service-manifest-src@1',
  persistence: { '/data': 'permanent@dm-versatile', '/var/cache': 'revision@data', '/tmp/x': 'boot', 'ovl:/etc/app/': 'boot@data', 'lxc-overlay': 'revision' },
})

const ctxOf = (root: string, planning = false): DiskContext => ({
  root, runner: planning ? new RecordingRunner({ planning: true }) : new ProcessRunner(), kernel: { mounts: () => [], loops: () => [], dms: () => [] }, log: () => undefined,
})

t.test('resolution follows the product layout', async t => {
  const dir = t.testdir({ state: { 'device.json': json(device), web: { 'src.json': src } } })
  const state = await loadState(join(dir, 'state'))
  const vols = appVolumes(state.apps[0]!, state.disks)
  const ctx = ctxOf('/r')
  const where = Object.fromEntries(vols.map(v => [v.name, { path: v.containerPath, disk: v.disk?.name, src: volumeSource(ctx, v, '7') }]))
  t.same(where, {
    'docker--data': { path: '/data', disk: 'secure-disk', src: { kind: 'dir', path: '/r/media/pv/dmcrypt/secure-disk/perm/web/docker--data' } },
    'docker--tmp-x': { path: '/tmp/x', disk: undefined, src: { kind: 'tmpfs' } },
    'docker--var-cache': { path: '/var/cache', disk: 'data', src: { kind: 'dir', path: '/r/media/pv/dmcrypt/data/rev/7/web/docker--var-cache' } },
    'dockerovl--etc-app': { path: '/etc/app', disk: 'data', src: { kind: 'dir', path: '/r/media/pv/dmcrypt/data/boot/web/dockerovl--etc-app' } },
    'lxc-overlay': { path: undefined, disk: undefined, src: { kind: 'dir', path: '/r/storage/disks/rev/7/web/lxc-overlay' } },
  })
  t.equal(vols.find(v => v.name === 'dockerovl--etc-app')?.overlay, true)
})

t.test('the default disk takes volumes that name none', async t => {
  const { parsed, problems } = sink(json({ groups: [], disks: [{ name: 'built-in', type: 'directory', path: '/storage/disks/', default: 'yes' }] }))
  const disks = checkDevice(parsed.value, problems)
  const vols = appVolumes({ name: 'a', dir: '/x', storage: { 'docker--d': { persistence: 'permanent' } }, keys: new Map([['docker--d', { overlay: false, path: '/d' }]]) }, disks)
  t.equal(vols[0]?.disk?.name, 'built-in')
})

t.test('revision: flag, environment, default; and never a path', async t => {
  t.equal(currentRevision('5'), '5')
  process.env.PVDISK_REVISION = '9'
  t.equal(currentRevision(), '9')
  delete process.env.PVDISK_REVISION
  t.equal(currentRevision(), '0')
  t.throws(() => currentRevision('../x'), { code: 'EUSAGE' })
})

t.test('directories are created without following planted links', async t => {
  const dir = t.testdir({ base: { perm: {} }, outside: {} })
  const made = mkdirBelow(join(dir, 'base'), ['perm', 'app', 'docker--data'])
  t.ok(existsSync(made))
  symlinkSync(join(dir, 'outside'), join(dir, 'base/perm/evil'))
  t.throws(() => mkdirBelow(join(dir, 'base'), ['perm', 'evil', 'docker--data']), { code: 'EDISK', message: /symbolic link; refusing/ })
  t.same(readdirSync(join(dir, 'outside')), [])
  writeFileSync(join(dir, 'base/perm/file'), 'x')
  t.throws(() => mkdirBelow(join(dir, 'base'), ['perm', 'file', 'v']), { message: /not a directory/ })
  t.throws(() => mkdirBelow(join(dir, 'missing'), ['x']), { code: 'EDISK', details: ['is the disk up?'] })
})

t.test('prepareVolume creates per-app directories, and only notes them in a plan', async t => {
  const dir = t.testdir({ state: { 'device.json': json(device), web: { 'src.json': src } }, root: { media: { pv: { dmcrypt: { data: {} } } } } })
  const state = await loadState(join(dir, 'state'))
  const vols = appVolumes(state.apps[0]!, state.disks)
  const cache = vols.find(v => v.name === 'docker--var-cache')!
  const plan = ctxOf(join(dir, 'root'), true)
  prepareVolume(plan, cache, '3')
  t.equal(existsSync(join(dir, 'root/media/pv/dmcrypt/data/rev')), false)
  const real = prepareVolume(ctxOf(join(dir, 'root')), cache, '3')
  t.same(real, { kind: 'dir', path: join(dir, 'root/media/pv/dmcrypt/data/rev/3/web/docker--var-cache') })
  t.ok(existsSync(join(dir, 'root/media/pv/dmcrypt/data/rev/3/web/docker--var-cache')))
  const overlay = prepareVolume(ctxOf(join(dir, 'root')), vols.find(v => v.name === 'lxc-overlay')!, '3')
  t.same(overlay, { kind: 'dir', path: join(dir, 'root/storage/disks/rev/3/web/lxc-overlay') })
  t.same(prepareVolume(ctxOf(join(dir, 'root')), vols.find(v => v.name === 'docker--tmp-x')!, '3'), { kind: 'tmpfs' })
})

t.test('a starting container finds its boot volume empty: links inside removed, never followed; nothing else touched', async t => {
  const dir = t.testdir({ root: { media: { pv: { dmcrypt: { d: { boot: { app: { v: { f: 'x', sub: { g: 'y' } }, other: { keep: 'k' } } }, perm: { app: { v: { keep: 'y' } } } } } } } }, outside: { precious: 'z' } })
  const m = join(dir, 'root/media/pv/dmcrypt/d')
  symlinkSync(join(dir, 'outside'), join(m, 'boot/app/v/link'))
  const disk = { name: 'd', type: 'volume-disk', pointer: '/disks/0', fields: {} }
  const v = { app: 'app', name: 'v', overlay: false, persistence: 'boot' as const, disk }
  emptyBootVolume(ctxOf(join(dir, 'root')), v, '0')
  t.same(readdirSync(join(m, 'boot/app/v')), [])
  t.equal(statSync(join(m, 'boot/app/v')).mode & 0o777, 0o755)
  t.equal(readFileSync(join(dir, 'outside/precious'), 'utf8'), 'z', 'a link inside is removed, not followed')
  t.equal(readFileSync(join(m, 'boot/app/other/keep'), 'utf8'), 'k', 'another volume keeps its data')
  t.equal(readFileSync(join(m, 'perm/app/v/keep'), 'utf8'), 'y')
  emptyBootVolume(ctxOf(join(dir, 'root')), { ...v, name: 'new' }, '0')
  t.ok(statSync(join(m, 'boot/app/new')).isDirectory(), 'a volume never started is created')
  emptyBootVolume(ctxOf(join(dir, 'root')), { ...v, persistence: 'permanent' }, '0')
  t.equal(readFileSync(join(m, 'perm/app/v/keep'), 'utf8'), 'y', 'only boot volumes are emptied')
  const fresh = statSync(join(m, 'boot/app/v')).ino
  emptyBootVolume(ctxOf(join(dir, 'root')), v, '0')
  t.equal(statSync(join(m, 'boot/app/v')).ino, fresh, 'one that is already empty, 0755 and ours is left as it is')
  chmodSync(join(m, 'boot/app/v'), 0o777)
  emptyBootVolume(ctxOf(join(dir, 'root')), v, '0')
  t.equal(statSync(join(m, 'boot/app/v')).mode & 0o777, 0o755, 'an empty one whose mode changed is made afresh')
  const noDisk = { app: 'app', name: 'v', overlay: false, persistence: 'boot' as const }
  emptyBootVolume(ctxOf(join(dir, 'root')), noDisk, '0')
  t.notOk(existsSync(join(dir, 'root/storage')), 'without a disk boot is a fresh tmpfs: nothing to empty')
})

t.test('emptying a boot volume refuses links in its path', async t => {
  const dir = t.testdir({ root: { media: { pv: { dmcrypt: { d: { boot: {} } } } } }, outside: { app: { v: { precious: 'z' } } } })
  const m = join(dir, 'root/media/pv/dmcrypt/d')
  symlinkSync(join(dir, 'outside/app'), join(m, 'boot/app'))
  const v = { app: 'app', name: 'v', overlay: false, persistence: 'boot' as const, disk: { name: 'd', type: 'volume-disk', pointer: '/disks/0', fields: {} } }
  t.throws(() => emptyBootVolume(ctxOf(join(dir, 'root')), v, '0'), { code: 'EDISK', message: /boot\/app is a symbolic link; refusing to follow it/ })
  t.equal(readFileSync(join(dir, 'outside/app/v/precious'), 'utf8'), 'z')
  rmSync(join(m, 'boot/app'))
  mkdirSync(join(m, 'boot/app'))
  symlinkSync(join(dir, 'outside/app/v'), join(m, 'boot/app/v'))
  t.throws(() => emptyBootVolume(ctxOf(join(dir, 'root')), v, '0'), { code: 'EDISK', message: /boot\/app\/v is a symbolic link/ })
  t.equal(readFileSync(join(dir, 'outside/app/v/precious'), 'utf8'), 'z')
})

t.test('in a plan, emptying a boot volume is a step shown, not done', async t => {
  const root = t.testdir({})
  const ctx = ctxOf(root, true)
  emptyBootVolume(ctx, { app: 'a', name: 'v', overlay: false, persistence: 'boot', disk: { name: 'd', type: 'volume-disk', pointer: '/disks/0', fields: {} } }, '0')
  t.same((ctx.runner as RecordingRunner).lines, [`# empty ${root}/media/pv/dmcrypt/d/boot/a/v`])
  t.same(readdirSync(root), [])
})
