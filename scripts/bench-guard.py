#!/usr/bin/env python3
"""What a guard costs (issue 14): a hijacked app with and without `guievict guard` (a hidden
view-only replica on the private headless server).

    scripts/bench-guard.py            # after `cargo build --release --workspace`

Prints Markdown for docs/benchmarks.md:
  1. request rates of the bench client (tests/xvfb/bench/bench_client.c), hijacked, before
     and after `guievict guard` (same run, alternating rounds);
  2. CPU and RSS over 20 s of "normal use": an xterm printing a line every 10 ms, and
     gtk3-widget-factory receiving a Tab every 200 ms; the app alone (hijacked, unguarded),
     then guarded, plus the private Xvfb that holds the guard.
Starts its own Xvfb servers (displays :760-:769, -nolisten tcp) and its own private-server
runtime directory; kills only what it started.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
REL = os.path.join(TARGET, "release")
GV = os.path.join(REL, "guievict")
EXT = os.path.join(REL, "libguievict_xext.so")
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

started = []


def start(argv, env=None, **kw):
    p = subprocess.Popen(argv, env=env, **kw)
    started.append(p)
    return p


def xvfb(n, screen="1600x1200x24"):
    env = dict(os.environ, LD_PRELOAD=EXT)
    p = start(["Xvfb", f":{n}", "-nolisten", "tcp", "-screen", "0", screen],
              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(f"/tmp/.X11-unix/X{n}"):
            time.sleep(0.2)
            return p
        time.sleep(0.05)
    raise SystemExit(f"Xvfb :{n} did not start")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read().rsplit(")", 1)[1].split()
    return int(s[11]) + int(s[12])


def rss_mb(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE / 1e6


def gv(args, env):
    out = subprocess.run([GV] + args, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"guievict {args}: {out.stderr}")
    return out.stdout


def private_pid(rt):
    with open(os.path.join(rt, "guievict", "private-display")) as f:
        return int(f.read().split()[1])


def window_of(display, pid):
    for _ in range(200):
        out = subprocess.run(["xdotool", "search", "--onlyvisible", "--pid", str(pid)],
                             env=dict(os.environ, DISPLAY=display), capture_output=True, text=True)
        ids = out.stdout.split()
        if ids:
            return ids[0]
        time.sleep(0.1)
    raise SystemExit(f"no window of {pid} on {display}")


def measure(pids, secs, during=None):
    """CPU % of one core and RSS (MB) of each pid over `secs`."""
    t0 = [cpu_ticks(p) for p in pids]
    w0 = time.time()
    while time.time() - w0 < secs:
        if during:
            during()
        else:
            time.sleep(0.2)
    dt = time.time() - w0
    return [(100.0 * (cpu_ticks(p) - t) / TICK / dt, rss_mb(p)) for p, t in zip(pids, t0)]


def bench_client(env, rt):
    """Two bench clients at once, both hijacked, one guarded; rounds alternate between them so
    that both see the same machine load."""
    src = os.path.join(ROOT, "tests/xvfb/bench/bench_client.c")
    exe = os.path.join(rt, "bench_client")
    subprocess.run(["cc", "-O2", src, "-lxcb", "-o", exe], check=True)

    def client(x):
        p = start([exe, str(x), "0"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                  text=True)
        line = p.stdout.readline()
        assert line.startswith("READY"), line
        gv(["hijack", "--no-guard", str(p.pid)], env)
        return p

    def run(p, test, ms=1000):
        p.stdin.write(f"measure {test} {ms}\n")
        p.stdin.flush()
        r = p.stdout.readline().split()
        assert r[0] == "RESULT", r
        return float(r[2])

    plain, guarded = client(0), client(200)
    gv(["guard", "--pid", str(guarded.pid)], env)
    print("| bench client test | hijacked (median/s) | hijacked + guard (median/s) | ratio |")
    print("|---|---|---|---|")
    for test in ["pointer", "putimage", "rect"]:
        a, b = [], []
        for _ in range(5):
            a.append(run(plain, test))
            b.append(run(guarded, test))
        ma, mb = sorted(a)[2], sorted(b)[2]
        print(f"| {test} | {ma:,.0f} | {mb:,.0f} | {mb / ma:.2f}× |")
    for p in (plain, guarded):
        p.stdin.write("quit\n")
        p.stdin.flush()
        p.wait(timeout=10)
    print()


def app_cost(name, argv, env, rt, secs, during_fn=None):
    p = start(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    win = window_of(env["DISPLAY"], p.pid)
    time.sleep(3)
    gv(["hijack", "--no-guard", str(p.pid)], env)
    during = (lambda: during_fn(env, win)) if during_fn else None
    (a_cpu, a_rss), = measure([p.pid], secs, during)
    gv(["guard", "--pid", str(p.pid)], env)
    time.sleep(1)
    x = private_pid(rt)
    (g_cpu, g_rss), (x_cpu, x_rss) = measure([p.pid, x], secs, during)
    print(f"| {name} | {a_cpu:.1f} % / {a_rss:.1f} MB | {g_cpu:.1f} % / {g_rss:.1f} MB "
          f"(+{g_rss - a_rss:.1f} MB) | {x_cpu:.1f} % / {x_rss:.1f} MB |")
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=10)


def tab(env, win):
    subprocess.run(["xdotool", "mousemove", "--window", win, "100", "100", "key", "Tab"], env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.2)


def main():
    rt = tempfile.mkdtemp(prefix="guievict-bench-guard-")
    os.chmod(rt, 0o700)
    env = dict(os.environ, DISPLAY=":760", XDG_RUNTIME_DIR=rt, SHELL="/bin/sh",
               GTK_THEME="Adwaita", NO_AT_BRIDGE="1")
    env.pop("LD_PRELOAD", None)
    try:
        xvfb(760)
        print(f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with "
              f"`scripts/bench-guard.py` ({os.cpu_count()} CPUs).\n")
        bench_client(env, rt)
        print("| app, 20 s of use | hijacked: app CPU / RSS | guarded: app CPU / RSS | "
              "private Xvfb CPU / RSS (shared by the user's apps) |")
        print("|---|---|---|---|")
        app_cost("xterm printing a line every 10 ms",
                 ["xterm", "-geometry", "80x24+0+0", "-e", "sh", "-c",
                  "i=0; while :; do i=$((i+1)); echo line $i; sleep 0.01; done"],
                 env, rt, 20)
        if shutil.which("gtk3-widget-factory"):
            app_cost("gtk3-widget-factory, Tab every 200 ms", ["gtk3-widget-factory"], env, rt,
                     20, tab)
        print()
    finally:
        for p in reversed(started):
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(rt, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
