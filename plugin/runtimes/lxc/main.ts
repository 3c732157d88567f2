#!/usr/bin/env node
// The LXC hook as its own small program (dist/pvdisk-lxc-hook.mjs): LXC runs it at every
// container start, so it skips the CLI's argument parser and loads only what the /volumes
// step needs. As hook lines:
//   lxc.hook.pre-start = pvdisk-lxc-hook up APP --state DIR [--root DIR] [--revision REV]
//   lxc.hook.post-stop = pvdisk-lxc-hook down APP --state DIR [--root DIR]
// (pvdisk volumes up|down takes the same arguments.)
import { InvalidInputError, formatProblem } from '../../config/problems.js'
import { exitStatusOf, fromSystemError, isPvdiskError, PvdiskError } from '../../errors.js'
import { appOf } from './hook-args.js'
import { volumesDown, volumesUp } from './volumes.js'

const parse = (args: string[]) => {
  const flags: Record<string, string> = {}
  const positional: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? ''
    const flag = /^--(state|root|revision)(?:=(.*))?$/.exec(a)
    if (flag) {
      const value = flag[2] ?? args[++i]
      if (value === undefined) throw new PvdiskError('EUSAGE', `${a} needs a value`)
      flags[flag[1] ?? ''] = value
    } else if (a.startsWith('--')) throw new PvdiskError('EUSAGE', `unknown option ${a}`, ['pvdisk-lxc-hook up|down APP --state DIR [--root DIR] [--revision REV]'])
    else positional.push(a)
  }
  const [action, app, ...lxc] = positional
  if (action !== 'up' && action !== 'down') throw new PvdiskError('EUSAGE', `first argument: up or down, not ${JSON.stringify(action ?? '')}`, ['pvdisk-lxc-hook up|down APP --state DIR'])
  return { action, opts: { state: flags.state ?? '.', root: flags.root ?? '/', app: appOf(app === undefined ? { lxc } : { app, lxc }), ...(flags.revision !== undefined ? { revision: flags.revision } : {}) } }
}

const USAGE = `usage: pvdisk-lxc-hook up|down APP --state DIR [--root DIR] [--revision REV]
Pantavisor's /volumes step for LXC hooks: up mounts the app's images and volumes at
<root>/volumes/<app>/..., down unmounts them. LXC's own arguments (NAME lxc TYPE) may follow.
`
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(USAGE)
  process.exit(0)
}

try {
  const { action, opts } = parse(process.argv.slice(2))
  const mounts = action === 'up' ? await volumesUp(opts) : await volumesDown(opts)
  if (mounts.length > 0) process.stdout.write(`${mounts.map(m => `${m.target}: ${m.result}`).join('\n')}\n`)
} catch (thrown) {
  const e = fromSystemError(thrown) ?? thrown
  if (isPvdiskError(e)) {
    const problems = e instanceof InvalidInputError ? e.problems.filter(p => p.severity === 'error') : []
    process.stderr.write([...problems.map(formatProblem), `pvdisk: ${e.message}`, ...e.details.map(d => `  ${d}`)].join('\n') + '\n')
    process.exitCode = exitStatusOf(e.code)
  } else {
    process.stderr.write(`pvdisk: lxc hook: unexpected error: ${(e as Error).message}\n`)
    process.exitCode = 1
  }
}
