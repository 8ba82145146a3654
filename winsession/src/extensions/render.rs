//! RENDER. Capture: the source server's picture formats (from a QueryPictFormats reply into the
//! session's setup). Between servers: formats are server-allocated, so source formats are
//! matched to the target's by type, depth and channel layout ([`map_pict_formats`]).
//! Regeneration: the session's glyph sets (with every glyph) and pictures (fills, gradients,
//! pictures on drawables with their clip, filter, transform and alpha map) go out as RENDER
//! requests into the [`Sink`].

use super::{has_ext, require_ext, xrects, Sink};
use crate::capture::CaptureError;
use crate::model::*;
use std::collections::HashMap;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::cookie::Cookie;
use x11rb::protocol::render::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// The picture formats of the server behind `conn` (empty without RENDER).
pub fn pict_formats(conn: &impl Connection) -> Result<Vec<PictFormat>, CaptureError> {
    if !has_ext(conn, render::X11_EXTENSION_NAME)? {
        return Ok(Vec::new());
    }
    let r = conn
        .render_query_pict_formats()?
        .reply()
        .map_err(|source| CaptureError::Reply {
            what: "RenderQueryPictFormats".into(),
            source,
        })?;
    Ok(formats_of(&r))
}

pub(crate) fn formats_of(r: &render::QueryPictFormatsReply) -> Vec<PictFormat> {
    r.formats
        .iter()
        .map(|f| PictFormat {
            id: f.id,
            type_: u8::from(f.type_),
            depth: f.depth,
            direct: [
                f.direct.red_shift,
                f.direct.red_mask,
                f.direct.green_shift,
                f.direct.green_mask,
                f.direct.blue_shift,
                f.direct.blue_mask,
                f.direct.alpha_shift,
                f.direct.alpha_mask,
            ],
            colormap: f.colormap,
        })
        .collect()
}

/// Ask for the source server's picture formats (`None` without RENDER); [`read_formats`] takes
/// the answer.
pub(super) fn ask_formats<C: Connection>(
    conn: &C,
    have_render: bool,
) -> Result<Option<Cookie<'_, C, render::QueryPictFormatsReply>>, CaptureError> {
    Ok(if have_render {
        Some(conn.render_query_pict_formats()?)
    } else {
        None
    })
}

/// The picture formats asked for by [`ask_formats`] into the session's setup.
pub(super) fn read_formats<C: RequestConnection>(
    s: &mut Session,
    asked: Option<Cookie<'_, C, render::QueryPictFormatsReply>>,
) {
    if let Some(c) = asked {
        match c.reply() {
            Ok(r) => s.setup.pict_formats = formats_of(&r),
            Err(e) => s
                .unknown
                .push(format!("RENDER picture formats of the source server: {e}")),
        }
    }
}

/// Old PICTFORMAT → new PICTFORMAT: formats are server-allocated, so each source format is
/// matched to the target format with the same type, depth and channel layout.
pub fn map_pict_formats(src: &[PictFormat], dst: &[PictFormat]) -> HashMap<u32, u32> {
    src.iter()
        .filter_map(|s| {
            dst.iter()
                .find(|d| {
                    d.type_ == s.type_
                        && d.depth == s.depth
                        && (s.type_ == 0 || d.direct == s.direct)
                })
                .map(|d| (s.id, d.id))
        })
        .collect()
}

fn color(c: [u16; 4]) -> render::Color {
    render::Color {
        red: c[0],
        green: c[1],
        blue: c[2],
        alpha: c[3],
    }
}

fn pointfix(x: i32, y: i32) -> render::Pointfix {
    render::Pointfix { x, y }
}

const IDENTITY: [i32; 9] = [1 << 16, 0, 0, 0, 1 << 16, 0, 0, 0, 1 << 16];

/// RENDER glyph sets and pictures; refused (`Unsupported`) when the application has some and
/// the target has no RENDER.
pub(super) fn regen_render<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    orig_drawable: &HashMap<u32, u32>,
    sink: &mut Sink<'c, C>,
) -> Result<(), crate::RegenError> {
    let max_req = conn.maximum_request_bytes();
    require_ext(
        conn,
        render::X11_EXTENSION_NAME,
        !t.pictures.is_empty() || !t.glyphsets.is_empty(),
    )?;
    regen_glyph_sets(conn, t, max_req, sink)?;
    regen_pictures(conn, t, orig_drawable, sink)
}

/// Glyph sets with every glyph, in AddGlyphs requests of at most `max_req` bytes.
fn regen_glyph_sets<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    max_req: usize,
    sink: &mut Sink<'c, C>,
) -> Result<(), crate::RegenError> {
    for g in &t.glyphsets {
        if !g.known {
            sink.warnings.push(format!(
                "glyph set {:#x}: glyphs unknown; created empty",
                g.id
            ));
        }
        sink.hard.push((
            "RenderCreateGlyphSet",
            g.id,
            conn.render_create_glyph_set(g.id, g.format)?,
        ));
        // AddGlyphs in batches that fit a request: 28 bytes header, 4 + 12 per glyph + image.
        let mut i = 0;
        while i < g.glyphs.len() {
            let mut size = 28usize;
            let mut j = i;
            while j < g.glyphs.len() {
                let add = 16 + g.glyphs[j].image.len().next_multiple_of(4);
                if j > i && size + add > max_req {
                    break;
                }
                size += add;
                j += 1;
            }
            let batch = &g.glyphs[i..j];
            let ids: Vec<u32> = batch.iter().map(|x| x.id).collect();
            let infos: Vec<render::Glyphinfo> = batch
                .iter()
                .map(|x| render::Glyphinfo {
                    width: x.width,
                    height: x.height,
                    x: x.x,
                    y: x.y,
                    x_off: x.x_off,
                    y_off: x.y_off,
                })
                .collect();
            let mut data = Vec::new();
            for x in batch {
                data.extend_from_slice(&x.image);
                data.resize(data.len().next_multiple_of(4), 0);
            }
            sink.hard.push((
                "RenderAddGlyphs",
                g.id,
                conn.render_add_glyphs(g.id, &ids, &infos, &data)?,
            ));
            i = j;
        }
    }
    Ok(())
}

/// Every known picture with all its attributes; alpha maps last, since they name other
/// pictures.
fn regen_pictures<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    orig_drawable: &HashMap<u32, u32>,
    sink: &mut Sink<'c, C>,
) -> Result<(), crate::RegenError> {
    let live: std::collections::HashSet<u32> = t
        .windows
        .iter()
        .map(|w| w.id)
        .chain(t.pixmaps.iter().map(|p| p.id))
        .chain(t.dbe_buffers.iter().map(|b| b.id))
        .chain(std::iter::once(t.setup.root))
        .collect();
    let mut placeholders = Vec::new();
    for p in &t.pictures {
        if !p.known {
            sink.warnings.push(format!(
                "picture {:#x}: attributes unknown; not recreated",
                p.id
            ));
            continue;
        }
        match &p.fill {
            Some(fill) => create_fill(conn, p, fill, sink)?,
            None => {
                if p.drawable == 0 {
                    sink.warnings.push(format!(
                        "picture {:#x}: drawable unknown; not recreated",
                        p.id
                    ));
                    continue;
                }
                // A picture keeps its drawable alive after the application freed it (Xft and Tk
                // draw text into short-lived pixmaps this way). Such a drawable is gone from the
                // resource list: give the picture a placeholder pixmap of its depth, freed at
                // once like the original; its contents were unreachable to the application.
                let drawable = if live.contains(&p.drawable) {
                    p.drawable
                } else {
                    let pm = create_placeholder(conn, t, p, orig_drawable, sink)?;
                    placeholders.push(pm);
                    pm
                };
                create_on_drawable(conn, p, drawable, sink)?;
            }
        }
        set_picture_attributes(conn, p, sink)?;
    }
    for pm in placeholders {
        sink.hard
            .push(("FreePixmap(picture placeholder)", pm, conn.free_pixmap(pm)?));
    }
    // Alpha maps refer to other pictures: after all exist.
    for p in t.pictures.iter().filter(|p| p.known && p.alpha_map != 0) {
        sink.hard.push((
            "RenderChangePicture(alpha map)",
            p.id,
            conn.render_change_picture(
                p.id,
                &render::ChangePictureAux::new().alphamap(p.alpha_map),
            )?,
        ));
    }
    Ok(())
}

/// A solid fill or a gradient.
fn create_fill<'c, C: Connection>(
    conn: &'c C,
    p: &Picture,
    fill: &Fill,
    sink: &mut Sink<'c, C>,
) -> Result<(), crate::RegenError> {
    match fill {
        Fill::Solid(c) => sink.hard.push((
            "RenderCreateSolidFill",
            p.id,
            conn.render_create_solid_fill(p.id, color(*c))?,
        )),
        Fill::Gradient {
            kind,
            params,
            stops,
        } => {
            let offs: Vec<i32> = stops.iter().map(|s| s.0).collect();
            let cols: Vec<render::Color> = stops.iter().map(|s| color(s.1)).collect();
            let q = |i: usize| params.get(i).copied().unwrap_or(0);
            let c = match kind {
                GradientKind::Linear => conn.render_create_linear_gradient(
                    p.id,
                    pointfix(q(0), q(1)),
                    pointfix(q(2), q(3)),
                    &offs,
                    &cols,
                )?,
                GradientKind::Radial => conn.render_create_radial_gradient(
                    p.id,
                    pointfix(q(0), q(1)),
                    pointfix(q(2), q(3)),
                    q(4),
                    q(5),
                    &offs,
                    &cols,
                )?,
                GradientKind::Conical => conn.render_create_conical_gradient(
                    p.id,
                    pointfix(q(0), q(1)),
                    q(2),
                    &offs,
                    &cols,
                )?,
            };
            sink.hard.push(("RenderCreateGradient", p.id, c));
        }
    }
    Ok(())
}

/// A pixmap standing in for a drawable the application already freed (the caller frees it
/// once the picture exists): an equal one when the capture read its pixels
/// (`Session::freed_drawables`, GUIEVICT ≥ 1.8) and the target stores them alike, else a 1×1
/// pixmap of the picture's depth, and a warning says so.
fn create_placeholder<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    p: &Picture,
    orig_drawable: &HashMap<u32, u32>,
    sink: &mut Sink<'c, C>,
) -> Result<u32, crate::RegenError> {
    if let Some(pm) = recreate_freed(conn, t, p, sink)? {
        return Ok(pm);
    }
    let depth = t
        .setup
        .pict_formats
        .iter()
        .find(|f| f.id == p.format)
        .map(|f| f.depth)
        .unwrap_or(t.setup.root_depth);
    let pm = conn.generate_id()?;
    sink.hard.push((
        "CreatePixmap(picture placeholder)",
        pm,
        conn.create_pixmap(depth, pm, t.setup.root, 1, 1)?,
    ));
    sink.warnings.push(format!(
        "picture {:#x}: its drawable {:#x} was already freed by the application; recreated on a 1×1 placeholder",
        p.id, orig_drawable.get(&p.id).copied().unwrap_or(p.drawable)
    ));
    Ok(pm)
}

/// The freed pixmap behind picture `p` made again with its pixels, when the capture has them
/// and the target keeps that depth with the same bits per pixel and (beyond 8 bits) byte
/// order; `None` otherwise.
fn recreate_freed<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    p: &Picture,
    sink: &mut Sink<'c, C>,
) -> Result<Option<u32>, crate::RegenError> {
    let Some(img) = t
        .freed_drawables
        .iter()
        .find(|d| d.picture == p.id)
        .map(|d| &d.image)
    else {
        return Ok(None);
    };
    let setup = conn.setup();
    let same_bpp = setup.pixmap_formats.iter().any(|f| {
        f.depth == img.depth && f.bits_per_pixel == img.bits_per_pixel && f.scanline_pad == 32
    });
    let order_ok =
        img.bits_per_pixel <= 8 || setup.image_byte_order == xproto::ImageOrder::LSB_FIRST;
    if !same_bpp || !order_ok || img.width == 0 || img.height == 0 {
        return Ok(None);
    }
    let pm = conn.generate_id()?;
    sink.hard.push((
        "CreatePixmap(freed drawable)",
        pm,
        conn.create_pixmap(img.depth, pm, t.setup.root, img.width, img.height)?,
    ));
    let gc = conn.generate_id()?;
    sink.hard.push((
        "CreateGC(freed drawable)",
        gc,
        conn.create_gc(gc, pm, &xproto::CreateGCAux::new().graphics_exposures(0))?,
    ));
    sink.hard.push((
        "PutImage(freed drawable)",
        pm,
        conn.put_image(
            xproto::ImageFormat::Z_PIXMAP,
            pm,
            gc,
            img.width,
            img.height,
            0,
            0,
            0,
            img.depth,
            &img.data,
        )?,
    ));
    sink.hard
        .push(("FreeGC(freed drawable)", gc, conn.free_gc(gc)?));
    Ok(Some(pm))
}

/// A picture on `drawable` with its creation attributes and its clip.
fn create_on_drawable<'c, C: Connection>(
    conn: &'c C,
    p: &Picture,
    drawable: u32,
    sink: &mut Sink<'c, C>,
) -> Result<(), crate::RegenError> {
    let aux = render::CreatePictureAux::new()
        .repeat(render::Repeat::from(u32::from(p.repeat)))
        .alphaxorigin(i32::from(p.alpha_x))
        .alphayorigin(i32::from(p.alpha_y))
        .clipxorigin(i32::from(p.clip_x))
        .clipyorigin(i32::from(p.clip_y))
        .graphicsexposure(u32::from(p.graphics_exposures))
        .subwindowmode(xproto::SubwindowMode::from(p.subwindow_mode))
        .polyedge(render::PolyEdge::from(u32::from(p.poly_edge)))
        .polymode(render::PolyMode::from(u32::from(p.poly_mode)))
        .componentalpha(u32::from(p.component_alpha));
    sink.hard.push((
        "RenderCreatePicture",
        p.id,
        conn.render_create_picture(p.id, drawable, p.format, &aux)?,
    ));
    match &p.clip {
        Clip::None => {}
        Clip::Rectangles { rects, .. } => sink.hard.push((
            "RenderSetPictureClipRectangles",
            p.id,
            conn.render_set_picture_clip_rectangles(p.id, p.clip_x, p.clip_y, &xrects(rects))?,
        )),
        Clip::Pixmap(m) => sink.hard.push((
            "RenderChangePicture(clip)",
            p.id,
            conn.render_change_picture(p.id, &render::ChangePictureAux::new().clipmask(*m))?,
        )),
    }
    Ok(())
}

/// What a created picture still lacks: a fill's repeat, a filter other than the default, a
/// transform other than the identity.
fn set_picture_attributes<'c, C: Connection>(
    conn: &'c C,
    p: &Picture,
    sink: &mut Sink<'c, C>,
) -> Result<(), crate::RegenError> {
    if p.fill.is_some() && p.repeat != 0 {
        sink.hard.push((
            "RenderChangePicture(repeat)",
            p.id,
            conn.render_change_picture(
                p.id,
                &render::ChangePictureAux::new().repeat(render::Repeat::from(u32::from(p.repeat))),
            )?,
        ));
    }
    let default_filter =
        p.filter.is_empty() || (p.filter == "nearest" && p.filter_params.is_empty());
    if !default_filter {
        sink.hard.push((
            "RenderSetPictureFilter",
            p.id,
            conn.render_set_picture_filter(p.id, p.filter.as_bytes(), &p.filter_params)?,
        ));
    }
    if let Some(m) = p.transform.filter(|m| *m != IDENTITY) {
        let tr = render::Transform {
            matrix11: m[0],
            matrix12: m[1],
            matrix13: m[2],
            matrix21: m[3],
            matrix22: m[4],
            matrix23: m[5],
            matrix31: m[6],
            matrix32: m[7],
            matrix33: m[8],
        };
        sink.hard.push((
            "RenderSetPictureTransform",
            p.id,
            conn.render_set_picture_transform(p.id, tr)?,
        ));
    }
    Ok(())
}
