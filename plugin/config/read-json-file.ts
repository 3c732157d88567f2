// Reading a state file without surprises: regular files only (a FIFO would hang us), a
// size limit, strict UTF-8, strict JSON. Every failure becomes a problem, never a throw.
// Synchronous on purpose: a state is many small files, and a thread-pool round trip per
// call costs more than the read (bench/validate.mjs).
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs'
import { isUtf8 } from 'node:buffer'
import { JsonSyntaxError, parseJson, type ParsedJson } from './json-source.js'
import type { FileProblems } from './problems.js'

export const MAX_STATE_FILE_BYTES = 4 * 1024 * 1024

const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`

/** offset of the first byte that is not part of a valid UTF-8 sequence */
export const firstInvalidUtf8 = (buf: Uint8Array): number => {
  for (let i = 0; i < buf.length;) {
    const b = buf[i] ?? 0
    const len = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0
    if (len === 0) return i
    for (let k = 1; k < len; k++) if (((buf[i + k] ?? 0) & 0xc0) !== 0x80) return i
    i += len
  }
  return -1
}

const readError = (err: NodeJS.ErrnoException): [string, string] => {
  switch (err.code) {
    case 'ENOENT': return ['file not found', 'check the path, or create the file']
    case 'EACCES': case 'EPERM': return ['permission denied', 'run pvdisk as a user that can read it']
    case 'ELOOP': return ['too many levels of symbolic links', 'point the path at a real file']
    case 'ENOTDIR': return ['a component of the path is not a directory', 'check the path']
    default: return [`cannot read the file: ${err.message}`, 'check the file and its permissions']
  }
}

export const readJsonFile = async (path: string, problems: FileProblems): Promise<ParsedJson | undefined> => readJsonFileSync(path, problems)

export const readJsonFileSync = (path: string, problems: FileProblems): ParsedJson | undefined => {
  let fd: number | undefined
  let buf: Buffer
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
    const st = fstatSync(fd)
    if (st.isDirectory()) {
      problems.error('file-not-regular', '', 'is a directory, not a JSON file', 'give the path of the JSON file itself')
      return undefined
    }
    if (!st.isFile()) {
      problems.error('file-not-regular', '', 'is not a regular file (device, FIFO or socket)', 'give the path of a JSON file')
      return undefined
    }
    if (st.size > MAX_STATE_FILE_BYTES) {
      problems.error('file-too-large', '', `is ${mib(st.size)}; state files larger than ${mib(MAX_STATE_FILE_BYTES)} are refused`,
        'this is not a Pantavisor state file; check the path')
      return undefined
    }
    buf = readFileSync(fd)
  } catch (e) {
    const [message, hint] = readError(e as NodeJS.ErrnoException)
    problems.error('file-unreadable', '', message, hint)
    return undefined
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
  if (!isUtf8(buf)) {
    const at = firstInvalidUtf8(buf)
    const text = buf.subarray(0, at).toString('latin1')
    problems.errorAtOffset('file-not-utf8', text, at, `is not valid UTF-8 text (byte ${at} is 0x${(buf[at] ?? 0).toString(16).padStart(2, '0')})`,
      'save the file as UTF-8')
    return undefined
  }
  let text = buf.toString('utf8')
  const hasBom = text.charCodeAt(0) === 0xfeff
  if (hasBom) text = text.slice(1)
  try {
    const parsed = parseJson(text)
    problems.setSource(parsed)
    if (hasBom) problems.warn('json-bom', '', 'starts with a UTF-8 byte order mark, which JSON forbids', 'save the file without a BOM')
    for (const d of parsed.duplicates) {
      problems.errorAtOffset('json-duplicate-key', text, d.offset, `duplicate key at ${d.pointer}: readers disagree on which value counts`,
        'remove one of the two entries')
    }
    return parsed
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e
    problems.errorAtOffset('json-syntax', text, e.offset, `invalid JSON: ${e.message}`, 'fix the JSON syntax at this line and column')
    return undefined
  }
}
