// Pantavisor's signature globs (signature.c _filter_json): POSIX fnmatch with FNM_PATHNAME,
// where "**" alone becomes an empty pattern and "X/**" becomes "X" with FNM_LEADING_DIR. So
// "*" never crosses "/", "a/**" is "a" and everything below it, and "**" alone matches no
// state key: the device's meaning, which pvr's doublestar globs do not share.

/** POSIX fnmatch(pattern, s, FNM_PATHNAME [| FNM_LEADING_DIR]) */
export const fnmatch = (pattern: string, s: string, leadingDir = false): boolean => {
  const match = (p: number, i: number): boolean => {
    for (;;) {
      if (p === pattern.length) return i === s.length || (leadingDir && s[i] === '/')
      const c = pattern[p]!
      if (c === '*') {
        while (pattern[p] === '*') p++
        for (let j = i; ; j++) {
          if (match(p, j)) return true
          if (j >= s.length || s[j] === '/') return false
        }
      }
      if (i >= s.length) return false
      if (c === '?') {
        if (s[i] === '/') return false
      } else if (c === '[') {
        const r = bracket(p, s[i]!)
        if (r === undefined) {
          if (s[i] !== '[') return false // an unclosed "[" is an ordinary character
        } else {
          if (!r.ok) return false
          p = r.next
          i++
          continue
        }
      } else if (c === '\\' && p + 1 < pattern.length) {
        p++
        if (pattern[p] !== s[i]) return false
      } else if (c !== s[i]) return false
      p++
      i++
    }
  }
  const bracket = (p: number, ch: string): { ok: boolean, next: number } | undefined => {
    let q = p + 1
    const negate = pattern[q] === '!' || pattern[q] === '^'
    if (negate) q++
    let ok = false
    let first = true
    while (q < pattern.length && (first || pattern[q] !== ']')) {
      first = false
      const lo = pattern[q]!
      if (pattern[q + 1] === '-' && q + 2 < pattern.length && pattern[q + 2] !== ']') {
        if (ch >= lo && ch <= pattern[q + 2]!) ok = true
        q += 3
      } else {
        if (ch === lo) ok = true
        q++
      }
    }
    if (q >= pattern.length) return undefined
    return { ok: ch !== '/' && ok !== negate, next: q + 1 }
  }
  return match(0, 0)
}

/** whether one include/exclude entry of a pvs header matches a state key, as the device decides */
export const pvsGlobMatches = (glob: string, key: string): boolean => {
  if (glob === '**') return fnmatch('', key, true)
  if (glob.endsWith('/**')) {
    const dir = glob.slice(0, -3).replace(/\/+$/, '')
    return fnmatch(dir === '' ? '/' : dir, key, true)
  }
  return fnmatch(glob, key)
}
