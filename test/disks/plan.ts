// Exact command sequences of every disk type and mode, recorded rather than run (the only
// way to cover CAAM and DCP here); the same code runs for real in test/disks/uml.ts.
import t, { type Test } from 'tap'
import { fileURLToPath } from 'node:url'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { checkDevice } from '../../plugin/config/check-device.js'
import { disksDown, disksUp, selectDisks } from '../../plugin/disks/engine.js'
import type { DiskContext, Kernel } from '../../plugin/disks/context.js'
import { dmNameOf } from '../../plugin/disks/crypt.js'
import { RecordingRunner } from '../../plugin/host/run.js'
import { json, sink } from '../fixtures/helpers.js'

const noKernel: Kernel = { mounts: () => [], loops: () => [], dms: () => [] }

/** for runs that check their tools: the stand-ins for CAAM's and DCP's tools in PATH */
const withStandIns = (t: Test): void => {
  const path = process.env.PATH
  process.env.PATH = `${fileURLToPath(new URL('../fixtures/uml/fake-tools', import.meta.url))}:${path ?? ''}`
  t.teardown(() => { process.env.PATH = path })
}

const setup = (root: string, disks: unknown[], kernel = noKernel) => {
  const { parsed, problems } = sink(json({ groups: [], disks }))
  const index = checkDevice(parsed.value, problems)
  const runner = new RecordingRunner({ planning: true })
  const ctx: DiskContext = { root, runner, kernel, log: () => undefined }
  return { ctx, runner, disks: selectDisks(index, []) }
}

const crypt = (type: string, mode?: string, v2 = false) => ({
  name: 'sec', type, ...(mode ? { mode } : {}), path: `${v2 ? '-v2 ' : ''}/storage/c/disk.img,8,key`,
})

t.test('versatile: first init, then open and mount', async t => {
  const root = t.testdir({})
  const { ctx, runner, disks } = setup(root, [crypt('dm-crypt-versatile')])
  await disksUp(ctx, disks)
  const d = `${root}/storage/c`
  const dm = dmNameOf(disks[0]!, `${d}/disk.img`)
  const open = ['cryptsetup', 'open', '--type', 'plain', '-s', '256', '-c', 'aes-cbc-essiv:sha256', `--key-file=${d}/key.txt`, '--', '$LOOP', dm]
  t.same(runner.lines, [
    `# mkdir -p ${d}`,
    `# write 32 random bytes to ${d}/key.txt (mode 0600)`,
    `fallocate --length 8388608 -- ${d}/disk.img.new`,
    `losetup --find --show -- ${d}/disk.img.new`,
    open.join(' '),
    `mkfs.ext4 -q -b 1024 -E lazy_itable_init=1,lazy_journal_init=1 -- /dev/mapper/${dm}`,
    `# rename ${d}/disk.img.new to ${d}/disk.img`,
    `# create ${d}/key.init_done`,
    `# mkdir -p ${root}/media/pv/dmcrypt/sec`,
    `mount -t ext4 -o noatime -- /dev/mapper/${dm} ${root}/media/pv/dmcrypt/sec`,
  ], 'the engine leaves boot data to the volume layer')
  t.same(readdirSync(root), [], 'a plan creates nothing')
  t.match(dm, /^pvdisk-sec-[0-9a-f]{8}$/)
})

t.test('an initialised disk is only opened and mounted, with its mount options', async t => {
  const root = t.testdir({ storage: { c: { 'disk.img': Buffer.alloc(8 * 1024 * 1024), 'key.txt': Buffer.alloc(32), 'key.init_done': '' } } })
  const { ctx, runner, disks } = setup(root, [{ ...crypt('dm-crypt-versatile'), mount_options: 'nodev,nosuid', options: 'sync' }])
  await disksUp(ctx, disks)
  const dm = dmNameOf(disks[0]!, `${root}/storage/c/disk.img`)
  t.same(runner.argvs.map(a => a[0]), ['losetup', 'cryptsetup', 'mount'])
  t.same(runner.argvs[2], ['mount', '-t', 'ext4', '-o', 'noatime,sync,nodev,nosuid', '--', `/dev/mapper/${dm}`, `${root}/media/pv/dmcrypt/sec`])
})

t.test('caam nxp: caam-keygen blob, logon key, tagged-key dm table', async t => {
  const root = t.testdir({ storage: { c: { 'disk.img': Buffer.alloc(8 * 1024 * 1024), 'key.bb': 'blob', 'key.init_done': '' } } })
  const { ctx, runner, disks } = setup(root, [crypt('dm-crypt-caam', 'nxp', true)])
  await disksUp(ctx, disks)
  const dm = dmNameOf(disks[0]!, `${root}/storage/c/disk.img`)
  t.same(runner.commands.filter(c => !c.note).map(c => [...c.argv, ...(c.input ? [`<${c.input}>`] : [])]), [
    ['losetup', '--find', '--show', '--', `${root}/storage/c/disk.img`],
    ['caam-keygen', 'import', 'key.bb', 'key.import'],
    ['keyctl', 'padd', 'logon', 'logkey:key', '@u', '<<secret>>'],
    ['dmsetup', 'create', dm, '--table', '0 16384 crypt capi:tk(cbc(aes))-plain :36:logon:logkey:key 0 $LOOP 0 1 sector_size:512'],
    ['mount', '-t', 'ext4', '-o', 'noatime', '--', `/dev/mapper/${dm}`, `${root}/media/pv/dmcrypt/sec`],
  ])
  const keygen = runner.commands.find(c => c.argv[0] === 'caam-keygen')
  t.equal(keygen?.cwd, `${root}/storage/c`, 'caam-keygen runs in the image directory, where its relative blob path points (as Pantavisor cds there)')
  t.ok(runner.lines.includes(`# copy ${root}/storage/c/key.bb to /data/caam/key.bb (mode 0600)`), 'the blob goes to the tool\'s fixed directory too, as Pantavisor copies it')
  t.ok(runner.lines.includes('# remove /data/caam/key.import'), 'a stale import is cleared first: the tool exits 0 even when it fails')
})

t.test('caam nxp first init creates the key with caam-keygen', async t => {
  const root = t.testdir({})
  const { ctx, runner, disks } = setup(root, [crypt('dm-crypt-caam', 'nxp', true)])
  await disksUp(ctx, disks)
  t.same(runner.commands.find(c => c.argv[0] === 'caam-keygen'), { argv: ['caam-keygen', 'create', 'key', 'ecb', '-s', '16'], cwd: `${root}/storage/c` })
  t.ok(runner.lines.includes(`# copy /data/caam/key.bb to ${root}/storage/c/key.bb (mode 0600)`))
  t.ok(runner.lines.includes("# mkdir -p /data/caam (caam-keygen's own blob directory, fixed in the tool: outside --root)"), 'the plan says why one path is outside --root')
  t.match(runner.lines.find(l => l.includes('caam-keygen create')), /^\(cd .*\/storage\/c && caam-keygen create key ecb -s 16\)$/, 'the plan shows the working directory')
})

t.test('caam-keygen exits 0 when it fails: pvdisk checks its output file instead', async t => {
  const root = t.testdir({ storage: { c: { 'disk.img': Buffer.alloc(1024 * 1024), 'key.bb': 'blob', 'key.init_done': '' } }, caam: {} })
  withStandIns(t)
  process.env.PVDISK_CAAM_BLOB_DIR = join(root, 'caam')
  t.teardown(() => { delete process.env.PVDISK_CAAM_BLOB_DIR })
  const runner = new RecordingRunner({ planning: false, respond: c => (c.argv[0] === 'caam-keygen' ? { stdout: 'Failed to open blob file or the file doesn\'t exist.\n' } : c.argv[0] === 'losetup' ? { stdout: '/dev/loop9\n' } : undefined) })
  const { disks } = setup(root, [crypt('dm-crypt-caam', 'nxp', true)])
  const ctx: DiskContext = { root, runner, kernel: noKernel, log: () => undefined }
  await t.rejects(disksUp(ctx, disks), { code: 'ECOMMAND', message: /caam-keygen import produced no .*key\.import \(it exits 0 even when it fails\)/, details: [/caam-keygen: Failed to open blob file/] })
  t.notOk(runner.argvs.some(a => a[0] === 'keyctl' && a[1] === 'padd'), 'no key is loaded')
  t.ok(runner.argvs.some(a => a.join(' ') === 'losetup --detach /dev/loop9'), 'the loop device is detached again')
})

for (const [mode, cipher] of [['caam', 'capi:cbc(aes)-plain64'], ['dcp', 'capi:cbc(aes)-essiv:sha256']] as const) {
  t.test(`${mode} mainline: a trusted key sealed by the hardware`, async t => {
    const root = t.testdir({})
    const { ctx, runner, disks } = setup(root, [crypt(`dm-crypt-${mode}`, 'mainline', mode === 'caam')])
    await disksUp(ctx, disks)
    const dm = dmNameOf(disks[0]!, `${root}/storage/c/disk.img`)
    t.same(runner.argvs.slice(0, 3), [
      ['keyctl', 'add', 'trusted', 'logkey:key', 'new 32', '@u'],
      ['keyctl', 'pipe', '$KEY_ID'],
      ['keyctl', 'unlink', '$KEY_ID', '@u'],
    ])
    t.ok(runner.lines.includes(`# write the sealed blob to ${root}/storage/c/key.bb (mode 0600)`))
    t.ok(runner.commands.some(c => c.argv.join(' ') === 'keyctl padd trusted logkey:key @u' && c.input === '<secret>'), 'the blob goes in on stdin')
    t.ok(runner.argvs.some(a => a.join(' ') === `dmsetup create ${dm} --table 0 16384 crypt ${cipher} :32:trusted:logkey:key 0 $LOOP 0 1 sector_size:512`))
  })
}

t.test('dcp nxp: grey blob made and read by the DCP tool, key on stdin', async t => {
  const root = t.testdir({})
  const { ctx, runner, disks } = setup(root, [crypt('dm-crypt-dcp', 'nxp')])
  await disksUp(ctx, disks)
  const c = runner.commands.filter(x => !x.note)
  t.same(c[0], { argv: ['x--pv-dcp-tool', 'encrypt', `${root}/storage/c/key.new`], input: '<secret>' })
  t.ok(runner.lines.includes(`# rename ${root}/storage/c/key.new to ${root}/storage/c/key`))
  t.ok(c.some(x => x.argv.join(' ') === `x--pv-dcp-tool decrypt ${root}/storage/c/key`))
  const open = c.find(x => x.argv[0] === 'cryptsetup')
  t.same(open?.argv.slice(0, 13), ['cryptsetup', 'open', '--type', 'plain', '-s', '256', '-c', 'capi:cbc(aes)-essiv:sha256', '--hash', 'plain', '--key-file=-', '--keyfile-size', '32'],
    'the 32 bytes on stdin taken raw (--hash plain), as Pantavisor\'s key file is; without it plain mode hashes stdin')
  t.equal(open?.input, '<secret>')
  t.ok(runner.lines.includes(`# chmod 0600 ${root}/storage/c/key.new`), 'the grey blob is not world-readable')
})

t.test('dcp nxp: a decrypted key that is not 32 bytes is refused before cryptsetup', async t => {
  const root = t.testdir({ storage: { c: { 'disk.img': Buffer.alloc(1024 * 1024), key: 'grey', 'key.init_done': '' } } })
  withStandIns(t)
  const runner = new RecordingRunner({ planning: false, respond: c => (c.argv[1] === 'decrypt' ? { output: Buffer.alloc(31, 0xff) } : c.argv[0] === 'losetup' ? { stdout: '/dev/loop9\n' } : undefined) })
  const { disks } = setup(root, [crypt('dm-crypt-dcp', 'nxp')])
  await t.rejects(disksUp({ root, runner, kernel: noKernel, log: () => undefined }, disks), { code: 'ECOMMAND', message: /gave 31 bytes, not a 32-byte key/ })
  t.notOk(runner.argvs.some(a => a[0] === 'cryptsetup'))
})

t.test('dcp mainline on a disk made in nxp mode (no .bb yet): the NXP grey blob opens it, as Pantavisor falls back to it', async t => {
  const root = t.testdir({ storage: { c: { 'disk.img': Buffer.alloc(8 * 1024 * 1024), key: 'grey', 'key.init_done': '' } } })
  const { ctx, runner, disks } = setup(root, [crypt('dm-crypt-dcp', 'mainline')])
  await disksUp(ctx, disks)
  const dm = dmNameOf(disks[0]!, `${root}/storage/c/disk.img`)
  t.same(runner.argvs.slice(0, 3), [
    ['losetup', '--find', '--show', '--', `${root}/storage/c/disk.img`],
    ['x--pv-dcp-tool', 'decrypt', `${root}/storage/c/key`],
    ['cryptsetup', 'open', '--type', 'plain', '-s', '256', '-c', 'capi:cbc(aes)-essiv:sha256', '--hash', 'plain', '--key-file=-', '--keyfile-size', '32', '--', '$LOOP', dm],
  ])
  t.notOk(runner.argvs.some(a => a[0] === 'keyctl'), 'no trusted key involved')
})

t.test('down: unmount, close, detach, drop the key', async t => {
  const root = t.testdir({ storage: { c: { 'disk.img': Buffer.alloc(1024), 'key.bb': 'x', 'key.init_done': '' } } })
  const probe = setup(root, [crypt('dm-crypt-caam', 'mainline', true)])
  const dm = dmNameOf(probe.disks[0]!, `${root}/storage/c/disk.img`)
  const mnt = `${root}/media/pv/dmcrypt/sec`
  const kernel: Kernel = {
    mounts: () => [{ id: 1, parent: 0, major: 254, minor: 3, root: '/', mountPoint: mnt, options: 'rw', fsType: 'ext4', source: `/dev/mapper/${dm}` }],
    loops: () => [{ name: 'loop4', node: '/dev/loop4', backingFile: `${root}/storage/c/disk.img`, major: 7, minor: 4 }],
    dms: () => [{ name: dm, node: `/dev/mapper/${dm}`, major: 254, minor: 3, slaves: ['loop4'] }],
  }
  const { ctx, runner, disks } = setup(root, [crypt('dm-crypt-caam', 'mainline', true)], kernel)
  await disksDown(ctx, disks)
  t.same(runner.argvs, [
    ['umount', '--', mnt],
    ['dmsetup', 'remove', '--', dm],
    ['keyctl', 'search', '@u', 'trusted', 'logkey:key'],
    ['keyctl', 'unlink', '$KEY_ID', '@u'],
    ['losetup', '--detach', '/dev/loop4'],
  ])
})

t.test('dm names never collide, whatever the images are called', async t => {
  const root = t.testdir({})
  const { disks } = setup(root, [
    { name: 'a', type: 'dm-crypt-versatile', path: '/x/versatile.img,8,k1' },
    { name: 'b', type: 'dm-crypt-versatile', path: '/y/versatile.img,8,k2' },
  ])
  t.not(dmNameOf(disks[0]!, '/x/versatile.img'), dmNameOf(disks[1]!, '/y/versatile.img'))
})

t.test('bind disks: mkdir and bind mount at the media path', async t => {
  const root = t.testdir({})
  const { ctx, runner, disks } = setup(root, [{ name: 'data', type: 'volume-disk' }, { name: 'old', type: 'directory', path: '/storage/disks/' }])
  await disksUp(ctx, disks)
  t.same(runner.argvs, [
    ['mount', '--bind', '--', `${root}/storage/pv/volume-disk/data`, `${root}/media/pv/dmcrypt/data`],
    ['mount', '--bind', '--', `${root}/storage/disks`, `${root}/media/pv/dmcrypt/old`],
  ])
})

t.test('an initialised image whose key is gone is refused before any command', async t => {
  const root = t.testdir({ storage: { c: { 'disk.img': Buffer.alloc(1024), 'key.init_done': '' } } })
  const { ctx, runner, disks } = setup(root, [crypt('dm-crypt-versatile')])
  await t.rejects(disksUp(ctx, disks), { code: 'EDISK', message: /key .* is missing/ })
  t.same(runner.argvs, [])
  const noMarker = t.testdir({ storage: { c: { 'disk.img': Buffer.alloc(1024) } } })
  const s2 = setup(noMarker, [crypt('dm-crypt-versatile')])
  await t.rejects(disksUp(s2.ctx, s2.disks), { code: 'EDISK', message: /may hold data under a lost key/ })
  const noImage = t.testdir({ storage: { c: { 'key.txt': 'k', 'key.init_done': '' } } })
  const s3 = setup(noImage, [crypt('dm-crypt-versatile')])
  await t.rejects(disksUp(s3.ctx, s3.disks), { code: 'EDISK', message: /image.* is missing|is missing/ })
})

t.test('a filesystem without fallocate gets a sparse image only when the space is there now', async t => {
  const root = t.testdir({})
  const unsupported = (c: { argv: readonly string[] }) => (c.argv[0] === 'fallocate' ? { code: 1, stderr: 'fallocate: fallocate failed: Operation not supported\n' } : undefined)
  const big = setup(root, [{ name: 'sec', type: 'dm-crypt-versatile', path: '/storage/c/disk.img,99999999,key' }])
  const runner = new RecordingRunner({ planning: false, respond: unsupported })
  const messages: string[] = []
  await t.rejects(disksUp({ root, runner, kernel: noKernel, log: m => messages.push(m) }, big.disks), { code: 'EDISK', message: /MiB free, less than the 99999999 MiB the image needs \(its filesystem cannot reserve space\)/ })
  t.notOk(runner.argvs.some(a => a[0] === 'truncate' || a[0] === 'losetup'), 'no sparse image, nothing opened')
  const small = setup(root, [{ name: 'sec', type: 'dm-crypt-versatile', path: '/storage/c/disk.img,8,key' }])
  const ok = new RecordingRunner({ planning: false, respond: c => unsupported(c) ?? (c.argv[0] === 'losetup' ? { stdout: '/dev/loop9\n' } : undefined) })
  await disksUp({ root, runner: ok, kernel: noKernel, log: m => messages.push(m) }, small.disks).catch(() => undefined)
  t.ok(ok.argvs.some(a => a.join(' ') === `truncate --size 8388608 -- ${root}/storage/c/disk.img.new`), 'with room: a sparse image')
  t.ok(messages.some(m => /cannot reserve space \(fallocate not supported\); the image is sparse, with \d+ MiB free now/.test(m)), 'and a warning that says so')
})

t.test('a crypt disk whose key, marker, image or image directory is a link is refused before any command', async t => {
  const { symlinkSync } = await import('node:fs')
  for (const [plant, at] of [['storage/c/key.txt', 'key'], ['storage/c/key.init_done', 'marker'], ['storage/c/disk.img.new', 'image'], ['storage/c', 'image']] as const) {
    const root = t.testdir({ storage: { c: {} }, outside: { 'secret.txt': 'x'.repeat(32) } })
    if (plant === 'storage/c') {
      const { rmdirSync } = await import('node:fs')
      rmdirSync(join(root, 'storage/c'))
      symlinkSync(join(root, 'outside'), join(root, plant))
    } else symlinkSync(join(root, 'outside/secret.txt'), join(root, plant))
    const runner = new RecordingRunner({ planning: false })
    const { disks } = setup(root, [crypt('dm-crypt-versatile')])
    await t.rejects(disksUp({ root, runner, kernel: noKernel, log: () => undefined }, disks), { code: 'EDISK', message: new RegExp(`${plant.replace(/\./g, '\\.')} is a symbolic link; refusing to follow it \\(the ${at} `) })
    t.same(runner.argvs, [], `${plant}: nothing run`)
  }
})

t.test('a mount that does not show in the kernel afterwards is undone, never left behind', async t => {
  const root = t.testdir({})
  const runner = new RecordingRunner({ planning: false })
  const { disks } = setup(root, [{ name: 'b', type: 'volume-disk' }])
  await t.rejects(disksUp({ root, runner, kernel: noKernel, log: () => undefined }, disks), { code: 'EDISK', message: /mount reported success but .* is not bound to .*; unmounted again/ })
  t.same(runner.argvs.slice(-2), [['mount', '--bind', '--', `${root}/storage/pv/volume-disk/b`, `${root}/media/pv/dmcrypt/b`], ['umount', '--', `${root}/media/pv/dmcrypt/b`]])
})
