//! The `.gws` format lasts: files written by earlier guievict versions, checked in under
//! `tests/fixtures/`, are read by this one with everything they held.
//!
//! - `session-v4.gws` / `session-v5.gws` were written by the code of format 4 (commit e195354)
//!   and format 5 (commit 94a9b7f) from their unit tests' sample sessions; next to each is the
//!   JSON of the session that version wrote. Reading the file today must give a session whose
//!   JSON holds every field of that JSON with the same value (fields added since may only add).
//! - `session-v6-xterm.gws` is a real `guievict snapshot` of an xterm made by format 6. It must
//!   decode, and encoding the decoded session must give the same body bytes back: a change to
//!   the model structs that alters the encoding without a new format version (and a reader for
//!   the old layout) fails here instead of silently making every saved session unreadable.
//! - `session-v7-glx.gws` is a real `guievict snapshot` of a GLX program (one direct context,
//!   one GLX window) made by format 7, checked the same way.
//! - `session-v8-qt-gl.gws` is a real `guievict snapshot` of Qt 5's hellogl2 (three direct
//!   contexts, a pbuffer) made by format 8, checked the same way.
//!
//! When the format changes: bump `FORMAT_VERSION`, teach `file::from_bytes` the previous
//! layout, and add a fixture written by the new version (keep the old ones).
use serde_json::Value;
use std::path::PathBuf;
use winsession::file::{from_bytes, to_bytes, FORMAT_VERSION};

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `old` is contained in `new`: objects key by key (`new` may have more keys), arrays element
/// by element (same length), everything else equal. Returns the first difference's path.
fn contained(old: &Value, new: &Value, path: &str) -> Result<(), String> {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            for (k, v) in o {
                let p = format!("{path}.{k}");
                match n.get(k) {
                    Some(nv) => contained(v, nv, &p)?,
                    None => return Err(format!("{p}: missing")),
                }
            }
            Ok(())
        }
        (Value::Array(o), Value::Array(n)) => {
            if o.len() != n.len() {
                return Err(format!("{path}: {} elements, now {}", o.len(), n.len()));
            }
            for (i, (a, b)) in o.iter().zip(n).enumerate() {
                contained(a, b, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        _ if old == new => Ok(()),
        _ => Err(format!("{path}: was {old}, now {new}")),
    }
}

fn version_of(file: &[u8]) -> u32 {
    u32::from_le_bytes(file[8..12].try_into().expect("4 bytes"))
}

/// The decompressed body of a `.gws` file (layout in `winsession::file`).
fn body_of(file: &[u8]) -> Vec<u8> {
    let h = u32::from_le_bytes(file[12..16].try_into().unwrap()) as usize;
    let b = u64::from_le_bytes(file[16..24].try_into().unwrap()) as usize;
    let start = 36 + h;
    zstd::stream::decode_all(&file[start..start + b]).expect("zstd body")
}

fn old_version_is_read_whole(version: u32) {
    let gws = fixture(&format!("session-v{version}.gws"));
    assert_eq!(version_of(&gws), version, "fixture's own version field");
    let want: Value =
        serde_json::from_slice(&fixture(&format!("session-v{version}.json"))).expect("json");
    let session = from_bytes(&gws).unwrap_or_else(|e| panic!("format {version} unreadable: {e}"));
    let got = serde_json::to_value(&session).expect("to json");
    if let Err(diff) = contained(&want, &got, "session") {
        panic!("format {version} file read differently: {diff}");
    }
    // And it is written back in the current format, which reads to the same session.
    let again = to_bytes(&session).expect("encode");
    assert_eq!(version_of(&again), FORMAT_VERSION);
    assert_eq!(from_bytes(&again).expect("decode current"), session);
}

#[test]
fn format_4_file_is_read_whole() {
    old_version_is_read_whole(4);
}

#[test]
fn format_5_file_is_read_whole() {
    old_version_is_read_whole(5);
}

/// Decode the snapshot fixture `name` written by format `version`; when that is the current
/// format, encoding the session again must give the same body bytes (a model change without a
/// new `FORMAT_VERSION` fails here); either way the encoding reads back to the same session.
fn snapshot_fixture(name: &str, version: u32) -> winsession::model::Session {
    let gws = fixture(name);
    assert_eq!(version_of(&gws), version);
    let session =
        from_bytes(&gws).unwrap_or_else(|e| panic!("format {version} snapshot unreadable: {e}"));
    let again = to_bytes(&session).expect("encode");
    if FORMAT_VERSION == version {
        assert!(
            body_of(&again) == body_of(&gws),
            "the encoding of a format-{version} session changed without a new FORMAT_VERSION: \
             bump it and teach file::from_bytes the format-{version} layout (see this file's \
             header)"
        );
    }
    assert_eq!(from_bytes(&again).expect("decode"), session);
    session
}

#[test]
fn format_6_snapshot_decodes_and_encodes_to_the_same_bytes() {
    let session = snapshot_fixture("session-v6-xterm.gws", 6);
    assert!(session.header.app_name.contains("xterm") || !session.windows.is_empty());
    assert!(
        session.windows.len() >= 2,
        "an xterm has a top-level and a vt100 window"
    );
    assert!(
        !session.fonts.is_empty() || !session.glyphsets.is_empty(),
        "xterm's text font"
    );
}

#[test]
fn format_7_glx_snapshot_decodes_and_encodes_to_the_same_bytes() {
    let session = snapshot_fixture("session-v7-glx.gws", 7);
    assert_eq!(session.glx.contexts.len(), 1, "the program's GLX context");
    assert_eq!(session.glx.windows.len(), 1, "the program's GLX window");
    assert_eq!(
        session.glx.windows[0].window, session.windows[0].id,
        "the GLX window draws to the program's window"
    );
    assert!(
        session
            .glx
            .fbconfigs
            .iter()
            .any(|f| f.id == session.glx.contexts[0].fbconfig),
        "the context's FBConfig is described"
    );
}

#[test]
fn format_8_qt_gl_snapshot_decodes_and_encodes_to_the_same_bytes() {
    let session = snapshot_fixture("session-v8-qt-gl.gws", 8);
    assert_eq!(session.glx.contexts.len(), 3, "hellogl2's GLX contexts");
    assert_eq!(
        session.glx_pbuffers.len(),
        1,
        "Qt's offscreen-surface pbuffer"
    );
    let pb = &session.glx_pbuffers[0];
    assert!(
        !session.pixmaps.iter().any(|p| p.id == pb.id),
        "the pbuffer's backing pixmap is carried with the pbuffer, not as a pixmap"
    );
}

#[test]
fn every_readable_version_has_a_fixture() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for v in winsession::file::OLDEST_READABLE_VERSION..=FORMAT_VERSION {
        let has = std::fs::read_dir(&dir)
            .expect("fixtures dir")
            .filter_map(|e| e.ok())
            .any(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with(&format!("session-v{v}")) && n.ends_with(".gws")
            });
        assert!(has, "no fixture written by format {v} in {}", dir.display());
    }
}

#[test]
fn format_9_tk_global_grab_snapshot_decodes_and_encodes_to_the_same_bytes() {
    // wish holding `grab -global .`: GrabPointer and GrabKeyboard on its wrapper window.
    let session = snapshot_fixture("session-v9-tk-grab.gws", 9);
    assert_eq!(session.active_grabs.len(), 2, "{:?}", session.active_grabs);
    let (k, p): (Vec<_>, Vec<_>) = session.active_grabs.iter().partition(|g| g.keyboard);
    assert_eq!((k.len(), p.len()), (1, 1));
    assert!(!k[0].xi2 && !p[0].xi2, "Tk grabs with the core protocol");
    assert_eq!(k[0].window, p[0].window);
    assert!(session.windows.iter().any(|w| w.id == p[0].window));
    assert!(p[0].owner_events, "Tk's global grab has owner-events");
    // Tk's entry draws text with Xft on a pixmap it frees while the picture lives on (64×21
    // here): the pixels came along.
    assert!(!session.freed_drawables.is_empty());
    for d in &session.freed_drawables {
        assert!(session.pictures.iter().any(|p| p.id == d.picture));
        assert!(d.image.width > 0 && d.image.height > 0);
        assert_eq!(
            d.image.data.len(),
            d.image.stride() * usize::from(d.image.height)
        );
    }
}
