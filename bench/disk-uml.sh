#!/bin/bash
# Benchmark (run by hand as root, after `npm run build`), inside User-Mode Linux:
#  1. first init of a 1 GiB dm-crypt-versatile disk: pvdisk (`disk up`) against
#     Pantavisor's sequence (dd bs=1M of the full size, cryptsetup open, mkfs.ext4 -b 1024,
#     close); target: pvdisk at least 10x faster;
#  2. `disk up` of an initialised 1 GiB and 8 GiB disk; target: within 20% of each other.
# Images live on the host's disk (UML hostfs), in $SHARE (default /var/tmp/pvdisk-bench).
#   bash bench/disk-uml.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
SHARE=${SHARE:-/var/tmp/pvdisk-bench}
rm -rf "$SHARE"; mkdir -p "$SHARE"
cat > "$SHARE/bench-guest.sh" <<GUEST
set -euo pipefail
S=$SHARE; RUNS=$RUNS
PV="node \$REPO/dist/pvdisk.cjs"
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=\$1} END {print a[int((NR+1)/2)]}'; }
state() { # name size
  mkdir -p \$S/\$1/state \$S/\$1/root
  printf '{"groups": [], "disks": [{"name": "d", "type": "dm-crypt-versatile", "path": "/img/disk.img,%s,k"}]}' \$2 > \$S/\$1/state/device.json
}
pvinit=(); pantavisor=()
for i in \$(seq \$RUNS); do
  rm -rf \$S/pv \$S/pan; state pv 1024; mkdir -p \$S/pan
  t0=\$(now)
  dd if=/dev/zero of=\$S/pan/disk.img bs=1M count=1024 status=none
  head -c 32 /dev/urandom > \$S/pan/k.txt
  L=\$(losetup -f --show \$S/pan/disk.img)
  cryptsetup open --type plain -s 256 -c aes-cbc-essiv:sha256 --key-file=\$S/pan/k.txt "\$L" panbench
  mkfs.ext4 -q -b 1024 /dev/mapper/panbench
  cryptsetup close panbench; losetup -d "\$L"; sync
  t1=\$(now)
  \$PV disk up --state \$S/pv/state --root \$S/pv/root >/dev/null; sync
  t2=\$(now)
  \$PV disk down --state \$S/pv/state --root \$S/pv/root >/dev/null
  pantavisor+=(\$(echo "\$t1 - \$t0" | bc)); pvinit+=(\$(echo "\$t2 - \$t1" | bc))
done
pm=\$(printf '%s\n' "\${pantavisor[@]}" | median); vm=\$(printf '%s\n' "\${pvinit[@]}" | median)
echo "first init, 1 GiB: Pantavisor sequence median \${pm} s, pvdisk disk up median \${vm} s (runs: \${pantavisor[*]} / \${pvinit[*]})"
echo "RATIO_INIT \$(echo "scale=2; \$pm / \$vm" | bc)"
rm -rf \$S/pan \$S/pv
# how first init scales with size: Pantavisor writes every byte, pvdisk does not
state pv8 8192; mkdir -p \$S/pan
t0=\$(now); dd if=/dev/zero of=\$S/pan/disk.img bs=1M count=8192 status=none
L=\$(losetup -f --show \$S/pan/disk.img); cryptsetup open --type plain -s 256 -c aes-cbc-essiv:sha256 --key-file=\$S/pan/k.txt "\$L" panbench 2>/dev/null || { head -c 32 /dev/urandom > \$S/pan/k.txt; cryptsetup open --type plain -s 256 -c aes-cbc-essiv:sha256 --key-file=\$S/pan/k.txt "\$L" panbench; }
mkfs.ext4 -q -b 1024 /dev/mapper/panbench; cryptsetup close panbench; losetup -d "\$L"; sync; t1=\$(now)
\$PV disk up --state \$S/pv8/state --root \$S/pv8/root >/dev/null; sync; t2=\$(now)
\$PV disk down --state \$S/pv8/state --root \$S/pv8/root >/dev/null
p8=\$(echo "\$t1 - \$t0" | bc); v8=\$(echo "\$t2 - \$t1" | bc)
echo "first init, 8 GiB: Pantavisor sequence \${p8} s, pvdisk disk up \${v8} s"
echo "RATIO_INIT8 \$(echo "scale=2; \$p8 / \$v8" | bc)"
rm -rf \$S/pan \$S/pv8
state g1 1024; state g8 8192
\$PV disk up --state \$S/g1/state --root \$S/g1/root >/dev/null; \$PV disk down --state \$S/g1/state --root \$S/g1/root >/dev/null
\$PV disk up --state \$S/g8/state --root \$S/g8/root >/dev/null; \$PV disk down --state \$S/g8/state --root \$S/g8/root >/dev/null
one=(); eight=()
for i in \$(seq \$((RUNS * 2 + 1))); do
  for g in g1 g8; do
    t0=\$(now); \$PV disk up --state \$S/\$g/state --root \$S/\$g/root >/dev/null; t1=\$(now)
    \$PV disk down --state \$S/\$g/state --root \$S/\$g/root >/dev/null
    [ \$g = g1 ] && one+=(\$(echo "\$t1 - \$t0" | bc)) || eight+=(\$(echo "\$t1 - \$t0" | bc))
  done
done
m1=\$(printf '%s\n' "\${one[@]}" | median); m8=\$(printf '%s\n' "\${eight[@]}" | median)
echo "disk up of an initialised disk: 1 GiB median \${m1} s, 8 GiB median \${m8} s"
echo "RATIO_UP \$(echo "scale=3; \$m8 / \$m1" | bc)"
du -sh --apparent-size \$S/g8/root/img/disk.img; du -sh \$S/g8/root/img/disk.img
GUEST
out=$(MEM=${MEM:-512M} TIMEOUT=3000 WORK=/tmp/pvdisk-bench-uml test/fixtures/uml/uml-run.sh "$SHARE/bench-guest.sh" "$SHARE" 2>&1) || { echo "$out"; exit 1; }
echo "$out" | grep -v '^RATIO'
init=$(echo "$out" | sed -n 's/^RATIO_INIT //p'); init8=$(echo "$out" | sed -n 's/^RATIO_INIT8 //p'); up=$(echo "$out" | sed -n 's/^RATIO_UP //p')
echo "first init: pvdisk ${init}x faster than Pantavisor's sequence at 1 GiB, ${init8}x at 8 GiB (target >= 10x)"
echo "disk up: 8 GiB / 1 GiB = ${up} (target within 20%: 0.80 .. 1.20)"
rm -rf "$SHARE"
