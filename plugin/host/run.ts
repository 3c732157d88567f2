// Layer host/ (the bottom; docs/architecture.md): what pvdisk needs from the machine: the
// process runner, the kernel's mount, loop and device-mapper tables read from /proc and
// /sys, atomic file writes and a progress line. It imports nothing of pvdisk's but
// errors.ts, so everything above can rely on it and nothing in it knows about disks.
//
// The only module that starts processes. Commands are argv arrays (never a shell string),
// run with a timeout, with stderr kept for the error. Key material only ever travels
// through stdin and is never recorded or printed. A RecordingRunner stands in for plan
// mode (`pvdisk plan`, --dry-run) and for tests that assert exact command lines.
import { spawn } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import { PvdiskError } from '../errors.js'
import { forgetMounts } from './kernel.js'

export interface Command {
  /** argv[0] is looked up in PATH */
  argv: readonly string[]
  /** fed to stdin */
  input?: string | Uint8Array
  /** the input is key material: never recorded, printed or logged */
  secretInput?: boolean
  timeoutMs?: number
  /** exit statuses that count as success (default [0]) */
  okCodes?: readonly number[]
  /** stdout is binary (key material): kept as bytes in `output`, never decoded; stdout is "" */
  binaryOutput?: boolean
  /** working directory (tools such as caam-keygen resolve relative paths against it) */
  cwd?: string
}

export interface CommandResult {
  code: number
  stdout: string
  stderr: string
  /** stdout as bytes, for binaryOutput commands; the caller wipes it after use */
  output?: Buffer
}

export interface Runner {
  /** true when commands are recorded, not run */
  readonly planning: boolean
  run(cmd: Command): Promise<CommandResult>
  /** a step pvdisk does itself (mkdir, writing a key file), shown in plans */
  note(step: string): void
}

const DEFAULT_TIMEOUT_MS = 120_000
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
const MAX_OUTPUT = 1024 * 1024

/** a POSIX shell rendering of argv, for plans and error messages (never executed) */
export const shellQuote = (argv: readonly string[]): string =>
  argv.map(a => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) || /^\$[A-Z_]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')

export const describeCommand = (cmd: Command): string => {
  if (cmd.input === undefined) return shellQuote(cmd.argv)
  const what = cmd.secretInput ? 'key material on stdin' : JSON.stringify(String(cmd.input)).slice(0, 60)
  return `${shellQuote(cmd.argv)} <<< (${what})`
}

const lastLines = (s: string, n = 5): string[] => s.trim().split('\n').filter(Boolean).slice(-n)

/**
 * Test hook: PVDISK_CRASH_AT=N kills this process with SIGKILL just before its N-th step
 * (command or file step), to prove that every operation converges after a crash.
 */
const crashAt = Number(process.env.PVDISK_CRASH_AT ?? 0)
let steps = 0
const maybeCrash = (): void => {
  steps++
  if (crashAt > 0 && steps === crashAt) process.kill(process.pid, 'SIGKILL')
}

export class ProcessRunner implements Runner {
  readonly planning = false

  note(): void {
    maybeCrash() // file steps are only shown in plans, but count as crash points
  }

  run(cmd: Command): Promise<CommandResult> {
    const [file, ...args] = cmd.argv
    if (file === undefined) throw new PvdiskError('ECOMMAND', 'empty command')
    maybeCrash()
    const timeoutMs = cmd.timeoutMs ?? DEFAULT_TIMEOUT_MS
    return new Promise((resolve, reject) => {
      const child = spawn(file, args, {
        stdio: ['pipe', 'pipe', 'pipe'],
        ...(cmd.cwd !== undefined ? { cwd: cmd.cwd } : {}),
        // runtimes run hooks with an empty environment: give the tools a PATH
        env: { ...process.env, PATH: process.env.PATH ?? DEFAULT_PATH, LC_ALL: 'C', DM_DISABLE_UDEV: process.env.DM_DISABLE_UDEV ?? '1' },
      })
      const out: Buffer[] = []
      const err: Buffer[] = []
      let size = 0
      const collect = (into: Buffer[]) => (b: Buffer) => {
        if (size < MAX_OUTPUT) into.push(b)
        size += b.length
      }
      child.stdout.on('data', collect(out))
      child.stderr.on('data', collect(err))
      let timedOut = false
      const timer = setTimeout(() => {
        timedOut = true
        child.kill('SIGKILL')
      }, timeoutMs)
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer)
        reject(e.code === 'ENOENT'
          ? new PvdiskError('ETOOL', `${file}: command not found`, [`install the package that provides ${file}`])
          : new PvdiskError('ECOMMAND', `${file}: cannot start: ${e.message}`))
      })
      child.on('close', (code, signal) => {
        clearTimeout(timer)
        forgetMounts() // a command may have mounted or unmounted something
        const stdout = Buffer.concat(out)
        for (const b of out) b.fill(0)
        const result: CommandResult = cmd.binaryOutput
          ? { code: code ?? -1, stdout: '', output: stdout, stderr: Buffer.concat(err).toString('utf8') }
          : { code: code ?? -1, stdout: stdout.toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }
        const failed = timedOut || signal !== null || !(cmd.okCodes ?? [0]).includes(result.code)
        if (failed) result.output?.fill(0) // nobody will use (or wipe) the bytes of a failed command
        if (timedOut) {
          reject(new PvdiskError('ECOMMAND', `${shellQuote(cmd.argv)}: timed out after ${timeoutMs / 1000} s`, lastLines(result.stderr)))
        } else if (signal !== null || !(cmd.okCodes ?? [0]).includes(result.code)) {
          const why = signal !== null ? `killed by ${signal}` : `exit status ${result.code}`
          const detail = lastLines(result.stderr).concat(lastLines(result.stderr).length ? [] : lastLines(result.stdout))
          reject(Object.assign(new PvdiskError('ECOMMAND', `${shellQuote(cmd.argv)}: failed (${why})${detail[0] ? `: ${detail[detail.length - 1]}` : ''}`, detail), { result }))
        } else resolve(result)
      })
      child.stdin.on('error', () => undefined) // the child may exit without reading stdin
      child.stdin.end(cmd.input ?? '')
    })
  }
}

export interface RecordedCommand {
  argv: string[]
  input?: string // "<secret>" for key material
  /** a step pvdisk does itself, not a command */
  note?: string
  cwd?: string
}

/** records commands instead of running them; `respond` scripts results for tests */
export class RecordingRunner implements Runner {
  readonly planning: boolean
  readonly commands: RecordedCommand[] = []
  private readonly respond: (cmd: Command) => Partial<CommandResult> | undefined

  constructor(opts: { planning?: boolean, respond?: (cmd: Command) => Partial<CommandResult> | undefined } = {}) {
    this.planning = opts.planning ?? true
    this.respond = opts.respond ?? (() => undefined)
  }

  async run(cmd: Command): Promise<CommandResult> {
    const rec: RecordedCommand = { argv: [...cmd.argv] }
    if (cmd.input !== undefined) rec.input = cmd.secretInput ? '<secret>' : String(cmd.input)
    if (cmd.cwd !== undefined) rec.cwd = cmd.cwd
    this.commands.push(rec)
    const r: CommandResult = { code: 0, stdout: '', stderr: '', ...(cmd.binaryOutput ? { output: Buffer.alloc(32) } : {}), ...this.respond(cmd) }
    if (!(cmd.okCodes ?? [0]).includes(r.code)) {
      throw Object.assign(new PvdiskError('ECOMMAND', `${shellQuote(cmd.argv)}: failed (exit status ${r.code})`, lastLines(r.stderr)), { result: r })
    }
    return r
  }

  note(step: string): void {
    this.commands.push({ argv: [], note: step })
  }

  /** commands only, as argv lists */
  get argvs(): string[][] {
    return this.commands.filter(c => c.note === undefined).map(c => c.argv)
  }

  /** the plan as a person reads it: shell-quoted commands, and "# ..." for pvdisk's own steps */
  get lines(): string[] {
    return this.commands.map(c => (c.note !== undefined ? `# ${c.note}`
      : (c.cwd !== undefined ? `(cd ${shellQuote([c.cwd])} && ` : '') +
        describeCommand(c.input === undefined ? { argv: c.argv } : { argv: c.argv, input: c.input, secretInput: c.input === '<secret>' }) +
        (c.cwd !== undefined ? ')' : '')))
  }
}

// Debian packages that provide the tools pvdisk runs
const PACKAGES: Record<string, string> = {
  cryptsetup: 'cryptsetup-bin', veritysetup: 'cryptsetup-bin', dmsetup: 'dmsetup', keyctl: 'keyutils', losetup: 'mount', mount: 'mount', umount: 'mount',
  'mkfs.ext4': 'e2fsprogs', 'fsck.ext4': 'e2fsprogs', fallocate: 'util-linux', blockdev: 'util-linux',
  'caam-keygen': 'keyctl-caam (from meta-pantavisor; not in Debian)', 'x--pv-dcp-tool': 'your board vendor (Pantavisor does not ship it)',
  'dcp-blob-create': 'Pantavisor (tools/dcp-blob-create)',
}

/** tools found, by PATH and name: a long-running pvdisk looks each up once (one that is still missing is looked for again) */
const found = new Map<string, string>()

export const findInPath = (tool: string, path = process.env.PATH ?? DEFAULT_PATH): string | undefined => {
  const known = found.get(`${path}\0${tool}`)
  if (known !== undefined) return known
  for (const dir of path.split(delimiter)) {
    if (!dir) continue
    try {
      accessSync(join(dir, tool), constants.X_OK)
      found.set(`${path}\0${tool}`, join(dir, tool))
      return join(dir, tool)
    } catch {
      // not here
    }
  }
  return undefined
}

/** fails before anything is created when a tool is missing */
export const requireTools = (tools: readonly string[]): void => {
  const missing = tools.filter(t => findInPath(t) === undefined)
  if (missing.length > 0) {
    throw new PvdiskError('ETOOL', `missing tool${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`,
      missing.map(t => `${t}: install ${PACKAGES[t] ?? 'the package that provides it'}`))
  }
}
