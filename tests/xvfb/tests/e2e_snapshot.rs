//! `guievict snapshot` on an unmodified running app (hijacked on the way) writes a session file
//! that `guievict show --json` describes with the documented field names; the app stays on
//! screen; a damaged file gets a clear error.
use std::process::Command;
use xvfb_harness::*;

#[test]
fn snapshot_running_xterm_and_show_it() {
    with_timeout(90, || {
        let x = Xvfb::start().expect("Xvfb");
        let mut app = App::spawn(&x.display, &["xterm", "-geometry", "70x15+4+5", "-e", "sh"])
            .expect("xterm");
        std::thread::sleep(std::time::Duration::from_millis(400));
        let before = screenshot(&x.display, app.window).unwrap();
        let file = artifacts_dir().join(format!("snapshot-{}.gws", app.pid));
        let bin = guievict_bin();
        let out = Command::new(&bin)
            .args(["snapshot", "--pid", &app.pid.to_string(), "--save"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "snapshot: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Still on screen and unchanged.
        assert!(app.alive());
        let after = screenshot(&x.display, app.window).unwrap();
        assert!(compare(&before, &after, "snapshot-unchanged").identical());
        let size = std::fs::metadata(&file).unwrap().len();
        assert!(size < 100 * 1024, "xterm session file is {size} bytes");
        let out = Command::new(&bin)
            .arg("show")
            .arg(&file)
            .arg("--json")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "show: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for key in ["windows", "pixmaps", "gcs", "fonts", "cursors", "colormaps"] {
            assert!(v[key].is_array(), "no array {key} in {v}");
        }
        let top = v["windows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"].as_u64() == Some(u64::from(app.window)))
            .unwrap_or_else(|| panic!("top-level {:#x} not in {}", app.window, v["windows"]));
        for k in ["id", "parent", "x", "y", "width", "height", "mapped"] {
            assert!(!top[k].is_null(), "window lacks {k}: {top}");
        }
        assert_eq!(top["x"].as_i64(), Some(4));
        assert_eq!(top["y"].as_i64(), Some(5));
        assert_eq!(top["mapped"].as_bool(), Some(true));
        let gc = &v["gcs"][0];
        for k in ["foreground", "background", "function", "line_width"] {
            assert!(!gc[k].is_null(), "gc lacks {k}: {gc}");
        }
        assert!(
            v["fonts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["name"].as_str().is_some_and(|n| !n.is_empty())),
            "no named font in {}",
            v["fonts"]
        );
        let c = &v["cursors"][0];
        for k in ["width", "height", "x_hot", "y_hot"] {
            assert!(!c[k].is_null(), "cursor lacks {k}: {c}");
        }
        // A damaged copy: a clear error naming the problem, not a panic.
        let mut bytes = std::fs::read(&file).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        let bad = artifacts_dir().join(format!("snapshot-{}-bad.gws", app.pid));
        std::fs::write(&bad, &bytes).unwrap();
        let out = Command::new(&bin).arg("show").arg(&bad).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("checksum") || err.contains("corrupt"),
            "unclear error: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    });
}
