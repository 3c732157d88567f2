// A strict RFC 8259 JSON parser that remembers where every value came from, so that
// problems can name a line and column, and that reports duplicate keys, which
// JSON.parse silently resolves (last wins) while other readers may keep the first.
import { appendPointer } from './pointer.js'

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

export const isJsonObject = (v: Json | undefined): v is { [key: string]: Json } =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

export interface DuplicateKey {
  pointer: string
  offset: number
}

export interface ParsedJson {
  value: Json
  /** offset of each value, or of its key when it is an object member */
  offsets: Map<string, number>
  duplicates: DuplicateKey[]
  text: string
}

export class JsonSyntaxError extends Error {
  readonly offset: number
  constructor(message: string, offset: number) {
    super(message)
    this.offset = offset
  }
}

const MAX_DEPTH = 256
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' }

/** one pass over the text; each grammar rule is a method that advances `i` */
class Parser {
  readonly offsets = new Map<string, number>()
  readonly duplicates: DuplicateKey[] = []
  private i = 0

  constructor(private readonly text: string) {}

  parse(): ParsedJson {
    const value = this.value('', 0)
    this.skipSpace()
    if (this.i < this.text.length) this.fail(`unexpected ${this.describe(this.i)} after the end of the JSON document`)
    return { value, offsets: this.offsets, duplicates: this.duplicates, text: this.text }
  }

  private fail(message: string, at = this.i): never {
    throw new JsonSyntaxError(message, at)
  }

  private describe(at: number): string {
    return at >= this.text.length ? 'end of file' : `${JSON.stringify(this.text[at])}`
  }

  private skipSpace(): void {
    for (;;) {
      const c = this.text.charCodeAt(this.i)
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.i++
      else return
    }
  }

  /** an escape sequence at i (the backslash); returns what it stands for */
  private escape(): string {
    const e = this.text[this.i + 1]
    let out: string
    if (e === 'u') {
      const hex = this.text.slice(this.i + 2, this.i + 6)
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('invalid \\u escape in string')
      out = String.fromCharCode(parseInt(hex, 16))
      this.i += 4
    } else {
      const simple = e === undefined ? undefined : ESCAPES[e]
      if (simple === undefined) this.fail(`invalid escape ${JSON.stringify('\\' + (e ?? ''))} in string`)
      out = simple
    }
    this.i += 2
    return out
  }

  /** a string at i (the opening quote) */
  private string(): string {
    const start = ++this.i
    let out = ''
    let chunk = start
    for (;;) {
      const c = this.text.charCodeAt(this.i)
      if (Number.isNaN(c)) this.fail('unterminated string', start - 1)
      if (c === 0x22) {
        out += this.text.slice(chunk, this.i)
        this.i++
        return out
      }
      if (c < 0x20) this.fail('control character in string (escape it as \\u00XX)')
      if (c === 0x5c) {
        out += this.text.slice(chunk, this.i) + this.escape()
        chunk = this.i
        continue
      }
      this.i++
    }
  }

  /** after a member or element: true for another one, false at the closing bracket */
  private more(close: '}' | ']', what: string): boolean {
    this.skipSpace()
    const c = this.text[this.i]
    if (c === ',' || c === close) {
      this.i++
      return c === ','
    }
    return this.fail(`expected ',' or '${close}' after ${what}, found ${this.describe(this.i)}`)
  }

  private object(pointer: string, depth: number): Json {
    const obj: { [key: string]: Json } = {}
    this.skipSpace()
    if (this.text[this.i] === '}') {
      this.i++
      return obj
    }
    do {
      this.skipSpace()
      const keyAt = this.i
      if (this.text[this.i] !== '"') this.fail(`expected a property name in double quotes, found ${this.describe(this.i)}`)
      const key = this.string()
      const child = appendPointer(pointer, key)
      if (Object.prototype.hasOwnProperty.call(obj, key)) this.duplicates.push({ pointer: child, offset: keyAt })
      else this.offsets.set(child, keyAt)
      this.skipSpace()
      if (this.text[this.i] !== ':') this.fail(`expected ':' after property name, found ${this.describe(this.i)}`)
      this.i++
      // defineProperty: a "__proto__" key must stay data, never become the prototype
      Object.defineProperty(obj, key, { value: this.value(child, depth + 1), enumerable: true, writable: true, configurable: true })
    } while (this.more('}', 'property value'))
    return obj
  }

  private array(pointer: string, depth: number): Json {
    const arr: Json[] = []
    this.skipSpace()
    if (this.text[this.i] === ']') {
      this.i++
      return arr
    }
    do arr.push(this.value(appendPointer(pointer, String(arr.length)), depth + 1))
    while (this.more(']', 'array element'))
    return arr
  }

  /** true, false, null or a number */
  private scalar(): Json {
    for (const [word, value] of [['true', true], ['false', false], ['null', null]] as const) {
      if (this.text.startsWith(word, this.i)) {
        this.i += word.length
        return value
      }
    }
    NUMBER.lastIndex = this.i
    const m = NUMBER.exec(this.text)
    if (m) {
      this.i += m[0].length
      return Number(m[0])
    }
    return this.fail(`unexpected ${this.describe(this.i)}; expected a JSON value`)
  }

  private value(pointer: string, depth: number): Json {
    this.skipSpace()
    if (!this.offsets.has(pointer)) this.offsets.set(pointer, this.i)
    const c = this.text[this.i]
    if (c === '{' || c === '[') {
      if (depth >= MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH} levels`)
      this.i++
      return c === '{' ? this.object(pointer, depth) : this.array(pointer, depth)
    }
    if (c === '"') return this.string()
    return this.scalar()
  }
}

/** object members in valid JSON text: the colons outside strings */
const membersIn = (text: string): number => {
  let n = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x3a) n++
    else if (c === 0x22) {
      for (i++; text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++
    }
  }
  return n
}

/** keys of every object in a value, or -1 when a container nests deeper than the parser allows */
const keysIn = (v: Json, depth: number): number => {
  if (typeof v !== 'object' || v === null) return 0
  if (depth >= MAX_DEPTH) return -1
  let n = 0
  const children = Array.isArray(v) ? v : Object.values(v)
  if (!Array.isArray(v)) n += children.length
  for (const child of children) {
    const k = keysIn(child, depth + 1)
    if (k < 0) return -1
    n += k
  }
  return n
}

/**
 * JSON.parse first (native, several times faster), the parser only where it is needed: for
 * the place of a syntax error, for a duplicate key (JSON.parse keeps the last value, as the
 * parser does, but says nothing: a member count of the text that differs from the keys
 * parsed gives it away), for nesting deeper than MAX_DEPTH, and for the offsets, which only
 * a problem's line and column need, so they are found on first use.
 */
export const parseJson = (text: string): ParsedJson => {
  let value: Json
  try {
    value = JSON.parse(text) as Json
  } catch {
    return new Parser(text).parse() // throws JsonSyntaxError, with where
  }
  const keys = keysIn(value, 0)
  if (keys < 0 || keys !== membersIn(text)) return new Parser(text).parse()
  let offsets: Map<string, number> | undefined
  return { value, duplicates: [], text, get offsets() { return (offsets ??= new Parser(text).parse().offsets) } }
}

/** 1-based line and column of an offset */
export const lineColumn = (text: string, offset: number): { line: number, column: number } => {
  let line = 1
  let lineStart = 0
  for (let nl = text.indexOf('\n'); nl !== -1 && nl < offset; nl = text.indexOf('\n', nl + 1)) {
    line++
    lineStart = nl + 1
  }
  return { line, column: offset - lineStart + 1 }
}
