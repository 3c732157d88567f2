import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { connect } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { defaultConfig, loadConfig } from '../../plugin/caretaker/config.js'
import { startJobs } from '../../plugin/caretaker/schedules.js'
import { checkDeviceFile } from '../../plugin/config/state.js'
import { liveKernel, type DiskContext } from '../../plugin/disks/context.js'
import { disksUp } from '../../plugin/disks/engine.js'
import { ProcessRunner } from '../../plugin/host/run.js'
import { json, unmountUnder } from '../fixtures/helpers.js'
import { isRoot, requirePrereq } from '../fixtures/prereq.js'

const cli = fileURLToPath(new URL('../../dist/pvdisk.cjs', import.meta.url))
t.setTimeout(120_000)

t.test('configuration: defaults, a file, flags, and clear errors', async t => {
  t.same(await loadConfig(undefined), defaultConfig())
  const dir = t.testdir({
    'good.json': json({ schedules: { gc: '0 4 * * *' }, gc: { keep: 5, pruneOrphans: true } }),
    'bad.json': json({ schedules: { gc: 'every night', usage: 5 }, gc: { keep: -1 }, metricDir: '/x' }),
  })
  const good = await loadConfig(join(dir, 'good.json'), { health: '*/1 * * * *' })
  t.match(good, { schedules: { gc: '0 4 * * *', usage: '*/15 * * * *', health: '*/1 * * * *' }, gc: { keep: 5, pruneOrphans: true, graceDays: 30 } })
  await t.rejects(loadConfig(join(dir, 'bad.json')), {
    code: 'EINVALID',
    problems: [
      { code: 'config-cron', pointer: '/schedules/gc', line: 3 },
      { code: 'config-cron', pointer: '/schedules/usage' },
      { code: 'config-type', pointer: '/gc/keep' },
      { code: 'config-unknown-key', pointer: '/metricDir', hint: 'did you mean "metricsDir"?' },
    ],
  })
  await t.rejects(loadConfig(undefined, { gc: '61 * * * *' }), { code: 'EINVALID', problems: [{ code: 'config-cron', file: '(command line)', pointer: '/schedules/gc' }] })
  await t.rejects(loadConfig(join(dir, 'missing.json')), { code: 'EINVALID', problems: [{ code: 'file-unreadable' }] })
})

t.test('jobs driven directly: usage, gc, health', async t => {
  if (!requirePrereq(t, isRoot(), 'bind mounts need root')) return
  const dir = t.testdir({
    state: { 'device.json': json({ groups: [], disks: [{ name: 'data', type: 'volume-disk' }] }) },
    root: {}, other: {},
  })
  try {
    const { disks } = await checkDeviceFile(join(dir, 'state/device.json'))
    const logs: string[] = []
    const ctx: DiskContext = { root: join(dir, 'root'), runner: new ProcessRunner(), kernel: liveKernel, log: () => undefined }
    await disksUp(ctx, [...disks.disks.values()])
    const mnt = join(dir, 'root/media/pv/dmcrypt/data')
    for (const rev of ['1', '2']) mkdirSync(join(mnt, 'rev', rev, 'web', 'docker--c'), { recursive: true })
    mkdirSync(join(mnt, 'perm/web/docker--d'), { recursive: true })
    writeFileSync(join(mnt, 'perm/web/docker--d/f'), 'x'.repeat(3000))
    const config = { ...defaultConfig(), metricsDir: '/metrics', gc: { keep: 0, pruneOrphans: false, graceDays: 30 } }
    const jobs = startJobs(ctx, disks, config, { revision: '2', apps: () => ['web'], log: (level, event, f) => logs.push(JSON.stringify({ level, event, ...f })) })
    t.teardown(() => jobs.stop())

    await jobs.tasks.usage.execute()
    const prom = readFileSync(join(dir, 'root/metrics/pvdisk.prom'), 'utf8')
    t.match(prom, /^pvdisk_volume_files\{disk="data",app="web",volume="docker--d",persistence="permanent",revision=""\} 1$/m)
    t.match(JSON.parse(readFileSync(join(dir, 'root/metrics/usage.json'), 'utf8')), { disks: [{ disk: 'data', state: 'mounted' }] })

    await jobs.tasks.gc.execute()
    t.equal(existsSync(join(mnt, 'rev/1')), false, 'gc removed the revision not kept')
    t.ok(existsSync(join(mnt, 'rev/2')), 'and kept the current one')

    await jobs.tasks.health.execute()
    t.match(JSON.parse(readFileSync(join(dir, 'root/metrics/health.json'), 'utf8')), { disks: [{ disk: 'data', ok: true, repaired: false }] })
    spawnSync('umount', [mnt]) // drift: unmounted behind pvdisk's back
    await jobs.tasks.health.execute()
    t.match(JSON.parse(readFileSync(join(dir, 'root/metrics/health.json'), 'utf8')), { disks: [{ disk: 'data', ok: true, repaired: true }] })
    t.match(readFileSync('/proc/self/mountinfo', 'utf8'), ` ${mnt} `, 'remounted')
    const healthProm = readFileSync(join(dir, 'root/metrics/pvdisk-health.prom'), 'utf8')
    t.match(healthProm, /^pvdisk_disk_healthy\{disk="data"\} 1$/m)
    t.match(healthProm, /^pvdisk_disk_repairs_total 1$/m)
    // a container (here: a process in its own mount namespace) uses a volume that then vanishes from the disk
    const vol = join(mnt, 'perm/web/docker--gone')
    const inside = join(dir, 'other')
    mkdirSync(vol, { recursive: true })
    const holder = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `mount --bind '${vol}' '${inside}' && echo ready && sleep 60`], { stdio: ['ignore', 'pipe', 'inherit'] })
    await new Promise(resolve => holder.stdout.once('data', resolve))
    try {
      spawnSync('rm', ['-rf', vol])
      await jobs.tasks.health.execute()
      const h = JSON.parse(readFileSync(join(dir, 'root/metrics/health.json'), 'utf8')) as { disks: { disk: string, ok: boolean, volume?: string, problem?: string }[] }
      t.match(h.disks.find(i => i.volume !== undefined), { disk: 'data', ok: false, volume: vol, problem: /mounted into a container but no longer exists/ })
      t.match(readFileSync(join(dir, 'root/metrics/pvdisk-health.prom'), 'utf8'), /pvdisk_disk_healthy\{disk="data"\} 0/)
    } finally {
      holder.kill()
    }
    spawnSync('umount', [mnt])
    spawnSync('mount', ['--bind', join(dir, 'other'), mnt]) // something else took its place
    await jobs.tasks.health.execute()
    t.match(JSON.parse(readFileSync(join(dir, 'root/metrics/health.json'), 'utf8')), { disks: [{ disk: 'data', ok: false, repaired: false, problem: /mounted from something else/ }] })
    t.ok(logs.some(l => /"level":"error","event":"health"/.test(l)), 'reported loudly')
    t.match(readFileSync(join(dir, 'root/metrics/pvdisk-health.prom'), 'utf8'), /pvdisk_disk_healthy\{disk="data"\} 0/)
  } finally {
    unmountUnder(dir)
  }
})

const post = (socket: string, path: string, body: unknown): Promise<string> => new Promise((resolve, reject) => {
  const req = request({ socketPath: socket, path, method: 'POST' }, res => {
    let text = ''
    res.on('data', (b: Buffer) => { text += b.toString() })
    res.on('end', () => resolve(text))
  })
  req.on('error', reject)
  req.end(JSON.stringify(body))
})

t.test('serve: a bad schedule fails at start; SIGTERM finishes the request in flight and exits 0', async t => {
  if (!requirePrereq(t, isRoot(), 'the plugin mounts disks')) return
  const dir = t.testdir({ state: { 'device.json': json({ groups: [], disks: [{ name: 'data', type: 'volume-disk' }] }) }, root: {} })
  const socket = `/tmp/pvdisk-ct-${process.pid}.sock` // unix socket paths are short
  const base = ['--state', join(dir, 'state'), '--root', join(dir, 'root'), '--socket', socket]
  try {
    const long = spawnSync(process.execPath, [cli, 'serve', ...base.slice(0, 4), '--socket', join(dir, 'x'.repeat(100), 'p.sock')], { encoding: 'utf8' })
    t.equal(long.status, 2)
    t.match(long.stderr, /a unix socket path may have at most 107/)
    const bad = spawnSync(process.execPath, [cli, 'serve', ...base, '--gc-cron', 'at 3am'], { encoding: 'utf8' })
    t.equal(bad.status, 2)
    t.match(bad.stderr, /\(command line\): error \[config-cron\] at \/schedules\/gc: "at 3am" is not a valid cron expression/)
    t.equal(existsSync(socket), false, 'nothing started')

    const p = spawn(process.execPath, [cli, 'serve', ...base, '--log-format', 'json'], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    p.stderr.on('data', (b: Buffer) => { err += b.toString() })
    for (let i = 0; i < 100 && !(existsSync(socket) && statSync(socket).isSocket()); i++) await new Promise(r => setTimeout(r, 100))
    await post(socket, '/VolumeDriver.Create', { Name: 'v', Opts: { persistence: 'permanent@data' } })
    const exited = new Promise<number | null>(resolve => p.once('exit', code => resolve(code)))
    // a request surely in flight: half of it sent, then SIGTERM, then the rest
    const body = JSON.stringify({ Name: 'v', ID: 'c1' })
    const conn = connect(socket)
    let answer = ''
    conn.on('data', (b: Buffer) => { answer += b.toString() })
    const closed = new Promise(resolve => conn.once('close', resolve))
    await new Promise(resolve => conn.once('connect', resolve))
    conn.write(`POST /VolumeDriver.Mount HTTP/1.1\r\nHost: plugin\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, 5)}`)
    await new Promise(r => setTimeout(r, 1000))
    p.kill('SIGTERM')
    await new Promise(r => setTimeout(r, 1000))
    conn.write(body.slice(5)) // not end(): a half-closed socket gets no answer
    await closed
    t.match(answer, /^HTTP\/1\.1 200 /, 'the request in flight was answered')
    t.match(answer, /"Mountpoint":"[^"]*\/perm\/docker\/v"/)
    t.equal(await exited, 0)
    const events = err.trim().split('\n').map(l => JSON.parse(l) as { event: string })
    t.same(events.map(e => e.event).filter(e => e !== 'disk'), ['started', 'stopping', 'stopped'], 'one JSON line per event')
    t.match(JSON.parse(readFileSync(join(dir, 'root/var/lib/pvdisk/volume-driver.json'), 'utf8')), { volumes: { v: { mountedBy: ['c1'] } } }, 'state persisted')
  } finally {
    unmountUnder(dir)
  }
})
