// The only module that talks to Docker (through dockerode), behind an interface of
// pvdisk's own. Docker is found through DOCKER_HOST, else the default socket.
import { PvdiskError } from '../../errors.js'

export interface MountSpec {
  type: 'bind' | 'tmpfs'
  source?: string
  target: string
  /** a verity volume: read-only in the container too */
  readOnly?: boolean
}

export interface ContainerSpec {
  name: string
  image: string
  labels: Record<string, string>
  mounts: MountSpec[]
  cmd?: string[]
  entrypoint?: string[]
  env?: string[]
  workingDir?: string
  user?: string
  networkMode?: string
}

export interface ContainerInfo {
  id: string
  name: string
  running: boolean
  labels: Record<string, string>
  /** bind sources of its mounts */
  sources: string[]
}

export interface ContainerEngine {
  ping(): Promise<void>
  /** all containers, or those with this label ("key=value"); "" for all */
  list(labelFilter: string): Promise<ContainerInfo[]>
  create(spec: ContainerSpec): Promise<string>
  start(id: string): Promise<void>
  stop(id: string): Promise<void>
  remove(id: string): Promise<void>
  /** the image's layer directories on the host, top first (overlay2); [] when the storage driver keeps none */
  imageLayers(image: string): Promise<string[]>
  /** whether a network of this name or id exists */
  hasNetwork(name: string): Promise<boolean>
}

const explain = (e: unknown, what: string): PvdiskError => {
  const err = e as { statusCode?: number, json?: { message?: string }, message?: string, code?: string }
  if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'EACCES') {
    return new PvdiskError('ECOMMAND', `cannot reach Docker (${err.code}) ${process.env.DOCKER_HOST ? `at DOCKER_HOST=${process.env.DOCKER_HOST}` : 'at /var/run/docker.sock'}`,
      ['start dockerd, or point DOCKER_HOST at its socket'])
  }
  return new PvdiskError('ECOMMAND', `Docker: ${what}: ${err.json?.message ?? err.message ?? String(e)}`)
}

export const connectDocker = async (): Promise<ContainerEngine> => {
  const { default: Docker } = await import('dockerode')
  const docker = new Docker() // docker-modem reads DOCKER_HOST, else /var/run/docker.sock
  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn()
    } catch (e) {
      throw explain(e, what)
    }
  }
  return {
    ping: () => call('ping', async () => {
      await docker.ping()
    }),
    list: label => call('list containers', async () => {
      const list = await docker.listContainers({ all: true, ...(label ? { filters: { label: [label] } } : {}) })
      return list.map(c => ({
        id: c.Id, name: (c.Names[0] ?? '').replace(/^\//, ''), running: c.State === 'running', labels: c.Labels,
        sources: (c.Mounts ?? []).map(m => m.Source).filter((s): s is string => typeof s === 'string' && s !== ''),
      }))
    }),
    create: spec => call(`create container ${spec.name}`, async () => {
      const c: { id: string } = await docker.createContainer({
        name: spec.name,
        Image: spec.image,
        Labels: spec.labels,
        ...(spec.cmd ? { Cmd: spec.cmd } : {}),
        ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
        ...(spec.env ? { Env: spec.env } : {}),
        ...(spec.workingDir ? { WorkingDir: spec.workingDir } : {}),
        ...(spec.user ? { User: spec.user } : {}),
        HostConfig: {
          ...(spec.networkMode ? { NetworkMode: spec.networkMode } : {}),
          Mounts: spec.mounts.map(m => (m.type === 'bind'
            ? { Type: 'bind' as const, Source: m.source ?? '', Target: m.target, ReadOnly: m.readOnly === true, BindOptions: { Propagation: 'rprivate' as const } }
            : { Type: 'tmpfs' as const, Source: '', Target: m.target })),
        },
      })
      return c.id
    }),
    start: id => call('start container', async () => {
      await docker.getContainer(id).start()
    }),
    stop: id => call('stop container', async () => {
      try {
        await docker.getContainer(id).stop({ t: 10 })
      } catch (e) {
        if ((e as { statusCode?: number }).statusCode !== 304) throw e // 304: already stopped
      }
    }),
    remove: id => call('remove container', async () => {
      await docker.getContainer(id).remove({ force: true })
    }),
    hasNetwork: name => call(`inspect network ${name}`, async () => {
      try {
        await docker.getNetwork(name).inspect()
        return true
      } catch (e) {
        if ((e as { statusCode?: number }).statusCode === 404) return false
        throw e
      }
    }),
    imageLayers: image => call(`inspect image ${image}`, async () => {
      const info = await docker.getImage(image).inspect()
      const data = info.GraphDriver?.Data as { UpperDir?: string, LowerDir?: string } | undefined
      if (info.GraphDriver?.Name !== 'overlay2' || !data?.UpperDir) return []
      return [data.UpperDir, ...(data.LowerDir ?? '').split(':')].filter(Boolean)
    }),
  }
}
