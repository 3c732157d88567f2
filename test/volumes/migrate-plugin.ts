// Data that follows a VolumeDriver plugin volume, with a real dockerd: `docker volume rm`
// keeps a volume's data, so a volume created again on another disk finds its data there at
// its first Mount (every file, mode and owner intact); created again as boot it is refused
// while its data would be left behind; and gc never removes an old copy that another history
// (a state's app sharing the volume's app and name) still uses.
import t, { type Test } from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { IMAGE, startDockerd } from '../fixtures/dockerd.js'
import { json, postJson as post, unmountUnder, until } from '../fixtures/helpers.js'
import { isRoot, requirePrereq } from '../fixtures/prereq.js'
import { fill, fingerprint } from '../fixtures/trees.js'

const cli = fileURLToPath(new URL('../../dist/pvdisk.cjs', import.meta.url))
t.setTimeout(300_000)

const device = json({ groups: [], disks: [{ name: 'a', type: 'volume-disk' }, { name: 'b', type: 'volume-disk' }] })
const src = (data: string) => json({ '#spec': 'service-manifest-src@1', docker_name: 'local/busybox', docker_tag: 'latest', persistence: { '/data': data } })

/** fn with the plugin serving dir's state; then the plugin is killed and everything below dir unmounted */
const withPlugin = async (t: Test, socket: string, dir: string, fn: () => Promise<void>): Promise<void> => {
  const plugin = spawn(process.execPath, [cli, 'serve', '--socket', socket, '--state', join(dir, 'state'), '--root', join(dir, 'root')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  plugin.stderr?.on('data', (b: Buffer) => { stderr += b.toString() })
  const gone = new Promise(resolve => plugin.once('exit', resolve))
  try {
    t.ok(await until(() => existsSync(socket) && statSync(socket).isSocket()), 'the plugin listens')
    await fn()
  } finally {
    plugin.kill('SIGKILL')
    await gone
    unmountUnder(dir)
    if (stderr !== '') t.comment(stderr)
  }
}

t.test('docker volume rm, then create on another disk: the next container finds the data', async t => {
  const d = await startDockerd(t)
  if (!d) return
  const name = `pvdisk-m${process.pid}`
  const socket = `/run/docker/plugins/${name}.sock`
  const dir = t.testdir({ state: { 'device.json': device }, root: {} })
  const root = join(dir, 'root')
  await withPlugin(t, socket, dir, async () => {
    const A = join(root, 'media/pv/dmcrypt/a/perm/web/webdata')
    const B = join(root, 'media/pv/dmcrypt/b/perm/web/webdata')
    const run = async (cmd: string): Promise<string> => {
      const c = await d.docker.createContainer({ Image: IMAGE, Cmd: ['sh', '-c', cmd], Tty: true, HostConfig: { NetworkMode: 'none', Mounts: [{ Type: 'volume', Source: 'webdata', Target: '/data' }] } })
      await c.start()
      await c.wait()
      const out = await c.logs({ stdout: true, stderr: true, follow: false })
      await c.remove()
      return out.toString().replace(/\r/g, '')
    }

    await d.docker.createVolume({ Name: 'webdata', Driver: name, DriverOpts: { app: 'web', persistence: 'permanent@a' } })
    await run('echo from-the-first > /data/f; chmod 600 /data/f')
    fill(A)
    const before = fingerprint(A)
    await d.docker.getVolume('webdata').remove()
    t.same(fingerprint(A), before, 'docker volume rm keeps the data')

    await d.docker.createVolume({ Name: 'webdata', Driver: name, DriverOpts: { app: 'web', persistence: 'permanent@b' } })
    const dry = spawnSync(process.execPath, [cli, 'migrate', '--dry-run', '--state', join(dir, 'state'), '--root', root], { encoding: 'utf8' })
    t.equal(dry.status, 0, dry.stderr)
    t.match(dry.stdout, /^web plugin volume webdata: permanent@a -> permanent@b, \d+ files, [\d.]+[KMG]? \(would move\)\n {2}\S+\/a\/perm\/web\/webdata -> \S+\/b\/perm\/web\/webdata$/m, 'pvdisk migrate --dry-run lists the plugin volume')
    t.equal(await run('cat /data/f; stat -c %a /data/f'), 'from-the-first\n600\n', 'the container on disk b reads the first one\'s file, mode intact')
    t.same(fingerprint(B), before, 'every file, mode, owner, link and byte arrived on disk b')
    t.same(fingerprint(A), before, 'the old copy stays until gc')
    const journal = JSON.parse(readFileSync(join(root, 'var/lib/pvdisk/migrations.json'), 'utf8'))
    t.match(journal.migrations, [{ app: 'web', volume: 'webdata', from: A, to: B, state: 'done' }])
    t.match(JSON.parse(readFileSync(join(root, 'var/lib/pvdisk/placements/plugin/web.json'), 'utf8')).volumes.webdata, { persistence: 'permanent', disk: 'b' })
    t.notOk(existsSync(join(root, 'var/lib/pvdisk/placements/web.json')), 'the plugin keeps a history of its own, apart from the state\'s apps')

    await d.docker.getVolume('webdata').remove()
    const boot = await d.docker.createVolume({ Name: 'webdata', Driver: name, DriverOpts: { app: 'web', persistence: 'boot@a' } }).catch((e: Error) => e)
    t.match(String(boot), /webdata of app "web" was permanent@b and is now boot@a: its data \(in \S+\/b\/perm\/web\/webdata\) would not follow into a boot volume/, 'created again as boot: refused at Create, naming both')
    t.same(fingerprint(B), before, 'and nothing touched')

    const gc = spawnSync(process.execPath, [cli, 'gc', '--grace', '0', '--state', join(dir, 'state'), '--root', root], { encoding: 'utf8' })
    t.equal(gc.status, 0, gc.stderr)
    t.notOk(existsSync(A), 'after the grace period gc removes the old copy')
    t.same(fingerprint(B), before, 'and keeps the live one')
  })
})

t.test('a plugin volume that shares a state app\'s volume: gc keeps the old copy the state still uses', async t => {
  if (!requirePrereq(t, isRoot(), 'bind disks need root')) return
  const socket = `/tmp/pvdisk-mp-${process.pid}.sock`
  const dir = t.testdir({ state: { 'device.json': device, web: { 'src.json': src('permanent@a') } }, root: {} })
  const state = join(dir, 'state')
  const root = join(dir, 'root')
  const pv = (args: string[]) => spawnSync(process.execPath, [cli, ...args, '--state', state, '--root', root], { encoding: 'utf8' })
  await withPlugin(t, socket, dir, async () => {
    const A = join(root, 'media/pv/dmcrypt/a/perm/web/docker--data')
    t.equal(pv(['volumes', 'up', 'web']).status, 0, 'the state\'s app web lives on disk a')
    writeFileSync(join(A, 'f'), 'the state\'s data')
    t.equal(pv(['volumes', 'down', 'web']).status, 0)

    const call = (path: string, body: Record<string, unknown>) => post(socket, `/VolumeDriver.${path}`, body)
    t.same(await call('Create', { Name: 'docker--data', Opts: { app: 'web', persistence: 'permanent@a' } }), {})
    t.match(await call('Mount', { Name: 'docker--data', ID: 'c1' }), { Mountpoint: A }, 'the same directory as the state\'s volume')
    t.same(await call('Unmount', { Name: 'docker--data', ID: 'c1' }), {})
    t.same(await call('Remove', { Name: 'docker--data' }), {})
    t.same(await call('Create', { Name: 'docker--data', Opts: { app: 'web', persistence: 'permanent@b' } }), {})
    const B = join(root, 'media/pv/dmcrypt/b/perm/web/docker--data')
    t.match(await call('Mount', { Name: 'docker--data', ID: 'c2' }), { Mountpoint: B })
    t.equal(readFileSync(join(B, 'f'), 'utf8'), 'the state\'s data', 'the plugin volume took its data along')

    const gc = pv(['gc', '--grace', '0'])
    t.equal(gc.status, 0, gc.stderr)
    t.match(gc.stdout, /kept: in use: \S+\/a\/perm\/web\/docker--data/, 'the old copy is where the state\'s app lives: kept')
    t.equal(readFileSync(join(A, 'f'), 'utf8'), 'the state\'s data')
    t.same(await call('Unmount', { Name: 'docker--data', ID: 'c2' }), {})
  })
})
