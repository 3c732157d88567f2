// The /volumes step on the host, for real: bind mounts and tmpfs at <root>/volumes/<app>/<volume>.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { json, unmountUnder, until } from '../../fixtures/helpers.js'
import { isRoot, requirePrereq } from '../../fixtures/prereq.js'

const cli = fileURLToPath(new URL('../../../dist/pvdisk.cjs', import.meta.url))
const hookProgram = fileURLToPath(new URL('../../../dist/pvdisk-lxc-hook.cjs', import.meta.url))
const { hookClient, startServe } = await import('../../fixtures/serve.js')

const state = {
  'device.json': json({ groups: [], disks: [{ name: 'data', type: 'volume-disk' }] }),
  web: { 'src.json': json({ '#spec': 'service-manifest-src@1', persistence: { '/data': 'permanent@data', '/cache': 'revision@data', '/scratch': 'boot@data', '/run/x': 'boot', 'lxc-overlay': 'permanent' } }) },
  other: { 'src.json': json({ '#spec': 'service-manifest-src@1', persistence: { '/data': 'permanent@data' } }) },
}

t.test('volumes up mounts every volume at <root>/volumes/<app>/<volume>, idempotently; down unmounts only that app\'s', async t => {
  if (!requirePrereq(t, isRoot(), 'mounts need root')) return
  const dir = t.testdir({ state, root: {} })
  const root = join(dir, 'root')
  const pv = (args: string[], env: NodeJS.ProcessEnv = process.env) => spawnSync(process.execPath, [cli, 'volumes', ...args, '--state', join(dir, 'state'), '--root', root], { encoding: 'utf8', env })
  const mountinfo = () => readFileSync('/proc/self/mountinfo', 'utf8')
  const V = join(root, 'volumes/web')
  const M = join(root, 'media/pv/dmcrypt/data')
  try {
    const up = pv(['up', 'web', '--revision', '3', '--json'])
    t.equal(up.status, 0, up.stderr)
    t.same((JSON.parse(up.stdout) as { volume: string, result: string }[]).map(m => [m.volume, m.result]), [
      ['docker--cache', 'mounted'], ['docker--data', 'mounted'], ['docker--run-x', 'mounted'], ['docker--scratch', 'mounted'], ['lxc-overlay', 'mounted'],
    ])
    writeFileSync(join(V, 'docker--data/f'), 'through /volumes')
    t.equal(readFileSync(join(M, 'perm/web/docker--data/f'), 'utf8'), 'through /volumes', 'a bind of the volume on its disk')
    writeFileSync(join(V, 'docker--cache/c'), 'rev 3')
    t.ok(existsSync(join(M, 'rev/3/web/docker--cache/c')), 'revision volumes follow --revision')
    t.match(mountinfo(), new RegExp(` ${join(V, 'docker--run-x')} .* - tmpfs `), 'boot without a disk: a tmpfs')
    t.ok(existsSync(join(root, 'storage/disks/perm/web/lxc-overlay')), 'lxc-overlay is a volume too (the rootfs overlay\'s upper dir), here without a disk')
    writeFileSync(join(V, 'docker--scratch/s'), 'boot data')

    const again = pv(['up', 'web', '--revision', '3', '--json'])
    t.ok((JSON.parse(again.stdout) as { result: string }[]).every(m => m.result === 'already mounted'), 'idempotent')
    t.ok(existsSync(join(V, 'docker--scratch/s')), 'a second up (the container may be running) leaves boot data alone')
    t.equal(mountinfo().split('\n').filter(l => l.includes(` ${join(V, 'docker--data')} `)).length, 1, 'mounted once')

    t.equal(pv(['up', 'other']).status, 0)
    const down = pv(['down', 'web'])
    t.equal(down.status, 0, down.stderr)
    t.notMatch(mountinfo(), ` ${V}/`, 'web\'s volumes are gone')
    t.match(mountinfo(), ` ${join(root, 'volumes/other/docker--data')} `, 'another app\'s volumes stay')
    t.match(mountinfo(), ` ${M} `, 'the disk stays up (Pantavisor takes disks down at shutdown)')
    t.equal(readFileSync(join(M, 'perm/web/docker--data/f'), 'utf8'), 'through /volumes', 'the data stays on the disk')

    t.equal(pv(['up', 'web', '--revision', '3']).status, 0)
    t.same(readdirSync(join(V, 'docker--scratch')), [], 'boot is empty at the next start')
    t.equal(pv(['down', 'web']).status, 0)
  } finally {
    unmountUnder(dir)
  }
})

t.test('a run.json as pvr writes it: root-volume and every image in volumes, each mounted with its extension\'s filesystem, read-only', async t => {
  if (!requirePrereq(t, isRoot(), 'mounts need root')) return
  const dir = t.testdir({
    state: {
      'device.json': json({ groups: [] }),
      web: {
        'src.json': json({ '#spec': 'service-manifest-src@1', persistence: {} }),
        'run.json': json({ '#spec': 'service-manifest-run@1', 'root-volume': 'root.squashfs', storage: { 'lxc-overlay': { persistence: 'boot' } }, volumes: ['extra.ext4'] }),
      },
    },
    root: {}, content: { f: 'from the image' },
  })
  const app = join(dir, 'state/web')
  t.equal(spawnSync('mksquashfs', [join(dir, 'content'), join(app, 'root.squashfs'), '-quiet', '-noappend']).status, 0, 'mksquashfs')
  t.equal(spawnSync('mkfs.ext4', ['-q', '-d', join(dir, 'content'), join(app, 'extra.ext4'), '2M']).status, 0, 'mkfs.ext4 -d')
  const root = join(dir, 'root')
  const pv = (action: string) => spawnSync(process.execPath, [cli, 'volumes', action, 'web', '--state', join(dir, 'state'), '--root', root], { encoding: 'utf8' })
  try {
    const up = pv('up')
    t.equal(up.status, 0, up.stderr)
    const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')
    t.match(mountinfo, new RegExp(` ${join(root, 'volumes/web/root.squashfs')} ro,.* - squashfs `), 'root-volume: squashfs, read-only')
    t.match(mountinfo, new RegExp(` ${join(root, 'volumes/web/extra.ext4')} ro,.* - ext4 `), 'volumes: extra.ext4 as ext4, read-only')
    t.equal(readFileSync(join(root, 'volumes/web/extra.ext4/f'), 'utf8'), 'from the image')
    t.equal(pv('down').status, 0)
    t.notMatch(readFileSync('/proc/self/mountinfo', 'utf8'), ` ${root}/volumes/web/`, 'down takes both away')
  } finally {
    unmountUnder(dir)
  }
})

t.test('as LXC runs it: hook version 0 appends NAME lxc TYPE, version 1 passes LXC_NAME', async t => {
  if (!requirePrereq(t, isRoot(), 'mounts need root')) return
  const dir = t.testdir({ state, root: {} })
  const root = join(dir, 'root')
  const pv = (args: string[], env: NodeJS.ProcessEnv = process.env) => spawnSync(process.execPath, [cli, 'volumes', ...args, '--state', join(dir, 'state'), '--root', root], { encoding: 'utf8', env })
  try {
    t.equal(pv(['up', 'other', 'other', 'lxc', 'pre-start']).status, 0, 'version 0, app named in the hook line')
    t.equal(pv(['down', 'other', 'lxc', 'post-stop']).status, 0, 'version 0, the app is the container NAME LXC appends')
    const v1 = pv(['up'], { ...process.env, LXC_NAME: 'other', LXC_HOOK_TYPE: 'pre-start' })
    t.equal(v1.status, 0, v1.stderr)
    t.match(readFileSync('/proc/self/mountinfo', 'utf8'), ` ${join(root, 'volumes/other/docker--data')} `)
    t.equal(pv(['down'], { ...process.env, LXC_NAME: 'other' }).status, 0)
    const none = pv(['up'], { ...process.env, LXC_NAME: '' })
    t.equal(none.status, 2)
    t.match(none.stderr, /no app: name it/)
    t.equal(pv(['up', 'other', 'x', 'y']).status, 2, 'anything else appended is a usage error')
  } finally {
    unmountUnder(dir)
  }
})

t.test('invalid input: exit 2 and nothing mounted', async t => {
  const dir = t.testdir({ state: { ...state, web: { 'src.json': json({ '#spec': 'service-manifest-src@1', persistence: { '/data': 'permanent@nope' } }) } }, root: {} })
  const r = spawnSync(process.execPath, [cli, 'volumes', 'up', 'web', '--state', join(dir, 'state'), '--root', join(dir, 'root')], { encoding: 'utf8' })
  t.equal(r.status, 2)
  t.match(r.stderr, /persistence-disk-unknown/)
  t.same(readdirSync(join(dir, 'root')), [], 'nothing created')
})

t.test('a real LXC container: pvr-style mount entries, pvdisk\'s hooks, data on the disk, boot empty at each start', async t => {
  const { findInPath } = await import('../../../plugin/host/run.js')
  const { busyboxPath, makeBusyboxRootfs } = await import('../../fixtures/busybox.js')
  const { chmodSync, mkdirSync } = await import('node:fs')
  if (!requirePrereq(t, findInPath('lxc-start') !== undefined, 'LXC is not installed (apt-get install lxc)')) return
  if (!requirePrereq(t, isRoot(), 'privileged LXC needs root')) return
  if (!requirePrereq(t, busyboxPath() !== undefined, 'busybox-static is not installed')) return
  const dir = t.testdir({ state, root: {}, lxc: {} })
  const root = join(dir, 'root')
  const lxcpath = join(dir, 'lxc')
  const rootfs = join(lxcpath, 'web/rootfs')
  makeBusyboxRootfs(rootfs)
  writeFileSync(join(rootfs, 'run.sh'), '#!/bin/sh\necho "start $(ls /scratch | wc -l)" >> /data/log\nls /scratch > /data/scratch-was\necho x > /scratch/x\necho c >> /cache/c\ngrep -E " /(data|cache|scratch) " /proc/mounts > /data/mounts\n')
  chmodSync(join(rootfs, 'run.sh'), 0o755)
  // the hook program itself, which the README gives as the line without the fast path; LXC (hook version 0) appends "web lxc TYPE"
  const hook = (action: string) => `${process.execPath} ${hookProgram} ${action} web --state ${join(dir, 'state')} --root ${root} --revision 5`
  // the lines pvr's template writes, with /volumes under the test's root
  const entry = (vol: string, path: string) => `lxc.mount.entry = ${root}/volumes/web/${vol} ${path} none bind,rw,create=dir 0 0`
  const config = (hooked: (action: string) => string) => writeFileSync(join(lxcpath, 'web/config'), [
    'lxc.uts.name = web', `lxc.rootfs.path = dir:${rootfs}`, 'lxc.net.0.type = empty', 'lxc.mount.auto = proc:mixed sys:ro',
    'lxc.autodev = 1', 'lxc.tty.max = 0', 'lxc.pty.max = 16', 'lxc.console.path = none', 'lxc.init.cmd = /run.sh',
    `lxc.hook.pre-start = ${hooked('up')}`, `lxc.hook.post-stop = ${hooked('down')}`,
    entry('docker--data', 'data'), entry('docker--cache', 'cache'), entry('docker--scratch', 'scratch'), entry('docker--run-x', 'run/x'),
    '',
  ].join('\n'))
  config(hook)
  mkdirSync(join(dir, 'logs'), { recursive: true })
  const start = (env: NodeJS.ProcessEnv = process.env) => spawnSync('lxc-start', ['-n', 'web', '-P', lxcpath, '-F', '-l', 'DEBUG', '-o', join(dir, 'logs/lxc.log')], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'], env })
  const M = join(root, 'media/pv/dmcrypt/data')
  try {
    const first = start()
    t.equal(first.status, 0, `${first.stderr}\n${readFileSync(join(dir, 'logs/lxc.log'), 'utf8').split('\n').filter(l => /ERROR|pvdisk/.test(l)).slice(-10).join('\n')}`)
    t.equal(readFileSync(join(M, 'perm/web/docker--data/log'), 'utf8'), 'start 0\n', 'the container wrote to /data, which is perm/web/docker--data on the disk')
    t.match(readFileSync(join(M, 'perm/web/docker--data/mounts'), 'utf8'), / \/data /)
    t.ok(existsSync(join(M, 'rev/5/web/docker--cache/c')), 'the revision volume follows --revision')
    t.notMatch(readFileSync('/proc/self/mountinfo', 'utf8'), ` ${root}/volumes/web/`, 'post-stop took the /volumes mounts down')
    t.ok(existsSync(join(M, 'boot/web/docker--scratch/x')), 'boot data stays on the disk until the next start')
    // the second start on the fast path: the client hands both hooks to a running pvdisk serve
    // (PVDISK_NODE naming no program: the in-process fallback could not have done it)
    const d = await startServe(t, join(dir, 'state'), root)
    config(action => `${hookClient} --socket ${d.socket} lxc ${action} web --state ${join(dir, 'state')} --root ${root} --revision 5`)
    const second = start({ ...process.env, PVDISK_NODE: '/nonexistent/node' })
    t.equal(second.status, 0, `${second.stderr}\n${d.log()}`)
    t.ok(await until(() => /info hook request="lxc up web .* web lxc pre-start" status=200/.test(d.log())), `LXC appended NAME lxc TYPE, and the daemon did the work: ${d.log()}`)
    t.equal(readFileSync(join(M, 'perm/web/docker--data/log'), 'utf8'), 'start 0\nstart 0\n', 'permanent data survives stop and start; boot is empty at each start')
    t.equal(readFileSync(join(M, 'rev/5/web/docker--cache/c'), 'utf8'), 'c\nc\n')
  } finally {
    spawnSync('lxc-stop', ['-n', 'web', '-P', lxcpath, '-k'])
    unmountUnder(dir)
  }
})

t.test('the hook program: its arguments, and one clear line for a mistake', async t => {
  const dir = t.testdir({ state, root: {} })
  const hook = (args: string[], env: NodeJS.ProcessEnv = process.env) => spawnSync(process.execPath, [hookProgram, ...args], { encoding: 'utf8', env })
  for (const [args, message] of [
    [['sideways', 'web'], /first argument: up or down, not "sideways"/],
    [['up', 'web', '--colour'], /unknown option --colour/],
    [['up', 'web', '--state'], /--state needs a value/],
    [['up', 'web', 'x', 'y', '--state', join(dir, 'state')], /unexpected arguments: x y/],
    [['up', 'nope', '--state', join(dir, 'state'), '--root', join(dir, 'root')], /app "nope" is not in/],
  ] as const) {
    const r = hook([...args], { ...process.env, LXC_NAME: '' })
    t.equal(r.status, 2, args.join(' '))
    t.match(r.stderr, message)
    t.notMatch(r.stderr, /unexpected error/)
  }
  t.same(readdirSync(join(dir, 'root')), [], 'nothing created')
})
