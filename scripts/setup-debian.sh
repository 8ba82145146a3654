#!/usr/bin/env bash
# Install the Debian 12 packages guievict needs to build, test and demo. Idempotent; runs
# `apt-get update` once, then one `apt-get install`. Needs root (or sudo).
set -euo pipefail
PKGS=(
  # build
  pkg-config clang libclang-dev xserver-xorg-dev xcb-proto libxcb-res0-dev libxcb1-dev gcc
  # servers
  xvfb xserver-xorg-core xserver-xorg-video-dummy
  # core X fonts: installed with --no-install-recommends nothing but the server's built-in
  # "fixed" and "cursor" exist; twm's default title/menu fontset is adobe-helvetica-bold-120
  # (75dpi/100dpi), xterm and the x11-apps ask for misc fonts (base)
  xfonts-base xfonts-75dpi xfonts-100dpi
  # real apps and tools used by tests and the demo
  xterm x11-apps x11-utils x11-xserver-utils xdotool imagemagick twm xauth openssh-server
  # checkpointing (CRIU from Debian 13 runs out of a debootstrapped tree) and its test tools
  debootstrap iproute2
  # benchmarks: a plain byte relay as the baseline
  socat
  # toolkit apps for tests/xvfb/tests/e2e_toolkits.rs (Xft fonts, Tk, GTK3, Qt5)
  fonts-dejavu-core tk gtk-3-examples qtbase5-examples
  # e2e_refuse (an idle GLX program), e2e_xfixes (an Xlib program in Python ctypes)
  libgl1-mesa-dev libx11-dev python3 libxfixes3 coreutils
  # e2e_server_safety: gv (with ghostscript), whose windows crash X-Resource on Xvfb 21.1.7
  gv
  # e2e_grabs_dbe: a Motif app living on passive grabs, a GTK app drawing through DBE
  # (Debian ships no xdbedizzy; tests/xvfb/src/bin/dbe-dizzy stands in for it)
  nedit emacs-gtk
  # e2e_firefox (issue 13: an app painting through ShmCreatePixmap pixmaps)
  firefox-esr
  # e2e_chromium (issue 13: a browser and its GPU process moved as one group)
  chromium
  # e2e_gimp (GTK2, MIT-SHM): GIMP 2.10 moved with its docks and icons
  gimp
  # e2e_mpv: a video player with X11 output (refused naming Present; plays on when forced)
  # and with its default GL output
  mpv
  # e2e_glx: GL programs with direct rendering (GTK 4 makes a GLX context; an SDL2 fixture)
  gtk-4-examples libsdl2-dev
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PKGS[@]} Debian packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
