// pvdisk usage [--write DIR]
import type { Argv } from 'yargs'
import type { CommandResult, GlobalOptions } from '../cli-types.js'

const human = (n: number | undefined): string =>
  n === undefined ? '-' : n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)}G` : n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)}M` : `${(n / 1024).toFixed(0)}K`

export const usage = {
  command: 'usage',
  describe: 'per-disk and per-volume usage; --write DIR also writes usage.json and pvdisk.prom there',
  builder: (y: Argv<GlobalOptions>) => y
    .option('write', { type: 'string', describe: 'directory for usage.json and pvdisk.prom (node_exporter textfile collector)' }),
  handler: async (argv: GlobalOptions & { write?: string }): Promise<CommandResult> => {
    const [{ diskSession }, report, { writeFileAtomic }] = await Promise.all([import('../disks/session.js'), import('../usage-report.js'), import('../atomic-write.js')])
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
        ...r.disks.map(d => `${d.disk.padEnd(20)} ${d.state.padEnd(11)} size ${human(d.size)} used ${human(d.used)} free ${human(d.free)} inodes ${d.inodes ?? '-'}${d.imageAllocated !== undefined ? ` image ${human(d.imageAllocated)}` : ''}`),
        ...r.volumes.map(v => `  ${v.disk || '(no disk)'} ${v.persistence}${v.revision ? `@${v.revision}` : ''} ${v.app}/${v.volume}: ${human(v.bytes)} in ${v.files} files`),
        ...written.map(f => `wrote ${f}`),
      ],
      exitCode: 0,
    }
  },
}
