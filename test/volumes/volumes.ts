import t from 'tap'
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { checkDevice } from '../../plugin/config/check-device.js'
import type { DiskContext } from '../../plugin/disks/context.js'
import { RecordingRunner, ProcessRunner } from '../../plugin/host/run.js'
import { loadState } from '../../plugin/config/state.js'
import { appVolumes, currentRevision, disksUpForVolumes, emptyBootDir, mkdirBelow, prepareVolume, volumeSource } from '../../plugin/volumes/volumes.js'
import { selectDisks } from '../../plugin/disks/engine.js'
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

t.test('emptying boot removes links, not their targets', async t => {
  const dir = t.testdir({ root: { media: { pv: { dmcrypt: { d: { boot: { app: { v: { f: 'x' } } }, perm: { keep: 'y' } } } } } }, outside: { precious: 'z' } })
  symlinkSync(join(dir, 'outside'), join(dir, 'root/media/pv/dmcrypt/d/boot/link'))
  const disk = { name: 'd', type: 'volume-disk', pointer: '/disks/0', fields: {} }
  emptyBootDir(ctxOf(join(dir, 'root')), disk)
  t.same(readdirSync(join(dir, 'root/media/pv/dmcrypt/d/boot')), [])
  t.equal(readFileSync(join(dir, 'outside/precious'), 'utf8'), 'z')
  t.equal(readFileSync(join(dir, 'root/media/pv/dmcrypt/d/perm/keep'), 'utf8'), 'y')
  mkdirSync(join(dir, 'root/media/pv/dmcrypt/e'), { recursive: true })
  emptyBootDir(ctxOf(join(dir, 'root')), { ...disk, name: 'e' })
  t.pass('a disk without boot data is fine')
})

t.test('a disk mounted now has its boot data emptied; one already mounted keeps it', async t => {
  const root = t.testdir({})
  const { parsed, problems } = sink(json({ groups: [], disks: [{ name: 'sec', type: 'dm-crypt-versatile', path: '/storage/c/disk.img,8,key' }] }))
  const disks = selectDisks(checkDevice(parsed.value, problems), [])
  const ctx = ctxOf(root, true)
  const outcomes = await disksUpForVolumes(ctx, disks)
  t.same(outcomes.map(o => o.mountedNow), [true])
  const lines = (ctx.runner as RecordingRunner).lines
  t.equal(lines.at(-1), `# empty ${root}/media/pv/dmcrypt/sec/boot`, 'boot emptied right after the mount')
  t.match(lines.at(-2), /^mount -t ext4 /)
})
