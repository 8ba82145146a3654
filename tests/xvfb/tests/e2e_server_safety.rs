//! guievict never crashes the user's X server (issue 13). X-Resource `QueryResourceBytes` with
//! the spec {resource 0, type 0} segfaults Xvfb/Xorg 21.1.7 when the client holds a window
//! whose border is a pixmap and whose background is not (xfontsel after its "select" button,
//! gv from the start): the server sizes the window's border pixmap through the *background*
//! field. winsession's fallback for servers without the GUIEVICT extension
//! (`winsession::capture::list_resources_xres`) used exactly that request; it now never asks
//! X-Resource about a window. Here real apps in that state are snapshotted and moved with the
//! real CLI from a stock Xvfb (and from one with the extension): the source server and the app
//! must survive, and a refusal must say why. The fallback's listing is also checked against
//! what the crashing form listed, for apps it does not crash on.
use std::process::Command;
use std::time::Duration;
use x11rb::connection::Connection as _;
use x11rb::protocol::res::{self, ResourceIdSpec};
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use xvfb_harness::*;

/// The server is still there: its process runs and a new client gets a round trip answered.
fn assert_server_alive(x: &mut Xvfb, what: &str) {
    assert!(
        x.is_running(),
        "{what}: the X server {} died (log: {})",
        x.display,
        x.log().display()
    );
    let c = connect(&x.display)
        .unwrap_or_else(|e| panic!("{what}: cannot connect to {} any more: {e:#}", x.display));
    c.get_input_focus()
        .expect("GetInputFocus")
        .reply()
        .unwrap_or_else(|e| panic!("{what}: {} does not answer: {e}", x.display));
}

/// xfontsel with its "select" button clicked twice (the reported state). The button is the
/// second of the command row, 50×17 at (46, 4) in xfontsel's default layout; the clicks are
/// checked by PRIMARY: the first makes xfontsel own it, the second gives it up.
fn xfontsel_selected(display: &str) -> App {
    let app = App::spawn(display, &["xfontsel"]).expect("xfontsel (x11-apps)");
    settled_screenshot(display, app.window).expect("xfontsel drawn");
    let c = connect(display).expect("connect");
    let primary_owner = || {
        c.get_selection_owner(xproto::AtomEnum::PRIMARY.into())
            .expect("GetSelectionOwner")
            .reply()
            .expect("GetSelectionOwner reply")
            .owner
    };
    xtest_click(display, app.window, 72, 13, 1).expect("click select");
    let _ = wait_until("xfontsel owns PRIMARY", Duration::from_secs(10), || {
        primary_owner() != 0
    });
    let owner = primary_owner();
    assert!(
        owner != 0 && window_pid(&c, owner).expect("owner's pid") == Some(app.pid),
        "the click did not reach xfontsel's select button (PRIMARY owner {owner:#x})"
    );
    xtest_click(display, app.window, 72, 13, 1).expect("click select again");
    let _ = wait_until("xfontsel gives PRIMARY up", Duration::from_secs(10), || {
        primary_owner() == 0
    });
    assert_eq!(
        primary_owner(),
        0,
        "the second click did not reach xfontsel's select button"
    );
    app
}

/// gv showing a small PostScript file written to `dir`.
fn gv_showing(display: &str, dir: &std::path::Path) -> App {
    let ps = dir.join("guievict-safety.ps");
    std::fs::write(
        &ps,
        "%!PS-Adobe-3.0\n%%Pages: 1\n%%BoundingBox: 0 0 200 200\n%%EndComments\n%%Page: 1 1\n\
         /Helvetica findfont 24 scalefont setfont 20 100 moveto (guievict) show\n\
         newpath 10 10 moveto 190 190 lineto stroke\nshowpage\n%%EOF\n",
    )
    .expect("writing the PostScript file");
    let app = App::spawn(display, &["gv", ps.to_str().unwrap()]).expect("gv");
    // Ghostscript renders the page into gv's window: until nothing changed for a second.
    settled_screenshot_for(display, app.window, Duration::from_secs(1)).expect("gv drawn");
    app
}

fn scratch_dir(name: &str) -> std::path::PathBuf {
    let d = artifacts_dir().join(format!("server-safety-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// Run `guievict args…`: exit code, stdout, stderr.
fn guievict(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(guievict_bin())
        .args(args)
        .output()
        .expect("running guievict");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `guievict snapshot` and `guievict move` of `app` from `a` to `b`: both servers and the app
/// survive; the snapshot is written; the move either happens (exit 0, or 3 with the losses
/// named) or is refused (exit 1) with a reason and the app left on `a` — and then happens with
/// `--force`.
fn snapshot_and_move(app: &mut App, a: &mut Xvfb, b: &mut Xvfb, name: &str) {
    let pid = app.pid.to_string();
    let file = scratch_dir(name).join("session.gws");
    let (code, _, err) = guievict(&["snapshot", "--pid", &pid, "--save", file.to_str().unwrap()]);
    eprintln!("{name}: snapshot exit {code}: {}", err.trim());
    assert_server_alive(a, &format!("{name} after snapshot"));
    assert!(app.alive(), "{name} died in the snapshot");
    assert_eq!(code, 0, "{name}: snapshot failed: {err}");
    assert!(
        std::fs::metadata(&file).is_ok_and(|m| m.len() > 0),
        "{name}: no session file written"
    );
    let (code, out, err) = guievict(&["move", "--pid", &pid, &b.display]);
    eprintln!(
        "{name}: move to {} exit {code}: {} {}",
        b.display,
        out.trim(),
        err.trim()
    );
    assert_server_alive(a, &format!("{name} after move"));
    assert_server_alive(b, &format!("{name} after move (target)"));
    assert!(app.alive(), "{name} died in the move");
    match code {
        0 | 3 => {
            let w = wait_for_window(&b.display, app.pid, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("{name}: moved, but no window on B: {e:#}"));
            if code == 3 {
                assert!(
                    !err.trim().is_empty(),
                    "{name}: exit 3 without saying what was lost"
                );
            }
            // Drawn on B (the app has processed its Expose there), then alive.
            settled_screenshot(&b.display, w).expect("the moved window can be read on B");
            assert!(app.alive(), "{name} died after the move");
        }
        1 => {
            assert!(
                err.contains("not moved") && err.contains(&a.display),
                "{name}: a refusal must say why and where the app stays: {err}"
            );
            assert!(
                windows_of_pid(&a.display, app.pid)
                    .unwrap()
                    .contains(&app.window),
                "{name}: refused, but its window left {}",
                a.display
            );
            assert!(
                windows_of_pid(&b.display, app.pid).unwrap().is_empty(),
                "{name}: refused, but windows were made on {}",
                b.display
            );
            // Forced: the whole detach and attach run; the losses are named (exit 3).
            let (code, _, err) = guievict(&["move", "--force", "--pid", &pid, &b.display]);
            eprintln!("{name}: move --force exit {code}: {}", err.lines().count());
            assert_server_alive(a, &format!("{name} after move --force"));
            assert_server_alive(b, &format!("{name} after move --force (target)"));
            assert!(app.alive(), "{name} died in the forced move");
            assert!(
                code == 0 || code == 3,
                "{name}: move --force exit {code}: {err}"
            );
            let w = wait_for_window(&b.display, app.pid, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("{name}: forced move, but no window on B: {e:#}"));
            settled_screenshot(&b.display, w).expect("the forced window can be read on B");
            assert!(app.alive(), "{name} died after the forced move");
        }
        c => panic!("{name}: move exit {c}: {err}"),
    }
}

fn server(preload_ext: bool) -> Xvfb {
    Xvfb::start_with(XvfbOptions {
        preload_ext,
        ..Default::default()
    })
    .expect("Xvfb")
}

/// (a) A stock Xvfb (no GUIEVICT): the capture takes the X-Resource fallback.
#[test]
fn stock_server_survives_snapshot_and_move_of_xfontsel_and_gv() {
    with_timeout(240, || {
        let mut a = server(false);
        let mut b_plain = server(false);
        let mut b_ext = server(true);
        let mut xfs = xfontsel_selected(&a.display);
        snapshot_and_move(&mut xfs, &mut a, &mut b_plain, "xfontsel-stock");
        let mut gv = gv_showing(&a.display, &scratch_dir("gv-stock"));
        snapshot_and_move(&mut gv, &mut a, &mut b_ext, "gv-stock");
        assert_server_alive(&mut a, "end");
    });
}

/// (b) The same apps on an Xvfb with the GUIEVICT extension (the capture lists through it).
#[test]
fn extension_server_survives_snapshot_and_move_of_xfontsel_and_gv() {
    with_timeout(240, || {
        let mut a = server(true);
        let mut b_plain = server(false);
        let mut b_ext = server(true);
        let mut xfs = xfontsel_selected(&a.display);
        snapshot_and_move(&mut xfs, &mut a, &mut b_ext, "xfontsel-ext");
        let mut gv = gv_showing(&a.display, &scratch_dir("gv-ext"));
        snapshot_and_move(&mut gv, &mut a, &mut b_plain, "gv-ext");
        assert_server_alive(&mut a, "end");
    });
}

/// Resources of the client of `xid` by (ID, type name), as the request that crashes some
/// servers lists them ({0, 0}).
fn listed_by_all_types(conn: &impl x11rb::connection::Connection, xid: u32) -> Vec<(u32, String)> {
    let r = res::query_resource_bytes(
        conn,
        xid,
        &[ResourceIdSpec {
            resource: 0,
            type_: 0,
        }],
    )
    .unwrap()
    .reply()
    .unwrap();
    let mut out: Vec<(u32, String)> = r
        .sizes
        .iter()
        .map(|v| {
            let name = conn
                .get_atom_name(v.size.spec.type_)
                .unwrap()
                .reply()
                .unwrap()
                .name;
            (v.size.spec.resource, String::from_utf8_lossy(&name).into())
        })
        .collect();
    out.sort();
    out
}

/// The same, from the fallback's list.
fn listed_by_fallback(list: &winsession::capture::ResourceList) -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = Vec::new();
    for (ids, name) in [
        (&list.windows, "WINDOW"),
        (&list.pixmaps, "PIXMAP"),
        (&list.gcs, "GC"),
        (&list.fonts, "FONT"),
        (&list.cursors, "CURSOR"),
        (&list.colormaps, "COLORMAP"),
        (&list.pictures, "PICTURE"),
        (&list.glyphsets, "GLYPHSET"),
    ] {
        out.extend(ids.iter().map(|&id| (id, name.to_string())));
    }
    out.extend(list.other.iter().cloned());
    out.sort();
    out
}

/// The fallback lists exactly what {0, 0} listed for apps that request does not crash on
/// (Xft xterm: pictures, glyph sets, XKB; xeyes: DAMAGE, XFIXES region, SHAPE; xcalc), and
/// lists xfontsel after select×2 and gv completely, without harming the server.
#[test]
fn fallback_lists_exactly_and_safely() {
    with_timeout(180, || {
        let mut x = server(false);
        let conn = x.connect().expect("connect");
        let mask = conn.setup().resource_id_mask;
        for argv in [
            &["xterm", "-fa", "Mono", "-e", "sleep", "120"][..],
            &["xeyes"][..],
            &["xcalc"][..],
        ] {
            let app = App::spawn(&x.display, argv).expect("app");
            settled_screenshot(&x.display, app.window).expect("drawn");
            let t = std::time::Instant::now();
            let list =
                winsession::capture::list_resources_xres(&conn, app.window, mask).expect("list");
            eprintln!("{argv:?}: listed in {:?}", t.elapsed());
            assert!(
                list.unlisted.is_empty(),
                "{argv:?}: unlisted {:?}",
                list.unlisted
            );
            assert_eq!(
                listed_by_fallback(&list),
                listed_by_all_types(&conn, app.window),
                "{argv:?}: the fallback's list differs from X-Resource's full list"
            );
            drop(app);
        }
        let dir = scratch_dir("gv-list");
        for (name, app) in [
            ("xfontsel", xfontsel_selected(&x.display)),
            ("gv", gv_showing(&x.display, &dir)),
        ] {
            let list =
                winsession::capture::list_resources_xres(&conn, app.window, mask).expect("list");
            assert_server_alive(&mut x, name);
            assert!(
                list.unlisted.is_empty(),
                "{name}: unlisted {:?}",
                list.unlisted
            );
            // Complete: as many of each type as X-Resource counts for the client.
            let counts = res::query_client_resources(&conn, app.window)
                .unwrap()
                .reply()
                .unwrap()
                .types;
            let listed = listed_by_fallback(&list);
            for t in counts {
                let tn = conn
                    .get_atom_name(t.resource_type)
                    .unwrap()
                    .reply()
                    .unwrap()
                    .name;
                let tn = String::from_utf8_lossy(&tn).into_owned();
                let n = listed.iter().filter(|(_, n)| *n == tn).count();
                assert_eq!(
                    n, t.count as usize,
                    "{name}: {tn} listed {n} of {}",
                    t.count
                );
            }
            assert!(
                list.windows.contains(&app.window),
                "{name}: its top-level {:#x} is not listed",
                app.window
            );
        }
    });
}

/// The hazard is real on this machine's server: the request the fallback used to send kills
/// Xvfb for xfontsel after select×2. Informational (a fixed server makes the other tests prove
/// less, not fail): prints what happened.
#[test]
fn the_request_the_fallback_avoids_crashes_this_server() {
    with_timeout(60, || {
        let mut x = server(false);
        let app = xfontsel_selected(&x.display);
        let conn = x.connect().expect("connect");
        let r = res::query_resource_bytes(
            &conn,
            app.window,
            &[ResourceIdSpec {
                resource: 0,
                type_: 0,
            }],
        )
        .expect("send")
        .reply();
        std::thread::sleep(Duration::from_millis(300));
        if r.is_err() && !x.is_running() {
            eprintln!(
                "confirmed: QueryResourceBytes {{0, 0}} crashed Xvfb for xfontsel after select×2 (log: {})",
                x.log().display()
            );
        } else {
            eprintln!(
                "note: this Xvfb survived QueryResourceBytes {{0, 0}} for xfontsel after select×2 ({}); the safety tests prove less here",
                if r.is_ok() { "answered" } else { "error" }
            );
        }
    });
}
