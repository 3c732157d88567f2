// pvdisk gc [--dry-run] [--keep N] [--revision R] [--prune-orphans] [--grace DAYS]
import { resolve } from 'node:path'
import type { Argv } from 'yargs'
import type { CommandResult, GlobalOptions } from '../cli-types.js'
import { humanBytes } from '../format.js'

export const command = 'gc'

export const describe = 'remove revision data of revisions no longer kept (every disk, encrypted ones included); --prune-orphans also permanent data of apps gone from the state'

export const builder = (y: Argv<GlobalOptions>) => y
  .option('dry-run', { type: 'boolean', default: false, describe: 'list what would go, with sizes; remove nothing' })
  .option('keep', { type: 'number', default: 2, describe: 'revisions kept besides the current one (newest first)' })
  .option('revision', { type: 'string', describe: 'the current revision (default: PVDISK_REVISION, else 0)' })
  .option('prune-orphans', { type: 'boolean', default: false, describe: 'also remove permanent data of apps absent from the state for longer than --grace' })
  .option('grace', { type: 'number', default: 30, describe: 'days an app must be absent before --prune-orphans removes its data, and days gc keeps the old copy a migration left behind' })

export const handler = async (argv: GlobalOptions & { dryRun: boolean, keep: number, revision?: string, pruneOrphans: boolean, grace: number }): Promise<CommandResult> => {
  const [{ runGc }, { loadState }, { currentRevision }, { PvdiskError }, { InvalidInputError }, { liveKernel }, { ProcessRunner }] = await Promise.all([
    import('../../caretaker/gc.js'), import('../../config/state.js'), import('../../volumes/volumes.js'), import('../../errors.js'), import('../../config/problems.js'), import('../../disks/context.js'), import('../../host/run.js')])
  if (!Number.isInteger(argv.keep) || argv.keep < 0) throw new PvdiskError('EUSAGE', `--keep ${argv.keep}: give a whole number of revisions, 0 or more`)
  if (!(argv.grace >= 0)) throw new PvdiskError('EUSAGE', `--grace ${argv.grace}: give a number of days, 0 or more`)
  const state = await loadState(argv.state)
  const errors = state.problems.filter(p => p.severity === 'error')
  if (errors.length > 0) throw new InvalidInputError(`${argv.state}: ${errors.length} error(s) in the state; nothing removed`, state.problems)
  const ctx = { root: resolve(argv.root), runner: new ProcessRunner(), kernel: liveKernel, log: () => undefined }
  const { createProgress } = await import('../../host/progress.js')
  let progress: ReturnType<typeof createProgress> | undefined
  const items = await runGc(ctx, state.disks, {
    revision: currentRevision(argv.revision), keep: argv.keep, pruneOrphans: argv.pruneOrphans, graceDays: argv.grace, dryRun: argv.dryRun,
    apps: state.apps.map(a => a.name),
    onProgress: (done, total, path) => {
      progress ??= createProgress(argv.dryRun ? 'gc (dry run)' : 'gc', total)
      progress.update(done, path)
    },
  })
  progress?.finish()
  const freed = items.filter(i => i.action === 'removed' || i.action === 'would remove').reduce((n, i) => n + i.bytes, 0)
  return {
    data: { items, bytes: freed },
    lines: [...items.map(i => `${i.action}: ${i.path} (${humanBytes(i.bytes)})`), `${argv.dryRun ? 'would free' : 'freed'} ${humanBytes(freed)}`],
    exitCode: 0,
  }
}
