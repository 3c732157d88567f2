// pvdisk usage [--write DIR]
import { dirname } from 'node:path'
import type { Argv } from 'yargs'
import type { CommandResult, GlobalOptions } from '../cli-types.js'
import { humanBytes } from '../format.js'
import { mkdirNoFollow } from '../../host/no-follow.js'

export const command = 'usage'

export const describe = 'per-disk and per-volume usage; --write DIR also writes usage.json and pvdisk.prom there'

export const builder = (y: Argv<GlobalOptions>) => y
  .option('write', { type: 'string', describe: 'directory for usage.json and pvdisk.prom (node_exporter textfile collector)' })

export const handler = async (argv: GlobalOptions & { write?: string }): Promise<CommandResult> => {
  if (argv.write === '') {
    const { PvdiskError } = await import('../../errors.js')
    throw new PvdiskError('EUSAGE', '--write needs a directory', ['pvdisk usage --write /var/lib/node_exporter/textfile_collector'])
  }
  const [{ diskSession }, report, { writeFileAtomic }] = await Promise.all([import('../disk-session.js'), import('../../caretaker/usage-report.js'), import('../../host/atomic-write.js')])
  const session = await diskSession(argv, false)
  const cacheFile = report.cacheFileOf(session.ctx)
  const cache = report.loadCache(cacheFile, m => session.ctx.log(`warning: ${m}`))
  const r = report.collectUsage(session.ctx, session.disks, cache)
  try {
    mkdirNoFollow(session.ctx.root, dirname(cacheFile), 0o700)
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
}
