// pvdisk verity make APP VOLUME [--dry-run]: seal a read-only image with dm-verity, as
// `pvr dm-convert APP VOLUME` does (the hash tree, _dm/VOLUME.json, run.json's dm:VOLUME).
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Argv } from 'yargs'
import type { CommandResult, GlobalOptions } from '../cli-types.js'

export const command = 'verity <action> <app> <volume>'

export const describe = 'verity make APP VOLUME: hash the image APP/VOLUME with dm-verity and make run.json mount it as dm:VOLUME (pvr dm-convert)'

export const builder = (y: Argv<GlobalOptions>) =>
  y.positional('action', { choices: ['make'] as const, demandOption: true, describe: 'what to do' })
    .positional('app', { type: 'string', demandOption: true, describe: 'the app directory in the state' })
    .positional('volume', { type: 'string', demandOption: true, describe: 'the image\'s file name in it, e.g. root.squashfs' })
    .option('dry-run', { type: 'boolean', default: false, describe: 'print the command that would run and the files that would change, write nothing' })

export const handler = async (argv: GlobalOptions & { action: 'make', app: string, volume: string, dryRun: boolean }): Promise<CommandResult> => {
  const [{ makeVerity }, { liveKernel }, { ProcessRunner, RecordingRunner }] = await Promise.all([
    import('../../volumes/verity-make.js'), import('../../disks/context.js'), import('../../host/run.js')])
  const runner = new RecordingRunner()
  const made = await makeVerity({ root: resolve(argv.root), runner: argv.dryRun ? runner : new ProcessRunner(), kernel: liveKernel, log: () => undefined }, argv.state, argv.app, argv.volume)
  if (argv.dryRun) return { data: { commands: runner.lines }, lines: runner.lines, exitCode: 0 }
  const signed = existsSync(join(argv.state, '_sigs'))
  const lines = made.written.length === 0
    ? [`${argv.app}/${argv.volume}: already a verity volume (root hash ${made.rootHash}); nothing changed`]
    : [`${argv.app}/${argv.volume}: verity volume made, ${made.blockSize}-byte blocks, root hash ${made.rootHash}`, ...made.written.map(f => `  wrote ${f}`),
        ...(signed ? ['the state is signed: sign it again (pvdisk sign APP --key ...), or the device refuses the changed files'] : [])]
  return { data: made, lines, exitCode: 0 }
}
