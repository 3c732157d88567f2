// Exact commands of a verity volume's up and down, recorded against a scripted kernel (they
// run for real in test/volumes/uml-verity.ts): verify before anything is mapped, the mapping
// closed again when the mount fails, nothing run for a volume already mounted.
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { VerityVolume } from '../../plugin/config/verity.js'
import type { DiskContext, Kernel } from '../../plugin/disks/context.js'
import { verityDmName, verityDown, verityUp } from '../../plugin/disks/verity.js'
import type { DmDevice, MountEntry } from '../../plugin/host/kernel.js'
import { RecordingRunner, type Command, type CommandResult } from '../../plugin/host/run.js'
import { isPvdiskError } from '../../plugin/errors.js'

const HASH = 'ef'.repeat(32)

const volume = (dir: string, name: string, head: Buffer): VerityVolume => {
  mkdirSync(join(dir, 'web/_dm'), { recursive: true })
  writeFileSync(join(dir, 'web', name), head)
  writeFileSync(join(dir, 'web', `${name}.hash`), 'h')
  return { app: 'web', name, manifest: join(dir, 'web/_dm', `${name}.json`), data: join(dir, 'web', name), hash: join(dir, 'web', `${name}.hash`), rootHash: HASH }
}
const squashfs = Buffer.concat([Buffer.from('hsqs'), Buffer.alloc(4092)])
const ext4 = (): Buffer => {
  const b = Buffer.alloc(4096)
  b.writeUInt32LE(128, 1024) // inodes
  b.writeUInt32LE(4096, 1028) // blocks
  b.writeUInt32LE(0, 1024 + 0x18) // 1 KiB blocks
  b.writeUInt16LE(0xef53, 1024 + 0x38)
  return b
}

const setup = (root: string, kernel: Partial<Kernel> = {}, respond?: (c: Command) => Partial<CommandResult> | undefined) => {
  const runner = new RecordingRunner({ planning: false, ...(respond ? { respond } : {}) })
  const ctx: DiskContext = { root, runner, kernel: { mounts: () => [], loops: () => [], dms: () => [], ...kernel }, log: () => undefined }
  return { ctx, runner }
}
const argvs = (r: RecordingRunner) => r.argvs

t.test('up: verify, open, a read-only mount where Pantavisor mounts it; ext4 without journal replay', async t => {
  const dir = t.testdir({ root: {} })
  const root = join(dir, 'root')
  const v = volume(dir, 'data.squashfs', squashfs)
  const { ctx, runner } = setup(root)
  t.equal(await verityUp(ctx, v), 'mounted')
  const dm = verityDmName('web', 'data.squashfs')
  t.match(dm, /^pvdisk-verity-[0-9a-f]{16}$/)
  t.same(argvs(runner), [
    ['veritysetup', 'verify', '--', v.data, v.hash, HASH],
    ['veritysetup', 'open', '--', v.data, dm, v.hash, HASH],
    ['mount', '-t', 'squashfs', '-o', 'ro', '--', `/dev/mapper/${dm}`, join(root, 'volumes/web/data.squashfs')],
  ])
  const e = volume(dir, 'conf.ext4', ext4())
  const second = setup(root)
  await verityUp(second.ctx, e)
  t.same(argvs(second.runner)[2], ['mount', '-t', 'ext4', '-o', 'ro,noload', '--', `/dev/mapper/${verityDmName('web', 'conf.ext4')}`, join(root, 'volumes/web/conf.ext4')])
  t.not(verityDmName('a-b', 'c'), verityDmName('a', 'b-c'), 'names never collide')
})

t.test('a failed verify maps nothing; a failed mount closes the mapping again', async t => {
  const dir = t.testdir({ root: {} })
  const root = join(dir, 'root')
  const v = volume(dir, 'data.squashfs', squashfs)
  const bad = setup(root, {}, c => (c.argv[1] === 'verify' ? { code: 1, stderr: 'Verification of root hash failed.\n' } : undefined))
  const err = await verityUp(bad.ctx, v).catch((x: unknown) => x)
  t.ok(isPvdiskError(err) && err.code === 'EDISK', 'exit 1')
  t.match((err as Error).message, /^verity volume web\/data\.squashfs: the image .* do not match; nothing mounted$/)
  t.match((err as { details: string[] }).details.join('\n'), /Verification of root hash failed\.[^]*pvdisk verity make web data\.squashfs/)
  t.same(argvs(bad.runner).map(a => a[1]), ['verify'], 'nothing opened')
  const noMount = setup(root, {}, c => (c.argv[0] === 'mount' ? { code: 32, stderr: 'wrong fs type' } : undefined))
  await t.rejects(verityUp(noMount.ctx, v), /does not mount at/)
  t.same(argvs(noMount.runner).at(-1), ['veritysetup', 'close', '--', verityDmName('web', 'data.squashfs')], 'the mapping (and its loop) closed')
})

t.test('already mounted: nothing runs; a stale mapping is closed and verified afresh; a foreign mount is refused', async t => {
  const dir = t.testdir({ root: {} })
  const root = join(dir, 'root')
  const v = volume(dir, 'data.squashfs', squashfs)
  const name = verityDmName('web', 'data.squashfs')
  const dm: DmDevice = { name, node: `/dev/mapper/${name}`, major: 253, minor: 4, slaves: ['loop3'] }
  const at = (major: number, minor: number): MountEntry => ({ id: 1, parent: 0, major, minor, root: '/', mountPoint: join(root, 'volumes/web/data.squashfs'), options: 'ro', fsType: 'squashfs', source: `/dev/mapper/${name}` })
  const mounted = setup(root, { dms: () => [dm], mounts: () => [at(253, 4)] })
  t.equal(await verityUp(mounted.ctx, v), 'already mounted')
  t.same(argvs(mounted.runner), [])
  const stale = setup(root, { dms: () => [dm] })
  await verityUp(stale.ctx, v)
  t.same(argvs(stale.runner).map(a => a.slice(0, 2)), [['veritysetup', 'close'], ['veritysetup', 'verify'], ['veritysetup', 'open'], ['mount', '-t']])
  const foreign = setup(root, { mounts: () => [at(8, 1)] })
  await t.rejects(verityUp(foreign.ctx, v), /is mounted from .* not from verity volume web\/data\.squashfs/)
  const down = setup(root, { dms: () => [dm], mounts: () => [at(253, 4)] })
  t.equal(await verityDown(down.ctx, v), 'unmounted')
  t.same(argvs(down.runner)[0], ['umount', '--', join(root, 'volumes/web/data.squashfs')])
})

t.test('a missing image or hash tree is refused before any command, exit 2', async t => {
  const dir = t.testdir({ root: {} })
  const v = volume(dir, 'data.squashfs', squashfs)
  const { ctx, runner } = setup(join(dir, 'root'))
  const err = await verityUp(ctx, { ...v, hash: join(dir, 'web/gone.hash') }).catch((x: unknown) => x)
  t.ok(isPvdiskError(err) && err.code === 'EINVALID')
  t.match((err as Error).message, /gone\.hash does not exist \(hash_device of .*data\.squashfs\.json\); nothing mounted/)
  t.same(argvs(runner), [])
})
