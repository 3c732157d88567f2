// pvdisk usage [--write DIR]
import type { Argv } from 'yargs'
import type { CommandResult, GlobalOptions } from '../cli-types.js'
import { humanBytes } from '../format.js'


export const usage = {
  command: 'usage',
  describe: 'per-disk and per-volume usage; --write DIR also writes usage.json and pvdisk.prom there',
  builder: (y: Argv<GlobalOptions>) => y
    .option('write', { type: 'string', describe: 'directory for usage.json and pvdisk.prom (node_exporter textfile collector)' }),
  handler: async (argv: GlobalOptions & { write?: string }): Promise<CommandResult> => {
    const [{ diskSession }, report, { writeFileAtomic }] = await Promise.all([import('../disk-session.js'), import('../../caretaker/usage-report.js'), import('../../host/atomic-write.js')])
    const session = await diskSession(argv, false)
    const cacheFile = report.cacheFileOf(session.ctx)
    const cache = report.loadCache(cacheFile)
    const r = report.collectUsage(session.ctx, session.disks, cache)
    const { mkdirSync } = await import('node:fs')
    const { dirname } = await import('node:path')
    try {
      mkdirSync(dirname(cacheFile), { recursive: true, mode: 0o700 })
      await writeFileAtomic(cacheFile, JSON.stringify(cache), 0o600)
    } catch {
      // a read-only root still gets its report, only slower next time
    }
    const written = argv.write !== undefined ? await report.writeUsage(argv.write, r) : []
    return {
      data: r,
      lines: [
        ...r.disks.map(d => `${d.disk.padEnd(20)} ${d.state.padEnd(11)} size ${humanBytes(d.size)} used ${humanBytes(d.used)} free ${humanBytes(d.free)} inodes ${d.inodes ?? '-'}${d.imageAllocated !== undefined ? ` image ${humanBytes(d.imageAllocated)}` : ''}`),
        ...r.volumes.map(v => `  ${v.disk || '(no disk)'} ${v.persistence}${v.revision ? `@${v.revision}` : ''} ${v.app}/${v.volume}: ${humanBytes(v.bytes)} in ${v.files} files`),
        ...written.map(f => `wrote ${f}`),
      ],
      exitCode: 0,
    }
  },
}

export const gc = {
  command: 'gc',
  describe: 'remove revision data of revisions no longer kept (every disk, encrypted ones included); --prune-orphans also permanent data of apps gone from the state',
  builder: (y: Argv<GlobalOptions>) => y
    .option('dry-run', { type: 'boolean', default: false, describe: 'list what would go, with sizes; remove nothing' })
    .option('keep', { type: 'number', default: 2, describe: 'revisions kept besides the current one (newest first)' })
    .option('revision', { type: 'string', describe: 'the current revision (default: PVDISK_REVISION, else 0)' })
    .option('prune-orphans', { type: 'boolean', default: false, describe: 'also remove permanent data of apps absent from the state for longer than --grace' })
    .option('grace', { type: 'number', default: 30, describe: 'days an app must be absent before --prune-orphans removes its data' }),
  handler: async (argv: GlobalOptions & { dryRun: boolean, keep: number, revision?: string, pruneOrphans: boolean, grace: number }): Promise<CommandResult> => {
    const [{ runGc }, { loadState }, { currentRevision }, { PvdiskError }, { InvalidInputError }, { liveKernel }, { ProcessRunner }] = await Promise.all([
      import('../../caretaker/gc.js'), import('../../config/state.js'), import('../../volumes/volumes.js'), import('../../errors.js'), import('../../config/app-install.js'), import('../../disks/context.js'), import('../../host/run.js')])
    if (!Number.isInteger(argv.keep) || argv.keep < 0) throw new PvdiskError('EUSAGE', `--keep ${argv.keep}: give a whole number of revisions, 0 or more`)
    if (!(argv.grace >= 0)) throw new PvdiskError('EUSAGE', `--grace ${argv.grace}: give a number of days, 0 or more`)
    const state = await loadState(argv.state)
    const errors = state.problems.filter(p => p.severity === 'error')
    if (errors.length > 0) throw new InvalidInputError(`${argv.state}: ${errors.length} error(s) in the state; nothing removed`, state.problems)
    const { resolve } = await import('node:path')
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
  },
}
