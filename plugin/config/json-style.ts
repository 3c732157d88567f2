// Writing a JSON file back in its own style. `pvr checkout` writes Go's
// json.MarshalIndent(v, "", "    "): every object's keys sorted (byte order), 4 spaces, no
// final newline, and <, > and & escaped as \u003c, \u003e and \u0026. Other files keep
// their indentation, key order and final newline. A rewrite changes what it must, not how
// the file looks.
import { isJsonObject, type Json } from './json-source.js'

export interface JsonStyle {
  indent: string
  /** every object's keys in byte order, as Go marshals a map */
  sortKeys: boolean
  finalNewline: boolean
  /** <, > and & as \u00XX, as Go's encoder writes them */
  escapeHtml: boolean
}

/** a new file: pvr's template style (tabs, a final newline) */
export const DEFAULT_STYLE: JsonStyle = { indent: '\t', sortKeys: false, finalNewline: true, escapeHtml: false }

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

/** true when some object has two keys or more and every such object has them in byte order */
const keysSorted = (value: Json): boolean => {
  let seen = false
  const walk = (v: Json): boolean => {
    if (Array.isArray(v)) return v.every(walk)
    if (!isJsonObject(v)) return true
    const keys = Object.keys(v)
    if (keys.length > 1) {
      seen = true
      if (keys.some((k, i) => i > 0 && byteOrder(keys[i - 1] as string, k) > 0)) return false
    }
    return Object.values(v).every(walk)
  }
  return walk(value) && seen
}

export const styleOf = (text: string, value: Json): JsonStyle => ({
  indent: /\n([ \t]+)"/.exec(text)?.[1] ?? DEFAULT_STYLE.indent,
  sortKeys: keysSorted(value),
  finalNewline: text.endsWith('\n'),
  escapeHtml: /\\u00(3[ce]|26)/i.test(text),
})

const sortedDeep = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(sortedDeep)
  if (typeof v !== 'object' || v === null) return v
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(v).sort(byteOrder)) Object.defineProperty(out, k, { value: sortedDeep((v as Record<string, unknown>)[k]), enumerable: true, writable: true, configurable: true })
  return out
}

export const stringifyInStyle = (value: unknown, style: JsonStyle): string => {
  let text = JSON.stringify(style.sortKeys ? sortedDeep(value) : value, null, style.indent)
  // outside strings JSON has no <, > or &: escaping them everywhere only touches strings
  if (style.escapeHtml) text = text.replace(/[<>&]/g, c => `\\u00${c.charCodeAt(0).toString(16)}`)
  return style.finalNewline ? `${text}\n` : text
}
