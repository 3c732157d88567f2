#!/bin/bash
# Benchmark (run by hand as root, after `npm run build`):
#  1. `docker run --rm` of a container with 4 pvdisk volumes against the same with 4 `local`
#     volumes, alternating, median of RUNS each; target ratio <= 1.15.
#  2. the OCI hook (createRuntime, 4 volumes, a fresh mount namespace per run) against
#     `node -e 0`, alternating: in-process (target <= 1.4x) and through pvdisk serve (<= 0.5x).
# Starts its own dockerd (private socket, no bridge, no iptables) and pvdisk serve.
#   bash bench/volumes.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-11}
W=$(mktemp -d /tmp/pvdisk-bench-XXXXXX)
PV="node $PWD/dist/pvdisk.cjs"
NAME=pvdisk-bench$$
cleanup() {
  set +e
  docker ps -aq | xargs -r docker rm -f >/dev/null 2>&1
  [ -n "${PLUGIN:-}" ] && kill "$PLUGIN" 2>/dev/null && wait "$PLUGIN" 2>/dev/null
  [ -n "${NSPID:-}" ] && kill "$NSPID" 2>/dev/null
  [ -f "$W/d/pid" ] && kill "$(cat "$W/d/pid")" && sleep 2
  grep " $W" /proc/self/mountinfo | awk '{print $5}' | tac | xargs -r -n1 umount -l
  rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/state" "$W/root"
. bench/dockerd.sh
bench_dockerd "$W"
bench_image "$W/rootfs" sh true
echo '{"groups": [], "disks": [{"name": "data", "type": "volume-disk"}]}' > "$W/state/device.json"
$PV serve --socket "/run/docker/plugins/$NAME.sock" --state "$W/state" --root "$W/root" 2>/dev/null & PLUGIN=$!
for i in $(seq 1 100); do [ -S "/run/docker/plugins/$NAME.sock" ] && break; sleep 0.1; done
pvm=(); lcm=()
for i in 1 2 3 4; do
  docker volume create -d "$NAME" -o app=bench -o persistence=permanent@data "pv$i" >/dev/null
  docker volume create "local$i" >/dev/null
  pvm+=(--mount "type=volume,source=pv$i,target=/v$i"); lcm+=(--mount "type=volume,source=local$i,target=/v$i")
done
. bench/timing.sh
docker run --rm --network none "${pvm[@]}" local/busybox true; docker run --rm --network none "${lcm[@]}" local/busybox true  # warm up
P=(); L=()
for i in $(seq "$RUNS"); do
  t0=$(now); docker run --rm --network none "${pvm[@]}" local/busybox true; t1=$(now)
  docker run --rm --network none "${lcm[@]}" local/busybox true; t2=$(now)
  P+=($(( (t1 - t0) / 1000000 ))); L+=($(( (t2 - t1) / 1000000 )))
done
pm=$(printf '%s\n' "${P[@]}" | median); lm=$(printf '%s\n' "${L[@]}" | median)
echo "docker run --rm, 4 volumes, $RUNS alternating runs each: pvdisk median ${pm} ms, local median ${lm} ms"
echo "ratio $(echo "scale=3; $pm / $lm" | bc) (target <= 1.15)"

# the OCI hook: a process in its own mount namespace stands in for the container being created,
# a fresh one for every timed run (in a namespace reused, the second run would find it all
# mounted and do nothing). In-process (the hook program) and through the fast path's client
# with the pvdisk serve above answering; targets <= 1.4x and <= 0.5x of node -e 0.
mkdir -p "$W/state/hookapp" "$W/bundle/rootfs"
echo '{"#spec": "service-manifest-src@1", "persistence": {"/a": "permanent@data", "/b": "revision@data", "/c": "permanent", "/d": "boot@data"}}' > "$W/state/hookapp/src.json"
echo '{"ociVersion": "1.0.2", "root": {"path": "rootfs"}}' > "$W/bundle/config.json"
fresh_ns() {
  unshare --mount --propagation private sleep 600 & NSPID=$!
  while [ "$(cat /proc/$NSPID/comm 2>/dev/null)" != sleep ]; do :; done
  STATE="{\"ociVersion\":\"1.0.2\",\"id\":\"bench\",\"status\":\"creating\",\"pid\":$NSPID,\"bundle\":\"$W/bundle\",\"annotations\":{\"io.pvdisk.state\":\"$W/state\",\"io.pvdisk.app\":\"hookapp\",\"io.pvdisk.root\":\"$W/root\"}}"
}
done_ns() { kill "$NSPID"; wait "$NSPID" 2>/dev/null || true; NSPID=; }
CLIENT="$PWD/dist/pvdisk-hook --socket /run/docker/plugins/$NAME.sock oci --stage createRuntime"
fresh_ns; echo "$STATE" | node $PWD/dist/pvdisk-oci-hook.cjs >/dev/null; done_ns  # warm up
fresh_ns; echo "$STATE" | PVDISK_NODE=/nonexistent $CLIENT >/dev/null; done_ns
H=(); C=(); N=()
for i in $(seq "$RUNS"); do
  t0=$(now); node -e 0; t1=$(now)
  fresh_ns; t2=$(now); echo "$STATE" | node $PWD/dist/pvdisk-oci-hook.cjs >/dev/null; t3=$(now); done_ns
  fresh_ns; t4=$(now); echo "$STATE" | PVDISK_NODE=/nonexistent $CLIENT >/dev/null; t5=$(now); done_ns
  N+=($(( (t1 - t0) / 1000000 ))); H+=($(( (t3 - t2) / 1000000 ))); C+=($(( (t5 - t4) / 1000000 )))
done
hm=$(printf '%s\n' "${H[@]}" | median); cm=$(printf '%s\n' "${C[@]}" | median); nm=$(printf '%s\n' "${N[@]}" | median)
echo "oci-hook createRuntime, 4 volumes, a fresh namespace per run: node -e 0 median ${nm} ms"
echo "  in-process (pvdisk-oci-hook): median ${hm} ms, ratio $(echo "scale=3; $hm / $nm" | bc) (target <= 1.4)"
echo "  through pvdisk serve (pvdisk-hook): median ${cm} ms, ratio $(echo "scale=3; $cm / $nm" | bc) (target <= 0.5)"
