#!/bin/bash
# Benchmark (run by hand as root, after `npm run build`): migration throughput. 1 GiB of mixed
# files (large, medium and 20,000 small ones, in nested directories) on a bind disk, moved to
# another disk by `pvdisk migrate` (cp -a, a byte-for-byte comparison, sync, rename), against
# `cp -a` of the same tree, and against `cp -a` followed by `sync`, alternating in one run.
# Target: pvdisk at least 0.8x cp -a's throughput, verification included.
#   bash bench/migrate.sh [RUNS] [MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}; MIB=${2:-1024}
W=$(mktemp -d /var/tmp/pvdisk-bench-migrate-XXXXXX)
PV="node $PWD/dist/pvdisk.cjs"
cleanup() { set +e; grep " $W" /proc/self/mountinfo | awk '{print $5}' | tac | xargs -r -n1 umount -l; rm -rf "$W"; }
trap cleanup EXIT
. bench/timing.sh
mkdir -p "$W/state/web" "$W/root"
printf '{"groups": [], "disks": [{"name": "a", "type": "volume-disk"}, {"name": "b", "type": "volume-disk"}]}' > "$W/state/device.json"
src() { printf '{"#spec": "service-manifest-src@1", "persistence": {"/data": "permanent@%s"}}' "$1" > "$W/state/web/src.json"; }
pv() { $PV "$@" --state "$W/state" --root "$W/root" >/dev/null; }
src a; pv volumes up web; pv volumes down web
A=$W/root/media/pv/dmcrypt/a/perm/web/docker--data
B=$W/root/media/pv/dmcrypt/b/perm/web/docker--data
# the tree: 60% in 24 large files, 25% in 400 medium ones, 15% in 20,000 small ones
large=$(( MIB * 6 / 10 / 24 )); medium=$(( MIB * 1024 * 25 / 100 / 400 )); small=$(( MIB * 1024 * 1024 * 15 / 100 / 20000 ))
mkdir -p "$A/large" "$A/medium"
for i in $(seq 24); do head -c "${large}M" /dev/urandom > "$A/large/f$i"; done
for i in $(seq 400); do head -c "${medium}K" /dev/urandom > "$A/medium/f$i"; done
node -e '
const fs = require("fs"), path = require("path"), crypto = require("crypto")
const [dir, size] = [process.argv[1], Number(process.argv[2])]
for (let d = 0; d < 100; d++) { fs.mkdirSync(path.join(dir, "small", String(d), "x"), { recursive: true })
  for (let f = 0; f < 200; f++) fs.writeFileSync(path.join(dir, "small", String(d), f % 2 ? "x" : "", `f${f}`), crypto.randomBytes(size), { mode: f % 3 ? 0o644 : 0o600 }) }
' "$A" "$small"
sync
echo "tree: $(du -sm "$A" | cut -f1) MiB, $(find "$A" | wc -l) entries"
record=$W/root/var/lib/pvdisk/placements/web.json
cp "$record" "$W/record.a"
C=(); S=(); P=()
for i in $(seq "$RUNS"); do
  rm -rf "$W/cp"; mkdir "$W/cp"; sync
  t0=$(now); cp -a -- "$A/." "$W/cp/"; t1=$(now)
  rm -rf "$W/cp"; mkdir "$W/cp"; sync
  t2=$(now); cp -a -- "$A/." "$W/cp/"; sync; t3=$(now)
  rm -rf "$W/cp" "$B"; cp "$W/record.a" "$record"; rm -f "$W/root/var/lib/pvdisk/migrations.json"; src b; sync
  t4=$(now); pv migrate; t5=$(now)
  src a
  C+=($(( (t1 - t0) / 1000000 ))); S+=($(( (t3 - t2) / 1000000 ))); P+=($(( (t5 - t4) / 1000000 )))
done
cm=$(printf '%s\n' "${C[@]}" | median); sm=$(printf '%s\n' "${S[@]}" | median); pm=$(printf '%s\n' "${P[@]}" | median)
echo "medians of $RUNS runs: cp -a ${cm} ms, cp -a + sync ${sm} ms, pvdisk migrate ${pm} ms (runs: ${C[*]} / ${S[*]} / ${P[*]})"
echo "pvdisk migrate throughput / cp -a: $(echo "scale=2; $cm / $pm" | bc) (target: at least 0.8)"
echo "pvdisk migrate throughput / cp -a + sync: $(echo "scale=2; $sm / $pm" | bc)"
