#!/bin/bash
# Runs inside User-Mode Linux (test/uml/uml-run.sh): the disk engine against real
# dm-crypt, loop devices and ext4. Prints "PASS: <name>" per scenario; exits non-zero on
# the first failure. (With pipefail, never pipe into grep -q: grep's early exit makes the
# producer die of SIGPIPE. Here-strings instead.)
set -uo pipefail
PVDISK="node $REPO/dist/pvdisk.mjs"
export PATH=$PATH:$REPO/test/uml/fake-tools
W=/tmp/w; mkdir -p $W
fail() { echo "FAIL: $*"; exit 1; }
pass() { echo "PASS: $*"; }
pv() { $PVDISK "$@" --state $W/state --root $W/root; }

# a state with one disk of the given type; images are small to keep this fast
state() { # type mode size
  rm -rf $W/state $W/root; mkdir -p $W/state $W/root
  local extra=""; [ -n "${2:-}" ] && extra=", \"mode\": \"$2\""
  local prefix=""; [ "$1" = dm-crypt-caam ] && prefix="-v2 "
  cat > $W/state/device.json <<JSON
{"groups": [{"name": "app"}], "disks": [{"name": "sec", "type": "$1"$extra,
  "path": "${prefix}/storage/dm-crypt-files/sec/disk.img,${3:-8},key_sec"}]}
JSON
}
D=$W/root/storage/dm-crypt-files/sec
M=$W/root/media/pv/dmcrypt/sec
mapped() { ls /dev/mapper | grep -c pvdisk- || true; }
loops() { losetup -a | grep -c "$W/root" || true; }

want() { [ -z "${SECTIONS:-}" ] || [[ " $SECTIONS " == *" $1 "* ]]; }

# --- versatile: first init, data survives down/up, no plaintext, idempotent, 0600 key
sec_versatile() {
  state dm-crypt-versatile
  pv disk up >/dev/null || fail "first up"
  [ "$(stat -c %a $D/key_sec.txt)" = 600 ] || fail "key mode $(stat -c %a $D/key_sec.txt)"
  [ "$(stat -c %s $D/key_sec.txt)" = 32 ] || fail "key size"
  [ -f $D/key_sec.init_done ] && [ ! -e $D/disk.img.new ] || fail "marker / leftover .new"
  grep -q " $M ext4 " /proc/self/mountinfo || grep -q " $M " /proc/self/mountinfo || fail "not in mountinfo"
  echo "secret-payload-$$" > $M/file; sync
  out=$(pv disk up) && grep -q "already mounted" <<<"$out" || fail "second up not idempotent: $out"
  grep -q '"state": "mounted"' <<<"$(pv disk status --json)" || fail "status not mounted"
  pv disk down >/dev/null || fail "down"
  [ "$(mapped)" = 0 ] && [ "$(loops)" = 0 ] || fail "mapping or loop left after down"
  grep -q '"state": "provisioned"' <<<"$(pv disk status --json)" || fail "status not provisioned after down"
  grep -q "secret-payload" $D/disk.img && fail "plaintext visible in the image"
  pv disk up >/dev/null && grep -q "secret-payload-$$" $M/file || fail "data lost after down/up"
  pv disk down >/dev/null
  pass "versatile first init, down, up, data intact, no plaintext, key 0600"
}

# --- the filesystem is ext4 with 1 KiB blocks, as Pantavisor makes it
sec_bare_open() {
  L=$(losetup -f --show $D/disk.img)
  cryptsetup open --type plain -s 256 -c aes-cbc-essiv:sha256 --key-file=$D/key_sec.txt "$L" bare || fail "bare open"
  grep -q "Block size: *1024" <<<"$(dumpe2fs -h /dev/mapper/bare 2>/dev/null)" || fail "block size"
  mkdir -p /tmp/bare; mount -o ro /dev/mapper/bare /tmp/bare && grep -q "secret-payload-$$" /tmp/bare/file || fail "pvdisk image does not open with Pantavisor's bare commands"
  umount /tmp/bare; cryptsetup close bare; losetup -d "$L"
  pass "pvdisk image opens with Pantavisor's bare commands"
}

# --- wrong key: clear error, image untouched, nothing left open
sec_wrong_key() {
  cp $D/key_sec.txt /tmp/good.key; before=$(sha256sum < $D/disk.img)
  head -c 32 /dev/urandom > $D/key_sec.txt
  out=$(pv disk up 2>&1); rc=$?
  [ $rc = 1 ] && grep -q "does not decrypt" <<<"$out" || fail "wrong key: rc=$rc $out"
  [ "$(sha256sum < $D/disk.img)" = "$before" ] || fail "wrong key changed the image"
  [ "$(mapped)" = 0 ] && [ "$(loops)" = 0 ] || fail "wrong key left a mapping or loop"
  cp /tmp/good.key $D/key_sec.txt; chmod 600 $D/key_sec.txt
  pass "wrong key fails clearly and leaves the image untouched"
}

# --- missing key of an initialised disk: error, never a new key
sec_missing_key() {
  rm $D/key_sec.txt
  out=$(pv disk up 2>&1); rc=$?
  [ $rc = 1 ] && grep -q "is missing" <<<"$out" && [ ! -e $D/key_sec.txt ] || fail "missing key: rc=$rc $out"
  [ "$(sha256sum < $D/disk.img)" = "$before" ] || fail "missing key changed the image"
  cp /tmp/good.key $D/key_sec.txt
  pass "a missing key is an error and the image is left untouched"
}

# --- stale mapping and loop after an unclean shutdown
sec_stale() {
  pv disk up >/dev/null; umount $M   # as if the machine died with the mapping open
  out=$(pv disk up 2>&1) || fail "up over a stale mapping: $out"
  grep -q "secret-payload-$$" $M/file || fail "data after stale cleanup"
  pv disk down >/dev/null
  pass "stale mappings and loop devices are cleaned before opening"
}

# --- Pantavisor's bare commands make an image; pvdisk opens it with its data
sec_pantavisor_image() {
  state dm-crypt-versatile
  mkdir -p $D; head -c 32 /dev/urandom > $D/key_sec.txt; dd if=/dev/zero of=$D/disk.img bs=1M count=8 status=none
  L=$(losetup -f --show $D/disk.img)
  cryptsetup open --type plain -s 256 -c aes-cbc-essiv:sha256 --key-file=$D/key_sec.txt "$L" disk
  mkfs.ext4 -q -b 1024 /dev/mapper/disk; mount /dev/mapper/disk /tmp/bare; echo from-pantavisor > /tmp/bare/pv.txt
  umount /tmp/bare; cryptsetup close disk; losetup -d "$L"; touch $D/key_sec.init_done
  pv disk up >/dev/null && grep -q from-pantavisor $M/pv.txt || fail "Pantavisor image did not open in pvdisk"
  pv disk down >/dev/null
  pass "an image made with Pantavisor's bare commands opens in pvdisk with its data"
}

# --- kill -9 at every step of first init, then up converges; data then survives
sec_crash_init() {
  n=1
  while :; do
    state dm-crypt-versatile
    PVDISK_CRASH_AT=$n $PVDISK disk up --state $W/state --root $W/root >/dev/null 2>&1; rc=$?
    [ $rc = 0 ] && { pv disk down >/dev/null; break; }   # finished before step n: all steps covered
    [ $rc = 137 ] || fail "crash at step $n: rc=$rc"
    out=$(pv disk up 2>&1) || fail "up after a crash at step $n: $out"
    echo "crash-$n" > $M/f; pv disk down >/dev/null || fail "down after crash $n"
    pv disk up >/dev/null && grep -q "crash-$n" $M/f || fail "data after crash $n"
    pv disk down >/dev/null
    n=$((n + 1)); [ $n -lt 60 ] || fail "too many steps"
  done
  pass "kill -9 at each of $((n - 1)) steps of first init, then up converges with data intact"
}

# --- kill -9 at every step of up and of down of an initialised disk with data
sec_crash_updown() {
  state dm-crypt-versatile; pv disk up >/dev/null; echo keep-me > $M/k; pv disk down >/dev/null
  for op in up down; do
    n=1
    while :; do
      [ $op = down ] && pv disk up >/dev/null
      PVDISK_CRASH_AT=$n $PVDISK disk $op --state $W/state --root $W/root >/dev/null 2>&1; rc=$?
      [ $rc = 0 ] && { [ $op = up ] && pv disk down >/dev/null; break; }
      [ $rc = 137 ] || fail "crash at step $n of $op: rc=$rc"
      pv disk up >/dev/null 2>&1 || fail "up after crash at step $n of $op"
      grep -q keep-me $M/k || fail "data lost after crash at step $n of $op"
      pv disk down >/dev/null
      n=$((n + 1)); [ $n -lt 40 ] || fail "too many steps"
    done
  done
  pass "kill -9 at each step of up and down keeps the data"
}

# --- two pvdisk processes at once serialise on the disk lock
sec_concurrent() {
  pv disk up >/dev/null & pv disk up >/dev/null & wait %1 && wait %2 || fail "concurrent up"
  [ "$(grep -c " $M " /proc/self/mountinfo)" = 1 ] || fail "mounted twice"
  pv disk down >/dev/null
  pass "concurrent pvdisk processes serialise on the disk lock"
}

# --- caam nxp plumbing for real: caam-keygen, a logon key in @u, a dmsetup crypt table
sec_caam() {
  # (a software cipher stands in for CAAM's tagged-key cipher; the key is a 32-byte logon key)
  state dm-crypt-caam nxp
  export PVDISK_CAAM_BLOB_DIR=/tmp/caam
  export PVDISK_CIPHER_OVERRIDE='capi:cbc(aes)-plain'
  pv disk up >/dev/null || fail "caam up"
  grep -q "logon:logkey:key_sec" <<<"$(dmsetup table --showkeys)" || fail "caam table does not use the logon key"
  echo caam-data > $M/c; pv disk down >/dev/null || fail "caam down"
  keyctl search @u logon logkey:key_sec >/dev/null 2>&1 && fail "caam key left in the keyring after down"
  pv disk up >/dev/null && grep -q caam-data $M/c || fail "caam data after down/up"
  pv disk down >/dev/null; unset PVDISK_CIPHER_OVERRIDE
  [ -f $D/key_sec.bb ] && [ "$(stat -c %a $D/key_sec.bb)" = 600 ] || fail "caam blob file"
  pass "caam nxp: caam-keygen, logon key and dmsetup table run for real"
}

# --- dcp nxp: grey blob through the DCP tool, key on stdin to cryptsetup
sec_dcp() {
  state dm-crypt-dcp nxp
  pv disk up >/dev/null || fail "dcp up"
  echo dcp-data > $M/d; pv disk down >/dev/null && pv disk up >/dev/null && grep -q dcp-data $M/d || fail "dcp data"
  pv disk down >/dev/null
  [ -f $D/key_sec ] || fail "dcp grey blob"
  pass "dcp nxp: grey blob decrypted to cryptsetup's stdin"
}

# --- a mount that fails runs fsck.ext4 -y once and retries; if that fails, fsck's output is in the error
sec_fsck() {
  state dm-crypt-versatile; pv disk up >/dev/null; echo survives-fsck > $M/f; pv disk down >/dev/null
  bare() { L=$(losetup -f --show $D/disk.img); cryptsetup open --type plain -s 256 -c aes-cbc-essiv:sha256 --key-file=$D/key_sec.txt "$L" bare; "$@"; cryptsetup close bare; losetup -d "$L"; }
  bare debugfs -w -R "set_bg 0 checksum 0" /dev/mapper/bare >/dev/null 2>&1
  out=$(pv disk up 2>&1) || fail "repairable corruption: $out"
  grep -q "running fsck.ext4 -y once" <<<"$out" && grep -q survives-fsck $M/f || fail "fsck did not repair: $out"
  pv disk down >/dev/null
  bare debugfs -w -R "ssv feature_incompat 0x7fffffff" /dev/mapper/bare >/dev/null 2>&1
  out=$(pv disk up 2>&1); rc=$?
  [ $rc = 1 ] && grep -q "even after fsck" <<<"$out" && grep -q "fsck.ext4 exit status" <<<"$out" || fail "unrepairable: rc=$rc $out"
  [ "$(mapped)" = 0 ] && [ "$(loops)" = 0 ] || fail "failed mount left a mapping or loop"
  pass "a failed mount runs fsck once and retries; a hopeless one fails with fsck's output"
}

# --- the whole chain on an encrypted disk: pvdisk up starts a Docker container whose volume is on dm-crypt
sec_docker_chain() {
  mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null || true
  local DD=/tmp/docker; mkdir -p $DD
  dockerd --data-root $DD/data --exec-root $DD/exec --pidfile $DD/pid -H unix://$DD/sock \
    --iptables=false --ip6tables=false --bridge=none --storage-driver=overlay2 > $DD/log 2>&1 &
  export DOCKER_HOST=unix://$DD/sock
  for i in $(seq 1 300); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
  docker info >/dev/null 2>&1 || { tail -5 $DD/log; fail "dockerd did not start"; }
  local R=/tmp/bbroot; mkdir -p $R/bin $R/tmp $R/proc $R/sys $R/dev $R/etc
  cp /bin/busybox $R/bin/; for a in sh cat echo ls grep date sleep mount; do ln -s busybox $R/bin/$a; done
  tar -C $R -c . | docker import - local/busybox:latest >/dev/null || fail "image import"
  rm -rf $W/state $W/root; mkdir -p $W/state/web $W/root
  cat > $W/state/device.json <<JSON
{"groups": [{"name": "app"}], "disks": [{"name": "sec", "type": "dm-crypt-versatile", "path": "/storage/dm-crypt-files/sec/disk.img,16,key_sec"}]}
JSON
  cat > $W/state/web/src.json <<JSON
{"#spec": "service-manifest-src@1", "docker_name": "local/busybox", "docker_tag": "latest",
 "config": {"Cmd": ["sh", "-c", "echo secret-from-container >> /data/f; grep ' /data ' /proc/mounts > /data/m; sleep 600"]},
 "persistence": {"/data": "permanent@sec"}}
JSON
  out=$(pv up --network none 2>&1) || fail "pvdisk up: $out"
  local V=$M/perm/web/docker--data
  for i in $(seq 1 100); do [ -s $V/m ] && break; sleep 0.2; done
  grep -q secret-from-container $V/f || fail "the container did not write into its volume"
  grep -q "^/dev/mapper/pvdisk-sec" $V/m || grep -q "^/dev/dm-" $V/m || fail "the container's /data is not the encrypted disk: $(cat $V/m)"
  out=$(pv down 2>&1) || fail "pvdisk down: $out"
  [ "$(mapped)" = 0 ] || fail "the encrypted disk is still open after down"
  grep -q secret-from-container $D/disk.img && fail "plaintext in the image"
  pv up --network none >/dev/null 2>&1 || fail "second up"
  for i in $(seq 1 100); do [ "$(grep -c secret-from-container $V/f 2>/dev/null)" = 2 ] && break; sleep 0.2; done
  [ "$(grep -c secret-from-container $V/f)" = 2 ] || fail "data did not survive down and up"
  pv down >/dev/null 2>&1
  kill "$(cat $DD/pid)"; for i in $(seq 1 50); do [ -e $DD/pid ] || break; sleep 0.2; done
  pass "pvdisk up: a Docker container writes to its volume on a dm-crypt disk, data survives down and up"
}

for s in versatile bare_open wrong_key missing_key stale pantavisor_image crash_init crash_updown concurrent caam dcp fsck docker_chain; do want $s && sec_$s; done
echo "ALL DONE"
