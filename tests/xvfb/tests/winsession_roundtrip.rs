//! Two-server round trip of a window session: a scenario client builds a rich GUI on server A,
//! captures itself, the session goes through a `.gws` file, is regenerated on server B on a
//! second connection, the app's drawing is replayed there, and B is captured again. The two
//! sessions must be equal after renumbering, and every top-level window pixel-identical.

mod winsession_scenario;

use anyhow::Result;
use winsession_scenario as scen;
use xvfb_harness::{compare, screenshot, with_timeout, Xvfb, XvfbOptions};

fn diff_sessions(a: &winsession::Session, b: &winsession::Session) -> String {
    let ja = serde_json::to_string_pretty(&winsession::to_json(a)).unwrap_or_default();
    let jb = serde_json::to_string_pretty(&winsession::to_json(b)).unwrap_or_default();
    let mut out = String::new();
    for (i, (la, lb)) in ja.lines().zip(jb.lines()).enumerate() {
        if la != lb {
            out.push_str(&format!("line {i}: A {la}\n        B {lb}\n"));
        }
    }
    if out.is_empty() {
        let (da, db) = (format!("{a:#?}"), format!("{b:#?}"));
        for (i, (la, lb)) in da.lines().zip(db.lines()).enumerate() {
            if la != lb {
                out.push_str(&format!("debug line {i}: A {la}\n              B {lb}\n"));
                if out.len() > 4000 {
                    break;
                }
            }
        }
    }
    out
}

fn run_roundtrip(
    a: &Xvfb,
    b: &Xvfb,
    use_hints: bool,
) -> Result<(winsession::Session, winsession::Regenerated)> {
    let ca = a.connect()?;
    let (ids, hints) = scen::build(&ca, scen::XLFD)?;
    scen::draw(&ca, &ids)?;
    let opts = winsession::CaptureOptions {
        hints: if use_hints {
            hints.clone()
        } else {
            Default::default()
        },
        header: winsession::Header {
            source_display: a.display.clone(),
            pid: Some(std::process::id()),
            ..Default::default()
        },
        ..Default::default()
    };
    let sa = winsession::capture(&ca, &opts)?;
    assert_eq!(sa.header.app_name, "scenario");
    assert!(sa.windows.len() >= 6, "windows: {}", sa.windows.len());
    assert!(
        sa.unknown.is_empty(),
        "all state known with hints: {:?}",
        sa.unknown
    );

    // Tests of this file run in parallel in one process: the display number keeps paths apart.
    let path = xvfb_harness::artifacts_dir().join(format!(
        "winsession-{}-{}.gws",
        std::process::id(),
        a.number
    ));
    winsession::write_file(&path, &sa)?;
    let loaded = winsession::read_file(&path)?;
    assert_eq!(loaded, sa, "file round trip");
    let _ = std::fs::remove_file(&path);

    let cb = b.connect()?;
    let regen = winsession::regenerate(&cb, &loaded, &winsession::RegenOptions::default())?;
    assert!(regen.warnings.is_empty(), "warnings: {:?}", regen.warnings);
    let mut map = regen.xid_map.clone();
    map.extend(regen.visual_map.iter().map(|(k, v)| (*k, *v)));
    let ids_b = ids.translated(&map);
    scen::draw(&cb, &ids_b)?;
    let opts_b = winsession::CaptureOptions {
        hints: if use_hints {
            scen::translate_hints(&hints, &map)
        } else {
            Default::default()
        },
        ..Default::default()
    };
    let sb = winsession::capture(&cb, &opts_b)?;
    let (ka, kb) = (sa.canonical(), sb.canonical());
    assert!(
        ka == kb,
        "sessions differ after renumbering:\n{}",
        diff_sessions(&ka, &kb)
    );

    for (wa, wb) in ids.mapped_toplevels.iter().zip(&ids_b.mapped_toplevels) {
        let ia = screenshot(&a.display, *wa)?;
        let ib = screenshot(&b.display, *wb)?;
        let c = compare(&ia, &ib, &format!("winsession-toplevel-{wa:#x}"));
        assert!(c.identical(), "top-level {wa:#x}: {:?}", c);
    }
    drop(ca);
    Ok((sa, regen))
}

#[test]
fn winsession_two_server_roundtrip() {
    with_timeout(120, || {
        let a = Xvfb::start_with(XvfbOptions {
            preload_ext: false,
            ..Default::default()
        })
        .expect("xvfb A");
        let b = Xvfb::start_with(XvfbOptions {
            preload_ext: false,
            ..Default::default()
        })
        .expect("xvfb B");
        let (s, regen) = run_roundtrip(&a, &b, true).expect("round trip");
        // Spot checks on the model and the maps.
        let j = winsession::to_json(&s);
        for k in ["windows", "pixmaps", "gcs", "fonts", "cursors", "colormaps"] {
            assert!(j[k].is_array(), "{k}");
        }
        assert!(j["fonts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == scen::XLFD));
        assert!(j["gcs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["line_width"] == 3));
        assert!(regen.atom_map.values().all(|&a| a != 0));
        assert!(regen.xid_map.len() >= s.windows.len() + s.pixmaps.len() + s.gcs.len());
    });
}

#[test]
fn winsession_capture_without_hints_reports_unknown() {
    with_timeout(60, || {
        let a = Xvfb::start_with(XvfbOptions {
            preload_ext: false,
            ..Default::default()
        })
        .expect("xvfb");
        let ca = a.connect().expect("connect");
        let (ids, _) = scen::build(&ca, scen::XLFD).expect("build");
        let s = winsession::capture(&ca, &winsession::CaptureOptions::default()).expect("capture");
        let g = s
            .gcs
            .iter()
            .find(|g| g.id == ids.gc_dash)
            .expect("gc captured");
        assert!(g.values.is_none(), "no invented GC values");
        assert!(
            s.unknown
                .iter()
                .any(|u| u.contains(&format!("gc {:#x}: values", ids.gc_dash))),
            "{:?}",
            s.unknown
        );
        // Fonts are identified by their FONT property even without hints.
        assert!(s.fonts.iter().any(|f| f
            .xlfd
            .as_deref()
            .is_some_and(|x| x.to_ascii_lowercase().contains("fixed-bold"))));
    });
}

/// The same round trip with the GUIEVICT extension preloaded on both servers and no hints: every
/// piece of hidden state (GC values, window backgrounds/borders/cursors, cursor images, font
/// names, colormap cells) must come from the extension.
#[test]
fn winsession_two_server_roundtrip_with_extension() {
    with_timeout(120, || {
        let a = Xvfb::start().expect("xvfb A with extension");
        let b = Xvfb::start().expect("xvfb B with extension");
        let (s, _) = run_roundtrip(&a, &b, false).expect("round trip");
        assert!(s.gcs.iter().all(|g| g.values.is_some()));
        assert!(
            s.cursors.iter().all(|c| c.image.is_some()),
            "cursor images from the extension"
        );
        assert!(s.fonts.iter().any(|f| f.name.as_deref() == Some("fixed")));
        let j = winsession::to_json(&s);
        assert!(j["cursors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["width"].as_u64() > Some(0)));
    });
}
