// pvdisk plan: the exact commands pvdisk up would run for the disks; runs nothing
import type { Argv } from 'yargs'
import type { CommandResult, GlobalOptions } from '../cli-types.js'

export const command = 'plan'

export const describe = 'print the exact commands pvdisk up would run for the disks, shell-quoted; runs nothing'

export const builder = (y: Argv<GlobalOptions>) => y

export const handler = async (argv: GlobalOptions): Promise<CommandResult> => {
  const { diskSession } = await import('../disk-session.js')
  const session = await diskSession(argv, true)
  await session.up(session.select([]))
  return { data: { plan: session.plan() }, lines: session.plan(), exitCode: 0 }
}
