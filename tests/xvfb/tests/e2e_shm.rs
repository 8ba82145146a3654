//! MIT-SHM conversion: a client that paints only through shared memory is moved to a server
//! that cannot share memory (Xvfb started with `-extension MIT-SHM`) and back. On that server
//! guimux serves the app's ShmPutImage / ShmGetImage / ShmAttach / ShmAttachFd /
//! ShmCreateSegment / ShmDetach itself from the app's memory; the app must look the same,
//! keep painting (every frame read back equal through ShmGetImage) and keep taking input.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use x11rb::connection::RequestConnection;
use xvfb_harness::*;

fn painter() -> &'static str {
    env!("CARGO_BIN_EXE_shm-painter")
}

/// Start shm-painter (`mode`, extra environment) on `display`, wait for its first frame; returns
/// the app and its status file.
fn start_painter(display: &str, mode: &str, tag: &str, env: &[(&str, &str)]) -> (App, PathBuf) {
    let status = artifacts_dir().join(format!("shm-{tag}-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&status);
    let status_s = status.to_str().expect("utf-8 path").to_string();
    let app = App::spawn_env(display, &[painter(), mode, &status_s], env).expect("shm-painter");
    wait_line(&status, "paint 0 ok", 10);
    (app, status)
}

/// Wait until the status file has a line starting with `prefix`; returns that line.
fn wait_line(path: &Path, prefix: &str, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.starts_with(prefix)) {
            return l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no line {prefix:?} in {} within {secs} s; it has:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stable_shot(display: &str, window: u32) -> Image {
    let mut last = screenshot(display, window).expect("screenshot");
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(200));
        let now = screenshot(display, window).expect("screenshot");
        if now.rgb == last.rgb {
            return now;
        }
        last = now;
    }
    last
}

fn has_shm(display: &str) -> bool {
    let c = connect(display).expect("connect");
    c.extension_information("MIT-SHM").expect("query").is_some()
}

/// Press a key with the pointer over the window and wait for the painter to report the frame.
fn key_and_frame(display: &str, window: u32, status: &Path, frame: u32) {
    xtest_key(display, Some(window), 0x61).expect("key");
    wait_line(status, &format!("key {frame}"), 10);
    let line = wait_line(status, &format!("paint {frame} "), 10);
    assert!(
        line.contains(" ok "),
        "frame {frame} read back wrong through ShmGetImage: {line}"
    );
}

/// How B cannot share memory with the app.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NoSharing {
    /// B has no MIT-SHM extension (`-extension MIT-SHM`).
    NoExtension,
    /// B has MIT-SHM but runs in its own IPC namespace (`unshare --ipc`), as a server of
    /// another machine or container would: it cannot see the app's System V segments.
    OtherIpcNamespace,
}

fn server_b(how: NoSharing) -> Xvfb {
    match how {
        NoSharing::NoExtension => {
            let b = Xvfb::start_with(XvfbOptions {
                extra_args: vec!["-extension".into(), "MIT-SHM".into()],
                ..Default::default()
            })
            .expect("Xvfb B without MIT-SHM");
            assert!(!has_shm(&b.display), "B must not have MIT-SHM");
            b
        }
        NoSharing::OtherIpcNamespace => {
            let b = Xvfb::start_with(XvfbOptions {
                wrapper: vec!["unshare".into(), "--ipc".into()],
                ..Default::default()
            })
            .expect("Xvfb B in its own IPC namespace (unshare --ipc)");
            assert!(has_shm(&b.display), "B should have MIT-SHM");
            b
        }
    }
}

fn round_trip(mode: &'static str) {
    round_trip_to(mode, NoSharing::NoExtension);
}

fn round_trip_to(mode: &'static str, how: NoSharing) {
    with_timeout(120, move || {
        let a = Xvfb::start().expect("Xvfb A");
        let b = server_b(how);
        assert!(has_shm(&a.display), "A should have MIT-SHM");
        let (mut app, status) = start_painter(&a.display, mode, mode, &[]);
        let pid = app.pid.to_string();
        let before = stable_shot(&a.display, app.window);

        // A → B: B cannot share memory.
        let r = guievict_json(&["move", "--pid", &pid, &b.display]).expect("move A→B");
        let text = r.to_string();
        assert!(
            text.contains("converts the app's shared-memory requests"),
            "the move report should say that MIT-SHM is converted: {text}"
        );
        let wb = wait_for_window(&b.display, app.pid, Duration::from_secs(10)).expect("on B");
        let on_b = stable_shot(&b.display, wb);
        assert_same_picture(&before, &on_b, &format!("shm-{mode}-on-b"));
        // Input on B: a new segment (attached, or created, by guimux) and a new frame.
        key_and_frame(&b.display, wb, &status, 1);
        let frame1 = stable_shot(&b.display, wb);
        assert!(
            compare(&on_b, &frame1, &format!("shm-{mode}-frame1")).equal_fraction < 0.9,
            "frame 1 did not change the picture on B"
        );
        key_and_frame(&b.display, wb, &status, 2);
        let frame2 = stable_shot(&b.display, wb);
        assert!(app.alive(), "the painter died on B");
        // Two frames: at least attach + put + get + detach each, all served by guimux.
        let converted = shm_converted(app.pid).expect("status");
        assert!(
            converted >= 8,
            "only {converted} MIT-SHM requests converted on B"
        );

        // B → A: A shares memory again; the segment made while on B is attached there.
        let r = guievict_json(&["move", "--pid", &pid, &a.display]).expect("move B→A");
        let wa = wait_for_window(&a.display, app.pid, Duration::from_secs(10)).expect("on A");
        let back = stable_shot(&a.display, wa);
        assert_same_picture(&frame2, &back, &format!("shm-{mode}-back-on-a"));
        assert!(
            !r.to_string().contains("converts the app's shared-memory"),
            "no conversion on a server with MIT-SHM: {r}"
        );
        key_and_frame(&a.display, wa, &status, 3);
        assert!(app.alive(), "the painter died back on A");
        assert_eq!(
            shm_converted(app.pid).expect("status"),
            converted,
            "requests were converted on A, which shares memory"
        );
        let text = std::fs::read_to_string(&status).unwrap_or_default();
        assert!(
            !text.contains("MISMATCH"),
            "a frame read back wrong:\n{text}"
        );
        eprintln!("shm-painter {mode}:\n{text}");
    });
}

#[test]
fn sysv_segments_converted_on_a_server_without_mit_shm() {
    round_trip("sysv");
}

#[test]
fn fd_segments_converted_on_a_server_without_mit_shm() {
    round_trip("fd");
}

#[test]
fn created_segments_converted_on_a_server_without_mit_shm() {
    round_trip("create");
}

/// Screen sharing to a display that cannot share memory: the painter stays on A (real MIT-SHM)
/// and is replicated view-only to B (no MIT-SHM); every new frame — painted into segments the
/// app attaches after the replication started — shows on B as on A.
fn replica(mode: &'static str) {
    with_timeout(120, move || {
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start_with(XvfbOptions {
            extra_args: vec!["-extension".into(), "MIT-SHM".into()],
            ..Default::default()
        })
        .expect("Xvfb B without MIT-SHM");
        let (mut app, status) = start_painter(&a.display, mode, &format!("rep-{mode}"), &[]);
        let pid = app.pid.to_string();
        guievict_json(&["replicate", &b.display, "--pid", &pid, "--view-only"])
            .expect("replicate to B");
        let wb = wait_for_window(&b.display, app.pid, Duration::from_secs(10)).expect("on B");
        for frame in 1..=2 {
            key_and_frame(&a.display, app.window, &status, frame);
            let on_a = stable_shot(&a.display, app.window);
            let on_b = stable_shot(&b.display, wb);
            assert_same_picture(&on_a, &on_b, &format!("shm-rep-{mode}-frame{frame}"));
        }
        assert!(app.alive(), "the painter died");
        assert!(
            shm_converted(app.pid).expect("status") == 0,
            "the primary (A) shares memory: nothing is converted for it"
        );
    });
}

#[test]
fn sysv_segments_replicated_to_a_server_without_mit_shm() {
    replica("sysv");
}

#[test]
fn fd_segments_replicated_to_a_server_without_mit_shm() {
    replica("fd");
}

#[test]
fn sysv_segments_converted_for_a_server_in_another_ipc_namespace() {
    round_trip_to("sysv", NoSharing::OtherIpcNamespace);
}

#[test]
fn created_segments_converted_for_a_server_in_another_ipc_namespace() {
    round_trip_to("create", NoSharing::OtherIpcNamespace);
}

/// Pixmaps made with ShmCreatePixmap on a server that cannot share memory mirror their segment:
/// guimux uploads the segment again before each use, so a pixmap reused with new contents
/// (frame 2) shows them.
#[test]
fn shm_pixmaps_mirror_their_segment_on_a_server_without_mit_shm() {
    with_timeout(120, || {
        let a = Xvfb::start().expect("Xvfb A");
        let b = server_b(NoSharing::NoExtension);
        let (mut app, status) =
            start_painter(&a.display, "sysv", "pixmap", &[("SHM_PAINTER_PIXMAP", "1")]);
        let pid = app.pid.to_string();
        let before = stable_shot(&a.display, app.window);
        guievict_json(&["move", "--pid", &pid, &b.display]).expect("move A→B");
        let wb = wait_for_window(&b.display, app.pid, Duration::from_secs(10)).expect("on B");
        assert_same_picture(&before, &stable_shot(&b.display, wb), "shm-pixmap-on-b");
        // Frame 1: a new segment and pixmap (converted); frame 2: the same pixmap, new pixels.
        key_and_frame(&b.display, wb, &status, 1);
        key_and_frame(&b.display, wb, &status, 2);
        let frame2 = stable_shot(&b.display, wb);
        guievict_json(&["move", "--pid", &pid, &a.display]).expect("move B→A");
        let wa = wait_for_window(&a.display, app.pid, Duration::from_secs(10)).expect("on A");
        assert_same_picture(
            &frame2,
            &stable_shot(&a.display, wa),
            "shm-pixmap-back-on-a",
        );
        key_and_frame(&a.display, wa, &status, 3);
        key_and_frame(&a.display, wa, &status, 4);
        assert!(app.alive(), "the painter died");
    });
}

/// The painter's "pixmap-draw N" line: the server drew into the shared pixmap and the pixel
/// reached the app's segment.
fn assert_pixmap_draw(status: &Path, frame: u32) {
    let line = wait_line(status, &format!("pixmap-draw {frame} "), 10);
    assert!(
        line.contains(" ok "),
        "frame {frame}: drawing into the shared pixmap did not reach the app's memory: {line}"
    );
}

/// Pixmaps made with ShmCreatePixmap stay shared across moves between servers that share memory
/// (issue 13: Firefox and GIMP draw into such pixmaps and copy them to their windows). `reuse`:
/// the painter keeps the pixmap it made before the hijack (found by the GUIEVICT extension,
/// protocol 1.5); otherwise it makes a new one on B, used again after the move back to A.
fn shm_pixmaps_stay_shared(reuse: bool) {
    with_timeout(120, move || {
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        assert!(has_shm(&b.display), "B should have MIT-SHM");
        let tag = if reuse { "shared-reuse" } else { "shared-new" };
        let mut env = vec![("SHM_PAINTER_PIXMAP", "1")];
        if reuse {
            env.push(("SHM_PAINTER_REUSE", "1"));
        }
        let (mut app, status) = start_painter(&a.display, "sysv", tag, &env);
        let pid = app.pid.to_string();
        let before = stable_shot(&a.display, app.window);

        let r = guievict_json(&["move", "--pid", &pid, &b.display]).expect("move A→B");
        assert!(
            !r.to_string().contains("converts the app's shared-memory"),
            "B shares memory: nothing to convert: {r}"
        );
        let wb = wait_for_window(&b.display, app.pid, Duration::from_secs(10)).expect("on B");
        assert_same_picture(
            &before,
            &stable_shot(&b.display, wb),
            &format!("shm-{tag}-on-b"),
        );
        // New pixels written into the segment must show through the pixmap on B.
        key_and_frame(&b.display, wb, &status, 1);
        assert_pixmap_draw(&status, 1);
        let frame1 = stable_shot(&b.display, wb);
        assert!(
            compare(&before, &frame1, &format!("shm-{tag}-frame1")).equal_fraction < 0.9,
            "frame 1 did not change the picture on B"
        );

        guievict_json(&["move", "--pid", &pid, &a.display]).expect("move B→A");
        let wa = wait_for_window(&a.display, app.pid, Duration::from_secs(10)).expect("on A");
        assert_same_picture(
            &frame1,
            &stable_shot(&a.display, wa),
            &format!("shm-{tag}-back"),
        );
        // Frame 2 reuses the pixmap (made before the hijack, or on B).
        key_and_frame(&a.display, wa, &status, 2);
        assert_pixmap_draw(&status, 2);
        let frame2 = stable_shot(&a.display, wa);
        assert!(
            compare(&frame1, &frame2, &format!("shm-{tag}-frame2")).equal_fraction < 0.9,
            "frame 2 did not change the picture back on A"
        );
        assert!(app.alive(), "the painter died");
        assert_eq!(
            shm_converted(app.pid).expect("status"),
            0,
            "nothing converted"
        );
        let text = std::fs::read_to_string(&status).unwrap_or_default();
        assert!(!text.contains("MISMATCH"), "a frame went wrong:\n{text}");
        eprintln!("shm-painter {tag}:\n{text}");
    });
}

#[test]
fn shm_pixmap_made_before_the_hijack_stays_shared_across_moves() {
    shm_pixmaps_stay_shared(true);
}

#[test]
fn shm_pixmap_made_on_b_stays_shared_after_the_move_back() {
    shm_pixmaps_stay_shared(false);
}
