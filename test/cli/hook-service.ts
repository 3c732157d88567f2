// The hooks' fast path: dist/pvdisk-hook (sh + curl) hands the work to a running
// `pvdisk serve`, and does it in-process when no daemon answers. PVDISK_NODE naming no
// program makes the in-process path fail (127), which proves a success came from the daemon.
import t, { type Test } from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { decodeHookRequest, HOOK_PROTOCOL } from '../../plugin/cli/hook-service.js'
import { findInPath } from '../../plugin/host/run.js'
import { json, unmountUnder, until } from '../fixtures/helpers.js'
import { isRoot, requirePrereq } from '../fixtures/prereq.js'
import { hookClient, startServe } from '../fixtures/serve.js'

t.setTimeout(120_000)

const fields = (...f: string[]) => Buffer.from(f.map(x => `${x}\0`).join(''))

t.test('the request: NUL-separated fields, the rest is stdin', async t => {
  const r = decodeHookRequest(Buffer.concat([fields(HOOK_PROTOCOL, '42', '/srv', 'oci', '2', '--stage', 'poststop', '2', 'LXC_NAME=', 'PVDISK_REVISION=7'), Buffer.from('{"id":"x"}')]))
  t.same(r.args, ['--stage', 'poststop'])
  t.same(r.env, { PVDISK_REVISION: '7' }, 'an empty variable counts as unset')
  t.equal(r.stdin.toString(), '{"id":"x"}')
  t.throws(() => decodeHookRequest(fields('other/1')), /not pvdisk-hook\/1/)
  t.throws(() => decodeHookRequest(fields(HOOK_PROTOCOL, '42', '/srv', 'lxc', '3', 'up')), /truncated/)
  t.throws(() => decodeHookRequest(fields(HOOK_PROTOCOL, '42', '/srv', 'lxc', 'x')), /not a number/)
  t.throws(() => decodeHookRequest(fields(HOOK_PROTOCOL, '42', 'rel', 'lxc', '0', '0')), /absolute cwd/)
})

const state = {
  'device.json': json({ groups: [], disks: [{ name: 'data', type: 'volume-disk' }] }),
  web: { 'src.json': json({ '#spec': 'service-manifest-src@1', persistence: { '/data': 'permanent@data', '/scratch': 'boot' } }) },
}

const client = (args: string[], env: NodeJS.ProcessEnv = {}, opts: { cwd?: string, input?: string, program?: string } = {}) =>
  spawnSync(opts.program ?? hookClient, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000, ...(opts.cwd ? { cwd: opts.cwd } : {}), ...(opts.input !== undefined ? { input: opts.input } : {}) })

t.test('LXC through the daemon, and in-process when none answers', async t => {
  if (!requirePrereq(t, isRoot(), 'mounting needs root')) return
  if (!requirePrereq(t, findInPath('curl') !== undefined, 'curl is not installed (apt-get install curl)')) return
  const dir = t.testdir({ state, root: {}, other: {} })
  const root = join(dir, 'root')
  try {
    await lxcChecks(t, dir, root)
  } finally {
    unmountUnder(dir)
  }
})

const lxcChecks = async (t: Test, dir: string, root: string) => {
  const d = await startServe(t, join(dir, 'state'), root)
  const daemonOnly = { PVDISK_NODE: '/nonexistent/node' }
  // relative paths mean the hook's cwd, not the daemon's
  const up = client(['--socket', d.socket, 'lxc', 'up', 'web', '--state', 'state', '--root', 'root'], daemonOnly, { cwd: dir })
  t.equal(up.status, 0, up.stderr)
  t.match(up.stdout, /volumes\/web\/docker--data: mounted\n/)
  t.notMatch(up.stdout, /\n\n$/, 'no blank line after the output')
  t.match(readFileSync('/proc/self/mountinfo', 'utf8'), ` ${root}/volumes/web/docker--data `)
  // LXC's version 0 arguments, and version 1's LXC_NAME, reach the daemon
  const v0 = client(['--socket', d.socket, 'lxc', 'up', '--state', join(dir, 'state'), '--root', root, 'web', 'lxc', 'pre-start'], daemonOnly)
  t.match(v0.stdout, /docker--data: already mounted/, v0.stderr)
  const down = client(['--socket', d.socket, 'lxc', 'down', '--state', join(dir, 'state'), '--root', root], { ...daemonOnly, LXC_NAME: 'web' })
  t.equal(down.status, 0, down.stderr)
  t.match(down.stdout, /docker--data: unmounted/)
  // a mistake: exit 2, its reason on stderr, one line in the daemon's log
  const bad = client(['--socket', d.socket, 'lxc', 'up', 'nope', '--state', join(dir, 'state'), '--root', root], daemonOnly)
  t.equal(bad.status, 2)
  t.match(bad.stderr, /^pvdisk: app "nope" is not in .*\n {2}check the app name\n$/)
  t.ok(await until(() => /error hook request="lxc up nope .* status=400 reason="pvdisk: app/.test(d.log())), `one line in the daemon's log: ${d.log()}`)
  // no daemon on that socket: the hook program does it
  const none = join(dir, 'no.sock')
  const local = client(['--socket', none, 'lxc', 'up', 'web', '--state', join(dir, 'state'), '--root', root])
  t.equal(local.status, 0, local.stderr)
  t.match(local.stdout, /docker--data: mounted/)
  t.equal(client(['--socket', none, 'lxc', 'down', 'web', '--state', join(dir, 'state'), '--root', root], daemonOnly).status, 127, 'and that was in-process: without node it cannot run')
  client(['--socket', none, 'lxc', 'down', 'web', '--state', join(dir, 'state'), '--root', root])
  // a client the daemon cannot recognise as its own pid namespace's is sent back to work in-process
  copyFileSync(hookClient, join(dir, 'other/renamed'))
  const renamed = client(['--socket', d.socket, 'lxc', 'up', 'web', '--state', join(dir, 'state'), '--root', root], daemonOnly, { program: join(dir, 'other/renamed') })
  t.equal(renamed.status, 127, `${renamed.stderr}: the daemon refused, so the client went in-process`)
  t.notMatch(d.log(), /status=409/, 'a refusal is not logged as an error')
}

t.test('OCI through the daemon: the volumes appear in the container\'s mount namespace', async t => {
  if (!requirePrereq(t, isRoot(), 'mounting needs root')) return
  if (!requirePrereq(t, findInPath('curl') !== undefined, 'curl is not installed (apt-get install curl)')) return
  const dir = t.testdir({ state, root: {}, bundle: { 'config.json': json({ ociVersion: '1.0.2', root: { path: 'rootfs' } }), rootfs: {} } })
  const ns = spawn('unshare', ['--mount', '--propagation', 'private', 'sleep', '120'], { stdio: 'ignore' })
  try {
    await ociChecks(t, dir, ns.pid ?? 0)
  } finally {
    ns.kill()
    unmountUnder(dir)
  }
})

const ociChecks = async (t: Test, dir: string, pid: number) => {
  const d = await startServe(t, join(dir, 'state'), join(dir, 'root'))
  // unshare execs sleep once the namespace is made
  for (let i = 0; i < 50 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('unshare'); i++) await new Promise(r => setTimeout(r, 50))
  const ociState = JSON.stringify({ ociVersion: '1.0.2', id: 'fast', status: 'creating', pid, bundle: join(dir, 'bundle'), annotations: { 'io.pvdisk.state': join(dir, 'state'), 'io.pvdisk.app': 'web', 'io.pvdisk.root': join(dir, 'root') } })
  const r = client(['--socket', d.socket, 'oci', '--stage', 'createRuntime'], { PVDISK_NODE: '/nonexistent/node' }, { input: ociState })
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /fast: \/data <- .*perm\/web\/docker--data/)
  const theirs = readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
  t.match(theirs, ` ${join(dir, 'bundle/rootfs/data')} `, 'mounted inside the container\'s namespace')
  t.notMatch(readFileSync('/proc/self/mountinfo', 'utf8'), ` ${join(dir, 'bundle/rootfs/data')} `, 'and not on the host')
  // the host's own namespace is refused through the daemon as in-process
  const host = client(['--socket', d.socket, 'oci'], { PVDISK_NODE: '/nonexistent/node' }, { input: ociState.replace(`"pid":${pid}`, `"pid":${process.pid}`) })
  t.equal(host.status, 2)
  t.match(host.stderr, /shares the host's mount namespace/)
  t.ok(existsSync(join(dir, 'bundle/rootfs/data')))
}
