// The OCI hook driven by runc itself, on a bundle whose config.json carries it.
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findInPath } from '../../../plugin/host/run.js'
import { makeBusyboxRootfs, busyboxPath } from '../../fixtures/busybox.js'
import { json, unmountUnder } from '../../fixtures/helpers.js'
import { isRoot, asOtherUser, requirePrereq } from '../../fixtures/prereq.js'

const cli = fileURLToPath(new URL('../../../dist/pvdisk.cjs', import.meta.url))
const hookProgram = fileURLToPath(new URL('../../../dist/pvdisk-oci-hook.cjs', import.meta.url))
const hookClient = fileURLToPath(new URL('../../../dist/pvdisk-hook', import.meta.url))
t.setTimeout(120_000)

const state = {
  'device.json': json({ groups: [], disks: [{ name: 'data-disk', type: 'volume-disk' }] }),
  web: { 'src.json': json({ '#spec': 'service-manifest-src@1', docker_name: 'local/busybox', persistence: { '/data': 'permanent@data-disk', '/scratch': 'boot', '/var/cache': 'revision', '/work': 'boot@data-disk' } }) },
}

const bundle = (dir: string, annotations: Record<string, string>, cmd: string): string => {
  const b = join(dir, `bundle-${Object.keys(annotations).length}-${Math.random().toString(16).slice(2, 8)}`)
  makeBusyboxRootfs(join(b, 'rootfs'))
  spawnSync('runc', ['spec', '--bundle', b])
  const config = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8'))
  config.process.terminal = false
  config.process.args = ['sh', '-c', cmd]
  config.root.readonly = false
  config.annotations = annotations
  const hook = (stage: string) => ({ path: process.execPath, args: [process.execPath, hookProgram, '--stage', stage], timeout: 60 })
  config.hooks = { createRuntime: [hook('createRuntime')], poststop: [hook('poststop')] }
  writeFileSync(join(b, 'config.json'), JSON.stringify(config, null, 2))
  return b
}

t.test('runc runs the hook and the container sees its volumes', async t => {
  if (!requirePrereq(t, findInPath('runc') !== undefined, 'runc is not installed (it comes with docker.io)')) return
  if (!requirePrereq(t, isRoot(), 'runc needs root')) return
  if (!requirePrereq(t, busyboxPath() !== undefined, 'busybox-static is not installed')) return
  const dir = t.testdir({ state, root: {}, runc: {} })
  try {
    const annotations = { 'io.pvdisk.state': join(dir, 'state'), 'io.pvdisk.app': 'web', 'io.pvdisk.root': join(dir, 'root'), 'io.pvdisk.revision': '4' }
    const work = join(dir, 'root/media/pv/dmcrypt/data-disk/boot/web/docker--work')
    mkdirSync(work, { recursive: true })
    writeFileSync(join(work, 'from-last-start'), 'x')
    const b = bundle(dir, annotations, 'echo from-runc >> /data/f; grep -E " /(data|scratch|var/cache) " /proc/mounts > /data/mounts; echo c > /var/cache/c; ls /work > /data/work-was; echo y > /work/now')
    const r = spawnSync('runc', ['--root', join(dir, 'runc'), 'run', '--bundle', b, `pvdisk-test-${process.pid}`], { encoding: 'utf8', timeout: 60_000 })
    t.equal(r.status, 0, r.stderr)
    const vol = join(dir, 'root/media/pv/dmcrypt/data-disk/perm/web/docker--data')
    t.equal(readFileSync(join(vol, 'f'), 'utf8'), 'from-runc\n', 'the container wrote into its permanent volume on its disk')
    const mounts = readFileSync(join(vol, 'mounts'), 'utf8')
    t.match(mounts, / \/data ext4 /)
    t.match(mounts, /^pvdisk-boot \/scratch tmpfs /m, 'boot without a disk is a fresh tmpfs')
    t.ok(existsSync(join(dir, 'root/storage/disks/rev/4/web/docker--var-cache/c')), 'revision volumes follow io.pvdisk.revision')
    t.ok(existsSync(join(b, 'rootfs/data')), 'the mount point was created in the rootfs')
    t.equal(readFileSync(join(vol, 'work-was'), 'utf8'), '', 'a boot volume on a disk is empty at the start of its container (as Pantavisor)')
    t.equal(readFileSync(join(work, 'now'), 'utf8'), 'y\n', 'and lives on the disk while it runs')
  } finally {
    unmountUnder(dir)
  }
})

t.test('a hook failure aborts the start with a clear message', async t => {
  if (!requirePrereq(t, findInPath('runc') !== undefined, 'runc is not installed')) return
  if (!requirePrereq(t, isRoot(), 'runc needs root')) return
  const dir = t.testdir({ state, root: {}, runc: {} })
  try {
    const b = bundle(dir, { 'io.pvdisk.state': join(dir, 'state'), 'io.pvdisk.app': 'nope', 'io.pvdisk.root': join(dir, 'root') }, 'echo ran > /ran')
    const r = spawnSync('runc', ['--root', join(dir, 'runc'), 'run', '--bundle', b, `pvdisk-fail-${process.pid}`], { encoding: 'utf8', timeout: 60_000 })
    t.not(r.status, 0)
    t.match(r.stderr, /app \\?"nope\\?" is not in/)
    t.equal(existsSync(join(b, 'rootfs/ran')), false, 'the container never ran')
  } finally {
    unmountUnder(dir)
  }
})

t.test('a state Pantavisor would refuse never starts: the hook checks signatures with the settings in its env', async t => {
  if (!requirePrereq(t, findInPath('runc') !== undefined, 'runc is not installed')) return
  if (!requirePrereq(t, isRoot(), 'runc needs root')) return
  const dir = t.testdir({ state, root: {}, runc: {}, trust: { 'pub.pem': '' } })
  try {
    const { generateKeyPairSync } = await import('node:crypto')
    writeFileSync(join(dir, 'trust/pub.pem'), generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }))
    const b = bundle(dir, { 'io.pvdisk.state': join(dir, 'state'), 'io.pvdisk.app': 'web', 'io.pvdisk.root': join(dir, 'root') }, 'echo ran > /ran')
    const config = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8'))
    for (const h of config.hooks.createRuntime) h.env = ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', `PVDISK_TRUST=${join(dir, 'trust')}`, 'PVDISK_SECUREBOOT=strict']
    writeFileSync(join(b, 'config.json'), JSON.stringify(config))
    const r = spawnSync('runc', ['--root', join(dir, 'runc'), 'run', '--bundle', b, `pvdisk-unsigned-${process.pid}`], { encoding: 'utf8', timeout: 60_000 })
    t.not(r.status, 0)
    t.match(r.stderr, /device\.json is not covered by any signature/)
    t.equal(existsSync(join(b, 'rootfs/ran')), false, 'the container never ran')
    t.same(readdirSync(join(dir, 'root')), [], 'and nothing was created for it')
  } finally {
    unmountUnder(dir)
  }
})

t.test('a symlink in the image never redirects a mount', async t => {
  if (!requirePrereq(t, findInPath('runc') !== undefined, 'runc is not installed')) return
  if (!requirePrereq(t, isRoot(), 'runc needs root')) return
  const dir = t.testdir({ state, root: {}, runc: {} })
  try {
    const b = bundle(dir, { 'io.pvdisk.state': join(dir, 'state'), 'io.pvdisk.app': 'web', 'io.pvdisk.root': join(dir, 'root') }, 'true')
    spawnSync('ln', ['-s', '/etc', join(b, 'rootfs/data')])
    const r = spawnSync('runc', ['--root', join(dir, 'runc'), 'run', '--bundle', b, `pvdisk-link-${process.pid}`], { encoding: 'utf8', timeout: 60_000 })
    t.not(r.status, 0)
    t.match(r.stderr, /symbolic link; refusing to follow it/)
  } finally {
    unmountUnder(dir)
  }
})

t.test('hooks.d files for podman and CRI-O', async t => {
  const dir = t.testdir({})
  const r = spawnSync(process.execPath, [cli, 'oci-hook', '--hooks-d', dir, '--socket', '/run/pv.sock'], { encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
  const create = JSON.parse(readFileSync(join(dir, 'pvdisk-createruntime.json'), 'utf8'))
  t.same(create, {
    version: '1.0.0',
    // the fast path's client, which falls back to the hook program with this Node
    hook: {
      path: hookClient, args: ['pvdisk-hook', '--socket', '/run/pv.sock', 'oci', '--stage', 'createRuntime'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `PVDISK_NODE=${process.execPath}`], timeout: 120,
    },
    when: { annotations: { '^io\\.pvdisk\\.app$': '.+' } },
    stages: ['createRuntime'],
  })
  t.match(JSON.parse(readFileSync(join(dir, 'pvdisk-poststop.json'), 'utf8')), { stages: ['poststop'] })
})

t.test('bad input on stdin', async t => {
  const r = spawnSync(process.execPath, [cli, 'oci-hook'], { input: 'not json', encoding: 'utf8' })
  t.equal(r.status, 2)
  t.match(r.stderr, /^pvdisk: oci-hook: stdin is not the OCI state JSON/m)
  const none = spawnSync(process.execPath, [cli, 'oci-hook'], { input: JSON.stringify({ id: 'x', bundle: '/nonexistent' }), encoding: 'utf8' })
  t.equal(none.status, 0)
  t.match(none.stdout, /nothing to mount/)
  const direct = spawnSync(process.execPath, [hookProgram, '--stage', 'bogus'], { input: JSON.stringify({ id: 'x', bundle: '/b' }), encoding: 'utf8' })
  t.equal(direct.status, 2)
  t.match(direct.stderr, /^pvdisk: oci-hook: stage bogus is not supported/m)
  t.equal(spawnSync(process.execPath, [hookProgram], { input: '{', encoding: 'utf8' }).status, 2)
})

t.test('fstab lines escape what mount(8) would split on', async t => {
  const { fstabLine } = await import('../../../plugin/host/fstab.js')
  t.equal(fstabLine({ source: '/a b/c\\d', target: '/t\tx', fsType: 'none', options: ['bind'] }), '/a\\040b/c\\134d /t\\011x none bind 0 0\n')
})

t.test('a hook whose container shares the host\'s mount namespace refuses, and mounts nothing', async t => {
  const dir = t.testdir({ state, root: {}, bundle: { 'config.json': JSON.stringify({ root: { path: 'rootfs' } }), rootfs: {} } })
  const host = spawn('sleep', ['30'], { stdio: 'ignore' }) // a process in the host's namespace, as a wrong wiring would give
  try {
    const oci = { ociVersion: '1.0.2', id: 'wired-wrong', status: 'creating', pid: host.pid, bundle: join(dir, 'bundle'),
      annotations: { 'io.pvdisk.state': join(dir, 'state'), 'io.pvdisk.app': 'web', 'io.pvdisk.root': join(dir, 'root') } }
    const r = spawnSync(process.execPath, [hookProgram, '--stage', 'createRuntime'], { input: JSON.stringify(oci), encoding: 'utf8' })
    t.equal(r.status, 2)
    t.match(r.stderr, /shares the host's mount namespace .*refusing to mount volumes into the host/)
    t.same(readdirSync(join(dir, 'root')), [], 'nothing created, nothing mounted')
  } finally {
    host.kill('SIGKILL')
  }
})

t.test('ovl: a real overlay over the image\'s own content: changes persist in the volume, unchanged files show the image', async t => {
  if (!requirePrereq(t, findInPath('runc') !== undefined, 'runc is not installed (it comes with docker.io)')) return
  if (!requirePrereq(t, isRoot(), 'runc needs root')) return
  const ovlState = { ...state, web: { 'src.json': json({ '#spec': 'service-manifest-src@1', docker_name: 'local/busybox', persistence: { 'ovl:/etc/app/': 'permanent@data-disk' } }) } }
  const dir = t.testdir({ state: ovlState, root: {}, runc: {} })
  try {
    const annotations = { 'io.pvdisk.state': join(dir, 'state'), 'io.pvdisk.app': 'web', 'io.pvdisk.root': join(dir, 'root') }
    const run = (cmd: string) => {
      const b = bundle(dir, annotations, cmd)
      mkdirSync(join(b, 'rootfs/etc/app'), { recursive: true })
      writeFileSync(join(b, 'rootfs/etc/app/from-image'), 'image v1')
      return { b, r: spawnSync('runc', ['--root', join(dir, 'runc'), 'run', '--bundle', b, `pvdisk-ovl-${process.pid}-${Math.random().toString(16).slice(2, 6)}`], { encoding: 'utf8', timeout: 60_000 }) }
    }
    const first = run('cat /etc/app/from-image > /etc/app/seen; echo mine > /etc/app/changed; grep " /etc/app " /proc/mounts > /etc/app/mounts')
    t.equal(first.r.status, 0, first.r.stderr)
    const vol = join(dir, 'root/media/pv/dmcrypt/data-disk/perm/web/dockerovl--etc-app')
    t.equal(readFileSync(join(vol, 'upper/seen'), 'utf8'), 'image v1', 'the container saw the image\'s file at that path')
    t.equal(readFileSync(join(vol, 'upper/changed'), 'utf8'), 'mine\n', 'its changes went to the volume')
    t.match(readFileSync(join(vol, 'upper/mounts'), 'utf8'), /^overlay \/etc\/app overlay /, 'an overlay mount')
    t.equal(existsSync(join(vol, 'upper/from-image')), false, 'an unchanged file is not copied into the volume')
    t.equal(existsSync(join(first.b, 'rootfs/etc/app/changed')), false, 'the image itself is untouched')
    const second = run('cat /etc/app/changed /etc/app/from-image > /tmp/x; cp /tmp/x /etc/app/second')
    t.equal(second.r.status, 0, second.r.stderr)
    t.equal(readFileSync(join(vol, 'upper/second'), 'utf8'), 'mine\nimage v1', 'the next start sees its own change and the image\'s current content')
  } finally {
    unmountUnder(dir)
  }
})

t.test('crun runs the hook too (in a mount namespace without the host\'s hybrid cgroup2 mount, which crun refuses)', async t => {
  if (!requirePrereq(t, findInPath('crun') !== undefined, 'crun is not installed (apt-get install crun)')) return
  if (!requirePrereq(t, isRoot(), 'crun needs root')) return
  if (!requirePrereq(t, busyboxPath() !== undefined, 'busybox-static is not installed')) return
  const dir = t.testdir({ state, root: {}, crun: {} })
  try {
    const annotations = { 'io.pvdisk.state': join(dir, 'state'), 'io.pvdisk.app': 'web', 'io.pvdisk.root': join(dir, 'root'), 'io.pvdisk.revision': '4',
      'run.oci.hooks.stderr': join(dir, 'hook-stderr') } // crun drops a hook's stderr without it
    const b = bundle(dir, annotations, 'echo from-crun >> /data/f; grep -E " /(data|scratch) " /proc/mounts > /data/mounts')
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'umount /sys/fs/cgroup/unified 2>/dev/null; exec crun --root "$0" run --bundle "$1" "$2"',
      join(dir, 'crun'), b, `pvdisk-crun-${process.pid}`], { encoding: 'utf8', timeout: 60_000 })
    t.equal(r.status, 0, `${r.stderr} ${existsSync(join(dir, 'hook-stderr')) ? readFileSync(join(dir, 'hook-stderr'), 'utf8') : ''}`)
    // the disk was mounted in crun's private namespace: read the data through the disk's backing directory
    const vol = join(dir, 'root/storage/pv/volume-disk/data-disk/perm/web/docker--data')
    t.equal(readFileSync(join(vol, 'f'), 'utf8'), 'from-crun\n', 'the container wrote into its permanent volume on its disk')
    t.match(readFileSync(join(vol, 'mounts'), 'utf8'), /^pvdisk-boot \/scratch tmpfs /m)
  } finally {
    unmountUnder(dir)
  }
})

t.test('without root (rootless podman) the hook refuses with one sentence, and nothing is created', async t => {
  if (!requirePrereq(t, isRoot(), 'switching to another user needs root')) return
  const { chmodSync, copyFileSync, mkdtempSync, rmSync } = await import('node:fs')
  const dir = mkdtempSync('/tmp/pvdisk-rootless-')
  const program = join(dir, 'pvdisk-oci-hook.cjs') // where uid 65534 can read it, wherever the clone is
  for (const f of ['pvdisk-oci-hook.cjs', 'pvdisk-oci-hook.bundle.cjs', 'pvdisk-oci-hook.bundle.cjs.v8cache']) copyFileSync(join(dirname(hookProgram), f), join(dir, f))
  mkdirSync(join(dir, 'state/web'), { recursive: true })
  mkdirSync(join(dir, 'root'))
  mkdirSync(join(dir, 'bundle/rootfs'), { recursive: true })
  writeFileSync(join(dir, 'state/device.json'), json({ groups: [], disks: [{ name: 'data', type: 'volume-disk' }] }))
  writeFileSync(join(dir, 'state/web/src.json'), json({ '#spec': 'service-manifest-src@1', persistence: { '/data': 'permanent@data' } }))
  writeFileSync(join(dir, 'bundle/config.json'), JSON.stringify({ root: { path: 'rootfs' } }))
  spawnSync('chmod', ['-R', 'a+rwX', dir])
  chmodSync(dir, 0o755)
  const user = ['--reuid=65534', '--regid=65534', '--clear-groups']
  const container = spawn('setpriv', [...user, 'unshare', '-Urm', 'sleep', '30'], { stdio: 'ignore' })
  try {
    await new Promise(resolve => setTimeout(resolve, 300))
    const pid = Number(spawnSync('pgrep', ['-P', String(container.pid), '-n'], { encoding: 'utf8' }).stdout.trim()) || container.pid
    const oci = { ociVersion: '1.0.2', id: 'rootless', pid, bundle: join(dir, 'bundle'),
      annotations: { 'io.pvdisk.state': join(dir, 'state'), 'io.pvdisk.app': 'web', 'io.pvdisk.root': join(dir, 'root') } }
    const r = spawnSync('setpriv', [...user, ...asOtherUser([process.execPath, program, '--stage', 'createRuntime']).flat()], { input: JSON.stringify(oci), encoding: 'utf8' })
    t.equal(r.status, 2, r.stderr)
    t.match(r.stderr, /^pvdisk: disk operations need root/)
    t.same(readdirSync(join(dir, 'root')), [], 'nothing created, nothing half-mounted')
  } finally {
    container.kill('SIGKILL')
    spawnSync('pkill', ['-u', '65534', '-f', 'sleep 30'])
    rmSync(dir, { recursive: true, force: true })
  }
})
