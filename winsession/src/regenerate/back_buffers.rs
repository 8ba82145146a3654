//! DOUBLE-BUFFER back buffers: the session's back-buffer names flow out as
//! DbeAllocateBackBufferName on the new windows (after the windows, before the pictures and
//! GCs that draw into them), and their captured contents as PutImage through a GC made and
//! freed for it, once per window (names share a buffer), converted when the depth changed.

use super::pixmaps::put_image_chunked;
use super::visuals::Numbers;
use super::{Regen, RegenError};
use crate::convert::convert_image;
use crate::model::*;
use std::collections::HashMap;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// Allocate the back buffers of `t` (target numbers) and upload their contents.
pub(super) fn create<C: Connection>(
    cx: &mut Regen<'_, C>,
    t: &Session,
    nums: &Numbers,
) -> Result<(), RegenError> {
    let conn = cx.conn;
    if !t.dbe_buffers.is_empty() {
        if conn
            .extension_information(x11rb::protocol::dbe::X11_EXTENSION_NAME)?
            .is_none()
        {
            cx.warn(format!(
                "the target has no DOUBLE-BUFFER extension: {} back buffer(s) not recreated",
                t.dbe_buffers.len()
            ));
        } else {
            use x11rb::protocol::dbe::ConnectionExt as _;
            let depth_of: HashMap<u32, u8> = t.windows.iter().map(|w| (w.id, w.depth)).collect();
            for b in &t.dbe_buffers {
                cx.pend.push(
                    "DbeAllocateBackBufferName",
                    b.id,
                    conn.dbe_allocate_back_buffer(b.window, b.id, b.swap_action)?,
                );
            }
            for b in &t.dbe_buffers {
                let Some(img) = &b.contents else { continue };
                let Some(&src_depth) = depth_of.get(&b.window) else {
                    continue;
                };
                let depth = nums.depth(src_depth);
                let bpp = cx.target.bpp(depth).unwrap_or(img.bits_per_pixel);
                let pad = cx
                    .target
                    .pixmap_formats
                    .iter()
                    .find(|f| f.depth == depth)
                    .map(|f| f.scanline_pad)
                    .unwrap_or(32);
                let converted;
                let img =
                    if depth != img.depth || bpp != img.bits_per_pixel || pad != img.scanline_pad {
                        let conv = nums
                            .convert(&cx.session.setup, &cx.target, src_depth)
                            .and_then(|(a, c)| convert_image(img, &a, &c, depth, bpp, pad));
                        match conv {
                            Some(c) => {
                                converted = c;
                                &converted
                            }
                            None => {
                                cx.warn(format!(
                                    "dbe back buffer {:#x}: contents not converted; left blank",
                                    b.id
                                ));
                                continue;
                            }
                        }
                    } else {
                        img
                    };
                let gc = conn.generate_id()?;
                cx.pend.push(
                    "CreateGC(back buffer)",
                    gc,
                    conn.create_gc(
                        gc,
                        b.window,
                        &xproto::CreateGCAux::new().graphics_exposures(0),
                    )?,
                );
                put_image_chunked(cx, b.id, gc, img)?;
                cx.pend.push("FreeGC(back buffer)", gc, conn.free_gc(gc)?);
                cx.out.stats.pixmap_bytes += img.data.len() as u64;
            }
        }
    }
    Ok(())
}
