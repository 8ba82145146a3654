#!/usr/bin/env bash
# Run every cargo-fuzz target for a while (default 60 s each). Needs cargo-fuzz
# (`cargo install cargo-fuzz`); on a stable toolchain RUSTC_BOOTSTRAP=1 enables the sanitizer
# flags cargo-fuzz passes. Crashes land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-60}"
for t in guimux_stream shm_convert session_file ext_proto; do
  echo "== fuzz $t for ${secs}s"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" --fuzz-dir . -- -max_total_time="$secs" 2>&1 | grep -E "^Done|SUMMARY|panicked|crash-" || true
done
