// A device's pvs trust store (<etc>/pantavisor/pvs/trust/ as Pantavisor installs it):
// ca-certificates.crt, ca-oem-certificates.crt, and pub.pem for signatures without x5c;
// and the x5c chain of a signature checked against it, as mbedtls_x509_crt_verify does
// (parents from the store first, then from the chain; signatures and CA flags checked;
// validity dates not: the device does not check them either).
import { crypto } from '../../host/lazy-crypto.js'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { KeyObject, X509Certificate } from 'node:crypto'

export interface TrustStore {
  dir: string
  ca: X509Certificate[]
  oem: X509Certificate[]
  pub?: KeyObject
}

const PEM = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g

const bundle = (file: string): X509Certificate[] => {
  if (!existsSync(file)) return []
  return (readFileSync(file, 'latin1').match(PEM) ?? []).flatMap(pem => {
    try {
      return [new (crypto().X509Certificate)(pem)]
    } catch {
      return []
    }
  })
}

/** the store in a directory; a missing file is an empty part */
export const loadTrustStore = (dir: string): TrustStore => {
  const pubFile = join(dir, 'pub.pem')
  return {
    dir,
    ca: bundle(join(dir, 'ca-certificates.crt')),
    oem: bundle(join(dir, 'ca-oem-certificates.crt')),
    ...(existsSync(pubFile) ? { pub: crypto().createPublicKey(readFileSync(pubFile)) } : {}),
  }
}

const issued = (child: X509Certificate, parent: X509Certificate): boolean => {
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey)
  } catch {
    return false
  }
}

const cn = (c: X509Certificate): string => /(?:^|\n)CN=([^\n]*)/.exec(c.subject)?.[1] ?? c.subject.replace(/\n/g, ',')

/** the leaf's public key when x5c chains to the store that pick chooses for it */
export const chainToStore = (x5c: string[], pick: (c: { leaf: X509Certificate }) => X509Certificate[]): { key: KeyObject } | { error: string } => {
  let certs: X509Certificate[]
  try {
    certs = x5c.map(b64 => new (crypto().X509Certificate)(Buffer.from(b64, 'base64')))
  } catch {
    return { error: 'its x5c certificates do not parse' }
  }
  const leaf = certs[0]!
  const store = pick({ leaf })
  let cur = leaf
  for (let depth = 0; depth <= certs.length; depth++) {
    if (store.some(t => t.fingerprint256 === cur.fingerprint256 || (t.ca && issued(cur, t)))) return { key: leaf.publicKey }
    const parent = certs.slice(1).find(c => c !== cur && c.ca && issued(cur, c))
    if (!parent) break
    cur = parent
  }
  return { error: `its certificate CN=${cn(leaf)} does not chain to a trusted certificate (the chain ends at issuer ${cur.issuer.replace(/\n/g, ',')})` }
}
