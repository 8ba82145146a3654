//! zdtm-style scenario client for the winsession tests: builds a GUI with every resource kind and
//! unusual values on its own connection, draws into it (as an app would on Expose), and records
//! what it did as capture hints (what guimux tracks when the GUIEVICT extension is absent).
#![allow(dead_code)]

use anyhow::{Context, Result};
use std::collections::HashMap;
use winsession::{Background, Border, Clip, GcValues, GlyphSource, Hints};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::wrapper::ConnectionExt as _;

/// IDs of the scenario's resources (on one server).
#[derive(Clone, Debug, Default)]
pub struct Ids {
    pub top1: u32,
    pub top2: u32,
    pub top3_unmapped: u32,
    pub child1: u32,
    pub child2: u32,
    pub input_only: u32,
    pub pix: u32,
    pub bitmap: u32,
    pub big: u32,
    pub gc_dash: u32,
    pub gc_text: u32,
    pub gc_stipple: u32,
    pub gc_clip: u32,
    pub font_fixed: u32,
    pub font_xlfd: u32,
    pub cursor: u32,
    pub colormap: Option<u32>,
    /// Top-level windows that are mapped (for screenshots).
    pub mapped_toplevels: Vec<u32>,
}

impl Ids {
    /// The same scenario on another server, through an old→new map.
    pub fn translated(&self, m: &HashMap<u32, u32>) -> Ids {
        let t = |v: u32| *m.get(&v).unwrap_or(&v);
        Ids {
            top1: t(self.top1),
            top2: t(self.top2),
            top3_unmapped: t(self.top3_unmapped),
            child1: t(self.child1),
            child2: t(self.child2),
            input_only: t(self.input_only),
            pix: t(self.pix),
            bitmap: t(self.bitmap),
            big: t(self.big),
            gc_dash: t(self.gc_dash),
            gc_text: t(self.gc_text),
            gc_stipple: t(self.gc_stipple),
            gc_clip: t(self.gc_clip),
            font_fixed: t(self.font_fixed),
            font_xlfd: t(self.font_xlfd),
            cursor: t(self.cursor),
            colormap: self.colormap.map(t),
            mapped_toplevels: self.mapped_toplevels.iter().map(|&v| t(v)).collect(),
        }
    }
}

pub const XLFD: &str = "-misc-fixed-bold-r-normal--13-120-75-75-c-80-iso8859-1";

fn atom(conn: &impl Connection, name: &str) -> Result<u32> {
    Ok(conn.intern_atom(false, name.as_bytes())?.reply()?.atom)
}

/// Build the scenario on `conn`; `font2` is the second font's name (an XLFD). Returns the IDs
/// and the hints a request tracker would have recorded.
pub fn build(conn: &impl Connection, font2: &str) -> Result<(Ids, Hints)> {
    let screen = &conn.setup().roots[0];
    let root = screen.root;
    let depth = screen.root_depth;
    let mut h = Hints::default();
    let mut ids = Ids::default();
    let id = || conn.generate_id();

    // Fonts.
    ids.font_fixed = id()?;
    conn.open_font(ids.font_fixed, b"fixed")?;
    h.font_names.insert(ids.font_fixed, "fixed".into());
    ids.font_xlfd = id()?;
    conn.open_font(ids.font_xlfd, font2.as_bytes())?
        .check()
        .with_context(|| format!("opening {font2}"))?;
    h.font_names.insert(ids.font_xlfd, font2.into());

    // Pixmaps with contents.
    ids.pix = id()?;
    conn.create_pixmap(depth, ids.pix, root, 64, 48)?;
    ids.bitmap = id()?;
    conn.create_pixmap(1, ids.bitmap, root, 16, 16)?;
    ids.big = id()?;
    conn.create_pixmap(depth, ids.big, root, 300, 200)?;
    let tmp = id()?;
    conn.create_gc(
        tmp,
        ids.pix,
        &xproto::CreateGCAux::new().foreground(0x20_40_60),
    )?;
    conn.poly_fill_rectangle(
        ids.pix,
        tmp,
        &[xproto::Rectangle {
            x: 0,
            y: 0,
            width: 64,
            height: 48,
        }],
    )?;
    conn.change_gc(
        tmp,
        &xproto::ChangeGCAux::new()
            .foreground(0xf0_e0_10)
            .line_width(2),
    )?;
    conn.poly_line(
        xproto::CoordMode::ORIGIN,
        ids.pix,
        tmp,
        &[
            xproto::Point { x: 0, y: 0 },
            xproto::Point { x: 63, y: 47 },
            xproto::Point { x: 63, y: 0 },
        ],
    )?;
    conn.poly_fill_arc(
        ids.pix,
        tmp,
        &[xproto::Arc {
            x: 8,
            y: 8,
            width: 30,
            height: 20,
            angle1: 0,
            angle2: 360 * 64,
        }],
    )?;
    for y in 0..200i16 {
        conn.change_gc(
            tmp,
            &xproto::ChangeGCAux::new().foreground(0x010203 * (y as u32 % 80)),
        )?;
        conn.poly_segment(
            ids.big,
            tmp,
            &[xproto::Segment {
                x1: 0,
                y1: y,
                x2: 299,
                y2: y,
            }],
        )?;
    }
    conn.free_gc(tmp)?;
    let tmp1 = id()?;
    conn.create_gc(tmp1, ids.bitmap, &xproto::CreateGCAux::new().foreground(0))?;
    conn.poly_fill_rectangle(
        ids.bitmap,
        tmp1,
        &[xproto::Rectangle {
            x: 0,
            y: 0,
            width: 16,
            height: 16,
        }],
    )?;
    conn.change_gc(tmp1, &xproto::ChangeGCAux::new().foreground(1))?;
    let checker: Vec<_> = (0..8)
        .flat_map(|i| {
            (0..8)
                .filter(move |j| (i + j) % 2 == 0)
                .map(move |j| xproto::Rectangle {
                    x: i * 2,
                    y: j * 2,
                    width: 2,
                    height: 2,
                })
        })
        .collect();
    conn.poly_fill_rectangle(ids.bitmap, tmp1, &checker)?;
    conn.free_gc(tmp1)?;

    // GCs with unusual values.
    let dash = GcValues {
        function: 3,
        foreground: 0xab_cd_ef,
        background: 0x12_34_56,
        line_width: 3,
        line_style: 2, // DoubleDash
        cap_style: 2,  // Round
        join_style: 2, // Bevel
        dashes: vec![5, 2, 1],
        dash_offset: 1,
        graphics_exposures: false,
        ..Default::default()
    };
    ids.gc_dash = id()?;
    conn.create_gc(
        ids.gc_dash,
        root,
        &xproto::CreateGCAux::new()
            .foreground(dash.foreground)
            .background(dash.background)
            .line_width(3)
            .line_style(xproto::LineStyle::DOUBLE_DASH)
            .cap_style(xproto::CapStyle::ROUND)
            .join_style(xproto::JoinStyle::BEVEL)
            .graphics_exposures(0),
    )?;
    conn.set_dashes(ids.gc_dash, 1, &[5, 2, 1])?;
    h.gcs.insert(ids.gc_dash, (depth, dash));
    let text = GcValues {
        foreground: 0xff_ff_00,
        background: 0x00_00_80,
        font: ids.font_xlfd,
        ..Default::default()
    };
    ids.gc_text = id()?;
    conn.create_gc(
        ids.gc_text,
        root,
        &xproto::CreateGCAux::new()
            .foreground(text.foreground)
            .background(text.background)
            .font(ids.font_xlfd),
    )?;
    h.gcs.insert(ids.gc_text, (depth, text));
    let stip = GcValues {
        foreground: 0x00_ff_80,
        background: 0x80_00_40,
        fill_style: 3, // OpaqueStippled
        stipple: ids.bitmap,
        ts_x: 3,
        ts_y: 5,
        function: 3,
        plane_mask: 0x00ff_ffff,
        ..Default::default()
    };
    ids.gc_stipple = id()?;
    conn.create_gc(
        ids.gc_stipple,
        root,
        &xproto::CreateGCAux::new()
            .foreground(stip.foreground)
            .background(stip.background)
            .fill_style(xproto::FillStyle::OPAQUE_STIPPLED)
            .stipple(ids.bitmap)
            .tile_stipple_x_origin(3)
            .tile_stipple_y_origin(5)
            .plane_mask(0x00ff_ffff),
    )?;
    h.gcs.insert(ids.gc_stipple, (depth, stip));
    let clip = GcValues {
        foreground: 0xc0_10_10,
        clip_x: 4,
        clip_y: 6,
        clip: Clip::Rectangles {
            ordering: 0,
            rects: vec![(0, 0, 20, 20), (30, 10, 15, 40)],
        },
        ..Default::default()
    };
    ids.gc_clip = id()?;
    conn.create_gc(
        ids.gc_clip,
        root,
        &xproto::CreateGCAux::new().foreground(clip.foreground),
    )?;
    conn.set_clip_rectangles(
        xproto::ClipOrdering::UNSORTED,
        ids.gc_clip,
        4,
        6,
        &[
            xproto::Rectangle {
                x: 0,
                y: 0,
                width: 20,
                height: 20,
            },
            xproto::Rectangle {
                x: 30,
                y: 10,
                width: 15,
                height: 40,
            },
        ],
    )?;
    h.gcs.insert(ids.gc_clip, (depth, clip));

    // Glyph cursor.
    let cf = id()?;
    conn.open_font(cf, b"cursor")?;
    ids.cursor = id()?;
    conn.create_glyph_cursor(ids.cursor, cf, cf, 58, 59, 0xffff, 0, 0, 0, 0, 0xffff)?;
    conn.close_font(cf)?;
    h.glyph_cursors.insert(
        ids.cursor,
        GlyphSource {
            font: "cursor".into(),
            source_char: 58,
            mask_font: "cursor".into(),
            mask_char: 59,
            fore: [0xffff, 0, 0],
            back: [0, 0, 0xffff],
        },
    );

    // Colormap on a non-default visual (DirectColor), every cell written.
    let dc = screen
        .allowed_depths
        .iter()
        .filter(|d| d.depth == depth)
        .flat_map(|d| d.visuals.iter())
        .find(|v| v.class == xproto::VisualClass::DIRECT_COLOR)
        .cloned();
    if let Some(v) = &dc {
        let cm = id()?;
        conn.create_colormap(xproto::ColormapAlloc::ALL, cm, root, v.visual_id)?;
        let sh = |m: u32| m.trailing_zeros();
        let items: Vec<_> = (0..u32::from(v.colormap_entries))
            .map(|i| xproto::Coloritem {
                pixel: (i << sh(v.red_mask)) | (i << sh(v.green_mask)) | (i << sh(v.blue_mask)),
                red: ((255 - i) * 257) as u16,
                green: ((i * 3 % 256) * 257) as u16,
                blue: (i * 257) as u16,
                flags: xproto::ColorFlag::RED | xproto::ColorFlag::GREEN | xproto::ColorFlag::BLUE,
            })
            .collect();
        conn.store_colors(cm, &items)?;
        h.colormaps.insert(cm, (v.visual_id, true));
        ids.colormap = Some(cm);
    }

    // Windows.
    let ev = xproto::EventMask::EXPOSURE
        | xproto::EventMask::KEY_PRESS
        | xproto::EventMask::STRUCTURE_NOTIFY;
    ids.top1 = id()?;
    conn.create_window(
        depth,
        ids.top1,
        root,
        10,
        20,
        300,
        200,
        3,
        xproto::WindowClass::INPUT_OUTPUT,
        0,
        &xproto::CreateWindowAux::new()
            .background_pixel(0x33_66_99)
            .border_pixel(0xff_00_ff)
            .event_mask(ev)
            .cursor(ids.cursor)
            .bit_gravity(xproto::Gravity::NORTH_WEST),
    )?;
    h.backgrounds
        .insert(ids.top1, Background::Pixel(0x33_66_99));
    h.borders.insert(ids.top1, Border::Pixel(0xff_00_ff));
    h.window_cursors.insert(ids.top1, ids.cursor);
    ids.child1 = id()?;
    conn.create_window(
        depth,
        ids.child1,
        ids.top1,
        10,
        10,
        100,
        80,
        1,
        xproto::WindowClass::INPUT_OUTPUT,
        0,
        &xproto::CreateWindowAux::new()
            .background_pixel(0xff_88_00)
            .border_pixel(0)
            .event_mask(xproto::EventMask::BUTTON_PRESS | xproto::EventMask::EXPOSURE)
            .do_not_propogate_mask(xproto::EventMask::KEY_PRESS)
            .win_gravity(xproto::Gravity::SOUTH_EAST),
    )?;
    h.backgrounds
        .insert(ids.child1, Background::Pixel(0xff_88_00));
    h.borders.insert(ids.child1, Border::Pixel(0));
    h.window_cursors.insert(ids.child1, 0);
    ids.child2 = id()?;
    conn.create_window(
        depth,
        ids.child2,
        ids.top1,
        130,
        40,
        120,
        100,
        2,
        xproto::WindowClass::INPUT_OUTPUT,
        0,
        &xproto::CreateWindowAux::new()
            .background_pixmap(ids.pix)
            .border_pixmap(ids.pix)
            .backing_store(xproto::BackingStore::WHEN_MAPPED),
    )?;
    h.backgrounds
        .insert(ids.child2, Background::Pixmap(ids.pix));
    h.borders.insert(ids.child2, Border::Pixmap(ids.pix));
    h.window_cursors.insert(ids.child2, 0);
    ids.input_only = id()?;
    conn.create_window(
        0,
        ids.input_only,
        ids.child1,
        5,
        5,
        30,
        30,
        0,
        xproto::WindowClass::INPUT_ONLY,
        0,
        &xproto::CreateWindowAux::new()
            .event_mask(xproto::EventMask::POINTER_MOTION)
            .cursor(ids.cursor),
    )?;
    h.window_cursors.insert(ids.input_only, ids.cursor);
    ids.top2 = id()?;
    let mut aux2 = xproto::CreateWindowAux::new()
        .background_pixel(0x10_10_10)
        .border_pixel(0x00_ff_00)
        .override_redirect(1)
        .save_under(1);
    let (vis2, depth2) = match (&dc, ids.colormap) {
        (Some(v), Some(cm)) => {
            aux2 = aux2.colormap(cm);
            (v.visual_id, depth)
        }
        _ => (0, depth),
    };
    conn.create_window(
        depth2,
        ids.top2,
        root,
        400,
        50,
        120,
        90,
        1,
        xproto::WindowClass::INPUT_OUTPUT,
        vis2,
        &aux2,
    )?;
    h.backgrounds
        .insert(ids.top2, Background::Pixel(0x10_10_10));
    h.borders.insert(ids.top2, Border::Pixel(0x00_ff_00));
    h.window_cursors.insert(ids.top2, 0);
    ids.top3_unmapped = id()?;
    conn.create_window(
        depth,
        ids.top3_unmapped,
        root,
        600,
        600,
        50,
        50,
        0,
        xproto::WindowClass::INPUT_OUTPUT,
        0,
        &xproto::CreateWindowAux::new().background_pixel(0x80_80_80),
    )?;
    h.backgrounds
        .insert(ids.top3_unmapped, Background::Pixel(0x80_80_80));
    h.borders.insert(ids.top3_unmapped, Border::CopyFromParent);
    h.window_cursors.insert(ids.top3_unmapped, 0);

    // Properties of several types.
    let string = u32::from(xproto::AtomEnum::STRING);
    conn.change_property8(
        xproto::PropMode::REPLACE,
        ids.top1,
        xproto::AtomEnum::WM_NAME,
        string,
        b"winsession scenario",
    )?;
    conn.change_property8(
        xproto::PropMode::REPLACE,
        ids.top1,
        xproto::AtomEnum::WM_CLASS,
        string,
        b"scenario\0Scenario\0",
    )?;
    let wm_protocols = atom(conn, "WM_PROTOCOLS")?;
    let wm_delete = atom(conn, "WM_DELETE_WINDOW")?;
    let take_focus = atom(conn, "WM_TAKE_FOCUS")?;
    conn.change_property32(
        xproto::PropMode::REPLACE,
        ids.top1,
        wm_protocols,
        xproto::AtomEnum::ATOM,
        &[wm_delete, take_focus],
    )?;
    let pid_atom = atom(conn, "_NET_WM_PID")?;
    conn.change_property32(
        xproto::PropMode::REPLACE,
        ids.top1,
        pid_atom,
        xproto::AtomEnum::CARDINAL,
        &[std::process::id()],
    )?;
    // WM_HINTS: input + icon pixmap + window group.
    let flags = 1 | (1 << 2) | (1 << 6);
    conn.change_property32(
        xproto::PropMode::REPLACE,
        ids.top1,
        xproto::AtomEnum::WM_HINTS,
        xproto::AtomEnum::WM_HINTS,
        &[flags, 1, 1, ids.pix, 0, 0, 0, 0, ids.top1],
    )?;
    let custom = atom(conn, "_WINSESSION_TEST_WINDOWS")?;
    conn.change_property32(
        xproto::PropMode::REPLACE,
        ids.top1,
        custom,
        xproto::AtomEnum::WINDOW,
        &[ids.child1, ids.child2, root],
    )?;
    let shorts = atom(conn, "_WINSESSION_TEST_SHORTS")?;
    let integer = u32::from(xproto::AtomEnum::INTEGER);
    conn.change_property16(
        xproto::PropMode::REPLACE,
        ids.child1,
        shorts,
        integer,
        &[1, 65535, 300, 0],
    )?;
    conn.change_property32(
        xproto::PropMode::REPLACE,
        ids.top2,
        xproto::AtomEnum::WM_TRANSIENT_FOR,
        xproto::AtomEnum::WINDOW,
        &[ids.top1],
    )?;
    let utf8 = atom(conn, "UTF8_STRING")?;
    let net_name = atom(conn, "_NET_WM_NAME")?;
    conn.change_property8(
        xproto::PropMode::REPLACE,
        ids.top2,
        net_name,
        utf8,
        "popup ✓ ünïcode".as_bytes(),
    )?;

    // Map and own PRIMARY.
    conn.map_subwindows(ids.top1)?;
    conn.map_subwindows(ids.child1)?;
    conn.map_window(ids.top1)?;
    conn.map_window(ids.top2)?;
    conn.set_selection_owner(
        ids.top1,
        u32::from(xproto::AtomEnum::PRIMARY),
        x11rb::CURRENT_TIME,
    )?;
    ids.mapped_toplevels = vec![ids.top1, ids.top2];
    conn.sync()?;
    Ok((ids, h))
}

/// Draw the scenario's contents (what the app does on Expose), then wait for the server.
pub fn draw(conn: &impl Connection, ids: &Ids) -> Result<()> {
    conn.copy_area(ids.pix, ids.child1, ids.gc_dash, 0, 0, 5, 5, 64, 48)?;
    conn.poly_line(
        xproto::CoordMode::ORIGIN,
        ids.top1,
        ids.gc_dash,
        &[
            xproto::Point { x: 5, y: 150 },
            xproto::Point { x: 120, y: 190 },
            xproto::Point { x: 280, y: 110 },
        ],
    )?;
    conn.image_text8(ids.top1, ids.gc_text, 20, 130, b"Hello, session!")?;
    conn.poly_fill_rectangle(
        ids.top2,
        ids.gc_stipple,
        &[xproto::Rectangle {
            x: 5,
            y: 5,
            width: 100,
            height: 70,
        }],
    )?;
    conn.poly_fill_rectangle(
        ids.top1,
        ids.gc_clip,
        &[xproto::Rectangle {
            x: 0,
            y: 0,
            width: 80,
            height: 80,
        }],
    )?;
    conn.copy_area(ids.big, ids.top1, ids.gc_text, 0, 0, 200, 150, 100, 50)?;
    conn.sync()?;
    Ok(())
}

/// The hints translated into another server's IDs (what guimux tracks for the regenerated
/// resources).
pub fn translate_hints(h: &Hints, m: &HashMap<u32, u32>) -> Hints {
    let t = |v: u32| if v == 0 { 0 } else { *m.get(&v).unwrap_or(&v) };
    let mut out = Hints::default();
    for (k, (d, v)) in &h.gcs {
        let mut v = v.clone();
        v.font = t(v.font);
        v.stipple = t(v.stipple);
        v.tile = t(v.tile);
        if let Clip::Pixmap(p) = &mut v.clip {
            *p = t(*p);
        }
        out.gcs.insert(t(*k), (*d, v));
    }
    for (k, v) in &h.font_names {
        out.font_names.insert(t(*k), v.clone());
    }
    for (k, v) in &h.backgrounds {
        let v = match *v {
            Background::Pixmap(p) => Background::Pixmap(t(p)),
            o => o,
        };
        out.backgrounds.insert(t(*k), v);
    }
    for (k, v) in &h.borders {
        let v = match *v {
            Border::Pixmap(p) => Border::Pixmap(t(p)),
            o => o,
        };
        out.borders.insert(t(*k), v);
    }
    for (k, v) in &h.window_cursors {
        out.window_cursors.insert(t(*k), t(*v));
    }
    for (k, v) in &h.glyph_cursors {
        out.glyph_cursors.insert(t(*k), v.clone());
    }
    for (k, (vis, all)) in &h.colormaps {
        out.colormaps.insert(t(*k), (*vis, *all));
    }
    out
}
