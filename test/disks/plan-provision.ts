// Exact commands of the provisioned disks, recorded rather than run (they run for real in
// test/disks/uml-provision.ts): swap first, mkfs only on a device without a signature,
// Pantavisor's MS_* flags as mount options, a swap file made beside its place.
import t from 'tap'
import { checkDevice } from '../../plugin/config/check-device.js'
import { disksUp, selectDisks } from '../../plugin/disks/engine.js'
import type { DiskContext } from '../../plugin/disks/context.js'
import { mountOptionsOf } from '../../plugin/disks/provision-utils.js'
import { parseSize } from '../../plugin/config/dd-size.js'
import { RecordingRunner } from '../../plugin/host/run.js'
import { json, sink } from '../fixtures/helpers.js'

const plan = async (root: string, disks: unknown[]) => {
  const { parsed, problems } = sink(json({ groups: [], disks }))
  const index = checkDevice(parsed.value, problems)
  const runner = new RecordingRunner({ planning: true })
  const ctx: DiskContext = { root, runner, kernel: { mounts: () => [], loops: () => [], dms: () => [] }, log: () => undefined }
  await disksUp(ctx, selectDisks(index, []))
  return { problems: problems.list, lines: runner.lines, argvs: runner.argvs }
}

t.test('a block volume-disk and a swap file: swap first; probe, then mkfs, then mount with the MS_* flags', async t => {
  const root = t.testdir({})
  const { problems, argvs, lines } = await plan(root, [
    { name: 'blk', type: 'volume-disk', provision: 'block', path: '/dev/sdb1', format: 'ext4', format_options: '-L data', mount_target: '/mnt/data', mount_options: 'MS_NOATIME, MS_NODEV,MS_REC' },
    { name: 'sw', type: 'swap-disk', provision: 'file', path: '/storage/swapfile', provision_options: 'size=64M', mount_options: '-p 5' },
  ])
  t.same(problems, [])
  t.same(argvs, [
    ['dd', 'if=/dev/zero', `of=${root}/storage/swapfile.pvdisk-new`, 'bs=1M', `count=${64 * 1024 * 1024}`, 'iflag=count_bytes', 'conv=fsync', 'status=none'],
    ['mkswap', '--', `${root}/storage/swapfile.pvdisk-new`],
    ['swapon', '-p', '5', '--', `${root}/storage/swapfile`],
    ['blkid', '-p', '-o', 'export', '--', `${root}/dev/sdb1`],
    ['mkfs.ext4', '-q', '-L', 'data', '--', `${root}/dev/sdb1`],
    ['mount', '-t', 'ext4', '-o', 'noatime,nodev', '--', `${root}/dev/sdb1`, `${root}/mnt/data`],
  ])
  t.ok(lines.includes(`# rename ${root}/storage/swapfile.pvdisk-new to ${root}/storage/swapfile`), 'the swap file is renamed into place once made')
})

t.test('zram: the sysfs writes are shown, disksize last; then mkswap and swapon', async t => {
  const { lines } = await plan(t.testdir({}), [{ name: 'z', type: 'swap-disk', provision: 'zram', provision_options: 'disksize=38M max_comp_streams=2' }])
  t.same(lines, ['# find an uninitialised /sys/block/zramN (or hot_add one) as $ZRAM, write max_comp_streams=2 disksize=38M to it', 'mkswap -- $ZRAM', 'swapon -- $ZRAM'])
})

t.test('the parts: MS_* flags and dd sizes', async t => {
  const seen: string[] = []
  t.same(mountOptionsOf('MS_RDONLY,MS_NOSUID,MS_BOGUS', m => seen.push(m)), ['ro', 'nosuid'])
  t.match(seen, [/MS_BOGUS is not one of Pantavisor's MS_\* flags; ignored/])
  t.same(['64M', '1G', '512', '2KB', '3b', 'x', '0', '1.5M'].map(parseSize), [64 * 1024 ** 2, 1024 ** 3, 512, 2000, 1536, undefined, undefined, undefined])
})
