// pvdisk up [--revision REV] [--network MODE]
import type { Argv } from 'yargs'
import type { CommandResult, GlobalOptions } from '../cli-types.js'
import { requireRoot } from '../root.js'

export const command = 'up [path]'

export const describe = 'bring up the disks every app needs, prepare its volumes, and start one Docker container per app'

export const builder = (y: Argv<GlobalOptions>) => y
  .positional('path', { type: 'string', describe: 'the state directory (instead of --state)' })
  .option('revision', { type: 'string', describe: 'revision for "revision" volumes (default: PVDISK_REVISION, else 0)' })
  .option('network', { type: 'string', describe: 'Docker network mode for the containers (default: Docker\'s)' })

export const handler = async (argv: GlobalOptions & { path?: string, revision?: string, network?: string }): Promise<CommandResult> => {
  requireRoot('up', 'it mounts disks and volumes for the containers')
  const [{ stateUp }, { connectDocker }] = await Promise.all([import('../../runtimes/docker/up.js'), import('../../runtimes/docker/docker.js')])
  const messages: string[] = []
  const outcomes = await stateUp({
    state: argv.path ?? argv.state, root: argv.root, engine: await connectDocker(), log: m => messages.push(m),
    ...(argv.revision !== undefined ? { revision: argv.revision } : {}), ...(argv.network !== undefined ? { network: argv.network } : {}),
  })
  return {
    data: outcomes,
    lines: [...messages, ...outcomes.flatMap(o => [`${o.app}: ${o.result} ${o.container}`,
      ...o.mounts.map(m => `  ${m.target} <- ${m.type === 'bind' ? m.source : 'tmpfs'}`)])],
    exitCode: 0,
  }
}
