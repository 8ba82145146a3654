#!/usr/bin/env bash
# Build the Debian package of guievict with nothing but dpkg-deb:
#   scripts/build-deb.sh [--no-build] [OUTPUT.deb]
# (default output: $CARGO_TARGET_DIR/debian/guievict_<version>_<arch>.deb). --no-build packages
# the release artifacts already in the target directory.
#
# Layout (the binary finds its libraries relative to itself, so an unpacked tree works too):
#   /usr/bin/guievict
#   /usr/lib/<multiarch>/guievict/libguievict_hijack.so   injected into applications
#   /usr/lib/<multiarch>/guievict/libguievict_xext.so     LD_PRELOAD into Xvfb/Xephyr
#   /usr/lib/xorg/modules/extensions/libguievict.so       the same file as an Xorg module
#   /usr/share/man/man1/guievict*.1.gz                     from the clap definitions
#   bash, zsh and fish completions                         from the clap definitions
set -euo pipefail
cd "$(dirname "$0")/.."
build=1
if [ "${1:-}" = "--no-build" ]; then build=0; shift; fi
target="${CARGO_TARGET_DIR:-target}"
rel="$target/release"
if [ "$build" = 1 ]; then
  cargo build --release -p guievict -p guievict-hijack -p guievict-xext
fi
for f in guievict libguievict_hijack.so libguievict_xext.so; do
  [ -s "$rel/$f" ] || { echo "build-deb: $rel/$f missing (build without --no-build)" >&2; exit 1; }
done

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")
out="${1:-$target/debian/guievict_${version}_${arch}.deb}"
mkdir -p "$(dirname "$out")"
stage=$(mktemp -d "${TMPDIR:-/tmp}/guievict-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"

install -d "$stage/DEBIAN" "$stage/usr/bin" "$stage/usr/lib/$multiarch/guievict" \
  "$stage/usr/lib/xorg/modules/extensions" "$stage/usr/share/man/man1" \
  "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
  "$stage/usr/share/fish/vendor_completions.d" "$stage/usr/share/doc/guievict" \
  "$stage/usr/lib/systemd/user"
install -m 0755 "$rel/guievict" "$stage/usr/bin/guievict"
install -m 0644 "$rel/libguievict_hijack.so" "$rel/libguievict_xext.so" "$stage/usr/lib/$multiarch/guievict/"
# Release builds carry line tables (debug = 1): not needed on a user's machine.
if command -v strip >/dev/null; then
  strip --strip-debug "$stage/usr/bin/guievict" "$stage/usr/lib/$multiarch/guievict/"*.so
fi
ln -s "../../../$multiarch/guievict/libguievict_xext.so" \
  "$stage/usr/lib/xorg/modules/extensions/libguievict.so"

# Man pages and completions come from the binary being packaged (hidden `generate` command).
"$stage/usr/bin/guievict" generate man "$stage/usr/share/man/man1"
gzip -9n "$stage/usr/share/man/man1/"*.1
"$stage/usr/bin/guievict" generate completions bash "$stage/usr/share/bash-completion/completions" 2>/dev/null
mv "$stage/usr/share/bash-completion/completions/guievict.bash" "$stage/usr/share/bash-completion/completions/guievict"
"$stage/usr/bin/guievict" generate completions zsh "$stage/usr/share/zsh/vendor-completions" 2>/dev/null
"$stage/usr/bin/guievict" generate completions fish "$stage/usr/share/fish/vendor_completions.d" 2>/dev/null

install -m 0644 packaging/systemd/guievict-protect@.service "$stage/usr/lib/systemd/user/"
install -m 0644 README.md "$stage/usr/share/doc/guievict/README.md"
cat > "$stage/usr/share/doc/guievict/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: guievict

Files: *
License: MIT or Apache-2.0
EOF

size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<EOF
Package: guievict
Version: $version
Architecture: $arch
Maintainer: guievict developers <guievict@localhost>
Installed-Size: $size
Depends: libc6 (>= 2.34), libgcc-s1
Recommends: xvfb | xserver-xorg-core
Suggests: criu
Section: x11
Priority: optional
Description: move the GUI of running X11 applications between displays
 guievict takes the GUI of an already-running, unmodified X11 application off
 one display and puts it on another: detach, re-attach, move, replicate for
 screen sharing, and checkpoint with CRIU. It injects a library into the
 application through ptrace; an X server extension (GUIEVICT, for Xvfb by
 LD_PRELOAD or as an Xorg module) makes captures exact.
EOF
dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
echo "$out"
