// What LXC hands a hook: with lxc.hook.version 0 it appends "NAME lxc TYPE" to the hook's
// arguments; with version 1 it passes LXC_NAME and LXC_HOOK_TYPE in the environment.
import { PvdiskError } from '../../errors.js'

/** the app: given, else LXC's container name (version 0: appended to argv; version 1: LXC_NAME) */
export const appOf = (argv: { app?: string, lxc?: string[] }): string => {
  const extra = argv.lxc ?? []
  const lxcAt = extra.indexOf('lxc')
  // "volumes up web NAME lxc TYPE", "volumes up NAME lxc TYPE" (then app is NAME), or nothing appended
  if (extra.length > 0 && (lxcAt === -1 || lxcAt > 1 || extra.length !== lxcAt + 2)) {
    throw new PvdiskError('EUSAGE', `unexpected arguments: ${extra.join(' ')}`, ['pvdisk volumes up|down APP; LXC appends NAME lxc TYPE with lxc.hook.version 0'])
  }
  const name = argv.app ?? process.env.LXC_NAME
  if (!name) throw new PvdiskError('EUSAGE', 'no app: name it (pvdisk volumes up APP), or run from an LXC hook', ['pvdisk volumes up|down APP'])
  return name
}
