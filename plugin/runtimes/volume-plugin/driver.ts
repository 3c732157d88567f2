// The Docker VolumeDriver protocol (plugins_volume.md): volumes created with
// `docker volume create -d pvdisk -o app=APP -o persistence=TYPE[@DISK] NAME` live where
// PRODUCT.md lays out app volumes. Mounts are counted per caller ID, so one container's
// Unmount never affects another; the list and the counts are written atomically and
// survive a plugin restart, and are reconciled with the kernel when the plugin starts.
// This file is the protocol and the volume records; driver-mounts.ts does the mounting.
import { resolveDisk, type DiskIndex } from '../../config/check-device.js'
import type { DiskContext } from '../../disks/context.js'
import { isProvisionedByPvdisk } from '../../disks/engine.js'
import { isPvdiskError, PvdiskError } from '../../errors.js'
import { nameError } from '../../config/path-rules.js'
import { parsePersistenceValue } from '../../config/persistence.js'
import { defaultDisk } from '../../volumes/volumes.js'
import { knownPlacements, refuseIntoBoot } from '../../volumes/migrate.js'
import { asAppVolume, hasLostItsMount, mountpointOf, mountVolume, releaseVolume, verityOf, type MountEnv } from './driver-mounts.js'
import { driverStateWriter, loadDriverState, type DriverState, type DriverVolume } from './driver-state.js'
import type { GroupedFile } from '../../host/atomic-write.js'

export type { DriverVolume } from './driver-state.js'

export interface DriverOptions {
  ctx: DiskContext
  disks: DiskIndex
  revision: string
  /** where the volume list and mount counts are kept */
  stateFile: string
  /** the state served, for verity volumes */
  state?: string
  /** one call per failed request, for the operator's log */
  onFailure?: (failure: { endpoint: string, volume: string, caller: string, reason: string }) => void
}

export type Reply = Record<string, unknown> & { Err?: string }

/** a reply that may be sent once the state holding its change is on disk */
interface Durable {
  reply: Reply
  durable: Promise<void>
}

const isDurable = (r: Reply | Durable): r is Durable => 'durable' in r && r.durable instanceof Promise

const DEFAULT_APP = 'docker' // volumes created without -o app=

export class VolumeDriver {
  private readonly opts: DriverOptions
  private readonly env: MountEnv
  private state: DriverState
  private queue: Promise<unknown> = Promise.resolve()
  /**
   * Group commit: one atomic write holds every change made before it started, so requests
   * that arrive together share a write, and each is answered only once its change is on disk.
   */
  private readonly stateWrites: GroupedFile

  constructor(opts: DriverOptions) {
    this.opts = opts
    this.env = { ctx: opts.ctx, disks: opts.disks, revision: opts.revision, ...(opts.state !== undefined ? { state: opts.state } : {}) }
    this.state = loadDriverState(opts.stateFile, m => opts.ctx.log(`warning: ${m}`))
    // records name their disk canonically (an alias was recorded before): the disk's mount point is then found
    for (const v of Object.values(this.state.volumes)) {
      const disk = v.disk === undefined ? undefined : resolveDisk(opts.disks, v.disk)
      if (disk) v.disk = disk.name
    }
    this.stateWrites = driverStateWriter(opts.ctx.root, opts.stateFile, () => this.state)
  }

  /** after a reboot or a crash: boot tmpfs volumes that are no longer mounted have no users */
  async reconcile(): Promise<void> {
    const mounts = this.opts.ctx.kernel.mounts()
    for (const v of Object.values(this.state.volumes)) {
      if (v.mountedBy.length > 0 && hasLostItsMount(this.env, v, mounts)) v.mountedBy = []
    }
    await this.save()
  }

  private save(): Promise<void> {
    return this.stateWrites.write()
  }

  /** changes to the state and to the disks run one at a time; the next starts while this one's state is being written */
  handle(endpoint: string, body: Record<string, unknown>): Promise<Reply> {
    const run = this.queue.then(() => this.dispatch(endpoint, body))
    this.queue = run.catch(() => undefined)
    return run.then(r => (isDurable(r) ? r.durable.then(() => r.reply) : r)).catch((e: unknown) => ({ Err: isPvdiskError(e) ? [e.message, ...e.details].join('; ') : `pvdisk: ${(e as Error).message}` })).then(reply => {
      if (reply.Err !== undefined && reply.Err !== '') {
        this.opts.onFailure?.({ endpoint, volume: typeof body.Name === 'string' ? body.Name : '', caller: typeof body.ID === 'string' ? body.ID : '', reason: reply.Err })
      }
      return reply
    })
  }

  private async dispatch(endpoint: string, body: Record<string, unknown>): Promise<Reply | Durable> {
    const name = typeof body.Name === 'string' ? body.Name : ''
    const id = typeof body.ID === 'string' ? body.ID : ''
    switch (endpoint) {
      case '/Plugin.Activate': return { Implements: ['VolumeDriver'] }
      case '/VolumeDriver.Capabilities': return { Capabilities: { Scope: 'local' } }
      case '/VolumeDriver.Create': return this.create(name, (body.Opts ?? {}) as Record<string, unknown>)
      case '/VolumeDriver.Remove': return this.remove(name)
      case '/VolumeDriver.Mount': return this.mount(name, id)
      case '/VolumeDriver.Unmount': return this.unmount(name, id)
      case '/VolumeDriver.Path': return { Mountpoint: this.mountpoint(this.known(name)) }
      case '/VolumeDriver.Get': {
        const v = this.known(name)
        return { Volume: { Name: v.name, Mountpoint: this.mountpoint(v), CreatedAt: v.createdAt, Status: { app: v.app, persistence: v.persistence, disk: v.disk ?? '', mounts: v.mountedBy.length } } }
      }
      case '/VolumeDriver.List': return { Volumes: Object.values(this.state.volumes).map(v => ({ Name: v.name, Mountpoint: this.mountpoint(v) })) }
      default: return { Err: `pvdisk does not implement ${endpoint}` }
    }
  }

  private known(name: string): DriverVolume {
    const v = this.state.volumes[name]
    if (!v) throw new PvdiskError('EUSAGE', `no pvdisk volume named "${name}"`, ['create it with docker volume create -d pvdisk'])
    return v
  }

  private mountpoint(v: DriverVolume): string {
    return mountpointOf(this.env, v)
  }

  private async create(name: string, o: Record<string, unknown>): Promise<Reply | Durable> {
    const bad = nameError(name, 'volume')
    if (bad) return { Err: `volume name ${JSON.stringify(name)}: ${bad.message}` }
    for (const k of Object.keys(o)) if (!['app', 'persistence', 'verity'].includes(k)) return { Err: `unknown option "${k}": pvdisk volumes take -o app=APP and -o persistence=TYPE[@DISK], or -o app=APP -o verity=VOLUME` }
    const app = typeof o.app === 'string' ? o.app : DEFAULT_APP
    const appBad = nameError(app, 'app')
    if (appBad) return { Err: `-o app=${app}: ${appBad.message}` }
    if (o.verity !== undefined) return this.createVerity(name, app, o)
    const parsed = parsePersistenceValue(typeof o.persistence === 'string' ? o.persistence : 'permanent')
    if (!parsed.ok) return { Err: `-o persistence: ${parsed.message}; write permanent, revision or boot, optionally @DISK` }
    // no @DISK: the disk marked "default": "yes", as pvdisk up places such volumes
    const disk = parsed.disk === undefined ? defaultDisk(this.opts.disks) : resolveDisk(this.opts.disks, parsed.disk)
    if (parsed.disk !== undefined && !disk) return { Err: `-o persistence: unknown disk "${parsed.disk}"; disks: ${[...this.opts.disks.disks.keys()].join(', ') || 'none'}` }
    if (disk && !isProvisionedByPvdisk(disk)) return { Err: `disk "${disk.name}" (${disk.type}) cannot hold pvdisk volumes` }
    const existing = this.state.volumes[name]
    const wanted = { app, persistence: parsed.persistence, disk: disk?.name } // an alias is recorded as the disk's name
    if (existing) {
      if (existing.app === wanted.app && existing.persistence === wanted.persistence && existing.disk === wanted.disk) return {}
      return { Err: `volume "${name}" already exists with app=${existing.app} persistence=${existing.persistence}${existing.disk ? `@${existing.disk}` : ''}` }
    }
    const v: DriverVolume = { name, app, persistence: parsed.persistence, mountedBy: [], createdAt: new Date().toISOString() }
    if (disk) v.disk = disk.name
    // created again as boot where it held permanent data: refused now, not at its first Mount
    refuseIntoBoot(this.opts.ctx, this.opts.disks, [asAppVolume(this.env, v)], this.opts.revision, knownPlacements(this.opts.ctx, [app], 'plugin'))
    this.state.volumes[name] = v
    return { reply: {}, durable: this.save() }
  }

  /** a read-only verity volume: the dm: volume VOLUME of app APP in the served state */
  private async createVerity(name: string, app: string, o: Record<string, unknown>): Promise<Reply | Durable> {
    if (o.persistence !== undefined) return { Err: '-o verity and -o persistence do not go together: a verity volume is read-only' }
    if (typeof o.app !== 'string') return { Err: '-o verity needs -o app=APP, the app whose run.json names "dm:VOLUME"' }
    const volume = String(o.verity)
    await verityOf(this.env, app, volume) // the manifest is checked now; the image is verified at Mount
    const existing = this.state.volumes[name]
    if (existing) return existing.app === app && existing.verity === volume ? {} : { Err: `volume "${name}" already exists as another volume` }
    this.state.volumes[name] = { name, app, persistence: 'permanent', verity: volume, mountedBy: [], createdAt: new Date().toISOString() }
    return { reply: {}, durable: this.save() }
  }

  private async remove(name: string): Promise<Reply | Durable> {
    const v = this.state.volumes[name]
    if (!v) return {}
    if (v.mountedBy.length > 0) return { Err: `volume "${name}" is in use by ${v.mountedBy.length} container(s); stop them first` }
    // the data stays on its disk: pvdisk never deletes volume data on `docker volume rm`
    delete this.state.volumes[name]
    return { reply: {}, durable: this.save() }
  }

  private async mount(name: string, id: string): Promise<Reply | Durable> {
    const v = this.known(name)
    const writes: Promise<void>[] = []
    const mountpoint = await mountVolume(this.env, v, v.mountedBy.length === 0, writes)
    if (!v.mountedBy.includes(id)) v.mountedBy.push(id)
    return { reply: { Mountpoint: mountpoint }, durable: Promise.all([...writes, this.save()]).then(() => undefined) }
  }

  private async unmount(name: string, id: string): Promise<Reply | Durable> {
    const v = this.known(name)
    v.mountedBy = v.mountedBy.filter(x => x !== id)
    if (v.mountedBy.length === 0) await releaseVolume(this.env, v)
    return { reply: {}, durable: this.save() }
  }
}
