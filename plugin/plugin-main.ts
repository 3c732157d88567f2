// The long-running side of `pvdisk serve`: the volume driver, its socket, and a clean stop.
import { join, resolve } from 'node:path'
import { InvalidInputError } from './app-install.js'
import { hostPath, liveKernel, type DiskContext } from './disks/context.js'
import { ProcessRunner } from './run.js'
import { startServer } from './serve.js'
import { checkDeviceFile } from './state.js'
import { VolumeDriver } from './volume-driver.js'
import { currentRevision } from './volumes.js'


export const runPlugin = async (opts: { state: string, root: string, socket: string, revision?: string }): Promise<void> => {
  const { device, disks } = await checkDeviceFile(join(opts.state, 'device.json'))
  const errors = device.problems.list.filter(p => p.severity === 'error')
  if (errors.length > 0) throw new InvalidInputError(`${device.file}: ${errors.length} error(s); not serving`, device.problems.list)
  const ctx: DiskContext = { root: resolve(opts.root), runner: new ProcessRunner(), kernel: liveKernel, log: m => process.stderr.write(`${m}\n`) }
  const driver = new VolumeDriver({ ctx, disks, revision: currentRevision(opts.revision), stateFile: hostPath(ctx, '/var/lib/pvdisk/volume-driver.json') })
  await driver.reconcile()
  const server = await startServer(opts.socket, driver)
  process.stderr.write(`pvdisk: serving the volume driver on ${opts.socket}\n`)
  await new Promise<void>(done => {
    const stop = () => server.close(() => done()) // finishes requests in flight
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
  })
}
