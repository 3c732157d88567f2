// pvdisk plan: the exact commands pvdisk up would run for the disks; runs nothing
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
  const { stateMigrations } = await import('../../volumes/migrate-state.js')
  try {
    const moves = await stateMigrations({ state: argv.state, root: argv.root, dryRun: true })
    return moves.map(m => `# migrate ${m.containerPath ?? m.volume} of ${m.app}: ${m.from} to ${m.to} (cp -a beside it, compare every byte, sync, rename)`)
  } catch {
    return []
  }
}
