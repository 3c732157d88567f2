import t from 'tap'
import { readFileSync, statSync, symlinkSync, chmodSync, existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { installApp } from '../../plugin/config/app-install.js'
import { json } from '../fixtures/helpers.js'

const deviceJson = json({
  groups: [{ name: 'app' }],
  disks: [{ name: 'secure-disk', type: 'dm-crypt-versatile', path: '/s/v.img,2,k', aliases: ['dm-versatile'] }],
})
const srcJson = (persistence: Record<string, string>) => json({ '#spec': 'service-manifest-src@1', persistence, docker_name: 'local/app' })

t.test('writes run.json from src.json, then changes no byte', async t => {
  const dir = t.testdir({ 'device.json': deviceJson, web: { 'src.json': srcJson({ '/data': 'permanent@secure-disk', 'ovl:/etc/x': 'boot' }) } })
  const first = await installApp(dir, 'web')
  t.equal(first.changed, true)
  const file = join(dir, 'web', 'run.json')
  const text = readFileSync(file, 'utf8')
  t.same(JSON.parse(text), {
    '#spec': 'service-manifest-run@1',
    name: 'web',
    storage: {
      'docker--data': { persistence: 'permanent', disk: 'secure-disk' },
      'dockerovl--etc-x': { persistence: 'boot' },
      'lxc-overlay': { persistence: 'boot' },
    },
  })
  t.match(text, /^\{\n\t"#spec"/, 'tab-indented like pvr')
  t.equal(statSync(file).mode & 0o777, 0o644)
  const mtime = statSync(file).mtimeMs
  const second = await installApp(dir, 'web')
  t.equal(second.changed, false)
  t.equal(readFileSync(file, 'utf8'), text)
  t.equal(statSync(file).mtimeMs, mtime, 'not rewritten')
  t.same(readdirSync(join(dir, 'web')).sort(), ['lxc.container.conf', 'run.json', 'src.json'], 'no temp files left (a new app also gets its lxc.container.conf)')
})

t.test('keeps every other field, its order, indentation and mode', async t => {
  const existing = JSON.stringify({ '#spec': 'service-manifest-run@1', config: 'lxc.container.conf', name: 'web', 'root-volume': 'root.squashfs',
    storage: { old: { persistence: 'boot' } }, type: 'lxc', volumes: [], drivers: { required: ['ethernet'] } }, null, 4) + '\n'
  const dir = t.testdir({ 'device.json': deviceJson, web: { 'src.json': srcJson({ '/data': 'revision@dm-versatile' }), 'run.json': existing } })
  chmodSync(join(dir, 'web', 'run.json'), 0o600)
  const r = await installApp(dir, 'web')
  t.equal(r.changed, true)
  const text = readFileSync(join(dir, 'web', 'run.json'), 'utf8')
  const after = JSON.parse(text)
  t.same(Object.keys(after), ['#spec', 'config', 'name', 'root-volume', 'storage', 'type', 'volumes', 'drivers'])
  t.same(after.storage, { 'docker--data': { persistence: 'revision', disk: 'dm-versatile' }, 'lxc-overlay': { persistence: 'boot' } })
  t.same(after.drivers, { required: ['ethernet'] })
  t.match(text, /^\{\n {4}"#spec"/)
  t.equal(statSync(join(dir, 'web', 'run.json')).mode & 0o777, 0o600)
})

t.test('dry run writes nothing', async t => {
  const dir = t.testdir({ 'device.json': deviceJson, web: { 'src.json': srcJson({ '/data': 'boot' }) } })
  const r = await installApp(dir, 'web', { dryRun: true })
  t.equal(r.changed, true)
  t.equal(existsSync(join(dir, 'web', 'run.json')), false)
})

t.test('invalid input: clear error, nothing written', async t => {
  const dir = t.testdir({
    'device.json': deviceJson,
    bad: { 'src.json': srcJson({ '/data': 'permanent@nope' }) },
    broken: { 'src.json': '{"#spec": ' },
    nosrc: {},
    linked: { 'src.json': srcJson({ '/data': 'boot' }) },
    notobj: { 'src.json': srcJson({ '/data': 'boot' }), 'run.json': '[]' },
    badrun: { 'src.json': srcJson({ '/data': 'boot' }), 'run.json': '{' },
    'file-app': 'x',
  })
  symlinkSync('/etc/passwd', join(dir, 'linked', 'run.json'))
  symlinkSync('bad', join(dir, 'alias-dir'))
  await t.rejects(installApp(dir, 'bad'), { code: 'EINVALID', problems: [{ code: 'persistence-disk-unknown', pointer: '/persistence/~1data' }] })
  await t.rejects(installApp(dir, 'broken'), { code: 'EINVALID', problems: [{ code: 'json-syntax' }] })
  await t.rejects(installApp(dir, 'nosrc'), { code: 'ESTATE', message: /src\.json: file not found/ })
  await t.rejects(installApp(dir, 'missing'), { code: 'ESTATE', message: /no such app directory/ })
  await t.rejects(installApp(dir, 'file-app'), { code: 'ESTATE', message: /not a directory/ })
  await t.rejects(installApp(dir, 'alias-dir'), { code: 'ESTATE', message: /symbolic link/ })
  await t.rejects(installApp(dir, 'linked'), { code: 'ESTATE', message: /symbolic link; refusing/ })
  await t.rejects(installApp(dir, 'notobj'), { code: 'EINVALID', problems: [{ code: 'schema-type' }] })
  await t.rejects(installApp(dir, 'badrun'), { code: 'EINVALID', problems: [{ code: 'json-syntax' }] })
  for (const hostile of ['..', '../x', '.', '', 'a/b', '.hidden', '_sigs']) {
    await t.rejects(installApp(dir, hostile), { code: 'EUSAGE' }, JSON.stringify(hostile))
  }
  t.equal(existsSync(join(dir, 'bad', 'run.json')), false)
  t.equal(readFileSync('/etc/passwd', 'utf8').length > 0, true)
})

t.test('a broken device.json blocks install', async t => {
  const dir = t.testdir({ 'device.json': '{"groups": [], "disks": [{"name": "a"}]}', web: { 'src.json': srcJson({ '/data': 'boot' }) } })
  await t.rejects(installApp(dir, 'web'), { code: 'EINVALID', problems: [{ code: 'schema-required', pointer: '/disks/0/type' }] })
})

t.test('without device.json, plain persistence still installs', async t => {
  const dir = t.testdir({ web: { 'src.json': srcJson({ '/data': 'boot' }) }, other: { 'src.json': srcJson({ '/x': 'permanent@d' }) } })
  t.equal((await installApp(dir, 'web')).changed, true)
  await t.rejects(installApp(dir, 'other'), { code: 'EINVALID', problems: [{ code: 'persistence-disk-unknown' }] })
})

t.test('lxc.container.conf: pvr\'s volume mount entries replaced, every other line kept, byte-stable, --dry-run shows the diff', async t => {
  const conf = [
    'lxc.tty.max = 8',
    'lxc.rootfs.path = overlayfs:/volumes/web/root.squashfs:/volumes/web/lxc-overlay/upper',
    'lxc.init.cmd = /bin/app',
    'lxc.mount.entry = tmpfs run tmpfs rw,nodev,relatime,create=dir,mode=755 0 0',
    'lxc.mount.entry = /volumes/web/docker--old old none bind,rw,create=dir 0 0',
    'lxc.mount.entry = /volumes/web/my-import imported none bind,rw,create=dir 0 0',
    'lxc.net.0.type = empty',
    '',
  ].join('\n')
  const dir = t.testdir({ 'device.json': deviceJson, web: { 'src.json': srcJson({ '/data': 'permanent@secure-disk', 'ovl:/etc/app/': 'boot', '/var/log': 'boot', 'lxc-overlay': 'revision' }), 'lxc.container.conf': conf } })
  const file = join(dir, 'web/lxc.container.conf')
  const dry = await installApp(dir, 'web', { dryRun: true })
  t.equal(readFileSync(file, 'utf8'), conf, 'a dry run writes nothing')
  t.same(dry.lxcConf?.diff, [
    '- lxc.mount.entry = /volumes/web/docker--old old none bind,rw,create=dir 0 0',
    '+ lxc.mount.entry = /volumes/web/docker--data data none bind,rw,create=dir 0 0',
    '+ lxc.mount.entry = /volumes/web/docker--var-log var/log none bind,rw,create=dir 0 0',
    '+ lxc.mount.entry = /volumes/web/dockerovl--etc-app etc/app overlay lowerdir=/volumes/web/root.squashfs/etc/app,upperdir=/volumes/web/dockerovl--etc-app/upper,workdir=/volumes/web/dockerovl--etc-app/work,create=dir 0 0',
  ], 'the entries pvr\'s template writes: sorted as its map, a bind per path, an overlay per ovl: path, none for lxc-overlay')
  await installApp(dir, 'web')
  const after = readFileSync(file, 'utf8')
  t.equal(after, conf.replace('lxc.mount.entry = /volumes/web/docker--old old none bind,rw,create=dir 0 0\n', [
    'lxc.mount.entry = /volumes/web/docker--data data none bind,rw,create=dir 0 0',
    'lxc.mount.entry = /volumes/web/docker--var-log var/log none bind,rw,create=dir 0 0',
    'lxc.mount.entry = /volumes/web/dockerovl--etc-app etc/app overlay lowerdir=/volumes/web/root.squashfs/etc/app,upperdir=/volumes/web/dockerovl--etc-app/upper,workdir=/volumes/web/dockerovl--etc-app/work,create=dir 0 0',
    '',
  ].join('\n')), 'in the place of the old ones; other lines (another volume import, the network) untouched')
  const mtime = statSync(file).mtimeMs
  const again = await installApp(dir, 'web')
  t.equal(again.lxcConf?.changed, false)
  t.equal(statSync(file).mtimeMs, mtime, 'a second run writes nothing')
})

t.test('a new app gets the lxc.container.conf pvr\'s template writes with no args', async t => {
  const dir = t.testdir({ 'device.json': deviceJson, web: { 'src.json': json({ '#spec': 'service-manifest-src@1', docker_config: { Entrypoint: ['/bin/sh', '-c'], Cmd: ['exec app'], Env: ['A=1'], WorkingDir: '/srv' }, persistence: { '/data': 'permanent' } }) } })
  const r = await installApp(dir, 'web')
  t.match(r.lxcConf, { created: true, changed: true })
  t.equal(readFileSync(join(dir, 'web/lxc.container.conf'), 'utf8'), [
    'lxc.tty.max = 8', 'lxc.pty.max = 1024', 'lxc.cgroup.devices.allow = a',
    'lxc.rootfs.path = overlayfs:/volumes/web/root.squashfs:/volumes/web/lxc-overlay/upper',
    'lxc.init.cmd = /bin/sh "-c" "exec app"', 'lxc.init.cwd = /srv', 'lxc.environment = A=1',
    'lxc.namespace.keep = user net ipc', 'lxc.mount.auto = proc sys:rw cgroup',
    'lxc.mount.entry = /etc/resolv.conf etc/resolv.conf none bind,rw,create=file 0 0',
    'lxc.mount.entry = tmpfs run tmpfs rw,nodev,relatime,create=dir,mode=755 0 0',
    'lxc.mount.entry = /volumes/web/docker--data data none bind,rw,create=dir 0 0', '',
  ].join('\n'))
})
