// pvdisk volumes up|down [APP]: Pantavisor's /volumes step, as LXC hooks run it. With
// lxc.hook.version 0 LXC appends "NAME lxc TYPE" to the hook's arguments; with version 1 it
// passes LXC_NAME and LXC_HOOK_TYPE. Either way the app is named explicitly or by LXC.
import type { Argv } from 'yargs'
import type { CommandResult, GlobalOptions } from '../cli-types.js'

export const command = 'volumes <action> [app] [lxc..]'

export const describe = 'volumes up|down APP: mount an app\'s volumes at <root>/volumes/<app>/<volume> (Pantavisor\'s /volumes step, for LXC hooks), or unmount them'

export const builder = (y: Argv<GlobalOptions>) =>
  y.positional('action', { choices: ['up', 'down'] as const, demandOption: true, describe: 'what to do' })
    .positional('app', { type: 'string', describe: 'the app (default: the container LXC names)' })
    .positional('lxc', { type: 'string', array: true, describe: 'what LXC appends with lxc.hook.version 0: NAME lxc TYPE' })
    .option('revision', { type: 'string', describe: 'revision for "revision" volumes (default: PVDISK_REVISION, else 0)' })

export const handler = async (argv: GlobalOptions & { action: 'up' | 'down', app?: string, lxc?: string[], revision?: string }): Promise<CommandResult> => {
  const [{ volumesUp, volumesDown }, { appOf }] = await Promise.all([import('../../runtimes/lxc/volumes.js'), import('../../runtimes/lxc/hook-args.js')])
  const opts = { state: argv.state, root: argv.root, app: appOf(argv), ...(argv.revision !== undefined ? { revision: argv.revision } : {}) }
  const mounts = argv.action === 'up' ? await volumesUp(opts) : await volumesDown(opts)
  return { data: mounts, lines: mounts.map(m => `${m.target}: ${m.result}${m.result === 'unmounted' ? '' : ` <- ${m.source}`}`), exitCode: 0 }
}
