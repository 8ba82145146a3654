//! `guievict protect --display D` (issue 19): every X client of a display hijacked — those
//! already there within one pass, those that connect later within a poll — a second `protect`
//! finds the running watcher, `--status` lists what is protected, a protected app moves, and
//! the watcher ends with `--stop` or by itself when the display's server dies.
use std::process::Command;
use std::time::{Duration, Instant};
use xvfb_harness::*;

/// The tests of this file one at a time: `attach --all` takes every detached app of the user,
/// and another test's held app must not be among them.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// PIDs of the display's clients that `guievict list --display` shows as hijacked.
fn hijacked_on(display: &str) -> Vec<u64> {
    guievict_json(&["list", "--display", display])
        .map(|v| {
            v["clients"]
                .as_array()
                .map(|cs| {
                    cs.iter()
                        .filter(|c| c["hijacked"] == true)
                        .filter_map(|c| c["pid"].as_u64())
                        .collect()
                })
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

fn pids(v: &serde_json::Value, list: &str) -> Vec<u64> {
    v[list]
        .as_array()
        .map(|es| es.iter().filter_map(|e| e["pid"].as_u64()).collect())
        .unwrap_or_default()
}

fn alive(pid: u64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn protect_a_display_then_newcomers_then_stop() {
    let _one_at_a_time = serial();
    with_timeout(120, || {
        let mut a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let xterm = App::spawn(&a.display, &["xterm", "-geometry", "60x12+0+0", "-e", "sh"])
            .expect("xterm");
        let xlogo =
            App::spawn(&a.display, &["xlogo", "-geometry", "120x120+500+10"]).expect("xlogo");

        let t = Instant::now();
        // Polling once a minute: only the extension's client events (protocol 1.6) can make
        // the newcomer below be noticed within the test's wait.
        let v = guievict_json(&["protect", "--display", &a.display, "--interval-ms", "60000"])
            .expect("protect");
        let started = t.elapsed();
        assert_eq!(v["notice"].as_str(), Some("events"), "{v}");
        eprintln!("protect with 2 apps returned in {started:?}: {v}");
        let watcher = v["daemon_pid"].as_u64().expect("daemon_pid");
        let got = pids(&v, "protected");
        for app in [&xterm, &xlogo] {
            assert!(
                got.contains(&u64::from(app.pid)),
                "pid {} not protected: {v}",
                app.pid
            );
        }
        assert!(pids(&v, "unprotected").is_empty(), "{v}");
        assert!(alive(watcher), "the watcher is not running");
        assert!(
            started < Duration::from_secs(10),
            "protect took {started:?} to return"
        );

        // A client that connects later is protected by the running watcher.
        let xclock = App::spawn(
            &a.display,
            &["xclock", "-geometry", "120x120+300+10", "-update", "3600"],
        )
        .expect("xclock");
        let t = Instant::now();
        wait_until("the newcomer is hijacked", Duration::from_secs(15), || {
            hijacked_on(&a.display).contains(&u64::from(xclock.pid))
        })
        .expect("newcomer protected");
        eprintln!(
            "newcomer protected {:?} after its window appeared",
            t.elapsed()
        );
        // The watcher writes its state once its pass is done.
        wait_until(
            "--status lists the newcomer",
            Duration::from_secs(10),
            || {
                guievict_json(&["protect", "--status", "--display", &a.display])
                    .is_ok_and(|st| pids(&st, "protected").contains(&u64::from(xclock.pid)))
            },
        )
        .expect("status lists the newcomer");

        // A second protect finds the watcher instead of starting another.
        let out = Command::new(guievict_bin())
            .args(["protect", "--display", &a.display])
            .output()
            .expect("protect again");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(
            err.contains(&format!("already protected by watcher {watcher}")),
            "{err}"
        );

        // What protection is for: the newcomer moves without a manual hijack.
        let before = settled_screenshot(&a.display, xclock.window).expect("xclock on A");
        guievict_json(&["move", "--pid", &xclock.pid.to_string(), &b.display]).expect("move");
        let wb = wait_for_window(&b.display, xclock.pid, Duration::from_secs(10)).expect("on B");
        assert_picture_returns(&before, &b.display, wb, "protected-xclock-on-b");

        // --stop ends the watcher; the apps stay hijacked and alive.
        let v = guievict_json(&["protect", "--stop", "--display", &a.display]).expect("stop");
        assert_eq!(v["stopped"].as_u64(), Some(watcher), "{v}");
        wait_until("the watcher ends", Duration::from_secs(10), || {
            !alive(watcher)
        })
        .expect("watcher gone");
        let out = Command::new(guievict_bin())
            .args(["protect", "--status", "--display", &a.display])
            .output()
            .expect("status");
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("is not being protected"));
        let still = hijacked_on(&a.display);
        assert!(still.contains(&u64::from(xterm.pid)), "{still:?}");

        // A watcher ends by itself with its display's server.
        let v = guievict_json(&["protect", "--display", &a.display]).expect("protect again");
        let watcher = v["daemon_pid"].as_u64().expect("daemon_pid");
        a.kill();
        wait_until(
            "the watcher ends with the server",
            Duration::from_secs(15),
            || !alive(watcher),
        )
        .expect("watcher ends with its server");
    });
}

/// `guievict ARGS --json` with a runtime directory of the test's own (its private server).
fn gv(rt: &std::path::Path, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let out = Command::new(guievict_bin())
        .args(args)
        .arg("--json")
        .env("XDG_RUNTIME_DIR", rt)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "guievict {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[test]
fn protect_guard_keeps_the_desktops_apps_alive_when_its_server_dies() {
    use std::os::unix::fs::PermissionsExt;
    let _one_at_a_time = serial();
    with_timeout(120, || {
        let rt = artifacts_dir().join(format!("protect-rt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&rt);
        std::fs::create_dir_all(&rt).unwrap();
        std::fs::set_permissions(&rt, std::fs::Permissions::from_mode(0o700)).unwrap();
        let rts = rt.to_str().unwrap();
        let mut a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let app = App::spawn_env(
            &a.display,
            &["xterm", "-geometry", "60x12+0+0", "-e", "sh"],
            &[("XDG_RUNTIME_DIR", rts)],
        )
        .expect("xterm");
        let v = gv(&rt, &["protect", "--display", &a.display, "--guard"]).expect("protect");
        assert!(pids(&v, "protected").contains(&u64::from(app.pid)), "{v}");
        assert_eq!(v["guard"], true, "{v}");
        let watcher = v["daemon_pid"].as_u64().expect("daemon_pid");
        let pid = app.pid.to_string();
        let conn0 = || {
            gv(&rt, &["status", "--pid", &pid])
                .map(|s| s["connections"][0].clone())
                .unwrap_or_default()
        };
        assert!(conn0()["guard"].is_string(), "not guarded: {}", conn0());

        // The desktop's server dies: the app is held on the private server, the watcher ends.
        a.kill();
        wait_until("the xterm is held", Duration::from_secs(20), || {
            conn0()["held_on"].is_string()
        })
        .expect("held after the server died");
        assert!(
            alive(u64::from(app.pid)),
            "the protected xterm died with its server"
        );
        wait_until(
            "the watcher ends with its server",
            Duration::from_secs(15),
            || !alive(watcher),
        )
        .expect("watcher gone");

        // And comes back on another display, typing.
        gv(&rt, &["attach", &b.display, "--pid", &pid]).expect("attach to B");
        let wb = wait_for_window(&b.display, app.pid, Duration::from_secs(10)).expect("on B");
        let f = artifacts_dir().join(format!("protect-guard-{}", app.pid));
        xtest_type(
            &b.display,
            Some(wb),
            &format!("echo alive > {}\n", f.display()),
        )
        .unwrap();
        wait_for_file(&f, "alive", Duration::from_secs(10));
    });
}

/// (name, absolute x, y) of each named top-level (or framed) window on `display`, bottom to
/// top, and how many of them are inside a window manager's frame.
fn placed(display: &str, names: &[&str]) -> (Vec<(String, i16, i16)>, usize) {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::ConnectionExt as _;
    let c = connect(display).expect("connect");
    let root = c.setup().roots[0].root;
    let mut out = Vec::new();
    let mut framed = 0;
    for top in c.query_tree(root).unwrap().reply().unwrap().children {
        let mut cands = vec![top];
        if let Ok(t) = c.query_tree(top).expect("query_tree").reply() {
            cands.extend(t.children);
        }
        for w in cands {
            let name = c
                .get_property(
                    false,
                    w,
                    x11rb::protocol::xproto::AtomEnum::WM_NAME,
                    x11rb::protocol::xproto::AtomEnum::STRING,
                    0,
                    64,
                )
                .ok()
                .and_then(|r| r.reply().ok())
                .map(|r| String::from_utf8_lossy(&r.value).into_owned())
                .unwrap_or_default();
            if names.contains(&name.as_str()) {
                let p = c
                    .translate_coordinates(w, root, 0, 0)
                    .unwrap()
                    .reply()
                    .unwrap();
                out.push((name, p.dst_x, p.dst_y));
                framed += usize::from(w != top);
            }
        }
    }
    (out, framed)
}

#[test]
fn move_all_takes_the_desktop_but_its_window_manager_and_keeps_its_layout() {
    let _one_at_a_time = serial();
    with_timeout(120, || {
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let xterm = App::spawn(
            &a.display,
            &[
                "xterm",
                "-geometry",
                "40x8+10+10",
                "-T",
                "d-xterm",
                "-e",
                "sh",
            ],
        )
        .expect("xterm");
        let xlogo = App::spawn(
            &a.display,
            &["xlogo", "-geometry", "100x100+300+50", "-title", "d-xlogo"],
        )
        .expect("xlogo");
        let xclock = App::spawn(
            &a.display,
            &[
                "xclock",
                "-geometry",
                "100x100+320+80",
                "-update",
                "3600",
                "-title",
                "d-xclock",
            ],
        )
        .expect("xclock");
        // The window manager starts last and frames the three (App::spawn waits for a window
        // on the root).
        let wm = spawn_wm(&a.display).expect("twm on A");
        let names = ["d-xterm", "d-xlogo", "d-xclock"];
        wait_until("twm framed the three", Duration::from_secs(15), || {
            placed(&a.display, &names).1 == 3
        })
        .expect("framed");
        let before = placed(&a.display, &names).0;
        guievict_json(&["protect", "--display", &a.display]).expect("protect");

        // The desktop captured: a session per app and a manifest, bottom-most app first.
        let snap = artifacts_dir().join(format!("desktop-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&snap);
        let v = guievict_json(&[
            "snapshot",
            "--all",
            "--display",
            &a.display,
            "--save",
            snap.to_str().unwrap(),
        ])
        .expect("snapshot --all");
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(snap.join("manifest.json")).expect("manifest"))
                .expect("manifest JSON");
        let listed: Vec<u64> = pids(&m, "apps");
        for app in [&xterm, &xlogo, &xclock] {
            assert!(listed.contains(&u64::from(app.pid)), "{m}");
        }
        assert_eq!(
            listed.len(),
            3,
            "the window manager is not an app of the manifest: {m} ({v})"
        );
        for e in m["apps"].as_array().unwrap() {
            let f = snap.join(e["session"].as_str().unwrap());
            let out = Command::new(guievict_bin())
                .args(["show", f.to_str().unwrap()])
                .output()
                .expect("show");
            assert!(
                out.status.success(),
                "{}: {}",
                f.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }

        let t = Instant::now();
        let v = guievict_json(&["move", "--all", &b.display, "--display", &a.display])
            .expect("move --all");
        eprintln!("move --all of 3 apps: {:?}: {v}", t.elapsed());
        assert_eq!(
            v["report"]["processes"].as_array().map(|p| p.len()),
            Some(3),
            "{v}"
        );
        for app in [&xterm, &xlogo, &xclock] {
            wait_for_window(&b.display, app.pid, Duration::from_secs(10)).expect("on B");
            assert!(
                windows_of_pid(&a.display, app.pid).unwrap().is_empty(),
                "pid {} left a window on A",
                app.pid
            );
        }
        // The window manager stayed (and still manages A).
        let on_a = guievict_json(&["list", "--display", &a.display]).expect("list A");
        assert!(
            on_a["clients"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["pid"].as_u64() == Some(u64::from(wm.child.id()))),
            "twm left A: {on_a}"
        );
        // Same places on the screen, same stacking.
        let after = placed(&b.display, &names).0;
        assert_eq!(after, before, "layout changed");
        // And typing works on B.
        let wb = wait_for_window(&b.display, xterm.pid, Duration::from_secs(10)).unwrap();
        let f = artifacts_dir().join(format!("move-all-{}", xterm.pid));
        xtest_type(
            &b.display,
            Some(wb),
            &format!("echo all > {}\n", f.display()),
        )
        .unwrap();
        wait_for_file(&f, "all", Duration::from_secs(10));

        // Back: twm frames them again, at the same places.
        let back_report =
            guievict_json(&["move", "--all", &a.display, "--display", &b.display]).expect("back");
        if let Err(e) = wait_until("twm framed them again", Duration::from_secs(15), || {
            placed(&a.display, &names).1 == 3
        }) {
            panic!(
                "{e:#}: {:?}\nback: {back_report}\n{}",
                placed(&a.display, &names),
                what_is_there(&a.display, &[xterm.pid, xlogo.pid, xclock.pid])
            );
        }
        let back = placed(&a.display, &names).0;
        assert_eq!(
            back.iter().map(|(n, ..)| n.clone()).collect::<Vec<_>>(),
            before.iter().map(|(n, ..)| n.clone()).collect::<Vec<_>>(),
            "stacking changed: {back:?} vs {before:?}"
        );
        // The whole desktop detached, then attached to B, each in one command.
        let v = guievict_json(&["detach", "--all", "--display", &a.display]).expect("detach --all");
        assert_eq!(
            v["report"]["processes"].as_array().map(|p| p.len()),
            Some(3),
            "{v}"
        );
        for app in [&xterm, &xlogo, &xclock] {
            assert!(windows_of_pid(&a.display, app.pid).unwrap().is_empty());
            assert!(
                placed(&a.display, &names).0.is_empty(),
                "a window stayed on A"
            );
        }
        let v = guievict_json(&["attach", "--all", &b.display]).expect("attach --all");
        assert_eq!(
            v["report"]["processes"].as_array().map(|p| p.len()),
            Some(3),
            "{v}"
        );
        for app in [&xterm, &xlogo, &xclock] {
            wait_for_window(&b.display, app.pid, Duration::from_secs(10)).expect("on B again");
        }
        // And the whole desktop of B shown on A as well (view-only replicas).
        let v = guievict_json(&[
            "replicate",
            "--all",
            &a.display,
            "--display",
            &b.display,
            "--view-only",
        ])
        .expect("replicate --all");
        assert_eq!(
            v["report"]["processes"].as_array().map(|p| p.len()),
            Some(3),
            "{v}"
        );
        // A has twm: the replicas' windows come up inside its frames.
        wait_until("the three replicas on A", Duration::from_secs(15), || {
            placed(&a.display, &names).0.len() == 3
        })
        .expect("replicas on A");
        for app in [&xterm, &xlogo, &xclock] {
            assert!(
                !windows_of_pid(&b.display, app.pid).unwrap().is_empty(),
                "left B"
            );
        }
        let _ = guievict_json(&["protect", "--stop", "--display", &a.display]);
        drop(wm);
    });
}

/// A twm configuration that places windows without asking (a window without a position hint
/// would otherwise wait for a click).
const TWMRC: &str = "RandomPlacement\nUsePPosition \"on\"\nNoGrabServer\n";

/// twm with [`TWMRC`] on `display`, once it manages the root window.
fn twm(display: &str, rc: &std::path::Path) -> Background {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::{ConnectionExt as _, EventMask};
    let wm = spawn_background(display, &["twm", "-f", rc.to_str().unwrap()]).expect("twm");
    let c = connect(display).expect("connect");
    let root = c.setup().roots[0].root;
    wait_until("twm manages the root", Duration::from_secs(10), || {
        c.get_window_attributes(root)
            .ok()
            .and_then(|r| r.reply().ok())
            .is_some_and(|a| a.all_event_masks.contains(EventMask::SUBSTRUCTURE_REDIRECT))
    })
    .expect("twm up");
    wm
}

/// For a failure: each of `pids`' connections as `guievict status` sees them, and the window
/// tree of `display`.
fn what_is_there(display: &str, pids: &[u32]) -> String {
    let tree = Command::new("xwininfo")
        .args(["-root", "-tree"])
        .env("DISPLAY", display)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let st: Vec<String> = pids
        .iter()
        .map(|p| {
            guievict_json(&["status", "--pid", &p.to_string()])
                .map(|v| v["connections"].to_string())
                .unwrap_or_else(|e| format!("{e:#}"))
        })
        .collect();
    format!("status: {st:#?}\n{tree}")
}

/// (title, x, y) on the root of every client window (framed or not) of `pids` on `display`,
/// bottom to top, and how many are in a frame. Titles from `_NET_WM_NAME`, else `WM_NAME`.
fn desktop_of(display: &str, pids: &[u32]) -> (Vec<(String, i16, i16)>, usize) {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _};
    let c = connect(display).expect("connect");
    let root = c.setup().roots[0].root;
    let net = c
        .intern_atom(false, b"_NET_WM_NAME")
        .unwrap()
        .reply()
        .unwrap()
        .atom;
    let title = |w: u32| -> String {
        for p in [net, u32::from(AtomEnum::WM_NAME)] {
            if let Some(r) = c
                .get_property(false, w, p, AtomEnum::ANY, 0, 64)
                .ok()
                .and_then(|r| r.reply().ok())
                .filter(|r| !r.value.is_empty())
            {
                return String::from_utf8_lossy(&r.value).into_owned();
            }
        }
        String::new()
    };
    let mut out = Vec::new();
    let mut framed = 0;
    for top in c.query_tree(root).unwrap().reply().unwrap().children {
        let mut cands = vec![top];
        if let Ok(t) = c.query_tree(top).expect("query_tree").reply() {
            cands.extend(t.children);
        }
        for w in cands {
            let owner = window_pid(&c, w).ok().flatten();
            if !owner.is_some_and(|p| pids.contains(&p)) {
                continue;
            }
            // The window manager may destroy a window between the tree and these (framing).
            let Some(a) = c.get_window_attributes(w).ok().and_then(|r| r.reply().ok()) else {
                continue;
            };
            let name = title(w);
            if u32::from(a.map_state) != 2 || name.is_empty() {
                continue;
            }
            let Some(p) = c
                .translate_coordinates(w, root, 0, 0)
                .ok()
                .and_then(|r| r.reply().ok())
            else {
                continue;
            };
            out.push((name, p.dst_x, p.dst_y));
            framed += usize::from(w != top);
        }
    }
    (out, framed)
}

/// `move --all TO --display FROM --json`, which must carry every app exactly (no `--force`:
/// Tk's pictures on pixmaps it already freed carry their pixels since GUIEVICT 1.8).
fn move_all_exact(from: &str, to: &str) -> serde_json::Value {
    let out = Command::new(guievict_bin())
        .args(["move", "--all", to, "--display", from, "--json"])
        .output()
        .expect("guievict move --all");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "move --all {from} → {to}: {err}");
    assert!(
        !err.contains("not carried exactly"),
        "move --all {from} → {to} was not exact: {err}"
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The mapped client window of `pid` on `display`, inside a window manager's frame or not.
fn client_window(display: &str, pid: u32) -> Option<u32> {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::ConnectionExt as _;
    let c = connect(display).ok()?;
    let root = c.setup().roots[0].root;
    for top in c.query_tree(root).ok()?.reply().ok()?.children {
        let mut cands = vec![top];
        if let Ok(t) = c.query_tree(top).ok()?.reply() {
            cands.extend(t.children);
        }
        for w in cands {
            let viewable = c
                .get_window_attributes(w)
                .ok()
                .and_then(|r| r.reply().ok())
                .is_some_and(|a| u32::from(a.map_state) == 2);
            if viewable && window_pid(&c, w).ok().flatten() == Some(pid) {
                return Some(w);
            }
        }
    }
    None
}

/// Positions relative to the first window (a window manager may shift all windows alike).
/// A window without a position hint (gtk3-widget-factory sets none) is placed where the window
/// manager likes (twm's RandomPlacement): only its place in the stacking order is compared.
fn relative(v: &[(String, i16, i16)]) -> Vec<(String, i32, i32)> {
    let unhinted = |n: &str| n == "gtk3-widget-factory";
    let (x0, y0) = v
        .iter()
        .find(|f| !unhinted(&f.0))
        .map_or((0, 0), |f| (i32::from(f.1), i32::from(f.2)));
    v.iter()
        .map(|(n, x, y)| {
            if unhinted(n) {
                (n.clone(), 0, 0)
            } else {
                (n.clone(), i32::from(*x) - x0, i32::from(*y) - y0)
            }
        })
        .collect()
}

/// Issue 19, item 4: ten apps (xterm, Xaw, Xt, Tk, Qt5, GTK3) under twm on A move to B, where
/// another twm frames them, in one `move --all`, keeping their stacking and relative places;
/// the window managers stay; back again the same way. This is the test that found the
/// WM_PROTOCOLS bug: twm on B sent WM_TAKE_FOCUS, whose number on B was WM_DELETE_WINDOW's in
/// the app's numbering (the xterms had interned atoms first on A), and gtk3-widget-factory
/// closed its window and exited.
#[test]
fn ten_mixed_apps_move_between_two_managed_desktops() {
    let _one_at_a_time = serial();
    let qt = "/usr/lib/x86_64-linux-gnu/qt5/examples/widgets/widgets/lineedits/lineedits";
    for need in ["/usr/bin/wish", "/usr/bin/gtk3-widget-factory", qt] {
        if !std::path::Path::new(need).exists() {
            skip(&format!(
                "{need} is not installed (scripts/setup-debian.sh installs it)"
            ));
            return;
        }
    }
    with_timeout(240, || {
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let dir = artifacts_dir().join(format!("ten-apps-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let rc = dir.join("twmrc");
        std::fs::write(&rc, TWMRC).unwrap();
        let tk = dir.join("t.tcl");
        std::fs::write(
            &tk,
            "wm geometry . 200x80+620+400\nwm title . \"ten-tk\"\nlabel .l -text \"Tk\"\npack .l\n",
        )
        .unwrap();
        let wm_b = twm(&b.display, &rc);
        // GTK's big window first, at the bottom: it covers most of the others.
        let specs: Vec<Vec<&str>> = vec![
            vec!["gtk3-widget-factory"],
            vec![
                "xterm",
                "-geometry",
                "40x8+10+10",
                "-T",
                "ten-xterm1",
                "-e",
                "sh",
            ],
            vec![
                "xterm",
                "-geometry",
                "40x8+60+200",
                "-T",
                "ten-xterm2",
                "-e",
                "sh",
            ],
            vec!["xlogo", "-geometry", "90x90+400+20", "-title", "ten-xlogo"],
            vec![
                "xclock",
                "-geometry",
                "90x90+520+20",
                "-update",
                "3600",
                "-title",
                "ten-xclock",
            ],
            vec!["xeyes", "-geometry", "90x60+640+20", "-title", "ten-xeyes"],
            vec!["xcalc", "-geometry", "+760+20", "-title", "ten-xcalc"],
            vec![
                "xmessage",
                "-geometry",
                "+400+400",
                "-title",
                "ten-xmessage",
                "ten apps",
            ],
            vec!["wish", tk.to_str().unwrap()],
            vec![qt, "-geometry", "300x200+10+500"],
        ];
        let mut apps: Vec<App> = specs
            .iter()
            .map(|s| App::spawn(&a.display, s).unwrap_or_else(|e| panic!("{s:?}: {e:#}")))
            .collect();
        let pids: Vec<u32> = apps.iter().map(|a| a.pid).collect();
        let wm_a = twm(&a.display, &rc);
        wait_until("twm framed the ten on A", Duration::from_secs(30), || {
            desktop_of(&a.display, &pids).1 == 10
        })
        .expect("framed on A");
        let before = desktop_of(&a.display, &pids).0;
        eprintln!("on A: {before:?}");
        assert_eq!(before.len(), 10, "{before:?}");
        guievict_json(&["protect", "--display", &a.display]).expect("protect");

        let t = Instant::now();
        let v = move_all_exact(&a.display, &b.display);
        let took = t.elapsed();
        eprintln!("move --all of ten apps A→B: {took:?}");
        std::fs::write(dir.join("move-all.json"), v.to_string()).unwrap();

        eprintln!(
            "moved: {:?} of {pids:?}",
            v["report"]["processes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["pid"].clone())
                .collect::<Vec<_>>()
        );
        assert_eq!(
            v["report"]["processes"].as_array().map(|p| p.len()),
            Some(10),
            "{v}"
        );
        for app in &apps {
            assert!(
                windows_of_pid(&a.display, app.pid).unwrap().is_empty(),
                "left on A"
            );
        }
        if let Err(e) = wait_until("twm framed the ten on B", Duration::from_secs(30), || {
            desktop_of(&b.display, &pids).1 == 10
        }) {
            panic!(
                "{e:#}: {:?}\n{}",
                desktop_of(&b.display, &pids),
                what_is_there(&b.display, &pids)
            );
        }
        // The window manager applies the restacking as it gets to it.
        let _ = wait_until("B's stacking settles", Duration::from_secs(5), || {
            relative(&desktop_of(&b.display, &pids).0) == relative(&before)
        });
        let on_b = desktop_of(&b.display, &pids).0;
        eprintln!("on B: {on_b:?}");
        assert_eq!(
            relative(&on_b),
            relative(&before),
            "layout or stacking changed on B"
        );
        // Both window managers stayed where they were.
        for (wm, d) in [(&wm_a, &a.display), (&wm_b, &b.display)] {
            let l = guievict_json(&["list", "--display", d]).expect("list");
            assert!(
                l["clients"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["pid"].as_u64() == Some(u64::from(wm.child.id()))),
                "a window manager left {d}: {l}"
            );
        }
        // Typing reaches an app on B.
        let wb = client_window(&b.display, apps[1].pid).expect("the xterm's window on B");
        let f = dir.join("typed");
        // The pointer goes in first; twm gives the xterm the focus when it sees it enter.
        xtest_type(&b.display, Some(wb), "").unwrap();
        wait_until("twm focuses the xterm", Duration::from_secs(10), || {
            use x11rb::protocol::xproto::ConnectionExt as _;
            connect(&b.display)
                .ok()
                .and_then(|c| c.get_input_focus().ok()?.reply().ok())
                .is_some_and(|r| r.focus == wb)
        })
        .expect("focus on the xterm");
        xtest_type(&b.display, None, &format!("echo ten > {}\n", f.display())).unwrap();
        wait_for_file(&f, "ten", Duration::from_secs(10));

        // Typing went through the pointer: twm on B may have raised the xterm. What comes back
        // is B's stacking as it is now.
        let on_b = desktop_of(&b.display, &pids).0;
        let t = Instant::now();
        move_all_exact(&b.display, &a.display);
        eprintln!("move --all of ten apps B→A: {:?}", t.elapsed());
        wait_until(
            "twm framed the ten on A again",
            Duration::from_secs(30),
            || desktop_of(&a.display, &pids).1 == 10,
        )
        .expect("framed on A again");
        let _ = wait_until("A's stacking settles", Duration::from_secs(5), || {
            relative(&desktop_of(&a.display, &pids).0) == relative(&on_b)
        });
        let back = desktop_of(&a.display, &pids).0;
        assert_eq!(
            relative(&back),
            relative(&on_b),
            "layout or stacking changed back on A"
        );
        for app in &mut apps {
            assert!(app.alive(), "pid {} died", app.pid);
        }
        drop(wm_a);
        drop(wm_b);
    });
}
