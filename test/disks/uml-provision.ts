// The disks Pantavisor provisions from a declaration, provisioned by pvdisk on a real kernel
// (User-Mode Linux, one boot): a block volume-disk on a loop device, a swap file, zram for
// swap and for a volume-disk, and a dual disk copying a dm-crypt disk onto a new one.
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { runGuest } from '../fixtures/uml.js'

t.setTimeout(3_600_000) // under QEMU (hosts where UML cannot start) a guest takes up to 3x as long
t.test('provisioned disks on a real kernel', async t => {
  await runGuest(t, 'provision', ['block', 'swapfile', 'zram', 'dual'], [
    /^block volume-disk: formatted once with format_options, mounted with MS_\* options, data kept across down and up, a device holding swap refused$/,
    /^swap file: made once at its size \(0600\), on with up, off with down, never recreated, a file with data refused, kill -9 converges; block swap too$/,
    /^zram: swap and a volume-disk set up from provision_options \(swap first\), reset on down$/,
    /^dual: copy-once-to-primary from a dm-crypt-versatile disk onto a new one, verified and marked once, then primary; kill -9 at each of \d+ steps converges$/,
  ], fileURLToPath(new URL('../fixtures/uml/guest-provision.sh', import.meta.url)))
})
