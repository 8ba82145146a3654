//! RENDER resources: pictures (format, filter, transform, clip, repeat, alpha map, source
//! pictures) and glyph sets with every glyph's image, read from the server's RENDER structs.

use super::ctx::{clip_of, Ctx};
use crate::ffi;
use guievict_ext_proto as proto;
use proto::*;

fn filter_name(ctx: &Ctx<'_>, p: &ffi::_Picture) -> String {
    let id = p.filter() as i32;
    let screen = if p.pDrawable.is_null() {
        ctx.screen_info().screens[0]
    } else {
        // SAFETY: live drawable.
        unsafe { (*p.pDrawable).pScreen }
    };
    // SAFETY: the glue reads the RENDER screen private; filters has nfilters entries.
    unsafe {
        let ps = ffi::guievict_picture_screen(screen);
        if !ps.is_null() && !(*ps).filters.is_null() {
            let fl = std::slice::from_raw_parts((*ps).filters, (*ps).nfilters.max(0) as usize);
            if let Some(f) = fl.iter().find(|f| f.id == id) {
                if !f.name.is_null() {
                    return std::ffi::CStr::from_ptr(f.name)
                        .to_string_lossy()
                        .into_owned();
                }
            }
        }
    }
    format!("filter-{id}")
}

/// A picture's state: format, repeat, filter and its parameters, transform, clip, alpha map,
/// component alpha, and for source pictures (solid fill, gradients) their definition.
///
/// # Safety
/// `p` must be a live picture of the requesting client, read during its request.
pub(super) unsafe fn picture(ctx: &Ctx<'_>, p: &ffi::_Picture) -> PictureInfo {
    // SAFETY: live picture fields (caller); source picture union selected by its type.
    unsafe {
        let source = if !p.pSourcePict.is_null() {
            let sp = &*p.pSourcePict;
            let stops = |g: &ffi::PictGradient| {
                if g.stops.is_null() || g.nstops <= 0 {
                    return Vec::new();
                }
                std::slice::from_raw_parts(g.stops, g.nstops as usize)
                    .iter()
                    .map(|s| GradientStop {
                        offset: s.x,
                        color: [s.color.red, s.color.green, s.color.blue, s.color.alpha],
                    })
                    .collect()
            };
            match sp.type_ {
                0 => {
                    let c = sp.solidFill.fullcolor;
                    PictureSource::SolidFill([c.red, c.green, c.blue, c.alpha])
                }
                1 => PictureSource::Gradient(GradientInfo {
                    kind: GradientKind::Linear,
                    params: vec![
                        sp.linear.p1.x,
                        sp.linear.p1.y,
                        sp.linear.p2.x,
                        sp.linear.p2.y,
                    ],
                    stops: stops(&sp.gradient),
                }),
                2 => PictureSource::Gradient(GradientInfo {
                    kind: GradientKind::Radial,
                    params: vec![
                        sp.radial.c1.x,
                        sp.radial.c1.y,
                        sp.radial.c2.x,
                        sp.radial.c2.y,
                        sp.radial.c1.radius,
                        sp.radial.c2.radius,
                    ],
                    stops: stops(&sp.gradient),
                }),
                _ => PictureSource::Gradient(GradientInfo {
                    kind: GradientKind::Conical,
                    params: vec![sp.conical.center.x, sp.conical.center.y, sp.conical.angle],
                    stops: stops(&sp.gradient),
                }),
            }
        } else if !p.pDrawable.is_null() {
            let id = (*p.pDrawable).id;
            PictureSource::Drawable(if id == 0 {
                ctx.back_buffer_ids
                    .get(&(p.pDrawable as usize))
                    .copied()
                    .unwrap_or(0)
            } else {
                id
            })
        } else {
            PictureSource::Drawable(0)
        };
        let filter_params = if p.filter_params.is_null() || p.filter_nparams <= 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts(p.filter_params, p.filter_nparams as usize).to_vec()
        };
        let transform = if p.transform.is_null() {
            None
        } else {
            let m = (*p.transform).matrix;
            let mut t = [0i32; 9];
            for (i, v) in m.iter().flatten().enumerate() {
                t[i] = *v;
            }
            Some(t)
        };
        PictureInfo {
            format: if p.pFormat.is_null() {
                0
            } else {
                (*p.pFormat).id
            },
            source,
            repeat: if p.repeat() != 0 {
                p.repeatType() as u8
            } else {
                0
            },
            filter: filter_name(ctx, p),
            filter_params,
            transform,
            clip: clip_of(p.clientClip),
            clip_x_origin: p.clipOrigin.x,
            clip_y_origin: p.clipOrigin.y,
            alpha_map: if p.alphaMap.is_null() {
                0
            } else {
                (*p.alphaMap).id
            },
            alpha_x_origin: p.alphaOrigin.x,
            alpha_y_origin: p.alphaOrigin.y,
            component_alpha: p.componentAlpha() != 0,
            subwindow_mode: p.subWindowMode() as u8,
            poly_edge: p.polyEdge() as u8,
            poly_mode: p.polyMode() as u8,
            graphics_exposures: p.graphicsExposures() != 0,
            orphan: if ctx.flags & FLAG_ORPHAN_DRAWABLES != 0 && p.pSourcePict.is_null() {
                orphan(ctx, p.pDrawable)
            } else {
                None
            },
        }
    }
}

/// The pixmap behind a picture when the application already freed it: looking its ID up as
/// a pixmap no longer finds it (the picture's reference keeps it alive), so no request can
/// read it; its size, depth and (small) pixels are told instead.
///
/// # Safety
/// `d` must be NULL or the live drawable of a live picture, read during a request.
unsafe fn orphan(ctx: &Ctx<'_>, d: ffi::DrawablePtr) -> Option<OrphanDrawable> {
    if d.is_null() {
        return None;
    }
    // SAFETY: the picture holds a reference on its drawable (caller).
    unsafe {
        let dr = &*d;
        if dr.type_ != super::records::DRAWABLE_PIXMAP
            || dr.id == 0
            || super::records::is_resource(ctx, dr.id, ffi::RT_PIXMAP, d as *const std::ffi::c_void)
        {
            return None;
        }
        let (w, h) = (usize::from(dr.width), usize::from(dr.height));
        let bpp = usize::from(dr.bitsPerPixel.max(1));
        let stride = (w * bpp).div_ceil(32) * 4;
        let mut image = Vec::new();
        let screen = dr.pScreen;
        if stride * h <= MAX_ORPHAN_IMAGE && w > 0 && h > 0 && !screen.is_null() {
            if let Some(get_image) = (*screen).GetImage {
                image = vec![0u8; stride * h];
                get_image(
                    d,
                    0,
                    0,
                    w as i32,
                    h as i32,
                    Z_PIXMAP as u32,
                    !0,
                    image.as_mut_ptr() as *mut std::ffi::c_char,
                );
                let si = ctx.screen_info();
                if dr.depth == 1 && si.bitmapBitOrder == 1 {
                    for b in &mut image {
                        *b = b.reverse_bits();
                    }
                }
                if ctx.order != ByteOrder::native() {
                    let unit = bpp / 8;
                    if unit > 1 {
                        for px in image.chunks_exact_mut(unit) {
                            px.reverse();
                        }
                    }
                }
            }
        }
        Some(OrphanDrawable {
            width: dr.width,
            height: dr.height,
            depth: dr.depth,
            bits_per_pixel: dr.bitsPerPixel,
            image,
        })
    }
}

const Z_PIXMAP: i32 = 2;

/// One glyph's image as the client uploaded it (ZPixmap rows, 4-byte padded), read back from
/// the glyph's picture on the first screen; empty when there is none.
///
/// # Safety
/// `g` must be a live glyph of a glyph set of format depth `depth`.
unsafe fn glyph_image(ctx: &Ctx<'_>, g: ffi::GlyphPtr, depth: u8) -> Vec<u8> {
    // SAFETY: live glyph; its per-screen picture holds a pixmap of the glyph's size.
    unsafe {
        let info = (*g).info;
        if info.width == 0 || info.height == 0 {
            return Vec::new();
        }
        let screen = ctx.screen_info().screens[0];
        if screen.is_null() {
            return Vec::new();
        }
        let pict = (ctx.api.f.GetGlyphPicture)(g, screen);
        if pict.is_null() || (*pict).pDrawable.is_null() {
            return Vec::new();
        }
        let d = (*pict).pDrawable;
        let bpp = usize::from((*d).bitsPerPixel.max(1));
        let w = usize::from(info.width.min((*d).width));
        let h = usize::from(info.height.min((*d).height));
        let stride = (w * bpp).div_ceil(32) * 4;
        let mut buf = vec![0u8; stride * h];
        let Some(get_image) = (*screen).GetImage else {
            return Vec::new();
        };
        get_image(
            d,
            0,
            0,
            w as i32,
            h as i32,
            Z_PIXMAP as u32,
            !0,
            buf.as_mut_ptr() as *mut std::ffi::c_char,
        );
        let si = ctx.screen_info();
        if depth == 1 && si.bitmapBitOrder == 1 {
            for b in &mut buf {
                *b = b.reverse_bits();
            }
        }
        if bpp == 32 && ctx.order != ByteOrder::native() {
            for px in buf.chunks_exact_mut(4) {
                px.reverse();
            }
        }
        buf
    }
}

/// A glyph set's format and every glyph (ID, metrics, image).
///
/// # Safety
/// `gs` must be a live glyph set of the requesting client.
pub(super) unsafe fn glyph_set(ctx: &Ctx<'_>, gs: &ffi::_GlyphSet) -> GlyphSetInfo {
    // SAFETY: live glyph set; its hash table has hashSet->size slots.
    unsafe {
        // (fdepth is an index into the server's glyph depth table, not the depth.)
        let (format, depth) = if gs.format.is_null() {
            (0, 0)
        } else {
            ((*gs.format).id, (*gs.format).depth)
        };
        let mut glyphs = Vec::new();
        let table = gs.hash.table;
        let set = gs.hash.hashSet;
        if !table.is_null() && !set.is_null() {
            let size = (*set).size as usize;
            for r in std::slice::from_raw_parts(table, size) {
                // DeletedGlyph is ((GlyphPtr) 1).
                if r.glyph.is_null() || r.glyph as usize == 1 {
                    continue;
                }
                let info = (*r.glyph).info;
                let image = if ctx.flags & FLAG_GLYPH_IMAGES != 0 {
                    glyph_image(ctx, r.glyph, depth)
                } else {
                    Vec::new()
                };
                glyphs.push(Glyph {
                    id: r.signature,
                    width: info.width,
                    height: info.height,
                    x: info.x,
                    y: info.y,
                    x_off: info.xOff,
                    y_off: info.yOff,
                    image,
                });
            }
        }
        glyphs.sort_by_key(|g| g.id);
        GlyphSetInfo {
            format,
            depth,
            glyphs,
        }
    }
}
