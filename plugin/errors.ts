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

export class PvdiskError extends Error {
  readonly code: ErrorCode
  readonly details: string[]
  constructor(code: ErrorCode, message: string, details: string[] = []) {
    super(message)
    this.name = 'PvdiskError'
    this.code = code
    this.details = details
  }
}

export const isPvdiskError = (e: unknown): e is PvdiskError => e instanceof PvdiskError

/** input errors exit 2, failed operations exit 1 */
export const exitStatusOf = (code: ErrorCode): number =>
  ['EUSAGE', 'EINVALID', 'ESTATE', 'ETOOL', 'ENOTROOT'].includes(code) ? 2 : 1
