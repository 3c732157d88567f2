// dm-verity volumes: a read-only image whose every block is checked against a root hash.
// Up: `veritysetup verify` reads the whole image and hash tree first (so a wrong root hash,
// a hash tree that does not match or an image changed since it was hashed is refused
// before anything is mapped), then `veritysetup open` and a read-only mount at
// <root>/volumes/<app>/<volume>, where Pantavisor's handler mounts it. After that the kernel
// checks each block as it is read: a block changed later reads as EIO, never as other data,
// and the mapping's status turns from V (verified) to C (corrupted).
import { closeSync, openSync, readSync } from 'node:fs'
import { crypto } from '../host/lazy-crypto.js'
import { fileProblem, type VerityVolume } from '../config/verity.js'
import { dirname, relative } from 'node:path'
import { errorSaid, PvdiskError } from '../errors.js'
import { isMountOf, mountAt, type MountEntry } from '../host/kernel.js'
import { mkdirNoFollow } from '../host/no-follow.js'
import { hostPath, type DiskContext, type MountSpec } from './context.js'
import { parseExt4Superblock } from './ext4.js'

/**
 * pvdisk's mapping name: unique for each app and volume, whatever characters they hold
 * (Pantavisor's pv--dmverity--<app>-<volume without extension> can collide and passes
 * spaces to dmsetup).
 */
export const verityDmName = (app: string, volume: string): string =>
  `pvdisk-verity-${crypto().createHash('sha256').update(`${app}/${volume}`).digest('hex').slice(0, 16)}`

/** Pantavisor's place for a volume: <root>/volumes/<app>/<volume> */
export const verityMountPoint = (ctx: DiskContext, app: string, volume: string): string => hostPath(ctx, `/volumes/${app}/${volume}`)

export interface ImageKind {
  fsType: 'squashfs' | 'ext4' | undefined
  /** the filesystem's block size, where it has one the device's must not exceed */
  blockSize: number | undefined
}

/** what filesystem an image holds, from its first bytes (squashfs magic, ext2/3/4 superblock) */
export const imageKindOf = (file: string): ImageKind => {
  const head = Buffer.alloc(2048)
  const fd = openSync(file, 'r')
  try {
    readSync(fd, head, 0, head.length, 0)
  } finally {
    closeSync(fd)
  }
  if (head.toString('latin1', 0, 4) === 'hsqs') return { fsType: 'squashfs', blockSize: undefined }
  const ext = parseExt4Superblock(head.subarray(1024))
  return ext ? { fsType: 'ext4', blockSize: ext.blockSize } : { fsType: undefined, blockSize: undefined }
}

/** read-only; ext4 without journal replay, which would write */
const mountOptions = (kind: ImageKind): string[] => (kind.fsType === 'ext4' ? ['ro', 'noload'] : ['ro'])

export const verityMountArgv = (kind: ImageKind, device: string, mountPoint: string): string[] =>
  ['mount', ...(kind.fsType ? ['-t', kind.fsType] : []), '-o', mountOptions(kind).join(','), '--', device, mountPoint]

/** the open mapping mounted once more, at target (inside a container's mount namespace) */
export const verityMountSpec = (v: VerityVolume, target: string): MountSpec => {
  const kind = imageKindOf(v.data)
  return { source: `/dev/mapper/${verityDmName(v.app, v.name)}`, target, fsType: kind.fsType ?? 'auto', options: mountOptions(kind) }
}

const refuse = (v: VerityVolume, what: string, e: unknown): PvdiskError =>
  new PvdiskError('EDISK', `verity volume ${v.app}/${v.name}: ${what}; nothing mounted`, [
    ...errorSaid(e).split('\n').slice(1),
    `if the image was rebuilt on purpose, run pvdisk verity make ${v.app} ${v.name} again (and sign the state again); otherwise restore ${v.data} and ${v.hash} from the state's source`,
  ])

export const verityVerifyArgv = (v: VerityVolume): string[] => ['veritysetup', 'verify', '--', v.data, v.hash, v.rootHash]

/** the mapping of a volume and, when it is mounted, where */
const mappingOf = (ctx: DiskContext, v: VerityVolume, mounts: readonly MountEntry[]) => {
  const dm = ctx.kernel.dms().find(d => d.name === verityDmName(v.app, v.name))
  return { dm, mountedAt: dm ? mounts.filter(m => isMountOf(m, dm)) : [] }
}

export const closeVerity = (ctx: DiskContext, dm: string) => ctx.runner.run({ argv: ['veritysetup', 'close', '--', dm] })

/** verify, open, mount read-only at mountPoint (default Pantavisor's place); idempotent */
export const verityUp = async (ctx: DiskContext, v: VerityVolume, mountPoint = verityMountPoint(ctx, v.app, v.name)): Promise<'mounted' | 'already mounted'> => {
  const name = verityDmName(v.app, v.name)
  const mounts = ctx.kernel.mounts()
  const { dm, mountedAt } = mappingOf(ctx, v, mounts)
  const at = mountAt(mounts, mountPoint)
  if (at) {
    if (dm && isMountOf(at, dm)) return 'already mounted'
    throw new PvdiskError('EDISK', `${mountPoint} is mounted from ${at.source}, not from verity volume ${v.app}/${v.name}`, ['run pvdisk volumes down first; pvdisk leaves what it did not mount alone'])
  }
  if (dm) {
    // left by an interrupted up, or opened for an image since changed: verified afresh
    if (mountedAt.length > 0) throw new PvdiskError('EDISK', `verity mapping ${name} is mounted at ${mountedAt[0]?.mountPoint}, not at ${mountPoint}`, ['unmount it there first'])
    await closeVerity(ctx, name)
  }
  const appDir = dirname(dirname(v.manifest)) // <app>/_dm/<volume>.json
  for (const [file, what] of [[v.data, 'data_device'], [v.hash, 'hash_device']] as const) {
    const bad = fileProblem(appDir, relative(appDir, file))
    if (bad) throw new PvdiskError('EINVALID', `verity volume ${v.app}/${v.name}: ${bad} (${what} of ${v.manifest}); nothing mounted`, ['put the file into the state (pvr get), or make the volume again with pvdisk verity make'])
  }
  const kind = imageKindOf(v.data)
  try {
    await ctx.runner.run({ argv: verityVerifyArgv(v), timeoutMs: 600_000 })
  } catch (e) {
    throw refuse(v, `the image ${v.data}, its hash tree ${v.hash} or the root hash in ${v.manifest} do not match`, e)
  }
  await ctx.runner.run({ argv: ['veritysetup', 'open', '--', v.data, name, v.hash, v.rootHash] })
  try {
    mkdirNoFollow(ctx.root, mountPoint)
    await ctx.runner.run({ argv: verityMountArgv(kind, `/dev/mapper/${name}`, mountPoint) })
  } catch (e) {
    await closeVerity(ctx, name).catch(() => undefined) // no mapping (nor its loop device) left behind
    throw refuse(v, `the verified image does not mount at ${mountPoint}`, e)
  }
  return 'mounted'
}

/** unmounts a volume from its place and closes its mapping; idempotent */
export const verityDown = async (ctx: DiskContext, v: VerityVolume, mountPoint = verityMountPoint(ctx, v.app, v.name)): Promise<'unmounted' | 'not mounted'> => {
  const at = mountAt(ctx.kernel.mounts(), mountPoint)
  const { dm } = mappingOf(ctx, v, ctx.kernel.mounts())
  if (at && dm && isMountOf(at, dm)) await ctx.runner.run({ argv: ['umount', '--', mountPoint] })
  if (dm) await closeUnmountedVerity(ctx, [dm])
  return at && dm && isMountOf(at, dm) ? 'unmounted' : 'not mounted'
}

/** closes the verity mappings whose mounts were just taken down (their devices given) */
export const closeUnmountedVerity = async (ctx: DiskContext, devices: readonly { major: number, minor: number }[]): Promise<string[]> => {
  const mounts = ctx.kernel.mounts()
  const closed: string[] = []
  for (const dm of ctx.kernel.dms()) {
    if (!dm.name.startsWith('pvdisk-verity-') || !devices.some(d => d.major === dm.major && d.minor === dm.minor)) continue
    if (mounts.some(m => isMountOf(m, dm))) continue // still mounted here elsewhere
    try {
      await closeVerity(ctx, dm.name)
      closed.push(dm.name)
    } catch (e) {
      ctx.log(`verity mapping ${dm.name} stays open: ${errorSaid(e).split('\n')[0]} (a container may still have it mounted)`)
    }
  }
  return closed
}

export type VerityHealth = 'verified' | 'corrupted'

/** every verity mapping's status from one `dmsetup status --target verity`: V verified, C corruption seen */
export const verityHealth = async (ctx: DiskContext): Promise<Map<string, VerityHealth>> => {
  const out = new Map<string, VerityHealth>()
  if (ctx.runner.planning || !ctx.kernel.dms().some(d => d.name.startsWith('pvdisk-verity-'))) return out
  const { stdout } = await ctx.runner.run({ argv: ['dmsetup', 'status', '--target', 'verity'] })
  for (const line of stdout.split('\n')) {
    const m = /^(pvdisk-verity-[0-9a-f]{16}): \d+ \d+ verity ([VC])/.exec(line)
    if (m?.[1] && m[2]) out.set(m[1], m[2] === 'V' ? 'verified' : 'corrupted')
  }
  return out
}

export interface VerityStatus {
  mapping: string
  /** where it is mounted on the host, and the app and volume that place names */
  mountPoint?: string
  app?: string
  volume?: string
  health: VerityHealth
}

/** pvdisk's open verity mappings, from the kernel alone: where each is mounted and whether a corruption was seen */
export const verityStatuses = async (ctx: DiskContext): Promise<VerityStatus[]> => {
  const health = await verityHealth(ctx)
  const mounts = ctx.kernel.mounts()
  const base = hostPath(ctx, '/volumes/')
  return ctx.kernel.dms().filter(d => d.name.startsWith('pvdisk-verity-')).map(d => {
    const at = mounts.find(m => isMountOf(m, d) && m.mountPoint.startsWith(base))
    const s: VerityStatus = { mapping: d.name, health: health.get(d.name) ?? 'verified' }
    if (at) {
      const [app, ...rest] = at.mountPoint.slice(base.length).split('/')
      Object.assign(s, { mountPoint: at.mountPoint, app, volume: rest.join('/') })
    }
    return s
  })
}
