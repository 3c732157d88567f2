// The fscrypt tool's global configuration, /etc/fscrypt.conf (always that path: the tool has
// no option for another). pvdisk writes it when it is missing, for v2 policies and raw keys,
// and refuses one that would make v1 policies (their keys live in a session keyring that
// containers cannot see: google/fscrypt#128).
import { existsSync, readFileSync } from 'node:fs'
import { PvdiskError } from '../errors.js'
import { writeFileAtomic } from '../host/atomic-write.js'
import type { DiskContext } from './context.js'

export const FSCRYPT_CONF = '/etc/fscrypt.conf'

const CONFIG = {
  source: 'raw_key',
  hash_costs: { time: '1', memory: '2048', parallelism: '1' },
  options: { padding: '32', contents: 'AES_256_XTS', filenames: 'AES_256_CTS', policy_version: '2' },
  use_fs_keyring_for_v1_policies: false,
  allow_cross_user_metadata: false,
}

export const ensureFscryptConfig = async (ctx: DiskContext, file = FSCRYPT_CONF): Promise<void> => {
  if (existsSync(file)) {
    let version: unknown
    try {
      version = (JSON.parse(readFileSync(file, 'utf8')) as { options?: { policy_version?: unknown } }).options?.policy_version
    } catch (e) {
      throw new PvdiskError('EDISK', `${file} is not valid JSON (${(e as Error).message})`, ['fix it, or remove it to have pvdisk write one'])
    }
    if (String(version) !== '2') {
      throw new PvdiskError('EDISK', `${file} makes fscrypt policy version ${String(version)}, not 2`,
        ['set "policy_version": "2" in its "options": v1 keys are per session and containers cannot use them'])
    }
    return
  }
  ctx.runner.note(`write ${file} (fscrypt policy v2, raw keys)`)
  if (ctx.runner.planning) return
  await writeFileAtomic(file, `${JSON.stringify(CONFIG, null, 1)}\n`, 0o644)
  ctx.log(`wrote ${file} (fscrypt policy v2, raw keys)`)
}
