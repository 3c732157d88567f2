// What every command handler receives and returns; printing happens only in cli.ts.

export interface GlobalOptions {
  state: string
  root: string
  json: boolean
  debug: boolean
}

export interface CommandResult {
  /** printed as JSON with --json */
  data: unknown
  /** printed otherwise */
  lines: string[]
  exitCode: number
}
