// pvdisk gc on real directory trees with several revisions, planted symlinks, and a volume
// in use by a running container (real dockerd).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { IMAGE, startDockerd } from '../fixtures/dockerd.js'
import { json, unmountUnder } from '../fixtures/helpers.js'
import { isRoot, requirePrereq } from '../fixtures/prereq.js'

const cli = fileURLToPath(new URL('../../dist/pvdisk.cjs', import.meta.url))
t.setTimeout(300_000)

const state = {
  'device.json': json({ groups: [], disks: [{ name: 'data', type: 'volume-disk' }] }),
  web: { 'src.json': json({ '#spec': 'service-manifest-src@1', docker_name: 'local/busybox', persistence: { '/cache': 'revision@data', '/keep': 'permanent@data' } }) },
}

const setup = (dir: string) => {
  const base = ['--state', join(dir, 'state'), '--root', join(dir, 'root')]
  const pv = (...args: string[]) => spawnSync(process.execPath, [cli, ...args, ...base], { encoding: 'utf8' })
  t.equal(pv('disk', 'up').status, 0)
  const disk = join(dir, 'root/media/pv/dmcrypt/data')
  const plain = join(dir, 'root/storage/disks')
  for (const [i, rev] of ['1', '2', '3', '4'].entries()) {
    for (const b of [disk, plain]) {
      const v = join(b, 'rev', rev, 'web', 'docker--cache')
      mkdirSync(v, { recursive: true })
      writeFileSync(join(v, 'data'), `revision ${rev}`.repeat(1000))
      const when = new Date(Date.UTC(2026, 0, 1 + i))
      utimesSync(join(b, 'rev', rev), when, when)
    }
  }
  mkdirSync(join(disk, 'perm/web/docker--keep'), { recursive: true })
  writeFileSync(join(disk, 'perm/web/docker--keep/k'), 'keep')
  mkdirSync(join(disk, 'perm/gone-app/docker--x'), { recursive: true })
  writeFileSync(join(disk, 'perm/gone-app/docker--x/x'), 'orphan')
  return { pv, disk, plain }
}

t.test('revisions, links, dry run, orphans', async t => {
  if (!requirePrereq(t, isRoot(), 'bind mounts need root')) return
  const dir = t.testdir({ state, root: {}, outside: { precious: 'do not touch' } })
  try {
    const { pv, disk, plain } = setup(dir)
    symlinkSync(join(dir, 'outside'), join(disk, 'rev/1/web/docker--cache/escape'))
    const dry = pv('gc', '--revision', '4', '--dry-run', '--json')
    t.equal(dry.status, 0, dry.stderr)
    const planned = JSON.parse(dry.stdout) as { items: { path: string, action: string, bytes: number }[] }
    t.same(planned.items.map(i => [i.path.slice(dir.length), i.action]).sort(), [
      ['/root/media/pv/dmcrypt/data/rev/1', 'would remove'],
      ['/root/storage/disks/rev/1', 'would remove'],
    ], 'current revision 4 plus the 2 newest others (3, 2) are kept')
    t.ok(planned.items.every(i => i.bytes > 0), 'with sizes')
    t.ok(existsSync(join(disk, 'rev/1')), 'a dry run removes nothing')
    const real = pv('gc', '--revision', '4')
    t.equal(real.status, 0, real.stderr)
    t.match(real.stdout, /removed: .*rev\/1 /)
    t.equal(existsSync(join(disk, 'rev/1')) || existsSync(join(plain, 'rev/1')), false)
    t.ok(['2', '3', '4'].every(r => existsSync(join(disk, 'rev', r))))
    t.equal(readFileSync(join(dir, 'outside/precious'), 'utf8'), 'do not touch', 'a planted link is removed, never followed')
    t.match(pv('gc', '--revision', '4', '--keep', '0').stdout, /removed: .*data\/rev\/2 .*\n.*\n.*removed: .*data\/rev\/3 |rev\/3/)
    t.equal(readFileSync(join(disk, 'perm/web/docker--keep/k'), 'utf8'), 'keep', 'permanent data is untouched')

    t.ok(existsSync(join(disk, 'perm/gone-app')), 'orphans stay without --prune-orphans')
    t.match(pv('gc', '--prune-orphans').stdout, /kept: grace period: .*perm\/gone-app/)
    t.ok(existsSync(join(disk, 'perm/gone-app')))
    t.match(pv('gc', '--prune-orphans', '--grace', '0').stdout, /removed: .*perm\/gone-app/)
    t.equal(existsSync(join(disk, 'perm/gone-app')), false)
    t.ok(existsSync(join(disk, 'perm/web')), 'apps in the state keep their data')
    t.equal(pv('gc', '--keep', '-1').status, 2)

    // a disk's rev or perm replaced by a link to elsewhere: gc lists nothing through it, removes nothing there
    const { mkdirSync, renameSync } = await import('node:fs')
    mkdirSync(join(dir, 'outside/rev/1/web'), { recursive: true })
    writeFileSync(join(dir, 'outside/rev/1/web/data'), 'not the disk\'s')
    mkdirSync(join(dir, 'outside/perm/other-app'), { recursive: true })
    writeFileSync(join(dir, 'outside/perm/other-app/data'), 'not the disk\'s either')
    renameSync(join(disk, 'rev'), join(disk, 'rev-aside'))
    renameSync(join(disk, 'perm'), join(disk, 'perm-aside'))
    symlinkSync(join(dir, 'outside/rev'), join(disk, 'rev'))
    symlinkSync(join(dir, 'outside/perm'), join(disk, 'perm'))
    const linked = pv('gc', '--revision', '9', '--keep', '0', '--prune-orphans', '--grace', '0')
    t.equal(linked.status, 0, linked.stderr)
    t.match(linked.stdout, /skipped: a symbolic link, not followed: .*dmcrypt\/data\/rev/)
    t.match(linked.stdout, /skipped: a symbolic link, not followed: .*dmcrypt\/data\/perm/)
    t.equal(readFileSync(join(dir, 'outside/rev/1/web/data'), 'utf8'), 'not the disk\'s', 'nothing outside the disk is removed through a linked rev')
    t.equal(readFileSync(join(dir, 'outside/perm/other-app/data'), 'utf8'), 'not the disk\'s either', 'nor through a linked perm')
  } finally {
    unmountUnder(dir)
  }
})

t.test('a revision volume in use by a running container is kept', async t => {
  const d = await startDockerd(t)
  if (!d) return
  const dir = t.testdir({ state, root: {} })
  try {
    const { pv, disk } = setup(dir)
    const c = await d.docker.createContainer({
      Image: IMAGE, Cmd: ['sleep', '600'],
      HostConfig: { NetworkMode: 'none', Mounts: [{ Type: 'bind', Source: join(disk, 'rev/2/web/docker--cache'), Target: '/cache' }] },
    })
    await c.start()
    try {
      const r = pv('gc', '--revision', '4', '--keep', '0', '--json')
      t.equal(r.status, 0, r.stderr)
      const items = (JSON.parse(r.stdout) as { items: { path: string, action: string }[] }).items
      t.same(items.find(i => i.path === join(disk, 'rev/2'))?.action, 'kept: in use')
      t.same(items.find(i => i.path === join(disk, 'rev/3'))?.action, 'removed')
      t.ok(existsSync(join(disk, 'rev/2/web/docker--cache/data')))
    } finally {
      await c.remove({ force: true })
    }
  } finally {
    unmountUnder(dir)
  }
})

t.test('a damaged gc state is moved aside with a warning; every grace period starts again, nothing goes early', async t => {
  const { runGc } = await import('../../plugin/caretaker/gc.js')
  const { emptyDiskIndex } = await import('../../plugin/config/check-device.js')
  const { ProcessRunner } = await import('../../plugin/host/run.js')
  const dir = t.testdir({ root: { storage: { disks: { perm: { gone: { f: 'x' } } } }, var: { lib: { pvdisk: { 'gc-state.json': '{"absentSince": {"x": ' } } } } })
  const log: string[] = []
  const ctx = { root: join(dir, 'root'), runner: new ProcessRunner(), kernel: { mounts: () => [], loops: () => [], dms: () => [] }, log: (m: string) => log.push(m) }
  const items = await runGc(ctx, emptyDiskIndex(), { revision: '0', keep: 2, pruneOrphans: true, graceDays: 30, dryRun: false, apps: [] })
  t.match(items, [{ kind: 'orphan', action: 'kept: grace period' }])
  t.match(log, [/gc-state\.json is damaged .*moved to .*gc-state\.json\.damaged-/])
  t.ok(existsSync(join(dir, 'root/storage/disks/perm/gone/f')))
  t.match(JSON.parse(readFileSync(join(dir, 'root/var/lib/pvdisk/gc-state.json'), 'utf8')), { absentSince: { [join(dir, 'root/storage/disks/perm/gone')]: Number } }, 'rebuilt')
})
