//! DOUBLE-BUFFER (DBE) back buffers: the server lists each back-buffer name of the client as a
//! `dbeWindow` resource (and a `dbeDrawable` one with the same ID). The capture half asks
//! `DbeGetBackBufferAttributes` which window each name belongs to and reads the back buffer's
//! pixels with `GetImage` (once per window: several names share one buffer) into
//! [`Session::dbe_buffers`]; regenerate (in `regenerate.rs`, between the windows and the
//! pictures that may draw into a back buffer) allocates the same names on the new windows with
//! `DbeAllocateBackBufferName` and uploads the pixels, so the next swap shows what it would
//! have shown on the source server.

use crate::capture::{CaptureError, ResourceList};
use crate::model::{DbeBuffer, Image, Session};
use std::collections::HashMap;
use x11rb::connection::Connection;
use x11rb::protocol::dbe::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// Server type name of a back-buffer name (value: the DBE window private).
pub const WINDOW_TYPE: &str = "dbeWindow";
/// Server type name of the same ID as a drawable (value: the back-buffer pixmap).
pub const DRAWABLE_TYPE: &str = "dbeDrawable";

/// Largest GetImage reply asked for at once.
const IMAGE_CHUNK: usize = 16 << 20;

/// Capture the client's back buffers (windows must be in `s` already).
pub(crate) fn capture(
    conn: &impl Connection,
    s: &mut Session,
    list: &ResourceList,
) -> Result<(), CaptureError> {
    // Back-buffer names are IDs the client chose (the list is the client's own resources).
    let mut ids: Vec<u32> = list
        .other
        .iter()
        .filter(|(_, t)| t == WINDOW_TYPE)
        .map(|(id, _)| *id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(());
    }
    if conn
        .extension_information(dbe::X11_EXTENSION_NAME)?
        .is_none()
    {
        return Ok(());
    }
    let cookies: Vec<_> = ids
        .iter()
        .map(|&id| conn.dbe_get_back_buffer_attributes(id).map(|c| (id, c)))
        .collect::<Result<_, _>>()?;
    let mut found = Vec::new();
    for (id, c) in cookies {
        match c.reply() {
            Ok(r) if r.attributes.window != 0 => found.push((id, r.attributes.window)),
            Ok(_) => s.unknown.push(format!(
                "dbe back buffer {id:#x}: its window is gone; not recreated (not modelled)"
            )),
            Err(e) => s.unknown.push(format!(
                "dbe back buffer {id:#x}: window ({e}); not recreated (not modelled)"
            )),
        }
    }
    let setup = s.setup.clone();
    let mut first_of: HashMap<u32, usize> = HashMap::new();
    let mut image_cookies = Vec::new();
    for (id, window) in found {
        let idx = s.dbe_buffers.len();
        s.dbe_buffers.push(DbeBuffer {
            id,
            window,
            swap_action: 0,
            contents: None,
        });
        if first_of.contains_key(&window) {
            continue;
        }
        first_of.insert(window, idx);
        let Some(w) = s.windows.iter().find(|w| w.id == window) else {
            s.unknown.push(format!(
                "dbe back buffer {id:#x}: window {window:#x} is not the application's; contents not captured"
            ));
            continue;
        };
        if w.width == 0 || w.height == 0 || w.class != 1 {
            continue;
        }
        let (depth, width, height) = (w.depth, w.width, w.height);
        let bpp = setup.bpp(depth).unwrap_or(32);
        let pad = setup
            .pixmap_formats
            .iter()
            .find(|f| f.depth == depth)
            .map(|f| f.scanline_pad)
            .unwrap_or(32);
        let st = crate::model::stride(width, bpp, pad).max(1);
        let rows = (IMAGE_CHUNK / st).clamp(1, usize::from(height)) as u16;
        let mut y = 0u16;
        while y < height {
            let h = rows.min(height - y);
            image_cookies.push((
                idx,
                (depth, bpp, pad, width, height),
                conn.get_image(xproto::ImageFormat::Z_PIXMAP, id, 0, y as i16, width, h, !0)?,
            ));
            y += h;
        }
    }
    for (idx, (depth, bpp, pad, width, height), c) in image_cookies {
        let b = &mut s.dbe_buffers[idx];
        match c.reply() {
            Ok(r) => {
                let mut data = r.data;
                if setup.image_byte_order == 1 {
                    crate::capture::swap_pixels(&mut data, bpp);
                }
                match &mut b.contents {
                    Some(img) => img.data.extend_from_slice(&data),
                    None => {
                        b.contents = Some(Image {
                            depth,
                            bits_per_pixel: bpp,
                            scanline_pad: pad,
                            width,
                            height,
                            data,
                        })
                    }
                }
            }
            Err(e) => {
                s.unknown
                    .push(format!("dbe back buffer {:#x}: contents ({e})", b.id));
                b.contents = None;
            }
        }
    }
    // Drop partial images (a failed chunk).
    let stride_ok = |img: &Image| img.data.len() == img.stride() * usize::from(img.height);
    for b in &mut s.dbe_buffers {
        if b.contents.as_ref().is_some_and(|i| !stride_ok(i)) {
            b.contents = None;
        }
    }
    s.other_resources
        .retain(|o| o.type_name != WINDOW_TYPE && o.type_name != DRAWABLE_TYPE);
    Ok(())
}
