// dm-crypt disks as a backend: first init when needed, open, mount, unmount, close. The
// steps live in crypt-device.ts and crypt-init.ts; this file orders them and refuses
// whatever could lose data (a missing key or image, a key that reveals no filesystem).
import { existsSync } from 'node:fs'
import { basename, join } from 'node:path'
import type { DiskEntry } from '../config/check-device.js'
import type { CryptPath } from '../config/crypt-path.js'
import { isMountOf, mountAt } from '../host/kernel.js'
import { refuseLinksBelow } from '../host/no-follow.js'
import { act, type Backend, type DiskContext } from './context.js'
import { CryptDevice } from './crypt-device.js'
import { firstInit } from './crypt-init.js'
import { recoverLuks2 } from './crypt-luks2-recover.js'

export { dmNameOf } from './crypt-device.js'

const up = async (dev: CryptDevice): Promise<string> => {
  const { disk, scheme, ref, image, marker, mnt, mapper, ctx } = dev
  const s = dev.status()
  if (s.state === 'mounted') return 'already mounted'
  // the image, its key files and its marker, and the mount point: nothing reached through a link
  for (const [p, what] of [[image, 'image'], [dev.fresh, 'image'], [scheme.keyFile(ref), 'key'], [marker, 'marker'], [mnt, 'mount point']] as const) refuseLinksBelow(ctx.root, p, `the ${what}`)
  if (s.problems.length > 0) throw dev.fail(s.problems.join('; '), [`unmount ${mnt} first`])
  if (disk.fields.migrate_keyblob === 'yes' && !existsSync(join(ref.dir, `${dev.crypt.keyName}.bb`)) && existsSync(join(ref.dir, dev.crypt.keyName))) {
    throw dev.fail('NXP to mainline key migration (migrate_keyblob) is not done by pvdisk', ['boot Pantavisor once to migrate the key, or remove migrate_keyblob'])
  }
  await dev.cleanStale()
  let loop: string | undefined
  if (existsSync(marker)) {
    if (!existsSync(image)) throw dev.fail(`${marker} says the disk was initialised, but ${image} is missing`, ['restore the image; pvdisk will not create an empty one in its place'])
    if (!existsSync(scheme.keyFile(ref))) {
      throw dev.fail(`the key ${scheme.keyFile(ref)} of initialised image ${image} is missing`,
        ['restore the key file; the image is left untouched', ...(disk.type === 'dm-crypt-luks2' ? [`or run "pvdisk disk recover ${disk.name}" with the recovery key: it makes a new key file`] : [])])
    }
  } else {
    loop = await firstInit(dev)
  }
  loop ??= await dev.open(image)
  if (!dev.hasExt4(image)) {
    await dev.close(loop)
    throw dev.fail(`the key does not decrypt ${image}: no ext4 filesystem behind it`,
      ['wrong key file, or not a pvdisk/Pantavisor image; nothing was written to it'])
  }
  try {
    await dev.mount()
  } catch (e) {
    await dev.close(loop).catch(() => undefined)
    throw e
  }
  if (!ctx.runner.planning && dev.status().state !== 'mounted') {
    // never leave a mount behind a failed check
    await ctx.runner.run({ argv: ['umount', '--', mnt] }).catch(() => undefined)
    await dev.close(loop).catch(() => undefined)
    throw dev.fail(`mount reported success but ${mnt} is not ${mapper}; unmounted and closed again`)
  }
  return `mounted ${image} at ${mnt}`
}

const down = async (dev: CryptDevice): Promise<string> => {
  const { ctx, mnt, image } = dev
  const mapping = dev.ourDm()
  const at = mountAt(ctx.kernel.mounts(), mnt)
  if (at && mapping && isMountOf(at, mapping)) await ctx.runner.run({ argv: ['umount', '--', mnt] })
  else if (at) throw dev.fail(`${mnt} is mounted from ${at.source}, not from this disk`, ['leaving it alone'])
  if (at || existsSync(mnt)) act.removeMountPoint(ctx, mnt)
  if (mapping) await dev.scheme.close(ctx, dev.ref, dev.dm)
  for (const loop of [...dev.loopsOf(image), ...dev.loopsOf(dev.fresh)]) await ctx.runner.run({ argv: ['losetup', '--detach', loop.node] })
  return mapping || at ? `closed ${basename(image)}` : 'not open'
}

export const cryptBackend = (ctx: DiskContext, disk: DiskEntry, crypt: CryptPath): Backend => {
  const dev = new CryptDevice(ctx, disk, crypt)
  return {
    tools: () => [...dev.scheme.tools, 'losetup', 'mount', 'umount', 'mkfs.ext4', 'fsck.ext4', 'fallocate', 'truncate'],
    mountSpec: () => ({ source: dev.mapper, target: dev.mnt, fsType: 'ext4', options: dev.options.split(',') }),
    status: () => dev.status(),
    up: () => up(dev),
    down: () => down(dev),
    ...(disk.type === 'dm-crypt-luks2' ? { recover: (key: Buffer) => recoverLuks2(dev, key, () => up(dev)) } : {}),
  }
}
