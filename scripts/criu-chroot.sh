#!/usr/bin/env bash
# Build (once, cached) a Debian 13 "trixie" tree that holds CRIU 4.x, and print its path.
#
# Why: Debian 12's criu 3.17 fails `criu check` on kernels that have a [vvar_vclock] mapping
# ("vdso: Unexpected rt vDSO area bounds"); trixie's 4.1.1 works but needs glibc >= 2.38, so it
# cannot be installed on the Debian 12 host. scripts/criu-wrapper.sh runs that CRIU with the
# tree's own dynamic loader and libraries against the HOST's file system (no chroot, no mounts),
# so it can checkpoint any host process.
#
# Usage: scripts/criu-chroot.sh [--check] [--quiet]
#   prints the tree's path on stdout; --check also runs `criu check` through the wrapper.
# Environment:
#   GUIEVICT_CRIU_ROOT   where the tree lives (default /var/cache/guievict-criu/trixie when
#                        root, else <repo>/target/criu-chroot)
#   GUIEVICT_CRIU_MIRROR Debian mirror (default: the first main-archive URI of the host's own
#                        apt configuration, /etc/apt/sources.list{,.d/*.list,.d/*.sources})
# Exit codes: 0 ready; 77 cannot be built here (not root, no debootstrap, no network) — the
# message on stderr says why; other codes are real failures.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
check=0
quiet=0
for a in "$@"; do
  case "$a" in
    --check) check=1 ;;
    --quiet) quiet=1 ;;
    *) echo "usage: $0 [--check] [--quiet]" >&2; exit 2 ;;
  esac
done
log() { [ "$quiet" = 1 ] || echo "criu-chroot: $*" >&2; }

if [ -n "${GUIEVICT_CRIU_ROOT:-}" ]; then
  root="$GUIEVICT_CRIU_ROOT"
elif [ "$(id -u)" -eq 0 ]; then
  root=/var/cache/guievict-criu/trixie
else
  root="$repo/target/criu-chroot"
fi
# shellcheck source=scripts/apt-mirror.sh
. "$here/apt-mirror.sh"
mirror="${GUIEVICT_CRIU_MIRROR:-$(host_mirror | head -n 1)}"
if [ -z "$mirror" ]; then
  echo "criu-chroot: no Debian mirror found in the host's apt configuration; set GUIEVICT_CRIU_MIRROR" >&2
  exit 77
fi
stamp="$root/.guievict-ready"

if [ ! -f "$stamp" ] && [ "$(id -u)" -eq 0 ]; then
  # Concurrent callers (tests run in parallel) wait for one build.
  mkdir -p "$(dirname "$root")"
  exec 9>"$(dirname "$root")/.build.lock"
  flock 9
fi
if [ ! -f "$stamp" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "criu-chroot: building the trixie tree needs root (debootstrap); run as root once" >&2
    exit 77
  fi
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        debootstrap >&2; then
      echo "criu-chroot: debootstrap is not installed and apt-get could not install it" >&2
      exit 77
    fi
  fi
  # A half-built tree from an interrupted run is thrown away.
  rm -rf "$root.tmp"
  mkdir -p "$(dirname "$root")"
  log "debootstrap trixie into $root (about a minute, ~150 MB, needs $mirror)"
  t0=$(date +%s)
  if ! debootstrap --variant=minbase --include=criu trixie "$root.tmp" "$mirror" \
      > "$(dirname "$root")/debootstrap.log" 2>&1; then
    tail -n 20 "$(dirname "$root")/debootstrap.log" >&2
    if ! getent hosts "$(echo "$mirror" | sed -E 's#^[a-z]+://([^/:]+).*#\1#')" >/dev/null; then
      echo "criu-chroot: cannot resolve the mirror $mirror (no network?)" >&2
      exit 77
    fi
    echo "criu-chroot: debootstrap failed; full log: $(dirname "$root")/debootstrap.log" >&2
    exit 1
  fi
  rm -rf "$root.tmp/var/cache/apt/archives/"*.deb "$root.tmp/var/lib/apt/lists/"* || true
  rm -rf "$root"
  mv "$root.tmp" "$root"
  date -u +%FT%TZ > "$stamp"
  log "built in $(( $(date +%s) - t0 )) s: $(du -sh "$root" | cut -f1)"
fi
if [ "$check" = 1 ]; then
  GUIEVICT_CRIU_ROOT="$root" "$here/criu-wrapper.sh" --version >&2
  GUIEVICT_CRIU_ROOT="$root" "$here/criu-wrapper.sh" check >&2
fi
echo "$root"
