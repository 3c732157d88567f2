// Bind disks for real on the host (directories, bind mounts, mountinfo), through the CLI.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { json, withTmpfs } from '../fixtures/helpers.js'
import { isRoot, asOtherUser, requirePrereq } from '../fixtures/prereq.js'

const cli = fileURLToPath(new URL('../../dist/pvdisk.cjs', import.meta.url))
const run = (args: string[], opts: { env?: NodeJS.ProcessEnv, uid?: number } = {}) => {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: opts.env ?? process.env, ...(opts.uid ? { uid: opts.uid, gid: opts.uid } : {}) })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const device = json({
  groups: [{ name: 'app' }],
  disks: [
    { name: 'data', type: 'volume-disk' },
    { name: 'legacy', type: 'directory', path: '/storage/disks/legacy/' },
  ],
})

t.test('directory and volume-disk: up, up again, status, down', async t => {
  if (!requirePrereq(t, isRoot(), 'bind mounts need root')) return
  const dir = t.testdir({ state: { 'device.json': device }, root: {} })
  const base = ['--state', join(dir, 'state'), '--root', join(dir, 'root')]
  t.teardown(() => run(['disk', 'down', ...base]))
  const up = run(['disk', 'up', ...base])
  t.equal(up.status, 0, up.stderr)
  t.match(up.stdout, /data: mounted .*storage\/pv\/volume-disk\/data at .*media\/pv\/dmcrypt\/data/)
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')
  t.match(mountinfo, new RegExp(`${dir}/root/storage/disks/legacy ${dir}/root/media/pv/dmcrypt/legacy `))
  writeFileSync(join(dir, 'root/media/pv/dmcrypt/data/f'), 'through the disk')
  t.equal(readFileSync(join(dir, 'root/storage/pv/volume-disk/data/f'), 'utf8'), 'through the disk', 'the bind shows the backing directory')
  t.match(run(['disk', 'up', ...base]).stdout, /data: already mounted\nlegacy: already mounted/)
  const status = JSON.parse(run(['disk', 'status', '--json', ...base]).stdout)
  t.match(status, [{ name: 'data', state: 'mounted' }, { name: 'legacy', state: 'mounted' }])
  t.ok(status[0].size > 0 && status[0].free > 0)
  const down = run(['disk', 'down', 'data', ...base])
  t.equal(down.status, 0)
  t.match(JSON.parse(run(['disk', 'status', '--json', ...base]).stdout), [{ name: 'data', state: 'provisioned' }, { name: 'legacy', state: 'mounted' }])
  t.match(run(['disk', 'down', ...base]).stdout, /legacy: unmounted .*\ndata: not mounted/)
  t.equal(readFileSync(join(dir, 'root/storage/pv/volume-disk/data/f'), 'utf8'), 'through the disk', 'data stays after down')
  t.same(readdirSync(join(dir, 'root/media/pv/dmcrypt')), [], 'down removes the mount points: Pantavisor takes an existing one for a mounted disk')
  mkdirSync(join(dir, 'root/storage/pv/volume-disk/data/boot/app/docker--tmp'), { recursive: true })
  writeFileSync(join(dir, 'root/storage/pv/volume-disk/data/boot/app/docker--tmp/x'), 'emptied when its container starts')
  t.equal(run(['disk', 'up', 'data', ...base]).status, 0)
  t.same(readdirSync(join(dir, 'root/media/pv/dmcrypt/data/boot/app/docker--tmp')), ['x'], 'bringing a disk up never empties a boot volume (its container\'s start does)')
  t.equal(readFileSync(join(dir, 'root/media/pv/dmcrypt/data/f'), 'utf8'), 'through the disk')
  t.equal(run(['disk', 'down', ...base]).status, 0)
})

t.test('a mount point taken by something else is reported and left alone', async t => {
  if (!requirePrereq(t, isRoot(), 'bind mounts need root')) return
  const dir = t.testdir({ state: { 'device.json': device }, root: { other: {} } })
  const base = ['--state', join(dir, 'state'), '--root', join(dir, 'root')]
  const mnt = join(dir, 'root/media/pv/dmcrypt/data')
  mkdirSync(mnt, { recursive: true })
  t.equal(spawnSync('mount', ['--bind', join(dir, 'root/other'), mnt]).status, 0)
  try {
    const status = run(['disk', 'status', 'data', ...base])
    t.equal(status.status, 1)
    t.match(status.stdout, /problem: .* is mounted from something else/)
    const up = run(['disk', 'up', 'data', ...base])
    t.equal(up.status, 1)
    t.match(up.stderr, /disk "data": .* mounted from something else/)
    t.equal(run(['disk', 'down', 'data', ...base]).status, 1, 'down does not unmount what is not ours')
    t.match(readFileSync('/proc/self/mountinfo', 'utf8'), ` ${mnt} `, 'still mounted')
  } finally {
    spawnSync('umount', [mnt])
  }
})

t.test('a symlink planted at a mount point is refused', async t => {
  if (!requirePrereq(t, isRoot(), 'bind mounts need root')) return
  const dir = t.testdir({ state: { 'device.json': device }, root: { media: { pv: { dmcrypt: {} } } }, elsewhere: {} })
  symlinkSync(join(dir, 'elsewhere'), join(dir, 'root/media/pv/dmcrypt/data'))
  const r = run(['disk', 'up', 'data', '--state', join(dir, 'state'), '--root', join(dir, 'root')])
  t.equal(r.status, 1)
  t.match(r.stderr, /symbolic link; refusing to follow it/)
})

t.test('missing tools: one clear error naming the package, nothing created', async t => {
  const dir = t.testdir({
    state: { 'device.json': json({ groups: [], disks: [{ name: 's', type: 'dm-crypt-versatile', path: '/storage/s/s.img,8,k' }] }) },
    root: {},
  })
  const r = run(['disk', 'up', '--state', join(dir, 'state'), '--root', join(dir, 'root')], { env: { ...process.env, PATH: join(dir, 'empty') } })
  if (!isRoot()) return t.match(r.stderr, /need root/)
  t.equal(r.status, 2)
  t.match(r.stderr, /^pvdisk: missing tools: cryptsetup, losetup, mount, umount, mkfs\.ext4/m)
  t.match(r.stderr, /cryptsetup: install cryptsetup-bin/)
  t.same(readdirSync(join(dir, 'root')), [])
})

t.test('disk operations need root; plan does not', async t => {
  if (!requirePrereq(t, isRoot(), 'changing user needs root')) return
  // the clone may sit under a 0700 directory (root's home, mktemp -d) that nobody cannot
  // enter: the bundle (one file, nothing from node_modules) and the state go to a directory it can
  const dir = mkdtempSync('/tmp/pvdisk-nobody-')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  chmodSync(dir, 0o755)
  mkdirSync(join(dir, 'state'))
  mkdirSync(join(dir, 'root'))
  writeFileSync(join(dir, 'state/device.json'), device)
  copyFileSync(cli, join(dir, 'pvdisk.cjs'))
  for (const f of ['pvdisk.bundle.cjs', 'pvdisk.bundle.cjs.v8cache']) copyFileSync(join(dirname(cli), f), join(dir, f))
  const nobody = (args: string[]) => spawnSync(...asOtherUser([process.execPath, join(dir, 'pvdisk.cjs'), ...args, '--state', join(dir, 'state'), '--root', join(dir, 'root')]), { encoding: 'utf8', uid: 65534, gid: 65534 })
  const r = nobody(['disk', 'up'])
  t.equal(r.status, 2, r.stderr)
  t.match(r.stderr, /^pvdisk: disk operations need root/m)
  for (const [command, what] of [['up', 'pvdisk up needs root'], ['down', 'pvdisk down needs root'], ['serve', 'pvdisk serve needs root']] as const) {
    const c = nobody([command])
    t.equal(c.status, 2, `${command}: ${c.stderr}`)
    t.match(c.stderr, new RegExp(`^pvdisk: ${what} \\(`), `${command} says so first, before Docker or /var/lib is touched`)
  }
  const plan = nobody(['plan'])
  t.equal(plan.status, 0, plan.stderr)
  t.equal(existsSync(join(dir, 'root/media')), false)
})

t.test('usage: unknown disks, unprovisioned types, an invalid device.json', async t => {
  const dir = t.testdir({ state: { 'device.json': device }, bad: { 'device.json': '{"disks": [{"name": "x"}]}' } })
  const base = ['--state', join(dir, 'state'), '--root', dir]
  const unknown = run(['disk', 'up', 'dat', ...base])
  t.equal(unknown.status, 2)
  t.match(unknown.stderr, /no disk named "dat".*\n.*did you mean "data"\?/)
  const bad = run(['disk', 'status', '--state', join(dir, 'bad')])
  t.equal(bad.status, 2)
  t.match(bad.stderr, /schema-required/)
})

t.test('plan and --dry-run print commands and change nothing', async t => {
  const dir = t.testdir({ state: { 'device.json': device }, root: {} })
  const base = ['--state', join(dir, 'state'), '--root', join(dir, 'root')]
  const plan = run(['plan', ...base])
  t.equal(plan.status, 0)
  t.match(plan.stdout, /^# mkdir -p .*\nmount --bind -- .*\/storage\/pv\/volume-disk\/data .*\/media\/pv\/dmcrypt\/data$/m)
  const dry = run(['disk', 'up', '--dry-run', ...base])
  t.equal(dry.stdout, plan.stdout)
  t.same(readdirSync(join(dir, 'root')), [])
})

t.test('a crypt image that does not fit: first init stops before anything is made, with a clear error and valid --json', async t => {
  if (!requirePrereq(t, isRoot(), 'mounting a small tmpfs needs root')) return
  const dir = t.testdir({
    state: { 'device.json': json({ groups: [], disks: [{ name: 'sec', type: 'dm-crypt-versatile', path: '/storage/c/disk.img,8,key' }] }) },
    root: { storage: { c: {} } },
  })
  const small = join(dir, 'root/storage/c')
  t.ok(await withTmpfs(small, '1m', false, async () => {
    const r = run(['disk', 'up', '--json', '--state', join(dir, 'state'), '--root', join(dir, 'root')])
    t.equal(r.status, 1, r.stderr)
    const out = JSON.parse(r.stdout) as { ok: boolean, error: { code: string, message: string } }
    t.match(out, { ok: false, error: { code: 'EDISK', message: /cannot reserve 8 MiB for .*disk\.img\.new: .*No space left on device/ } })
    t.same(readdirSync(small).sort(), ['key.txt'], 'no image and no half image: only the key, which a retry reuses')
    t.equal(existsSync(join(small, 'key.init_done')), false)
  }), 'a 1 MiB tmpfs')
})

t.test('links planted above a mount point or at pvdisk\'s own state file are never followed', async t => {
  if (!requirePrereq(t, isRoot(), 'bind mounts need root')) return
  const dir = t.testdir({ state: { 'device.json': json({ groups: [], disks: [{ name: 'data', type: 'volume-disk' }] }) }, root: { media: { pv: {} }, run: { pvdisk: {} } }, outside: { precious: 'mine' } })
  const base = ['--state', join(dir, 'state'), '--root', join(dir, 'root')]
  symlinkSync(join(dir, 'outside'), join(dir, 'root/media/pv/dmcrypt'))
  const r = run(['disk', 'up', ...base])
  t.equal(r.status, 1)
  t.match(r.stderr, /media\/pv\/dmcrypt is a symbolic link; refusing to follow it \(the mount point/)
  t.notMatch(readFileSync('/proc/self/mountinfo', 'utf8'), ` ${join(dir, 'outside')}`, 'nothing is mounted through the link')
  t.same(readdirSync(join(dir, 'outside')), ['precious'])
  const { rmSync } = await import('node:fs')
  rmSync(join(dir, 'root/media/pv/dmcrypt'))
  symlinkSync(join(dir, 'outside/precious'), join(dir, 'root/run/pvdisk/expected-disks.json'))
  t.equal(run(['disk', 'up', ...base]).status, 0)
  t.equal(readFileSync(join(dir, 'outside/precious'), 'utf8'), 'mine', 'the record replaces a planted link, never writes through it')
  t.same(JSON.parse(readFileSync(join(dir, 'root/run/pvdisk/expected-disks.json'), 'utf8')), ['data'])
  t.equal(run(['disk', 'down', ...base]).status, 0)
})
