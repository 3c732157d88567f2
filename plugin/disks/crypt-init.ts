// First init of a dm-crypt disk. Safe to interrupt anywhere: the key is written before
// anything else and never replaced; the image is prepared as <image>.new and renamed into
// place only after mkfs; <key>.init_done is written last. Nothing that may hold data is
// ever formatted.
import { existsSync } from 'node:fs'
import { createProgress } from '../host/progress.js'
import { act } from './context.js'
import { fsyncPath, type CryptDevice } from './crypt-device.js'

const MIB = 1024 * 1024

/** a new image: space reserved, opened, formatted, renamed into place; returns the open loop */
const createImage = async (dev: CryptDevice, progress: ReturnType<typeof createProgress> | undefined): Promise<string> => {
  const { ctx, fresh, image } = dev
  // <image>.new never held data: it is renamed into place only once it has a filesystem
  const bytes = dev.crypt.sizeMiB * MIB
  try {
    await ctx.runner.run({ argv: ['fallocate', '--length', String(bytes), '--', fresh] })
  } catch (e) {
    ctx.log(`warning: fallocate failed (${(e as Error).message}); the image will be sparse`)
    await ctx.runner.run({ argv: ['truncate', '--size', String(bytes), '--', fresh] })
  }
  progress?.update(2, 'opening')
  const loop = await dev.open(fresh)
  try {
    progress?.update(3, 'mkfs.ext4')
    if (!dev.hasExt4(fresh)) await dev.mkfs()
    dev.plannedFs = true
    if (!ctx.runner.planning) fsyncPath(fresh)
    act.rename(ctx, fresh, image) // the open mapping follows the file
  } catch (e) {
    await dev.close(loop).catch(() => undefined)
    throw e
  }
  return loop
}

/** first init; returns the loop device when it leaves the new image open, ready to mount */
export const firstInit = async (dev: CryptDevice): Promise<string | undefined> => {
  const { ctx, scheme, ref, image, marker, crypt } = dev
  const keyFile = scheme.keyFile(ref)
  const hasKey = existsSync(keyFile)
  if (!hasKey && existsSync(image)) {
    throw dev.fail(`${image} exists but its key ${keyFile} does not: it may hold data under a lost key`,
      ['pvdisk never creates a new key for an existing image; restore the key file, or move the image away to start afresh'])
  }
  const progress = ctx.runner.planning ? undefined : createProgress(`first init of ${dev.disk.name} (${crypt.sizeMiB} MiB)`, 4)
  progress?.update(0, 'key')
  act.mkdirp(ctx, ref.dir, 0o700)
  if (!hasKey) await scheme.createKey(ctx, ref)
  progress?.update(1, 'reserving space')
  let loop: string | undefined
  if (!existsSync(image)) {
    loop = await createImage(dev, progress)
  } else {
    // renamed but not marked: it has its filesystem already, and is never formatted again
    loop = await dev.open(image)
    if (!dev.hasExt4(image)) {
      await dev.close(loop)
      throw dev.fail(`${image} has no init_done marker and its key does not reveal a filesystem`,
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
