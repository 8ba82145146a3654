//! Apps of real toolkits outlive their X server (issue 14): gtk3-widget-factory, a Tk
//! program, Qt5 lineedits and a direct-rendering GL program (GLX context and window), each
//! guarded, its Xvfb SIGKILLed, held on the private server and attached to another server with
//! its picture and working input. The xterm, replica, detach and fault cases are in
//! `survive_server_death.rs`; the helpers they share in `survive_common`.
mod survive_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use survive_common::*;
use xvfb_harness::*;

#[test]
fn guarded_gtk3_outlives_its_server() {
    if !Path::new("/usr/bin/gtk3-widget-factory").exists() {
        skip("gtk3-widget-factory is not installed (scripts/setup-debian.sh installs it)");
        return;
    }
    with_timeout(150, || {
        let rt = runtime_dir("gtk3");
        let rts = rt.to_str().expect("utf-8 path");
        let opts = XvfbOptions {
            screen: "1600x1200x24".into(),
            ..Default::default()
        };
        let mut a = Xvfb::start_with(opts.clone()).expect("Xvfb A");
        let b = Xvfb::start_with(opts).expect("Xvfb B");
        let mut app = App::spawn_env(
            &a.display,
            &["gtk3-widget-factory"],
            &[
                ("GTK_THEME", "Adwaita"),
                ("NO_AT_BRIDGE", "1"),
                ("XDG_RUNTIME_DIR", rts),
            ],
        )
        .expect("gtk3-widget-factory");
        let before = stable_shot(&a.display, app.window);
        hijack_guarded(&rt, app.pid);
        a.kill();
        wait_status(
            &rt,
            app.pid,
            "held on the private server after A died",
            |c| c["held_on"].is_string(),
        );
        assert!(app.alive(), "gtk3-widget-factory died with its X server");
        gv(&rt, &["attach", &b.display, "--pid", &app.pid.to_string()]).expect("attach to B");
        let wb =
            wait_for_window(&b.display, app.pid, Duration::from_secs(10)).expect("window on B");
        let after = stable_shot(&b.display, wb);
        assert_same_picture(&before, &after, "survive-gtk3-on-b");
        // Keyboard input reaches it on B: Tab moves the focus, which it redraws.
        for _ in 0..3 {
            xtest_key(&b.display, Some(wb), 0xff09).expect("Tab");
        }
        let deadline = Instant::now() + Duration::from_secs(8);
        while stable_shot(&b.display, wb).rgb == after.rgb {
            assert!(
                Instant::now() < deadline,
                "Tab on B did not change the picture: input does not reach the app"
            );
        }
        assert!(app.alive(), "gtk3-widget-factory died on B");
    });
}

const TK_SCRIPT: &str = r#"
set out [lindex $argv 0]
wm geometry . 320x200+0+0
entry .e -textvariable v -insertofftime 0 -width 30
button .b -text "Save" -command {
    set f [open $out.tmp w]; puts $f $v; close $f; file rename -force $out.tmp $out; set v ""
}
label .l -text "guievict Tk"
pack .e .b .l -padx 4 -pady 4
bind .e <Return> { .b invoke }
focus .e
"#;

#[test]
fn guarded_tk_outlives_its_server() {
    if !Path::new("/usr/bin/wish").exists() {
        skip("wish (tk) is not installed (scripts/setup-debian.sh installs it)");
        return;
    }
    with_timeout(120, || {
        let dir = runtime_dir("tk-files");
        let script = dir.join("demo.tcl");
        std::fs::write(&script, TK_SCRIPT).expect("script");
        let out = dir.join("saved");
        let argv = [
            "wish",
            script.to_str().expect("utf-8"),
            out.to_str().expect("utf-8"),
        ];
        // Tk's pictures on pixmaps it already freed carry their pixels (GUIEVICT 1.8): exact.
        guarded_app_outlives_its_server(
            "tk",
            &argv,
            &[],
            &[],
            &assert_same_picture,
            &|display, window| {
                xtest_type(display, Some(window), "typed-on-b\n").expect("type");
                wait_for_file(&out, "typed-on-b", Duration::from_secs(10));
            },
        );
    });
}

const QT_LINEEDITS: &str =
    "/usr/lib/x86_64-linux-gnu/qt5/examples/widgets/widgets/lineedits/lineedits";

#[test]
fn guarded_qt5_outlives_its_server() {
    use x11rb::protocol::xproto::{ConnectionExt as _, InputFocus};
    use x11rb::wrapper::ConnectionExt as _;
    if !Path::new(QT_LINEEDITS).exists() {
        skip("the Qt5 lineedits example is not installed (scripts/setup-debian.sh installs it)");
        return;
    }
    with_timeout(120, || {
        let env = [("QT_QPA_PLATFORM", "xcb"), ("NO_AT_BRIDGE", "1")];
        guarded_app_outlives_its_server(
            "qt5",
            &[QT_LINEEDITS],
            &env,
            &[],
            &assert_same_picture,
            &|display, window| {
                // The focus a window manager would give it (Qt takes keys after a FocusIn).
                let conn = connect(display).expect("connect");
                conn.set_input_focus(InputFocus::PARENT, window, x11rb::CURRENT_TIME)
                    .expect("SetInputFocus");
                conn.sync().expect("sync");
                std::thread::sleep(Duration::from_millis(200));
                xtest_click(display, window, 128, 86, 1).expect("click");
                let before = stable_shot(display, window);
                xtest_type(display, Some(window), " on-b").expect("type");
                let deadline = Instant::now() + Duration::from_secs(8);
                while stable_shot(display, window).rgb == before.rgb {
                    assert!(
                        Instant::now() < deadline,
                        "typing on B did not change the Qt line edit: input does not reach it"
                    );
                }
            },
        );
    });
}

/// A direct-rendering GL program (GLX context and GLX window, `glx_window.c`) is guarded like
/// any app: its X server killed, it lives on, held on the private server, and an attach to B
/// brings back its GL picture (within 2 levels per channel: llvmpipe may round a tile
/// differently between two identical draws), where a key press makes it draw again.
#[test]
fn guarded_gl_program_outlives_its_server() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/glx_window.c");
    let prog = target_dir().join("survive_glx_window");
    let built = Command::new("cc")
        .arg(&src)
        .arg("-o")
        .arg(&prog)
        .args(["-lGL", "-lX11"])
        .status()
        .is_ok_and(|s| s.success());
    if !built {
        skip("survive_toolkits: cannot build glx_window.c (needs libgl1-mesa-dev, libx11-dev)");
        return;
    }
    with_timeout(120, move || {
        let prog = prog.to_string_lossy().into_owned();
        let close = |before: &Image, after: &Image, what: &str| {
            let f = fraction_within(before, after, 2);
            assert!(
                f >= 0.98,
                "{what}: only {:.2}% of pixels within 2 levels",
                f * 100.0
            );
        };
        guarded_app_outlives_its_server("gl", &[&prog], &[], &[], &close, &|display, window| {
            // A key press makes it clear with another colour through its GL context.
            let before = stable_shot(display, window);
            xtest_key(display, Some(window), 0x61).expect("key a");
            let deadline = Instant::now() + Duration::from_secs(8);
            while fraction_within(&before, &stable_shot(display, window), 2) > 0.5 {
                assert!(
                    Instant::now() < deadline,
                    "a key on B did not make it draw again"
                );
            }
        });
    });
}
