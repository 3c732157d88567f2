// pvdisk migrate [--dry-run] [--revision REV]: move the data of volumes whose disk or
// persistence changed since their app last started, without starting anything
import { resolve } from 'node:path'
import type { Argv } from 'yargs'
import type { CommandResult, GlobalOptions } from '../cli-types.js'
import { requireRoot } from '../root.js'

export const command = 'migrate [path]'

export const describe = 'move the data of volumes whose disk or persistence changed since their app last started (copy, verify, sync, rename); --dry-run lists them with sizes'

export const builder = (y: Argv<GlobalOptions>) => y
  .positional('path', { type: 'string', describe: 'the state directory (instead of --state)' })
  .option('dry-run', { type: 'boolean', default: false, describe: 'list what would move, with sizes; move nothing' })
  .option('revision', { type: 'string', describe: 'revision for "revision" volumes (default: PVDISK_REVISION, else 0)' })

export const handler = async (argv: GlobalOptions & { path?: string, dryRun: boolean, revision?: string }): Promise<CommandResult> => {
  if (!argv.dryRun) requireRoot('migrate', 'it mounts disks and copies volume data')
  const [{ stateMigrations }, { humanBytes }, { describePlacement }, { recordedPluginVolumes }] = await Promise.all([
    import('../../volumes/migrate-state.js'), import('../format.js'), import('../../volumes/placements.js'), import('../../runtimes/volume-plugin/driver-state.js')])
  const messages: string[] = []
  const warn = (m: string) => messages.push(`warning: ${m}`)
  const pluginVolumes = recordedPluginVolumes(resolve(argv.root), warn)
  const moves = await stateMigrations({ state: argv.path ?? argv.state, root: argv.root, dryRun: argv.dryRun, pluginVolumes, log: m => messages.push(m), ...(argv.revision !== undefined ? { revision: argv.revision } : {}) })
  const size = (m: typeof moves[number]) => (m.unknownSize !== undefined ? `size unknown: ${m.unknownSize}` : `${m.files} files, ${humanBytes(m.bytes)}`)
  const lines = moves.length === 0 ? ['nothing to migrate'] : moves.map(m =>
    `${m.app} ${m.plugin ? `plugin volume ${m.volume}` : m.containerPath ?? m.volume}: ${describePlacement(m.old)} -> ${describePlacement(m.new)}, ${size(m)}${argv.dryRun ? ' (would move)' : ''}\n  ${m.from} -> ${m.to}`)
  return { data: moves.map(({ fromDisk: _d, ...m }) => m), lines: [...messages, ...lines], exitCode: 0 }
}
