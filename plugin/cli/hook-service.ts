// The hooks' fast path: `pvdisk serve` answers POST /Pvdisk.Hook on its socket, so a hook
// run by dist/pvdisk-hook (a POSIX sh client around curl, which starts in ~10 ms where Node
// takes ~70) does its work in the resident process. The work is the same code as the hook
// programs run in-process; the client falls back to them when no daemon answers.
//
// The request body, NUL-separated: "pvdisk-hook/1", the client's pid, its cwd, the kind
// (oci | lxc), the argument count and the arguments, the environment count and K=V
// entries; everything after the last NUL is the hook's stdin (the OCI state).
// The reply: 200 with the hook's output, or 400 (exit 2) / 500 (exit 1) with its error
// text; 409 when the client is not in the daemon's pid namespace (it then works in-process).
import { readFileSync } from 'node:fs'
import { isAbsolute, resolve } from 'node:path'
import { failureReport } from '../config/problems.js'
import { PvdiskError } from '../errors.js'
import type { Runner } from '../host/run.js'
import { ociHook } from '../runtimes/oci/hook.js'
import { parseLxcHookArgs } from '../runtimes/lxc/hook-args.js'
import { volumesDown, volumesUp } from '../runtimes/lxc/volumes.js'

export const HOOK_PROTOCOL = 'pvdisk-hook/1'

export interface HookRequest {
  pid: number
  cwd: string
  kind: string
  args: string[]
  env: Record<string, string>
  stdin: Buffer
}

export interface HookReply {
  status: number
  text: string
  /** what was asked, for the daemon's log: "lxc up web --state ..." */
  request?: string
}

export const decodeHookRequest = (body: Buffer): HookRequest => {
  let at = 0
  const next = (): string => {
    const end = body.indexOf(0, at)
    if (end < 0) throw new PvdiskError('EUSAGE', 'hook request: truncated')
    const field = body.subarray(at, end).toString('utf8')
    at = end + 1
    return field
  }
  const count = (): number => {
    const n = Number(next())
    if (!Number.isSafeInteger(n) || n < 0 || n > 1000) throw new PvdiskError('EUSAGE', 'hook request: a count is not a number')
    return n
  }
  if (next() !== HOOK_PROTOCOL) throw new PvdiskError('EUSAGE', `hook request: not ${HOOK_PROTOCOL}`)
  const pid = Number(next())
  const cwd = next()
  const kind = next()
  const args = Array.from({ length: count() }, next)
  const env: Record<string, string> = {}
  for (const entry of Array.from({ length: count() }, next)) {
    const eq = entry.indexOf('=')
    if (eq > 0 && entry.length > eq + 1) env[entry.slice(0, eq)] = entry.slice(eq + 1) // empty counts as unset
  }
  if (!Number.isSafeInteger(pid) || pid <= 0 || !isAbsolute(cwd)) throw new PvdiskError('EUSAGE', 'hook request: no pid or no absolute cwd')
  return { pid, cwd, kind, args, env, stdin: body.subarray(at) }
}

/** the client is the process with its pid here: same pid namespace, so the OCI state's pid means the same process */
const samePidNamespace = (pid: number): boolean => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`).includes('pvdisk-hook')
  } catch {
    return false
  }
}

const run = async (req: HookRequest, runner: Runner): Promise<string[]> => {
  if (req.kind === 'oci') {
    const at = req.args.indexOf('--stage')
    return ociHook(at >= 0 ? req.args[at + 1] ?? '' : 'createRuntime', req.stdin.toString('utf8'), { runner, env: req.env, cwd: req.cwd })
  }
  if (req.kind === 'lxc') {
    const { action, opts } = parseLxcHookArgs(req.args, req.env)
    // relative paths in a hook line mean the hook's own cwd, not the daemon's
    const where = { ...opts, state: resolve(req.cwd, opts.state), root: resolve(req.cwd, opts.root), runner }
    const mounts = action === 'up' ? await volumesUp(where) : await volumesDown(where)
    return mounts.map(m => `${m.target}: ${m.result}`)
  }
  throw new PvdiskError('EUSAGE', `hook kind ${JSON.stringify(req.kind)}: oci or lxc`, ['pvdisk-hook oci --stage STAGE | pvdisk-hook lxc up|down APP --state DIR'])
}

export const serveHook = async (body: Buffer, runner: Runner): Promise<HookReply> => {
  let req: HookRequest
  try {
    req = decodeHookRequest(body)
  } catch (e) {
    return { status: 400, text: failureReport(e, 'hook').text }
  }
  if (!samePidNamespace(req.pid)) return { status: 409, text: 'pvdisk: hook: the client is not in the daemon\'s pid namespace; working in-process\n' }
  const request = [req.kind, ...req.args].join(' ')
  try {
    const lines = await run(req, runner)
    return { status: 200, text: lines.length > 0 ? `${lines.join('\n')}\n` : '', request }
  } catch (e) {
    const { text, exitCode } = failureReport(e, `${req.kind} hook`)
    return { status: exitCode === 2 ? 400 : 500, text, request }
  }
}
