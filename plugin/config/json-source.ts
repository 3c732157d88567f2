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

export const parseJson = (text: string): ParsedJson => {
  const offsets = new Map<string, number>()
  const duplicates: DuplicateKey[] = []
  let i = 0

  const fail = (message: string, at = i): never => {
    throw new JsonSyntaxError(message, at)
  }
  const describe = (at: number): string =>
    at >= text.length ? 'end of file' : `${JSON.stringify(text[at])}`

  const skipSpace = (): void => {
    for (;;) {
      const c = text.charCodeAt(i)
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++
      else return
    }
  }

  const parseString = (): string => {
    // caller checked text[i] === '"'
    const start = ++i
    let out = ''
    let chunk = start
    for (;;) {
      const c = text.charCodeAt(i)
      if (Number.isNaN(c)) fail('unterminated string', start - 1)
      if (c === 0x22) {
        out += text.slice(chunk, i)
        i++
        return out
      }
      if (c < 0x20) fail('control character in string (escape it as \\u00XX)')
      if (c === 0x5c) {
        out += text.slice(chunk, i)
        const e = text[i + 1]
        switch (e) {
          case '"': out += '"'; break
          case '\\': out += '\\'; break
          case '/': out += '/'; break
          case 'b': out += '\b'; break
          case 'f': out += '\f'; break
          case 'n': out += '\n'; break
          case 'r': out += '\r'; break
          case 't': out += '\t'; break
          case 'u': {
            const hex = text.slice(i + 2, i + 6)
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('invalid \\u escape in string')
            out += String.fromCharCode(parseInt(hex, 16))
            i += 4
            break
          }
          default:
            fail(`invalid escape ${JSON.stringify('\\' + (e ?? ''))} in string`)
        }
        i += 2
        chunk = i
        continue
      }
      i++
    }
  }

  const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y

  const parseValue = (pointer: string, depth: number): Json => {
    skipSpace()
    if (!offsets.has(pointer)) offsets.set(pointer, i)
    const c = text[i]
    if (c === '{') {
      if (depth >= MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH} levels`)
      i++
      const obj: { [key: string]: Json } = {}
      skipSpace()
      if (text[i] === '}') {
        i++
        return obj
      }
      for (;;) {
        skipSpace()
        const keyAt = i
        if (text[i] !== '"') fail(`expected a property name in double quotes, found ${describe(i)}`)
        const key = parseString()
        const child = appendPointer(pointer, key)
        if (Object.prototype.hasOwnProperty.call(obj, key)) duplicates.push({ pointer: child, offset: keyAt })
        else offsets.set(child, keyAt)
        skipSpace()
        if (text[i] !== ':') fail(`expected ':' after property name, found ${describe(i)}`)
        i++
        // defineProperty: a "__proto__" key must stay data, never become the prototype
        Object.defineProperty(obj, key, {
          value: parseValue(child, depth + 1), enumerable: true, writable: true, configurable: true,
        })
        skipSpace()
        if (text[i] === ',') {
          i++
          continue
        }
        if (text[i] === '}') {
          i++
          return obj
        }
        fail(`expected ',' or '}' after property value, found ${describe(i)}`)
      }
    }
    if (c === '[') {
      if (depth >= MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH} levels`)
      i++
      const arr: Json[] = []
      skipSpace()
      if (text[i] === ']') {
        i++
        return arr
      }
      for (;;) {
        arr.push(parseValue(appendPointer(pointer, String(arr.length)), depth + 1))
        skipSpace()
        if (text[i] === ',') {
          i++
          continue
        }
        if (text[i] === ']') {
          i++
          return arr
        }
        fail(`expected ',' or ']' after array element, found ${describe(i)}`)
      }
    }
    if (c === '"') return parseString()
    if (text.startsWith('true', i)) {
      i += 4
      return true
    }
    if (text.startsWith('false', i)) {
      i += 5
      return false
    }
    if (text.startsWith('null', i)) {
      i += 4
      return null
    }
    NUMBER.lastIndex = i
    const m = NUMBER.exec(text)
    if (m) {
      i += m[0].length
      return Number(m[0])
    }
    return fail(`unexpected ${describe(i)}; expected a JSON value`)
  }

  const value = parseValue('', 0)
  skipSpace()
  if (i < text.length) fail(`unexpected ${describe(i)} after the end of the JSON document`)
  return { value, offsets, duplicates, text }
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
