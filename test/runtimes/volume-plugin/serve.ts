// The VolumeDriver plugin with a real dockerd: volumes land where PRODUCT.md says, mounts
// are counted per container, counts survive a plugin restart, errors read as sentences.
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { IMAGE, startDockerd } from '../../fixtures/dockerd.js'
import { json, unmountUnder, until } from '../../fixtures/helpers.js'

const cli = fileURLToPath(new URL('../../../dist/pvdisk.cjs', import.meta.url))
t.setTimeout(300_000)


const post = (socket: string, path: string, body: unknown = {}): Promise<{ status: number, body: Record<string, unknown> }> => new Promise((resolve, reject) => {
  const req = request({ socketPath: socket, path, method: 'POST', headers: { 'Content-Type': 'application/json' } }, res => {
    let text = ''
    res.on('data', (b: Buffer) => { text += b.toString() })
    res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }))
  })
  req.on('error', reject)
  req.end(JSON.stringify(body))
})

t.test('docker run with pvdisk volumes', async t => {
  const d = await startDockerd(t)
  if (!d) return
  const name = `pvdisk-t${process.pid}`
  const socket = `/run/docker/plugins/${name}.sock`
  const dir = t.testdir({ state: { 'device.json': json({ groups: [], disks: [{ name: 'data-disk', type: 'volume-disk' }] }) }, root: {} })
  const mountinfo = () => readFileSync('/proc/self/mountinfo', 'utf8')
  let plugin: ChildProcess | undefined
  const startPlugin = async () => {
    plugin = spawn(process.execPath, [cli, 'serve', '--socket', socket, '--state', join(dir, 'state'), '--root', join(dir, 'root')], { stdio: ['ignore', 'ignore', 'pipe'] })
    t.ok(await until(() => existsSync(socket) && statSync(socket).isSocket()), 'the plugin listens')
  }
  const stopPlugin = async (check = true) => {
    const p = plugin
    if (!p || p.exitCode !== null) return
    const exited = new Promise<number | null>(resolve => p.once('exit', code => resolve(code)))
    p.kill('SIGTERM')
    const code = await exited
    if (check) t.equal(code, 0, 'SIGTERM stops the plugin cleanly')
  }
  t.teardown(async () => {
    for (const c of await d.docker.listContainers({ all: true })) await d.docker.getContainer(c.Id).remove({ force: true })
    await stopPlugin(false)
    unmountUnder(dir)
  })
  await startPlugin()

  t.same((await post(socket, '/Plugin.Activate')).body, { Implements: ['VolumeDriver'] })
  await d.docker.createVolume({ Name: 'vol1', Driver: name, DriverOpts: { app: 'web', persistence: 'permanent@data-disk' } })
  await d.docker.createVolume({ Name: 'shared', Driver: name, DriverOpts: { app: 'web', persistence: 'boot' } })
  const bad = await d.docker.createVolume({ Name: 'bad', Driver: name, DriverOpts: { persistence: 'forever' } }).catch((e: Error) => e)
  t.match(String(bad), /persistence type "forever" is not permanent, revision or boot/, 'errors come back as sentences')
  const unknownDisk = await d.docker.createVolume({ Name: 'bad2', Driver: name, DriverOpts: { persistence: 'permanent@nope' } }).catch((e: Error) => e)
  t.match(String(unknownDisk), /unknown disk "nope"; disks: data-disk/)

  const run = async (cname: string, cmd: string) => {
    const c = await d.docker.createContainer({
      name: cname, Image: IMAGE, Cmd: ['sh', '-c', cmd],
      HostConfig: { NetworkMode: 'none', Mounts: [{ Type: 'volume', Source: 'vol1', Target: '/data' }, { Type: 'volume', Source: 'shared', Target: '/shared' }] },
    })
    await c.start()
    return c
  }
  const a = await run('ctr-a', 'echo from-a >> /data/f; grep " /shared " /proc/mounts > /data/shared-mount; sleep 600')
  const disk = join(dir, 'root/media/pv/dmcrypt/data-disk')
  t.ok(await until(() => existsSync(join(disk, 'perm/web/vol1/f'))), 'the container wrote into M/perm/<app>/<volume>')
  t.equal(readFileSync(join(disk, 'perm/web/vol1/f'), 'utf8'), 'from-a\n')
  t.match(mountinfo(), ` ${disk} `, 'the disk was brought up at the first Mount')
  const tmpfs = join(dir, 'root/run/pvdisk/tmpfs/web/shared')
  t.match(mountinfo(), new RegExp(` ${tmpfs} .* - tmpfs `), 'a boot volume without a disk is a fresh tmpfs')
  const b = await run('ctr-b', 'while true; do date >> /shared/b; sleep 0.2; done')
  t.ok(await until(() => existsSync(join(tmpfs, 'b'))))

  await stopPlugin()
  await startPlugin() // between Mount and Unmount
  const list = (await post(socket, '/VolumeDriver.List')).body as { Volumes: { Name: string, Mountpoint: string }[] }
  t.same(list.Volumes.map(v => v.Name).sort(), ['shared', 'vol1'], 'the volume list survives a restart')
  t.match((await post(socket, '/VolumeDriver.Get', { Name: 'shared' })).body, { Volume: { Name: 'shared', Mountpoint: tmpfs, Status: { mounts: 2 } } }, 'and so do the counts')

  await a.stop({ t: 1 })
  const size = statSync(join(tmpfs, 'b')).size
  t.ok(await until(() => statSync(join(tmpfs, 'b')).size > size), 'one container stopping never unmounts what another still uses')
  t.match(mountinfo(), ` ${tmpfs} `)
  t.match((await post(socket, '/VolumeDriver.Remove', { Name: 'shared' })).body, { Err: /in use by 1 container/ })
  await b.stop({ t: 1 })
  t.ok(await until(() => !mountinfo().includes(` ${tmpfs} `)), 'the last Unmount releases the tmpfs')
  await a.remove()
  await b.remove()
  await d.docker.getVolume('vol1').remove()
  t.equal(readFileSync(join(disk, 'perm/web/vol1/f'), 'utf8'), 'from-a\n', 'docker volume rm never deletes data')
  t.match((await post(socket, '/VolumeDriver.Get', { Name: 'vol1' })).body, { Err: /no pvdisk volume named "vol1"/ })
  t.equal((await post(socket, '/VolumeDriver.Nope')).status, 500)

  // a boot volume on a disk: empty when its first user starts, shared while in use (as Pantavisor)
  t.same((await post(socket, '/VolumeDriver.Create', { Name: 'scratch', Opts: { app: 'web', persistence: 'boot@data-disk' } })).body, {})
  const first = (await post(socket, '/VolumeDriver.Mount', { Name: 'scratch', ID: 'c1' })).body
  t.same(first, { Mountpoint: join(disk, 'boot/web/scratch') })
  writeFileSync(join(disk, 'boot/web/scratch/left'), 'x')
  t.same((await post(socket, '/VolumeDriver.Mount', { Name: 'scratch', ID: 'c2' })).body, first)
  t.ok(existsSync(join(disk, 'boot/web/scratch/left')), 'a second user while the first runs shares the data')
  await post(socket, '/VolumeDriver.Unmount', { Name: 'scratch', ID: 'c1' })
  await post(socket, '/VolumeDriver.Unmount', { Name: 'scratch', ID: 'c2' })
  t.ok(existsSync(join(disk, 'boot/web/scratch/left')), 'data stays on the disk between starts')
  await post(socket, '/VolumeDriver.Mount', { Name: 'scratch', ID: 'c3' })
  t.same(readdirSync(join(disk, 'boot/web/scratch')), [], 'the next first user starts with it empty')
})
