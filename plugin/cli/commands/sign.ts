// pvdisk sign NAME --key FILE [--x5c FILE] [--include GLOB...] [--exclude GLOB...] [--raw] [--noconfig]
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Argv } from 'yargs'
import type { CommandResult, GlobalOptions } from '../cli-types.js'

export const command = 'sign <name>'
export const describe = 'sign the state as `pvr sig add` does: writes _sigs/NAME.json (pvs@2) over the app NAME (or, with --raw, the globs given)'

export const builder = (y: Argv<GlobalOptions>) =>
  y.positional('name', { type: 'string', demandOption: true, describe: 'the part (app or bsp) to sign, and the signature\'s name' })
    .option('key', { type: 'string', demandOption: true, describe: 'PEM private key: RSA (RS256) or EC on P-256, P-384, P-521 (ES256, ES384, ES512)' })
    .option('x5c', { type: 'string', describe: 'PEM certificate chain, leaf first, embedded as x5c (without it the device verifies with its pub.pem)' })
    .option('include', { type: 'string', array: true, describe: 'globs to include, below NAME/ unless --raw (default **)' })
    .option('exclude', { type: 'string', array: true, describe: 'globs to exclude, below NAME/ unless --raw (default src.json)' })
    .option('raw', { type: 'boolean', default: false, describe: 'take --include and --exclude as they are, not below NAME/' })
    .option('noconfig', { type: 'boolean', default: false, describe: 'leave _config/NAME/** out' })

export const handler = async (argv: GlobalOptions & { name: string, key: string, x5c?: string, include?: string[], exclude?: string[], raw: boolean, noconfig: boolean }): Promise<CommandResult> => {
  const { PvdiskError } = await import('../../errors.js')
  const { stateJsonOf } = await import('../../config/pvs/state-json.js')
  const { partGlobs, signState } = await import('../../config/pvs/sign.js')
  const { writeFileAtomic } = await import('../../host/atomic-write.js')
  if (!/^[A-Za-z0-9._+-]+$/.test(argv.name) || argv.name.startsWith('.')) throw new PvdiskError('EUSAGE', `"${argv.name}" is not usable as a signature name`, ['use the app\'s name: letters, digits, ".", "_", "+", "-"'])
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file)
    } catch (e) {
      throw new PvdiskError('EUSAGE', `cannot read the ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
    }
  }
  const key = read(argv.key, 'key')
  const globs = partGlobs(argv.name, argv)
  const state = stateJsonOf(argv.state)
  let signed: { text: string, entries: string[] }
  try {
    signed = signState(state, { key, include: globs.include, exclude: globs.exclude, ...(argv.x5c ? { x5c: read(argv.x5c, 'certificate chain') } : {}) })
  } catch (e) {
    throw new PvdiskError('EUSAGE', `cannot sign with ${argv.key}: ${(e as Error).message}`, ['give a PEM private key (RSA, or EC on P-256, P-384 or P-521)'])
  } finally {
    key.fill(0)
  }
  const { text, entries } = signed
  const file = join(argv.state, '_sigs', `${argv.name}.json`)
  mkdirSync(join(argv.state, '_sigs'), { recursive: true })
  await writeFileAtomic(file, text, 0o644)
  return { data: { file, include: globs.include, exclude: globs.exclude, entries }, lines: [`wrote ${file}: ${entries.length} entries signed`, ...entries.map(e => `  ${e}`)], exitCode: 0 }
}
