// Real dm-crypt inside User-Mode Linux: versatile disks, Pantavisor compatibility both
// ways, wrong and missing keys, stale mappings, locking, and the CAAM/DCP plumbing.
import t from 'tap'
import { runGuest } from '../fixtures/uml.js'

t.setTimeout(3_600_000) // under QEMU (hosts where UML cannot start) a guest takes up to 3x as long
t.test('disk engine on a real kernel', async t => {
  await runGuest(t, 'main', ['versatile', 'bare_open', 'wrong_key', 'missing_key', 'stale', 'pantavisor_image', 'concurrent', 'caam', 'dcp', 'fsck'], [
    /^versatile first init, down, up, data intact, no plaintext, key 0600$/,
    /^pvdisk image opens with Pantavisor's bare commands$/,
    /^wrong key fails clearly and leaves the image untouched$/,
    /^a missing key is an error and the image is left untouched$/,
    /^stale mappings and loop devices are cleaned before opening$/,
    /^an image made with Pantavisor's bare commands opens in pvdisk with its data$/,
    /^concurrent pvdisk processes serialise on the disk lock$/,
    /^caam nxp: caam-keygen, logon key and dmsetup table run for real$/,
    /^dcp nxp: grey blob decrypted to cryptsetup's stdin$/,
    /^a failed mount runs fsck once and retries; a hopeless one fails with fsck's output$/,
  ])
})
