import t from 'tap'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { ProcessRunner } from '../../plugin/host/run.js'
import { isRoot, requirePrereq } from '../fixtures/prereq.js'
import { isMountOf, mountAt, mountHolding, parseMountinfo, readLoops, readMounts } from '../../plugin/host/kernel.js'
import { parseExt4Superblock } from '../../plugin/disks/ext4.js'

t.test('mountinfo lines, with escaped names', async t => {
  const [m] = parseMountinfo('36 25 254:3 /sub\\040dir /media/pv/dmcrypt/my\\040disk rw,noatime shared:1 - ext4 /dev/mapper/x rw\n')
  t.match(m, { id: 36, parent: 25, major: 254, minor: 3, root: '/sub dir', mountPoint: '/media/pv/dmcrypt/my disk', fsType: 'ext4', source: '/dev/mapper/x' })
  t.ok(m && isMountOf(m, { major: 254, minor: 3 }))
  const mounts = parseMountinfo('1 0 8:1 / / rw - ext4 /dev/sda1 rw\n2 1 8:2 / /media rw - ext4 /dev/sda2 rw\n3 2 0:5 / /media rw - tmpfs t rw\n')
  t.equal(mountAt(mounts, '/media')?.id, 3, 'the topmost mount wins')
  t.equal(mountHolding(mounts, '/media/x/y')?.id, 3)
  t.equal(mountHolding(mounts, '/mediax')?.id, 1)
})

t.test('reads this machine', async t => {
  t.ok(readMounts().some(m => m.mountPoint === '/'))
  t.ok(Array.isArray(readLoops()))
})

t.test('the mount table: one read per turn of the event loop, afresh after a command or at the next turn', async t => {
  if (!requirePrereq(t, isRoot(), 'mounting a tmpfs needs root')) return
  const dir = t.testdir({ mnt: {} })
  const mnt = join(dir, 'mnt')
  try {
    const before = readMounts()
    t.equal(readMounts(), before, 'read again in the same turn: the same table, not read twice')
    spawnSync('mount', ['-t', 'tmpfs', '--', 'pvdisk-test', mnt])
    t.notOk(mountAt(readMounts(), mnt), 'a mount made behind its back, in the same turn, is not seen yet')
    await new Promise(resolve => setImmediate(resolve))
    t.ok(mountAt(readMounts(), mnt), 'at the next turn it is')
    const same = readMounts()
    await new Promise(resolve => setImmediate(resolve))
    t.equal(readMounts(), same, 'read afresh, an unchanged table is not parsed again')
    await new ProcessRunner().run({ argv: ['umount', '--', mnt] })
    t.notOk(mountAt(readMounts(), mnt), 'after a command, the table is read afresh at once')
  } finally {
    spawnSync('umount', ['--', mnt])
  }
})

t.test('ext4 superblock: magic, block size, size against the device', async t => {
  const sb = Buffer.alloc(1024)
  t.equal(parseExt4Superblock(sb), undefined, 'zeros are not ext4')
  sb.writeUInt16LE(0xef53, 0x38)
  sb.writeUInt32LE(2048, 0x00) // inodes
  sb.writeUInt32LE(8192, 0x04) // blocks
  sb.writeUInt32LE(0, 0x18) // 1 KiB blocks
  t.same(parseExt4Superblock(sb), { blockSize: 1024, blocks: 8192 })
  t.equal(parseExt4Superblock(sb, 4 * 1024 * 1024), undefined, 'larger than the device: noise, not a filesystem')
  sb.writeUInt32LE(9, 0x18)
  t.equal(parseExt4Superblock(sb), undefined, 'absurd block size')
})
