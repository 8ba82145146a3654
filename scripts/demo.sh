#!/usr/bin/env bash
# The main job on its embedded default: two private Xvfb servers, a real xterm moved from the
# first to the second, screenshots before/after written to ./guievict-demo/ (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
cargo build --release --workspace
exec "${CARGO_TARGET_DIR:-target}/release/guievict-demo" "${1:-guievict-demo}"
