//! MIT-SHM across moves. A capture records the segments and shared pixmaps guimux served itself
//! while a converting server was primary (the server saw only plain copies), so that the next
//! server that shares memory gets them shared again; an attach to a server that lacks MIT-SHM
//! or cannot read this process's memory registers the app's captured segments with guimux and
//! hands it the [`ShmTarget`] it converts the app's requests with.

use super::error::SessionError;
use super::view::Detached;
use crate::muxloop::MuxHandle;
use guimux::engine::ShmTarget;
use guimux::shmconv::ImageFormats;
use guimux::Maps;
use x11rb::protocol::xproto::Setup;

/// The image layout parameters of a server's setup.
pub(super) fn image_formats(setup: &Setup) -> ImageFormats {
    ImageFormats {
        bitmap_pad: setup.bitmap_format_scanline_pad,
        formats: setup
            .pixmap_formats
            .iter()
            .map(|f| (f.depth, f.bits_per_pixel, f.scanline_pad))
            .collect(),
    }
}

/// Segments guimux served itself on a server without MIT-SHM (the capture cannot see them
/// there): add them to the session so that the next server that shares memory attaches them.
/// `prev` (app → capture server) gets an ID of the capture server's range for each.
pub(super) fn add_converted_segments(
    h: &MuxHandle,
    session: &mut winsession::Session,
    prev: Option<&mut Maps>,
) -> Result<(), SessionError> {
    let Some(prev) = prev else {
        return Ok(());
    };
    let segs = h.with_engine(|e| {
        if e.primary_converts_shm() {
            e.segment_memory().map(|m| m.segments()).unwrap_or_default()
        } else {
            Vec::new()
        }
    })?;
    for g in segs {
        if prev
            .xids
            .lookup(g.seg)
            .is_some_and(|id| session.shm_segments.iter().any(|x| x.id == id))
        {
            continue;
        }
        let id = prev.xids.to_server(g.seg);
        session.shm_segments.push(winsession::model::ShmSegment {
            id,
            shmid: g.shmid,
            mapping: g.mapping,
        });
    }
    Ok(())
}

/// Pixmaps the app made with ShmCreatePixmap while its primary converted MIT-SHM: that server
/// holds plain copies (the capture sees ordinary pixmaps), guimux's record says which segment
/// region they stand for, so that a server sharing memory makes them shared again.
pub(super) fn add_converted_pixmaps(
    h: &MuxHandle,
    session: &mut winsession::Session,
    prev: Option<&Maps>,
) -> Result<(), SessionError> {
    let Some(prev) = prev else {
        return Ok(());
    };
    let pixmaps = h.with_engine(|e| {
        if e.primary_converts_shm() {
            e.converted_shm_pixmaps()
        } else {
            Vec::new()
        }
    })?;
    for (pid, src) in pixmaps {
        let (Some(id), Some(segment)) = (prev.xids.lookup(pid), prev.xids.lookup(src.seg)) else {
            continue;
        };
        if session.pixmaps.iter().any(|p| p.id == id)
            && session.shm_segments.iter().any(|g| g.id == segment)
            && !session.shm_pixmaps.iter().any(|x| x.id == id)
        {
            session.shm_pixmaps.push(winsession::model::ShmPixmap {
                id,
                segment,
                offset: src.offset,
            });
        }
    }
    Ok(())
}

/// Whether the app knows MIT-SHM (its original server offered it).
pub(super) fn app_knows_shm(d: &Detached) -> bool {
    let name = guimux::shmconv::EXTENSION;
    match &d.prev {
        Some(prev) => prev.exts.by_name(name).is_some_and(|e| e.app.is_some()),
        None => d.view.exts.iter().any(|(n, _)| n == name),
    }
}

/// How the app's MIT-SHM requests reach a new server: `Some` when the app knows MIT-SHM and
/// the server lacks it (guimux converts them), with the app's captured segments registered in
/// guimux's segment table; `None` when they pass as they are.
pub(super) fn shm_conversion(
    h: &MuxHandle,
    maps: &Maps,
    detached: &Detached,
    setup: &Setup,
    cannot_share: bool,
    warnings: &mut Vec<String>,
    lost: &mut Vec<String>,
) -> Result<Option<ShmTarget>, SessionError> {
    let Some(entry) = maps.exts.by_name(guimux::shmconv::EXTENSION) else {
        return Ok(None);
    };
    let Some(app) = entry.app.filter(|_| entry.server.is_none() || cannot_share) else {
        return Ok(None);
    };
    let view_formats = image_formats(&detached.view.setup);
    let first = detached.prev.is_none();
    let app_formats = h.with_engine(move |e| {
        e.app_image_formats()
            .filter(|_| !first)
            .unwrap_or(view_formats)
    })?;
    // Captured segments, in the app's values.
    let mut n = 0;
    let mut failed = Vec::new();
    for g in &detached.session.shm_segments {
        let app_id = match &detached.prev {
            None => g.id,
            Some(p) => match p.xids.pairs().find(|(_, srv)| *srv == g.id) {
                Some((a, _)) => a,
                None => continue,
            },
        };
        let (shmid, mapping) = (g.shmid, g.mapping);
        let r = h.with_engine(move |e| {
            let Some(m) = e.segment_memory() else {
                return Err("no segment memory".to_string());
            };
            match (shmid, mapping) {
                (Some(id), _) => m.attach_sysv(app_id, id, false),
                (None, Some((start, len))) => {
                    let path = format!("/proc/self/map_files/{start:x}-{:x}", start + len);
                    let f = std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(&path)
                        .or_else(|_| std::fs::File::open(&path))
                        .map_err(|e| format!("{path}: {e}"))?;
                    m.attach_fd(app_id, f.into(), false)
                }
                (None, None) => Err("backing memory unknown".into()),
            }
        })?;
        match r {
            Ok(()) => n += 1,
            Err(e) => failed.push(format!("{app_id:#x} ({e})")),
        }
    }
    let why = if entry.server.is_none() {
        "the new server has no MIT-SHM"
    } else {
        "the new server cannot read this process's shared memory (another host or IPC namespace)"
    };
    warnings.push(format!(
        "{why}: guimux converts the app's shared-memory requests to core requests ({n} segment(s) served from the app's memory)"
    ));
    if !failed.is_empty() {
        let w = format!(
            "MIT-SHM segments guimux cannot read (requests on them fail): {}",
            failed.join(", ")
        );
        warnings.push(w.clone());
        lost.push(w);
    }
    let uid = nix::unistd::getuid().as_raw() as u16;
    let gid = nix::unistd::getgid().as_raw() as u16;
    Ok(Some(ShmTarget {
        app_place: (app.major, app.first_event, app.first_error),
        app: app_formats,
        server: image_formats(setup),
        owner: (uid, gid),
    }))
}
