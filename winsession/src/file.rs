//! The `.gws` session file. A [`Session`] flows in, bytes flow out (and back). Pure functions
//! over buffers plus an atomic file write; every malformed input becomes a distinct
//! [`FileError`], never a panic or an unbounded allocation.
//!
//! Layout (all integers little-endian):
//! ```text
//! 0   8  magic "GUIEVWS\0"
//! 8   4  format version (currently 8; 4 to 7 are still read)
//! 12  4  header length H (JSON of the Header, for quick inspection)
//! 16  8  body length B (zstd-compressed bincode of the whole Session)
//! 24  8  uncompressed body length U (≤ 1 GiB)
//! 32  4  CRC-32 of everything after this field (header JSON + body)
//! 36  H  header JSON
//! .   B  body
//! ```

use crate::model::{Header, Session};
use bincode::Options;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// File magic.
pub const MAGIC: &[u8; 8] = b"GUIEVWS\0";
/// Current format version (3: XFIXES selection inputs, cursor names, XInput 2 devices;
/// 4: XKEYBOARD event selections; 5: passive grabs and DOUBLE-BUFFER back buffers; 6: MIT-SHM
/// pixmaps; 7: GLX contexts and windows, dangling references, Present event selections;
/// 8: GLX pbuffers; 9: active grabs, freed drawables behind pictures).
pub const FORMAT_VERSION: u32 = 9;
/// Oldest format version still read. Formats 5 to 9 only appended fields to the end of
/// [`Session`], so an older body followed by the encoding of those fields, empty, is a
/// current body.
pub const OLDEST_READABLE_VERSION: u32 = 4;
/// Largest uncompressed body accepted (1 GiB).
pub const MAX_BODY: u64 = 1 << 30;
const PREFIX: usize = 36;

/// Why a session file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be opened, read, written, synced or renamed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// File involved.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("empty file: not a guievict session (.gws)")]
    Empty,
    /// The file does not start with the `.gws` magic.
    #[error("not a guievict session file (bad magic {found:02x?}, expected \"GUIEVWS\\0\")")]
    Foreign {
        /// First bytes found.
        found: Vec<u8>,
    },
    /// The file was written by a newer (or unknown) format version.
    #[error("session file format version {found} is newer than this guievict reads (formats {oldest}..={supported}); upgrade guievict")]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
        /// Oldest version this build reads.
        oldest: u32,
    },
    /// The file was written by a format version too old for this build (an early development
    /// format that no release reads).
    #[error("session file format version {found} is too old for this guievict (it reads formats {oldest}..={supported}); capture the session again")]
    TooOld {
        /// Version in the file.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
        /// Oldest version this build reads.
        oldest: u32,
    },
    /// The file is shorter than its own lengths say.
    #[error("truncated session file: {what} needs {needed} bytes, only {available} present")]
    Truncated {
        /// Part that is cut off.
        what: &'static str,
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        available: u64,
    },
    /// Bytes follow the body.
    #[error("session file has {extra} unexpected bytes after the body")]
    TrailingBytes {
        /// Number of extra bytes.
        extra: u64,
    },
    /// The checksum does not match: the file was altered or damaged.
    #[error("session file is corrupt: CRC-32 {found:#010x}, expected {expected:#010x}")]
    Checksum {
        /// Stored checksum.
        expected: u32,
        /// Computed checksum.
        found: u32,
    },
    /// The declared uncompressed size is over the limit.
    #[error("session body of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Declared size.
        size: u64,
        /// Limit.
        limit: u64,
    },
    /// The compressed body could not be decompressed.
    #[error("session body does not decompress: {0}")]
    Decompress(std::io::Error),
    /// The decompressed body has a different length than declared.
    #[error("session body decompresses to {found} bytes, header says {declared}")]
    BodyLength {
        /// Declared length.
        declared: u64,
        /// Actual length.
        found: u64,
    },
    /// The header JSON is malformed.
    #[error("session header is malformed: {0}")]
    Header(serde_json::Error),
    /// The body does not decode to a session.
    #[error("session body does not decode: {0}")]
    Decode(bincode::Error),
    /// The session could not be encoded.
    #[error("session does not encode: {0}")]
    Encode(String),
}

fn bincode_opts() -> impl bincode::Options {
    bincode::DefaultOptions::new().with_limit(MAX_BODY)
}

/// Encode a session to `.gws` bytes.
pub fn to_bytes(session: &Session) -> Result<Vec<u8>, FileError> {
    let header =
        serde_json::to_vec(&session.header).map_err(|e| FileError::Encode(e.to_string()))?;
    let raw = bincode_opts()
        .serialize(session)
        .map_err(|e| FileError::Encode(e.to_string()))?;
    let body = zstd::bulk::compress(&raw, 3).map_err(|e| FileError::Encode(e.to_string()))?;
    let mut out = Vec::with_capacity(PREFIX + header.len() + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&(raw.len() as u64).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header);
    crc.update(&body);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&body);
    Ok(out)
}

struct Parts<'a> {
    version: u32,
    header: &'a [u8],
    body: &'a [u8],
    raw_len: u64,
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn split(bytes: &[u8]) -> Result<Parts<'_>, FileError> {
    if bytes.is_empty() {
        return Err(FileError::Empty);
    }
    let n = bytes.len().min(MAGIC.len());
    if bytes[..n] != MAGIC[..n] {
        return Err(FileError::Foreign {
            found: bytes[..n].to_vec(),
        });
    }
    if bytes.len() < 12 {
        return Err(FileError::Truncated {
            what: "file prefix",
            needed: PREFIX as u64,
            available: bytes.len() as u64,
        });
    }
    let version = le_u32(bytes, 8);
    if version < OLDEST_READABLE_VERSION {
        return Err(FileError::TooOld {
            found: version,
            supported: FORMAT_VERSION,
            oldest: OLDEST_READABLE_VERSION,
        });
    }
    if version > FORMAT_VERSION {
        return Err(FileError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
            oldest: OLDEST_READABLE_VERSION,
        });
    }
    if bytes.len() < PREFIX {
        return Err(FileError::Truncated {
            what: "file prefix",
            needed: PREFIX as u64,
            available: bytes.len() as u64,
        });
    }
    let hlen = u64::from(le_u32(bytes, 12));
    let blen = le_u64(bytes, 16);
    let raw_len = le_u64(bytes, 24);
    let stored_crc = le_u32(bytes, 32);
    let rest = (bytes.len() - PREFIX) as u64;
    let need = hlen.saturating_add(blen);
    if need > rest {
        return Err(FileError::Truncated {
            what: if hlen > rest { "header" } else { "body" },
            needed: need,
            available: rest,
        });
    }
    if need < rest {
        return Err(FileError::TrailingBytes { extra: rest - need });
    }
    if raw_len > MAX_BODY {
        return Err(FileError::TooLarge {
            size: raw_len,
            limit: MAX_BODY,
        });
    }
    let payload = &bytes[PREFIX..];
    let crc = crc32fast::hash(payload);
    if crc != stored_crc {
        return Err(FileError::Checksum {
            expected: stored_crc,
            found: crc,
        });
    }
    let (header, body) = payload.split_at(hlen as usize);
    Ok(Parts {
        version,
        header,
        body,
        raw_len,
    })
}

/// Decode `.gws` bytes into a session.
pub fn from_bytes(bytes: &[u8]) -> Result<Session, FileError> {
    let parts = split(bytes)?;
    let mut dec = zstd::stream::read::Decoder::new(parts.body).map_err(FileError::Decompress)?;
    // Grow as data arrives (never trust the declared size for the allocation), read one byte
    // past the declared size to detect a lie.
    let mut raw = Vec::with_capacity(parts.raw_len.min(16 << 20) as usize);
    (&mut dec)
        .take(parts.raw_len + 1)
        .read_to_end(&mut raw)
        .map_err(FileError::Decompress)?;
    if raw.len() as u64 != parts.raw_len {
        return Err(FileError::BodyLength {
            declared: parts.raw_len,
            found: raw.len() as u64,
        });
    }
    if parts.version == 4 {
        // Format 5 appended `passive_grabs` and `dbe_buffers` (both empty in a format-4 file).
        let tail = bincode_opts()
            .serialize(&(
                Vec::<crate::model::PassiveGrab>::new(),
                Vec::<crate::model::DbeBuffer>::new(),
            ))
            .map_err(|e| FileError::Encode(e.to_string()))?;
        raw.extend_from_slice(&tail);
    }
    if parts.version <= 5 {
        // Format 6 appended `shm_pixmaps` (empty in older files).
        let tail = bincode_opts()
            .serialize(&Vec::<crate::model::ShmPixmap>::new())
            .map_err(|e| FileError::Encode(e.to_string()))?;
        raw.extend_from_slice(&tail);
    }
    if parts.version <= 6 {
        // Format 7 appended `glx`, `dangling_refs` and `present_events` (empty in older files).
        let tail = bincode_opts()
            .serialize(&(
                crate::model::GlxState::default(),
                Vec::<u32>::new(),
                Vec::<crate::model::PresentSelection>::new(),
            ))
            .map_err(|e| FileError::Encode(e.to_string()))?;
        raw.extend_from_slice(&tail);
    }
    if parts.version <= 7 {
        // Format 8 appended `glx_pbuffers` (empty in older files).
        let tail = bincode_opts()
            .serialize(&Vec::<crate::model::GlxPbuffer>::new())
            .map_err(|e| FileError::Encode(e.to_string()))?;
        raw.extend_from_slice(&tail);
    }
    if parts.version <= 8 {
        // Format 9 appended `active_grabs` and `freed_drawables` (empty in older files).
        let tail = bincode_opts()
            .serialize(&(
                Vec::<crate::model::ActiveGrab>::new(),
                Vec::<crate::model::FreedDrawable>::new(),
            ))
            .map_err(|e| FileError::Encode(e.to_string()))?;
        raw.extend_from_slice(&tail);
    }
    let session: Session = bincode_opts()
        .allow_trailing_bytes()
        .deserialize(&raw)
        .map_err(FileError::Decode)?;
    Ok(session)
}

/// Decode only the header of `.gws` bytes (checks magic, version, lengths and checksum).
pub fn header_from_bytes(bytes: &[u8]) -> Result<Header, FileError> {
    let parts = split(bytes)?;
    serde_json::from_slice(parts.header).map_err(FileError::Header)
}

/// Write a session file atomically: a temporary file in the same directory, fsync, rename,
/// fsync of the directory.
pub fn write_file(path: impl AsRef<Path>, session: &Session) -> Result<(), FileError> {
    let path = path.as_ref();
    let bytes = to_bytes(session)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let io = |op: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| FileError::Io {
            op,
            path: p,
            source,
        }
    };
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(io("creating", &tmp))?;
        f.write_all(&bytes).map_err(io("writing", &tmp))?;
        f.sync_all().map_err(io("syncing", &tmp))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io("renaming temporary file to", path))?;
        if let Ok(d) = std::fs::File::open(&dir) {
            d.sync_all().map_err(io("syncing directory", &dir))?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Read and decode a session file.
pub fn read_file(path: impl AsRef<Path>) -> Result<Session, FileError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| FileError::Io {
        op: "reading",
        path: path.to_path_buf(),
        source,
    })?;
    from_bytes(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn sample() -> Session {
        let mut s = Session::default();
        s.header.app_name = "test".into();
        s.atoms.insert(39, "WM_NAME".into());
        s.atoms.insert(31, "STRING".into());
        s.windows.push(Window {
            id: 0x200001,
            parent: 0x3cc,
            class: 1,
            depth: 24,
            visual: 0x21,
            x: 1,
            y: 2,
            width: 300,
            height: 200,
            border_width: 1,
            bit_gravity: 0,
            win_gravity: 1,
            backing_store: 0,
            backing_planes: !0,
            backing_pixel: 0,
            save_under: false,
            override_redirect: false,
            colormap: 0x20,
            event_mask: 0x8000,
            all_event_masks: 0x8000,
            do_not_propagate_mask: 0,
            map_state: 2,
            background: Some(Background::Pixel(0xff0000)),
            border: None,
            cursor: None,
            shape: Some(WindowShape {
                bounding: Some(ShapeRects {
                    ordering: 3,
                    rects: vec![(0, 0, 10, 10), (2, 10, 6, 4)],
                }),
                ..Default::default()
            }),
            properties: vec![Property {
                name: 39,
                type_: 31,
                format: 8,
                data: b"hello".to_vec(),
            }],
        });
        s.pixmaps.push(Pixmap {
            id: 0x200002,
            depth: 24,
            width: 4,
            height: 4,
            contents: Some(Image {
                depth: 24,
                bits_per_pixel: 32,
                scanline_pad: 32,
                width: 4,
                height: 4,
                data: vec![7; 64],
            }),
        });
        let mut pic = Picture::unknown(0x200003);
        pic.fill = Some(Fill::Gradient {
            kind: GradientKind::Radial,
            params: vec![1, 2, 3, 4, 5, 6],
            stops: vec![(0, [1, 2, 3, 4]), (1 << 16, [5, 6, 7, 8])],
        });
        pic.transform = Some([1 << 16, 0, 5, 0, 1 << 16, 0, 0, 0, 1 << 16]);
        pic.filter = "bilinear".into();
        pic.known = true;
        s.pictures.push(pic);
        s.regions.push(Region {
            id: 0x200004,
            rects: Some(vec![(1, 2, 3, 4)]),
        });
        s.damages.push(Damage {
            id: 0x200005,
            drawable: 0x200002,
            level: 3,
            level_known: false,
        });
        s.counters.push(Counter {
            id: 0x200006,
            value: Some(-5),
        });
        s.xi_selections.push(XiSelection {
            window: 0x200001,
            masks: vec![(2, vec![0x1c])],
        });
        s.xkb = Some(XkbClient {
            flags: 1,
            auto_ctrls: 0,
            auto_ctrls_values: 0,
            selections: Some(XkbSelections {
                map_notify: 0xff,
                new_keyboard_notify: 7,
                devices: vec![XkbDeviceSelection {
                    device: 3,
                    device_name: "Virtual core keyboard".into(),
                    state: 0x3fff,
                    ..Default::default()
                }],
            }),
        });
        s.xi_devices.push(XiDevice {
            id: 2,
            use_: 1,
            name: "Virtual core pointer".into(),
        });
        s.atoms.insert(0x1d2, "CLIPBOARD".into());
        s.selection_inputs.push(SelectionInput {
            window: 0x200001,
            selection: 0x1d2,
            event_mask: 7,
        });
        s.cursors.push(Cursor {
            id: 0x200007,
            width: 16,
            height: 16,
            x_hot: 1,
            y_hot: 2,
            image: None,
            glyph: None,
            name: Some("left_ptr".into()),
        });
        s
    }

    fn with_grabs_and_dbe(mut s: Session) -> Session {
        s.passive_grabs.push(PassiveGrab {
            window: 0x200001,
            button: false,
            detail: 39,
            modifiers: 4,
            owner_events: true,
            event_mask: 0,
            pointer_mode: 1,
            keyboard_mode: 1,
            confine_to: 0,
            cursor: 0,
            modifier_mask: None,
            detail_mask: Some(vec![0xff; 32]),
        });
        s.dbe_buffers.push(DbeBuffer {
            id: 0x200008,
            window: 0x200001,
            swap_action: 1,
            contents: None,
        });
        s
    }

    /// A file of format `version` whose body is exactly `raw`.
    fn file_of(version: u32, header: &Header, raw: &[u8]) -> Vec<u8> {
        let header = serde_json::to_vec(header).unwrap();
        let body = zstd::bulk::compress(raw, 3).unwrap();
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&(raw.len() as u64).to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        crc.update(&body);
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn format_4_to_7_files_are_still_read() {
        // A format-7 body is a format-8 body without the trailing (empty) pbuffer list; a
        // format-6 body also lacks the GLX state etc. before it; a format-5
        // body also lacks the MIT-SHM pixmap list before it, a format-4 body the two lists
        // before that.
        let s = sample();
        let raw = bincode_opts().serialize(&s).unwrap();
        let pbuffer_tail = bincode_opts().serialize(&Vec::<GlxPbuffer>::new()).unwrap();
        assert!(raw.ends_with(&pbuffer_tail));
        let raw = &raw[..raw.len() - pbuffer_tail.len()];
        let v7 = file_of(7, &s.header, raw);
        assert_eq!(from_bytes(&v7).unwrap(), s);
        let glx_tail = bincode_opts()
            .serialize(&(
                GlxState::default(),
                Vec::<u32>::new(),
                Vec::<PresentSelection>::new(),
            ))
            .unwrap();
        assert!(raw.ends_with(&glx_tail));
        let raw = &raw[..raw.len() - glx_tail.len()];
        let v6 = file_of(6, &s.header, raw);
        assert_eq!(from_bytes(&v6).unwrap(), s);
        let shm_tail = bincode_opts().serialize(&Vec::<ShmPixmap>::new()).unwrap();
        let grab_tail = bincode_opts()
            .serialize(&(Vec::<PassiveGrab>::new(), Vec::<DbeBuffer>::new()))
            .unwrap();
        assert!(raw.ends_with(&shm_tail));
        let v5_body = &raw[..raw.len() - shm_tail.len()];
        assert!(v5_body.ends_with(&grab_tail));
        let v4_body = &v5_body[..v5_body.len() - grab_tail.len()];
        let v5 = file_of(5, &s.header, v5_body);
        assert_eq!(from_bytes(&v5).unwrap(), s);
        let v4 = file_of(4, &s.header, v4_body);
        assert_eq!(from_bytes(&v4).unwrap(), s);
        // Format 3 is not.
        let v3 = file_of(3, &s.header, v4_body);
        assert!(matches!(
            from_bytes(&v3),
            Err(FileError::TooOld { found: 3, .. })
        ));
        // The current format carries grabs, back buffers and GLX state.
        let mut g = with_grabs_and_dbe(sample());
        g.glx.contexts.push(GlxContext {
            id: 0x200009,
            screen: 0,
            fbconfig: 0x124,
            render_type: 0x8014,
            share: 0,
        });
        g.glx.windows.push(GlxWindow {
            id: 0x20000a,
            window: 0x200001,
            fbconfig: 0x124,
            event_mask: 0,
        });
        g.glx.fbconfigs.push(GlxFbConfig {
            screen: 0,
            id: 0x124,
            attribs: vec![(0x8013, 0x124), (0x8010, 1)],
        });
        assert_eq!(from_bytes(&to_bytes(&g).unwrap()).unwrap(), g);
    }

    #[test]
    fn round_trip() {
        let s = sample();
        let b = to_bytes(&s).unwrap();
        assert_eq!(from_bytes(&b).unwrap(), s);
        assert_eq!(header_from_bytes(&b).unwrap().app_name, "test");
    }

    #[test]
    fn damaged_files_give_distinct_errors() {
        let b = to_bytes(&sample()).unwrap();
        assert!(matches!(from_bytes(&[]), Err(FileError::Empty)));
        assert!(matches!(
            from_bytes(b"hello world, not a session"),
            Err(FileError::Foreign { .. })
        ));
        assert!(matches!(
            from_bytes(&b[..b.len() - 3]),
            Err(FileError::Truncated { .. })
        ));
        assert!(matches!(
            from_bytes(&b[..20]),
            Err(FileError::Truncated { .. })
        ));
        let mut flipped = b.clone();
        let last = flipped.len() - 5;
        flipped[last] ^= 0x40;
        assert!(matches!(
            from_bytes(&flipped),
            Err(FileError::Checksum { .. })
        ));
        let mut future = b.clone();
        future[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        assert!(matches!(
            from_bytes(&future),
            Err(FileError::UnsupportedVersion { found, .. }) if found == FORMAT_VERSION + 1
        ));
        let mut extra = b.clone();
        extra.push(0);
        assert!(matches!(
            from_bytes(&extra),
            Err(FileError::TrailingBytes { extra: 1 })
        ));
        for cut in 0..b.len() {
            assert!(from_bytes(&b[..cut]).is_err());
        }
    }

    #[test]
    fn mutated_files_never_panic() {
        let b = to_bytes(&sample()).unwrap();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let mut m = b.clone();
            for _ in 0..(rnd() % 4 + 1) {
                let i = (rnd() as usize) % m.len();
                m[i] = rnd() as u8;
            }
            assert!(from_bytes(&m).is_err() || from_bytes(&m).is_ok());
            // With the checksum fixed up, the decoder itself sees the damage.
            if m.len() > PREFIX {
                let crc = crc32fast::hash(&m[PREFIX..]);
                m[32..36].copy_from_slice(&crc.to_le_bytes());
                let _ = from_bytes(&m);
            }
        }
        let junk: Vec<u8> = (0..5000).map(|_| rnd() as u8).collect();
        assert!(matches!(from_bytes(&junk), Err(FileError::Foreign { .. })));
        // Lying lengths: huge body length, huge uncompressed size.
        let mut lie = b.clone();
        lie[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(from_bytes(&lie), Err(FileError::Truncated { .. })));
        let mut lie = b.clone();
        lie[24..32].copy_from_slice(&(MAX_BODY + 1).to_le_bytes());
        assert!(matches!(from_bytes(&lie), Err(FileError::TooLarge { .. })));
        let mut lie = b;
        lie[24..32].copy_from_slice(&5u64.to_le_bytes());
        assert!(matches!(
            from_bytes(&lie),
            Err(FileError::BodyLength { .. })
        ));
    }

    #[test]
    fn atomic_write_and_read() {
        let dir = std::env::temp_dir().join(format!("winsession-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.gws");
        write_file(&p, &sample()).unwrap();
        assert_eq!(read_file(&p).unwrap(), sample());
        assert!(matches!(
            read_file(dir.join("missing.gws")),
            Err(FileError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
