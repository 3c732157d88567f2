// Anti-rollback on the host, through the CLI: the applied version in a file and in a TPM NV
// counter (swtpm), an older state refused before any change, --allow-downgrade, and kill -9
// at every step of an update.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { json, unmountUnder } from '../fixtures/helpers.js'
import { flushTpm, startSwtpm } from '../fixtures/keyservers.js'
import { isRoot, requirePrereq } from '../fixtures/prereq.js'

const cli = fileURLToPath(new URL('../../dist/pvdisk.cjs', import.meta.url))

const host = (t: Test) => {
  const dir = t.testdir({ state: { 'device.json': json({ groups: [{ name: 'app' }], disks: [{ name: 'data', type: 'volume-disk' }] }) }, root: {} })
  const base = ['--state', join(dir, 'state'), '--root', join(dir, 'root')]
  const setVersion = (v: number) => writeFileSync(join(dir, 'state/pvdisk.json'), json({ '#spec': 'pvdisk-state@1', version: v }))
  const run = (args: string[], env: NodeJS.ProcessEnv = process.env) => {
    const r = spawnSync(process.execPath, [cli, ...args, ...base], { encoding: 'utf8', env })
    flushTpm(env)
    return { status: r.status, out: r.stdout + r.stderr }
  }
  const counterFile = join(dir, 'root/var/lib/pvdisk/applied-version.json')
  return { dir, setVersion, run, counterFile }
}

t.test('file counter: a lower version is refused with both versions, equal re-applies, --allow-downgrade is logged', async t => {
  if (!requirePrereq(t, isRoot(), 'disk up needs root')) return
  const h = host(t)
  try {
    h.setVersion(3)
    t.equal(h.run(['disk', 'up']).status, 0)
    t.same(JSON.parse(readFileSync(h.counterFile, 'utf8')), { version: 3 })
    t.equal(h.run(['disk', 'up']).status, 0, 'the same version again')
    h.setVersion(2)
    t.equal(h.run(['disk', 'down']).status, 0)
    const r = h.run(['disk', 'up'])
    t.equal(r.status, 2)
    t.match(r.out, /state version 2 is older than version 3, already applied: refused as a downgrade/)
    t.notOk(existsSync(join(h.dir, 'root/media/pv/dmcrypt/data')), 'nothing was mounted')
    const allowed = h.run(['disk', 'up', '--allow-downgrade'])
    t.equal(allowed.status, 0, allowed.out)
    t.match(allowed.out, /downgrade from state version 3 to 2 allowed by --allow-downgrade/)
    t.same(JSON.parse(readFileSync(h.counterFile, 'utf8')), { version: 3 }, 'the counter never goes down')
    h.setVersion(4)
    t.equal(h.run(['disk', 'up']).status, 0)
    t.same(JSON.parse(readFileSync(h.counterFile, 'utf8')), { version: 4 })
    writeFileSync(join(h.dir, 'state/pvdisk.json'), '{"version": "five"}')
    t.equal(h.run(['disk', 'up']).status, 2, 'a version that is not a number is invalid input')
  } finally {
    h.run(['disk', 'down'])
    unmountUnder(h.dir)
  }
})

t.test('kill -9 at every step of an update: never behind what began to apply, and the rerun converges', async t => {
  if (!requirePrereq(t, isRoot(), 'disk up needs root')) return
  const h = host(t)
  try {
    for (let n = 1; n <= 6; n++) {
      h.setVersion(10 * n)
      h.run(['disk', 'down'])
      spawnSync(process.execPath, [cli, 'disk', 'up', '--state', join(h.dir, 'state'), '--root', join(h.dir, 'root')], { env: { ...process.env, PVDISK_CRASH_AT: String(n) } })
      const r = h.run(['disk', 'up'])
      t.equal(r.status, 0, `crash at step ${n}: the same state applies: ${r.out}`)
      t.same(JSON.parse(readFileSync(h.counterFile, 'utf8')), { version: 10 * n }, `crash at step ${n}: counter at the new version`)
      h.setVersion(10 * n - 5)
      t.equal(h.run(['disk', 'up']).status, 2, `crash at step ${n}: an older state stays refused`)
    }
  } finally {
    h.run(['disk', 'down'])
    unmountUnder(h.dir)
  }
})

t.test('TPM NV counter (swtpm): defined on first use, raised, an older state refused, kill -9 between raise and apply', async t => {
  if (!requirePrereq(t, isRoot(), 'disk up needs root')) return
  const h = host(t)
  let env: NodeJS.ProcessEnv = process.env
  try {
    const tpm = await startSwtpm(t, h.dir)
    env = { ...tpm.env, PVDISK_COUNTER: 'tpm:0x01500020' }
    const nvread = () => spawnSync('tpm2_nvread', ['0x01500020', '-C', 'o'], { env }).stdout.readBigUInt64BE(0)
    h.setVersion(2)
    t.equal(h.run(['disk', 'up'], env).status, 0)
    t.equal(nvread(), 2n, 'the TPM counter holds the version')
    t.notOk(existsSync(h.counterFile), 'no file counter when the TPM holds it')
    h.setVersion(5)
    t.equal(h.run(['disk', 'up'], env).status, 0)
    t.equal(nvread(), 5n)
    h.setVersion(4)
    const r = h.run(['disk', 'up'], env)
    t.equal(r.status, 2)
    t.match(r.out, /state version 4 is older than version 5/)
    h.setVersion(7)
    t.equal(h.run(['disk', 'down'], env).status, 0)
    for (let n = 1; n <= 5; n++) {
      spawnSync(process.execPath, [cli, 'disk', 'up', '--state', join(h.dir, 'state'), '--root', join(h.dir, 'root')], { env: { ...env, PVDISK_CRASH_AT: String(n) } })
      flushTpm(env)
      t.ok(nvread() >= 5n && nvread() <= 7n, `crash at step ${n}: the counter is between the old and the new version`)
    }
    t.equal(h.run(['disk', 'up'], env).status, 0, 'the rerun converges')
    t.equal(nvread(), 7n)
    h.setVersion(6)
    t.equal(h.run(['disk', 'up'], env).status, 2, 'and an older state stays refused')
  } finally {
    h.run(['disk', 'down'], env)
    unmountUnder(h.dir)
  }
})
