import t from 'tap'
import { spawnSync } from 'node:child_process'
import { appendFileSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { beginMeasurement, emptyCache, endMeasurement, measureTree, subdirsIn } from '../../plugin/caretaker/usage.js'
import { toPrometheus, type UsageReport } from '../../plugin/caretaker/usage-report.js'
import { json, unmountUnder } from '../fixtures/helpers.js'
import { isRoot, requirePrereq } from '../fixtures/prereq.js'

const cli = fileURLToPath(new URL('../../dist/pvdisk.cjs', import.meta.url))

t.test('a tree is measured once, then from cache while nothing changes', async t => {
  const dir = t.testdir({ v: { a: 'x'.repeat(10), sub: { b: 'y', deeper: { c: 'z' } } }, outside: { big: 'o'.repeat(100_000) } })
  symlinkSync(join(dir, 'outside'), join(dir, 'v/link'))
  const cache = emptyCache()
  const first = measureTree(join(dir, 'v'), cache, { fullEvery: 3 })
  t.match(first, { files: 4, dirs: 3 }, 'the link counts as a file, and is not followed')
  t.ok(first.bytes < 100_000, 'the link target is not counted')
  const second = measureTree(join(dir, 'v'), cache, { fullEvery: 3 })
  t.equal(second.stats, 3, 'an unchanged tree costs one stat per directory')
  t.same({ ...second, stats: 0 }, { ...first, stats: 0 })
  writeFileSync(join(dir, 'v/sub/new'), 'n')
  t.equal(measureTree(join(dir, 'v'), cache, { fullEvery: 3 }).files, 5, 'a new file changes its directory and is seen')
  rmSync(join(dir, 'v/sub/deeper'), { recursive: true })
  t.match(measureTree(join(dir, 'v'), cache, { fullEvery: 3 }), { files: 4, dirs: 2 }, 'a removed directory disappears')
  const before = measureTree(join(dir, 'v'), cache, { fullEvery: 3 }).bytes // 5th measurement
  appendFileSync(join(dir, 'v/a'), 'x'.repeat(100_000))
  t.equal(measureTree(join(dir, 'v'), cache, { fullEvery: 3 }).bytes, before, 'growth of an existing file is not seen from cache (documented)')
  t.ok(measureTree(join(dir, 'v'), cache, { fullEvery: 3 }).bytes > 100_000, 'but at the next full walk (every 3rd here)')
  t.equal(measureTree(join(dir, 'missing'), cache).files, 0)
})

t.test('the layout\'s directories are listed from cache while they do not change; a volume added or removed is seen', async t => {
  const dir = t.testdir({ perm: { web: { 'docker--data': {}, 'docker--logs': {} }, db: { 'docker--x': {} } } })
  const cache = emptyCache()
  const list = (d: string) => {
    const m = beginMeasurement(cache, 1000)
    const out = subdirsIn(m, cache, join(dir, d))
    for (const [k, v] of Object.entries(cache.dirs)) m.seen[k] ??= v
    endMeasurement(cache, m)
    return out
  }
  t.same(list('perm'), ['db', 'web'])
  t.same(list('perm/web'), ['docker--data', 'docker--logs'])
  t.same(list('perm/web'), ['docker--data', 'docker--logs'], 'from cache')
  mkdirSync(join(dir, 'perm/web/docker--new'))
  t.same(list('perm/web'), ['docker--data', 'docker--logs', 'docker--new'], 'a volume made since is listed')
  rmSync(join(dir, 'perm/web/docker--logs'), { recursive: true })
  t.same(list('perm/web'), ['docker--data', 'docker--new'], 'a volume removed since is not')
  mkdirSync(join(dir, 'perm/api'))
  t.same(list('perm'), ['api', 'db', 'web'], 'nor an app made since')
  symlinkSync(join(dir, 'perm/db'), join(dir, 'perm/web/docker--link'))
  t.same(list('perm/web'), ['docker--data', 'docker--new'], 'a link is not a volume, as before')
  t.same(list('missing'), [])
})

const parseProm = (text: string) => text.split('\n').filter(l => l && !l.startsWith('#')).map(l => {
  const m = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(l)
  if (!m) throw new Error(`bad line: ${l}`)
  const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)].map(x => [x[1], (x[2] ?? '').replace(/\\"/g, '"').replace(/\\n/g, '\n').replace(/\\\\/g, '\\')]))
  return { name: m[1], labels, value: Number(m[3]) }
})

t.test('Prometheus text format, parsed back', async t => {
  const r: UsageReport = {
    time: 'now',
    disks: [{ disk: 'sec"x', type: 'dm-crypt-versatile', state: 'mounted', mountPoint: '/m', size: 100, used: 40, free: 60, inodes: 10, inodesFree: 7, imageAllocated: 50 }],
    volumes: [{ disk: 'sec"x', app: 'web', volume: 'docker--data', persistence: 'revision', revision: '3', path: '/p', bytes: 4096, files: 2 }],
  }
  const text = toPrometheus(r)
  t.match(text, /^# HELP pvdisk_disk_mounted .*\n# TYPE pvdisk_disk_mounted gauge\n/)
  const samples = parseProm(text)
  t.same(samples.find(s => s.name === 'pvdisk_disk_used_bytes'), { name: 'pvdisk_disk_used_bytes', labels: { disk: 'sec"x', type: 'dm-crypt-versatile' }, value: 40 })
  t.same(samples.find(s => s.name === 'pvdisk_volume_files')?.labels, { disk: 'sec"x', app: 'web', volume: 'docker--data', persistence: 'revision', revision: '3' })
  t.equal(samples.find(s => s.name === 'pvdisk_disk_mounted')?.value, 1)
  t.equal(samples.length, 9)
})

t.test('pvdisk usage on a real disk writes usage.json and pvdisk.prom', async t => {
  if (!requirePrereq(t, isRoot(), 'bind mounts need root')) return
  const dir = t.testdir({ state: { 'device.json': json({ groups: [], disks: [{ name: 'data', type: 'volume-disk' }] }) }, root: {} })
  const base = ['--state', join(dir, 'state'), '--root', join(dir, 'root')]
  try {
    t.equal(spawnSync(process.execPath, [cli, 'disk', 'up', ...base]).status, 0)
    const vol = join(dir, 'root/media/pv/dmcrypt/data/perm/web/docker--data')
    mkdirSync(vol, { recursive: true })
    for (let i = 0; i < 5; i++) writeFileSync(join(vol, `f${i}`), 'x'.repeat(5000))
    const r = spawnSync(process.execPath, [cli, 'usage', '--json', '--write', join(dir, 'metrics'), ...base], { encoding: 'utf8' })
    t.equal(r.status, 0, r.stderr)
    const report = JSON.parse(r.stdout) as UsageReport
    t.match(report.disks, [{ disk: 'data', state: 'mounted' }])
    t.ok((report.disks[0]?.size ?? 0) > 0)
    t.match(report.volumes, [{ disk: 'data', app: 'web', volume: 'docker--data', persistence: 'permanent', files: 5 }])
    const prom = parseProm(readFileSync(join(dir, 'metrics/pvdisk.prom'), 'utf8'))
    t.equal(prom.find(s => s.name === 'pvdisk_volume_files' && s.labels.volume === 'docker--data')?.value, 5)
    t.same(JSON.parse(readFileSync(join(dir, 'metrics/usage.json'), 'utf8')).volumes, report.volumes)
  } finally {
    unmountUnder(dir)
  }
})
