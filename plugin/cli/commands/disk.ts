// pvdisk disk up|down|status [NAME...] [--dry-run], pvdisk disk recover NAME [--recovery-key FILE]
import { readFileSync } from 'node:fs'
import type { Argv } from 'yargs'
import type { CommandResult, GlobalOptions } from '../cli-types.js'
import type { DiskStatus } from '../../disks/context.js'
import { humanBytes } from '../format.js'

export const command = 'disk <action> [names..]'
export const describe = 'disk up|down|status|recover [NAME...]: provision, open and mount disks; unmount and close them; their state from the kernel; unlock one with its recovery key'

export const builder = (y: Argv<GlobalOptions>) =>
  y.positional('action', { choices: ['up', 'down', 'status', 'recover'] as const, demandOption: true, describe: 'what to do' })
    .positional('names', { type: 'string', array: true, describe: 'disk names or aliases (default: every disk pvdisk provisions)' })
    .option('dry-run', { type: 'boolean', default: false, describe: 'print the commands that would run, run nothing' })
    .option('recovery-key', { type: 'string', describe: 'recover: the file holding the recovery key (default: read it from stdin)' })

const readRecoveryInput = async (file: string | undefined): Promise<Buffer> => {
  const { PvdiskError } = await import('../../errors.js')
  try {
    return readFileSync(file ?? 0)
  } catch (e) {
    throw new PvdiskError('EUSAGE', `cannot read the recovery key from ${file ?? 'stdin'}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, ['give --recovery-key FILE, or pipe the key in'])
  }
}

const statusLines = (s: DiskStatus): string[] => [
  `${s.name.padEnd(20)} ${s.type.padEnd(19)} ${s.state.padEnd(11)} ${s.mountPoint}  size ${humanBytes(s.size)} used ${humanBytes(s.used)} free ${humanBytes(s.free)}`,
  ...(s.unlock === undefined ? [] : [`  unlock: ${s.unlock}; recovery key: ${s.recovery ? 'yes' : 'none'}`]),
  ...[...s.problems, ...(s.keyProblems ?? [])].map(p => `  problem: ${p}`),
]

export const handler = async (argv: GlobalOptions & { action: 'up' | 'down' | 'status' | 'recover', names?: string[], dryRun: boolean, recoveryKey?: string }): Promise<CommandResult> => {
  const { diskSession } = await import('../disk-session.js')
  const session = await diskSession(argv, argv.dryRun)
  if (argv.action === 'recover') {
    const { PvdiskError } = await import('../../errors.js')
    const [name, ...more] = argv.names ?? []
    if (name === undefined || more.length > 0) throw new PvdiskError('EUSAGE', 'disk recover takes exactly one disk name', ['e.g. pvdisk disk recover secure --recovery-key /media/usb/secure.recovery'])
    const [disk] = session.select([name])
    const key = await readRecoveryInput(argv.recoveryKey)
    try {
      const result = await session.recover(disk!, key)
      return { data: { name, result }, lines: [...session.messages, `${name}: ${result}`], exitCode: 0 }
    } finally {
      key.fill(0)
    }
  }
  const disks = session.select(argv.names ?? [])
  if (argv.action === 'status') {
    const statuses = session.status(disks)
    // the open verity volumes, after the disks: their health is the kernel's (V verified, C a block did not match)
    const verity = (await session.verity()).map(v => ({
      name: v.app !== undefined ? `${v.app}/${v.volume}` : v.mapping, type: 'verity', state: v.mountPoint ? 'mounted' : 'open', mountPoint: v.mountPoint ?? '', mapping: v.mapping, health: v.health,
      problems: v.health === 'corrupted' ? ['corrupted: a block read did not match its hash and read as EIO; the image changed under the mapping: restore it, then restart its containers'] : [],
    }))
    return {
      data: [...statuses, ...verity],
      lines: [...statuses.flatMap(statusLines), ...verity.flatMap(v => [`${v.name.padEnd(20)} ${v.type.padEnd(19)} ${v.state.padEnd(11)} ${v.mountPoint}  ${v.health}`, ...v.problems.map(p => `  problem: ${p}`)])],
      exitCode: statuses.some(s => s.problems.length > 0 || (s.keyProblems?.length ?? 0) > 0) || verity.some(v => v.problems.length > 0) ? 1 : 0,
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
