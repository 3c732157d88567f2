// pvdisk up [--revision REV], pvdisk down
import type { Argv } from 'yargs'
import type { CommandResult, GlobalOptions } from '../cli-types.js'

export const up = {
  command: 'up',
  describe: 'bring up the disks every app needs, prepare its volumes, and start one Docker container per app',
  builder: (y: Argv<GlobalOptions>) => y
    .option('revision', { type: 'string', describe: 'revision for "revision" volumes (default: PVDISK_REVISION, else 0)' })
    .option('network', { type: 'string', describe: 'Docker network mode for the containers (default: Docker\'s)' }),
  handler: async (argv: GlobalOptions & { revision?: string, network?: string }): Promise<CommandResult> => {
    const [{ stateUp }, { connectDocker }] = await Promise.all([import('../../runtimes/docker/up.js'), import('../../runtimes/docker/docker.js')])
    const messages: string[] = []
    const outcomes = await stateUp({
      state: argv.state, root: argv.root, engine: await connectDocker(), log: m => messages.push(m),
      ...(argv.revision !== undefined ? { revision: argv.revision } : {}), ...(argv.network !== undefined ? { network: argv.network } : {}),
    })
    return {
      data: outcomes,
      lines: [...messages, ...outcomes.flatMap(o => [`${o.app}: ${o.result} ${o.container}`,
        ...o.mounts.map(m => `  ${m.target} <- ${m.type === 'bind' ? m.source : 'tmpfs'}`)])],
      exitCode: 0,
    }
  },
}

export const down = {
  command: 'down',
  describe: 'stop and remove the state\'s containers, and take down the disks nothing uses any more',
  builder: (y: Argv<GlobalOptions>) => y,
  handler: async (argv: GlobalOptions): Promise<CommandResult> => {
    const [{ stateDown }, { connectDocker }] = await Promise.all([import('../../runtimes/docker/up.js'), import('../../runtimes/docker/docker.js')])
    const r = await stateDown({ state: argv.state, root: argv.root, engine: await connectDocker() })
    return { data: r, lines: [...r.containers.map(c => `removed ${c}`), ...r.disks.map(d => `disk ${d}: down`)], exitCode: 0 }
  },
}

export const serve = {
  command: 'serve',
  describe: 'run the Docker VolumeDriver plugin (docker volume create -d pvdisk ...)',
  builder: (y: Argv<GlobalOptions>) => y
    .option('socket', { type: 'string', default: '/run/docker/plugins/pvdisk.sock', describe: 'plugin socket; its file name is the driver name' })
    .option('revision', { type: 'string', describe: 'revision for "revision" volumes (default: PVDISK_REVISION, else 0)' })
    .option('config', { type: 'string', describe: 'JSON file: schedules, metricsDir, gc and usage settings' })
    .option('usage-cron', { type: 'string', describe: 'schedule of the usage job (default */15 * * * *)' })
    .option('gc-cron', { type: 'string', describe: 'schedule of the GC job (default 17 3 * * *)' })
    .option('health-cron', { type: 'string', describe: 'schedule of the health check (default */5 * * * *)' })
    .option('metrics-dir', { type: 'string', describe: 'where usage.json, pvdisk.prom and health.json are written (default /var/lib/pvdisk/metrics)' })
    .option('log-format', { choices: ['text', 'json'] as const, default: 'text' as const, describe: 'one line per event, as text or JSON' }),
  handler: async (argv: GlobalOptions & { socket: string, revision?: string, config?: string, usageCron?: string, gcCron?: string, healthCron?: string, metricsDir?: string, logFormat: 'text' | 'json' }): Promise<CommandResult> => {
    const { runPlugin } = await import('../../runtimes/volume-plugin/main.js')
    const optional = Object.fromEntries(Object.entries({ revision: argv.revision, config: argv.config, usageCron: argv.usageCron, gcCron: argv.gcCron, healthCron: argv.healthCron, metricsDir: argv.metricsDir }).filter(([, v]) => v !== undefined))
    await runPlugin({ state: argv.state, root: argv.root, socket: argv.socket, logFormat: argv.logFormat, ...optional })
    return { data: { stopped: true }, lines: [], exitCode: 0 }
  },
}

export const ociHookCommand = {
  command: 'oci-hook',
  describe: 'OCI runtime hook: reads the container state on stdin and mounts its pvdisk volumes (or, with --hooks-d, writes podman/CRI-O hook files)',
  builder: (y: Argv<GlobalOptions>) => y
    .option('stage', { type: 'string', default: 'createRuntime', describe: 'createRuntime (or prestart) mounts; poststop releases' })
    .option('hooks-d', { type: 'string', describe: 'write hooks.d 1.0.0 files for podman and CRI-O into this directory' }),
  handler: async (argv: GlobalOptions & { stage: string, hooksD?: string }): Promise<CommandResult> => {
    const { ociHook, writeHooksD } = await import('../../runtimes/oci/hook.js')
    if (argv.hooksD !== undefined) {
      const files = await writeHooksD(argv.hooksD)
      return { data: { files }, lines: files.map(f => `wrote ${f}`), exitCode: 0 }
    }
    const chunks: Buffer[] = []
    for await (const c of process.stdin) chunks.push(c as Buffer)
    const lines = await ociHook(argv.stage, Buffer.concat(chunks).toString('utf8'))
    return { data: { mounted: lines }, lines, exitCode: 0 }
  },
}
