// The caretaker's settings: a JSON config file, then command-line overrides, over defaults
// that suit a small device. Every problem is reported with its file and pointer.
import cron from 'node-cron'
import { FileProblems, InvalidInputError } from '../config/problems.js'
import { readJsonFile } from '../config/read-json-file.js'
import { closest } from '../config/suggest.js'

export interface CaretakerConfig {
  schedules: { usage: string, gc: string, health: string }
  /** where usage.json, pvdisk.prom and health.json go (node_exporter textfile directory) */
  metricsDir: string
  gc: { keep: number, pruneOrphans: boolean, graceDays: number }
  usage: { fullEvery: number }
  /** signed states: the daemon's mode, trust store and OEM name (flags and PVDISK_* win) */
  secureboot: { mode: string, trust: string, oemName: string }
}

/** suits a small device: usage every 15 min, health every 5 min, GC nightly */
export const defaultConfig = (): CaretakerConfig => ({
  schedules: { usage: '*/15 * * * *', gc: '17 3 * * *', health: '*/5 * * * *' },
  metricsDir: '/var/lib/pvdisk/metrics',
  gc: { keep: 2, pruneOrphans: false, graceDays: 30 },
  usage: { fullEvery: 24 },
  secureboot: { mode: '', trust: '', oemName: '' },
})

interface Shape { [key: string]: 'string' | 'number' | 'boolean' | 'cron' | Shape }
const SHAPE: Shape = {
  schedules: { usage: 'cron', gc: 'cron', health: 'cron' },
  metricsDir: 'string',
  gc: { keep: 'number', pruneOrphans: 'boolean', graceDays: 'number' },
  usage: { fullEvery: 'number' },
  secureboot: { mode: 'string', trust: 'string', oemName: 'string' },
}

const merge = (sink: FileProblems, target: Record<string, unknown>, value: unknown, shape: Shape, at: string): void => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return sink.error('config-type', at, 'must be an object')
  for (const [k, v] of Object.entries(value)) {
    const want = shape[k]
    const p = `${at}/${k}`
    if (want === undefined) {
      const near = closest(k, Object.keys(shape))
      sink.error('config-unknown-key', p, `unknown key "${k}"`, near ? `did you mean "${near}"?` : `known keys: ${Object.keys(shape).join(', ')}`)
    } else if (typeof want === 'object') merge(sink, target[k] as Record<string, unknown>, v, want, p)
    else if (want === 'cron') {
      if (typeof v === 'string' && cron.validate(v)) target[k] = v
      else sink.error('config-cron', p, `${JSON.stringify(v)} is not a valid cron expression`, 'write five or six fields, e.g. "*/15 * * * *"')
    } else if (typeof v !== want || (want === 'number' && (!Number.isInteger(v) || (v as number) < 0))) {
      sink.error('config-type', p, `must be ${want === 'number' ? 'a whole number, 0 or more' : `a ${want}`}`)
    } else target[k] = v
  }
}

/** a JSON config file, then command-line overrides, over the defaults; every problem reported */
export const loadConfig = async (file: string | undefined, overrides: Partial<Record<'usage' | 'gc' | 'health', string>> & { metricsDir?: string } = {}): Promise<CaretakerConfig> => {
  const config = defaultConfig()
  const target = config as unknown as Record<string, unknown>
  const fromFile = new FileProblems(file ?? '')
  if (file !== undefined) {
    const parsed = await readJsonFile(file, fromFile)
    if (parsed) merge(fromFile, target, parsed.value, SHAPE, '')
  }
  const schedules = Object.fromEntries((['usage', 'gc', 'health'] as const).filter(k => overrides[k] !== undefined).map(k => [k, overrides[k]]))
  const flags = new FileProblems('(command line)')
  merge(flags, target, { ...(Object.keys(schedules).length ? { schedules } : {}), ...(overrides.metricsDir !== undefined ? { metricsDir: overrides.metricsDir } : {}) }, SHAPE, '')
  const all = [...fromFile.list, ...flags.list]
  if (all.some(p => p.severity === 'error')) throw new InvalidInputError('invalid caretaker configuration; not starting', all)
  return config
}
