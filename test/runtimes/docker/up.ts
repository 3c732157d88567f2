// pvdisk up / down against a real dockerd, on real bind disks: data lands where
// PRODUCT.md says, survives down/up, revision volumes follow the revision, boot is fresh.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { IMAGE, startDockerd } from '../../fixtures/dockerd.js'
import { json, unmountUnder, until } from '../../fixtures/helpers.js'

const cli = fileURLToPath(new URL('../../../dist/pvdisk.cjs', import.meta.url))
t.setTimeout(300_000)


t.test('pvdisk up and down with Docker', async t => {
  const d = await startDockerd(t)
  if (!d) return
  const dir = t.testdir({
    state: {
      'device.json': json({ groups: [{ name: 'app' }], disks: [{ name: 'data-disk', type: 'volume-disk' }] }),
      web: {
        'src.json': json({
          '#spec': 'service-manifest-src@1', docker_name: 'local/busybox', docker_tag: 'latest',
          config: { Cmd: ['sh', '-c', 'date >> /data/log; cat /cache/rev > /data/seen-rev 2>/dev/null; echo here > /cache/rev; ls /scratch > /data/scratch-was; echo x > /scratch/x; mount > /data/mounts; sleep 600'] },
          persistence: { '/data': 'permanent@data-disk', '/cache': 'revision@data-disk', '/scratch': 'boot@data-disk', '/plain': 'permanent', '/run/tmp': 'boot' },
        }),
      },
    },
    root: {},
  })
  const env = { ...process.env, DOCKER_HOST: d.host }
  const pv = (...args: string[]) => spawnSync(process.execPath, [cli, ...args, '--state', join(dir, 'state'), '--root', join(dir, 'root')], { encoding: 'utf8', env })
  const disk = join(dir, 'root/media/pv/dmcrypt/data-disk')
  const log = join(disk, 'perm/web/docker--data/log')
  t.teardown(() => {
    pv('down')
    unmountUnder(dir)
  })

  const up = pv('up', '--network', 'none')
  t.equal(up.status, 0, up.stderr)
  t.match(up.stdout, /web: created pvdisk-web/)
  t.ok(await until(() => existsSync(join(disk, 'perm/web/docker--data/mounts'))), 'the container wrote into its permanent volume')
  t.equal(readFileSync(log, 'utf8').split('\n').filter(Boolean).length, 1)
  const mounts = readFileSync(join(disk, 'perm/web/docker--data/mounts'), 'utf8')
  t.match(mounts, / on \/data type /)
  t.match(mounts, /tmpfs on \/run\/tmp type tmpfs/, 'boot without a disk is a fresh tmpfs')
  t.ok(existsSync(join(dir, 'root/storage/disks/perm/web/docker--plain')), 'permanent without a disk lives under storage/disks')
  t.ok(existsSync(join(disk, 'rev/0/web/docker--cache/rev')), 'revision volumes live under rev/<revision>')
  const info = await d.docker.getContainer('pvdisk-web').inspect()
  t.equal(info.State.Running, true)
  t.match(info.Config.Labels, { 'io.pvdisk.app': 'web', 'io.pvdisk.revision': '0' })
  t.equal(info.Config.Image, IMAGE)

  t.match(pv('up', '--network', 'none').stdout, /web: unchanged pvdisk-web/, 'up again leaves a running container alone')
  t.ok(existsSync(join(disk, 'boot/web/docker--scratch/x')), '... and the boot data of a running container')

  const down = pv('down')
  t.equal(down.status, 0, down.stderr)
  t.match(down.stdout, /removed pvdisk-web\ndisk data-disk: down/)
  t.notMatch(readFileSync('/proc/self/mountinfo', 'utf8'), ` ${disk} `, 'the disk is down')
  t.equal((await d.docker.listContainers({ all: true })).length, 0)

  t.equal(pv('up', '--network', 'none').status, 0)
  t.ok(await until(() => readFileSync(log, 'utf8').split('\n').filter(Boolean).length === 2), 'permanent data survived down and up')
  t.equal(readFileSync(join(disk, 'perm/web/docker--data/scratch-was'), 'utf8'), '', 'boot is empty at the next start')

  const rev2 = pv('up', '--network', 'none', '--revision', '2')
  t.match(rev2.stdout, /web: recreated pvdisk-web/)
  t.ok(await until(() => readFileSync(log, 'utf8').split('\n').filter(Boolean).length === 3))
  t.equal(readFileSync(join(disk, 'perm/web/docker--data/seen-rev'), 'utf8'), '', 'a new revision starts with empty revision volumes')
  t.equal(readFileSync(join(disk, 'perm/web/docker--data/scratch-was'), 'utf8'), '', 'boot is empty at every start of its container, though its disk stayed mounted (as Pantavisor)')
  t.ok(existsSync(join(disk, 'rev/0/web/docker--cache/rev')), 'the old revision is still there')

  t.match(pv('up', '--network', 'none', '--revision', '0').stdout, /web: recreated/)
  t.ok(await until(() => readFileSync(log, 'utf8').split('\n').filter(Boolean).length === 4))
  t.equal(readFileSync(join(disk, 'perm/web/docker--data/seen-rev'), 'utf8'), 'here\n', 'a rollback finds the old revision data')
  t.same(readdirSync(join(disk, 'rev')).sort(), ['0', '2'])

  await d.docker.getContainer('pvdisk-web').stop({ t: 0 })
  t.ok(existsSync(join(disk, 'boot/web/docker--scratch/x')))
  t.match(pv('up', '--network', 'none', '--revision', '0').stdout, /web: started pvdisk-web/)
  t.ok(await until(() => readFileSync(log, 'utf8').split('\n').filter(Boolean).length === 5))
  t.equal(readFileSync(join(disk, 'perm/web/docker--data/scratch-was'), 'utf8'), '', 'a stopped container started again finds boot empty')
})

t.test('up and down: the state as PATH, a mistyped network refused before any container, down in parallel', async t => {
  const d = await startDockerd(t)
  if (!d) return
  // each ignores SIGTERM, so Docker waits its 10 s stop timeout for each: one after another, that is 20 s
  const app = (n: string) => ({ 'src.json': json({ '#spec': 'service-manifest-src@1', docker_name: 'local/busybox', config: { Cmd: ['sh', '-c', `trap '' TERM; echo ${n} > /data/up; while :; do sleep 1; done`] }, persistence: { '/data': 'permanent@d' } }) })
  const dir = t.testdir({ state: { 'device.json': json({ groups: [{ name: 'app' }], disks: [{ name: 'd', type: 'volume-disk' }] }), a: app('a'), b: app('b') }, root: {} })
  const env = { ...process.env, DOCKER_HOST: d.host }
  const pv = (...args: string[]) => spawnSync(process.execPath, [cli, ...args, '--root', join(dir, 'root')], { encoding: 'utf8', env })
  t.teardown(() => {
    pv('down', join(dir, 'state'))
    unmountUnder(dir)
  })
  const typo = pv('up', join(dir, 'state'), '--network', 'nnone')
  t.equal(typo.status, 2)
  t.match(typo.stderr, /^pvdisk: --network nnone: Docker has no such network\n {2}docker network ls lists them/m)
  t.equal((await d.docker.listContainers({ all: true })).length, 0, 'no container left in Created')
  const up = pv('up', join(dir, 'state'), '--network', 'none')
  t.equal(up.status, 0, up.stderr)
  t.match(up.stdout, /a: created pvdisk-a\n[^]*b: created pvdisk-b/)
  const disk = join(dir, 'root/media/pv/dmcrypt/d')
  t.ok(await until(() => existsSync(join(disk, 'perm/a/docker--data/up')) && existsSync(join(disk, 'perm/b/docker--data/up'))))
  const started = Date.now()
  const down = pv('down', join(dir, 'state'))
  const took = Date.now() - started
  t.equal(down.status, 0, down.stderr)
  t.match(down.stdout, /removed pvdisk-a\nremoved pvdisk-b\ndisk d: down/)
  t.ok(took < 18_000, `both stopped at once: ${took} ms, where one after another takes 20 s`)
})

t.test('without Docker: a clear error, nothing started', async t => {
  const dir = t.testdir({ state: { 'device.json': json({ groups: [] }), web: { 'src.json': json({ '#spec': 'service-manifest-src@1', docker_name: 'x', persistence: {} }) } } })
  const r = spawnSync(process.execPath, [cli, 'up', '--state', join(dir, 'state'), '--root', dir], { encoding: 'utf8', env: { ...process.env, DOCKER_HOST: `unix://${dir}/nope.sock` } })
  t.equal(r.status, 1)
  t.match(r.stderr, /^pvdisk: cannot reach Docker \(ENOENT\) at DOCKER_HOST=unix:\/\/.*nope\.sock/m)
})

t.test('ovl: on Docker: an overlay over the image\'s own content at that path, the changes in the volume', async t => {
  const d = await startDockerd(t)
  if (!d) return
  const { makeBusyboxRootfs } = await import('../../fixtures/busybox.js')
  const { mkdirSync, writeFileSync } = await import('node:fs')
  const dir = t.testdir({
    state: {
      'device.json': json({ groups: [], disks: [{ name: 'data-disk', type: 'volume-disk' }] }),
      web: { 'src.json': json({ '#spec': 'service-manifest-src@1', docker_name: 'local/ovl', docker_tag: 'latest',
        config: { Cmd: ['sh', '-c', 'cat /etc/app/from-image > /data/seen; cat /etc/app/changed >> /data/seen 2>/dev/null; echo mine > /etc/app/changed; sleep 600'] },
        persistence: { '/data': 'permanent@data-disk', 'ovl:/etc/app/': 'permanent@data-disk' } }) },
    },
    root: {}, image: {},
  })
  makeBusyboxRootfs(join(dir, 'image'))
  mkdirSync(join(dir, 'image/etc/app'), { recursive: true })
  writeFileSync(join(dir, 'image/etc/app/from-image'), 'image v1\n')
  const { importRootfs } = await import('../../fixtures/dockerd.js')
  await importRootfs(d.docker, join(dir, 'image'), 'local/ovl')
  const env = { ...process.env, DOCKER_HOST: d.host }
  const pv = (...args: string[]) => spawnSync(process.execPath, [cli, ...args, '--state', join(dir, 'state'), '--root', join(dir, 'root')], { encoding: 'utf8', env })
  const disk = join(dir, 'root/media/pv/dmcrypt/data-disk')
  const seen = join(disk, 'perm/web/docker--data/seen')
  try {
    const up = pv('up', '--network', 'none')
    t.equal(up.status, 0, up.stderr)
    t.ok(await until(() => existsSync(join(disk, 'perm/web/dockerovl--etc-app/upper/changed'))), 'the change went to the volume\'s upper directory')
    t.equal(readFileSync(seen, 'utf8'), 'image v1\n', 'the container saw the image\'s own file at the ovl: path')
    t.equal(existsSync(join(disk, 'perm/web/dockerovl--etc-app/upper/from-image')), false, 'unchanged files are not copied')
    t.equal(pv('down').status, 0)
    t.notMatch(readFileSync('/proc/self/mountinfo', 'utf8'), ` ${join(dir, 'root/run/pvdisk/ovl')}/`, 'down takes the overlay down')
    t.equal(pv('up', '--network', 'none').status, 0)
    t.ok(await until(() => readFileSync(seen, 'utf8') === 'image v1\nmine\n'), 'the next start sees its own change over the image')
  } finally {
    pv('down')
    unmountUnder(dir)
  }
})
