// Commands that mount say so before anything else when they are not run as root, rather
// than failing later on whatever they touch first (Docker's socket, /var/lib/pvdisk).
import { PvdiskError } from '../errors.js'

export const requireRoot = (command: string, why: string): void => {
  if (process.getuid?.() !== 0) throw new PvdiskError('ENOTROOT', `pvdisk ${command} needs root (${why})`, ['run it as root (sudo); pvdisk plan and pvdisk validate do not need it'])
}
