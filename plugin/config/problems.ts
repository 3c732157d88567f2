// A problem is one finding in one file: severity, a stable code, where (file, JSON
// pointer, line and column) and what to do about it.
import { exitStatusOf, fromSystemError, isPvdiskError, PvdiskError } from '../errors.js'
import { lineColumn, type ParsedJson } from './json-source.js'

export type Severity = 'error' | 'warning'

export interface Problem {
  severity: Severity
  code: string
  file: string
  pointer: string
  line?: number
  column?: number
  message: string
  hint?: string
}

/** collects the problems of one file and places them at a line and column */
export class FileProblems {
  readonly file: string
  readonly list: Problem[] = []
  private source: ParsedJson | undefined

  constructor(file: string, source?: ParsedJson) {
    this.file = file
    this.source = source
  }

  setSource(source: ParsedJson): void {
    this.source = source
  }

  add(severity: Severity, code: string, pointer: string, message: string, hint?: string): void {
    const p: Problem = { severity, code, file: this.file, pointer, message }
    const at = this.offsetOf(pointer)
    if (at !== undefined && this.source) Object.assign(p, lineColumn(this.source.text, at))
    if (hint !== undefined) p.hint = hint
    this.list.push(p)
  }

  /** a problem placed by offset, for text that has no parsed value (syntax errors) */
  errorAtOffset(code: string, text: string, offset: number, message: string, hint?: string): void {
    const p: Problem = { severity: 'error', code, file: this.file, pointer: '', ...lineColumn(text, offset), message }
    if (hint !== undefined) p.hint = hint
    this.list.push(p)
  }

  error(code: string, pointer: string, message: string, hint?: string): void {
    this.add('error', code, pointer, message, hint)
  }

  warn(code: string, pointer: string, message: string, hint?: string): void {
    this.add('warning', code, pointer, message, hint)
  }

  has(pointer: string, severity: Severity = 'error'): boolean {
    return this.list.some(p => p.pointer === pointer && p.severity === severity)
  }

  private offsetOf(pointer: string): number | undefined {
    if (!this.source) return undefined
    // the nearest ancestor that exists: a missing property is reported at its parent
    for (let p = pointer; ; p = p.slice(0, p.lastIndexOf('/'))) {
      const at = this.source.offsets.get(p)
      if (at !== undefined || p === '') return at
    }
  }
}

export const countBySeverity = (problems: readonly Problem[]): { errors: number, warnings: number } => ({
  errors: problems.filter(p => p.severity === 'error').length,
  warnings: problems.filter(p => p.severity === 'warning').length,
})

export const sortProblems = (problems: Problem[]): Problem[] =>
  problems.sort((a, b) =>
    a.file.localeCompare(b.file) || (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0))

export const formatProblem = (p: Problem): string => {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}:${p.column ?? 1}`
  const at = p.pointer === '' ? '' : ` at ${p.pointer}`
  const hint = p.hint === undefined ? '' : ` Hint: ${p.hint}`
  return `${where}: ${p.severity} [${p.code}]${at}: ${p.message}${hint}`
}

/** input files have errors: the problems travel with the error to the one place that prints */
export class InvalidInputError extends PvdiskError {
  readonly problems: Problem[]
  constructor(message: string, problems: Problem[]) {
    super('EINVALID', message)
    this.problems = problems
  }
}

/**
 * What a small program (a hook) prints when it fails, and its exit status: the input's
 * errors, one line of what went wrong with what to do, and "unexpected error" only for a bug.
 */
export const failureReport = (thrown: unknown, program: string): { text: string, exitCode: number } => {
  const e = fromSystemError(thrown) ?? thrown
  if (!isPvdiskError(e)) return { text: `pvdisk: ${program}: unexpected error: ${(e as Error)?.message ?? String(e)}\n`, exitCode: 1 }
  const problems = e instanceof InvalidInputError ? e.problems.filter(p => p.severity === 'error') : []
  return { text: errorText(e, problems), exitCode: exitStatusOf(e.code) }
}

/** an error as the user reads it: the problems found, then one line of what went wrong, then what to do */
export const errorText = (e: PvdiskError, problems: readonly Problem[]): string =>
  `${[...problems.map(formatProblem), `pvdisk: ${e.message}`, ...e.details.map(d => `  ${d}`)].join('\n')}\n`
