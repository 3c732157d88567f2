// pvdisk disk up|down|status [NAME...] [--dry-run]
import type { Argv } from 'yargs'
import type { CommandResult, GlobalOptions } from '../cli-types.js'
import { humanBytes } from '../format.js'

export const command = 'disk <action> [names..]'
export const describe = 'disk up|down|status [NAME...]: provision, open and mount disks; unmount and close them; their state from the kernel'

export const builder = (y: Argv<GlobalOptions>) =>
  y.positional('action', { choices: ['up', 'down', 'status'] as const, demandOption: true, describe: 'what to do' })
    .positional('names', { type: 'string', array: true, describe: 'disk names or aliases (default: every disk pvdisk provisions)' })
    .option('dry-run', { type: 'boolean', default: false, describe: 'print the commands that would run, run nothing' })

export const handler = async (argv: GlobalOptions & { action: 'up' | 'down' | 'status', names?: string[], dryRun: boolean }): Promise<CommandResult> => {
  const { diskSession } = await import('../disk-session.js')
  const session = await diskSession(argv, argv.dryRun)
  const disks = session.select(argv.names ?? [])
  if (argv.action === 'status') {
    const statuses = session.status(disks)
    return {
      data: statuses,
      lines: statuses.flatMap(s => [
        `${s.name.padEnd(20)} ${s.type.padEnd(19)} ${s.state.padEnd(11)} ${s.mountPoint}  size ${humanBytes(s.size)} used ${humanBytes(s.used)} free ${humanBytes(s.free)}`,
        ...s.problems.map(p => `  problem: ${p}`),
      ]),
      exitCode: statuses.some(s => s.problems.length > 0) ? 1 : 0,
    }
  }
  const outcomes = await (argv.action === 'up' ? session.up(disks) : session.down(disks))
  if (argv.dryRun) return { data: { plan: session.plan() }, lines: session.plan(), exitCode: 0 }
  return { data: outcomes, lines: [...session.messages, ...outcomes.map(o => `${o.name}: ${o.result}`)], exitCode: 0 }
}

/** `pvdisk status`, PRODUCT.md's name for the state of the disks: the same as `pvdisk disk status` */
export const status = {
  command: 'status [names..]',
  describe: 'the state of the disks, from the kernel (the same as pvdisk disk status)',
  builder: (y: Argv<GlobalOptions>) => y.positional('names', { type: 'string', array: true, describe: 'disk names or aliases (default: every disk pvdisk provisions)' }),
  handler: (argv: GlobalOptions & { names?: string[] }): Promise<CommandResult> => handler({ ...argv, action: 'status', dryRun: false }),
}
