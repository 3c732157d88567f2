#!/bin/bash
# Benchmark (run by hand as root, after `npm run build`): pvdisk's own encrypted disks.
#  1. on the host: `disk up` (unlock + bind) of a TPM-bound fscrypt vault against a
#     keyfile vault, swtpm standing in for the TPM;
#  2. inside User-Mode Linux: `disk up` (unlock + mount) of a TPM-bound dm-crypt-luks2 disk
#     against a keyfile one (target: at most 1.5x), and first init of 1 GiB against 8 GiB
#     (target: within 20%). swtpm runs in the guest; images live on the host's disk (hostfs).
#   bash bench/encrypted-disks.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
W=$(mktemp -d /tmp/pvdisk-bench-enc-XXXXXX)
PV="node $PWD/dist/pvdisk.cjs"
cleanup() {
  set +e
  for s in kf tp; do $PV disk down --state "$W/$s/state" --root "$W/$s/root" >/dev/null 2>&1; done
  [ -f "$W/tpm/pid" ] && kill "$(cat "$W/tpm/pid")"
  grep " $W" /proc/self/mountinfo | awk '{print $5}' | tac | xargs -r -n1 umount -l
  rm -rf "$W"
}
trap cleanup EXIT
. bench/timing.sh

mkdir -p "$W/tpm"
swtpm socket --tpm2 --tpmstate dir="$W/tpm" --server type=tcp,port=2421,bindaddr=127.0.0.1 --ctrl type=tcp,port=2422,bindaddr=127.0.0.1 \
  --flags not-need-init,startup-clear --daemon --pid file="$W/tpm/pid"
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=2421"
truncate -s 128M "$W/fs.img"; mkfs.ext4 -q -F -O encrypt "$W/fs.img"; mkdir -p "$W/fs"; mount -o loop "$W/fs.img" "$W/fs"
for s in kf tp; do
  mkdir -p "$W/$s/state" "$W/$s/root/storage" "$W/fs/$s"; mount --bind "$W/fs/$s" "$W/$s/root/storage"
  unlock='"keyfile"'; [ $s = tp ] && unlock='{"tpm2": {"pcrs": "7"}}'
  printf '{"groups": [], "disks_v3": [{"name": "v", "type": "fscrypt", "path": "/storage/vault", "unlock": %s}]}' "$unlock" > "$W/$s/state/device.json"
  $PV disk up --state "$W/$s/state" --root "$W/$s/root" >/dev/null
done
K=(); T=()
for i in $(seq "$RUNS"); do
  for s in kf tp; do
    $PV disk down --state "$W/$s/state" --root "$W/$s/root" >/dev/null
    t0=$(now); $PV disk up --state "$W/$s/state" --root "$W/$s/root" >/dev/null; t1=$(now)
    if [ $s = kf ]; then K+=($(( (t1 - t0) / 1000000 ))); else T+=($(( (t1 - t0) / 1000000 ))); fi
  done
done
km=$(printf '%s\n' "${K[@]}" | median); tm=$(printf '%s\n' "${T[@]}" | median)
echo "fscrypt vault disk up (unlock + bind), host: keyfile median ${km} ms, tpm2 (swtpm) median ${tm} ms"
echo "fscrypt tpm2 / keyfile: $(echo "scale=2; $tm / $km" | bc)"

SHARE=/var/tmp/pvdisk-bench-luks2
rm -rf "$SHARE"; mkdir -p "$SHARE"
cat > "$SHARE/bench-guest.sh" <<GUEST
set -euo pipefail
S=$SHARE; RUNS=$RUNS
PV="node \$REPO/dist/pvdisk.cjs"
ip link set lo up
mkdir -p /tmp/tpm
swtpm socket --tpm2 --tpmstate dir=/tmp/tpm --server type=tcp,port=2321 --ctrl type=tcp,port=2322 --flags not-need-init,startup-clear --daemon
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=2321"
. \$REPO/bench/timing.sh
state() { # name size unlock
  mkdir -p \$S/\$1/state \$S/\$1/root
  printf '{"groups": [], "disks_v3": [{"name": "d", "type": "dm-crypt-luks2", "path": "/img/disk.img,%s,k", "unlock": %s}]}' \$2 "\$3" > \$S/\$1/state/device.json
}
pv() { \$PV disk "\$1" --state \$S/\$2/state --root \$S/\$2/root >/dev/null; }
one=(); eight=()
for i in \$(seq \$RUNS); do
  for g in g1 g8; do
    rm -rf \$S/\$g; state \$g \$([ \$g = g1 ] && echo 1024 || echo 8192) '"keyfile"'
    t0=\$(now); pv up \$g; sync; t1=\$(now); pv down \$g
    if [ \$g = g1 ]; then one+=(\$(( (t1 - t0) / 1000000 ))); else eight+=(\$(( (t1 - t0) / 1000000 ))); fi
  done
done
om=\$(printf '%s\n' "\${one[@]}" | median); em=\$(printf '%s\n' "\${eight[@]}" | median)
echo "luks2 first init (keyfile): 1 GiB median \${om} ms, 8 GiB median \${em} ms (runs: \${one[*]} / \${eight[*]})"
echo "RATIO_SIZE \$(echo "scale=2; \$em / \$om" | bc)"
rm -rf \$S/g1 \$S/g8
state kf 64 '"keyfile"'; state tp 64 '{"tpm2": {"pcrs": "7"}}'
pv up kf; pv down kf; pv up tp; pv down tp
K=(); T=()
for i in \$(seq \$RUNS); do
  t0=\$(now); pv up kf; t1=\$(now); pv down kf
  t2=\$(now); pv up tp; t3=\$(now); pv down tp
  K+=(\$(( (t1 - t0) / 1000000 ))); T+=(\$(( (t3 - t2) / 1000000 )))
done
km=\$(printf '%s\n' "\${K[@]}" | median); tm=\$(printf '%s\n' "\${T[@]}" | median)
echo "luks2 disk up (unlock + mount), UML: keyfile median \${km} ms, tpm2 (swtpm) median \${tm} ms (runs: \${K[*]} / \${T[*]})"
echo "RATIO_TPM \$(echo "scale=2; \$tm / \$km" | bc)"
GUEST
out=$(WORK=/tmp/pvdisk-bench-luks2-uml TIMEOUT=3000 bash test/fixtures/uml/uml-run.sh "$SHARE/bench-guest.sh" "$SHARE")
echo "$out" | grep -v '^RATIO'
echo "luks2 8 GiB / 1 GiB first init: $(sed -n 's/^RATIO_SIZE //p' <<<"$out") (target: within 20%, i.e. 0.8 to 1.2)"
echo "luks2 tpm2 / keyfile unlock + mount: $(sed -n 's/^RATIO_TPM //p' <<<"$out") (target: at most 1.5)"
rm -rf "$SHARE"
