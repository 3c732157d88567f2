// pvdisk oci-hook [--stage STAGE] [--hooks-d DIR]
import { readFileSync } from 'node:fs'
import type { Argv } from 'yargs'
import type { CommandResult, GlobalOptions } from '../cli-types.js'

export const command = 'oci-hook'

export const describe = 'OCI runtime hook: reads the container state on stdin and mounts its pvdisk volumes (or, with --hooks-d, writes podman/CRI-O hook files)'

export const builder = (y: Argv<GlobalOptions>) => y
  .option('stage', { type: 'string', default: 'createRuntime', describe: 'createRuntime (or prestart) mounts; poststop releases' })
  .option('hooks-d', { type: 'string', describe: 'write hooks.d 1.0.0 files for podman and CRI-O into this directory' })
  .option('socket', { type: 'string', describe: 'with --hooks-d: the socket of the pvdisk serve the hooks ask first (default /run/docker/plugins/pvdisk.sock)' })

export const handler = async (argv: GlobalOptions & { stage: string, hooksD?: string, socket?: string }): Promise<CommandResult> => {
  const { ociHook, writeHooksD } = await import('../../runtimes/oci/hook.js')
  if (argv.hooksD !== undefined) {
    const files = await writeHooksD(argv.hooksD, argv.socket)
    return { data: { files }, lines: files.map(f => `wrote ${f}`), exitCode: 0 }
  }
  const lines = await ociHook(argv.stage, readFileSync(0, 'utf8'))
  return { data: { mounted: lines }, lines, exitCode: 0 }
}
