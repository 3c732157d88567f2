// Does a block device hold an ext4 filesystem? Read from its superblock directly, so the
// answer needs no tool. With plain dm-crypt a wrong key still "opens": the decrypted
// bytes are noise, and this check is what keeps fsck and mkfs away from them.
import { closeSync, openSync, readSync } from 'node:fs'

export interface Ext4Info {
  blockSize: number
  blocks: number
}

const SUPERBLOCK = 1024

export const parseExt4Superblock = (sb: Buffer, deviceBytes?: number): Ext4Info | undefined => {
  if (sb.length < 1024 || sb.readUInt16LE(0x38) !== 0xef53) return undefined
  const log = sb.readUInt32LE(0x18)
  if (log > 6) return undefined
  const blockSize = 1024 << log
  const blocks = sb.readUInt32LE(0x04) + (sb.readUInt32LE(0x150) * 2 ** 32 || 0) * ((sb.readUInt32LE(0x60) & 0x80) ? 1 : 0)
  if (blocks === 0 || sb.readUInt32LE(0x00) === 0) return undefined // no inodes or no blocks: not a real filesystem
  if (deviceBytes !== undefined && blocks * blockSize > deviceBytes) return undefined
  return { blockSize, blocks }
}

export const readExt4 = (device: string, deviceBytes?: number): Ext4Info | undefined => {
  const fd = openSync(device, 'r')
  try {
    const sb = Buffer.alloc(1024)
    readSync(fd, sb, 0, 1024, SUPERBLOCK)
    return parseExt4Superblock(sb, deviceBytes)
  } finally {
    closeSync(fd)
  }
}
