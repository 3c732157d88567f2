#!/usr/bin/env node
// Benchmark (run by hand as root, after `npm run build`): how the CLI scales with the number
// of apps. For 10, 100 and 1,000 apps (4 volumes each, 20 small files per volume, on one bind
// disk), each command runs as a process, as a user runs it, and the time per app is printed:
// a flat column is linear scale. `app install` installs one app of the state, so its total
// should stay flat. Usage runs twice: the first walk, then the cached one on an unchanged
// tree; target: the cached run of 1,000 apps at least 10x cheaper, end to end. Its floor is
// measured too: a Node process that only stats every directory of the disk once.
//   node bench/scale.mjs [SIZES]     e.g. node bench/scale.mjs 10,100,1000
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const cli = fileURLToPath(new URL('../dist/pvdisk.cjs', import.meta.url))
const sizes = (process.argv[2] ?? '10,100,1000').split(',').map(Number)
const PATHS = ['/data', '/cache', '/scratch', '/var/log']
const KINDS = ['permanent@d', 'revision@d', 'boot@d', 'permanent@d']

const ms = fn => {
  const t0 = process.hrtime.bigint()
  const r = fn()
  if (r.status !== 0) throw new Error(`${r.stderr}`)
  return Number(process.hrtime.bigint() - t0) / 1e6
}

const setup = (dir, apps) => {
  const state = join(dir, 'state')
  const root = join(dir, 'root')
  mkdirSync(root, { recursive: true })
  mkdirSync(state, { recursive: true })
  writeFileSync(join(state, 'device.json'), JSON.stringify({ groups: [{ name: 'app' }], disks: [{ name: 'd', type: 'volume-disk' }] }))
  const backing = join(root, 'storage/pv/volume-disk/d')
  for (let a = 0; a < apps; a++) {
    const name = `app${a}`
    mkdirSync(join(state, name))
    writeFileSync(join(state, name, 'src.json'), JSON.stringify({ '#spec': 'service-manifest-src@1', docker_name: `local/${name}`, persistence: Object.fromEntries(PATHS.map((p, i) => [p, KINDS[i]])) }))
    for (const [i, p] of PATHS.entries()) {
      const kind = KINDS[i].split('@')[0]
      const base = kind === 'permanent' ? join(backing, 'perm') : kind === 'boot' ? join(backing, 'boot') : join(backing, 'rev/0')
      const vol = join(base, name, `docker-${p.replace(/\//g, '-')}`)
      mkdirSync(vol, { recursive: true })
      for (let f = 0; f < 20; f++) writeFileSync(join(vol, `f${f}`), 'x'.repeat(100 + f))
    }
  }
  return { state, root }
}

const rows = []
for (const apps of sizes) {
  const dir = mkdtempSync(join(tmpdir(), 'pvdisk-scale-'))
  try {
    const { state, root } = setup(dir, apps)
    const pv = (...args) => () => spawnSync(process.execPath, [cli, ...args, '--state', state, '--root', root], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 256 * 1024 * 1024 })
    ms(pv('disk', 'up'))
    const row = { apps }
    row.validate = ms(pv('validate'))
    row['app install (one)'] = ms(pv('app', 'install', 'app0'))
    row['disk status'] = ms(pv('disk', 'status'))
    row.plan = ms(pv('plan'))
    row['usage first'] = ms(pv('usage'))
    row['usage cached'] = ms(pv('usage'))
    // the floor of a cached run: a Node process that only stats every directory the cache is checked against
    const dirs = spawnSync('find', [join(root, 'media/pv/dmcrypt/d'), '-type', 'd'], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 }).stdout
    writeFileSync(join(dir, 'dirs'), dirs)
    row['node, stats only'] = ms(() => spawnSync(process.execPath, ['-e', `const fs = require('fs'); for (const d of fs.readFileSync(${JSON.stringify(join(dir, 'dirs'))}, 'utf8').split('\\n')) if (d) fs.lstatSync(d)`], { stdio: 'ignore' }))
    ms(pv('disk', 'down'))
    rows.push(row)
  } finally {
    spawnSync('umount', ['-R', join(dir, 'root/media/pv/dmcrypt/d')])
    rmSync(dir, { recursive: true, force: true })
  }
}
const cols = Object.keys(rows[0]).filter(k => k !== 'apps')
console.log(`ms per app (total ms in brackets), each command a process:`)
console.log(['apps', ...cols].map(c => c.padStart(18)).join(''))
for (const r of rows) console.log([String(r.apps), ...cols.map(c => `${(r[c] / r.apps).toFixed(2)} (${r[c].toFixed(0)})`)].map(c => c.padStart(18)).join(''))
const last = rows.at(-1)
const ratio = last['usage first'] / last['usage cached']
console.log(`usage of ${last.apps} apps: the cached run is ${ratio.toFixed(1)}x cheaper than the first, end to end (target >= 10x): ${ratio >= 10 ? 'met' : 'NOT met'}`)
console.log(`  the cached run is ${(last['usage cached'] / last['node, stats only']).toFixed(2)}x its floor, a Node process that does nothing but stat each directory once (${last['node, stats only'].toFixed(0)} ms); the first run is ${(last['usage first'] / last['node, stats only']).toFixed(1)}x it`)
