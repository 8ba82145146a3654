#!/usr/bin/env bash
# Prove that the README's two commands work on a fresh Debian 12 machine: debootstrap a clean
# bookworm tree, clone this repository (its committed HEAD) into it, and run `scripts/demo.sh`
# and `scripts/test.sh` inside it (chroot with /proc, /sys, /dev, /dev/shm of its own), with
# CI=true so that a skipped test is a failure. Nothing of the host's installed packages is
# visible in the tree; only the machine's Rust toolchain is lent to it (a fresh machine of this
# kind has one, installed by rustup, and no other can be fetched), read-only.
#
# Usage: scripts/fresh-machine.sh [--keep-base] [--only demo|test] [--dir DIR]
#   --keep-base  reuse the debootstrapped base tree of an earlier run (the run itself still
#                starts from a pristine copy of it; default: debootstrap anew)
#   --only X     run only the demo or only the tests
#   --dir DIR    where the trees live (default /var/tmp/guievict-fresh)
# Logs: <dir>/demo.log, <dir>/test.log. Exit status: 0 when every command run passed.
# Needs root (debootstrap, chroot, mounts) and the network to the host's own Debian mirror
# (read from its apt configuration) and crates.io. About 30-40 minutes on 2 cores.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
keep_base=0
only=""
dir=/var/tmp/guievict-fresh
while [ $# -gt 0 ]; do
  case "$1" in
    --keep-base) keep_base=1 ;;
    --only) only="$2"; shift ;;
    --dir) dir="$2"; shift ;;
    *) echo "usage: $0 [--keep-base] [--only demo|test] [--dir DIR]" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || { echo "fresh-machine: needs root (debootstrap, chroot, mounts)" >&2; exit 1; }
# shellcheck source=scripts/apt-mirror.sh
. "$here/apt-mirror.sh"
mirror="$(host_mirror | head -n 1)"
[ -n "$mirror" ] || { echo "fresh-machine: no Debian mirror in the host's apt configuration" >&2; exit 1; }
toolchain="$(dirname "$(dirname "$(rustup which cargo 2>/dev/null || command -v cargo)")")"
[ -x "$toolchain/bin/cargo" ] && [ -x "$toolchain/bin/cargo-clippy" ] && [ -x "$toolchain/bin/rustfmt" ] ||
  { echo "fresh-machine: no complete Rust toolchain (cargo, clippy, rustfmt) found at $toolchain" >&2; exit 1; }
command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap

base="$dir/base"
run="$dir/run"
mkdir -p "$dir"
log() { echo "fresh-machine: $*" >&2; }

# What a new machine of this kind has besides Debian's minimal base (its description in the
# tool library): git, gcc and make, ca-certificates, and the usual process tools. Everything
# else must come from scripts/setup-debian.sh.
BASE_PKGS=git,ca-certificates,gcc,libc6-dev,make,procps,psmisc,sudo,less
if [ "$keep_base" = 0 ] || [ ! -f "$base/.guievict-base" ]; then
  rm -rf "$base"
  log "debootstrap bookworm (minbase + $BASE_PKGS) into $base"
  debootstrap --variant=minbase --include="$BASE_PKGS" bookworm "$base" "$mirror" > "$dir/debootstrap.log" 2>&1 ||
    { tail -n 20 "$dir/debootstrap.log" >&2; log "debootstrap failed: $dir/debootstrap.log"; exit 1; }
  date -u +%FT%TZ > "$base/.guievict-base"
fi

mounted=()
cleanup() {
  local i
  for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
bind() { mkdir -p "$2"; mount "${@:3}" --bind "$1" "$2"; mounted+=("$2"); }

log "pristine copy of the base into $run"
rm -rf "$run"
cp -a "$base" "$run"
# The host's apt sources and options (the same mirror, nothing else of the host).
rm -f "$run/etc/apt/sources.list"
cp -a /etc/apt/sources.list.d/. "$run/etc/apt/sources.list.d/" 2>/dev/null || true
[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$run/etc/apt/sources.list"
for f in /etc/apt/apt.conf.d/*; do
  grep -qiE 'proxy|Check-Valid-Until|Check-Date' "$f" 2>/dev/null && cp "$f" "$run/etc/apt/apt.conf.d/"
done
cp /etc/resolv.conf "$run/etc/resolv.conf"
cp /etc/hosts "$run/etc/hosts"

mkdir -p "$run/proc" "$run/sys" "$run/dev" "$run/opt/rust"
mount -t proc proc "$run/proc"; mounted+=("$run/proc")
mount -t sysfs sys "$run/sys"; mounted+=("$run/sys")
mount -t tmpfs -o mode=755 dev "$run/dev"; mounted+=("$run/dev")
for n in null zero full random urandom tty; do touch "$run/dev/$n"; bind "/dev/$n" "$run/dev/$n"; done
mkdir -p "$run/dev/pts" "$run/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$run/dev/pts"; mounted+=("$run/dev/pts")
ln -sf pts/ptmx "$run/dev/ptmx"
mount -t tmpfs -o mode=1777 shm "$run/dev/shm"; mounted+=("$run/dev/shm")
mount -t tmpfs -o mode=1777 tmp "$run/tmp"; mounted+=("$run/tmp")
bind "$toolchain" "$run/opt/rust" -o ro

log "clone $(git -C "$repo" rev-parse --short HEAD) into the tree"
git clone -q --no-local "$repo" "$run/root/guievict"

in_tree() {
  chroot "$run" /usr/bin/env -i HOME=/root USER=root LOGNAME=root TERM=dumb CI=true SHELL=/bin/sh \
    PATH=/opt/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash -c "cd /root/guievict && $1"
}
status=0
if [ "$only" != test ]; then
  log "README command 1: scripts/demo.sh (log: $dir/demo.log)"
  if in_tree scripts/demo.sh > "$dir/demo.log" 2>&1; then log "demo passed"; else status=1; log "demo FAILED"; tail -n 30 "$dir/demo.log" >&2; fi
fi
if [ "$only" != demo ]; then
  log "README command 2: scripts/test.sh (log: $dir/test.log)"
  if in_tree scripts/test.sh > "$dir/test.log" 2>&1; then log "tests passed"; else status=1; log "tests FAILED"; fi
  grep -E '^test result:|SKIP|FAILED|panicked' "$dir/test.log" | sort | uniq -c | sort -rn | head -n 20 >&2 || true
fi
exit "$status"
