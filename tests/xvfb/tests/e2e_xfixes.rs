//! XFIXES selection notification survives a move: a real Xlib program (Python through ctypes
//! on libX11 + libXfixes, as a clipboard manager would do it) selects XFixesSelectionNotify for
//! CLIPBOARD and logs every notification it receives. It is moved A → B → A; on each server
//! another client takes CLIPBOARD, and the program must log the notification with the right
//! selection name (the atom translated back into the program's numbering, the event code into
//! its extension base) relative to its own window.
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::wrapper::ConnectionExt as _;
use xvfb_harness::*;

/// The watcher: one top-level window, XFixesSelectSelectionInput(CLIPBOARD, all three events),
/// one log line per XFixesSelectionNotify: `notify <subtype> <selection name> <own window?>`.
const WATCHER: &str = r#"
import ctypes, struct, sys
x11 = ctypes.CDLL("libX11.so.6")
xf = ctypes.CDLL("libXfixes.so.3")
P, UL, I = ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int
x11.XOpenDisplay.restype = P; x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
x11.XDefaultScreen.argtypes = [P]
x11.XRootWindow.restype = UL; x11.XRootWindow.argtypes = [P, I]
x11.XWhitePixel.restype = UL; x11.XWhitePixel.argtypes = [P, I]
x11.XCreateSimpleWindow.restype = UL
x11.XCreateSimpleWindow.argtypes = [P, UL, I, I, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, UL, UL]
x11.XStoreName.argtypes = [P, UL, ctypes.c_char_p]
x11.XInternAtom.restype = UL; x11.XInternAtom.argtypes = [P, ctypes.c_char_p, I]
x11.XSelectInput.argtypes = [P, UL, ctypes.c_long]
x11.XMapWindow.argtypes = [P, UL]
x11.XFlush.argtypes = [P]
x11.XNextEvent.argtypes = [P, P]
x11.XGetAtomName.restype = ctypes.c_char_p; x11.XGetAtomName.argtypes = [P, UL]
xf.XFixesQueryExtension.argtypes = [P, ctypes.POINTER(I), ctypes.POINTER(I)]
xf.XFixesQueryVersion.argtypes = [P, ctypes.POINTER(I), ctypes.POINTER(I)]
xf.XFixesSelectSelectionInput.argtypes = [P, UL, UL, ctypes.c_ulong]
dpy = x11.XOpenDisplay(None)
scr = x11.XDefaultScreen(dpy)
win = x11.XCreateSimpleWindow(dpy, x11.XRootWindow(dpy, scr), 0, 0, 160, 60, 0, 0, x11.XWhitePixel(dpy, scr))
x11.XStoreName(dpy, win, b"xfixes-watch")
base, err = I(), I()
if not xf.XFixesQueryExtension(dpy, ctypes.byref(base), ctypes.byref(err)):
    sys.exit("no XFIXES")
major, minor = I(5), I(0)
xf.XFixesQueryVersion(dpy, ctypes.byref(major), ctypes.byref(minor))
clip = x11.XInternAtom(dpy, b"CLIPBOARD", 0)
xf.XFixesSelectSelectionInput(dpy, win, clip, 7)
x11.XSelectInput(dpy, win, 1 << 15)
x11.XMapWindow(dpy, win)
x11.XFlush(dpy)
out = open(sys.argv[1], "a", buffering=1)
out.write("ready\n")
ev = ctypes.create_string_buffer(192)
while True:
    x11.XNextEvent(dpy, ev)
    if struct.unpack_from("i", ev.raw, 0)[0] != base.value:
        continue
    window, subtype = struct.unpack_from("Li", ev.raw, 32)
    selection = struct.unpack_from("L", ev.raw, 56)[0]
    name = x11.XGetAtomName(dpy, selection).decode()
    out.write("notify %d %s %s\n" % (subtype, name, window == win))
"#;

/// Another client takes CLIPBOARD on `display`; it keeps its window (and the ownership) until
/// the returned connection is dropped.
fn take_clipboard(display: &str) -> x11rb::rust_connection::RustConnection {
    let c = connect(display).expect("connect");
    let screen = &c.setup().roots[0];
    let w = c.generate_id().expect("id");
    c.create_window(
        0,
        w,
        screen.root,
        0,
        0,
        1,
        1,
        0,
        xproto::WindowClass::INPUT_ONLY,
        0,
        &xproto::CreateWindowAux::new(),
    )
    .expect("window");
    let clip = c
        .intern_atom(false, b"CLIPBOARD")
        .expect("intern")
        .reply()
        .expect("intern reply")
        .atom;
    c.set_selection_owner(w, clip, x11rb::CURRENT_TIME)
        .expect("owner");
    c.sync().expect("sync");
    c
}

/// Wait until the log has `n` SetSelectionOwner notifications (lines starting with
/// "notify 0"); return them. (The other two kinds come when an owner goes away.)
fn notifications(log: &Path, n: usize, secs: u64) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let lines: Vec<String> = std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("notify 0 "))
            .map(str::to_string)
            .collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} notifications within {secs} s: {lines:?}",
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn e2e_xfixes_selection_notify_after_moves() {
    let python_ok = Command::new("python3")
        .args(["-c", "import ctypes; ctypes.CDLL('libXfixes.so.3')"])
        .status()
        .is_ok_and(|s| s.success());
    if !python_ok {
        skip("python3 with libXfixes.so.3 (Debian libxfixes3) is not available");
        return;
    }
    with_timeout(120, || {
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        // B's atom numbers differ from A's: CLIPBOARD must be translated both ways.
        let pad = b.connect().expect("pad client");
        for i in 0..30 {
            pad.intern_atom(false, format!("E2E_XFIXES_PAD_{i}").as_bytes())
                .expect("intern")
                .reply()
                .expect("intern reply");
        }
        let dir = artifacts_dir().join(format!("e2e-xfixes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let script = dir.join("watch.py");
        std::fs::write(&script, WATCHER).expect("script");
        let log = dir.join("log");
        let mut app = App::spawn(
            &a.display,
            &[
                "python3",
                script.to_str().expect("path"),
                log.to_str().expect("path"),
            ],
        )
        .expect("watcher");
        wait_for_file(&log, "ready", Duration::from_secs(10));
        let want = "notify 0 CLIPBOARD True";

        // On A, before any move.
        let owner_a = take_clipboard(&a.display);
        assert_eq!(notifications(&log, 1, 5), [want]);
        drop(owner_a);

        let pid = app.pid.to_string();
        guievict_json(&["move", "--pid", &pid, &b.display]).expect("move A→B");
        wait_for_window(&b.display, app.pid, Duration::from_secs(10)).expect("window on B");
        let owner_b = take_clipboard(&b.display);
        let got = notifications(&log, 2, 5);
        assert_eq!(got[1], want, "on B: {got:?}");
        assert!(app.alive());

        guievict_json(&["move", "--pid", &pid, &a.display]).expect("move B→A");
        wait_for_window(&a.display, app.pid, Duration::from_secs(10)).expect("window on A");
        drop(owner_b);
        let _owner_a = take_clipboard(&a.display);
        let got = notifications(&log, 3, 5);
        assert_eq!(got[2], want, "back on A: {got:?}");
        assert!(app.alive());
        eprintln!(
            "watcher log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// `guievict snapshot` of the process, read back with `guievict show --json`.
fn snapshot(pid: u32, file: &Path) -> serde_json::Value {
    let bin = guievict_bin();
    let out = Command::new(&bin)
        .args(["snapshot", "--pid", &pid.to_string(), "--save"])
        .arg(file)
        .output()
        .expect("guievict snapshot");
    assert!(
        out.status.success(),
        "snapshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(&bin)
        .arg("show")
        .arg(file)
        .arg("--json")
        .output()
        .expect("guievict show");
    assert!(
        out.status.success(),
        "show: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("show --json")
}

/// (selection name, event mask) of every selection input, and every cursor name, sorted.
fn xfixes_state(v: &serde_json::Value) -> (Vec<(String, u64)>, Vec<String>) {
    let mut sel: Vec<(String, u64)> = v["selection_inputs"]
        .as_array()
        .expect("selection_inputs")
        .iter()
        .map(|x| {
            (
                x["selection"].as_str().unwrap_or("?").to_string(),
                x["event_mask"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    sel.sort();
    let mut names: Vec<String> = v["cursors"]
        .as_array()
        .expect("cursors")
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    (sel, names)
}

#[test]
fn e2e_gtk3_selection_inputs_and_cursor_names_move() {
    if Command::new("gtk3-widget-factory")
        .arg("--help")
        .output()
        .is_err()
    {
        skip("gtk3-widget-factory is not installed (Debian gtk-3-examples)");
        return;
    }
    with_timeout(150, || {
        let opts = XvfbOptions {
            screen: "1600x1200x24".into(),
            ..Default::default()
        };
        let a = Xvfb::start_with(opts.clone()).expect("Xvfb A");
        let b = Xvfb::start_with(opts).expect("Xvfb B");
        let pad = b.connect().expect("pad client");
        for i in 0..30 {
            pad.intern_atom(false, format!("E2E_GTK_XFIXES_PAD_{i}").as_bytes())
                .expect("intern")
                .reply()
                .expect("intern reply");
        }
        let app = App::spawn(&a.display, &["gtk3-widget-factory"]).expect("gtk3-widget-factory");
        std::thread::sleep(Duration::from_millis(1500));
        let dir = artifacts_dir().join(format!("e2e-gtk-xfixes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let on_a = xfixes_state(&snapshot(app.pid, &dir.join("a.gws")));
        eprintln!(
            "GTK3 on A: selection inputs {:?}, cursor names {:?}",
            on_a.0, on_a.1
        );
        // GTK3 watches CLIPBOARD and PRIMARY with XFIXES and names its Xcursor cursors.
        assert!(
            on_a.0.contains(&("CLIPBOARD".to_string(), 7)),
            "{:?}",
            on_a.0
        );
        assert!(on_a.0.contains(&("PRIMARY".to_string(), 7)), "{:?}", on_a.0);
        assert!(!on_a.1.is_empty(), "no named cursors");

        let pid = app.pid.to_string();
        guievict_json(&["move", "--pid", &pid, &b.display]).expect("move A→B");
        wait_for_window(&b.display, app.pid, Duration::from_secs(10)).expect("window on B");
        let on_b = xfixes_state(&snapshot(app.pid, &dir.join("b.gws")));
        assert_eq!(on_b, on_a, "XFIXES state on B");

        guievict_json(&["move", "--pid", &pid, &a.display]).expect("move B→A");
        wait_for_window(&a.display, app.pid, Duration::from_secs(10)).expect("window on A");
        let back = xfixes_state(&snapshot(app.pid, &dir.join("back.gws")));
        assert_eq!(back, on_a, "XFIXES state back on A");
        let _ = std::fs::remove_dir_all(&dir);
    });
}
