// One dm-crypt disk's facts (image, key files, marker, mapping, mount point) and the device
// steps every operation is made of: loop devices, the mapping, the ext4 probe, mkfs, mount.
// fsck never runs on a device that does not show an ext4 superblock (with plain dm-crypt a
// wrong key still opens).
import { crypto } from '../host/lazy-crypto.js'
import { existsSync, realpathSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { DiskEntry } from '../config/check-device.js'
import type { CryptPath } from '../config/crypt-path.js'
import { PvdiskError } from '../errors.js'
import { isMountOf, mountAt, type DmDevice, type LoopDevice } from '../host/kernel.js'
import { readExt4 } from './ext4.js'
import { act, fsUsage, hostPath, mountPointOf, type DiskContext, type DiskStatus } from './context.js'
import { schemeOf, type CryptKeyRef, type CryptScheme } from './crypt-schemes.js'
import { isLuks2, keyfileOf, luks2HasRecovery, luks2Scheme } from './crypt-luks2.js'

/** unique per disk whatever the image is called (Pantavisor's image-name-derived names collide) */
export const dmNameOf = (disk: DiskEntry, image: string): string =>
  `pvdisk-${disk.name.replace(/[^A-Za-z0-9_.+-]/g, '_').slice(0, 80)}-${crypto().createHash('sha256').update(image).digest('hex').slice(0, 8)}`

export { fsyncPath } from '../host/atomic-write.js'

const realOrSame = (p: string): string => {
  try {
    return realpathSync(p)
  } catch {
    return p
  }
}

export class CryptDevice {
  readonly scheme: CryptScheme
  readonly image: string
  /** the image while first init prepares it; renamed into place only once it has a filesystem */
  readonly fresh: string
  readonly ref: CryptKeyRef
  readonly marker: string
  readonly dm: string
  readonly mapper: string
  readonly mnt: string
  readonly options: string
  /** in a plan nothing is formatted: the filesystem counts as there once mkfs is planned */
  plannedFs = false

  constructor(readonly ctx: DiskContext, readonly disk: DiskEntry, readonly crypt: CryptPath) {
    this.scheme = disk.type === 'dm-crypt-luks2'
      ? luks2Scheme(disk, typeof disk.fields.recovery_key === 'string' ? hostPath(ctx, disk.fields.recovery_key) : undefined)
      : schemeOf(disk.type, typeof disk.fields.mode === 'string' ? disk.fields.mode : undefined)
    this.image = hostPath(ctx, crypt.image)
    this.fresh = `${this.image}.new`
    this.ref = { dir: dirname(this.image), keyName: crypt.keyName }
    this.marker = join(this.ref.dir, `${crypt.keyName}.init_done`)
    this.dm = dmNameOf(disk, this.image)
    this.mapper = `/dev/mapper/${this.dm}`
    this.mnt = mountPointOf(ctx, disk)
    this.options = ['noatime', ...[disk.fields.options, disk.fields.mount_options].filter((o): o is string => typeof o === 'string' && o !== '')].join(',')
  }

  fail(message: string, details: string[] = []): PvdiskError {
    return new PvdiskError('EDISK', `disk "${this.disk.name}": ${message}`, details)
  }

  ourDm(): DmDevice | undefined {
    return this.ctx.kernel.dms().find(d => d.name === this.dm)
  }

  loopsOf(file: string): LoopDevice[] {
    const real = realOrSame(file)
    return this.ctx.kernel.loops().filter(l => l.backingFile === real || l.backingFile === file)
  }

  status(): DiskStatus {
    const base = { name: this.disk.name, type: this.disk.type, mountPoint: this.mnt, backing: this.image, problems: [] as string[], ...this.unlockFacts() }
    const mapping = this.ourDm()
    const at = mountAt(this.ctx.kernel.mounts(), this.mnt)
    if (mapping && at && isMountOf(at, mapping)) return { ...base, state: 'mounted', ...fsUsage(this.mnt) }
    if (at) base.problems.push(`${this.mnt} is mounted from ${at.source}, not ${this.mapper}`)
    if (mapping) return { ...base, state: 'open' }
    const ready = existsSync(this.image) && existsSync(this.marker)
    return { ...base, state: ready ? 'provisioned' : 'absent' }
  }

  private unlockFacts(): { unlock?: string, recovery?: boolean, keyProblems?: string[] } {
    if (!isLuks2(this.scheme)) return {}
    const spec = this.scheme.spec
    const stale = this.staleKeyProblems()
    return { unlock: spec.summary, recovery: luks2HasRecovery(this.image, spec) ?? false, ...(stale.length > 0 ? { keyProblems: stale } : {}) }
  }

  /** a key file left from a "keyfile" unlock after the disk was declared with pins */
  staleKeyProblems(): string[] {
    if (!isLuks2(this.scheme) || this.scheme.spec.kind !== 'clevis') return []
    const file = keyfileOf(this.ref)
    return existsSync(file) ? [`${file} is left from a "keyfile" unlock: the plain key may still open the disk; run pvdisk disk recover ${this.disk.name} to re-bind and remove it`] : []
  }

  /** after an unclean shutdown: our mapping not mounted, loop devices left on the image */
  async cleanStale(): Promise<void> {
    const mapping = this.ourDm()
    if (mapping) {
      const busy = this.ctx.kernel.mounts().find(m => isMountOf(m, mapping))
      if (busy) throw this.fail(`${this.mapper} is mounted at ${busy.mountPoint}, not at ${this.mnt}`, [`unmount ${busy.mountPoint} first`])
      this.ctx.log(`closing stale mapping ${this.dm}`)
      await this.scheme.close(this.ctx, this.ref, this.dm)
    }
    for (const loop of [...this.loopsOf(this.image), ...this.loopsOf(this.fresh)]) {
      const holder = this.ctx.kernel.dms().find(d => d.slaves.includes(loop.name))
      if (holder) throw this.fail(`${loop.node} on ${loop.backingFile} is used by mapping ${holder.name}`, ['close that mapping first'])
      this.ctx.log(`detaching stale ${loop.node}`)
      await this.ctx.runner.run({ argv: ['losetup', '--detach', loop.node] })
    }
  }

  private async attach(file: string): Promise<string> {
    const r = await this.ctx.runner.run({ argv: ['losetup', '--find', '--show', '--', file] })
    return this.ctx.runner.planning ? '$LOOP' : r.stdout.trim()
  }

  private sectorsOf(file: string): number {
    return this.ctx.runner.planning && !existsSync(file) ? this.crypt.sizeMiB * 2048 : Math.floor(statSync(file).size / 512)
  }

  /** opens file as our mapping; returns the loop device */
  async open(file: string): Promise<string> {
    const loop = await this.attach(file)
    try {
      await this.scheme.open(this.ctx, this.ref, loop, this.dm, this.sectorsOf(file))
    } catch (e) {
      await this.ctx.runner.run({ argv: ['losetup', '--detach', loop] }).catch(() => undefined)
      throw e
    }
    return loop
  }

  async close(loop: string): Promise<void> {
    await this.scheme.close(this.ctx, this.ref, this.dm)
    await this.ctx.runner.run({ argv: ['losetup', '--detach', loop] })
  }

  hasExt4(file: string): boolean {
    return this.ctx.runner.planning ? this.plannedFs || existsSync(this.marker) : readExt4(this.mapper, statSync(file).size) !== undefined
  }

  mkfs(): Promise<unknown> {
    return this.ctx.runner.run({
      // lazy init: the same on-disk format as Pantavisor's "mkfs.ext4 -b 1024", without writing
      // every inode table and the whole journal up front (the image is fresh, nothing stale to replay)
      // (LUKS2 is pvdisk's own: it may pick 4 KiB sectors, so ext4 takes its own block size there)
      argv: ['mkfs.ext4', '-q', ...(isLuks2(this.scheme) ? [] : ['-b', '1024']), '-E', 'lazy_itable_init=1,lazy_journal_init=1', '--', this.mapper], timeoutMs: 30 * 60_000,
    })
  }

  /** mounts the open mapping, with one fsck.ext4 -y and a second try when the first fails */
  async mount(): Promise<void> {
    const mountCmd = ['mount', '-t', 'ext4', '-o', this.options, '--', this.mapper, this.mnt]
    act.mkdirp(this.ctx, this.mnt)
    try {
      await this.ctx.runner.run({ argv: mountCmd })
    } catch (first) {
      this.ctx.log(`mount failed (${(first as Error).message}); running fsck.ext4 -y once`)
      const fsck = await this.ctx.runner.run({ argv: ['fsck.ext4', '-y', '--', this.mapper], okCodes: [0, 1, 2, 4, 8], timeoutMs: 30 * 60_000 })
      try {
        await this.ctx.runner.run({ argv: mountCmd })
      } catch (second) {
        throw this.fail(`cannot mount ${this.mapper} even after fsck: ${(second as Error).message}`,
          [`fsck.ext4 exit status ${fsck.code}:`, ...fsck.stdout.trim().split('\n').slice(-8), ...fsck.stderr.trim().split('\n').slice(-4)])
      }
    }
  }
}
