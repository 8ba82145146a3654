#!/usr/bin/env bash
# Run CRIU 4.x from the trixie tree built by scripts/criu-chroot.sh, on the HOST's file system:
# the tree's dynamic loader loads the tree's criu binary and libraries (glibc 2.41 etc.), while
# every path CRIU opens (/proc, the dumped process's executables and libraries, the image
# directory) is the host's. No chroot and no mounts are needed, so any host process can be
# dumped and restored, and nothing stays mounted when the command ends.
#
# Usage: scripts/criu-wrapper.sh <criu arguments…>    (e.g. `guievict checkpoint --criu
# scripts/criu-wrapper.sh …`). Builds the tree on first use (root, network, ~1 min).
# GUIEVICT_CRIU_ROOT overrides the tree's location (see scripts/criu-chroot.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="${GUIEVICT_CRIU_ROOT:-}"
if [ -z "$root" ] || [ ! -f "$root/.guievict-ready" ]; then
  root="$("$here/criu-chroot.sh" --quiet)"
fi
loader="$root/lib64/ld-linux-x86-64.so.2"
criu="$root/usr/sbin/criu"
if [ ! -x "$loader" ] || [ ! -x "$criu" ]; then
  echo "criu-wrapper: $root has no $criu or loader; remove $root and run scripts/criu-chroot.sh" >&2
  exit 1
fi
libs="$root/lib/x86_64-linux-gnu:$root/usr/lib/x86_64-linux-gnu"
exec "$loader" --library-path "$libs" --argv0 criu "$criu" "$@"
