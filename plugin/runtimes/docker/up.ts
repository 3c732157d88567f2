// Layer runtimes/ (above caretaker/): one folder per container runtime pvdisk mounts
// volumes into: docker/ (pvdisk up/down through dockerode), volume-plugin/ (Docker's
// VolumeDriver protocol and `pvdisk serve`), oci/ (the OCI hook and hooks.d) and lxc/
// (Pantavisor's /volumes step for LXC hooks). A runtime never imports another; all of
// them bring disks up through disks/ and place volumes through volumes/.
//
// `pvdisk up` and `pvdisk down`: the disks the apps need, their volumes, and one Docker
// container per app whose mounts are verified before it starts.
import { createHash } from 'node:crypto'
import { realpathSync } from 'node:fs'
import { resolve } from 'node:path'
import { InvalidInputError } from '../../config/problems.js'
import type { DiskEntry } from '../../config/check-device.js'
import { liveKernel, mountPointOf, type DiskContext } from '../../disks/context.js'
import { backendFor, disksDown, disksUp, isProvisionedByPvdisk } from '../../disks/engine.js'
import { guardStateVersion } from '../../disks/version-counter.js'
import { verityDown, verityMountPoint, verityUp } from '../../disks/verity.js'
import type { ContainerEngine, ContainerSpec, MountSpec } from './docker.js'
import { isDockerOverlay, mountOverlays, overlayTargetOf, unmountOverlays } from './overlays.js'
import { PvdiskError } from '../../errors.js'
import type { Json } from '../../config/json-source.js'
import { ProcessRunner } from '../../host/run.js'
import { mkdirNoFollow } from '../../host/no-follow.js'
import { createProgress } from '../../host/progress.js'
import { loadState, type AppState } from '../../config/state.js'
import { followVolumes, knownPlacements, migratedLine, notePlacements, refuseIntoBoot } from '../../volumes/migrate.js'
import { appVolumes, currentRevision, emptyBootVolume, prepareVolume, type AppVolume } from '../../volumes/volumes.js'

export const LABEL_STATE = 'io.pvdisk.state'
export const LABEL_APP = 'io.pvdisk.app'
export const LABEL_SPEC = 'io.pvdisk.spec'
export const LABEL_REVISION = 'io.pvdisk.revision'

export interface UpOptions {
  state: string
  root: string
  revision?: string
  network?: string
  engine: ContainerEngine
  log?: (m: string) => void
}

export interface AppOutcome {
  app: string
  container: string
  result: 'created' | 'recreated' | 'started' | 'unchanged' | 'removed'
  mounts: MountSpec[]
}

const loadValid = async (dir: string) => {
  const state = await loadState(dir)
  const errors = state.problems.filter(p => p.severity === 'error')
  if (errors.length > 0) throw new InvalidInputError(`${dir}: ${errors.length} error${errors.length === 1 ? '' : 's'} in the state; nothing done`, state.problems)
  return state
}

const contextOf = (root: string, log: (m: string) => void): DiskContext =>
  ({ root: resolve(root), runner: new ProcessRunner(), kernel: liveKernel, log })

/** docker_digest (with or without repository), else docker_name:docker_tag */
export const imageOf = (app: AppState): string => {
  const src = app.src?.data
  if (!src?.docker_name && !src?.docker_digest) {
    throw new PvdiskError('EINVALID', `app "${app.name}": src.json names no image`, ['set docker_name (and docker_tag) or docker_digest'])
  }
  if (src.docker_digest) return src.docker_digest.includes('@') || !src.docker_name ? src.docker_digest : `${src.docker_name}@${src.docker_digest}`
  return `${src.docker_name}:${src.docker_tag ?? 'latest'}`
}

const argvOf = (v: Json | undefined): string[] | undefined =>
  typeof v === 'string' ? ['/bin/sh', '-c', v] : Array.isArray(v) ? v.map(String) : undefined

/** the Docker side of an app: its image, config overrides and mounts */
const specOf = (app: AppState, mounts: MountSpec[], opts: UpOptions, revision: string): ContainerSpec => {
  const config = (app.src?.data?.config ?? {}) as { [k: string]: Json }
  const spec: ContainerSpec = { name: `pvdisk-${app.name}`, image: imageOf(app), labels: {}, mounts }
  const cmd = argvOf(config.Cmd)
  const entrypoint = argvOf(config.Entrypoint)
  if (cmd) spec.cmd = cmd
  if (entrypoint) spec.entrypoint = entrypoint
  if (Array.isArray(config.Env)) spec.env = config.Env.map(String)
  if (typeof config.WorkingDir === 'string') spec.workingDir = config.WorkingDir
  if (typeof config.User === 'string') spec.user = config.User
  if (opts.network) spec.networkMode = opts.network
  const hash = createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16)
  spec.labels = { [LABEL_STATE]: resolve(opts.state), [LABEL_APP]: app.name, [LABEL_SPEC]: hash, [LABEL_REVISION]: revision }
  return spec
}

/** a container starts only when every disk-backed volume sits on its mounted disk */
const verifyMounts = (ctx: DiskContext, volumes: AppVolume[], sources: Map<string, string>): void => {
  const states = new Map<string, string | undefined>() // each disk's state read once, however many volumes it holds
  for (const v of volumes) {
    const source = sources.get(v.name)
    if (!v.disk || source === undefined) continue
    const disk = v.disk
    if (!states.has(disk.name)) states.set(disk.name, backendFor(ctx, disk)?.status().state)
    const mnt = mountPointOf(ctx, v.disk)
    if (states.get(disk.name) !== 'mounted') throw new PvdiskError('EDISK', `app "${v.app}": disk "${v.disk.name}" is not mounted at ${mnt}; not starting the container`)
    const real = realpathSync(source)
    if (!real.startsWith(`${realpathSync(mnt)}/`)) throw new PvdiskError('EDISK', `app "${v.app}": volume ${v.name} resolves to ${real}, outside disk "${v.disk.name}"`)
  }
}

/** the container's mounts: its volumes (sources kept for verifyMounts) and its verity volumes, read-only */
const mountsOf = (ctx: DiskContext, app: AppState, volumes: AppVolume[], revision: string): { mounts: MountSpec[], sources: Map<string, string> } => {
  const sources = new Map<string, string>()
  const mounts: MountSpec[] = []
  for (const v of volumes) {
    if (v.containerPath === undefined) continue // lxc-overlay: Docker keeps the container's own writable layer
    const src = prepareVolume(ctx, v, revision)
    if (src.kind === 'dir') {
      sources.set(v.name, src.path)
      // an ovl: volume reaches the container as the overlay mounted just before it starts
      mounts.push({ type: 'bind', source: isDockerOverlay(v) ? overlayTargetOf(ctx, app.name, v) : src.path, target: v.containerPath })
    } else mounts.push({ type: 'tmpfs', target: v.containerPath })
  }
  for (const v of app.verity ?? []) {
    if (v.containerPath === undefined) continue
    const source = verityMountPoint(ctx, app.name, v.name)
    mkdirNoFollow(ctx.root, source) // Docker wants a bind's source to exist when the container is created
    mounts.push({ type: 'bind', source, target: v.containerPath, readOnly: true })
  }
  return { mounts, sources }
}

export const stateUp = async (opts: UpOptions): Promise<AppOutcome[]> => {
  const log = opts.log ?? (() => undefined)
  const state = await loadValid(opts.state)
  const revision = currentRevision(opts.revision)
  const ctx = contextOf(opts.root, log)
  const apps = state.apps.filter(a => a.src?.data && a.storage)
  const volumesOf = new Map(apps.map(a => [a.name, appVolumes(a, state.disks)]))
  for (const app of apps) imageOf(app) // every app names an image before anything happens
  const known = knownPlacements(ctx, apps.map(a => a.name))
  refuseIntoBoot(ctx, state.disks, [...volumesOf.values()].flat(), revision, known) // before any disk comes up
  await opts.engine.ping()
  await checkNetwork(opts.engine, opts.network)

  const needed = new Map<string, DiskEntry>()
  for (const v of [...volumesOf.values()].flat()) if (v.disk && isProvisionedByPvdisk(v.disk)) needed.set(v.disk.name, v.disk)
  for (const d of state.disks.disks.values()) if (d.type === 'swap-disk') needed.set(d.name, d) // swap comes up with the state, as in Pantavisor
  await guardStateVersion(ctx, opts.state)
  for (const d of await disksUp(ctx, [...needed.values()])) log(`disk ${d.name}: ${d.result}`)

  const existing = await opts.engine.list(`${LABEL_STATE}=${resolve(opts.state)}`)
  const out: AppOutcome[] = []
  for (const app of apps) {
    const volumes = volumesOf.get(app.name) ?? []
    const { mounts, sources } = mountsOf(ctx, app, volumes, revision)
    const spec = specOf(app, mounts, opts, revision)
    // a real start: verity images verified and mounted, mounts verified, boot emptied, ovl: overlays mounted, then the container
    const start = async (id: string): Promise<void> => {
      // the app's old container is stopped: data of a volume that moved follows it now
      for (const m of await followVolumes(ctx, state.disks, volumes, revision, known)) log(migratedLine(m))
      for (const v of app.verity ?? []) if (v.containerPath !== undefined) await verityUp(ctx, v)
      verifyMounts(ctx, volumes, sources)
      for (const v of volumes) emptyBootVolume(ctx, v, revision)
      await mountOverlays(ctx, app.name, () => opts.engine.imageLayers(spec.image), volumes, revision)
      await opts.engine.start(id)
    }
    const found = existing.find(c => c.labels[LABEL_APP] === app.name)
    let result: AppOutcome['result']
    if (found && found.labels[LABEL_SPEC] === spec.labels[LABEL_SPEC]) {
      if (found.running) {
        notePlacements(ctx, volumes, revision, known) // where its volumes live, should a later state move one
        out.push({ app: app.name, container: found.name, result: 'unchanged', mounts })
        continue
      }
      await start(found.id)
      out.push({ app: app.name, container: found.name, result: 'started', mounts })
      continue
    }
    if (found) {
      await opts.engine.remove(found.id)
      result = 'recreated'
    } else result = 'created'
    const id = await opts.engine.create(spec)
    try {
      await start(id)
    } catch (e) {
      await opts.engine.remove(id).catch(() => undefined) // no container left in Created: the next up starts afresh
      throw e
    }
    out.push({ app: app.name, container: spec.name, result, mounts })
  }
  for (const c of existing) {
    if (!apps.some(a => a.name === c.labels[LABEL_APP])) {
      await opts.engine.remove(c.id)
      out.push({ app: c.labels[LABEL_APP] ?? c.name, container: c.name, result: 'removed', mounts: [] })
    }
  }
  return out
}

/** Docker's own modes, or a network that exists: a typo fails before any container is made */
const checkNetwork = async (engine: ContainerEngine, network: string | undefined): Promise<void> => {
  if (network === undefined || ['bridge', 'host', 'none', 'default'].includes(network) || network.startsWith('container:')) return
  if (!await engine.hasNetwork(network)) {
    throw new PvdiskError('EUSAGE', `--network ${network}: Docker has no such network`, ['docker network ls lists them; or use bridge, host, none or container:NAME'])
  }
}

export const stateDown = async (opts: UpOptions): Promise<{ containers: string[], disks: string[] }> => {
  const log = opts.log ?? (() => undefined)
  const state = await loadValid(opts.state)
  const ctx = contextOf(opts.root, log)
  const ours = (await opts.engine.list(`${LABEL_STATE}=${resolve(opts.state)}`)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  // all at once: each may take Docker's 10 s stop timeout
  const progress = createProgress('stopping containers', ours.length)
  let stopped = 0
  progress.update(0)
  try {
    await Promise.all(ours.map(async c => {
      await opts.engine.stop(c.id)
      await opts.engine.remove(c.id)
      progress.update(++stopped, c.name)
    }))
  } finally {
    progress.finish()
  }
  await unmountOverlays(ctx, [...new Set([...state.apps.map(a => a.name), ...ours.map(c => c.labels[LABEL_APP] ?? '').filter(Boolean)])])
  for (const v of state.apps.flatMap(a => a.verity ?? [])) if (v.containerPath !== undefined) await verityDown(ctx, v)
  // a disk stays up while any running container (pvdisk's or not) still has a mount on it
  const running = (await opts.engine.list('')).filter(c => c.running)
  const idle = [...state.disks.disks.values()].filter(isProvisionedByPvdisk).filter(d => {
    const mnt = mountPointOf(ctx, d)
    return !running.some(c => c.sources.some(s => s === mnt || s.startsWith(`${mnt}/`)))
  })
  const downs = await disksDown(ctx, idle)
  return { containers: ours.map(c => c.name), disks: downs.filter(d => d.result !== 'not mounted' && d.result !== 'not open').map(d => d.name) }
}
