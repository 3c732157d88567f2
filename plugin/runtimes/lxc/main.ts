#!/usr/bin/env node
// The LXC hook as its own small program (dist/pvdisk-lxc-hook.cjs): LXC runs it at every
// container start, so it skips the CLI's argument parser and loads only what the /volumes
// step needs. As hook lines:
//   lxc.hook.pre-start = pvdisk-lxc-hook up APP --state DIR [--root DIR] [--revision REV]
//   lxc.hook.post-stop = pvdisk-lxc-hook down APP --state DIR [--root DIR]
// (pvdisk volumes up|down takes the same arguments; dist/pvdisk-hook lxc ... hands the same
// work to a running `pvdisk serve` first.)
import { failureReport } from '../../config/problems.js'
import { LXC_HOOK_USAGE, parseLxcHookArgs } from './hook-args.js'
import { volumesDown, volumesUp } from './volumes.js'

const USAGE = `usage: ${LXC_HOOK_USAGE}
Pantavisor's /volumes step for LXC hooks: up mounts the app's images and volumes at
<root>/volumes/<app>/..., down unmounts them. LXC's own arguments (NAME lxc TYPE) may follow.
`
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(USAGE)
  process.exit(0)
}

const fail = (thrown: unknown): void => {
  const { text, exitCode } = failureReport(thrown, 'lxc hook')
  process.stderr.write(text)
  process.exitCode = exitCode
}
const run = () => {
  const { action, opts } = parseLxcHookArgs(process.argv.slice(2))
  return action === 'up' ? volumesUp(opts) : volumesDown(opts)
}
// no top-level await: the program is a CommonJS bundle, run from V8's code cache (scripts/bundle.mjs)
Promise.resolve().then(run).then(mounts => {
  if (mounts.length > 0) process.stdout.write(`${mounts.map(m => `${m.target}: ${m.result}`).join('\n')}\n`)
}, fail)
