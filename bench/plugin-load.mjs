#!/usr/bin/env node
// Benchmark (run by hand as root, after `npm run build`): the VolumeDriver plugin under load.
// `pvdisk serve` on its own socket, 200 volumes on a bind disk that is already up; then
// rounds of 200 concurrent Mount requests (one caller each) and 200 concurrent Unmounts,
// over the socket as Docker sends them. Prints p50/p99 latency and requests per second, and
// the same for a baseline measured in the same run with the same client: a node:http server
// on a unix socket that answers {} at once, doing nothing (the floor for any Node plugin: libuv
// accepts one connection per turn of the event loop, so 200 arriving together queue).
// Targets: p99 <= 50 ms and >= 1,000 requests/s, with the state durable before each reply.
//   node bench/plugin-load.mjs [CONCURRENT] [ROUNDS]
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const cli = fileURLToPath(new URL('../dist/pvdisk.cjs', import.meta.url))
const concurrent = Number(process.argv[2] ?? 200)
const rounds = Number(process.argv[3] ?? 5)
const dir = mkdtempSync('/tmp/pvdisk-load-')
const socket = join(dir, 'p.sock')
mkdirSync(join(dir, 'state'))
mkdirSync(join(dir, 'root'))
writeFileSync(join(dir, 'state/device.json'), JSON.stringify({ groups: [], disks: [{ name: 'd', type: 'volume-disk' }] }))

// each request on its own connection, written as Docker's client writes it; raw sockets keep the
// load generator's own cost (it shares the machine) small beside the plugin's
const post = (endpoint, body) => new Promise((resolve, reject) => {
  const t0 = process.hrtime.bigint()
  const payload = JSON.stringify(body)
  const c = connect(socket, () => c.write(`POST ${endpoint} HTTP/1.1\r\nHost: plugin\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\nConnection: close\r\n\r\n${payload}`))
  const chunks = []
  c.on('data', d => chunks.push(d))
  c.on('error', reject)
  c.on('close', () => {
    const text = Buffer.concat(chunks).toString()
    const head = text.slice(0, text.indexOf('\r\n\r\n'))
    let body = text.slice(head.length + 4)
    if (/transfer-encoding: chunked/i.test(head)) { // size line, data, ..., 0
      let out = ''
      for (let at = 0; ;) {
        const eol = body.indexOf('\r\n', at)
        const size = parseInt(body.slice(at, eol), 16)
        if (!size) break
        out += body.slice(eol + 2, eol + 2 + size)
        at = eol + 2 + size + 2
      }
      body = out
    }
    const reply = JSON.parse(body || '{}')
    if (!text.startsWith('HTTP/1.1 200') || reply.Err) reject(new Error(`${endpoint}: ${reply.Err ?? text.split('\r\n')[0]}`))
    else resolve(Number(process.hrtime.bigint() - t0) / 1e6)
  })
})

const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]

/** rounds of `concurrent` Mounts then Unmounts; latencies and the time the rounds took */
const load = async names => {
  const latencies = []
  const later = [] // after the first round
  let busy = 0
  for (let r = 0; r < rounds; r++) {
    for (const endpoint of ['/VolumeDriver.Mount', '/VolumeDriver.Unmount']) {
      const t0 = process.hrtime.bigint()
      const ls = await Promise.all(names.map(n => post(endpoint, { Name: n, ID: `c-${n}` })))
      busy += Number(process.hrtime.bigint() - t0) / 1e6
      latencies.push(...ls)
      if (r > 0) later.push(...ls)
    }
  }
  return { p50: pct(latencies, 0.5), p99: pct(latencies, 0.99), laterP99: pct(later, 0.99), rate: latencies.length / (busy / 1000), requests: latencies.length }
}

const waitFor = async path => {
  for (let i = 0; i < 100 && !existsSync(path); i++) await new Promise(r => setTimeout(r, 100))
}
const names = Array.from({ length: concurrent }, (_, i) => `v${i}`)

// the baseline: the same socket path, the same client, a server that does nothing
const noop = spawn(process.execPath, ['-e', `require('node:http').createServer((q, s) => { q.resume(); q.on('end', () => { s.writeHead(200, { 'Content-Type': 'application/vnd.docker.plugins.v1.1+json' }); s.end('{}') }) }).listen(${JSON.stringify(socket)})`], { stdio: 'ignore' })
let floor
try {
  await waitFor(socket)
  await post('/VolumeDriver.Mount', { Name: 'warm', ID: 'warm' })
  floor = await load(names)
} finally {
  noop.kill('SIGTERM')
  await new Promise(r => noop.once('exit', r))
  rmSync(socket, { force: true })
}

const daemon = spawn(process.execPath, [...(process.env.PVDISK_BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.PVDISK_BENCH_PROF] : []), cli, 'serve', '--socket', socket, '--state', join(dir, 'state'), '--root', join(dir, 'root')], { stdio: 'ignore' })
try {
  await waitFor(socket)
  for (const n of names) await post('/VolumeDriver.Create', { Name: n, Opts: { app: 'load', persistence: persistenceOf(n) } })
  await post('/VolumeDriver.Mount', { Name: 'v0', ID: 'warm' }) // the disk comes up here, once
  await post('/VolumeDriver.Unmount', { Name: 'v0', ID: 'warm' })
  const r = await load(names) // the first round is every volume's first Mount ever: its placement is recorded
  const f = (x, unit) => `${x.toFixed(1)}${unit}`
  console.log(`${r.requests} requests in rounds of ${concurrent} concurrent Mount, then Unmount:`)
  console.log(`  no-op node:http server (baseline): p50 ${f(floor.p50, ' ms')}, p99 ${f(floor.p99, ' ms')}, ${floor.rate.toFixed(0)} requests/s`)
  console.log(`  pvdisk serve:                      p50 ${f(r.p50, ' ms')}, p99 ${f(r.p99, ' ms')} (target <= 50; ${(r.p99 / floor.p99).toFixed(2)}x the baseline's), ${r.rate.toFixed(0)} requests/s (target >= 1000)`)
  if (rounds > 1) console.log(`  after the first round (no first Mount ever): p99 ${f(r.laterP99, ' ms')} (${(r.laterP99 / floor.laterP99).toFixed(2)}x the baseline's ${f(floor.laterP99, ' ms')})`)
} finally {
  daemon.kill('SIGTERM')
  await new Promise(r => daemon.once('exit', r))
  spawnSync('umount', ['-R', join(dir, 'root/media/pv/dmcrypt/d')])
  rmSync(dir, { recursive: true, force: true })
}

/** a mix, as containers have: permanent, revision and boot volumes on the disk */
function persistenceOf(name) {
  return ['permanent@d', 'revision@d', 'boot@d'][Number(name.slice(1)) % 3]
}
