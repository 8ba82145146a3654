#!/usr/bin/env bash
# Run guievict's benchmarks and rewrite the results section of docs/benchmarks.md.
#
#   scripts/bench.sh                 # everything (~6–10 minutes on the 2-core dev VM)
#   scripts/bench.sh --only latency  # one part: rates, x11perf, latency, shm (comma-separated)
#   scripts/bench.sh --runs 3 --cycles 3
#
# Builds the release workspace, then runs `guievict-bench` (tests/xvfb/src/bin/guievict-bench.rs),
# which starts its own private Xvfb servers, compares every configuration against the direct
# case in the same run, prints Markdown and writes it between the markers in docs/benchmarks.md
# (other sections of that file are left alone). Needs the Debian packages of
# scripts/setup-debian.sh plus socat (the byte-relay baseline) and a C compiler with libxcb1-dev
# (the benchmark client); not part of the CI test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
scripts/setup-debian.sh
if ! command -v socat >/dev/null; then
  echo "bench: socat not installed (apt-get install socat); the socat rows will say so" >&2
fi
cargo build --release --workspace
OUT="${BENCH_OUT:-docs/benchmarks.md}"
cmd="scripts/bench.sh${*:+ $*}"
exec timeout --signal=TERM --kill-after=10 900 \
  "$CARGO_TARGET_DIR/release/guievict-bench" --write "$OUT" --command "$cmd" "$@"
