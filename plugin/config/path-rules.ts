// What makes a name or a path safe to use: names become path components of mount points
// and volume directories; paths are resolved under --root or inside containers.

export interface RuleBreak {
  code: string
  message: string
  hint: string
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/
const PORTABLE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._+-]*$/

const shown = (s: string): string => JSON.stringify(s)

/** a name used as one path component: errors for what can never work, undefined when fine */
export const nameError = (name: string, what: string): RuleBreak | undefined => {
  if (name === '') return { code: `${what}-name-empty`, message: `the ${what} name is empty`, hint: `give the ${what} a name` }
  if (name === '.' || name === '..' || name.includes('/') || CONTROL.test(name)) {
    return {
      code: `${what}-name-invalid`, message: `${shown(name)} cannot be used as a ${what} name: it becomes a path component`,
      hint: 'use letters, digits and "_", ".", "+", "-" only, without "/"',
    }
  }
  return undefined
}

/** a name that works but that some tools choke on */
export const isPortableName = (name: string): boolean => PORTABLE_NAME.test(name)

const segmentsOf = (p: string): string[] => p.split('/').slice(1)

/** an absolute host path, as found in device.json */
export const hostPathError = (p: string): RuleBreak | undefined => {
  if (CONTROL.test(p)) return { code: 'path-invalid-char', message: `${shown(p)} contains a control character`, hint: 'remove it' }
  if (!p.startsWith('/')) return { code: 'path-relative', message: `${shown(p)} is not an absolute path`, hint: 'start it with "/"' }
  const segs = segmentsOf(p.endsWith('/') && p.length > 1 ? p.slice(0, -1) : p)
  if (segs.includes('..')) return { code: 'path-dotdot', message: `${shown(p)} contains ".."`, hint: 'write the path without ".." components' }
  if (segs.some(s => s === '' || s === '.')) {
    return { code: 'path-unnormalised', message: `${shown(p)} is not normalised`, hint: 'remove empty and "." components' }
  }
  return undefined
}

// characters that break LXC mount entries, Docker mount specs or mount options
const CONTAINER_PATH_BAD = /[\s:,\\"'`]/

/** a path inside a container, as in src.json persistence keys (trailing "/" allowed) */
export const containerPathError = (p: string): RuleBreak | undefined => {
  if (CONTROL.test(p) || CONTAINER_PATH_BAD.test(p)) {
    const c = CONTROL.test(p) ? 'a control character' : shown((CONTAINER_PATH_BAD.exec(p) ?? [''])[0])
    return {
      code: 'persistence-path-invalid-char', message: `${shown(p)} contains ${c}`,
      hint: 'container paths may not contain whitespace, ":", ",", quotes or backslashes (they break mount specifications)',
    }
  }
  if (/^\/+$/.test(p)) return { code: 'persistence-path-root', message: 'the container root "/" cannot be a volume', hint: 'use "lxc-overlay" to persist the whole root filesystem' }
  const e = hostPathError(p)
  return e && { ...e, code: e.code.replace(/^path-/, 'persistence-path-') }
}
