#!/usr/bin/env bash
# The whole test suite: formatting, lints, generated-table freshness, release build, then every
# unit and integration test (real Xvfb servers, real X apps). Fails on the first failing step;
# with CI=true a skipped test is a failure too.
set -euo pipefail
cd "$(dirname "$0")/.."
"$(dirname "$0")/setup-debian.sh"
export CARGO_TERM_COLOR=never
echo "== cargo fmt --check"; cargo fmt --all --check
echo "== cargo clippy"; cargo clippy --workspace --all-targets --release -- -D warnings
if [ -x scripts/regen-check.sh ]; then echo "== generated tables are fresh"; scripts/regen-check.sh; fi
echo "== build"; cargo build --release --workspace
skipped="${CARGO_TARGET_DIR:-target}/test-artifacts/skipped.txt"
rm -f "$skipped"
echo "== tests"; cargo test --release --workspace --no-fail-fast -- --test-threads="${TEST_THREADS:-2}"
if [ -s "$skipped" ]; then
  echo "== SKIPPED tests (each with its reason):"; cat "$skipped"
  # Under CI a skip is a failure: CI's machine must be able to run every test.
  if [ "${CI:-}" = true ]; then echo "== FAILED: tests were skipped under CI=true"; exit 1; fi
fi
echo "== all tests passed"
