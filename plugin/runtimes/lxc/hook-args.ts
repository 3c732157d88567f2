// What LXC hands a hook: with lxc.hook.version 0 it appends "NAME lxc TYPE" to the hook's
// arguments; with version 1 it passes LXC_NAME and LXC_HOOK_TYPE in the environment.
import { PvdiskError } from '../../errors.js'

/** the app: given, else LXC's container name (version 0: appended to argv; version 1: LXC_NAME) */
export const appOf = (argv: { app?: string, lxc?: string[] }, env: NodeJS.ProcessEnv = process.env): string => {
  const extra = argv.lxc ?? []
  const lxcAt = extra.indexOf('lxc')
  // "volumes up web NAME lxc TYPE", "volumes up NAME lxc TYPE" (then app is NAME), or nothing appended
  if (extra.length > 0 && (lxcAt === -1 || lxcAt > 1 || extra.length !== lxcAt + 2)) {
    throw new PvdiskError('EUSAGE', `unexpected arguments: ${extra.join(' ')}`, ['pvdisk volumes up|down APP; LXC appends NAME lxc TYPE with lxc.hook.version 0'])
  }
  const name = argv.app ?? env.LXC_NAME
  if (!name) throw new PvdiskError('EUSAGE', 'no app: name it (pvdisk volumes up APP), or run from an LXC hook', ['pvdisk volumes up|down APP'])
  return name
}

export const LXC_HOOK_USAGE = 'pvdisk-lxc-hook up|down APP --state DIR [--root DIR] [--revision REV]'

/** the hook program's arguments: up|down [APP] --state DIR [--root DIR] [--revision REV] [NAME lxc TYPE] */
export const parseLxcHookArgs = (args: readonly string[], env: NodeJS.ProcessEnv = process.env) => {
  const flags: Record<string, string> = {}
  const positional: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? ''
    const flag = /^--(state|root|revision)(?:=(.*))?$/.exec(a)
    if (flag) {
      const value = flag[2] ?? args[++i]
      if (value === undefined) throw new PvdiskError('EUSAGE', `${a} needs a value`)
      flags[flag[1] ?? ''] = value
    } else if (a.startsWith('--')) throw new PvdiskError('EUSAGE', `unknown option ${a}`, [LXC_HOOK_USAGE])
    else positional.push(a)
  }
  const [action, app, ...lxc] = positional
  if (action !== 'up' && action !== 'down') throw new PvdiskError('EUSAGE', `first argument: up or down, not ${JSON.stringify(action ?? '')}`, [LXC_HOOK_USAGE])
  // the caller's environment decides, not the process that happens to do the work
  const revision = flags.revision ?? env.PVDISK_REVISION ?? '0'
  return { action, opts: { state: flags.state ?? '.', root: flags.root ?? '/', app: appOf(app === undefined ? { lxc } : { app, lxc }, env), revision } }
}
