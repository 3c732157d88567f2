// LXC on an encrypted disk, on a real kernel (User-Mode Linux): the /volumes step with
// pvdisk-lxc-hook as the container's pre-start and post-stop hooks.
import t from 'tap'
import { runGuest } from '../../fixtures/uml.js'

t.setTimeout(900_000)
t.test('LXC with a dm-crypt-versatile disk', async t => {
  await runGuest(t, 'lxc', ['lxc_crypt'], [
    /^LXC: a container with pvdisk-lxc-hook writes to its volume on a dm-crypt disk; data survives, boot is empty at each start, no plaintext$/,
  ])
})
