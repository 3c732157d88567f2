#!/bin/bash
# Runs a bash script as root inside User-Mode Linux: a real Linux kernel with dm-crypt,
# running as an ordinary process (the host kernel has no device-mapper). The guest's root
# is the host's / over hostfs, read-only; /tmp and /run are guest tmpfs; SHARE (default
# $WORK/share) is mounted read-write at the same path, and so is the repository.
# usage: uml-run.sh GUEST_SCRIPT [SHARE_DIR]   env: WORK (/tmp/pvdisk-uml), MEM (512M), TIMEOUT (600)
# env SECTIONS is passed to the guest. Exit status = the guest script's (125 if it did not report one)
set -euo pipefail
WORK=$(readlink -m "${WORK:-/tmp/pvdisk-uml}"); MEM=${MEM:-512M}; TIMEOUT=${TIMEOUT:-600}
SHARE=$(readlink -m "${2:-$WORK/share}")
REPO=$(readlink -m "$(dirname "$0")/../..")
command -v linux.uml >/dev/null || { echo "uml-run: linux.uml not found: apt-get install user-mode-linux" >&2; exit 127; }
mkdir -p "$WORK" "$SHARE"
KV=$(ls /usr/lib/uml/modules | sort -V | tail -1)
cp "$1" "$SHARE/.guest-script.sh"; rm -f "$SHARE/guest.rc" "$SHARE/guest.log"
cat > "$WORK/init.sh" <<INIT
#!/bin/bash
# PID 1 in UML
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root DM_DISABLE_UDEV=1 VM_SHARE=$SHARE REPO=$REPO SECTIONS="${SECTIONS:-}"
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs run /run; mkdir -p /run/cryptsetup /run/modbase/lib/modules
# the host has no /lib/modules/$KV: point modprobe (and the kernel's autoloader) at UML's modules
ln -s /usr/lib/uml/modules/$KV /run/modbase/lib/modules/$KV
printf '#!/bin/sh\nexec /usr/sbin/modprobe -d /run/modbase "\$@"\n' > /run/modprobe; chmod +x /run/modprobe
echo /run/modprobe > /proc/sys/kernel/modprobe
for m in loop dm-mod dm-crypt xts essiv cbc algif_skcipher algif_hash overlay; do
  /run/modprobe \$m 2>/dev/null || echo "uml-init: modprobe \$m failed"
done
mount -t tmpfs tmp /tmp; mkdir -p $SHARE
mount -t hostfs -o $SHARE share $SHARE
mkdir -p $REPO; mount -t hostfs -o $REPO repo $REPO
echo "uml-init: up \$(cut -d' ' -f1 /proc/uptime)s"
bash $SHARE/.guest-script.sh > $SHARE/guest.log 2>&1; echo \$? > $SHARE/guest.rc
echo "uml-init: rc=\$(cat $SHARE/guest.rc) at \$(cut -d' ' -f1 /proc/uptime)s"
sync; umount $REPO; umount $SHARE; exec busybox poweroff -f
INIT
chmod +x "$WORK/init.sh"
timeout "$TIMEOUT" linux.uml mem="$MEM" rootfstype=hostfs rootflags=/ ro init="$WORK/init.sh" \
  con=null con0=fd:0,fd:1 quiet </dev/null 2>&1 | grep -a 'uml-init' >&2 || true
cat "$SHARE/guest.log" 2>/dev/null || true
[ -f "$SHARE/guest.rc" ] && exit "$(cat "$SHARE/guest.rc")"
echo "uml-run: guest did not report a result" >&2; exit 125
