// pvdisk app install APP
import type { Argv } from 'yargs'
import { formatProblem } from '../../config/problems.js'
import type { CommandResult, GlobalOptions } from '../cli-types.js'

export const command = 'app <action> <name>'
export const describe = 'app install NAME: write NAME/run.json storage from NAME/src.json persistence, as pvr does'

export const builder = (y: Argv<GlobalOptions>) =>
  y.positional('action', { choices: ['install'] as const, describe: 'what to do' })
    .positional('name', { type: 'string', demandOption: true, describe: 'app directory in the state' })
    .option('dry-run', { type: 'boolean', default: false, describe: 'show what would change, write nothing' })

export const handler = async (argv: GlobalOptions & { name: string, dryRun: boolean }): Promise<CommandResult> => {
  const { installApp } = await import('../../config/app-install.js')
  const r = await installApp(argv.state, argv.name, { dryRun: argv.dryRun })
  const verb = !r.changed ? 'is up to date' : r.dryRun ? 'would be updated' : 'updated'
  const volumes = Object.entries(r.storage).map(([name, v]) => `  ${name}: ${v.persistence}${v.disk === undefined ? '' : `@${v.disk}`}`)
  const conf = r.lxcConf
  const confLines = conf === undefined ? []
    : [`${conf.file} ${!conf.changed ? 'is up to date' : r.dryRun ? (conf.created ? 'would be created' : 'would be updated') : conf.created ? 'created' : 'updated'}`,
        ...(r.dryRun ? conf.diff.map(l => `  ${l}`) : [])]
  return {
    data: r,
    lines: [...r.warnings.map(formatProblem), `${r.file} ${verb} (${volumes.length} volume${volumes.length === 1 ? '' : 's'})`, ...volumes, ...confLines],
    exitCode: 0,
  }
}
