// Checks of the disks Pantavisor provisions from a declaration: a swap file needs its size.
import type { Json } from './json-source.js'
import type { FileProblems } from './problems.js'
import { parseSize } from './dd-size.js'

export const checkProvisioned = (disk: { [k: string]: Json }, type: string, at: string, problems: FileProblems): void => {
  if (type === 'swap-disk' && disk.provision === 'file') {
    const size = /(?:^|\s)size=(\S*)/.exec(typeof disk.provision_options === 'string' ? disk.provision_options : '')?.[1]
    if (size === undefined || parseSize(size) === undefined) {
      problems.error('swap-size-invalid', `${at}/provision_options`, size === undefined ? 'a swap file needs its size in provision_options, e.g. "size=256M"' : `"size=${size}" is not a size`,
        'write digits with an optional K, M or G: "size=256M"')
    }
  }
}
