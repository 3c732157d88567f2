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
    const [{ stateUp }, { connectDocker }] = await Promise.all([import('../up.js'), import('../docker.js')])
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
    const [{ stateDown }, { connectDocker }] = await Promise.all([import('../up.js'), import('../docker.js')])
    const r = await stateDown({ state: argv.state, root: argv.root, engine: await connectDocker() })
    return { data: r, lines: [...r.containers.map(c => `removed ${c}`), ...r.disks.map(d => `disk ${d}: down`)], exitCode: 0 }
  },
}

export const serve = {
  command: 'serve',
  describe: 'run the Docker VolumeDriver plugin (docker volume create -d pvdisk ...)',
  builder: (y: Argv<GlobalOptions>) => y
    .option('socket', { type: 'string', default: '/run/docker/plugins/pvdisk.sock', describe: 'plugin socket; its file name is the driver name' })
    .option('revision', { type: 'string', describe: 'revision for "revision" volumes (default: PVDISK_REVISION, else 0)' }),
  handler: async (argv: GlobalOptions & { socket: string, revision?: string }): Promise<CommandResult> => {
    const { runPlugin } = await import('../plugin-main.js')
    await runPlugin({ state: argv.state, root: argv.root, socket: argv.socket, ...(argv.revision !== undefined ? { revision: argv.revision } : {}) })
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
    const { ociHook, writeHooksD } = await import('../oci-hook.js')
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
