// An app as Pantavisor runs it, with pvdisk doing Pantavisor's part: `app install` writes a
// new app's run.json and lxc.container.conf (as pvr's template does), the image is its
// root.squashfs, `pvdisk-lxc-hook up` mounts it and the volumes at /volumes/<app>/..., and
// a real LXC container runs that lxc.container.conf (only /volumes moved under the test's
// root, hooks and an empty network added). The rootfs is the overlay of root.squashfs and
// the lxc-overlay volume; an ovl: volume overlays the image's own directory.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findInPath } from '../../../plugin/host/run.js'
import { busyboxPath, makeBusyboxRootfs } from '../../fixtures/busybox.js'
import { json, unmountUnder } from '../../fixtures/helpers.js'
import { isRoot, requirePrereq } from '../../fixtures/prereq.js'

const cli = fileURLToPath(new URL('../../../dist/pvdisk.cjs', import.meta.url))
const hookProgram = fileURLToPath(new URL('../../../dist/pvdisk-lxc-hook.cjs', import.meta.url))
t.setTimeout(180_000)

t.test('app install\'s lxc.container.conf runs in LXC: rootfs over root.squashfs, ovl: over the image, data on the disk', async t => {
  if (!requirePrereq(t, findInPath('lxc-start') !== undefined, 'LXC is not installed (apt-get install lxc)')) return
  if (!requirePrereq(t, findInPath('mksquashfs') !== undefined, 'squashfs-tools is not installed')) return
  if (!requirePrereq(t, isRoot(), 'privileged LXC needs root')) return
  if (!requirePrereq(t, busyboxPath() !== undefined, 'busybox-static is not installed')) return
  const dir = t.testdir({
    state: {
      'device.json': json({ groups: [{ name: 'app' }], disks: [{ name: 'data', type: 'volume-disk' }] }),
      web: { 'src.json': json({ '#spec': 'service-manifest-src@1', docker_name: 'local/busybox', docker_config: { Cmd: ['/run.sh'] }, persistence: { '/data': 'permanent@data', 'ovl:/etc/app/': 'permanent@data', 'lxc-overlay': 'permanent@data' } }) },
    },
    root: {}, lxc: { web: {} }, image: {},
  })
  const root = join(dir, 'root')
  const state = join(dir, 'state')
  const install = spawnSync(process.execPath, [cli, 'app', 'install', 'web', '--state', state], { encoding: 'utf8' })
  t.equal(install.status, 0, install.stderr)
  t.match(install.stdout, /lxc\.container\.conf created/)

  // the image: busybox, an /etc/app from the image, and the container's program
  const image = join(dir, 'image')
  makeBusyboxRootfs(image)
  mkdirSync(join(image, 'etc/app'), { recursive: true })
  writeFileSync(join(image, 'etc/app/from-image'), 'image v1')
  for (const d of ['data', 'run', 'volumes']) mkdirSync(join(image, d), { recursive: true })
  writeFileSync(join(image, 'run.sh'), '#!/bin/sh\necho started >> /data/log\ncat /etc/app/from-image > /data/seen\necho mine > /etc/app/changed\necho rootfs-change > /rootfile\n')
  chmodSync(join(image, 'run.sh'), 0o755)
  t.equal(spawnSync('mksquashfs', [image, join(state, 'web/root.squashfs'), '-quiet', '-noappend']).status, 0, 'root.squashfs made')

  const generated = readFileSync(join(state, 'web/lxc.container.conf'), 'utf8')
  const hook = (action: string) => `${process.execPath} ${hookProgram} ${action} web --state ${state} --root ${root}`
  const config = [
    'lxc.uts.name = web',
    ...generated.split('\n').filter(Boolean)
      .filter(l => !l.startsWith('lxc.namespace.keep') && !l.startsWith('lxc.mount.entry = /etc/resolv.conf')) // this test keeps the host's network and resolv.conf out
      .map(l => l.replace(/\/volumes\//g, `${root}/volumes/`).replace('lxc.mount.auto = proc sys:rw cgroup', 'lxc.mount.auto = proc:mixed sys:ro')),
    'lxc.net.0.type = empty', 'lxc.console.path = none', 'lxc.autodev = 1',
    `lxc.hook.pre-start = ${hook('up')}`, `lxc.hook.post-stop = ${hook('down')}`, '',
  ].join('\n')
  writeFileSync(join(dir, 'lxc/web/config'), config)
  const start = () => spawnSync('lxc-start', ['-n', 'web', '-P', join(dir, 'lxc'), '-F', '-l', 'DEBUG', '-o', join(dir, 'lxc.log')], { encoding: 'utf8', timeout: 60_000 })
  const M = join(root, 'media/pv/dmcrypt/data')
  try {
    const first = start()
    t.equal(first.status, 0, `${first.stderr}\n${existsSync(join(dir, 'lxc.log')) ? readFileSync(join(dir, 'lxc.log'), 'utf8').split('\n').filter(l => /ERROR/.test(l)).slice(-8).join('\n') : ''}`)
    t.equal(readFileSync(join(M, 'perm/web/docker--data/log'), 'utf8'), 'started\n', '/data is perm/web/docker--data on the disk')
    t.equal(readFileSync(join(M, 'perm/web/docker--data/seen'), 'utf8'), 'image v1', 'the ovl: path shows the image\'s own file')
    t.equal(readFileSync(join(M, 'perm/web/dockerovl--etc-app/upper/changed'), 'utf8'), 'mine\n', 'changes at the ovl: path land in the volume')
    t.equal(existsSync(join(M, 'perm/web/dockerovl--etc-app/upper/from-image')), false, 'unchanged image files are not copied')
    t.equal(readFileSync(join(M, 'perm/web/lxc-overlay/upper/rootfile'), 'utf8'), 'rootfs-change\n', 'a rootfs change lands in the lxc-overlay volume')
    t.notMatch(readFileSync('/proc/self/mountinfo', 'utf8'), ` ${root}/volumes/web/`, 'post-stop took /volumes down, root.squashfs included')
    const second = start()
    t.equal(second.status, 0, second.stderr)
    t.equal(readFileSync(join(M, 'perm/web/docker--data/log'), 'utf8'), 'started\nstarted\n', 'permanent data survives')
  } finally {
    spawnSync('lxc-stop', ['-n', 'web', '-P', join(dir, 'lxc'), '-k'])
    unmountUnder(dir)
  }
})
