// The VolumeDriver's records, driven directly: disks named by an alias are recorded by their
// name, so a plugin restart finds their holders; a damaged state file is moved aside, never
// a reason not to start; Mounts that arrive together share their writes, and each is
// answered only once its state and its volume's placement are on disk.
import t from 'tap'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { checkDevice } from '../../../plugin/config/check-device.js'
import type { DiskContext, Kernel } from '../../../plugin/disks/context.js'
import type { MountEntry } from '../../../plugin/host/kernel.js'
import { RecordingRunner } from '../../../plugin/host/run.js'
import { VolumeDriver } from '../../../plugin/runtimes/volume-plugin/driver.js'
import { json, sink } from '../../fixtures/helpers.js'

const disks = checkDevice(sink(json({ groups: [], disks: [{ name: 'data', type: 'volume-disk', aliases: ['dm-versatile'] }] })).parsed.value, sink('{}').problems)

/** mounted: the disk is up, its backing directory bound at its mount point (the volumes go to the directory itself) */
const setup = (root: string, mounted: boolean) => {
  const holder: MountEntry = { id: 1, parent: 0, major: 0, minor: 99, root: '/', mountPoint: '/', options: 'rw', fsType: 'ext4', source: '/dev/vda' }
  const bind: MountEntry = { ...holder, id: 2, parent: 1, root: join(root, 'storage/pv/volume-disk/data'), mountPoint: join(root, 'media/pv/dmcrypt/data') }
  const kernel: Kernel = { mounts: () => (mounted ? [holder, bind] : []), loops: () => [], dms: () => [] }
  const log: string[] = []
  const ctx: DiskContext = { root, runner: new RecordingRunner({ planning: false }), kernel, log: m => log.push(m) }
  const stateFile = join(root, 'var/lib/pvdisk/volume-driver.json')
  return { log, stateFile, driver: () => new VolumeDriver({ ctx, disks, revision: '0', stateFile }) }
}

t.test('a volume created with a disk alias is recorded by the disk\'s name, and keeps its holders across a restart', async t => {
  const root = t.testdir({})
  const s = setup(root, true)
  const d = s.driver()
  t.same(await d.handle('/VolumeDriver.Create', { Name: 'v', Opts: { app: 'web', persistence: 'permanent@dm-versatile' } }), {})
  t.match(await d.handle('/VolumeDriver.Get', { Name: 'v' }), { Volume: { Status: { disk: 'data' } } })
  t.same(await d.handle('/VolumeDriver.Create', { Name: 'v', Opts: { app: 'web', persistence: 'permanent@data' } }), {}, 'the same volume, by name or alias')
  // a state file written before (alias recorded), holder c1, the disk mounted
  writeFileSync(s.stateFile, json({ volumes: { old: { name: 'old', app: 'web', persistence: 'permanent', disk: 'dm-versatile', mountedBy: ['c1'], createdAt: '2026-01-01T00:00:00.000Z' } } }))
  const restarted = s.driver()
  await restarted.reconcile()
  t.match(await restarted.handle('/VolumeDriver.Get', { Name: 'old' }), { Volume: { Status: { disk: 'data', mounts: 1 } } }, 'the holder survives the restart')
  t.match(await restarted.handle('/VolumeDriver.Remove', { Name: 'old' }), { Err: /in use by 1 container/ }, 'and Remove is refused while it is held')
})

t.test('a damaged state file is moved aside with a warning; the plugin starts', async t => {
  const root = t.testdir({ var: { lib: { pvdisk: { 'volume-driver.json': '{"volumes": {"a": {"name": "a", "app"' } } } })
  const s = setup(root, false)
  const d = s.driver()
  await d.reconcile()
  t.same(await d.handle('/VolumeDriver.List', {}), { Volumes: [] })
  const dir = join(root, 'var/lib/pvdisk')
  const aside = readdirSync(dir).filter(f => f.startsWith('volume-driver.json.damaged-'))
  t.equal(aside.length, 1, 'the damaged file is kept aside, for a person to look at')
  t.equal(readFileSync(join(dir, aside[0] ?? ''), 'utf8'), '{"volumes": {"a": {"name": "a", "app"')
  t.ok(existsSync(join(dir, 'volume-driver.json')), 'a fresh state is written')
  t.match(s.log, [/warning: .*volume-driver\.json is damaged .*moved to .*damaged-/])

  writeFileSync(join(dir, 'volume-driver.json'), json({ volumes: { good: { name: 'good', app: 'w', persistence: 'boot', mountedBy: [], createdAt: 'x' }, bad: { name: 'bad', persistence: 'forever' }, worse: 7 } }))
  const again = setup(root, false)
  const d2 = again.driver()
  t.same(await d2.handle('/VolumeDriver.List', {}), { Volumes: [{ Name: 'good', Mountpoint: '' }] }, 'records that are no volume records are dropped')
  t.match(again.log, [/dropped the record of "bad"/, /dropped the record of "worse"/])
})

t.test('a volume without @DISK goes to the disk marked "default": "yes", as pvdisk up places it; a failed request is reported', async t => {
  const withDefault = checkDevice(sink(json({ groups: [], disks: [{ name: 'main', type: 'volume-disk', default: 'yes' }, { name: 'other', type: 'volume-disk' }] })).parsed.value, sink('{}').problems)
  const root = t.testdir({})
  const failures: unknown[] = []
  const ctx: DiskContext = { root, runner: new RecordingRunner({ planning: false }), kernel: { mounts: () => [], loops: () => [], dms: () => [] }, log: () => undefined }
  const d = new VolumeDriver({ ctx, disks: withDefault, revision: '0', stateFile: join(root, 'state.json'), onFailure: f => failures.push(f) })
  t.same(await d.handle('/VolumeDriver.Create', { Name: 'v', Opts: { app: 'web' } }), {})
  t.match(await d.handle('/VolumeDriver.Get', { Name: 'v' }), { Volume: { Status: { disk: 'main' } } })
  t.same(failures, [], 'nothing failed yet')
  t.match(await d.handle('/VolumeDriver.Mount', { Name: 'nope', ID: 'c7' }), { Err: /no pvdisk volume named "nope"/ })
  t.match(failures, [{ endpoint: '/VolumeDriver.Mount', volume: 'nope', caller: 'c7', reason: /no pvdisk volume named "nope"/ }], 'one record per failed request: request, volume, caller, reason')
})

t.test('Mounts that arrive together share the writes of the state and of where their volumes live; each reply finds both on disk', async t => {
  const root = t.testdir({ storage: { pv: { 'volume-disk': { data: {} } } }, media: { pv: { dmcrypt: { data: {} } } } })
  const s = setup(root, true)
  const d = s.driver()
  const names = Array.from({ length: 20 }, (_, i) => `v${i}`)
  for (const n of names) t.same(await d.handle('/VolumeDriver.Create', { Name: n, Opts: { app: 'web', persistence: 'permanent@data' } }), {})
  const placements = join(root, 'var/lib/pvdisk/placements/plugin/web.json')
  const onDisk = await Promise.all(names.map(n => d.handle('/VolumeDriver.Mount', { Name: n, ID: `c-${n}` }).then(reply => ({
    reply,
    placed: Object.keys((JSON.parse(readFileSync(placements, 'utf8')) as { volumes: Record<string, unknown> }).volumes).includes(`${n}`),
    held: (JSON.parse(readFileSync(s.stateFile, 'utf8')) as { volumes: Record<string, { mountedBy: string[] }> }).volumes[n]?.mountedBy.includes(`c-${n}`),
  }))))
  for (const [i, r] of onDisk.entries()) {
    t.match(r.reply, { Mountpoint: join(root, `media/pv/dmcrypt/data/perm/web/v${i}`) })
    t.ok(r.placed && r.held, `v${i}: its placement and its holder were on disk before its reply`)
  }
  t.same(Object.keys((JSON.parse(readFileSync(placements, 'utf8')) as { volumes: Record<string, unknown> }).volumes).sort(), [...names].sort(), 'no placement lost to a later write of the same file')

  // another process (pvdisk migrate, a person) rewrites the file: the plugin reads what it says now
  writeFileSync(placements, json({ volumes: { v0: { persistence: 'permanent' } } }))
  await d.handle('/VolumeDriver.Unmount', { Name: 'v0', ID: 'c-v0' })
  await d.handle('/VolumeDriver.Mount', { Name: 'v0', ID: 'c-v0' })
  t.match(JSON.parse(readFileSync(placements, 'utf8')), { volumes: { v0: { persistence: 'permanent', disk: 'data' } } }, 'a change made by another process is seen, not overwritten from memory')
})
