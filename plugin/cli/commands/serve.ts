// pvdisk serve: the Docker VolumeDriver plugin and the scheduled jobs
import type { Argv } from 'yargs'
import type { CommandResult, GlobalOptions } from '../cli-types.js'
import { requireRoot } from '../root.js'

export const command = 'serve'

export const describe = 'run the Docker VolumeDriver plugin (docker volume create -d pvdisk ...)'

export const builder = (y: Argv<GlobalOptions>) => y
  .option('socket', { type: 'string', default: '/run/docker/plugins/pvdisk.sock', describe: 'plugin socket; its file name is the driver name' })
  .option('revision', { type: 'string', describe: 'revision for "revision" volumes (default: PVDISK_REVISION, else 0)' })
  .option('config', { type: 'string', describe: 'JSON file: schedules, metricsDir, gc and usage settings' })
  .option('usage-cron', { type: 'string', describe: 'schedule of the usage job (default */15 * * * *)' })
  .option('gc-cron', { type: 'string', describe: 'schedule of the GC job (default 17 3 * * *)' })
  .option('health-cron', { type: 'string', describe: 'schedule of the health check (default */5 * * * *)' })
  .option('metrics-dir', { type: 'string', describe: 'where usage.json, pvdisk.prom and health.json are written (default /var/lib/pvdisk/metrics)' })
  .option('log-format', { choices: ['text', 'json'] as const, default: 'text' as const, describe: 'one line per event, as text or JSON' })

export const handler = async (argv: GlobalOptions & { socket: string, revision?: string, config?: string, usageCron?: string, gcCron?: string, healthCron?: string, metricsDir?: string, logFormat: 'text' | 'json' }): Promise<CommandResult> => {
  requireRoot('serve', 'it mounts disks and volumes for Docker and the hooks')
  const { runPlugin } = await import('../../runtimes/volume-plugin/main.js')
  const { serveHook } = await import('../hook-service.js')
  const optional = Object.fromEntries(Object.entries({ revision: argv.revision, config: argv.config, usageCron: argv.usageCron, gcCron: argv.gcCron, healthCron: argv.healthCron, metricsDir: argv.metricsDir }).filter(([, v]) => v !== undefined))
  await runPlugin({
    state: argv.state, root: argv.root, socket: argv.socket, logFormat: argv.logFormat, ...optional,
    // the OCI and LXC hooks' fast path (dist/pvdisk-hook): one line for each
    routes: (ctx, log) => ({
      '/Pvdisk.Hook': async body => {
        const reply = await serveHook(body, ctx.runner)
        if (reply.status === 200) log('info', 'hook', { request: reply.request ?? '?', status: 200 })
        else if (reply.status !== 409) log('error', 'hook', { request: reply.request ?? '?', status: reply.status, reason: reply.text.split('\n').find(l => l.startsWith('pvdisk: ')) ?? reply.text.trim() })
        return reply
      },
    }),
  })
  return { data: { stopped: true }, lines: [], exitCode: 0 }
}
