// dm-verity volumes on a real kernel (User-Mode Linux), one boot: verity make and volumes up
// (squashfs and ext4), pvr's and Pantavisor's own sequences, refusal before start, EIO at
// run time, and the three other runtimes: pvdisk up (dockerd), the volume plugin, runc's hook.
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { runGuest } from '../fixtures/uml.js'

t.setTimeout(3_600_000) // under QEMU (hosts where UML cannot start) a guest takes up to 3x as long
t.test('dm-verity volumes on a real kernel', async t => {
  await runGuest(t, 'verity', ['make_mount', 'compat', 'refuse', 'runtime_eio', 'docker', 'plugin', 'oci'], [
    /^verity make, then volumes up: squashfs \(4 KiB\) and ext4 \(1 KiB\) verified, read-only at \/volumes\/web\/, status verified, down leaves nothing$/,
    /^pvr dm-convert's volume mounts in pvdisk, verity make keeps its root hash, and it mounts with Pantavisor's open and mount -oloop$/,
    /^a changed image, a wrong root hash and a changed hash tree are refused before start \(exit 1\), nothing left mapped or mounted$/,
    /^a block changed after start reads as EIO \(the rest reads\), disk status reports it corrupted \(exit 1\), the next start is refused$/,
    /^pvdisk up: a Docker container reads its verity volumes read-only, reads EIO after a change, and is not started again on it$/,
    /^the volume plugin: -o app=web -o verity=data.squashfs mounts read-only, the last Unmount closes it, a changed image is refused$/,
    /^runc with pvdisk's OCI hook: the verity volume at its PV_VOLUME_MOUNTS path, read-only$/,
  ], fileURLToPath(new URL('../fixtures/uml/guest-verity.sh', import.meta.url)))
})
