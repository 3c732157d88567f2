// Containers on an encrypted disk, on a real kernel (User-Mode Linux), in one boot: the
// /volumes step with pvdisk-lxc-hook as an LXC container's pre-start and post-stop hooks,
// and the README's first command (scripts/demo.mjs), which picks dm-crypt where
// device-mapper exists and runs a runc container with pvdisk's OCI hook.
import t from 'tap'
import { runGuest } from '../../fixtures/uml.js'

t.setTimeout(3_600_000) // under QEMU (hosts where UML cannot start) a guest takes up to 3x as long
t.test('LXC and the demo\'s runc container on a dm-crypt-versatile disk', async t => {
  await runGuest(t, 'lxc', ['lxc_crypt', 'demo'], [
    /^LXC: a container with pvdisk-lxc-hook writes to its volume on a dm-crypt disk; data survives, boot is empty at each start, no plaintext$/,
    /^demo: npm start's demo on a dm-crypt-versatile disk: a runc container wrote to \/data, shown on the disk, no plaintext in the image, all cleaned up$/,
  ])
})
