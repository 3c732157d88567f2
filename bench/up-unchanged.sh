#!/bin/bash
# Benchmark (run by hand as root, after `npm run build`): `pvdisk up` when nothing changes (one
# app, its container running), against `node -e 0` plus Docker's own round trips for what up
# asks (ping, list containers, inspect network none), timed with curl over the same socket.
# Target: up <= 2x node -e 0 plus those round trips. Starts its own dockerd (private socket).
#   bash bench/up-unchanged.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-11}
W=$(mktemp -d /tmp/pvdisk-bench-up-XXXXXX)
PV="node $PWD/dist/pvdisk.cjs"
cleanup() {
  set +e
  $PV down --state "$W/state" --root "$W/root" >/dev/null 2>&1
  [ -f "$W/d/pid" ] && kill "$(cat "$W/d/pid")" && sleep 2
  grep " $W" /proc/self/mountinfo | awk '{print $5}' | tac | xargs -r -n1 umount -l
  rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/state/web" "$W/root"
. bench/dockerd.sh
bench_dockerd "$W"
bench_image "$W/rootfs" sh sleep
echo '{"groups": [{"name": "app"}], "disks": [{"name": "data", "type": "volume-disk"}]}' > "$W/state/device.json"
echo '{"#spec": "service-manifest-src@1", "docker_name": "local/busybox", "config": {"Cmd": ["sleep", "600"]}, "persistence": {"/data": "permanent@data", "/tmp": "boot"}}' > "$W/state/web/src.json"
$PV up --state "$W/state" --root "$W/root" --network none >/dev/null
. bench/timing.sh
api() { curl -s --unix-socket "$W/d/sock" "http://docker$1" >/dev/null; }
U=(); N=(); A=()
for i in $(seq "$RUNS"); do
  t0=$(now); $PV up --state "$W/state" --root "$W/root" --network none >/dev/null; t1=$(now)
  node -e 0; t2=$(now)
  api /_ping; api '/containers/json?all=1'; api /networks/none; t3=$(now)
  U+=($(( (t1 - t0) / 1000000 ))); N+=($(( (t2 - t1) / 1000000 ))); A+=($(( (t3 - t2) / 1000000 )))
done
um=$(printf '%s\n' "${U[@]}" | median); nm=$(printf '%s\n' "${N[@]}" | median); am=$(printf '%s\n' "${A[@]}" | median)
echo "pvdisk up, nothing to change: median ${um} ms; node -e 0 ${nm} ms; Docker's round trips (curl) ${am} ms"
echo "up / (node -e 0 + round trips): $(echo "scale=2; $um / ($nm + $am)" | bc); up / node -e 0: $(echo "scale=2; $um / $nm" | bc) (target: up <= 2 x node -e 0 + round trips)"
