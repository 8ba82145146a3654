//! Apps outlive their X server (issue 14): a hijacked app *guarded* by guievict (a hidden
//! view-only replica on the user's private headless server) lives on when its server is killed
//! with SIGKILL, held on the private server with its exact state, and `guievict attach` brings
//! it to another server, with what it drew meanwhile and with working input. An interactive
//! replica becomes the primary when the primary's server dies. A connection the server closes
//! while it still answers (KillClient, xkill) still ends the app. The private server goes away
//! when no app uses it.
//!
//! Every test has its own runtime directory (`XDG_RUNTIME_DIR`, passed to the app and to every
//! `guievict` call), hence its own private server. The same with the apps of real toolkits (GTK3,
//! Tk, Qt5, a GL program) is in `survive_toolkits.rs`; the shared helpers in `survive_common`.

mod survive_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use survive_common::*;
use xvfb_harness::*;

#[test]
fn guarded_xterm_outlives_its_server_and_attaches_elsewhere() {
    with_timeout(120, || {
        let rt = runtime_dir("xterm");
        let rts = rt.to_str().expect("utf-8 path");
        let mut a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let go = rt.join("go");
        // The shell prints a line once `go` exists (after A's death), then reads commands.
        let script = format!(
            "while [ ! -e {} ]; do sleep 0.1; done; echo printed-after-death; exec sh",
            go.display()
        );
        let mut app = App::spawn_env(
            &a.display,
            &["xterm", "-geometry", "40x6+0+0", "-e", "sh", "-c", &script],
            &[("XDG_RUNTIME_DIR", rts)],
        )
        .expect("xterm");
        hijack_guarded(&rt, app.pid);
        let c = conn_status(&rt, app.pid);
        assert!(c["guard"].is_string(), "not guarded: {c}");
        let (private, xvfb_pid) = private_server(&rt);

        a.kill();
        wait_status(
            &rt,
            app.pid,
            "held on the private server after A died",
            |c| c["held_on"].as_str() == Some(private.as_str()) && c["display"].is_null(),
        );
        assert!(app.alive(), "xterm died with its X server");
        // Output made while the GUI is held on the private server.
        std::fs::write(&go, "").expect("go");
        std::thread::sleep(Duration::from_millis(800));

        gv(&rt, &["attach", &b.display, "--pid", &app.pid.to_string()]).expect("attach to B");
        let wb =
            wait_for_window(&b.display, app.pid, Duration::from_secs(10)).expect("window on B");
        let shot = stable_shot(&b.display, wb);
        wait_status(&rt, app.pid, "on B, guarded again", |c| {
            c["display"].as_str() == Some(b.display.as_str()) && c["guard"].is_string()
        });

        // Reference: the same output drawn directly on a fresh server.
        let c = Xvfb::start().expect("Xvfb C");
        let reference = App::spawn(
            &c.display,
            &[
                "xterm",
                "-geometry",
                "40x6+0+0",
                "-e",
                "sh",
                "-c",
                "echo printed-after-death; exec sh",
            ],
        )
        .expect("reference xterm");
        let want = stable_shot(&c.display, reference.window);
        assert_same_picture(&want, &shot, "survive-xterm-after-attach");

        // Typing works on B.
        let f = rt.join("typed-on-b");
        xtest_type(
            &b.display,
            Some(wb),
            &format!("echo on-b > {}\n", f.display()),
        )
        .unwrap();
        wait_for_file(&f, "on-b", Duration::from_secs(10));

        // Once no app uses it, the private server goes away (10 s later: it lingers for the
        // next detach).
        drop(app);
        let deadline = Instant::now() + Duration::from_secs(25);
        while pid_alive(xvfb_pid) {
            assert!(
                Instant::now() < deadline,
                "the private server (pid {xvfb_pid}) outlived its last app"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    });
}

#[test]
fn interactive_replica_becomes_primary_when_the_primary_dies() {
    with_timeout(90, || {
        let rt = runtime_dir("replica");
        let rts = rt.to_str().expect("utf-8 path");
        let mut a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let mut app = App::spawn_env(
            &a.display,
            &["xterm", "-geometry", "60x12+0+0", "-e", "sh"],
            &[("XDG_RUNTIME_DIR", rts)],
        )
        .expect("xterm");
        let pid = app.pid.to_string();
        gv(&rt, &["replicate", &b.display, "--pid", &pid]).expect("replicate");
        let wb = wait_for_window(&b.display, app.pid, Duration::from_secs(10)).unwrap();
        a.kill();
        wait_status(&rt, app.pid, "the replica B is the primary", |c| {
            c["display"].as_str() == Some(b.display.as_str())
        });
        assert!(app.alive(), "xterm died with its primary server");
        let f = rt.join("typed-on-b");
        xtest_type(
            &b.display,
            Some(wb),
            &format!("echo on-b > {}\n", f.display()),
        )
        .unwrap();
        wait_for_file(&f, "on-b", Duration::from_secs(10));
        // No private server was involved.
        assert!(!rt.join("guievict/private-display").exists());
    });
}

#[test]
fn kill_client_still_ends_a_guarded_app() {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::ConnectionExt as _;
    with_timeout(60, || {
        let rt = runtime_dir("killclient");
        let rts = rt.to_str().expect("utf-8 path");
        let mut a = Xvfb::start().expect("Xvfb A");
        let mut app = App::spawn_env(
            &a.display,
            &["xterm", "-geometry", "60x12+0+0", "-e", "sh"],
            &[("XDG_RUNTIME_DIR", rts)],
        )
        .expect("xterm");
        hijack_guarded(&rt, app.pid);
        // xkill: the server closes the app's connection and lives on.
        let conn = a.connect().expect("connect");
        conn.kill_client(app.window).expect("KillClient");
        conn.flush().expect("flush");
        let deadline = Instant::now() + Duration::from_secs(15);
        while app.alive() {
            assert!(
                Instant::now() < deadline,
                "the app outlived a KillClient (the user asked it to end)"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(a.is_running(), "A died");
    });
}

/// An Xlib program that does round trips forever: one window, then `XSync` in a loop, the
/// count written to the file `argv[1]` every 20 round trips.
const ROUND_TRIPPER: &str = r#"
import ctypes, os, sys
x11 = ctypes.CDLL("libX11.so.6")
P, UL, I = ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int
x11.XOpenDisplay.restype = P; x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
x11.XDefaultScreen.argtypes = [P]
x11.XRootWindow.restype = UL; x11.XRootWindow.argtypes = [P, I]
x11.XWhitePixel.restype = UL; x11.XWhitePixel.argtypes = [P, I]
x11.XCreateSimpleWindow.restype = UL
x11.XCreateSimpleWindow.argtypes = [P, UL, I, I, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, UL, UL]
x11.XStoreName.argtypes = [P, UL, ctypes.c_char_p]
x11.XMapWindow.argtypes = [P, UL]
x11.XSync.argtypes = [P, I]
dpy = x11.XOpenDisplay(None)
scr = x11.XDefaultScreen(dpy)
win = x11.XCreateSimpleWindow(dpy, x11.XRootWindow(dpy, scr), 0, 0, 120, 60, 0, 0, x11.XWhitePixel(dpy, scr))
x11.XStoreName(dpy, win, b"round-tripper")
x11.XMapWindow(dpy, win)
n = 0
while True:
    x11.XSync(dpy, 0)
    n += 1
    if n % 20 == 0:
        with open(sys.argv[1] + ".tmp", "w") as f:
            f.write(str(n))
        os.replace(sys.argv[1] + ".tmp", sys.argv[1])
"#;

fn count(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[test]
fn detach_private_serves_the_app_from_the_private_server() {
    with_timeout(90, || {
        let rt = runtime_dir("private");
        let rts = rt.to_str().expect("utf-8 path");
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let counter = rt.join("round-trips");
        let app = App::spawn_env(
            &a.display,
            &[
                "python3",
                "-c",
                ROUND_TRIPPER,
                counter.to_str().expect("utf-8"),
            ],
            &[("XDG_RUNTIME_DIR", rts)],
        )
        .expect("round tripper");
        let pid = app.pid.to_string();
        gv(&rt, &["hijack", &pid]).expect("hijack");
        gv(&rt, &["detach", "--private", "--pid", &pid]).expect("detach --private");
        let (private, _) = private_server(&rt);
        let c = conn_status(&rt, app.pid);
        assert_eq!(c["held_on"].as_str(), Some(private.as_str()), "{c}");
        assert!(c["display"].is_null(), "held means detached: {c}");
        assert!(windows_of_pid(&a.display, app.pid).unwrap().is_empty());
        // It keeps making round trips while detached, and nothing piles up.
        std::thread::sleep(Duration::from_secs(1));
        let (n1, m1) = (count(&counter), rss_kb(app.pid));
        std::thread::sleep(Duration::from_secs(4));
        let (n2, m2) = (count(&counter), rss_kb(app.pid));
        assert!(
            n2 > n1 + 100,
            "round trips stalled while detached: {n1} → {n2} in 4 s"
        );
        assert!(
            m2 < m1 + 2048,
            "memory grew while detached: {m1} kB → {m2} kB ({} round trips)",
            n2 - n1
        );
        let c = conn_status(&rt, app.pid);
        assert_eq!(c["queued_to_server"].as_u64(), Some(0), "{c}");
        eprintln!(
            "detached on {private}: {} round trips in 4 s, RSS {m1} → {m2} kB",
            n2 - n1
        );
        // Attach moves it from there; it goes on.
        gv(&rt, &["attach", &b.display, "--pid", &pid]).expect("attach to B");
        wait_for_window(&b.display, app.pid, Duration::from_secs(10)).expect("window on B");
        let n3 = count(&counter);
        let deadline = Instant::now() + Duration::from_secs(10);
        while count(&counter) < n3 + 100 {
            assert!(Instant::now() < deadline, "round trips stalled on B");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            gv(&rt, &["status", "--pid", &pid]).expect("status")["connections"][0]["held_on"]
                .is_null()
        );
    });
}

/// A guarded xterm detached while its source server is killed (SIGKILL at `delays` ms after
/// the detach starts) or stopped (SIGSTOP): the app lives on, held on the private server, and
/// attach brings it to B with typing working.
fn detach_while_the_source_dies(name: &str, stop: bool, delays: &[u64]) {
    for &ms in delays {
        let rt = runtime_dir(&format!("{name}-{ms}"));
        let rts = rt.to_str().expect("utf-8 path");
        let mut a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let mut app = App::spawn_env(
            &a.display,
            &["xterm", "-geometry", "60x12+0+0", "-e", "sh"],
            &[("XDG_RUNTIME_DIR", rts)],
        )
        .expect("xterm");
        hijack_guarded(&rt, app.pid);
        let pid = app.pid.to_string();
        let t = Instant::now();
        let detach = Command::new(guievict_bin())
            .args(["detach", "--pid", &pid, "--json"])
            .env("XDG_RUNTIME_DIR", &rt)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("guievict detach");
        std::thread::sleep(Duration::from_millis(ms));
        if stop {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(a.pid() as i32),
                nix::sys::signal::Signal::SIGSTOP,
            )
            .expect("SIGSTOP");
        } else {
            a.kill();
        }
        let out = detach.wait_with_output().expect("detach");
        let took = t.elapsed();
        wait_status(&rt, app.pid, "held on the private server", |c| {
            c["held_on"].is_string()
        });
        assert!(app.alive(), "{name} {ms} ms: xterm died");
        if stop {
            // Nothing of the detach waits for the stopped source.
            assert!(
                out.status.success(),
                "{name} {ms} ms: detach failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(took < Duration::from_secs(4), "detach took {took:?}");
        }
        gv(&rt, &["attach", &b.display, "--pid", &pid]).expect("attach to B");
        let wb = wait_for_window(&b.display, app.pid, Duration::from_secs(10)).unwrap();
        let f = rt.join("typed-on-b");
        xtest_type(
            &b.display,
            Some(wb),
            &format!("echo on-b > {}\n", f.display()),
        )
        .unwrap();
        wait_for_file(&f, "on-b", Duration::from_secs(10));
        eprintln!(
            "{name} {ms} ms: detach exit {:?} in {took:?} {}, attached and typing on B",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        if stop {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(a.pid() as i32),
                nix::sys::signal::Signal::SIGCONT,
            );
        }
    }
}

#[test]
fn source_killed_during_detach_of_a_guarded_xterm() {
    with_timeout(240, || {
        detach_while_the_source_dies("kill", false, &[0, 2, 5, 10, 20, 40]);
    });
}

#[test]
fn source_stopped_during_detach_of_a_guarded_xterm() {
    with_timeout(120, || {
        detach_while_the_source_dies("stop", true, &[0, 5, 20]);
    });
}

#[test]
fn a_killed_private_server_is_replaced_by_the_next_guard() {
    with_timeout(90, || {
        let rt = runtime_dir("guard-again");
        let rts = rt.to_str().expect("utf-8 path");
        let mut a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let mut app = App::spawn_env(
            &a.display,
            &["xterm", "-geometry", "60x12+0+0", "-e", "sh"],
            &[("XDG_RUNTIME_DIR", rts)],
        )
        .expect("xterm");
        hijack_guarded(&rt, app.pid);
        let (_, first) = private_server(&rt);
        // The private server dies: the app runs on, on A, no longer guarded.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(first as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill the private server");
        wait_status(&rt, app.pid, "the dead guard forgotten", |c| {
            c["guard"].is_null() && c["display"].as_str() == Some(a.display.as_str())
        });
        assert!(app.alive(), "the guard's death ended the app");
        // Guarded again: a new private server.
        gv(&rt, &["guard", "--pid", &app.pid.to_string()]).expect("guard again");
        let (_, second) = private_server(&rt);
        assert_ne!(first, second, "the dead private server was reused");
        a.kill();
        wait_status(&rt, app.pid, "held after A died", |c| {
            c["held_on"].is_string()
        });
        gv(&rt, &["attach", &b.display, "--pid", &app.pid.to_string()]).expect("attach");
        let wb = wait_for_window(&b.display, app.pid, Duration::from_secs(10)).unwrap();
        let f = rt.join("typed-on-b");
        xtest_type(
            &b.display,
            Some(wb),
            &format!("echo on-b > {}\n", f.display()),
        )
        .unwrap();
        wait_for_file(&f, "on-b", Duration::from_secs(10));
    });
}

#[test]
fn round_trips_in_flight_when_the_server_dies_are_answered() {
    with_timeout(90, || {
        let rt = runtime_dir("in-flight");
        let rts = rt.to_str().expect("utf-8 path");
        let mut a = Xvfb::start().expect("Xvfb A");
        let counter = rt.join("round-trips");
        let mut app = App::spawn_env(
            &a.display,
            &[
                "python3",
                "-c",
                ROUND_TRIPPER,
                counter.to_str().expect("utf-8"),
            ],
            &[("XDG_RUNTIME_DIR", rts)],
        )
        .expect("round tripper");
        hijack_guarded(&rt, app.pid);
        // Killed while the program is in the middle of its XSync loop: the round trip in
        // flight is answered by the guard, and the loop goes on there.
        let n0 = count(&counter);
        let deadline = Instant::now() + Duration::from_secs(10);
        while count(&counter) < n0 + 100 {
            assert!(Instant::now() < deadline, "no round trips before the kill");
            std::thread::sleep(Duration::from_millis(20));
        }
        a.kill();
        wait_status(&rt, app.pid, "held after A died", |c| {
            c["held_on"].is_string()
        });
        let n1 = count(&counter);
        let deadline = Instant::now() + Duration::from_secs(10);
        while count(&counter) < n1 + 200 {
            assert!(
                Instant::now() < deadline,
                "round trips stalled after the server died ({} → {})",
                n1,
                count(&counter)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(app.alive());
    });
}

/// A plain `detach` (issue 14, item 2) holds the GUI on the private server; `--in-memory` keeps
/// it in memory; without an Xvfb to start, a plain detach still succeeds, in memory, and says
/// so, while `--private` fails and leaves the app where it was.
#[test]
fn plain_detach_holds_on_the_private_server_unless_in_memory() {
    with_timeout(90, || {
        let rt = runtime_dir("plain");
        let rts = rt.to_str().expect("utf-8 path");
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let app = App::spawn_env(
            &a.display,
            &["xterm", "-geometry", "60x10+0+0"],
            &[("XDG_RUNTIME_DIR", rts)],
        )
        .expect("xterm");
        let pid = app.pid.to_string();
        wait_for_window(&a.display, app.pid, Duration::from_secs(10)).expect("window");
        // Unguarded: the plain detach itself moves the GUI to the private server.
        gv(&rt, &["hijack", "--no-guard", &pid]).expect("hijack");

        gv(&rt, &["detach", "--pid", &pid]).expect("detach");
        let (private, _) = private_server(&rt);
        let c = conn_status(&rt, app.pid);
        assert_eq!(c["held_on"].as_str(), Some(private.as_str()), "{c}");
        assert!(c["display"].is_null(), "held means detached: {c}");
        gv(&rt, &["attach", &b.display, "--pid", &pid]).expect("attach B");
        wait_for_window(&b.display, app.pid, Duration::from_secs(10)).expect("on B");

        gv(&rt, &["detach", "--in-memory", "--pid", &pid]).expect("detach --in-memory");
        let c = conn_status(&rt, app.pid);
        assert!(c["held_on"].is_null() && c["display"].is_null(), "{c}");
        gv(&rt, &["attach", &a.display, "--pid", &pid]).expect("attach A");
        wait_for_window(&a.display, app.pid, Duration::from_secs(10)).expect("on A");

        // No Xvfb to start (a PATH without it, and no private server running: a new runtime
        // directory).
        let rt2 = runtime_dir("plain-noxvfb");
        let empty = rt2.join("bin");
        std::fs::create_dir_all(&empty).expect("empty bin");
        let run = |args: &[&str]| {
            Command::new(guievict_bin())
                .args(args)
                .env("XDG_RUNTIME_DIR", &rt2)
                .env("PATH", &empty)
                .output()
                .expect("guievict")
        };
        // The app's control socket lives in the app's runtime directory: name it by PID,
        // which the CLI finds through /proc whatever its own XDG_RUNTIME_DIR.
        let o = run(&["detach", "--private", "--pid", &pid]);
        assert!(!o.status.success(), "--private without an Xvfb succeeded");
        let c = conn_status(&rt, app.pid);
        assert_eq!(c["display"].as_str(), Some(a.display.as_str()), "{c}");
        let o = run(&["detach", "--pid", &pid]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "plain detach without an Xvfb: {err}");
        assert!(err.contains("held in memory"), "not said: {err}");
        let c = conn_status(&rt, app.pid);
        assert!(c["held_on"].is_null() && c["display"].is_null(), "{c}");
        gv(&rt, &["attach", &a.display, "--pid", &pid]).expect("attach A again");
        wait_for_window(&a.display, app.pid, Duration::from_secs(10)).expect("back on A");
    });
}

/// The private server is found again through the display number and PID in the runtime
/// directory. When it has terminated (`-terminate`, 10 s after its last app left) another X
/// server may take its number while the recorded PID still names an Xvfb (an exiting one, a
/// reused PID): a detach must not take that server for the private one — a GUI held on a
/// stranger's display dies with it (seen in CI: a test's Xvfb took the number, the held
/// xterm died with that test's server). Here the state file names a test's Xvfb C (which
/// accepts anyone) with the PID of another running Xvfb.
#[test]
fn a_display_number_taken_by_another_server_is_not_the_private_server() {
    with_timeout(90, || {
        let a = Xvfb::start().expect("Xvfb A");
        let c = Xvfb::start().expect("Xvfb C");
        let protocol = format!(
            "GUIEVICT {}.{}",
            guievict_ext_proto::MAJOR_VERSION,
            guievict_ext_proto::MINOR_VERSION
        );
        let (rt, app) = hijacked_xterm_with_state_file(
            "impostor",
            &a,
            &format!("{}\n{}\n{protocol}\n", c.display, a.pid()),
        );
        let pid = app.pid.to_string();
        gv(&rt, &["detach", "--pid", &pid]).expect("detach");
        let (private, _) = private_server(&rt);
        assert_ne!(private, c.display, "C was taken for the private server");
        let st = conn_status(&rt, app.pid);
        assert_eq!(st["held_on"].as_str(), Some(private.as_str()), "{st}");
        assert!(windows_of_pid(&c.display, app.pid).unwrap().is_empty());
        // C is an ordinary target.
        gv(&rt, &["attach", &c.display, "--pid", &pid]).expect("attach C");
        wait_for_window(&c.display, app.pid, Duration::from_secs(10)).expect("on C");
    });
}

/// A private server started by another guievict build (its state file names another GUIEVICT
/// protocol, or none: written before the versions were recorded) is not reused: a capture
/// there would ask for flags its extension does not know. Here the state file names a live
/// Xvfb with its own PID and a protocol of the past; the detach starts a private server of
/// its own and the GUI comes back from it.
#[test]
fn a_private_server_of_another_version_is_not_reused() {
    with_timeout(90, || {
        let a = Xvfb::start().expect("Xvfb A");
        let old = Xvfb::start().expect("the old private server");
        let (rt, app) = hijacked_xterm_with_state_file(
            "oldversion",
            &a,
            &format!("{}\n{}\nGUIEVICT 1.7\n", old.display, old.pid()),
        );
        let pid = app.pid.to_string();
        gv(&rt, &["detach", "--pid", &pid]).expect("detach");
        let (private, _) = private_server(&rt);
        assert_ne!(private, old.display, "the old version's server was reused");
        assert!(windows_of_pid(&old.display, app.pid).unwrap().is_empty());
        gv(&rt, &["attach", &a.display, "--pid", &pid]).expect("attach A");
        wait_for_window(&a.display, app.pid, Duration::from_secs(10)).expect("back on A");
    });
}

/// An xterm on `a` hijacked without a guard, with a runtime directory of its own whose
/// private-server state file says `state` (and a cookie nobody checks).
fn hijacked_xterm_with_state_file(name: &str, a: &Xvfb, state: &str) -> (PathBuf, App) {
    let rt = runtime_dir(name);
    let rts = rt.to_str().expect("utf-8 path");
    let app = App::spawn_env(
        &a.display,
        &["xterm", "-geometry", "60x10+0+0"],
        &[("XDG_RUNTIME_DIR", rts)],
    )
    .expect("xterm");
    gv(&rt, &["hijack", "--no-guard", &app.pid.to_string()]).expect("hijack");
    let dir = rt.join("guievict");
    std::fs::create_dir_all(&dir).expect("state dir");
    std::fs::write(dir.join("private-display"), state).expect("state file");
    std::fs::write(dir.join("private-display.cookie"), [7u8; 16]).expect("cookie");
    (rt, app)
}

/// A `guievict` killed while it holds an application of several processes (between the group
/// hold and its release) does not leave the app's requests queued until the hold's deadline
/// (here 40 s): the processes see the holder exit and release at once.
#[test]
fn a_killed_cli_releases_its_group_hold_at_once() {
    with_timeout(90, || {
        let rt = runtime_dir("grouphold");
        let rts = rt.to_str().expect("utf-8 path");
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let (c1, c2) = (rt.join("rt1"), rt.join("rt2"));
        // One application of two X processes: a shell whose children both draw.
        let script = format!(
            "python3 -c \"$0\" '{}' & python3 -c \"$0\" '{}' & wait",
            c1.display(),
            c2.display()
        );
        // (No window of its own to wait for; its children exit with the server.)
        let app = spawn_background(
            &a.display,
            &[
                "env",
                &format!("XDG_RUNTIME_DIR={rts}"),
                "sh",
                "-c",
                &script,
                ROUND_TRIPPER,
            ],
        )
        .expect("two round trippers");
        let app_pid = app.child.id();
        wait_until("both count", Duration::from_secs(15), || {
            count(&c1) > 0 && count(&c2) > 0
        })
        .expect("round trippers running");
        let mut cli = Command::new(guievict_bin())
            .args(["move", "--pid", &app_pid.to_string(), &b.display])
            .env("XDG_RUNTIME_DIR", rts)
            .env("GUIEVICT_TEST_PAUSE_AFTER_HOLD_MS", "60000")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("guievict move");
        // Held: the counters stop.
        wait_until("the hold takes effect", Duration::from_secs(20), || {
            let (n1, n2) = (count(&c1), count(&c2));
            std::thread::sleep(Duration::from_millis(300));
            count(&c1) == n1 && count(&c2) == n2
        })
        .expect("counters stalled under the hold");
        let t = Instant::now();
        cli.kill().expect("kill guievict");
        cli.wait().expect("reap guievict");
        let (n1, n2) = (count(&c1), count(&c2));
        wait_until("released after the kill", Duration::from_secs(30), || {
            count(&c1) > n1 + 20 && count(&c2) > n2 + 20
        })
        .expect("round trips resume");
        let waited = t.elapsed();
        eprintln!("hold released {waited:?} after the holder was killed");
        assert!(
            waited < Duration::from_secs(3),
            "the hold outlived its holder by {waited:?}"
        );
        // Nothing moved: both are still on A, and a move now works.
        gv(&rt, &["move", "--pid", &app_pid.to_string(), &b.display]).expect("move after");
    });
}
