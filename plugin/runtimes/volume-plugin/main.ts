// The long-running side of `pvdisk serve`: the volume driver on its socket, the scheduled
// jobs, and a clean stop (SIGTERM/SIGINT: stop the jobs, finish requests in flight, exit 0).
import { resolve } from 'node:path'
import { guardStateVersion } from '../../disks/version-counter.js'
import { InvalidInputError } from '../../config/problems.js'
import { loadConfig } from '../../caretaker/config.js'
import { startJobs, type Log } from '../../caretaker/schedules.js'
import { liveKernel, type DiskContext } from '../../disks/context.js'
import { ProcessRunner } from '../../host/run.js'
import { checkSocket, startServer, type RawRoute } from './server.js'
import { loadState, requireStateDevice } from '../../config/state.js'
import { VolumeDriver } from './driver.js'
import { driverStateFileOf } from './driver-state.js'
import { currentRevision } from '../../volumes/volumes.js'

export interface PluginOptions {
  state: string
  root: string
  socket: string
  revision?: string
  config?: string
  usageCron?: string
  gcCron?: string
  healthCron?: string
  metricsDir?: string
  logFormat: 'text' | 'json'
  /** endpoints beside the plugin API, given the daemon's context (the hooks' fast path) */
  routes?: (ctx: DiskContext, log: Log) => Record<string, RawRoute>
}

export const makeLog = (format: 'text' | 'json'): Log => (level, event, fields = {}) => {
  const line = format === 'json'
    ? JSON.stringify({ time: new Date().toISOString(), level, event, ...fields })
    : `pvdisk: ${level} ${event}${Object.entries(fields).map(([k, v]) => ` ${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`).join('')}`
  process.stderr.write(`${line}\n`)
}

export const runPlugin = async (opts: PluginOptions): Promise<void> => {
  const log = makeLog(opts.logFormat)
  // everything is validated before anything starts: a bad schedule fails now, not at 3 a.m.
  checkSocket(opts.socket)
  const config = await loadConfig(opts.config, {
    ...(opts.usageCron !== undefined ? { usage: opts.usageCron } : {}), ...(opts.gcCron !== undefined ? { gc: opts.gcCron } : {}),
    ...(opts.healthCron !== undefined ? { health: opts.healthCron } : {}), ...(opts.metricsDir !== undefined ? { metricsDir: opts.metricsDir } : {}),
  })
  // the config file's secure-boot settings, unless flags or the environment gave them
  for (const [key, value] of [['PVDISK_SECUREBOOT', config.secureboot.mode], ['PVDISK_TRUST', config.secureboot.trust], ['PVDISK_OEM_NAME', config.secureboot.oemName]] as const) {
    if (value !== '' && !process.env[key]) process.env[key] = value
  }
  // the state read once at start (its signatures checked once); without a device.json, that file's own problem
  const loaded = await loadState(opts.state)
  const { device, disks } = loaded.device ? { device: loaded.device, disks: loaded.disks } : await requireStateDevice(opts.state)
  const errors = device.problems.list.filter(p => p.severity === 'error')
  if (errors.length > 0) throw new InvalidInputError(`${device.file}: ${errors.length} error(s); not serving`, device.problems.list)
  const revision = currentRevision(opts.revision)
  const ctx: DiskContext = { root: resolve(opts.root), runner: new ProcessRunner(), kernel: liveKernel, log: m => log('info', 'disk', { message: m }) }
  await guardStateVersion(ctx, opts.state)
  const driver = new VolumeDriver({
    ctx, disks, revision, stateFile: driverStateFileOf(ctx.root), state: resolve(opts.state),
    onFailure: f => log('error', 'request', { ...f }),
  })
  await driver.reconcile()
  const server = await startServer(opts.socket, driver, opts.routes?.(ctx, log))
  const apps = async () => (await loadState(opts.state)).apps.map(a => a.name)
  let appNames = loaded.apps.map(a => a.name)
  const jobs = startJobs(ctx, disks, config, { revision, apps: () => appNames, log })
  log('info', 'started', { socket: opts.socket, usage: config.schedules.usage, gc: config.schedules.gc, health: config.schedules.health })
  await new Promise<void>(done => {
    const stop = (signal: string) => {
      log('info', 'stopping', { signal })
      void jobs.stop().then(() => server.stop()).then(done) // requests in flight are answered first
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
    process.on('SIGHUP', () => void apps().then(a => { appNames = a }))
  })
  log('info', 'stopped')
}
