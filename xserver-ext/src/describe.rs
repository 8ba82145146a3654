//! Reads a resource's hidden state out of the server's own structures (layouts from bindgen) and
//! turns it into a `guievict-ext-proto` [`Detail`]. Server memory flows in through raw pointers
//! that are valid for the duration of one request; typed, owned values flow out.

use crate::dispatch::Item;
use crate::ffi;
use crate::server::{atom_name, find_atom, Api};
use guievict_ext_proto as proto;
use proto::*;
use std::collections::HashMap;

/// Server type name of a DOUBLE-BUFFER back-buffer name as a drawable (value: the back-buffer
/// pixmap, which the server created without an ID of its own).
const DBE_DRAWABLE: &str = "dbeDrawable";

/// What every description in one request shares.
pub struct Ctx<'a> {
    api: &'a Api,
    client: ffi::ClientPtr,
    client_index: usize,
    flags: u32,
    order: ByteOrder,
    /// FontPtr → the client's font ID (for GC fonts).
    font_ids: HashMap<usize, u32>,
    /// DOUBLE-BUFFER back-buffer pixmap → the client's back-buffer name (the server made the
    /// pixmap without an ID, so a picture on a back buffer names it by this).
    back_buffer_ids: HashMap<usize, u32>,
    font_atom: ffi::Atom,
    /// The client's MIT-SHM segments that look valid (protocol 1.5, `FLAG_SHM` only):
    /// (ShmSeg ID, server address, size).
    shm_segments: Vec<(u32, usize, usize)>,
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
        Self {
            shm_segments,
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

    fn screen_info(&self) -> &ffi::ScreenInfo {
        // SAFETY: screenInfo is a server global, initialised before any client connects.
        unsafe { &*self.api.f.screenInfo }
    }
}

fn pixmap_id(p: ffi::PixmapPtr) -> u32 {
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

fn clip_of(r: ffi::RegionPtr) -> Clip {
    if r.is_null() {
        Clip::None
    } else {
        Clip::Rectangles(region_rects(r))
    }
}

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
            _ => Detail::Other,
        }
    }
}

/// The cursor a window has through inheritance (wCursor).
unsafe fn effective_cursor(mut w: ffi::WindowPtr) -> ffi::CursorPtr {
    // SAFETY: walks live parent pointers up to the root.
    unsafe {
        if w.is_null() || (*w).cursorIsNone() != 0 {
            return std::ptr::null_mut();
        }
        while !w.is_null() {
            if !(*w).optional.is_null() {
                return (*(*w).optional).cursor;
            }
            w = (*w).parent;
        }
    }
    std::ptr::null_mut()
}

unsafe fn window(w: ffi::WindowPtr) -> WindowExtra {
    // SAFETY: live window (caller).
    let win = unsafe { &*w };
    // SAFETY: the union member read is the one backgroundState/borderIsPixel select.
    let background = unsafe {
        match win.backgroundState() {
            0 => BgKind::None,
            1 => BgKind::ParentRelative,
            2 => BgKind::Pixel(win.background.pixel as u32),
            _ => BgKind::Pixmap(pixmap_id(win.background.pixmap)),
        }
    };
    // SAFETY: as above.
    let border = unsafe {
        if win.borderIsPixel() != 0 {
            BorderKind::Pixel(win.border.pixel as u32)
        } else {
            BorderKind::Pixmap(pixmap_id(win.border.pixmap))
        }
    };
    // Own cursor: the window's effective cursor unless it is just the parent's.
    // SAFETY: live window tree.
    let cursor = unsafe {
        let own = effective_cursor(w);
        if own.is_null() || (!win.parent.is_null() && effective_cursor(win.parent) == own) {
            0
        } else {
            (*own).id as u32
        }
    };
    WindowExtra {
        background,
        border,
        cursor,
    }
}

unsafe fn gc(ctx: &Ctx<'_>, g: &ffi::_GC) -> GcValues {
    // SAFETY: live GC (caller); its screen pointer is live.
    let default_stipple = unsafe {
        if g.pScreen.is_null() {
            std::ptr::null_mut()
        } else {
            (*g.pScreen).defaultStipple
        }
    };
    let stipple = if g.stipple == default_stipple {
        0
    } else {
        pixmap_id(g.stipple)
    };
    // SAFETY: tileIsPixel selects the union member.
    let tile = unsafe {
        if g.tileIsPixel() != 0 {
            Tile::Pixel(g.tile.pixel as u32)
        } else {
            Tile::Pixmap(pixmap_id(g.tile.pixmap))
        }
    };
    let dashes = if g.dash.is_null() {
        Vec::new()
    } else {
        // SAFETY: the GC owns numInDashList dash bytes.
        unsafe { std::slice::from_raw_parts(g.dash, usize::from(g.numInDashList)) }.to_vec()
    };
    GcValues {
        depth: g.depth,
        function: g.alu,
        plane_mask: g.planemask,
        foreground: g.fgPixel,
        background: g.bgPixel,
        line_width: g.lineWidth,
        line_style: g.lineStyle() as u8,
        cap_style: g.capStyle() as u8,
        join_style: g.joinStyle() as u8,
        fill_style: g.fillStyle() as u8,
        fill_rule: g.fillRule() as u8,
        tile,
        stipple,
        ts_x_origin: g.patOrg.x,
        ts_y_origin: g.patOrg.y,
        font: ctx.font_ids.get(&(g.font as usize)).copied().unwrap_or(0),
        subwindow_mode: g.subWindowMode() as u8,
        graphics_exposures: g.graphicsExposures() != 0,
        clip_x_origin: g.clipOrg.x,
        clip_y_origin: g.clipOrg.y,
        clip: clip_of(g.clientClip),
        dash_offset: g.dashOffset,
        dashes,
        arc_mode: g.arcMode() as u8,
    }
}

unsafe fn font(ctx: &Ctx<'_>, id: u32, f: &ffi::_Font) -> FontInfo {
    if let Some(name) = crate::fonts::opened_name(id) {
        return FontInfo {
            name,
            from_property: false,
        };
    }
    let mut name = String::new();
    if ctx.font_atom != 0 && !f.info.props.is_null() && f.info.nprops > 0 {
        // SAFETY: the font owns nprops properties at props.
        let props = unsafe { std::slice::from_raw_parts(f.info.props, f.info.nprops as usize) };
        if let Some(p) = props.iter().find(|p| p.name as ffi::Atom == ctx.font_atom) {
            name = atom_name(ctx.api, p.value as ffi::Atom).unwrap_or_default();
        }
    }
    FontInfo {
        name,
        from_property: true,
    }
}

/// Copy a server bitmap (scanline pad and bit order from screenInfo) into the wire layout
/// (4-byte rows, LSBFirst).
fn bitmap_to_wire(ctx: &Ctx<'_>, src: *const u8, width: u16, height: u16) -> Vec<u8> {
    let si = ctx.screen_info();
    let pad_bits = si.bitmapScanlinePad.max(8) as usize;
    let server_stride = (usize::from(width)).div_ceil(pad_bits) * (pad_bits / 8);
    let stride = bitmap_stride(width);
    let mut out = vec![0u8; stride * usize::from(height)];
    if src.is_null() {
        return out;
    }
    // SAFETY: the server bitmap holds height rows of server_stride bytes.
    let data = unsafe { std::slice::from_raw_parts(src, server_stride * usize::from(height)) };
    let msb = si.bitmapBitOrder == 1;
    let n = stride.min(server_stride);
    for y in 0..usize::from(height) {
        let s = &data[y * server_stride..y * server_stride + n];
        let d = &mut out[y * stride..y * stride + n];
        for (o, i) in d.iter_mut().zip(s) {
            *o = if msb { i.reverse_bits() } else { *i };
        }
    }
    out
}

unsafe fn cursor(ctx: &Ctx<'_>, c: &ffi::_Cursor) -> CursorImage {
    let mut out = CursorImage {
        width: 0,
        height: 0,
        x_hot: 0,
        y_hot: 0,
        fore_rgb: [c.foreRed, c.foreGreen, c.foreBlue],
        back_rgb: [c.backRed, c.backGreen, c.backBlue],
        name: c.name,
        image: CursorBits::None,
    };
    if c.bits.is_null() {
        return out;
    }
    // SAFETY: live cursor bits.
    let b = unsafe { &*c.bits };
    out.width = b.width;
    out.height = b.height;
    out.x_hot = b.xhot;
    out.y_hot = b.yhot;
    if ctx.flags & FLAG_CURSOR_IMAGES != 0 {
        out.image = if !b.argb.is_null() {
            let n = usize::from(b.width) * usize::from(b.height);
            // SAFETY: ARGB cursors hold width*height pixels.
            CursorBits::Argb(unsafe { std::slice::from_raw_parts(b.argb, n) }.to_vec())
        } else {
            CursorBits::Bitmap {
                source: bitmap_to_wire(ctx, b.source, b.width, b.height),
                mask: bitmap_to_wire(ctx, b.mask, b.width, b.height),
            }
        };
    }
    out
}

const ALLOC_PRIVATE: i16 = -1;

unsafe fn entry_rgb(e: &ffi::Entry) -> (u16, u16, u16) {
    // SAFETY: fShared selects the union member; shared colours point to live SHAREDCOLORs.
    unsafe {
        if e.fShared != 0 {
            let s = e.co.shco;
            let get = |p: *mut ffi::SHAREDCOLOR| if p.is_null() { 0 } else { (*p).color };
            (get(s.red), get(s.green), get(s.blue))
        } else {
            let l = e.co.local;
            (l.red, l.green, l.blue)
        }
    }
}

unsafe fn colormap(ctx: &Ctx<'_>, m: &ffi::_ColormapRec) -> ColormapInfo {
    let (visual, entries, offs) = if m.pVisual.is_null() {
        (0, 0, [0, 0, 0])
    } else {
        // SAFETY: live visual.
        let v = unsafe { &*m.pVisual };
        (
            v.vid,
            v.ColormapEntries.max(0) as usize,
            [v.offsetRed, v.offsetGreen, v.offsetBlue],
        )
    };
    let class = (m.class & 7) as u8;
    let mut cells = Vec::new();
    if ctx.flags & FLAG_COLORMAP_CELLS != 0 && ctx.client_index < 512 {
        let idx = ctx.client_index;
        // (pixels, counts, entries, flag bit, shift) per channel.
        let chans: &[(*mut *mut ffi::Pixel, *mut i32, *mut ffi::Entry, u8, i32)] = match class {
            1 | 3 => &[(m.clientPixelsRed, m.numPixelsRed, m.red, 7, 0)],
            5 => &[
                (m.clientPixelsRed, m.numPixelsRed, m.red, 1, offs[0]),
                (m.clientPixelsGreen, m.numPixelsGreen, m.green, 2, offs[1]),
                (m.clientPixelsBlue, m.numPixelsBlue, m.blue, 4, offs[2]),
            ],
            _ => &[],
        };
        for &(pix, num, ents, flag, shift) in chans {
            if pix.is_null() || num.is_null() || ents.is_null() {
                continue;
            }
            // SAFETY: the colormap's per-client arrays have MAXCLIENTS entries; idx < 512.
            let (list, n) = unsafe { (*pix.add(idx), *num.add(idx)) };
            if list.is_null() || n <= 0 {
                continue;
            }
            // SAFETY: the client's pixel list holds n entries.
            let list = unsafe { std::slice::from_raw_parts(list, n as usize) };
            for &p in list {
                let p = p as usize;
                if p >= entries {
                    continue;
                }
                // SAFETY: p < ColormapEntries, the length of the entry array.
                let e = unsafe { &*ents.add(p) };
                // SAFETY: live entry.
                let (r, g, b) = unsafe { entry_rgb(e) };
                cells.push(ColorCell {
                    pixel: (p as u32) << shift.clamp(0, 31),
                    red: r,
                    green: g,
                    blue: b,
                    flags: flag,
                    writable: e.refcnt == ALLOC_PRIVATE,
                });
            }
        }
    }
    ColormapInfo {
        visual,
        class,
        cells,
    }
}

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

unsafe fn picture(ctx: &Ctx<'_>, p: &ffi::_Picture) -> PictureInfo {
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
        }
    }
}

const Z_PIXMAP: i32 = 2;

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

unsafe fn glyph_set(ctx: &Ctx<'_>, gs: &ffi::_GlyphSet) -> GlyphSetInfo {
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

/// The record `XFixesSelectSelectionInput` keeps per (client, selection, window): xfixes/select.c
/// `SelectionEventRec` of xorg-server 21.1.x (21.1.7 checked; it is private to that file, so no
/// installed header declares it). Later servers (master, 2024) replaced `selection` with a
/// `Selection *`; the release check at load time keeps this layout to the servers it matches,
/// and [`selection_input`] validates every field it follows before trusting it.
#[repr(C)]
struct SelectionEventRec {
    next: *mut SelectionEventRec,
    selection: ffi::Atom,
    event_mask: u32,
    p_client: ffi::ClientPtr,
    p_window: ffi::WindowPtr,
    client_resource: ffi::XID,
}

/// XFIXES selection event mask bits (SetSelectionOwner | SelectionWindowDestroy |
/// SelectionClientClose).
const SELECTION_ALL_EVENTS: u32 = 7;

/// One selection-input record of the requesting client, or `Other` when the record does not
/// look like one (a layout mismatch must never produce a wrong answer or a wild read beyond
/// the record's own fields and a window lookup by ID).
///
/// # Safety
/// `it.value` must be the value of a live `XFixesSelectionClient` resource.
unsafe fn selection_input(ctx: &Ctx<'_>, it: &Item) -> Detail {
    // SAFETY: the resource value is the malloc'ed SelectionEventRec (caller).
    let e = unsafe { &*(it.value as *const SelectionEventRec) };
    if e.client_resource != it.id
        || e.p_client != ctx.client
        || e.p_window.is_null()
        || e.event_mask & !SELECTION_ALL_EVENTS != 0
        || e.selection == 0
    {
        return Detail::Other;
    }
    // The window pointer is live by the server's invariant: the record is freed together with
    // its window (SelectionFreeWindow). It is still cross-checked: looking its ID up must find
    // the very same window, else the record is not reported.
    // SAFETY: p_window was checked non-NULL and is live while the record exists (above).
    let wid = unsafe { (*e.p_window).drawable.id };
    let mut found: *mut std::ffi::c_void = std::ptr::null_mut();
    // SAFETY: serverClient is a server global (a pointer to the server's own client); the
    // lookup only reads the resource tables.
    let rc = unsafe {
        let server_client = *ctx.api.f.serverClient;
        (ctx.api.f.dixLookupResourceByType)(
            &mut found,
            wid,
            ffi::RT_WINDOW,
            server_client,
            ffi::DixGetAttrAccess,
        )
    };
    if rc != 0 || found != e.p_window as *mut std::ffi::c_void {
        return Detail::Other;
    }
    Detail::SelectionInput(SelectionInputInfo {
        window: wid,
        selection: e.selection,
        event_mask: e.event_mask,
    })
}

/// The record `DamageCreate` keeps per DAMAGE object: damageext/damageextint.h `DamageExtRec`
/// of xorg-server (the same since 1.x; 21.1.7 checked). The header is not installed, so it is
/// declared here; [`damage`] validates every field it follows before trusting it.
#[repr(C)]
struct DamageExtRec {
    p_damage: *mut std::ffi::c_void,
    p_drawable: ffi::DrawablePtr,
    /// `DamageReportLevel`, a C enum (int).
    level: std::ffi::c_int,
    p_client: ffi::ClientPtr,
    id: ffi::XID,
    drawable: ffi::XID,
}

/// `DRAWABLE_WINDOW` / `DRAWABLE_PIXMAP` of pixmap.h (DrawableRec.type).
const DRAWABLE_WINDOW: u8 = 0;
const DRAWABLE_PIXMAP: u8 = 1;

/// One DAMAGE object of the requesting client: the drawable it watches and its report level,
/// or `Other` when the record does not look like one.
///
/// # Safety
/// `it.value` must be the value of a live `DamageExt` resource.
unsafe fn damage(ctx: &Ctx<'_>, it: &Item) -> Detail {
    // SAFETY: the resource value is the malloc'ed DamageExtRec (caller).
    let e = unsafe { &*(it.value as *const DamageExtRec) };
    if e.id != it.id || e.p_client != ctx.client || e.p_drawable.is_null() {
        return Detail::Other;
    }
    let Ok(level @ 0..=3) = u8::try_from(e.level) else {
        return Detail::Other;
    };
    // The drawable pointer is live by the server's invariant (the object is freed with its
    // drawable). It is still cross-checked: looking the ID up as a window or pixmap must find
    // the very same drawable.
    // SAFETY: p_drawable was checked non-NULL and is live while the object exists (above).
    let (id, kind) = unsafe { ((*e.p_drawable).id, (*e.p_drawable).type_) };
    let rtype = match kind {
        DRAWABLE_WINDOW => ffi::RT_WINDOW,
        DRAWABLE_PIXMAP => ffi::RT_PIXMAP,
        _ => return Detail::Other,
    };
    if id != e.drawable {
        return Detail::Other;
    }
    let mut found: *mut std::ffi::c_void = std::ptr::null_mut();
    // SAFETY: serverClient is a server global; the lookup only reads the resource tables.
    let rc = unsafe {
        let server_client = *ctx.api.f.serverClient;
        (ctx.api.f.dixLookupResourceByType)(
            &mut found,
            id,
            rtype,
            server_client,
            ffi::DixGetAttrAccess,
        )
    };
    if rc != 0 || found != e.p_drawable as *mut std::ffi::c_void {
        return Detail::Other;
    }
    Detail::Damage(DamageInfo {
        drawable: id,
        level,
    })
}

/// The record MIT-SHM keeps per attached segment: `ShmDescRec` of xorg-server's shmint.h, as
/// built with `SHM_FD_PASSING` (Debian's servers; the installed header does not say, so the
/// layout is declared here). [`shm_desc`] checks the fields it follows before trusting them.
#[repr(C)]
struct ShmDescRec {
    next: *mut ShmDescRec,
    shmid: std::ffi::c_int,
    refcnt: std::ffi::c_int,
    addr: *mut std::ffi::c_char,
    writable: std::ffi::c_int,
    size: std::ffi::c_ulong,
    is_fd: std::ffi::c_int,
}

/// What a segment record says, once checked.
struct ShmDesc {
    shmid: Option<u32>,
    addr: usize,
    size: usize,
    writable: bool,
}

/// Read a ShmSeg resource's `ShmDescRec`; `None` when it does not look like one (booleans not
/// 0/1, no reference, no memory, a System V segment without an ID, 4 GiB or more).
///
/// # Safety
/// `value` must be the value of a live `ShmSeg` resource.
unsafe fn shm_desc(value: *mut std::ffi::c_void) -> Option<ShmDesc> {
    if value.is_null() {
        return None;
    }
    // SAFETY: the resource value is the malloc'ed ShmDescRec (caller).
    let d = unsafe { &*(value as *const ShmDescRec) };
    if !(0..=1).contains(&d.is_fd)
        || !(0..=1).contains(&d.writable)
        || d.refcnt < 1
        || d.addr.is_null()
        || d.size == 0
        || u32::try_from(d.size).is_err()
        || (d.is_fd == 0 && d.shmid < 0)
    {
        return None;
    }
    Some(ShmDesc {
        shmid: (d.is_fd == 0).then_some(d.shmid as u32),
        addr: d.addr as usize,
        size: d.size as usize,
        writable: d.writable == 1,
    })
}

/// The client's segment holding pixmap `p`'s pixels (ShmCreatePixmap points the pixmap at
/// the segment's memory): (ShmSeg ID, offset), when the whole pixmap lies inside it.
fn shm_pixmap(ctx: &Ctx<'_>, p: &ffi::_Pixmap) -> Option<(u32, u32)> {
    if ctx.shm_segments.is_empty() {
        return None;
    }
    // SAFETY: every pixmap's devPrivate holds its pixel pointer (fb/shadow pixmaps).
    let ptr = unsafe { p.devPrivate.ptr } as usize;
    let stride = usize::try_from(p.devKind).ok()?;
    let bytes = stride.checked_mul(usize::from(p.drawable.height))?;
    ctx.shm_segments.iter().find_map(|&(id, addr, size)| {
        let off = ptr.checked_sub(addr)?;
        (off < size && off.checked_add(bytes)? <= size).then_some((id, off as u32))
    })
}

/// `_XkbClientInitialized` / `_XkbClientIsAncient` of xkbsrv.h (ClientRec.xkbClientFlags).
const XKB_CLIENT_INITIALISED: u8 = 1 << 7;
const XKB_CLIENT_IS_ANCIENT: u8 = 1 << 6;

/// The client-wide XKEYBOARD state of the requesting client (ClientRec fields that
/// `XkbUseExtension` and `XkbSelectEvents` set: MapNotify and NewKeyboardNotify details are kept
/// per client, not per device).
///
/// # Safety
/// `client` must be live.
pub unsafe fn xkb_client_state(client: ffi::ClientPtr) -> XkbClientState {
    // SAFETY: live client (caller).
    let c = unsafe { &*client };
    let mut flags = 0;
    if c.xkbClientFlags & XKB_CLIENT_INITIALISED != 0 {
        flags |= XkbClientState::INITIALISED;
    }
    if c.xkbClientFlags & XKB_CLIENT_IS_ANCIENT != 0 {
        flags |= XkbClientState::ANCIENT;
    }
    XkbClientState {
        map_notify: c.mapNotifyMask,
        new_keyboard_notify: c.newKeyboardNotifyMask,
        flags,
    }
}

/// Longest device or interest list walked (a server has a few dozen devices; a corrupt list
/// must not loop forever).
const MAX_LIST_WALK: usize = 4096;

/// Whether `dev` is one of the server's devices (on or off), found by walking `inputInfo`'s
/// lists: a resource value is only followed when it is a device the server knows.
///
/// # Safety
/// Must run on the server's dispatch thread (the device lists are not locked).
unsafe fn known_device(api: &Api, dev: ffi::DeviceIntPtr) -> bool {
    // SAFETY: inputInfo is a server global; its lists link live devices.
    unsafe {
        let info = &*api.f.inputInfo;
        for mut d in [info.devices, info.off_devices] {
            let mut n = 0;
            while !d.is_null() && n < MAX_LIST_WALK {
                if d == dev {
                    return true;
                }
                d = (*d).next;
                n += 1;
            }
        }
    }
    false
}

/// One XKEYBOARD interest record of the requesting client: the resource's value is the device
/// (`ProcXkbSelectEvents` adds `AddResource(id, RT_XKBCLIENT, dev)`), and the device's
/// `xkb_interest` list holds the record whose client and resource ID are ours. `Other` when
/// the device is unknown or no such record is on its list.
///
/// # Safety
/// `it.value` must be the value of a live `XkbClient` resource of the requesting client.
unsafe fn xkb_interest(ctx: &Ctx<'_>, it: &Item) -> Detail {
    let dev = it.value as ffi::DeviceIntPtr;
    // SAFETY: dispatch thread (caller).
    if !unsafe { known_device(ctx.api, dev) } {
        return Detail::Other;
    }
    // SAFETY: dev is a live device (checked above); its interest list holds live records.
    unsafe {
        let d = &*dev;
        let mut i = d.xkb_interest;
        let mut n = 0;
        while !i.is_null() && n < MAX_LIST_WALK {
            let rec = &*i;
            if rec.client == ctx.client && rec.resource == it.id {
                let device_name = if d.name.is_null() {
                    String::new()
                } else {
                    std::ffi::CStr::from_ptr(d.name)
                        .to_string_lossy()
                        .into_owned()
                };
                return Detail::XkbInterest(XkbInterestInfo {
                    device: u16::try_from(d.id).unwrap_or(0),
                    device_name,
                    state: rec.stateNotifyMask,
                    names: rec.namesNotifyMask,
                    access_x: rec.accessXNotifyMask,
                    ext_dev: rec.extDevNotifyMask,
                    controls: rec.ctrlsNotifyMask,
                    indicator_state: rec.iStateNotifyMask,
                    indicator_map: rec.iMapNotifyMask,
                    compat_map: rec.compatNotifyMask,
                    bell: rec.bellNotifyMask,
                    action_message: rec.actionMessageMask,
                    auto_ctrls: rec.autoCtrls,
                    auto_ctrl_values: rec.autoCtrlValues,
                });
            }
            i = rec.next;
            n += 1;
        }
    }
    Detail::Other
}

/// Whether looking `id` up as a window finds exactly `w` (a pointer is only followed when the
/// server's own table agrees that it is a live window).
///
/// # Safety
/// Must run on the server's dispatch thread; `w` is only compared, never dereferenced.
unsafe fn window_checks_out(api: &Api, id: u32, w: ffi::WindowPtr) -> bool {
    let mut found: *mut std::ffi::c_void = std::ptr::null_mut();
    // SAFETY: serverClient is a server global; the lookup only reads the resource tables.
    let rc = unsafe {
        let server_client = *api.f.serverClient;
        (api.f.dixLookupResourceByType)(
            &mut found,
            id,
            ffi::RT_WINDOW,
            server_client,
            ffi::DixGetAttrAccess,
        )
    };
    rc == 0 && found == w as *mut std::ffi::c_void
}

/// `MasksPerDetailMask` of dix/grabs.c: a grab's exception mask is 8 `Mask` words (256 bits).
const MASKS_PER_DETAIL_MASK: usize = 8;

/// A grab's `DetailRec.pMask` (the keys/buttons or modifier combinations an Any grab still
/// covers after partial ungrabs) as 32 bytes, bit n in byte n/8 (LSB first); `None` when the
/// grab has no exceptions.
///
/// # Safety
/// `m` must be NULL or point to a live mask of [`MASKS_PER_DETAIL_MASK`] words.
unsafe fn detail_mask(m: *const ffi::Mask) -> Option<Vec<u8>> {
    if m.is_null() {
        return None;
    }
    // SAFETY: the server allocates exactly MasksPerDetailMask words (caller).
    let words = unsafe { std::slice::from_raw_parts(m, MASKS_PER_DETAIL_MASK) };
    Some(words.iter().flat_map(|w| w.to_le_bytes()).collect())
}

/// One passive grab of the requesting client: the resource's value is the `GrabRec`
/// (`AddPassiveGrabToList` adds `AddResource(grab->resource, RT_PASSIVEGRAB, grab)` with a
/// `FakeClientID` of the grabbing client). Reported only if it checks out: the record's resource
/// ID is the one it is filed under, its device is one the server knows, and its grab window (and
/// confine-to window) are the live windows their IDs name; otherwise `Other`.
///
/// # Safety
/// `it.value` must be the value of a live `PASSIVE GRAB` resource of the requesting client.
unsafe fn passive_grab(ctx: &Ctx<'_>, it: &Item) -> Detail {
    // SAFETY: the resource value is the grab record (caller).
    let g = unsafe { &*(it.value as *const ffi::_GrabRec) };
    if g.resource != it.id || g.window.is_null() {
        return Detail::Other;
    }
    // SAFETY: dispatch thread (caller).
    if g.device.is_null() || !unsafe { known_device(ctx.api, g.device) } {
        return Detail::Other;
    }
    // SAFETY: the window pointer is held by the grab while it is on the window's list; it is
    // cross-checked against the server's resource table before its ID is trusted.
    let window = unsafe { (*g.window).drawable.id };
    // SAFETY: dispatch thread.
    if !unsafe { window_checks_out(ctx.api, window, g.window) } {
        return Detail::Other;
    }
    let confine_to = if g.confineTo.is_null() {
        0
    } else {
        // SAFETY: as for the grab window.
        let id = unsafe { (*g.confineTo).drawable.id };
        // SAFETY: dispatch thread.
        if !unsafe { window_checks_out(ctx.api, id, g.confineTo) } {
            return Detail::Other;
        }
        id
    };
    let cursor = if g.cursor.is_null() {
        0
    } else {
        // SAFETY: the grab holds a reference on its cursor (CreateGrab: RefCursor).
        unsafe { (*g.cursor).id }
    };
    // SAFETY: known device (checked above).
    let device = u16::try_from(unsafe { (*g.device).id }).unwrap_or(0);
    Detail::PassiveGrab(PassiveGrabInfo {
        window,
        confine_to,
        cursor,
        event_mask: g.eventMask,
        modifiers: g.modifiersDetail.exact,
        detail: u16::try_from(g.detail.exact).unwrap_or(u16::MAX),
        device,
        level: g.grabtype as u8,
        event_type: g.type_,
        owner_events: g.ownerEvents() != 0,
        pointer_mode: g.pointerMode() as u8,
        keyboard_mode: g.keyboardMode() as u8,
        // SAFETY: pMask is NULL or the MasksPerDetailMask words DeleteDetailFromMask made.
        modifier_mask: unsafe { detail_mask(g.modifiersDetail.pMask) },
        // SAFETY: as above.
        detail_mask: unsafe { detail_mask(g.detail.pMask) },
    })
}

/// `RESOURCE_AND_CLIENT_COUNT` of resource.h: client bits and resource bits share 29 bits.
const RESOURCE_AND_CLIENT_COUNT: u32 = 29;

/// Whether `id` carries the client bits of `client` (`CLIENT_BITS(id) == clientAsMask`).
///
/// # Safety
/// `client` must be live.
unsafe fn owned_by(api: &Api, id: ffi::XID, client: ffi::ClientPtr) -> bool {
    // SAFETY: a server function without preconditions.
    let bits = unsafe { (api.f.ResourceClientBits)() };
    if bits == 0 || bits >= RESOURCE_AND_CLIENT_COUNT {
        return false;
    }
    let mask = ((1u32 << bits) - 1) << (RESOURCE_AND_CLIENT_COUNT - bits);
    // SAFETY: live client (caller).
    let own = unsafe { (*client).clientAsMask };
    id & mask == own & mask
}

/// The active grabs the client holds on the core pointer and keyboard (reply header byte 29).
///
/// # Safety
/// `client` must be live; must run on the server's dispatch thread.
pub unsafe fn active_grabs(api: &Api, client: ffi::ClientPtr) -> u8 {
    let mut out = 0;
    // SAFETY: inputInfo is a server global; its core devices and their grab records are live
    // on the dispatch thread.
    unsafe {
        let info = &*api.f.inputInfo;
        for (dev, bit) in [
            (info.pointer, ACTIVE_GRAB_POINTER),
            (info.keyboard, ACTIVE_GRAB_KEYBOARD),
        ] {
            if dev.is_null() {
                continue;
            }
            let g = &(*dev).deviceGrab;
            if g.grab.is_null() || !owned_by(api, (*g.grab).resource, client) {
                continue;
            }
            out |= bit;
            if bit == ACTIVE_GRAB_POINTER && (g.implicitGrab != 0 || g.fromPassiveGrab != 0) {
                out |= ACTIVE_GRAB_POINTER_IMPLICIT;
            }
        }
    }
    out
}
