// Canonical JSON as pvr writes it (gibson042/canonicaljson-go, what `pvr sig` signs): object
// keys sorted bytewise, no white space, strings with only '"', '\\' and control characters
// escaped, integers without exponent, other numbers as d.dddE<exp>.
import type { Json } from '../json-source.js'

const SHORT: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' }

// eslint-disable-next-line no-control-regex
const string = (s: string): string => `"${s.replace(/["\\\u0000-\u001f]/g, c => SHORT[c] ?? `\\u00${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}"`

const number = (n: number): string => {
  if (!Number.isFinite(n)) throw new Error(`${n} has no JSON form`)
  if (n === 0) return '0'
  const [mantissa = '', e = '0'] = Math.abs(n).toExponential().split('e')
  const digits = mantissa.replace('.', '')
  const exp = Number(e)
  const sign = n < 0 ? '-' : ''
  if (exp >= digits.length - 1) return `${sign}${digits}${'0'.repeat(exp - digits.length + 1)}`
  return `${sign}${digits[0]}.${digits.slice(1) || '0'}E${exp}`
}

/** bytewise (UTF-8) order, as Go compares strings */
const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

export const canonicalJson = (v: Json): string => {
  if (v === null) return 'null'
  if (typeof v === 'boolean') return v ? 'true' : 'false'
  if (typeof v === 'number') return number(v)
  if (typeof v === 'string') return string(v)
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`
  return `{${Object.keys(v).sort(byBytes).map(k => `${string(k)}:${canonicalJson(v[k] as Json)}`).join(',')}}`
}
