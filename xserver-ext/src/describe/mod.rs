//! Reads a resource's hidden state out of the server's own structures (layouts from bindgen) and
//! turns it into a `guievict-ext-proto` [`Detail`]. Server memory flows in through raw pointers
//! that are valid for the duration of one request; typed, owned values flow out.

mod ctx;
mod input;
mod records;
mod render;
mod resources;
mod segment;

pub use ctx::Ctx;
pub use input::{active_grab_records, active_grabs, xkb_client_state};

use crate::ffi;
use crate::server::Item;
use guievict_ext_proto as proto;
use input::{passive_grab, xkb_interest};
use proto::*;
use records::{damage, present_event, selection_input};
use render::{glyph_set, picture};
use resources::{colormap, cursor, font, gc, shm_pixmap, window};
use segment::shm_desc;

/// Describe one resource.
///
/// # Safety
/// `it.value` must be the live value of a resource of the type named `name`.
pub unsafe fn describe(ctx: &Ctx<'_>, it: &Item, name: &str) -> Detail {
    if it.value.is_null() {
        return Detail::Other;
    }
    // SAFETY: (all arms) the resource type name identifies the struct `it.value` points to.
    unsafe {
        match name {
            kinds::WINDOW => Detail::Window(window(it.value as ffi::WindowPtr)),
            kinds::PIXMAP => {
                let p = &*(it.value as ffi::PixmapPtr);
                let d = &p.drawable;
                let info = PixmapInfo {
                    depth: d.depth,
                    bits_per_pixel: d.bitsPerPixel,
                    width: d.width,
                    height: d.height,
                };
                match shm_pixmap(ctx, p) {
                    Some((segment, offset)) => Detail::ShmPixmap(ShmPixmapInfo {
                        pixmap: info,
                        segment,
                        offset,
                    }),
                    None => Detail::Pixmap(info),
                }
            }
            kinds::SHM_SEG if ctx.flags & FLAG_SHM != 0 => match shm_desc(it.value) {
                Some(d) => Detail::ShmSegment(ShmSegmentInfo {
                    shmid: d.shmid,
                    size: d.size as u32,
                    read_only: !d.writable,
                }),
                None => Detail::Other,
            },
            kinds::GC => Detail::Gc(gc(ctx, &*(it.value as ffi::GCPtr))),
            kinds::FONT => Detail::Font(font(ctx, it.id, &*(it.value as *const ffi::_Font))),
            kinds::CURSOR => Detail::Cursor(cursor(ctx, &*(it.value as *const ffi::_Cursor))),
            kinds::COLORMAP => {
                Detail::Colormap(colormap(ctx, &*(it.value as *const ffi::_ColormapRec)))
            }
            kinds::PICTURE => Detail::Picture(picture(ctx, &*(it.value as *const ffi::_Picture))),
            kinds::GLYPHSET => {
                Detail::GlyphSet(glyph_set(ctx, &*(it.value as *const ffi::_GlyphSet)))
            }
            kinds::XFIXES_SELECTION_CLIENT if ctx.flags & FLAG_SELECTION_INPUTS != 0 => {
                selection_input(ctx, it)
            }
            kinds::XKB_CLIENT if ctx.flags & FLAG_XKB_SELECTIONS != 0 => xkb_interest(ctx, it),
            kinds::PASSIVE_GRAB if ctx.flags & FLAG_PASSIVE_GRABS != 0 => passive_grab(ctx, it),
            kinds::DAMAGE if ctx.flags & FLAG_DAMAGE != 0 => damage(ctx, it),
            kinds::PRESENT_EVENT if ctx.flags & FLAG_PRESENT_EVENTS != 0 => present_event(ctx, it),
            kinds::GLX_DRAWABLE if ctx.flags & FLAG_GLX_DRAWABLES != 0 => {
                Detail::GlxDrawable(GlxDrawableInfo {
                    drawable: ctx
                        .glx_drawable_of
                        .get(&(it.value as usize))
                        .copied()
                        .unwrap_or(0),
                })
            }
            _ => Detail::Other,
        }
    }
}
