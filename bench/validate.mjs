#!/usr/bin/env node
// Benchmark (run by hand, after `npm run build`): `pvdisk validate` on a large state
// (500 apps with 4 persistence entries each, 50 disks) against `node -e 0`, alternating,
// in the same run, and `pvdisk --version` and `pvdisk --help` the same way.
// Targets: validate at most 2.5x (3x before issue 13); --version and --help at most 1.1x.
//   node bench/validate.mjs [RUNS]
import { spawnSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const runs = Number(process.argv[2] ?? 21)
const cli = fileURLToPath(new URL('../dist/pvdisk.cjs', import.meta.url))

export const generateState = (dir, apps = 500, disks = 50) => {
  const types = ['dm-crypt-versatile', 'volume-disk', 'directory']
  const list = Array.from({ length: disks }, (_, i) => {
    const type = types[i % types.length]
    const name = `disk-${i}`
    if (type === 'dm-crypt-versatile') return { name, type, path: `/storage/dm-crypt-files/${name}/${name}.img,64,key-${name}`, aliases: [`alias-${i}`] }
    if (type === 'directory') return { name, type, path: `/storage/disks/${name}` }
    return { name, type }
  })
  writeFileSync(join(dir, 'device.json'), JSON.stringify({ groups: [{ name: 'app' }], disks: list }, null, '\t'))
  const kinds = ['permanent', 'revision', 'boot']
  for (let a = 0; a < apps; a++) {
    const app = join(dir, `app-${a}`)
    mkdirSync(app)
    const persistence = {}
    for (let p = 0; p < 4; p++) persistence[`/data/vol-${p}`] = `${kinds[(a + p) % 3]}@${p % 2 ? `alias-${((a + p) % 17) * 3}` : `disk-${(a + p) % disks}`}`
    writeFileSync(join(app, 'src.json'), JSON.stringify({ '#spec': 'service-manifest-src@1', docker_name: 'local/busybox', docker_tag: 'latest', persistence }, null, '\t'))
  }
}

const time = (args) => {
  const t0 = process.hrtime.bigint()
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  return { ms, status: r.status, stderr: r.stderr.toString() }
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }

const dir = mkdtempSync(join(tmpdir(), 'pvdisk-bench-'))
try {
  generateState(dir)
  const check = time([cli, 'validate', '--state', dir])
  if (check.status !== 0) throw new Error(`validate failed on the generated state (exit ${check.status}):\n${check.stderr}`)
  const base = []
  const validate = []
  const version = []
  const help = []
  for (let i = 0; i < runs; i++) {
    base.push(time(['-e', '0']).ms)
    validate.push(time([cli, 'validate', '--state', dir]).ms)
    version.push(time([cli, '--version']).ms)
    help.push(time([cli, '--help']).ms)
  }
  const b = median(base)
  console.log(`state: 500 apps x 4 persistence entries, 50 disks; ${runs} alternating runs each`)
  console.log(`node -e 0          median ${b.toFixed(1)} ms`)
  for (const [what, xs, target] of [['pvdisk validate', validate, 2.5], ['pvdisk --version', version, 1.1], ['pvdisk --help', help, 1.1]]) {
    const m = median(xs)
    console.log(`${what.padEnd(18)} median ${m.toFixed(1)} ms, ratio ${(m / b).toFixed(2)}x (target <= ${target}x): ${m / b <= target ? 'met' : 'NOT met'}`)
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
