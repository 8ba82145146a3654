//! Cursors: the translated session's cursors flow out as CreateGlyphCursor (on the glyph fonts
//! opened in the first round), CreateCursor from two uploaded bitmaps, RENDER's CreateCursor
//! from an uploaded ARGB picture, or the "left_ptr" glyph when the image is unknown; then
//! their XFIXES names. The bitmaps, pictures and fonts made for them are scratch, freed at the
//! end.

use super::pixmaps::put_image_chunked;
use super::visuals::Numbers;
use super::{Regen, RegenError};
use crate::model::*;
use x11rb::connection::Connection;
use x11rb::protocol::render::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// Create the cursors of `t` (target numbers) and set their names.
pub(super) fn create<C: Connection>(
    cx: &mut Regen<'_, C>,
    t: &Session,
    nums: &mut Numbers,
) -> Result<(), RegenError> {
    let conn = cx.conn;
    let root = cx.target.root;
    for c in &t.cursors {
        if let Some(g) = &c.glyph {
            let glyph_fonts = &cx.scratch.glyph_fonts;
            let (sf, mf) = (glyph_fonts[&g.font], glyph_fonts[&g.mask_font]);
            cx.pend.push(
                "CreateGlyphCursor",
                c.id,
                conn.create_glyph_cursor(
                    c.id,
                    sf,
                    mf,
                    g.source_char,
                    g.mask_char,
                    g.fore[0],
                    g.fore[1],
                    g.fore[2],
                    g.back[0],
                    g.back[1],
                    g.back[2],
                )?,
            );
            continue;
        }
        match &c.image {
            Some(CursorImage::Core {
                source,
                mask,
                fore,
                back,
            }) => {
                let (w, h) = (c.width.max(1), c.height.max(1));
                let mut pix = [0u32; 2];
                for (i, bits) in [source, mask].into_iter().enumerate() {
                    let pm = conn.generate_id()?;
                    cx.pend.push(
                        "CreatePixmap(cursor)",
                        pm,
                        conn.create_pixmap(1, pm, root, w, h)?,
                    );
                    let gc = match cx.scratch.gcs.get(&1) {
                        Some(&g) => g,
                        None => {
                            let g = conn.generate_id()?;
                            cx.pend.push(
                                "CreateGC(scratch)",
                                g,
                                conn.create_gc(g, pm, &xproto::CreateGCAux::new())?,
                            );
                            cx.scratch.gcs.insert(1, g);
                            g
                        }
                    };
                    let img = Image {
                        depth: 1,
                        bits_per_pixel: 1,
                        scanline_pad: 32,
                        width: w,
                        height: h,
                        data: bits.clone(),
                    };
                    put_image_chunked(cx, pm, gc, &img)?;
                    pix[i] = pm;
                    cx.scratch.pixmaps.push(pm);
                }
                cx.pend.push(
                    "CreateCursor",
                    c.id,
                    conn.create_cursor(
                        c.id, pix[0], pix[1], fore[0], fore[1], fore[2], back[0], back[1], back[2],
                        c.x_hot, c.y_hot,
                    )?,
                );
            }
            Some(CursorImage::Argb(pixels)) => {
                create_argb_cursor(cx, c, pixels, &mut nums.target_formats)?;
            }
            None => {
                let f = match cx.scratch.cursor_font {
                    Some(f) => f,
                    None => {
                        let f = conn.generate_id()?;
                        cx.pend
                            .push("OpenFont(cursor)", f, conn.open_font(f, b"cursor")?);
                        cx.scratch.cursor_font = Some(f);
                        f
                    }
                };
                cx.warn(format!("cursor {:#x}: image unknown, using left_ptr", c.id));
                cx.pend.push(
                    "CreateGlyphCursor(placeholder)",
                    c.id,
                    conn.create_glyph_cursor(c.id, f, f, 68, 69, 0, 0, 0, 0xffff, 0xffff, 0xffff)?,
                );
            }
        }
    }

    // --- Cursor names (XFixesSetCursorName; XFIXES was negotiated in the first round).
    if t.cursors.iter().any(|c| c.name.is_some()) {
        if conn
            .extension_information(x11rb::protocol::xfixes::X11_EXTENSION_NAME)?
            .is_none()
        {
            cx.warn("the target has no XFIXES extension: cursor names are lost".into());
        } else {
            use x11rb::protocol::xfixes::ConnectionExt as _;
            for c in &t.cursors {
                if let Some(n) = &c.name {
                    cx.pend.push(
                        "XFixesSetCursorName",
                        c.id,
                        conn.xfixes_set_cursor_name(c.id, n.as_bytes())?,
                    );
                }
            }
        }
    }
    Ok(())
}

/// An ARGB cursor: its image uploaded to a depth-32 pixmap, a picture on it, RENDER's
/// CreateCursor. `known` holds the target's picture formats (asked here when not yet known).
fn create_argb_cursor<C: Connection>(
    cx: &mut Regen<'_, C>,
    c: &Cursor,
    pixels: &[u32],
    known: &mut Option<render::QueryPictFormatsReply>,
) -> Result<(), RegenError> {
    let conn = cx.conn;
    let root = cx.target.root;
    if known.is_none() {
        *known = Some(
            conn.render_query_pict_formats()?
                .reply()
                .map_err(|source| RegenError::Reply {
                    what: "RenderQueryPictFormats".into(),
                    source,
                })?,
        );
    }
    let Some(formats) = known.as_ref() else {
        return Err(RegenError::Unsupported(
            "RENDER picture formats unknown".into(),
        ));
    };
    let argb = formats
        .formats
        .iter()
        .find(|f| {
            f.depth == 32
                && f.direct.alpha_mask == 0xff
                && f.direct.alpha_shift == 24
                && f.direct.red_shift == 16
                && f.direct.green_shift == 8
        })
        .ok_or_else(|| {
            RegenError::Unsupported("no ARGB32 picture format for an ARGB cursor".into())
        })?;
    let (w, h) = (c.width.max(1), c.height.max(1));
    let pm = conn.generate_id()?;
    cx.pend.push(
        "CreatePixmap(cursor)",
        pm,
        conn.create_pixmap(32, pm, root, w, h)?,
    );
    cx.scratch.pixmaps.push(pm);
    let gc = conn.generate_id()?;
    cx.pend.push(
        "CreateGC(cursor)",
        gc,
        conn.create_gc(gc, pm, &xproto::CreateGCAux::new())?,
    );
    let img = Image {
        depth: 32,
        bits_per_pixel: 32,
        scanline_pad: 32,
        width: w,
        height: h,
        data: pixels.iter().flat_map(|p| p.to_le_bytes()).collect(),
    };
    put_image_chunked(cx, pm, gc, &img)?;
    let pic = conn.generate_id()?;
    cx.pend.push(
        "CreatePicture(cursor)",
        pic,
        conn.render_create_picture(pic, pm, argb.id, &render::CreatePictureAux::new())?,
    );
    cx.pend.push(
        "CreateCursor(ARGB)",
        c.id,
        conn.render_create_cursor(c.id, pic, c.x_hot, c.y_hot)?,
    );
    cx.pend
        .push("FreePicture(cursor)", pic, conn.render_free_picture(pic)?);
    cx.pend.push("FreeGC(cursor)", gc, conn.free_gc(gc)?);
    Ok(())
}
