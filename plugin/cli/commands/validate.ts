// pvdisk validate [PATH...]
import type { Argv } from 'yargs'
import { countBySeverity, formatProblem } from '../../config/problems.js'
import type { CommandResult, GlobalOptions } from '../cli-types.js'

export const command = 'validate [paths..]'
export const describe = 'validate a state directory (default: --state) or single device.json, src.json and run.json files'

export const builder = (y: Argv<GlobalOptions>) =>
  y.positional('paths', { type: 'string', array: true, describe: 'state directories or files' })

export const handler = async (argv: GlobalOptions & { paths?: string[] }): Promise<CommandResult> => {
  const { validatePaths } = await import('../../config/state.js')
  const paths = argv.paths && argv.paths.length > 0 ? argv.paths : [argv.state]
  const problems = await validatePaths(paths)
  const { errors, warnings } = countBySeverity(problems)
  const summary = `${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'} in ${paths.join(', ')}`
  return {
    data: { ok: errors === 0, errors, warnings, problems },
    lines: [...problems.map(formatProblem), errors === 0 ? `valid: ${summary}` : `invalid: ${summary}`],
    exitCode: errors === 0 ? 0 : 2,
  }
}
