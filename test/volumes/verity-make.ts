// `pvdisk verity make` on the host with the real veritysetup (hashing needs no
// device-mapper): what pvr dm-convert writes, block sizes that ext4 and squashfs mount
// with, idempotence, refusals with nothing changed, and kill -9 at every step. Opening and
// mounting are tested in User-Mode Linux (uml-verity.ts).
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, cpSync, existsSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findInPath } from '../../plugin/host/run.js'
import { blockSizeFor, dmifiedRun, manifestText, parseFormatOutput } from '../../plugin/volumes/verity-make.js'
import { isRoot, requirePrereq } from '../fixtures/prereq.js'

const cli = fileURLToPath(new URL('../../dist/pvdisk.cjs', import.meta.url))
t.setTimeout(300_000)

const pvdisk = (args: string[], env: NodeJS.ProcessEnv = {}) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, ...env } })

const RUN = '{\n    "#spec": "service-manifest-run@1",\n    "name": "web",\n    "root-volume": "root.squashfs",\n    "type": "lxc",\n    "volumes": [\n        "data.squashfs",\n        "conf.ext4"\n    ]\n}'
const SRC = '{\n\t"#spec": "service-manifest-src@1",\n\t"docker_name": "local/busybox",\n\t"persistence": {}\n}\n'

/** a state whose app web has data.squashfs and conf.ext4 (ext4, 1 KiB blocks), both in run.json */
const makeState = (dir: string): string => {
  const state = join(dir, 'state')
  const app = join(state, 'web')
  spawnSync('mkdir', ['-p', app, join(dir, 'content')])
  writeFileSync(join(dir, 'content/a'), 'verity-hello\n')
  writeFileSync(join(state, 'device.json'), '{"groups": [{"name": "app"}]}\n')
  writeFileSync(join(app, 'run.json'), RUN)
  writeFileSync(join(app, 'src.json'), SRC)
  t.equal(spawnSync('mksquashfs', [join(dir, 'content'), join(app, 'data.squashfs'), '-quiet', '-noappend']).status, 0, 'mksquashfs')
  t.equal(spawnSync('mkfs.ext4', ['-q', '-b', '1024', '-d', join(dir, 'content'), join(app, 'conf.ext4'), '2M']).status, 0, 'mkfs.ext4 -b 1024 -d')
  chmodSync(join(app, 'data.squashfs'), 0o644)
  chmodSync(join(app, 'conf.ext4'), 0o644)
  return state
}

const verify = (app: string, vol: string): boolean => {
  const m = JSON.parse(readFileSync(join(app, '_dm', `${vol}.json`), 'utf8')) as { data_device: string, hash_device: string, root_hash: string }
  return spawnSync('veritysetup', ['verify', '--', join(app, m.data_device), join(app, m.hash_device), m.root_hash]).status === 0
}

const snapshot = (dir: string): Record<string, string> => Object.fromEntries(readdirSync(dir, { recursive: true, withFileTypes: true })
  .filter(e => e.isFile()).map(e => [join(e.parentPath, e.name).slice(dir.length), readFileSync(join(e.parentPath, e.name)).toString('base64')]))

const tools = (t: Test): boolean => requirePrereq(t, findInPath('veritysetup') !== undefined, 'veritysetup is not installed (apt-get install cryptsetup-bin)') &&
  requirePrereq(t, findInPath('mksquashfs') !== undefined, 'squashfs-tools is not installed')

t.test('verity make writes what pvr dm-convert writes, with block sizes ext4 and squashfs mount with', async t => {
  if (!tools(t)) return
  const state = makeState(t.testdir({}))
  const app = join(state, 'web')
  const sq = pvdisk(['verity', 'make', 'web', 'data.squashfs', '--state', state])
  t.equal(sq.status, 0, sq.stderr)
  t.match(sq.stdout, /data\.squashfs: verity volume made, 4096-byte blocks, root hash [0-9a-f]{64}/)
  const ext = pvdisk(['verity', 'make', 'web', 'conf.ext4', '--state', state, '--json'])
  t.equal(ext.status, 0, ext.stderr)
  t.equal(JSON.parse(ext.stdout).blockSize, 1024, 'ext4 with 1 KiB blocks gets 1 KiB verity blocks')
  const text = readFileSync(join(app, '_dm/data.squashfs.json'), 'utf8')
  const m = JSON.parse(text)
  t.same(Object.keys(m), ['data_device', 'hash_device', 'root_hash', 'salt', 'type', 'uuid'], 'pvr\'s fields, in canonical order')
  t.equal(text, manifestText(m), 'canonical JSON: no spaces, no final newline')
  t.match(m, { data_device: 'data.squashfs', hash_device: 'data.squashfs.hash', type: 'dm-verity', root_hash: /^[0-9a-f]{64}$/, salt: /^[0-9a-f]{64}$/ })
  t.ok(verify(app, 'data.squashfs') && verify(app, 'conf.ext4'), 'veritysetup verify accepts both')
  const run = readFileSync(join(app, 'run.json'), 'utf8')
  t.equal(run, RUN.replace('"data.squashfs"', '"dm:data.squashfs"').replace('"conf.ext4"', '"dm:conf.ext4"'), 'run.json: only the references change, in its own style')
  t.same(JSON.parse(readFileSync(join(app, 'src.json'), 'utf8')).dm_enabled, { 'data.squashfs': true, 'conf.ext4': true }, 'src.json records dm_enabled, as pvr does')
  t.notOk(readdirSync(app).some(f => f.includes('pvdisk-tmp') || f.endsWith('.tmp')), 'no temporary file left')

  const before = snapshot(state)
  const mtime = statSync(join(app, 'run.json')).mtimeMs
  const again = pvdisk(['verity', 'make', 'web', 'data.squashfs', '--state', state])
  t.equal(again.status, 0, again.stderr)
  t.match(again.stdout, /already a verity volume .* nothing changed/)
  t.same(snapshot(state), before, 'a second make changes no byte')
  t.equal(statSync(join(app, 'run.json')).mtimeMs, mtime, 'nor any mtime')

  const validate = pvdisk(['validate', state])
  t.equal(validate.status, 0, validate.stdout + validate.stderr)
})

t.test('--dry-run shows the command and the files, writes nothing', async t => {
  if (!tools(t)) return
  const state = makeState(t.testdir({}))
  const before = snapshot(state)
  const r = pvdisk(['verity', 'make', 'web', 'data.squashfs', '--state', state, '--dry-run'])
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /^veritysetup format --data-block-size=4096 --hash-block-size=4096 -- \S+\/web\/data\.squashfs \S+\/web\/\.data\.squashfs\.hash\.pvdisk-tmp$/m)
  t.match(r.stdout, /^# write \S+\/web\/_dm\/data\.squashfs\.json$/m)
  t.same(snapshot(state), before, 'nothing written')
})

t.test('refusals: one line, exit status, nothing changed', async t => {
  if (!tools(t)) return
  const dir = t.testdir({})
  const state = makeState(dir)
  const app = join(state, 'web')
  writeFileSync(join(app, 'other.squashfs'), readFileSync(join(app, 'data.squashfs')))
  symlinkSync('data.squashfs', join(app, 'link.squashfs'))
  const cases: [string[], number, RegExp, () => void, () => void][] = [
    [['web', 'missing.squashfs'], 2, /missing\.squashfs does not exist/, () => undefined, () => undefined],
    [['web', 'other.squashfs'], 2, /does not name other\.squashfs in root-volume, volumes, modules, firmware/, () => undefined, () => undefined],
    [['web', 'link.squashfs'], 2, /link\.squashfs is not a regular file/, () => undefined, () => undefined],
    [['..', 'data.squashfs'], 2, /app "\.\.": .* cannot be used as a app name/, () => undefined, () => undefined],
    [['web', 'data.squashfs'], 1, /is writable by its group \(mode 664\)/, () => chmodSync(join(app, 'data.squashfs'), 0o664), () => chmodSync(join(app, 'data.squashfs'), 0o644)],
  ]
  for (const [args, status, message, setup, undo] of cases) {
    setup()
    const before = snapshot(state)
    const r = pvdisk(['verity', 'make', ...args, '--state', state])
    t.equal(r.status, status, `${args.join(' ')}: exit ${status}`)
    t.match(r.stderr, message, args.join(' '))
    t.equal(r.stderr.trim().split('\n')[0]?.startsWith('pvdisk: '), true, 'one line first')
    t.same(snapshot(state), before, `${args.join(' ')}: nothing changed`)
    undo()
  }
  writeFileSync(join(app, 'run.json'), '{"volumes": [')
  const bad = pvdisk(['verity', 'make', 'web', 'data.squashfs', '--state', state])
  t.equal(bad.status, 2)
  t.match(bad.stderr, /run\.json: not valid JSON/)
  writeFileSync(join(app, 'run.json'), RUN)
})

t.test('an image in use by a loop device (mounted, opened) is refused', async t => {
  if (!tools(t)) return
  if (!requirePrereq(t, isRoot(), 'loop devices need root')) return
  const state = makeState(t.testdir({}))
  const image = join(state, 'web/data.squashfs')
  const loop = spawnSync('losetup', ['-f', '--show', '-r', image], { encoding: 'utf8' })
  if (loop.status !== 0) return t.fail(`losetup: ${loop.stderr}`)
  try {
    const before = snapshot(state)
    const r = pvdisk(['verity', 'make', 'web', 'data.squashfs', '--state', state])
    t.equal(r.status, 1)
    t.match(r.stderr, new RegExp(`data\\.squashfs is in use by ${loop.stdout.trim()}`))
    t.same(snapshot(state), before, 'nothing changed')
  } finally {
    spawnSync('losetup', ['-d', loop.stdout.trim()])
  }
})

t.test('kill -9 at every step of verity make: never a half-written file; the rerun finishes, as one run would', async t => {
  if (!tools(t)) return
  const dir = t.testdir({})
  const pristine = makeState(join(dir, 'pristine'))
  let crashed = 0
  for (let step = 1; step <= 12; step++) {
    const state = join(dir, `s${step}`)
    cpSync(pristine, state, { recursive: true })
    const app = join(state, 'web')
    const r = pvdisk(['verity', 'make', 'web', 'data.squashfs', '--state', state], { PVDISK_CRASH_AT: String(step) })
    if (r.signal !== 'SIGKILL') {
      t.equal(r.status, 0, `step ${step}: no such step, the run completes`)
      break
    }
    crashed++
    const run = JSON.parse(readFileSync(join(app, 'run.json'), 'utf8')) as { volumes: string[] }
    const plain = run.volumes[0] === 'data.squashfs'
    t.ok(plain || (run.volumes[0] === 'dm:data.squashfs' && verify(app, 'data.squashfs')), `step ${step}: run.json names the plain volume, or a complete verity volume`)
    if (existsSync(join(app, '_dm/data.squashfs.json'))) t.doesNotThrow(() => JSON.parse(readFileSync(join(app, '_dm/data.squashfs.json'), 'utf8')), `step ${step}: the manifest is whole`)
    JSON.parse(readFileSync(join(app, 'src.json'), 'utf8'))
    const rerun = pvdisk(['verity', 'make', 'web', 'data.squashfs', '--state', state])
    t.equal(rerun.status, 0, `step ${step}: the rerun succeeds ${rerun.stderr}`)
    t.ok(verify(app, 'data.squashfs'), `step ${step}: the result verifies`)
    t.equal(JSON.parse(readFileSync(join(app, 'run.json'), 'utf8')).volumes[0], 'dm:data.squashfs', `step ${step}: run.json names dm:`)
    t.notOk(readdirSync(app).some(f => f.includes('pvdisk-tmp')), `step ${step}: no temporary hash file left`)
  }
  t.ok(crashed >= 5, `${crashed} crash points: the format, the hash file, the manifest, src.json, run.json`)
})

t.test('the parts: run.json references, block sizes, veritysetup\'s output', async t => {
  t.same(dmifiedRun({ 'root-volume': 'root.squashfs', volumes: ['a.squashfs'] }, 'root.squashfs'), { 'root-volume': 'dm:root.squashfs', volumes: ['a.squashfs'] })
  t.same(dmifiedRun({ volumes: ['a', 'dm:b'] }, 'b'), { volumes: ['a', 'dm:b'] }, 'already dm: stays')
  t.same(dmifiedRun({ modules: 'm.squashfs', firmware: 'f.squashfs' }, 'f.squashfs'), { modules: 'm.squashfs', firmware: 'dm:f.squashfs' })
  t.equal(dmifiedRun({ volumes: ['a'] }, 'b'), undefined)
  t.equal(blockSizeFor(8192, undefined), 4096)
  t.equal(blockSizeFor(4096 * 3 + 1024, undefined), 1024, 'the largest that divides the size')
  t.equal(blockSizeFor(8192, 2048), 2048, 'never above the filesystem\'s block size')
  t.throws(() => blockSizeFor(1000, undefined), /not a multiple of 512 bytes/)
  const out = 'VERITY header information for x\nUUID:            \tc1a8-0000\nHash type:       \t1\nSalt:            \tabcd\nRoot hash:      \t' + 'a'.repeat(64) + '\n'
  t.same(parseFormatOutput(out), { rootHash: 'a'.repeat(64), salt: 'abcd', uuid: 'c1a8-0000' })
  t.throws(() => parseFormatOutput('nothing'), /printed no sha256 root hash/)
})
