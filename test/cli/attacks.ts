// Attacks, as a hostile user or a broken machine would try them (docs/threat-model.md). For
// every path that `disk up`, `gc` and `usage` create, write, remove or mount, a symbolic link
// is planted at every component below the system directories: one dangling, one pointing
// at an existing directory outside. Whatever the command answers, nothing outside the root
// may change, nothing may be created through a dangling link, nothing may be mounted there,
// and the answer is a clear one (never "report it as a bug").
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { request } from 'node:http'
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { json, unmountUnder } from '../fixtures/helpers.js'
import { isRoot, requirePrereq } from '../fixtures/prereq.js'

const cli = fileURLToPath(new URL('../../dist/pvdisk.cjs', import.meta.url))
const hookProgram = fileURLToPath(new URL('../../dist/pvdisk-oci-hook.cjs', import.meta.url))

const device = json({ groups: [], disks: [{ name: 'data', type: 'volume-disk' }] })
const src = json({ '#spec': 'service-manifest-src@1', persistence: { '/data': 'permanent@data', '/cache': 'revision' } })

/** the tree below dir as "path size" lines: what must not change */
const snapshot = (dir: string): string[] => readdirSync(dir, { recursive: true, withFileTypes: false }).map(String).sort()
  .map(p => `${p} ${statSync(join(dir, p), { throwIfNoEntry: false })?.size ?? 'gone'}`)

interface Scenario {
  name: string
  /** a command; "serve": the VolumeDriver plugin creating and mounting volumes; "hook": the OCI hook at createRuntime */
  argv: string[] | 'serve' | 'hook'
  /** paths (relative to the root) the command touches; a link is planted at each of their components */
  paths: string[]
  /** run first, before the link is planted */
  before?: string[][]
}

const SCENARIOS: Scenario[] = [
  { name: 'disk up', argv: ['disk', 'up'], paths: ['run/pvdisk/locks/data.lock', 'run/pvdisk/expected-disks.json', 'storage/pv/volume-disk/data', 'media/pv/dmcrypt/data'] },
  {
    name: 'gc', argv: ['gc', '--revision', '9', '--keep', '0', '--prune-orphans', '--grace', '0'], before: [['disk', 'up']],
    paths: ['var/lib/pvdisk/gc-state.json', 'media/pv/dmcrypt/data/rev/1', 'media/pv/dmcrypt/data/perm/gone', 'storage/disks/rev/1', 'storage/disks/perm/gone'],
  },
  { name: 'usage', argv: ['usage'], before: [['disk', 'up']], paths: ['var/lib/pvdisk/usage-cache.json', 'media/pv/dmcrypt/data/perm/web/docker--data'] },
  {
    name: 'the plugin', argv: 'serve', before: [['disk', 'up']],
    paths: ['var/lib/pvdisk/volume-driver.json', 'run/pvdisk/tmpfs/web/s', 'media/pv/dmcrypt/data/perm/web/p', 'media/pv/dmcrypt/data/boot/web/b'],
  },
]

const HOOK_PATHS = { name: 'the OCI hook', argv: 'hook' as const, before: [['disk', 'up']],
  paths: ['run/pvdisk/hooks/x', 'media/pv/dmcrypt/data/perm/web/docker--data', 'storage/disks/rev/0/web/docker--cache'] }
SCENARIOS.push(HOOK_PATHS)

/**
 * the hook as a runtime runs it at createRuntime, for a "container" that is a process in a
 * mount namespace of its own (unshare -m), with a bundle whose rootfs is a plain directory
 */
const runHook = async (dir: string, root: string): Promise<{ status: number | null, stderr: string }> => {
  const bundle = join(dir, 'bundle')
  mkdirSync(join(bundle, 'rootfs'), { recursive: true })
  writeFileSync(join(bundle, 'config.json'), JSON.stringify({ root: { path: 'rootfs' } }))
  const ns = spawn('unshare', ['--mount', '--propagation', 'private', 'sleep', '30'], { stdio: 'ignore' })
  await new Promise(resolve => setTimeout(resolve, 100))
  const state = { ociVersion: '1.0.2', id: 'attack', status: 'creating', pid: ns.pid, bundle, annotations: { 'io.pvdisk.state': join(dir, 'state'), 'io.pvdisk.app': 'web', 'io.pvdisk.root': root } }
  const r = spawnSync(process.execPath, [hookProgram, '--stage', 'createRuntime'], { input: JSON.stringify(state), encoding: 'utf8' })
  ns.kill('SIGKILL')
  return { status: r.status, stderr: r.stderr }
}

const PLUGIN_VOLUMES = [['s', 'boot'], ['p', 'permanent@data'], ['b', 'boot@data']] as const

const post = (socket: string, path: string, body: unknown): Promise<string> => new Promise(resolve => {
  const req = request({ socketPath: socket, path, method: 'POST' }, res => {
    let text = ''
    res.on('data', (b: Buffer) => { text += b.toString() })
    res.on('end', () => resolve(text))
  })
  req.on('error', e => resolve(`error: ${e.message}`))
  req.end(JSON.stringify(body))
})

/** serve, create and mount the plugin's volumes, stop it; what it said */
const servePlugin = async (dir: string, root: string): Promise<{ status: number | null, stderr: string }> => {
  const socket = `/tmp/pvdisk-attack-${process.pid}.sock`
  const plugin = spawn(process.execPath, [cli, 'serve', '--socket', socket, '--state', join(dir, 'state'), '--root', root], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  plugin.stderr?.on('data', (b: Buffer) => { stderr += b.toString() })
  const exited = new Promise<number | null>(resolve => plugin.once('exit', code => resolve(code)))
  for (let i = 0; i < 200 && plugin.exitCode === null; i++) {
    if (!(await post(socket, '/Plugin.Activate', {})).startsWith('error')) break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  for (const [name, persistence] of PLUGIN_VOLUMES) {
    await post(socket, '/VolumeDriver.Create', { Name: name, Opts: { app: 'web', persistence } })
    stderr += await post(socket, '/VolumeDriver.Mount', { Name: name, ID: 'c1' })
  }
  plugin.kill('SIGTERM')
  return { status: await exited, stderr }
}

/** each component below the system directories (/var/lib counts as one), once */
const components = (paths: string[]): string[] => [...new Set(paths.flatMap(p => {
  const parts = p.split('/')
  const depth = parts[0] === 'var' && parts[1] === 'lib' ? 2 : 1
  return parts.slice(depth).map((_, i) => parts.slice(0, depth + i + 1).join('/'))
}))]

t.test('links planted at every component of every path pvdisk touches: nothing outside changes', async t => {
  if (!requirePrereq(t, isRoot(), 'bind mounts need root')) return
  let cases = 0
  for (const s of SCENARIOS) {
    // with nothing planted, the scenario does its job: the attacks below hit real work
    const clean = t.testdir({ state: { 'device.json': device, web: { 'src.json': src } }, root: {} })
    try {
      for (const b of s.before ?? []) spawnSync(process.execPath, [cli, ...b, '--state', join(clean, 'state'), '--root', join(clean, 'root')])
      const r = s.argv === 'serve' ? await servePlugin(clean, join(clean, 'root')) : s.argv === 'hook' ? await runHook(clean, join(clean, 'root'))
        : spawnSync(process.execPath, [cli, ...s.argv, '--state', join(clean, 'state'), '--root', join(clean, 'root')], { encoding: 'utf8' })
      t.equal(r.status, 0, `${s.name} works with nothing planted: ${r.stderr.slice(0, 300)}`)
      if (s.argv === 'serve') t.notMatch(r.stderr, /"Err"/, 'every Mount succeeds')
    } finally {
      unmountUnder(clean)
    }
    // with the disk up first, its mount point and what is above it cannot be replaced: disk up's own cases cover them
    for (const component of components(s.paths).filter(c => !s.before || !'media/pv/dmcrypt/data'.startsWith(c))) {
      for (const kind of ['dangling', 'existing'] as const) {
        const dir = t.testdir({
          state: { 'device.json': device, web: { 'src.json': src } },
          root: { storage: { disks: { rev: { 1: { web: { f: 'old revision' } } }, perm: { gone: { f: 'orphan' } } } } },
          outside: { sentinel: 'must stay', rev: { 1: { keep: 'x' } }, perm: { gone: { keep: 'y' } } },
        })
        const root = join(dir, 'root')
        const pv = (argv: string[]) => spawnSync(process.execPath, [cli, ...argv, '--state', join(dir, 'state'), '--root', root], { encoding: 'utf8' })
        try {
          for (const b of s.before ?? []) pv(b)
          const at = join(root, component)
          if (existsSync(at) || statSync(at, { throwIfNoEntry: false }) !== undefined) spawnSync('rm', ['-rf', '--', at])
          mkdirSync(dirname(at), { recursive: true })
          symlinkSync(kind === 'dangling' ? join(dir, 'nowhere') : join(dir, 'outside'), at)
          const before = snapshot(join(dir, 'outside'))
          const r = s.argv === 'serve' ? await servePlugin(dir, root) : s.argv === 'hook' ? await runHook(dir, root) : pv(s.argv)
          const where = `${s.name}, ${kind} link at ${component}`
          t.same(snapshot(join(dir, 'outside')), before, `${where}: nothing outside changes`)
          t.equal(existsSync(join(dir, 'nowhere')), false, `${where}: nothing is created through the link`)
          t.notOk(readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${join(dir, 'outside')}`), `${where}: nothing is mounted outside`)
          t.ok(r.status === 0 || r.status === 1 || r.status === 2, `${where}: exits ${r.status}`)
          t.notMatch(r.stderr, /report it as a bug|unexpected error/, `${where}: a clear answer`)
          cases++
        } finally {
          unmountUnder(dir)
        }
      }
    }
  }
  t.ok(cases >= 40, `${cases} planted links`)
})
