#!/bin/sh
# pvdisk-hook: pvdisk's OCI and LXC hooks on the fast path. Runtimes run a hook at every
# container start; this POSIX sh client hands the work to a running `pvdisk serve` over its
# socket with curl (~10 ms, where starting Node alone takes ~70), and does it in-process
# with the hook programs beside it when no daemon answers (no socket, no curl, an old daemon).
#   pvdisk-hook [--socket SOCKET] oci [--stage createRuntime|prestart|poststop]   (OCI state on stdin)
#   pvdisk-hook [--socket SOCKET] lxc up|down APP --state DIR [--root DIR] [--revision REV]
# SOCKET defaults to PVDISK_SOCKET, else /run/docker/plugins/pvdisk.sock. The protocol is
# described in plugin/cli/hook-service.ts. Keep this file's name: the daemon checks that
# its client (pid $$) runs a program named pvdisk-hook, i.e. that they share a pid namespace.
set -u
sock=${PVDISK_SOCKET:-/run/docker/plugins/pvdisk.sock}
if [ "${1-}" = --socket ]; then
  [ $# -ge 2 ] || { echo 'pvdisk-hook: --socket needs a value' >&2; exit 2; }
  sock=$2
  shift 2
fi
case ${1-} in
  oci|lxc) kind=$1; shift ;;
  -h|--help) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
  *) echo "pvdisk-hook: first argument: oci or lxc, not '${1-}'" >&2
     echo '  pvdisk-hook [--socket SOCKET] oci --stage STAGE | pvdisk-hook [--socket SOCKET] lxc up|down APP --state DIR' >&2
     exit 2 ;;
esac
input=

in_process() {
  self=$(readlink -f -- "$0") || self=$0
  program=${self%/*}/pvdisk-$kind-hook.cjs
  node=${PVDISK_NODE:-$(command -v node || echo /usr/bin/node)}
  if [ "$kind" = oci ]; then
    printf '%s' "$input" | "$node" "$program" "$@"
  else
    "$node" "$program" "$@"
  fi
  exit $?
}

for a in "$@"; do
  case $a in -h|--help) in_process "$@" ;; esac # the hook programs answer it
done
if [ "$kind" = oci ]; then input=$(cat); fi # the OCI state: kept for the in-process path
if [ -S "$sock" ] && command -v curl >/dev/null 2>&1; then
  nl='
'
  out=$({
    printf '%s\0' pvdisk-hook/1 "$$" "${PWD:-/}" "$kind" "$#" "$@" 2 "LXC_NAME=${LXC_NAME-}" "PVDISK_REVISION=${PVDISK_REVISION-}"
    printf '%s' "$input"
  } | curl -s --unix-socket "$sock" -H 'Content-Type: application/octet-stream' --data-binary @- -w "$nl%{http_code}" http://pvdisk/Pvdisk.Hook)
  if [ $? -eq 0 ]; then
    code=${out##*"$nl"}
    text=${out%"$nl"*}
    text=${text%"$nl"} # the reply's own last newline; printf adds one
    case $code in
      200) [ -z "$text" ] || printf '%s\n' "$text"; exit 0 ;;
      400) printf '%s\n' "$text" >&2; exit 2 ;;
      500) printf '%s\n' "$text" >&2; exit 1 ;;
    esac
  fi
  # no answer, or not one this client knows (an older daemon, another pid namespace): in-process
fi
in_process "$@"
