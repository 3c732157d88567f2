#!/bin/bash
# Benchmark (run by hand as root, after `npm run build`): a dm-verity volume inside
# User-Mode Linux (the host has no device-mapper). A 64 MiB squashfs, made a verity volume
# with `pvdisk verity make`; each run times, in the same boot:
#   plain:   mount -o loop,ro of the image, the baseline
#   pvdisk:  pvdisk volumes up (veritysetup verify + open + read-only mount), the whole command
#   kernel:  veritysetup open + mount without the verify pass
#   verify:  veritysetup verify alone: the price of refusing a changed image before start
# and prints the ratios to the plain mount and the verify pass's cost per MiB.
#   bash bench/verity.sh [RUNS] [MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}; MIB=${2:-64}
SHARE=/var/tmp/pvdisk-bench-verity
rm -rf "$SHARE"; mkdir -p "$SHARE"
cat > "$SHARE/bench-guest.sh" <<GUEST
set -euo pipefail
RUNS=$RUNS; MIB=$MIB
for m in dm-verity squashfs; do /run/modprobe \$m; done
PV="node \$REPO/dist/pvdisk.cjs"
. \$REPO/bench/timing.sh
W=/tmp/w; A=\$W/state/web; mkdir -p \$A \$W/root /tmp/content /tmp/plain
head -c \$((MIB * 1024 * 1024)) /dev/urandom > /tmp/content/data
mksquashfs /tmp/content \$A/data.squashfs -quiet -noappend >/dev/null
echo '{"groups": []}' > \$W/state/device.json
echo '{"#spec": "service-manifest-src@1", "docker_name": "x", "persistence": {}}' > \$A/src.json
echo '{"#spec": "service-manifest-run@1", "storage": {"lxc-overlay": {"persistence": "boot"}}, "root-volume": "none.squashfs", "volumes": ["data.squashfs"]}' > \$A/run.json
\$PV verity make web data.squashfs --state \$W/state >/dev/null
R=\$(jq -r .root_hash \$A/_dm/data.squashfs.json)
pv() { \$PV volumes "\$1" web --state \$W/state --root \$W/root >/dev/null; }
pv up; pv down # warm the page cache and Node's
P=(); V=(); K=(); Y=(); N=()
for i in \$(seq \$RUNS); do
  t0=\$(now); mount -o loop,ro -t squashfs \$A/data.squashfs /tmp/plain; t1=\$(now); umount /tmp/plain
  t2=\$(now); pv up; t3=\$(now); pv down
  t4=\$(now); veritysetup open \$A/data.squashfs k \$A/data.squashfs.hash \$R; mount -o ro -t squashfs /dev/mapper/k /tmp/plain; t5=\$(now); umount /tmp/plain; veritysetup close k
  t6=\$(now); veritysetup verify \$A/data.squashfs \$A/data.squashfs.hash \$R; t7=\$(now)
  t8=\$(now); node -e 0; t9=\$(now); N+=(\$(( (t9 - t8) / 1000000 )))
  P+=(\$(( (t1 - t0) / 1000000 ))); V+=(\$(( (t3 - t2) / 1000000 ))); K+=(\$(( (t5 - t4) / 1000000 ))); Y+=(\$(( (t7 - t6) / 1000000 )))
done
pm=\$(printf '%s\n' "\${P[@]}" | median); vm=\$(printf '%s\n' "\${V[@]}" | median); km=\$(printf '%s\n' "\${K[@]}" | median); ym=\$(printf '%s\n' "\${Y[@]}" | median)
nm=\$(printf '%s\n' "\${N[@]}" | median)
echo "\${MIB} MiB squashfs, medians of \$RUNS runs: plain loop mount \${pm} ms, pvdisk volumes up \${vm} ms, open + mount \${km} ms, verify \${ym} ms, node -e 0 \${nm} ms"
echo "pvdisk volumes up / plain mount: \$(echo "scale=2; \$vm / \$pm" | bc)"
echo "open + mount (no verify) / plain mount: \$(echo "scale=2; \$km / \$pm" | bc)"
echo "verify pass: \$(echo "scale=2; \$ym / \$MIB" | bc) ms per MiB"
GUEST
WORK=/tmp/pvdisk-bench-verity-uml MEM=768M TIMEOUT=1200 bash test/fixtures/uml/uml-run.sh "$SHARE/bench-guest.sh" "$SHARE"
rm -rf "$SHARE"
