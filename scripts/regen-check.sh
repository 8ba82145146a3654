#!/bin/sh
# Regenerate guimux's protocol tables from the installed xcb-proto XML into a temporary
# directory and compare them with the checked-in copy (guimux/src/generated). Exits nonzero on
# any difference, so CI fails when the generator, its templates or xcb-proto changed without the
# output being regenerated. To refresh the checked-in copy:
#   cargo run -p guimux-codegen -- --out guimux/src/generated
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cargo run --quiet -p guimux-codegen -- --xml-dir "${XCB_PROTO_DIR:-/usr/share/xcb}" --out "$tmp/generated"
if diff -r "$tmp/generated" guimux/src/generated; then
    echo "regen-check: guimux/src/generated is up to date"
else
    echo "regen-check: guimux/src/generated differs from the generator's output;" >&2
    echo "  run: cargo run -p guimux-codegen -- --out guimux/src/generated" >&2
    exit 1
fi
