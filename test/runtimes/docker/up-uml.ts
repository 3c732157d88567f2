// The whole chain on a real kernel: dockerd inside User-Mode Linux, an encrypted
// dm-crypt-versatile disk, pvdisk up and down.
import t from 'tap'
import { runGuest } from '../../fixtures/uml.js'

t.setTimeout(3_600_000) // under QEMU (hosts where UML cannot start) a guest takes up to 3x as long
t.test('pvdisk up on an encrypted disk, dockerd included', async t => {
  await runGuest(t, 'docker', ['docker_chain'], [
    /^pvdisk up: a Docker container writes to its volume on a dm-crypt disk, data survives down and up$/,
  ])
})
