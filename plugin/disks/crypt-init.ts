// First init of a dm-crypt disk. Safe to interrupt anywhere: the key is written before
// anything else and never replaced; the image is prepared as <image>.new and renamed into
// place only after mkfs; <key>.init_done is written last. Nothing that may hold data is
// ever formatted.
import { existsSync, rmSync, statfsSync } from 'node:fs'
import { dirname } from 'node:path'
import { errorSaid } from '../errors.js'
import { createProgress } from '../host/progress.js'
import { act, type DiskContext } from './context.js'
import { fsyncPath, type CryptDevice } from './crypt-device.js'
import { isLuks2 } from './crypt-luks2.js'

const MIB = 1024 * 1024

const freeBytes = (dir: string): number | undefined => {
  try {
    const st = statfsSync(dir)
    return st.bavail * st.bsize
  } catch {
    return undefined
  }
}

/** <image>.new never held data: a half-made one goes */
const removeHalfImage = (ctx: DiskContext, file: string): void => {
  ctx.runner.note(`remove ${file}`)
  if (!ctx.runner.planning) rmSync(file, { force: true })
}

/** a new image: space reserved, opened, formatted, renamed into place; returns the open loop */
const createImage = async (dev: CryptDevice, progress: ReturnType<typeof createProgress> | undefined): Promise<string> => {
  const { ctx, fresh, image } = dev
  // <image>.new never held data: it is renamed into place only once it has a filesystem
  const bytes = dev.crypt.sizeMiB * MIB
  const format = isLuks2(dev.scheme) ? dev.scheme.format : undefined
  // a LUKS2 header on a half-made <image>.new has keys nobody kept: start that file afresh
  if (format && existsSync(fresh)) removeHalfImage(ctx, fresh)
  try {
    await ctx.runner.run({ argv: ['fallocate', '--length', String(bytes), '--', fresh] })
  } catch (e) {
    // only a filesystem without fallocate gets a sparse image, and only when the space is there now;
    // out of space (or any other failure) is an error: a sparse image on a full disk loses writes later
    const said = errorSaid(e)
    const unsupported = /not supported/i.test(said)
    if (!unsupported) {
      removeHalfImage(ctx, fresh)
      throw dev.fail(`cannot reserve ${dev.crypt.sizeMiB} MiB for ${fresh}: ${(e as Error).message}`, ['free space on that filesystem, or declare a smaller size; nothing was created'])
    }
    const free = freeBytes(dirname(fresh))
    if (!ctx.runner.planning && free !== undefined && free < bytes) {
      removeHalfImage(ctx, fresh)
      throw dev.fail(`${dirname(fresh)} has ${Math.floor(free / MIB)} MiB free, less than the ${dev.crypt.sizeMiB} MiB the image needs (its filesystem cannot reserve space)`,
        ['free space, or declare a smaller size; nothing was created'])
    }
    ctx.log(`warning: ${dirname(fresh)} cannot reserve space (fallocate not supported); the image is sparse, with ${free === undefined ? 'unknown' : `${Math.floor(free / MIB)} MiB`} free now`)
    await ctx.runner.run({ argv: ['truncate', '--size', String(bytes), '--', fresh] })
  }
  if (format) {
    progress?.update(2, 'luksFormat')
    await format(ctx, dev.ref, fresh)
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
