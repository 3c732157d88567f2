#!/usr/bin/env node
// Benchmark (run by hand as root, after `npm run build`): the LXC pre-start step for an
// app with 4 volumes on a bind disk (the disk already up, each run starting from the
// volumes down): the hook program `pvdisk-lxc-hook up APP` (in-process), the fast path's
// client `pvdisk-hook lxc up APP` with `pvdisk serve` answering (the daemon path), and the
// CLI (`pvdisk volumes up APP`), against `node -e 0`, alternating, in the same run.
// Targets: in-process at most 1.4x (issue 13; 1.5x in issue 11), the daemon path at most 0.5x.
//   node bench/lxc-volumes.mjs [RUNS]
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const runs = Number(process.argv[2] ?? 21)
const cli = fileURLToPath(new URL('../dist/pvdisk.cjs', import.meta.url))
const hook = fileURLToPath(new URL('../dist/pvdisk-lxc-hook.cjs', import.meta.url))
const client = fileURLToPath(new URL('../dist/pvdisk-hook', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'pvdisk-bench-lxc-'))
const state = join(dir, 'state')
const root = join(dir, 'root')
mkdirSync(join(state, 'web'), { recursive: true })
mkdirSync(root)
writeFileSync(join(state, 'device.json'), JSON.stringify({ groups: [{ name: 'app' }], disks: [{ name: 'data', type: 'volume-disk' }] }))
writeFileSync(join(state, 'web/src.json'), JSON.stringify({ '#spec': 'service-manifest-src@1', persistence: { '/data': 'permanent@data', '/cache': 'revision@data', '/scratch': 'boot@data', '/run/x': 'boot' } }))

const pv = (...args) => spawnSync(process.execPath, [cli, ...args, '--state', state, '--root', root], { stdio: ['ignore', 'ignore', 'pipe'] })
const time = (fn) => {
  const t0 = process.hrtime.bigint()
  const r = fn()
  if (r.status !== 0) throw new Error(r.stderr.toString())
  return Number(process.hrtime.bigint() - t0) / 1e6
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const socket = join(dir, 's.sock')
const daemon = spawn(process.execPath, [cli, 'serve', '--socket', socket, '--state', state, '--root', root], { stdio: 'ignore' })
const viaDaemon = () => spawnSync(client, ['--socket', socket, 'lxc', 'up', 'web', '--state', state, '--root', root], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PVDISK_NODE: '/nonexistent' } })

try {
  if (pv('disk', 'up').status !== 0) throw new Error('disk up failed (run as root)')
  for (let i = 0; i < 100 && !existsSync(socket); i++) spawnSync('sleep', ['0.1'])
  const viaHook = []
  const viaCli = []
  const viaServe = []
  const node = []
  pv('volumes', 'down', 'web')
  time(viaDaemon) // the daemon's first request compiles its code: warm it up, as on a device that runs
  for (let i = 0; i < runs; i++) {
    pv('volumes', 'down', 'web')
    viaHook.push(time(() => spawnSync(process.execPath, [hook, 'up', 'web', '--state', state, '--root', root], { stdio: ['ignore', 'ignore', 'pipe'] })))
    pv('volumes', 'down', 'web')
    viaServe.push(time(viaDaemon))
    pv('volumes', 'down', 'web')
    viaCli.push(time(() => pv('volumes', 'up', 'web')))
    node.push(time(() => spawnSync(process.execPath, ['-e', '0'])))
  }
  const n = median(node)
  console.log(`node -e 0: median ${n.toFixed(1)} ms`)
  console.log(`pvdisk-lxc-hook up (in-process, 4 volumes): median ${median(viaHook).toFixed(1)} ms, ratio ${(median(viaHook) / n).toFixed(2)} (target <= 1.4)`)
  console.log(`pvdisk-hook lxc up (pvdisk serve answering): median ${median(viaServe).toFixed(1)} ms, ratio ${(median(viaServe) / n).toFixed(2)} (target <= 0.5)`)
  console.log(`pvdisk volumes up (the CLI): median ${median(viaCli).toFixed(1)} ms, ratio ${(median(viaCli) / n).toFixed(2)}`)
} finally {
  daemon.kill('SIGTERM')
  pv('volumes', 'down', 'web')
  pv('disk', 'down')
  spawnSync('umount', ['-R', root])
  rmSync(dir, { recursive: true, force: true })
}
