// Real podman (rootful, private storage, runc) with the hooks.d files `pvdisk oci-hook
// --hooks-d` writes: a container with the io.pvdisk annotations gets its volumes before it
// starts, a boot volume on the disk is empty at every start, and data survives.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findInPath } from '../../../plugin/host/run.js'
import { busyboxPath } from '../../fixtures/busybox.js'
import { json, unmountUnder, until } from '../../fixtures/helpers.js'
import { startServeAt } from '../../fixtures/serve.js'
import { isRoot, requirePrereq } from '../../fixtures/prereq.js'

const cli = fileURLToPath(new URL('../../../dist/pvdisk.cjs', import.meta.url))
t.setTimeout(180_000)

t.test('podman runs a container with pvdisk\'s hooks.d files: volumes on the disk before it starts', async t => {
  if (!requirePrereq(t, findInPath('podman') !== undefined, 'podman is not installed (apt-get install podman)')) return
  if (!requirePrereq(t, isRoot(), 'rootful podman needs root')) return
  if (!requirePrereq(t, busyboxPath() !== undefined, 'busybox-static is not installed')) return
  const dir = t.testdir({
    state: {
      'device.json': json({ groups: [], disks: [{ name: 'data', type: 'volume-disk' }] }),
      web: { 'src.json': json({ '#spec': 'service-manifest-src@1', docker_name: 'local/busybox', persistence: { '/data': 'permanent@data', '/scratch': 'boot@data' } }) },
    },
    root: {}, hooks: {}, rootfs: { bin: {}, proc: {}, sys: {}, dev: {}, tmp: {} },
    // root lacks CAP_SYS_RESOURCE here: podman's default ulimits would fail every container
    'containers.conf': '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n',
  })
  const sock = mkdtempSync('/tmp/pvdisk-s-')
  t.teardown(() => rmSync(sock, { recursive: true, force: true }))
  const socket = join(sock, 'pvdisk.sock')
  const hooks = spawnSync(process.execPath, [cli, 'oci-hook', '--hooks-d', join(dir, 'hooks'), '--socket', socket], { encoding: 'utf8' })
  t.equal(hooks.status, 0, hooks.stderr)
  copyFileSync(busyboxPath() ?? '/bin/busybox', join(dir, 'rootfs/bin/busybox'))
  for (const a of ['sh', 'echo', 'cat', 'ls', 'grep']) symlinkSync('busybox', join(dir, 'rootfs/bin', a))
  const env = { ...process.env, CONTAINERS_CONF: join(dir, 'containers.conf') }
  const p = mkdtempSync('/tmp/pvdisk-podman-') // podman wants a runroot of at most 50 characters
  const podman = (args: string[], input?: Buffer) => spawnSync('podman', ['--root', join(p, 'root'), '--runroot', join(p, 'run'), '--tmpdir', join(p, 'tmp'),
    '--hooks-dir', join(dir, 'hooks'), '--storage-driver', 'vfs', ...args], { env, timeout: 90_000, ...(input ? { input } : {}), encoding: 'utf8' })
  const tar = spawnSync('tar', ['-C', join(dir, 'rootfs'), '-c', '.'], { maxBuffer: 64 * 1024 * 1024 })
  const imported = podman(['import', '-', 'local/busybox:latest'], tar.stdout)
  t.equal(imported.status, 0, `image imported: ${imported.stderr}`)
  const run = (cmd: string) => podman(['run', '--rm', '--runtime', 'runc', '--network', 'none',
    '--annotation', `io.pvdisk.state=${join(dir, 'state')}`, '--annotation', 'io.pvdisk.app=web', '--annotation', `io.pvdisk.root=${join(dir, 'root')}`,
    'local/busybox:latest', 'sh', '-c', cmd])
  const M = join(dir, 'root/media/pv/dmcrypt/data')
  try {
    const first = run('echo from-podman >> /data/f; ls /scratch > /data/scratch-was; echo x > /scratch/x; grep " /data " /proc/mounts > /data/mounts')
    t.equal(first.status, 0, first.stderr)
    t.equal(readFileSync(join(M, 'perm/web/docker--data/f'), 'utf8'), 'from-podman\n', 'the container wrote into perm/web/docker--data on the disk')
    t.match(readFileSync(join(M, 'perm/web/docker--data/mounts'), 'utf8'), / \/data /)
    t.ok(existsSync(join(M, 'boot/web/docker--scratch/x')))
    // the first run had no daemon (the client fell back to the hook program); now pvdisk serve answers
    const d = await startServeAt(t, socket, join(dir, 'state'), join(dir, 'root'))
    const second = run('echo again >> /data/f; ls /scratch > /data/scratch-was')
    t.equal(second.status, 0, second.stderr)
    t.ok(await until(() => /info hook request="oci --stage createRuntime" status=200/.test(d.log())), `the daemon did the second start's hook: ${d.log()}`)
    t.equal(readFileSync(join(M, 'perm/web/docker--data/f'), 'utf8'), 'from-podman\nagain\n', 'data survives')
    t.equal(readFileSync(join(M, 'perm/web/docker--data/scratch-was'), 'utf8'), '', 'boot is empty at every start')
    const plain = podman(['run', '--rm', '--runtime', 'runc', '--network', 'none', 'local/busybox:latest', 'sh', '-c', 'echo untouched'])
    t.equal(plain.status, 0, 'a container without the annotations is left alone by the hook')
  } finally {
    podman(['rm', '-af'])
    unmountUnder(p)
    rmSync(p, { recursive: true, force: true })
    unmountUnder(dir)
  }
})
