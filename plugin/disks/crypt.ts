// dm-crypt disks: first init, open, mount, unmount, close. Safe to interrupt anywhere:
// the key is written before anything else and never replaced; the image is prepared as
// <image>.new and renamed into place only after mkfs; <key>.init_done is written last.
// Nothing that may hold data is ever formatted, and fsck never runs on a device that does
// not show an ext4 superblock (with plain dm-crypt a wrong key still opens).
import { createHash } from 'node:crypto'
import { closeSync, existsSync, fsyncSync, openSync, realpathSync, statSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import type { DiskEntry } from '../config/check-device.js'
import type { CryptPath } from '../config/crypt-path.js'
import { PvdiskError } from '../errors.js'
import { readExt4 } from './ext4.js'
import { createProgress } from '../host/progress.js'
import { isMountOf, mountAt, type DmDevice, type LoopDevice } from '../host/kernel.js'
import { act, fsUsage, hostPath, mountPointOf, type Backend, type DiskContext, type DiskStatus } from './context.js'
import { schemeOf, type CryptKeyRef } from './crypt-schemes.js'

const MIB = 1024 * 1024

/** unique per disk whatever the image is called (Pantavisor's image-name-derived names collide) */
export const dmNameOf = (disk: DiskEntry, image: string): string =>
  `pvdisk-${disk.name.replace(/[^A-Za-z0-9_.+-]/g, '_').slice(0, 80)}-${createHash('sha256').update(image).digest('hex').slice(0, 8)}`

const fsyncPath = (path: string): void => {
  const fd = openSync(path, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

const realOrSame = (p: string): string => {
  try {
    return realpathSync(p)
  } catch {
    return p
  }
}

export const cryptBackend = (ctx: DiskContext, disk: DiskEntry, crypt: CryptPath): Backend => {
  const scheme = schemeOf(disk.type, typeof disk.fields.mode === 'string' ? disk.fields.mode : undefined)
  const image = hostPath(ctx, crypt.image)
  const fresh = `${image}.new`
  const ref: CryptKeyRef = { dir: dirname(image), keyName: crypt.keyName }
  const marker = join(ref.dir, `${crypt.keyName}.init_done`)
  const dm = dmNameOf(disk, image)
  const mapper = `/dev/mapper/${dm}`
  const mnt = mountPointOf(ctx, disk)
  const options = ['noatime', ...[disk.fields.options, disk.fields.mount_options].filter((o): o is string => typeof o === 'string' && o !== '')].join(',')
  const fail = (message: string, details: string[] = []) => new PvdiskError('EDISK', `disk "${disk.name}": ${message}`, details)

  const ourDm = (): DmDevice | undefined => ctx.kernel.dms().find(d => d.name === dm)
  const loopsOf = (file: string): LoopDevice[] => {
    const real = realOrSame(file)
    return ctx.kernel.loops().filter(l => l.backingFile === real || l.backingFile === file)
  }

  const status = (): DiskStatus => {
    const base = { name: disk.name, type: disk.type, mountPoint: mnt, backing: image, problems: [] as string[] }
    const mapping = ourDm()
    const at = mountAt(ctx.kernel.mounts(), mnt)
    if (mapping && at && isMountOf(at, mapping)) return { ...base, state: 'mounted', ...fsUsage(mnt) }
    if (at) base.problems.push(`${mnt} is mounted from ${at.source}, not ${mapper}`)
    if (mapping) return { ...base, state: 'open' }
    const ready = existsSync(image) && existsSync(marker)
    return { ...base, state: ready ? 'provisioned' : 'absent' }
  }

  /** after an unclean shutdown: our mapping not mounted, loop devices left on the image */
  const cleanStale = async (): Promise<void> => {
    const mapping = ourDm()
    if (mapping) {
      const busy = ctx.kernel.mounts().find(m => isMountOf(m, mapping))
      if (busy) throw fail(`${mapper} is mounted at ${busy.mountPoint}, not at ${mnt}`, [`unmount ${busy.mountPoint} first`])
      ctx.log(`closing stale mapping ${dm}`)
      await scheme.close(ctx, ref, dm)
    }
    for (const loop of [...loopsOf(image), ...loopsOf(fresh)]) {
      const holder = ctx.kernel.dms().find(d => d.slaves.includes(loop.name))
      if (holder) throw fail(`${loop.node} on ${loop.backingFile} is used by mapping ${holder.name}`, ['close that mapping first'])
      ctx.log(`detaching stale ${loop.node}`)
      await ctx.runner.run({ argv: ['losetup', '--detach', loop.node] })
    }
  }

  const attach = async (file: string): Promise<string> => {
    const r = await ctx.runner.run({ argv: ['losetup', '--find', '--show', '--', file] })
    return ctx.runner.planning ? '$LOOP' : r.stdout.trim()
  }

  const sectorsOf = (file: string): number => (ctx.runner.planning && !existsSync(file) ? crypt.sizeMiB * 2048 : Math.floor(statSync(file).size / 512))

  /** opens file as our mapping; returns the loop device */
  const open = async (file: string): Promise<string> => {
    const loop = await attach(file)
    try {
      await scheme.open(ctx, ref, loop, dm, sectorsOf(file))
    } catch (e) {
      await ctx.runner.run({ argv: ['losetup', '--detach', loop] }).catch(() => undefined)
      throw e
    }
    return loop
  }

  const close = async (loop: string): Promise<void> => {
    await scheme.close(ctx, ref, dm)
    await ctx.runner.run({ argv: ['losetup', '--detach', loop] })
  }

  // in a plan nothing is formatted: assume the filesystem exists once mkfs is planned
  let plannedFs = false
  const hasExt4 = (file: string): boolean =>
    ctx.runner.planning ? plannedFs || existsSync(marker) : readExt4(mapper, statSync(file).size) !== undefined

  const mkfs = (): Promise<unknown> => ctx.runner.run({
    // lazy init: the same on-disk format as Pantavisor's "mkfs.ext4 -b 1024", without writing
    // every inode table and the whole journal up front (the image is fresh, nothing stale to replay)
    argv: ['mkfs.ext4', '-q', '-b', '1024', '-E', 'lazy_itable_init=1,lazy_journal_init=1', '--', mapper], timeoutMs: 30 * 60_000,
  })

  /** first init; returns the loop device when it leaves the new image open, ready to mount */
  const firstInit = async (): Promise<string | undefined> => {
    const keyFile = scheme.keyFile(ref)
    const hasKey = existsSync(keyFile)
    if (!hasKey && existsSync(image)) {
      throw fail(`${image} exists but its key ${keyFile} does not: it may hold data under a lost key`,
        ['pvdisk never creates a new key for an existing image; restore the key file, or move the image away to start afresh'])
    }
    const progress = ctx.runner.planning ? undefined : createProgress(`first init of ${disk.name} (${crypt.sizeMiB} MiB)`, 4)
    progress?.update(0, 'key')
    act.mkdirp(ctx, ref.dir, 0o700)
    if (!hasKey) await scheme.createKey(ctx, ref)
    progress?.update(1, 'reserving space')
    let loop: string | undefined
    if (!existsSync(image)) {
      // <image>.new never held data: it is renamed into place only once it has a filesystem
      const bytes = crypt.sizeMiB * MIB
      try {
        await ctx.runner.run({ argv: ['fallocate', '--length', String(bytes), '--', fresh] })
      } catch (e) {
        ctx.log(`warning: fallocate failed (${(e as Error).message}); the image will be sparse`)
        await ctx.runner.run({ argv: ['truncate', '--size', String(bytes), '--', fresh] })
      }
      progress?.update(2, 'opening')
      loop = await open(fresh)
      try {
        progress?.update(3, 'mkfs.ext4')
        if (!hasExt4(fresh)) await mkfs()
        plannedFs = true
        if (!ctx.runner.planning) fsyncPath(fresh)
        act.rename(ctx, fresh, image) // the open mapping follows the file
      } catch (e) {
        await close(loop).catch(() => undefined)
        throw e
      }
    } else {
      // renamed but not marked: it has its filesystem already, and is never formatted again
      loop = await open(image)
      if (!hasExt4(image)) {
        await close(loop)
        throw fail(`${image} has no init_done marker and its key does not reveal a filesystem`,
          ['it is left untouched; check the key file, or move the image away to start afresh'])
      }
    }
    if (!ctx.runner.planning) fsyncPath(ref.dir)
    act.touch(ctx, marker)
    if (!ctx.runner.planning) fsyncPath(ref.dir)
    progress?.update(4)
    progress?.finish()
    ctx.log(`initialised ${image} (${crypt.sizeMiB} MiB)`)
    return loop
  }

  const mountCmd = ['mount', '-t', 'ext4', '-o', options, '--', mapper, mnt]
  const mount = async (): Promise<void> => {
    act.mkdirp(ctx, mnt)
    try {
      await ctx.runner.run({ argv: mountCmd })
    } catch (first) {
      ctx.log(`mount failed (${(first as Error).message}); running fsck.ext4 -y once`)
      const fsck = await ctx.runner.run({ argv: ['fsck.ext4', '-y', '--', mapper], okCodes: [0, 1, 2, 4, 8], timeoutMs: 30 * 60_000 })
      try {
        await ctx.runner.run({ argv: mountCmd })
      } catch (second) {
        throw fail(`cannot mount ${mapper} even after fsck: ${(second as Error).message}`,
          [`fsck.ext4 exit status ${fsck.code}:`, ...fsck.stdout.trim().split('\n').slice(-8), ...fsck.stderr.trim().split('\n').slice(-4)])
      }
    }
  }

  return {
    tools: () => [...scheme.tools, 'losetup', 'mount', 'umount', 'mkfs.ext4', 'fsck.ext4', 'fallocate', 'truncate'],
    mountSpec: () => ({ source: mapper, target: mnt, fsType: 'ext4', options: options.split(',') }),
    status,
    up: async () => {
      const s = status()
      if (s.state === 'mounted') return 'already mounted'
      if (s.problems.length > 0) throw fail(s.problems.join('; '), [`unmount ${mnt} first`])
      if (disk.fields.migrate_keyblob === 'yes' && !existsSync(scheme.keyFile(ref)) && existsSync(join(ref.dir, crypt.keyName))) {
        throw fail('NXP to mainline key migration (migrate_keyblob) is not done by pvdisk', ['boot Pantavisor once to migrate the key, or remove migrate_keyblob'])
      }
      await cleanStale()
      let loop: string | undefined
      if (existsSync(marker)) {
        if (!existsSync(image)) throw fail(`${marker} says the disk was initialised, but ${image} is missing`, ['restore the image; pvdisk will not create an empty one in its place'])
        if (!existsSync(scheme.keyFile(ref))) throw fail(`the key ${scheme.keyFile(ref)} of initialised image ${image} is missing`, ['restore the key file; the image is left untouched'])
      } else {
        loop = await firstInit()
      }
      loop ??= await open(image)
      if (!hasExt4(image)) {
        await close(loop)
        throw fail(`the key does not decrypt ${image}: no ext4 filesystem behind it`,
          ['wrong key file, or not a pvdisk/Pantavisor image; nothing was written to it'])
      }
      try {
        await mount()
      } catch (e) {
        await close(loop).catch(() => undefined)
        throw e
      }
      if (!ctx.runner.planning && status().state !== 'mounted') throw fail(`mount reported success but ${mnt} is not ${mapper}`)
      return `mounted ${image} at ${mnt}`
    },
    down: async () => {
      const mapping = ourDm()
      const at = mountAt(ctx.kernel.mounts(), mnt)
      if (at && mapping && isMountOf(at, mapping)) await ctx.runner.run({ argv: ['umount', '--', mnt] })
      else if (at) throw fail(`${mnt} is mounted from ${at.source}, not from this disk`, ['leaving it alone'])
      if (mapping) await scheme.close(ctx, ref, dm)
      for (const loop of [...loopsOf(image), ...loopsOf(fresh)]) await ctx.runner.run({ argv: ['losetup', '--detach', loop.node] })
      return mapping || at ? `closed ${basename(image)}` : 'not open'
    },
  }
}
