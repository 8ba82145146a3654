//! Core-protocol resources: windows (attributes, cursor), GCs, fonts, cursors (their images),
//! colormaps (private cells), and pixmaps that live in a MIT-SHM segment. Server structs flow in,
//! `guievict-ext-proto` descriptions flow out.

use super::ctx::{clip_of, pixmap_id, Ctx};
use crate::ffi;
use crate::server::atom_name;
use guievict_ext_proto as proto;
use proto::*;

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

/// A window's attributes that core requests cannot read back: background and border (pixel or
/// pixmap) and its own cursor (not one inherited from its parent).
///
/// # Safety
/// `w` must be a live window (the value of a window resource) during the request.
pub(super) unsafe fn window(w: ffi::WindowPtr) -> WindowExtra {
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

/// Every component of a GC (the core protocol has no request to read one back).
///
/// # Safety
/// `g` must be a live GC of the requesting client.
pub(super) unsafe fn gc(ctx: &Ctx<'_>, g: &ffi::_GC) -> GcValues {
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

/// A font's name as the client opened it (recorded by `fonts`), else its FONT property.
///
/// # Safety
/// `f` must be the live font of resource `id`.
pub(super) unsafe fn font(ctx: &Ctx<'_>, id: u32, f: &ffi::_Font) -> FontInfo {
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

/// A cursor's image: colours, hotspot, and either its source/mask bitmaps or (ARGB cursors)
/// its pixels.
///
/// # Safety
/// `c` must be a live cursor of the requesting client.
pub(super) unsafe fn cursor(ctx: &Ctx<'_>, c: &ffi::_Cursor) -> CursorImage {
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

/// The colour of one colormap cell (shared cells point to a SHAREDCOLOR per channel).
///
/// # Safety
/// `e` must be an entry of a live colormap.
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

/// A colormap's visual and the cells the requesting client allocated (pixels, colours,
/// private or shared).
///
/// # Safety
/// `m` must be a live colormap of the requesting client.
pub(super) unsafe fn colormap(ctx: &Ctx<'_>, m: &ffi::_ColormapRec) -> ColormapInfo {
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

/// The client's segment holding pixmap `p`'s pixels (ShmCreatePixmap points the pixmap at
/// the segment's memory): (ShmSeg ID, offset), when the whole pixmap lies inside it.
pub(super) fn shm_pixmap(ctx: &Ctx<'_>, p: &ffi::_Pixmap) -> Option<(u32, u32)> {
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
