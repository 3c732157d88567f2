// pvdisk down
import type { Argv } from 'yargs'
import type { CommandResult, GlobalOptions } from '../cli-types.js'
import { requireRoot } from '../root.js'

export const command = 'down [path]'

export const describe = 'stop and remove the state\'s containers, and take down the disks nothing uses any more'

export const builder = (y: Argv<GlobalOptions>) => y
  .positional('path', { type: 'string', describe: 'the state directory (instead of --state)' })

export const handler = async (argv: GlobalOptions & { path?: string }): Promise<CommandResult> => {
  requireRoot('down', 'it unmounts disks')
  const [{ stateDown }, { connectDocker }] = await Promise.all([import('../../runtimes/docker/up.js'), import('../../runtimes/docker/docker.js')])
  const r = await stateDown({ state: argv.path ?? argv.state, root: argv.root, engine: await connectDocker() })
  return { data: r, lines: [...r.containers.map(c => `removed ${c}`), ...r.disks.map(d => `disk ${d}: down`)], exitCode: 0 }
}
