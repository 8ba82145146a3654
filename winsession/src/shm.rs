//! MIT-SHM segments: which shared memory (a System V shmid, or a memfd the server handed out
//! with ShmCreateSegment) each of the client's ShmSeg IDs names.
//! The protocol cannot say, so when the capturing connection lives in the application's own
//! process (the hijacked case), the process's SysV mappings (`/proc/self/maps`) are the
//! candidates and the server is asked to *read* each segment (ShmPutImage into a scratch
//! pixmap, then GetImage): the bytes it returns identify the mapping they came from, and
//! bounds checks on the segment size break ties between equal contents. Nothing is written into
//! the application's memory. Regeneration re-attaches the same shmid on the new server (same
//! host, same IPC namespace), or passes a descriptor of the same memfd with ShmAttachFd.

use crate::capture::CaptureError;
use crate::model::*;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use x11rb::connection::Connection;
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::protocol::xc_misc::ConnectionExt as _;
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// Server type name of MIT-SHM segments.
pub const TYPE_NAME: &str = "ShmSeg";

/// Pixels read from each segment to identify it (32 bits each).
const PROBE_PIXELS: u16 = 64;
/// Page size bound: a mapping is its segment's size rounded up to (at most) this.
const PAGE: u64 = 64 << 10;

/// One shared memory mapping of this process: a System V segment or a memfd / POSIX shm file
/// (what ShmCreateSegment hands out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// System V segment ID (`None` for file-backed segments).
    pub shmid: Option<u32>,
    /// Inode of the backing object (the shmid for System V).
    pub inode: u64,
    /// Start address.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
}

/// Parse `/proc/<pid>/maps` text: every shared `/SYSV…` (inode = shmid), `/memfd:…` and
/// `/dev/shm/…` mapping from offset 0, once per backing object.
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || !f[1].ends_with('s') {
            continue;
        }
        let sysv = f[5].starts_with("/SYSV");
        if !(sysv || f[5].starts_with("/memfd:") || f[5].starts_with("/dev/shm/")) {
            continue;
        }
        let Some((a, b)) = f[0].split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end), Ok(inode), Ok(offset)) = (
            u64::from_str_radix(a, 16),
            u64::from_str_radix(b, 16),
            f[4].parse::<u64>(),
            u64::from_str_radix(f[2], 16),
        ) else {
            continue;
        };
        let dup = out
            .iter()
            .any(|m| m.inode == inode && m.shmid.is_some() == sysv);
        if offset != 0 || end <= start || dup {
            continue;
        }
        out.push(Mapping {
            shmid: if sysv {
                u32::try_from(inode).ok()
            } else {
                None
            },
            inode,
            start,
            len: end - start,
        });
    }
    out
}

fn read_self(start: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open("/proc/self/mem")?;
    f.seek(SeekFrom::Start(start))?;
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf)?;
    Ok(buf)
}

/// The client's MIT-SHM segments (`ids`: its ShmSeg resources) and the pixmaps the GUIEVICT
/// extension found inside them, into `s.shm_segments` / `s.shm_pixmaps`; nothing when the
/// source server has no MIT-SHM. `in_process` as for [`capture`]. True when segments were
/// probed (a scratch pixmap and GC made and freed, not followed by a wait).
pub(crate) fn capture_segments(
    conn: &impl Connection,
    s: &mut Session,
    mut ids: Vec<u32>,
    in_process: bool,
    ext: Option<&crate::ext::ExtState>,
) -> Result<bool, CaptureError> {
    if ids.is_empty()
        || conn
            .extension_information(shm::X11_EXTENSION_NAME)?
            .is_none()
    {
        return Ok(false);
    }
    // The GUIEVICT extension (≥ 1.5) names a System V segment's shmid: no probing (two
    // segments with equal contents, e.g. a double buffer, cannot be told apart by reading
    // them). Descriptor-backed segments are still found among this process's mappings.
    let described = crate::ext::described(ext, |d| match d {
        guievict_ext_proto::Detail::ShmSegment(d) => Some(*d),
        _ => None,
    });
    ids.retain(|id| match described.get(id).and_then(|d| d.shmid) {
        Some(shmid) => {
            s.shm_segments.push(ShmSegment {
                id: *id,
                shmid: Some(shmid),
                mapping: None,
            });
            false
        }
        None => true,
    });
    let probed = !ids.is_empty() && in_process;
    if !ids.is_empty() {
        // Sizes of the descriptor-backed ones (a mapping is that size rounded up to a page).
        let sizes: HashMap<u32, u32> = ids
            .iter()
            .filter_map(|id| described.get(id).map(|d| (*id, d.size)))
            .collect();
        capture_sized(conn, s, &ids, in_process, &sizes)?;
    }
    s.shm_segments.sort_by_key(|g| g.id);
    // Pixmaps the extension found inside one of the client's segments (ShmCreatePixmap).
    if let Some(st) = ext {
        for r in &st.resources {
            if let guievict_ext_proto::Detail::ShmPixmap(p) = r.detail {
                if s.shm_segments.iter().any(|g| g.id == p.segment) {
                    s.shm_pixmaps.push(ShmPixmap {
                        id: r.id,
                        segment: p.segment,
                        offset: p.offset,
                    });
                }
            }
        }
    }
    Ok(probed)
}

/// Find the shmid of each ShmSeg in `ids` (see the module docs) and record them in `s`.
/// `in_process`: the connection belongs to this process, so its mappings are the client's.
pub fn capture(
    conn: &impl Connection,
    s: &mut Session,
    ids: &[u32],
    in_process: bool,
) -> Result<(), CaptureError> {
    capture_sized(conn, s, ids, in_process, &HashMap::new())
}

/// [`capture`], with the sizes the server gave for some segments (GUIEVICT ≥ 1.5): of the
/// mappings whose contents match, only those of that size rounded up to a page are taken.
fn capture_sized(
    conn: &impl Connection,
    s: &mut Session,
    ids: &[u32],
    in_process: bool,
    sizes: &HashMap<u32, u32>,
) -> Result<(), CaptureError> {
    let unknown = |s: &mut Session, why: &str| {
        for &id in ids {
            s.unknown
                .push(format!("shm segment {id:#x}: shmid ({why})"));
            s.shm_segments.push(ShmSegment {
                id,
                shmid: None,
                mapping: None,
            });
        }
    };
    if !in_process {
        unknown(s, "the application's memory is not this process's");
        return Ok(());
    }
    let maps = parse_maps(&std::fs::read_to_string("/proc/self/maps").unwrap_or_default());
    let mut cands: Vec<(Mapping, Vec<u8>)> = Vec::new();
    for m in maps {
        let n = (usize::from(PROBE_PIXELS) * 4).min(m.len as usize);
        if let Ok(b) = read_self(m.start, n) {
            cands.push((m, b));
        }
    }
    if cands.is_empty() {
        unknown(s, "no shared memory mapped in the process");
        return Ok(());
    }
    // Scratch pixmap and GC: free IDs of the client's range (this is its connection).
    let free = conn
        .xc_misc_get_xid_list(2)?
        .reply()
        .map_err(|source| CaptureError::Reply {
            what: "XC-MISC GetXIDList".into(),
            source,
        })?
        .ids;
    let [pm, gc] = free[..] else {
        unknown(s, "the client has no free resource IDs for probing");
        return Ok(());
    };
    // A depth whose pixels are 32 bits, so that bytes come back unchanged.
    let Some(depth) = s
        .setup
        .pixmap_formats
        .iter()
        .filter(|f| f.bits_per_pixel == 32)
        .map(|f| f.depth)
        .max()
    else {
        unknown(s, "the server has no 32-bit pixmap format");
        return Ok(());
    };
    let keep = if depth >= 32 {
        u32::MAX
    } else {
        (1u32 << depth) - 1
    };
    let masked = |b: &[u8]| -> Vec<u32> {
        b.chunks_exact(4)
            .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) & keep)
            .collect()
    };
    conn.create_pixmap(depth, pm, s.setup.root, PROBE_PIXELS, 1)?;
    conn.create_gc(gc, pm, &xproto::CreateGCAux::new().graphics_exposures(0))?;
    let mut used: Vec<u64> = Vec::new();
    for &id in ids {
        // What the server reads at the start of the segment. Segments shorter than the probe
        // are read in full, a pixel at a time.
        let mut got: Option<Vec<u32>> = None;
        for w in [PROBE_PIXELS, 1] {
            let c = conn.shm_put_image(
                pm,
                gc,
                w,
                1,
                0,
                0,
                w,
                1,
                0,
                0,
                depth,
                u8::from(xproto::ImageFormat::Z_PIXMAP),
                false,
                id,
                0,
            )?;
            if c.check().is_err() {
                continue;
            }
            let img = conn
                .get_image(xproto::ImageFormat::Z_PIXMAP, pm, 0, 0, w, 1, !0)?
                .reply();
            if let Ok(img) = img {
                got = Some(masked(&img.data));
                break;
            }
        }
        let Some(got) = got else {
            s.unknown
                .push(format!("shm segment {id:#x}: the server could not read it"));
            s.shm_segments.push(ShmSegment {
                id,
                shmid: None,
                mapping: None,
            });
            continue;
        };
        let mut matching: Vec<&(Mapping, Vec<u8>)> = cands
            .iter()
            .filter(|(m, b)| {
                !used.contains(&m.start) && masked(b).get(..got.len()) == Some(&got[..])
            })
            .filter(|(m, _)| {
                sizes
                    .get(&id)
                    .is_none_or(|&size| m.len >= u64::from(size) && m.len - u64::from(size) < PAGE)
            })
            .collect();
        if matching.len() > 1 {
            // Equal contents: keep the largest candidate size the segment has room for.
            let mut fits = Vec::new();
            for (m, _) in &matching {
                let off = (m.len.saturating_sub(4)).min(u64::from(u32::MAX)) as u32;
                let ok = conn
                    .shm_put_image(
                        pm,
                        gc,
                        1,
                        1,
                        0,
                        0,
                        1,
                        1,
                        0,
                        0,
                        depth,
                        u8::from(xproto::ImageFormat::Z_PIXMAP),
                        false,
                        id,
                        off,
                    )?
                    .check()
                    .is_ok();
                fits.push(ok);
            }
            let best = matching
                .iter()
                .zip(&fits)
                .filter(|(_, ok)| **ok)
                .map(|(c, _)| c.0.len)
                .max();
            matching = matching
                .into_iter()
                .zip(fits)
                .filter(|(c, ok)| *ok && Some(c.0.len) == best)
                .map(|(c, _)| c)
                .collect();
            if matching.len() > 1 {
                s.unknown.push(format!(
                    "shm segment {id:#x}: {} mappings of equal size and contents; picked the first",
                    matching.len()
                ));
            }
        }
        match matching.first() {
            Some((m, _)) => {
                used.push(m.start);
                s.shm_segments.push(ShmSegment {
                    id,
                    shmid: m.shmid,
                    mapping: m.shmid.is_none().then_some((m.start, m.len)),
                });
            }
            None => {
                s.unknown.push(format!(
                    "shm segment {id:#x}: no shared mapping of the process holds its bytes"
                ));
                s.shm_segments.push(ShmSegment {
                    id,
                    shmid: None,
                    mapping: None,
                });
            }
        }
    }
    conn.free_gc(gc)?;
    conn.free_pixmap(pm)?;
    Ok(())
}

/// Re-attach the segments on the target (translated session `t`); returns the IDs of the
/// segments attached (requests sent; their errors are checked with the other hard ones).
pub(crate) fn regen<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    sink: &mut crate::extensions::Sink<'c, C>,
) -> Result<Vec<u32>, crate::RegenError> {
    let mut attached = Vec::new();
    if t.shm_segments.is_empty() {
        return Ok(attached);
    }
    if conn
        .extension_information(shm::X11_EXTENSION_NAME)?
        .is_none()
    {
        sink.warnings.push(
            "the target has no MIT-SHM: the application's segments are not attached there".into(),
        );
        return Ok(attached);
    }
    for g in &t.shm_segments {
        match (g.shmid, g.mapping) {
            (Some(shmid), _) => {
                sink.hard
                    .push(("ShmAttach", g.id, conn.shm_attach(g.id, shmid, false)?));
                attached.push(g.id);
            }
            (None, Some((start, len))) => {
                // A descriptor of the very object the application has mapped.
                let path = format!("/proc/self/map_files/{start:x}-{:x}", start + len);
                match std::fs::OpenOptions::new().read(true).write(true).open(&path) {
                    Ok(f) => {
                        sink.hard.push((
                            "ShmAttachFd",
                            g.id,
                            conn.shm_attach_fd(g.id, std::os::fd::OwnedFd::from(f), false)?,
                        ));
                        attached.push(g.id);
                    }
                    Err(e) => sink.warnings.push(format!(
                        "shm segment {:#x}: cannot open its mapping {path} ({e}); not re-attached (requests on it will fail)",
                        g.id
                    )),
                }
            }
            (None, None) => sink.warnings.push(format!(
                "shm segment {:#x}: backing memory unknown; not re-attached (requests on it will fail)",
                g.id
            )),
        }
    }
    Ok(attached)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines() {
        let text = "\
7f00a0000000-7f00a0100000 rw-s 00000000 00:01 32789                      /SYSV00000000 (deleted)
7f00a0200000-7f00a0210000 rw-p 00000000 00:00 0
7f00a0300000-7f00a0301000 r--s 00000000 00:01 32790                      /SYSV00000000 (deleted)
7f00a0400000-7f00a0500000 rw-s 00000000 00:01 32789                      /SYSV00000000 (deleted)
7f85fa933000-7f85fa993000 rw-s 00000000 00:01 82                         /memfd:xorg (deleted)
7f85fb66d000-7f85fb67a000 r--s 00000000 fe:00 1875991                    /var/cache/fontconfig/x.cache-8
7f85fa000000-7f85fa010000 rw-p 00000000 00:01 83                         /memfd:private (deleted)
garbage
";
        assert_eq!(
            parse_maps(text),
            vec![
                Mapping {
                    shmid: Some(32789),
                    inode: 32789,
                    start: 0x7f00_a000_0000,
                    len: 0x10_0000
                },
                Mapping {
                    shmid: Some(32790),
                    inode: 32790,
                    start: 0x7f00_a030_0000,
                    len: 0x1000
                },
                Mapping {
                    shmid: None,
                    inode: 82,
                    start: 0x7f85_fa93_3000,
                    len: 0x6_0000
                },
            ]
        );
    }
}
