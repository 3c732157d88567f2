// Library code throws PvdiskError with a string code; only the CLI entry turns it into
// a message and an exit status.

export type ErrorCode =
  | 'EUSAGE' // bad command line
  | 'EINVALID' // input files have errors (problems attached)
  | 'EFILE' // a file could not be read or written
  | 'ESTATE' // the state directory is not usable
  | 'ETOOL' // a required program is not installed
  | 'ENOTROOT' // the operation needs root
  | 'ECOMMAND' // a command failed
  | 'EDISK' // a disk operation cannot proceed safely
  | 'ELOCKED' // another pvdisk holds the disk's lock

/** marks pvdisk's errors across bundles: the Docker client is a bundle of its own, with its own copy of this class */
const BRAND = Symbol.for('pvdisk.error')

export class PvdiskError extends Error {
  readonly code: ErrorCode
  readonly details: string[]
  constructor(code: ErrorCode, message: string, details: string[] = []) {
    super(message)
    this.name = 'PvdiskError'
    this.code = code
    this.details = details
    Object.defineProperty(this, BRAND, { value: true })
  }
}

export const isPvdiskError = (e: unknown): e is PvdiskError => e instanceof PvdiskError || (typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true)

/** everything a failed command said: the error's message, then its detail lines (the tool's last stderr lines) */
export const errorSaid = (e: unknown): string => [(e as Error).message, ...((e as { details?: string[] }).details ?? [])].join('\n')

/** input errors exit 2, failed operations exit 1 */
export const exitStatusOf = (code: ErrorCode): number =>
  ['EUSAGE', 'EINVALID', 'ESTATE', 'ETOOL', 'ENOTROOT'].includes(code) ? 2 : 1

// what the machine said, for errors that come from the environment rather than from a bug in pvdisk
const SYSTEM_ERRORS: Record<string, [string, string]> = {
  ENOSPC: ['no space left on the device', 'free some space there and retry'],
  EDQUOT: ['disk quota exceeded', 'free some space or raise the quota, and retry'],
  EIO: ['input/output error', 'the medium may be failing: check the kernel log (dmesg)'],
  EROFS: ['read-only filesystem', 'remount it read-write, or choose a writable place'],
  EACCES: ['permission denied', 'run pvdisk as root, or check the permissions'],
  EPERM: ['operation not permitted', 'run pvdisk as root, or check the permissions'],
  ENOENT: ['no such file or directory', 'check the path'],
  ENOTDIR: ['a path component is not a directory', 'check the path'],
  ELOOP: ['too many levels of symbolic links', 'pvdisk follows no link below the root: replace the link'],
  EMFILE: ['too many open files', 'raise the open-file limit (ulimit -n)'],
  ENFILE: ['too many open files in the system', 'raise the system\'s open-file limit'],
}

/** an environmental system error as a PvdiskError naming the path (exit 1); undefined for anything else */
export const fromSystemError = (e: unknown): PvdiskError | undefined => {
  const err = e as NodeJS.ErrnoException | undefined
  const known = typeof err?.code === 'string' ? SYSTEM_ERRORS[err.code] : undefined
  if (!known) return undefined
  const where = err?.path ?? (err as { dest?: string } | undefined)?.dest
  return new PvdiskError('EFILE', `${where ? `${where}: ` : ''}${known[0]} (${err?.code}${err?.syscall ? ` in ${err.syscall}` : ''})`, [known[1]])
}
