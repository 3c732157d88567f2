// The crypt disk path grammar: "[-v2 ]<absolute image path>,<size in MiB>,<key name>".
import { hostPathError, type RuleBreak } from './path-rules.js'

export interface CryptPath {
  v2: boolean
  image: string
  sizeMiB: number
  keyName: string
}

const bad = (code: string, message: string, hint: string): { error: RuleBreak } => ({ error: { code, message, hint } })
const FORM = 'write "[-v2 ]<absolute image path>,<size in MiB>,<key name>"'

export const parseCryptPath = (path: string): { value: CryptPath } | { error: RuleBreak } => {
  let rest = path
  let v2 = false
  if (rest.startsWith('-v2')) {
    if (!rest.startsWith('-v2 /')) return bad('crypt-path-syntax', 'the "-v2" prefix must be followed by exactly one space and the image path', FORM)
    v2 = true
    rest = rest.slice(4)
  }
  const parts = rest.split(',')
  if (parts.length !== 3) {
    return bad('crypt-path-syntax', `has ${parts.length} comma-separated part${parts.length === 1 ? '' : 's'}, expected 3 (image, size, key name)`, FORM)
  }
  const [image = '', size = '', keyName = ''] = parts
  const pathErr = hostPathError(image)
  if (pathErr) return { error: { ...pathErr, message: `image path ${pathErr.message}` } }
  if (image.endsWith('/')) return bad('crypt-path-syntax', 'the image path names a directory', 'name the image file, e.g. /storage/dm-crypt-files/NAME/versatile.img')
  if (!/^[0-9]+$/.test(size) || Number(size) < 1 || !Number.isSafeInteger(Number(size))) {
    return bad('crypt-size-invalid', `size ${JSON.stringify(size)} is not a whole number of MiB of at least 1`,
      /^[0-9]+[a-zA-Z]+$/.test(size) ? 'the size is already in MiB: write the number alone (Pantavisor passes it to dd count=)' : 'write the size in MiB as a plain integer, e.g. 64')
  }
  // eslint-disable-next-line no-control-regex
  if (keyName === '' || keyName === '.' || keyName === '..' || keyName.includes('/') || /[\u0000-\u001f\u007f]/.test(keyName)) {
    return bad('crypt-key-name-invalid', `key name ${JSON.stringify(keyName)} is not usable as a file name`,
      'the key name names files next to the image (<key>.txt, <key>.init_done): use a plain file name without "/"')
  }
  return { value: { v2, image, sizeMiB: Number(size), keyName } }
}

export const imageDir = (image: string): string => image.slice(0, image.lastIndexOf('/')) || '/'

/** the device-mapper name Pantavisor derives: the image file name without its extension */
export const pantavisorDmName = (image: string): string => {
  const base = image.slice(image.lastIndexOf('/') + 1)
  const dot = base.lastIndexOf('.')
  return dot > 0 ? base.slice(0, dot) : base
}
