#!/bin/bash
# Detach / attach / move latency of GL programs (issue 13; docs/benchmarks.md, "GL programs").
# Two private Xvfb servers with the GUIEVICT extension; per app: hijack (no guard), one warm-up
# move there and back, then 5 cycles of detach, attach to B, move back to A; prints a Markdown
# row per app: median (min–max) wall ms of each command. Needs `cargo build --release
# --workspace`, the GL fixtures' build dependencies (libgl1-mesa-dev, libsdl2-dev), mpv and
# gtk-4-examples (scripts/setup-debian.sh).
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
G="$ROOT/target/release/guievict"
EXT=$("$G" ext-path)
W=$(mktemp -d)
trap 'kill $XA $XB 2>/dev/null; rm -rf "$W"' EXIT
A=:${GL_BENCH_A:-331}
B=:${GL_BENCH_B:-332}
LD_PRELOAD=$EXT Xvfb "$A" -nolisten tcp -screen 0 1280x1024x24 >/dev/null 2>&1 &
XA=$!
LD_PRELOAD=$EXT Xvfb "$B" -nolisten tcp -screen 0 1280x1024x24 >/dev/null 2>&1 &
XB=$!
sleep 1
cc -o "$W/glx_window" "$ROOT/tests/xvfb/tests/glx_window.c" -lGL -lX11
cc -o "$W/glx_sdl_box" "$ROOT/tests/xvfb/tests/glx_sdl_box.c" $(pkg-config --cflags --libs sdl2)

stat() { sort -n | awk '{a[NR]=$1} END {printf "%.1f (%.1f–%.1f)", a[int((NR+1)/2)], a[1], a[NR]}'; }
ms() {
  local t0
  t0=$(date +%s%N)
  "$@" >/dev/null 2>"$W/err" || echo "FAILED: $* $(cat "$W/err")" >&2
  echo $((($(date +%s%N) - t0) / 1000)) | awk '{print $1/1000}'
}
run() {
  local name=$1 P h alive
  shift
  env -u LD_PRELOAD DISPLAY=$A HOME="$W" SDL_AUDIODRIVER=dummy "$@" >/dev/null 2>&1 &
  P=$!
  sleep "${WAIT:-3}"
  h=$(ms "$G" hijack --no-guard $P)
  "$G" move --pid $P "$B" >/dev/null 2>&1
  "$G" move --pid $P "$A" >/dev/null 2>&1
  : >"$W/d"; : >"$W/a"; : >"$W/m"
  for _ in 1 2 3 4 5; do
    ms "$G" detach --pid $P >>"$W/d"
    ms "$G" attach --pid $P "$B" >>"$W/a"
    sleep 1
    ms "$G" move --pid $P "$A" >>"$W/m"
    sleep 1
  done
  kill -0 $P 2>/dev/null && alive=alive || alive=DEAD
  echo "| $name | $(stat <"$W/d") | $(stat <"$W/a") | $(stat <"$W/m") | $h | $alive |"
  kill $P 2>/dev/null
  sleep 0.5
  kill -9 $P 2>/dev/null
}
echo "| app | detach | attach | move | hijack | after 15 operations |"
echo "|---|---|---|---|---|---|"
run "glx_window.c (GLX 1.3)" "$W/glx_window"
run "glx_sdl_box.c (SDL2, OpenGL renderer)" "$W/glx_sdl_box"
WAIT=5 run "gtk4-widget-factory (GTK 4.8)" gtk4-widget-factory
MPV=(mpv --no-config --ao=null --loop=inf --geometry=320x240+0+0 --no-osc --really-quiet
  av://lavfi:testsrc=size=320x240:rate=25)
WAIT=4 run "mpv --vo=gpu --gpu-sw (GLX + Present)" "${MPV[@]}" --vo=gpu --gpu-sw
WAIT=4 run "mpv --vo=x11 (Present)" "${MPV[@]}" --vo=x11
