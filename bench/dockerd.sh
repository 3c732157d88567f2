# Sourced by the Docker benches: a private dockerd under $1 (no bridge, no iptables), DOCKER_HOST
# pointed at it, and bench_image ROOTFS APPLET... to import a busybox image made offline.
bench_dockerd() {
  mkdir -p "$1/d"
  dockerd --iptables=false --ip6tables=false --bridge=none --ip-masq=false --data-root="$1/d/data" --exec-root="$1/d/exec" \
    --pidfile="$1/d/pid" -H "unix://$1/d/sock" >"$1/d/log" 2>&1 &
  export DOCKER_HOST=unix://$1/d/sock
  for i in $(seq 1 100); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
}

bench_image() { # ROOTFS APPLET...: local/busybox:latest from busybox-static and these applet links
  local rootfs=$1; shift
  mkdir -p "$rootfs/bin" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/etc" "$rootfs/tmp"
  cp "$(command -v busybox)" "$rootfs/bin/busybox"
  for a in "$@"; do ln -s busybox "$rootfs/bin/$a"; done
  tar -C "$rootfs" -c . | docker import - local/busybox:latest >/dev/null
}
