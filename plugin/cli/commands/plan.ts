// pvdisk plan: the exact commands pvdisk up would run for the disks; runs nothing
import { resolve } from 'node:path'
import type { Argv } from 'yargs'
import type { CommandResult, GlobalOptions } from '../cli-types.js'

export const command = 'plan'

export const describe = 'print the exact commands pvdisk up would run for the disks, shell-quoted, and the volumes whose data would move; runs nothing'

export const builder = (y: Argv<GlobalOptions>) => y

export const handler = async (argv: GlobalOptions): Promise<CommandResult> => {
  const { diskSession } = await import('../disk-session.js')
  const session = await diskSession(argv, true)
  await session.up(session.select([]))
  const lines = [...session.plan(), ...await migrationLines(argv)]
  return { data: { plan: lines }, lines, exitCode: 0 }
}

/** the volumes whose data would move at the next start (none listed while the state's apps have errors: validate shows them) */
const migrationLines = async (argv: GlobalOptions): Promise<string[]> => {
  const [{ stateMigrations }, { recordedPluginVolumes }] = await Promise.all([import('../../volumes/migrate-state.js'), import('../../runtimes/volume-plugin/driver-state.js')])
  try {
    const pluginVolumes = recordedPluginVolumes(resolve(argv.root))
    const moves = await stateMigrations({ state: argv.state, root: argv.root, dryRun: true, pluginVolumes })
    return moves.map(m => `# migrate ${m.plugin ? `plugin volume ${m.volume}` : m.containerPath ?? m.volume} of ${m.app}: ${m.from} to ${m.to} (cp -a beside it, compare every byte, sync, rename${m.plugin ? ', at its first Mount' : ''})`)
  } catch {
    return []
  }
}
