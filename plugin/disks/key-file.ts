// Random key material: 32 bytes from the hardware RNG when there is one, else from the
// kernel's CSPRNG; written atomically, mode 0600, and never shown anywhere.
import { crypto } from '../host/lazy-crypto.js'
import { closeSync, constants, openSync, readSync } from 'node:fs'
import { writeFileAtomic } from '../host/atomic-write.js'

export const KEY_BYTES = 32

/** /dev/hwrng may block or be absent: read it non-blocking and fall back to urandom */
export const randomKey = (hwrng = '/dev/hwrng'): { key: Buffer, source: string } => {
  try {
    const fd = openSync(hwrng, constants.O_RDONLY | constants.O_NONBLOCK)
    try {
      const key = Buffer.alloc(KEY_BYTES)
      let got = 0
      for (let tries = 0; got < KEY_BYTES && tries < 64; tries++) {
        try {
          got += readSync(fd, key, got, KEY_BYTES - got, null)
        } catch {
          break // EAGAIN: no entropy ready
        }
      }
      if (got === KEY_BYTES) return { key, source: hwrng }
    } finally {
      closeSync(fd)
    }
  } catch {
    // no hardware RNG
  }
  return { key: crypto().randomBytes(KEY_BYTES), source: 'the kernel CSPRNG' }
}

export const writeKeyFile = async (path: string, key: Uint8Array): Promise<void> => writeFileAtomic(path, key, 0o600)
