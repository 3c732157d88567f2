// `pvdisk disk recover` for a dm-crypt-luks2 disk: the recovery key proves itself against
// the header (cryptsetup --test-passphrase), then the pins are bound again (a new Clevis
// keyslot first, the old ones unbound after) or, for "keyfile", a new key file gets a new
// keyslot before the old slots go. Interrupted anywhere, the disk still opens with the
// recovery key and a rerun finishes the job. Header changes work on the image file itself.
import { existsSync } from 'node:fs'
import { act } from './context.js'
import type { CryptDevice } from './crypt-device.js'
import { isLuks2, keyfileOf, LUKS2_PBKDF, luks2Slots } from './crypt-luks2.js'
import { writeNewKey } from './crypt-keys.js'
import { readRecoveryKey } from './recovery-key.js'

const slotOpenedBy = async (dev: CryptDevice, key: { bytes: Buffer } | { file: string }): Promise<string | undefined> => {
  const r = await dev.ctx.runner.run({
    argv: ['cryptsetup', 'open', '--test-passphrase', '-v', `--key-file=${'file' in key ? key.file : '-'}`, '--', dev.image],
    ...('bytes' in key ? { input: key.bytes, secretInput: true } : {}), okCodes: [0, 1, 2],
  })
  return dev.ctx.runner.planning ? '$SLOT' : /Key slot ([0-9]+) unlocked/.exec(r.stdout + r.stderr)?.[1]
}

export const recoverLuks2 = async (dev: CryptDevice, given: Buffer, up: () => Promise<string>): Promise<string> => {
  const { ctx, image } = dev
  const scheme = dev.scheme
  if (!isLuks2(scheme)) throw dev.fail('is not a LUKS2 disk: it has no recovery key')
  const recovery = readRecoveryKey(given)
  try {
    if (!existsSync(image) || !existsSync(dev.marker)) throw dev.fail(`${image} is not an initialised disk: there is nothing to recover`)
    const recoverySlot = await slotOpenedBy(dev, { bytes: recovery })
    if (recoverySlot === undefined) throw dev.fail('that is not the recovery key of this disk', ['nothing was changed'])
    const spec = scheme.spec
    if (spec.kind === 'clevis') {
      const before = [...(luks2Slots(image)?.bound ?? [])]
      await scheme.bind(ctx, image, recovery)
      for (const slot of before) await ctx.runner.run({ argv: ['clevis', 'luks', 'unbind', '-f', '-d', image, '-s', slot] })
      // a disk that was "keyfile" before: its key file's slot and the file go, or the plain key would still open it
      const now = luks2Slots(image)
      for (const slot of now?.slots ?? []) {
        if (slot !== recoverySlot && !now?.bound.has(slot)) await ctx.runner.run({ argv: ['cryptsetup', 'luksKillSlot', '--batch-mode', '--', image, slot] })
      }
      if (existsSync(keyfileOf(dev.ref))) act.remove(ctx, keyfileOf(dev.ref))
    } else {
      const keyFile = keyfileOf(dev.ref)
      const fresh = `${keyFile}.new`
      await writeNewKey(ctx, fresh)
      await ctx.runner.run({ argv: ['cryptsetup', 'luksAddKey', '--batch-mode', ...LUKS2_PBKDF, '--key-file=-', `--new-keyfile=${fresh}`, '--', image], input: recovery, secretInput: true })
      const keySlot = await slotOpenedBy(dev, { file: fresh })
      act.rename(ctx, fresh, keyFile)
      for (const slot of luks2Slots(image)?.slots ?? []) {
        if (slot !== recoverySlot && slot !== keySlot) await ctx.runner.run({ argv: ['cryptsetup', 'luksKillSlot', '--batch-mode', '--', image, slot] })
      }
    }
    return `bound again to ${spec.summary}; ${await up()}`
  } finally {
    recovery.fill(0)
  }
}
