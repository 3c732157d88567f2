// The package's version, read from package.json next to dist/ (or plugin/), wherever pvdisk
// is run from: yargs' own lookup starts at the working directory and says "unknown" elsewhere.
import { readFileSync } from 'node:fs'

const read = (): string => {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string, version?: string }
      if (pkg.name === 'pvdisk' && typeof pkg.version === 'string') return pkg.version
    } catch {
      // not there: the next candidate
    }
  }
  return 'unknown'
}

export const PVDISK_VERSION = read()
