// The CLI as a user runs it: a process, its output and its exit status.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { json, withTmpfs } from '../fixtures/helpers.js'

const cli = fileURLToPath(new URL('../../dist/pvdisk.cjs', import.meta.url))
const run = (args: string[], cwd?: string) => {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const state = {
  'device.json': json({ groups: [{ name: 'app' }], disks: [{ name: 'secure-disk', type: 'dm-crypt-versatile', path: '/s/v.img,2,k' }] }),
  web: { 'src.json': json({ '#spec': 'service-manifest-src@1', persistence: { '/data': 'permanent@secure-disk' }, docker_name: 'local/web' }) },
}

t.test('validate: a good state exits 0', async t => {
  const dir = t.testdir(state)
  const r = run(['validate', '--state', dir])
  t.equal(r.status, 0)
  t.match(r.stdout, /^valid: 0 errors, 0 warnings/m)
  const cwd = run(['validate'], dir)
  t.equal(cwd.status, 0, 'the state defaults to the current directory')
})

t.test('validate: problems with file:line:col, exit 2, --json', async t => {
  const dir = t.testdir({ ...state, web: { 'src.json': json({ '#spec': 'service-manifest-src@1', persistence: { '/data': 'permanent@secure-dsk' }, docker_name: 'local/web' }) } })
  const r = run(['validate', dir])
  t.equal(r.status, 2)
  t.match(r.stdout, /web\/src\.json:4:3: error \[persistence-disk-unknown\] at \/persistence\/~1data: unknown disk "secure-dsk" Hint: did you mean "secure-disk"\?/)
  t.match(r.stdout, /^invalid: 1 error, 0 warnings/m)
  const j = run(['validate', dir, '--json'])
  t.equal(j.status, 2)
  const data = JSON.parse(j.stdout)
  t.match(data, { ok: false, errors: 1, warnings: 0, problems: [{ severity: 'error', code: 'persistence-disk-unknown', pointer: '/persistence/~1data', line: 4, column: 3 }] })
})

t.test('validate: single files, and files that are not JSON at all', async t => {
  const dir = t.testdir({ 'device.json': '{"groups": [], "disks": [{"name": "x", "type": "directory", "path": "/d"}]}', 'notes.txt': 'hello', 'bin.json': Buffer.from([0xff, 0xfe, 0x00]) })
  t.equal(run(['validate', join(dir, 'device.json')]).status, 0)
  const bad = run(['validate', join(dir, 'notes.txt'), join(dir, 'bin.json'), join(dir, 'missing.json')])
  t.equal(bad.status, 2)
  t.match(bad.stdout, /notes\.txt:1:1: error \[json-syntax\]/)
  t.match(bad.stdout, /bin\.json:1:1: error \[file-not-utf8\]/)
  t.match(bad.stdout, /missing\.json: error \[file-unreadable\]: file not found/)
  t.notMatch(bad.stdout + bad.stderr, /at .*\.js:\d+/, 'no stack trace')
  const kind = run(['validate', join(t.testdir({ 'x.json': '{"a": 1}' }), 'x.json')])
  t.match(kind.stdout, /file-kind-unknown/)
  const empty = run(['validate', t.testdir({})])
  t.equal(empty.status, 2)
  t.match(empty.stdout, /state-empty/)
})

t.test('app install: writes, then up to date; invalid input exits 2 and writes nothing', async t => {
  const dir = t.testdir(state)
  const r = run(['app', 'install', 'web', '--state', dir])
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /run\.json updated \(2 volumes\)\n {2}docker--data: permanent@secure-disk\n {2}lxc-overlay: boot/)
  const text = readFileSync(join(dir, 'web', 'run.json'), 'utf8')
  const again = run(['app', 'install', 'web', '--state', dir])
  t.match(again.stdout, /is up to date/)
  t.equal(readFileSync(join(dir, 'web', 'run.json'), 'utf8'), text)
  const j = JSON.parse(run(['app', 'install', 'web', '--state', dir, '--json']).stdout)
  t.match(j, { app: 'web', changed: false, storage: { 'docker--data': { persistence: 'permanent', disk: 'secure-disk' } } })
  const dry = run(['app', 'install', 'web', '--state', dir, '--dry-run'])
  t.equal(dry.status, 0)
  t.match(dry.stdout, /is up to date/)
  // (t.testdir replaces the previous fixture of this test)

  const bad = t.testdir({ ...state, web: { 'src.json': json({ '#spec': 'service-manifest-src@1', persistence: { '/data': 'forever' }, docker_name: 'local/web' }) } })
  const b = run(['app', 'install', 'web', '--state', bad])
  t.equal(b.status, 2)
  t.match(b.stderr, /src\.json:4:3: error \[persistence-type-unknown\]/)
  t.match(b.stderr, /pvdisk: app install web: nothing written, 1 error in the input/)
  t.equal(existsSync(join(bad, 'web', 'run.json')), false)
  const bj = JSON.parse(run(['app', 'install', 'web', '--state', bad, '--json']).stdout)
  t.match(bj, { ok: false, error: { code: 'EINVALID', problems: [{ code: 'persistence-type-unknown' }] } })
  const hostile = run(['app', 'install', '../etc', '--state', bad])
  t.equal(hostile.status, 2)
  t.match(hostile.stderr, /^pvdisk: app "\.\.\/etc": .* cannot be used as a app name/m)
})

t.test('usage errors exit 2 with one line', async t => {
  for (const args of [[], ['frobnicate'], ['validate', '--bogus'], ['app', 'remove', 'x'], ['app']]) {
    const r = run(args)
    t.equal(r.status, 2, args.join(' '))
    t.match(r.stderr, /^pvdisk: /, args.join(' '))
  }
  t.equal(run(['--help']).status, 0)
  t.equal(run(['--version']).status, 0)
})

t.test('out of space anywhere: one clear line naming the path, exit 1, valid --json, no half file', async t => {
  const { spawnSync } = await import('node:child_process')
  const { mkdirSync, readdirSync, writeFileSync } = await import('node:fs')
  if (process.getuid?.() !== 0) {
    if (process.env.CI === 'true') t.fail('needs root under CI (a tmpfs to fill)')
    return
  }
  const mnt = join(t.testdir({ full: {} }), 'full')
  t.ok(await withTmpfs(mnt, '256k', false, async () => {
    writeFileSync(join(mnt, 'device.json'), JSON.stringify({ groups: [] }))
    mkdirSync(join(mnt, 'web'))
    writeFileSync(join(mnt, 'web/src.json'), JSON.stringify({ '#spec': 'service-manifest-src@1', persistence: { '/data': 'permanent' }, docker_name: 'local/web' }))
    spawnSync('dd', ['if=/dev/zero', `of=${join(mnt, 'filler')}`, 'bs=4k'])
    const r = run(['app', 'install', 'web', '--state', mnt, '--json'])
    t.equal(r.status, 1, r.stderr)
    t.match(JSON.parse(r.stdout), { ok: false, error: { code: 'EFILE', message: /web\/\..*run\.json.*\.tmp: no space left on the device \(ENOSPC in (open|write)\)|no space left on the device \(ENOSPC/ } })
    t.same(readdirSync(join(mnt, 'web')), ['src.json'], 'no run.json and no temp file left')
    const plain = run(['app', 'install', 'web', '--state', mnt])
    t.match(plain.stderr, /^pvdisk: .*no space left on the device \(ENOSPC.*\n {2}free some space there and retry\n$/)
    t.notMatch(plain.stderr, /report it as a bug/)
  }), 'a small tmpfs')
})

t.test('--version prints the package version from any directory; the hook programs answer --help', async t => {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  t.equal(run(['--version'], '/').stdout.trim(), version)
  // the .cjs programs, and the .mjs ones that hook lines written before name
  for (const program of ['pvdisk-oci-hook.cjs', 'pvdisk-lxc-hook.cjs', 'pvdisk-oci-hook.mjs', 'pvdisk-lxc-hook.mjs']) {
    const { spawnSync } = await import('node:child_process')
    const r = spawnSync(process.execPath, [fileURLToPath(new URL(`../../dist/${program}`, import.meta.url)), '--help'], { encoding: 'utf8', cwd: '/' })
    t.equal(r.status, 0, program)
    t.match(r.stdout, /^usage: pvdisk-/)
  }
})

t.test('ordinary mistakes: exit 2 and one sentence saying what to do; pvdisk status is disk status', async t => {
  const dir = t.testdir({ state })
  const hooks = run(['oci-hook', '--hooks-d', join(dir, 'missing')])
  t.equal(hooks.status, 2)
  t.match(hooks.stderr, /^pvdisk: --hooks-d .*missing: no such directory\n {2}create it first/)
  t.equal(existsSync(join(dir, 'missing')), false, 'nothing created')
  if (process.getuid?.() === 0) {
    const missing = `/tmp/pvdisk-no-such-dir-${process.pid}`
    const socket = run(['serve', '--state', join(dir, 'state'), '--root', join(dir, 'root'), '--socket', `${missing}/sub/p.sock`])
    t.equal(socket.status, 2)
    t.match(socket.stderr, /^pvdisk: --socket .*p\.sock: the directory .*\/sub does not exist\n {2}create it first/)
    t.equal(existsSync(missing), false, 'serve --socket never creates a directory of the user\'s')
  }
  const asDisk = run(['disk', 'status', join(dir, 'state'), '--state', join(dir, 'state')])
  t.equal(asDisk.status, 2)
  t.match(asDisk.stderr, /^pvdisk: no disk named ".*state" in device.json\n {2}to name the state directory, write --state /, 'a state where a disk name goes is told how to write it')
  const write = run(['usage', '--write', '--state', join(dir, 'state')])
  t.equal(write.status, 2)
  t.match(write.stderr, /^pvdisk: --write needs a directory/)
  const status = run(['status', '--json', '--state', join(dir, 'state'), '--root', join(dir, 'root')])
  t.equal(status.status, 0, status.stderr)
  t.same(JSON.parse(status.stdout), JSON.parse(run(['disk', 'status', '--json', '--state', join(dir, 'state'), '--root', join(dir, 'root')]).stdout))
})
