// dm-crypt-luks2 on a real kernel (User-Mode Linux): key file, swtpm through Clevis's tpm2
// pin, a real tang server, sss, recovery, and kill -9 at every step of first init. swtpm
// and tang run inside the guest, on its loopback.
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { runGuest } from '../fixtures/uml.js'

t.setTimeout(3_600_000) // under QEMU (hosts where UML cannot start) a guest takes up to 3x as long
t.test('dm-crypt-luks2 on a real kernel', async t => {
  await runGuest(t, 'luks2', ['keyfile', 'tpm2', 'tang', 'crash', 'recover_crash', 'rebind'], [
    /^luks2 keyfile: first init, data intact, no plaintext, recovery key 0600, recover makes a new key$/,
    /^luks2 tpm2: PCR 7 binding, changed PCR fails cleanly, recover re-binds$/,
    /^luks2 tang unlocks while tang runs and fails cleanly when stopped; sss t=1 opens with either$/,
    /^kill -9 at every step of first init: the next up converges and keeps an existing header$/,
    /^kill -9 at every step of a recovery: the recovery key still opens, a rerun finishes it$/,
    /^unlock changed from keyfile to tpm2: recover binds the TPM and removes the key file and its keyslot$/,
  ], fileURLToPath(new URL('../fixtures/uml/guest-luks2.sh', import.meta.url)))
})
