//! What every description in one request shares ([`Ctx`]: the requesting client, its fonts,
//! back buffers and MIT-SHM segments, the byte order) and the small readers of server values
//! that all resource kinds use (pixmap IDs, regions as rectangles).

use super::segment::shm_desc;
use crate::ffi;
use crate::server::{find_atom, Api, Item};
use guievict_ext_proto as proto;
use proto::*;
use std::collections::HashMap;

/// Server type name of a DOUBLE-BUFFER back-buffer name as a drawable (value: the back-buffer
/// pixmap, which the server created without an ID of its own).
const DBE_DRAWABLE: &str = "dbeDrawable";

/// What every description in one request shares.
pub struct Ctx<'a> {
    pub(super) api: &'a Api,
    pub(super) client: ffi::ClientPtr,
    pub(super) client_index: usize,
    pub(super) flags: u32,
    pub(super) order: ByteOrder,
    /// FontPtr → the client's font ID (for GC fonts).
    pub(super) font_ids: HashMap<usize, u32>,
    /// DOUBLE-BUFFER back-buffer pixmap → the client's back-buffer name (the server made the
    /// pixmap without an ID, so a picture on a back buffer names it by this).
    pub(super) back_buffer_ids: HashMap<usize, u32>,
    pub(super) font_atom: ffi::Atom,
    /// The client's MIT-SHM segments that look valid (protocol 1.5, `FLAG_SHM` only):
    /// (ShmSeg ID, server address, size).
    pub(super) shm_segments: Vec<(u32, usize, usize)>,
    /// GLX drawable object → the client's window or pixmap ID filed under it (protocol 1.7,
    /// `FLAG_GLX_DRAWABLES` only). The server files one `__GLXdrawable` under the GLX ID and
    /// under the X drawable's ID, so equal values name the pair without reading GLX's private
    /// struct.
    pub(super) glx_drawable_of: HashMap<usize, u32>,
}

impl<'a> Ctx<'a> {
    /// Build the context for one request.
    ///
    /// # Safety
    /// `client` must be live; `items` must come from its resource table in this request.
    pub unsafe fn new(
        api: &'a Api,
        client: ffi::ClientPtr,
        items: &[Item],
        names: &HashMap<ffi::RESTYPE, String>,
        flags: u32,
        order: ByteOrder,
    ) -> Self {
        let font_ids = items
            .iter()
            .filter(|i| names.get(&i.rtype).map(String::as_str) == Some(kinds::FONT))
            .map(|i| (i.value as usize, i.id))
            .collect();
        let mut back_buffer_ids = HashMap::new();
        for i in items
            .iter()
            .filter(|i| names.get(&i.rtype).map(String::as_str) == Some(DBE_DRAWABLE))
        {
            // Several names of one buffer: the lowest ID (items are sorted).
            back_buffer_ids.entry(i.value as usize).or_insert(i.id);
        }
        let shm_segments = if flags & FLAG_SHM != 0 {
            items
                .iter()
                .filter(|i| names.get(&i.rtype).map(String::as_str) == Some(kinds::SHM_SEG))
                // SAFETY: values of the client's live ShmSeg resources.
                .filter_map(|i| unsafe { shm_desc(i.value) }.map(|d| (i.id, d.addr, d.size)))
                .collect()
        } else {
            Vec::new()
        };
        let glx_drawable_of = if flags & FLAG_GLX_DRAWABLES != 0 {
            let core: std::collections::HashSet<u32> = items
                .iter()
                .filter(|i| {
                    matches!(
                        names.get(&i.rtype).map(String::as_str),
                        Some(kinds::WINDOW | kinds::PIXMAP)
                    )
                })
                .map(|i| i.id)
                .collect();
            items
                .iter()
                .filter(|i| names.get(&i.rtype).map(String::as_str) == Some(kinds::GLX_DRAWABLE))
                .filter(|i| core.contains(&i.id))
                .map(|i| (i.value as usize, i.id))
                .collect()
        } else {
            HashMap::new()
        };
        Self {
            shm_segments,
            glx_drawable_of,
            api,
            client,
            // SAFETY: live client.
            client_index: usize::try_from(unsafe { (*client).index }).unwrap_or(usize::MAX),
            flags,
            order,
            font_ids,
            back_buffer_ids,
            font_atom: find_atom(api, "FONT"),
        }
    }

    pub(super) fn screen_info(&self) -> &ffi::ScreenInfo {
        // SAFETY: screenInfo is a server global, initialised before any client connects.
        unsafe { &*self.api.f.screenInfo }
    }
}

pub(super) fn pixmap_id(p: ffi::PixmapPtr) -> u32 {
    if p.is_null() {
        0
    } else {
        // SAFETY: non-NULL pixmap pointers held by server objects are live.
        unsafe { (*p).drawable.id }
    }
}

fn region_rects(r: ffi::RegionPtr) -> Vec<Rectangle> {
    if r.is_null() {
        return Vec::new();
    }
    // SAFETY: r is a live region; the glue returns its box count and array.
    let (n, boxes) = unsafe {
        (
            ffi::guievict_region_num_rects(r),
            ffi::guievict_region_rects(r),
        )
    };
    if n <= 0 || boxes.is_null() {
        return Vec::new();
    }
    // SAFETY: the region holds `n` boxes at `boxes`.
    let boxes = unsafe { std::slice::from_raw_parts(boxes, n as usize) };
    boxes
        .iter()
        .map(|b| Rectangle {
            x: b.x1,
            y: b.y1,
            width: (i32::from(b.x2) - i32::from(b.x1)).clamp(0, 65535) as u16,
            height: (i32::from(b.y2) - i32::from(b.y1)).clamp(0, 65535) as u16,
        })
        .collect()
}

pub(super) fn clip_of(r: ffi::RegionPtr) -> Clip {
    if r.is_null() {
        Clip::None
    } else {
        Clip::Rectangles(region_rects(r))
    }
}
