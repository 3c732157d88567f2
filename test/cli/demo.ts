// The README's first command (npm start runs scripts/demo.mjs after the build): as root, a
// container writes to a pvdisk volume and the file is shown at its place on the disk, then
// everything goes; as anyone else, one line says why, and the example is validated and planned.
// Where device-mapper exists (User-Mode Linux here) the demo's disk is encrypted: test/runtimes/lxc/uml.ts.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findInPath } from '../../plugin/host/run.js'
import { isRoot, asOtherUser, requirePrereq } from '../fixtures/prereq.js'

const repo = fileURLToPath(new URL('../../', import.meta.url))
t.setTimeout(240_000)

t.test('as root: a real runc container writes to /data, and the file is shown on the disk', async t => {
  if (!requirePrereq(t, isRoot(), 'the demo needs root')) return
  if (!requirePrereq(t, findInPath('runc') !== undefined, 'runc is not installed (it comes with docker.io, or apt-get install runc)')) return
  const r = spawnSync(process.execPath, [join(repo, 'scripts/demo.mjs')], { encoding: 'utf8', timeout: 200_000 })
  t.equal(r.status, 0, r.stdout + r.stderr)
  t.match(r.stdout, /\$ pvdisk validate .*\nvalid: 0 errors, 0 warnings/)
  t.match(r.stdout, /\$ pvdisk disk up .*\nsecure: mounted/)
  t.match(r.stdout, /On the disk, at \/.*\/root\/media\/pv\/dmcrypt\/secure\/perm\/web\/docker--data\/hello\.txt:\nwritten by container runc at /)
  const scratch = /^demo: done; removing (\S+)$/m.exec(r.stdout)?.[1] ?? ''
  t.match(scratch, /^\/.*pvdisk-demo-/, 'it names its scratch directory')
  t.notOk(existsSync(scratch), 'and that is gone')
  t.notMatch(readFileSync('/proc/self/mountinfo', 'utf8'), /pvdisk-demo-/, 'and nothing of it stays mounted')
})

t.test('as anyone else: one line says why, then the example is validated and planned', async t => {
  if (!requirePrereq(t, isRoot(), 'changing user needs root')) return
  // where uid 65534 can read it, wherever the clone is: the script, the bundle and the example
  const dir = mkdtempSync('/tmp/pvdisk-demo-nobody-')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  chmodSync(dir, 0o755)
  for (const d of ['scripts', 'dist']) mkdirSync(join(dir, d))
  cpSync(join(repo, 'scripts/demo.mjs'), join(dir, 'scripts/demo.mjs'))
  cpSync(join(repo, 'dist/pvdisk.cjs'), join(dir, 'dist/pvdisk.cjs'))
  for (const f of ['pvdisk.bundle.cjs', 'pvdisk.bundle.cjs.v8cache']) cpSync(join(repo, 'dist', f), join(dir, 'dist', f))
  cpSync(join(repo, 'examples'), join(dir, 'examples'), { recursive: true })
  cpSync(join(repo, 'schemas'), join(dir, 'schemas'), { recursive: true })
  spawnSync('chmod', ['-R', 'a+rX', dir])
  const r = spawnSync(...asOtherUser([process.execPath, join(dir, 'scripts/demo.mjs')]), { encoding: 'utf8', uid: 65534, gid: 65534, cwd: '/' })
  t.equal(r.status, 0, r.stdout + r.stderr)
  t.match(r.stdout, /^demo: the demo mounts a disk and runs a container, which needs root \(run: sudo npm start\); validating and planning the example state instead \(nothing is changed\)\n/)
  t.match(r.stdout, /\nvalid: 0 errors/)
  t.match(r.stdout, /\$ pvdisk plan .*\n# mkdir -p \/tmp\/pvdisk-example-root\/storage/)
})
