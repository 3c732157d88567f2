// Pantavisor compatibility on a real kernel (User-Mode Linux), every scheme both ways: a
// disk made with Pantavisor's command sequence (reproduced in the guest from the facts of
// its crypt script) opens in pvdisk with its data and the same live dm key, and a pvdisk
// disk opens with Pantavisor's sequence. caam/dcp mainline (kernel trusted keys) cannot
// run here: the UML kernel has no CONFIG_TRUSTED_KEYS; test/disks/plan.ts asserts their
// exact commands.
import t from 'tap'
import { runGuest } from '../fixtures/uml.js'

t.setTimeout(3_600_000) // under QEMU (hosts where UML cannot start) a guest takes up to 3x as long
t.test('every crypt scheme interoperates with Pantavisor, both ways', async t => {
  await runGuest(t, 'compat', ['compat'], [
    /^versatile: Pantavisor's disk opens in pvdisk and pvdisk's with Pantavisor's sequence; same live key$/,
    /^caam nxp: both ways, caam-keygen run from the image directory; same black key$/,
    /^caam nxp: a blob caam-keygen cannot import \(it exits 0\) fails clearly from any cwd, image untouched, nothing left open$/,
    /^dcp nxp: both ways with a random key; same live key$/,
    /^dcp nxp: both ways with a key of 0x00, 0xff, newline and invalid UTF-8 bytes$/,
    /^dcp nxp: both ways with an all-0xff key$/,
    /^dcp mainline on an nxp-made disk without \.bb: the NXP key opens it, as in Pantavisor$/,
  ])
})
