//! GUIEVICT extension on real servers: a test client creates resources with unusual values and
//! GetResources must return exactly those values, only for the requesting client, in both byte
//! orders, across pages and server resets, with malformed requests answered by X errors.

mod xext_common;

use anyhow::{anyhow, Result};
use guievict_ext_proto as proto;
use proto::*;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::render::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::rust_connection::RustConnection;
use xext_common::*;
use xvfb_harness::{with_timeout, Xvfb, XvfbOptions};

fn find_format(
    formats: &render::QueryPictFormatsReply,
    depth: u8,
    alpha_mask: u16,
    red_mask: u16,
) -> Result<u32> {
    formats
        .formats
        .iter()
        .find(|f| {
            f.depth == depth
                && f.type_ == render::PictType::DIRECT
                && f.direct.alpha_mask == alpha_mask
                && f.direct.red_mask == red_mask
        })
        .map(|f| f.id)
        .ok_or_else(|| anyhow!("no pictformat depth {depth}"))
}

#[test]
fn xext_listed_and_keyboard_works() {
    with_timeout(60, || -> Result<()> {
        let x = Xvfb::start()?;
        let out = std::process::Command::new("xdpyinfo")
            .args(["-display", &x.display, "-queryExtensions"])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("GUIEVICT"), "GUIEVICT not listed: {text}");
        // The keyboard initialised (xkbcomp ran without the preload) and keys map to keysyms.
        let conn = x.connect()?;
        let setup = conn.setup();
        let km = conn
            .get_keyboard_mapping(setup.min_keycode, setup.max_keycode - setup.min_keycode + 1)?
            .reply()?;
        assert!(
            km.keysyms.iter().any(|&k| k == u32::from(b'a')),
            "no 'a' keysym"
        );
        let log = std::fs::read_to_string(x.log())?;
        assert!(!log.contains("undefined symbol"), "server log: {log}");
        // A real key press through XTEST reaches the server (xdotool uses XTEST).
        let st = std::process::Command::new("xdotool")
            .args(["key", "a"])
            .env("DISPLAY", &x.display)
            .status()?;
        assert!(st.success());
        let v = query_version(&conn)?;
        assert_eq!((v.major, v.minor), (MAJOR_VERSION, MINOR_VERSION));
        assert_eq!(v.server_release, 12_101_007);
        Ok(())
    })
    .unwrap();
}

/// Everything the values test creates, with the IDs it chose.
struct Made {
    p24: u32,
    bm: u32,
    w_pixmap: u32,
    w_pixel: u32,
    w_parent_rel: u32,
    w_none: u32,
    font: u32,
    cursor_font: u32,
    gc: u32,
    glyph_cursor: u32,
    bitmap_cursor: u32,
    argb_cursor: u32,
    cmap_true: u32,
    pic: u32,
    alpha_pic: u32,
    solid: u32,
    linear: u32,
    glyphs: u32,
    rgb24: u32,
    a8: u32,
}

fn make_resources(conn: &RustConnection) -> Result<Made> {
    let screen = &conn.setup().roots[0];
    let root = screen.root;
    let id = || conn.generate_id();
    let formats = conn.render_query_pict_formats()?.reply()?;
    let rgb24 = find_format(&formats, 24, 0, 0xff)?;
    let a8 = find_format(&formats, 8, 0xff, 0)?;
    let argb32 = find_format(&formats, 32, 0xff, 0xff)?;

    let p24 = id()?;
    conn.create_pixmap(24, p24, root, 31, 7)?;
    let bm = id()?;
    conn.create_pixmap(1, bm, root, 16, 16)?;
    let bgc = id()?;
    conn.create_gc(bgc, bm, &xproto::CreateGCAux::new().foreground(0))?;
    conn.poly_fill_rectangle(
        bm,
        bgc,
        &[xproto::Rectangle {
            x: 0,
            y: 0,
            width: 16,
            height: 16,
        }],
    )?;
    conn.change_gc(bgc, &xproto::ChangeGCAux::new().foreground(1))?;
    conn.poly_fill_rectangle(
        bm,
        bgc,
        &[xproto::Rectangle {
            x: 0,
            y: 0,
            width: 8,
            height: 16,
        }],
    )?;
    conn.free_gc(bgc)?;

    let font = id()?;
    conn.open_font(font, b"fixed")?;
    let cursor_font = id()?;
    conn.open_font(cursor_font, b"cursor")?;
    let glyph_cursor = id()?;
    conn.create_glyph_cursor(
        glyph_cursor,
        cursor_font,
        cursor_font,
        68,
        69,
        0xffff,
        0,
        0x8000,
        0x1000,
        0x2000,
        0x3000,
    )?;
    let bitmap_cursor = id()?;
    conn.create_cursor(bitmap_cursor, bm, bm, 1, 2, 3, 4, 5, 6, 3, 4)?;
    // ARGB cursor from a 4x2 opaque red picture.
    let p32 = id()?;
    conn.create_pixmap(32, p32, root, 4, 2)?;
    let pic32 = id()?;
    conn.render_create_picture(pic32, p32, argb32, &render::CreatePictureAux::new())?;
    // Three colours and partial alpha, so the server keeps it as an ARGB cursor (a two-colour
    // image would be turned into a core cursor).
    for (x, w, color) in [
        (
            0,
            2,
            render::Color {
                red: 0xffff,
                green: 0,
                blue: 0,
                alpha: 0xffff,
            },
        ),
        (
            2,
            1,
            render::Color {
                red: 0,
                green: 0xffff,
                blue: 0,
                alpha: 0xffff,
            },
        ),
        (
            3,
            1,
            render::Color {
                red: 0,
                green: 0,
                blue: 0x8000,
                alpha: 0x8000,
            },
        ),
    ] {
        conn.render_fill_rectangles(
            render::PictOp::SRC,
            pic32,
            color,
            &[xproto::Rectangle {
                x,
                y: 0,
                width: w,
                height: 2,
            }],
        )?;
    }
    let argb_cursor = id()?;
    conn.render_create_cursor(argb_cursor, pic32, 1, 1)?;
    conn.render_free_picture(pic32)?;
    conn.free_pixmap(p32)?;

    let mk_win = |aux: xproto::CreateWindowAux| -> Result<u32> {
        let w = conn.generate_id()?;
        conn.create_window(
            24,
            w,
            root,
            5,
            6,
            50,
            40,
            3,
            xproto::WindowClass::INPUT_OUTPUT,
            screen.root_visual,
            &aux,
        )?;
        Ok(w)
    };
    let w_pixmap = mk_win(
        xproto::CreateWindowAux::new()
            .background_pixmap(p24)
            .border_pixmap(p24)
            .cursor(glyph_cursor),
    )?;
    let w_pixel = mk_win(
        xproto::CreateWindowAux::new()
            .background_pixel(0x12_3456)
            .border_pixel(0xab_cdef),
    )?;
    let w_parent_rel = mk_win(xproto::CreateWindowAux::new().background_pixmap(1))?;
    let w_none = mk_win(xproto::CreateWindowAux::new())?;

    let gc = id()?;
    conn.create_gc(
        gc,
        root,
        &xproto::CreateGCAux::new()
            .function(xproto::GX::XOR)
            .plane_mask(0x00ff_00ff)
            .foreground(0x11_2233)
            .background(0x44_5566)
            .line_width(7)
            .line_style(xproto::LineStyle::ON_OFF_DASH)
            .cap_style(xproto::CapStyle::ROUND)
            .join_style(xproto::JoinStyle::BEVEL)
            .fill_style(xproto::FillStyle::OPAQUE_STIPPLED)
            .fill_rule(xproto::FillRule::WINDING)
            .tile(p24)
            .stipple(bm)
            .tile_stipple_x_origin(-3)
            .tile_stipple_y_origin(5)
            .font(font)
            .subwindow_mode(xproto::SubwindowMode::INCLUDE_INFERIORS)
            .graphics_exposures(0)
            .arc_mode(xproto::ArcMode::CHORD),
    )?;
    conn.set_dashes(gc, 2, &[1, 2, 3])?;
    conn.set_clip_rectangles(
        xproto::ClipOrdering::UNSORTED,
        gc,
        4,
        -6,
        &[
            xproto::Rectangle {
                x: 0,
                y: 0,
                width: 10,
                height: 10,
            },
            xproto::Rectangle {
                x: 0,
                y: 20,
                width: 5,
                height: 5,
            },
        ],
    )?;

    let cmap_true = id()?;
    conn.create_colormap(
        xproto::ColormapAlloc::NONE,
        cmap_true,
        root,
        screen.root_visual,
    )?;

    let pic = id()?;
    conn.render_create_picture(
        pic,
        p24,
        rgb24,
        &render::CreatePictureAux::new()
            .repeat(render::Repeat::REFLECT)
            .componentalpha(1)
            .polyedge(render::PolyEdge::SMOOTH)
            .polymode(render::PolyMode::IMPRECISE)
            .graphicsexposure(0),
    )?;
    let pa8 = id()?;
    conn.create_pixmap(8, pa8, root, 31, 7)?;
    let alpha_pic = id()?;
    conn.render_create_picture(alpha_pic, pa8, a8, &render::CreatePictureAux::new())?;
    conn.render_change_picture(
        pic,
        &render::ChangePictureAux::new()
            .alphamap(alpha_pic)
            .alphaxorigin(-1)
            .alphayorigin(2),
    )?;
    conn.render_set_picture_transform(
        pic,
        render::Transform {
            matrix11: 0x10000,
            matrix12: 0,
            matrix13: 5 << 16,
            matrix21: 0,
            matrix22: 0x20000,
            matrix23: 0,
            matrix31: 0,
            matrix32: 0,
            matrix33: 0x10000,
        },
    )?;
    conn.render_set_picture_filter(pic, b"bilinear", &[])?;
    conn.render_set_picture_clip_rectangles(
        pic,
        2,
        3,
        &[xproto::Rectangle {
            x: 1,
            y: 1,
            width: 6,
            height: 4,
        }],
    )?;
    let solid = id()?;
    conn.render_create_solid_fill(
        solid,
        render::Color {
            red: 1,
            green: 2,
            blue: 3,
            alpha: 0x8000,
        },
    )?;
    let linear = id()?;
    conn.render_create_linear_gradient(
        linear,
        render::Pointfix { x: 0, y: 0 },
        render::Pointfix { x: 10 << 16, y: 0 },
        &[0, 0x10000],
        &[
            render::Color {
                red: 0xffff,
                green: 0,
                blue: 0,
                alpha: 0xffff,
            },
            render::Color {
                red: 0,
                green: 0,
                blue: 0xffff,
                alpha: 0x8000,
            },
        ],
    )?;
    let glyphs = id()?;
    conn.render_create_glyph_set(glyphs, a8)?;
    conn.render_add_glyphs(
        glyphs,
        &[65, 66],
        &[
            render::Glyphinfo {
                width: 3,
                height: 2,
                x: -1,
                y: 9,
                x_off: 7,
                y_off: 0,
            },
            render::Glyphinfo {
                width: 5,
                height: 1,
                x: 0,
                y: 0,
                x_off: 6,
                y_off: 1,
            },
        ],
        &[1, 2, 3, 0, 4, 5, 6, 0, 9, 8, 7, 6, 5, 0, 0, 0],
    )?;
    conn.get_input_focus()?.reply()?;
    Ok(Made {
        p24,
        bm,
        w_pixmap,
        w_pixel,
        w_parent_rel,
        w_none,
        font,
        cursor_font,
        gc,
        glyph_cursor,
        bitmap_cursor,
        argb_cursor,
        cmap_true,
        pic,
        alpha_pic,
        solid,
        linear,
        glyphs,
        rgb24,
        a8,
    })
}

fn detail<'a>(all: &'a Resources, id: u32, kind: &str) -> &'a Detail {
    &all.get(id, kind)
        .unwrap_or_else(|| panic!("resource {id:#x} of kind {kind} missing"))
        .detail
}

#[test]
fn xext_values_exact() {
    with_timeout(90, || -> Result<()> {
        let x = Xvfb::start()?;
        let conn = x.connect()?;
        let m = make_resources(&conn)?;
        let (all, _) = get_all(&conn, 0)?;
        let mask = conn.setup().resource_id_mask;
        let base = conn.setup().resource_id_base;
        for r in &all.resources {
            assert_eq!(
                r.id & !mask & !0x4000_0000,
                base,
                "foreign id {:#x} ({})",
                r.id,
                r.kind.0
            );
        }

        assert_eq!(
            detail(&all, m.p24, kinds::PIXMAP),
            &Detail::Pixmap(PixmapInfo {
                depth: 24,
                bits_per_pixel: 32,
                width: 31,
                height: 7
            })
        );
        assert_eq!(
            detail(&all, m.bm, kinds::PIXMAP),
            &Detail::Pixmap(PixmapInfo {
                depth: 1,
                bits_per_pixel: 1,
                width: 16,
                height: 16
            })
        );
        assert_eq!(
            detail(&all, m.w_pixmap, kinds::WINDOW),
            &Detail::Window(WindowExtra {
                background: BgKind::Pixmap(m.p24),
                border: BorderKind::Pixmap(m.p24),
                cursor: m.glyph_cursor
            })
        );
        assert_eq!(
            detail(&all, m.w_pixel, kinds::WINDOW),
            &Detail::Window(WindowExtra {
                background: BgKind::Pixel(0x12_3456),
                border: BorderKind::Pixel(0xab_cdef),
                cursor: 0
            })
        );
        let Detail::Window(w) = detail(&all, m.w_parent_rel, kinds::WINDOW) else {
            panic!()
        };
        assert_eq!(w.background, BgKind::ParentRelative);
        let Detail::Window(w) = detail(&all, m.w_none, kinds::WINDOW) else {
            panic!()
        };
        assert_eq!(w.background, BgKind::None);

        assert_eq!(
            detail(&all, m.font, kinds::FONT),
            &Detail::Font(FontInfo {
                name: "fixed".into(),
                from_property: false
            })
        );
        assert_eq!(
            detail(&all, m.cursor_font, kinds::FONT),
            &Detail::Font(FontInfo {
                name: "cursor".into(),
                from_property: false
            })
        );

        let Detail::Gc(g) = detail(&all, m.gc, kinds::GC) else {
            panic!("gc")
        };
        let expect = GcValues {
            depth: 24,
            function: 6,
            plane_mask: 0x00ff_00ff,
            foreground: 0x11_2233,
            background: 0x44_5566,
            line_width: 7,
            line_style: 1,
            cap_style: 2,
            join_style: 2,
            fill_style: 3,
            fill_rule: 1,
            tile: Tile::Pixmap(m.p24),
            stipple: m.bm,
            ts_x_origin: -3,
            ts_y_origin: 5,
            font: m.font,
            subwindow_mode: 1,
            graphics_exposures: false,
            clip_x_origin: 4,
            clip_y_origin: -6,
            clip: Clip::Rectangles(vec![
                Rectangle {
                    x: 0,
                    y: 0,
                    width: 10,
                    height: 10,
                },
                Rectangle {
                    x: 0,
                    y: 20,
                    width: 5,
                    height: 5,
                },
            ]),
            dash_offset: 2,
            // The server stores an odd-length dash list doubled (protocol-equivalent).
            dashes: vec![1, 2, 3, 1, 2, 3],
            arc_mode: 0,
        };
        assert_eq!(g, &expect);

        let Detail::Cursor(c) = detail(&all, m.glyph_cursor, kinds::CURSOR) else {
            panic!()
        };
        assert_eq!(
            (c.fore_rgb, c.back_rgb),
            ([0xffff, 0, 0x8000], [0x1000, 0x2000, 0x3000])
        );
        assert!(c.width > 0 && c.height > 0);
        let CursorBits::Bitmap { source, mask } = &c.image else {
            panic!("glyph cursor bits")
        };
        assert_eq!(source.len(), bitmap_stride(c.width) * usize::from(c.height));
        assert!(mask.iter().any(|&b| b != 0));

        let Detail::Cursor(c) = detail(&all, m.bitmap_cursor, kinds::CURSOR) else {
            panic!()
        };
        assert_eq!((c.width, c.height, c.x_hot, c.y_hot), (16, 16, 3, 4));
        assert_eq!((c.fore_rgb, c.back_rgb), ([1, 2, 3], [4, 5, 6]));
        let row = [0xffu8, 0, 0, 0];
        let plane: Vec<u8> = row.iter().copied().cycle().take(64).collect();
        assert_eq!(
            c.image,
            CursorBits::Bitmap {
                source: plane.clone(),
                mask: plane
            }
        );

        let Detail::Cursor(c) = detail(&all, m.argb_cursor, kinds::CURSOR) else {
            panic!()
        };
        assert_eq!((c.width, c.height, c.x_hot, c.y_hot), (4, 2, 1, 1));
        let row = [0xffff_0000u32, 0xffff_0000, 0xff00_ff00, 0x8000_0080];
        let px: Vec<u32> = row.iter().chain(row.iter()).copied().collect();
        assert_eq!(c.image, CursorBits::Argb(px));

        let Detail::Colormap(cm) = detail(&all, m.cmap_true, kinds::COLORMAP) else {
            panic!()
        };
        assert_eq!(cm.visual, conn.setup().roots[0].root_visual);
        assert_eq!(cm.class, 4);
        assert!(cm.cells.is_empty());

        let Detail::Picture(p) = detail(&all, m.pic, kinds::PICTURE) else {
            panic!()
        };
        assert_eq!(
            p,
            &PictureInfo {
                format: m.rgb24,
                source: PictureSource::Drawable(m.p24),
                repeat: 3,
                filter: "bilinear".into(),
                filter_params: vec![],
                transform: Some([0x10000, 0, 5 << 16, 0, 0x20000, 0, 0, 0, 0x10000]),
                clip: Clip::Rectangles(vec![Rectangle {
                    x: 1,
                    y: 1,
                    width: 6,
                    height: 4
                }]),
                clip_x_origin: 2,
                clip_y_origin: 3,
                alpha_map: m.alpha_pic,
                alpha_x_origin: -1,
                alpha_y_origin: 2,
                component_alpha: true,
                subwindow_mode: 0,
                poly_edge: 1,
                poly_mode: 1,
                graphics_exposures: false,
                orphan: None,
            }
        );
        let Detail::Picture(p) = detail(&all, m.alpha_pic, kinds::PICTURE) else {
            panic!()
        };
        assert_eq!(p.format, m.a8);
        let Detail::Picture(p) = detail(&all, m.solid, kinds::PICTURE) else {
            panic!()
        };
        assert_eq!(p.source, PictureSource::SolidFill([1, 2, 3, 0x8000]));
        let Detail::Picture(p) = detail(&all, m.linear, kinds::PICTURE) else {
            panic!()
        };
        assert_eq!(
            p.source,
            PictureSource::Gradient(GradientInfo {
                kind: GradientKind::Linear,
                params: vec![0, 0, 10 << 16, 0],
                stops: vec![
                    GradientStop {
                        offset: 0,
                        color: [0xffff, 0, 0, 0xffff]
                    },
                    GradientStop {
                        offset: 0x10000,
                        color: [0, 0, 0xffff, 0x8000]
                    },
                ],
            })
        );

        assert_eq!(
            detail(&all, m.glyphs, kinds::GLYPHSET),
            &Detail::GlyphSet(GlyphSetInfo {
                format: m.a8,
                depth: 8,
                glyphs: vec![
                    Glyph {
                        id: 65,
                        width: 3,
                        height: 2,
                        x: -1,
                        y: 9,
                        x_off: 7,
                        y_off: 0,
                        image: vec![1, 2, 3, 0, 4, 5, 6, 0]
                    },
                    Glyph {
                        id: 66,
                        width: 5,
                        height: 1,
                        x: 0,
                        y: 0,
                        x_off: 6,
                        y_off: 1,
                        image: vec![9, 8, 7, 6, 5, 0, 0, 0]
                    },
                ],
            })
        );

        // Without image flags the heavy parts are left out.
        let light = get_page(
            &conn,
            &GetResourcesRequest {
                flags: 0,
                ..GetResourcesRequest::first()
            },
        )?;
        let Detail::Cursor(c) = detail(&light.resources, m.bitmap_cursor, kinds::CURSOR) else {
            panic!()
        };
        assert_eq!(c.image, CursorBits::None);
        Ok(())
    })
    .unwrap();
}

#[test]
fn xext_never_reveals_other_clients() {
    with_timeout(60, || -> Result<()> {
        let x = Xvfb::start()?;
        let a = x.connect()?;
        let made = make_resources(&a)?;
        let b = x.connect()?;
        let bp = b.generate_id()?;
        b.create_pixmap(24, bp, b.setup().roots[0].root, 3, 3)?;
        b.get_input_focus()?.reply()?;
        let (all, _) = get_all(&b, 0)?;
        let mask = b.setup().resource_id_mask;
        let base = b.setup().resource_id_base;
        assert!(all.get(bp, kinds::PIXMAP).is_some());
        for r in &all.resources {
            assert_eq!(r.id & !mask & !0x4000_0000, base, "foreign id {:#x}", r.id);
        }
        for id in [made.p24, made.gc, made.w_pixmap, made.font, made.glyphs] {
            assert!(all.resources.iter().all(|r| r.id != id), "leaked {id:#x}");
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn xext_swapped_client() {
    with_timeout(60, || -> Result<()> {
        let x = Xvfb::start()?;
        let order = ByteOrder::native().swapped();
        let mut c = RawClient::connect(&x.display, order)?;
        // CreatePixmap depth 1, 13x9.
        let pid = c.id(1);
        let mut w = Writer::new(order);
        w.u8(53);
        w.u8(1);
        w.u16(4);
        w.u32(pid);
        w.u32(c.root);
        w.u16(13);
        w.u16(9);
        assert!(matches!(c.request(&w.into_inner(), false)?, Answer::None));
        // OpenFont "fixed" (swapped path through the wrapped handler).
        let fid = c.id(2);
        let mut w = Writer::new(order);
        w.u8(45);
        w.u8(0);
        w.u16(5);
        w.u32(fid);
        w.u16(5);
        w.u16(0);
        w.bytes(b"fixed");
        w.pad4();
        assert!(matches!(c.request(&w.into_inner(), false)?, Answer::None));
        // CreateGC with foreground and line width.
        let gid = c.id(3);
        let mut w = Writer::new(order);
        w.u8(55);
        w.u8(0);
        w.u16(6);
        w.u32(gid);
        w.u32(pid);
        w.u32(0x4 | 0x10); // foreground, line-width
        w.u32(1);
        w.u32(0x1234);
        assert!(matches!(c.request(&w.into_inner(), false)?, Answer::None));

        let q = encode_query_version(
            c.major,
            &QueryVersionRequest {
                client_major: 1,
                client_minor: 0,
            },
            order,
        );
        let Answer::Reply(rep) = c.request(&q, true)? else {
            panic!("no reply")
        };
        assert_eq!(decode_query_version_reply(&rep, order)?.major, 1);

        let g = encode_get_resources(c.major, &GetResourcesRequest::first(), order);
        let Answer::Reply(rep) = c.request(&g, true)? else {
            panic!("no reply")
        };
        let rep = decode_get_resources_reply(&rep, order)?;
        let all = rep.resources;
        assert_eq!(
            detail(&all, pid, kinds::PIXMAP),
            &Detail::Pixmap(PixmapInfo {
                depth: 1,
                bits_per_pixel: 1,
                width: 13,
                height: 9
            })
        );
        assert_eq!(
            detail(&all, fid, kinds::FONT),
            &Detail::Font(FontInfo {
                name: "fixed".into(),
                from_property: false
            })
        );
        let Detail::Gc(gc) = detail(&all, gid, kinds::GC) else {
            panic!()
        };
        assert_eq!((gc.foreground, gc.line_width, gc.depth), (1, 0x1234, 1));
        Ok(())
    })
    .unwrap();
}

#[test]
fn xext_paging() {
    with_timeout(120, || -> Result<()> {
        let x = Xvfb::start()?;
        let conn = x.connect()?;
        let root = conn.setup().roots[0].root;
        for i in 0..3000u16 {
            let p = conn.generate_id()?;
            conn.create_pixmap(1, p, root, 1 + i % 50, 1)?;
        }
        make_resources(&conn)?;
        let (small, pages) = get_all(&conn, MIN_MAX_BYTES)?;
        let (big, one) = get_all(&conn, 0)?;
        assert!(pages > 10, "only {pages} pages");
        assert_eq!(one, 1);
        assert_eq!(small, big);
        assert!(small.resources.len() >= 3000);
        let first = get_page(&conn, &GetResourcesRequest::first())?;
        assert_eq!(first.total as usize, big.resources.len());
        Ok(())
    })
    .unwrap();
}

#[test]
fn xext_malformed_requests_fuzz() {
    with_timeout(240, || -> Result<()> {
        let x = Xvfb::start()?;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut errors = 0usize;
        let mut replies = 0usize;
        for order in [ByteOrder::native(), ByteOrder::native().swapped()] {
            let mut c = RawClient::connect(&x.display, order)?;
            for i in 0..2500u32 {
                // Honest length field (so the server can frame it), random everything else.
                let words = match rnd() % 4 {
                    0 => 1 + (rnd() % 8) as u16,
                    1 => 5,
                    2 => 2,
                    _ => 1 + (rnd() % 200) as u16,
                };
                let mut w = Writer::new(order);
                w.u8(c.major);
                w.u8(match rnd() % 3 {
                    0 => (rnd() % 4) as u8,
                    _ => (rnd() % 256) as u8,
                });
                w.u16(words);
                for _ in 1..words {
                    let v = rnd() as u32;
                    // Bias: valid flags / extreme values now and then.
                    w.u32(match rnd() % 5 {
                        0 => v & FLAGS_ALL,
                        1 => u32::MAX,
                        _ => v,
                    });
                }
                let bytes = w.into_inner();
                match c.request(&bytes, bytes[1] <= 1 && (words == 2 || words == 5))? {
                    Answer::Error(_) => errors += 1,
                    Answer::Reply(rep) => {
                        replies += 1;
                        if bytes[1] == X_GET_RESOURCES {
                            decode_get_resources_reply(&rep, order)?;
                        }
                    }
                    Answer::None => {}
                }
                if i % 500 == 0 {
                    let q = encode_query_version(
                        c.major,
                        &QueryVersionRequest {
                            client_major: 1,
                            client_minor: 0,
                        },
                        order,
                    );
                    assert!(
                        matches!(c.request(&q, true)?, Answer::Reply(_)),
                        "server stopped answering"
                    );
                }
            }
        }
        eprintln!("fuzz: {errors} errors, {replies} replies out of 5000 requests");
        assert!(errors > 1000);
        let mut xx = x;
        assert!(xx.is_running(), "server died");
        let conn = xx.connect()?;
        query_version(&conn)?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn xext_survives_server_reset() {
    with_timeout(90, || -> Result<()> {
        let x = Xvfb::start_with(XvfbOptions {
            noreset: false,
            ..Default::default()
        })?;
        for round in 0..3 {
            let conn = x.connect()?;
            let v = query_version(&conn)?;
            assert_eq!(v.major, MAJOR_VERSION, "round {round}");
            let f = conn.generate_id()?;
            conn.open_font(f, b"fixed")?;
            conn.get_input_focus()?.reply()?;
            let (all, _) = get_all(&conn, 0)?;
            assert_eq!(
                detail(&all, f, kinds::FONT),
                &Detail::Font(FontInfo {
                    name: "fixed".into(),
                    from_property: false
                })
            );
            drop(conn);
            // Last client gone: the server resets; give it a moment.
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn xext_xorg_module() {
    with_timeout(90, || -> Result<()> {
        let x = match xvfb_harness::Xorg::start(true) {
            Ok(x) => x,
            Err(e) => {
                xvfb_harness::skip(&format!("headless Xorg could not start: {e:#}"));
                return Ok(());
            }
        };
        let out = std::process::Command::new("xdpyinfo")
            .args(["-display", &x.display, "-queryExtensions"])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("GUIEVICT"),
            "GUIEVICT not listed under Xorg: {}",
            x.log_text()
        );
        let conn = xvfb_harness::connect(&x.display)?;
        let m = make_resources(&conn)?;
        let (all, _) = get_all(&conn, 0)?;
        assert_eq!(
            detail(&all, m.font, kinds::FONT),
            &Detail::Font(FontInfo {
                name: "fixed".into(),
                from_property: false
            })
        );
        assert!(all.get(m.glyphs, kinds::GLYPHSET).is_some());
        Ok(())
    })
    .unwrap();
}

/// A server of another release than the extension's headers: one log line, no extension, and
/// the server (keyboard included) works as without it.
#[test]
fn xext_refuses_a_server_of_another_release() {
    with_timeout(60, || {
        let x = Xvfb::start_with(XvfbOptions {
            env: vec![(
                "GUIEVICT_XEXT_ASSUME_BUILT_RELEASE".into(),
                "12345678".into(),
            )],
            ..Default::default()
        })
        .expect("Xvfb");
        let conn = x.connect().expect("connect");
        use x11rb::connection::RequestConnection as _;
        assert!(
            conn.extension_information("GUIEVICT")
                .expect("query")
                .is_none(),
            "the extension registered on a server of another release"
        );
        let map = conn
            .get_keyboard_mapping(conn.setup().min_keycode, 10)
            .expect("keymap")
            .reply()
            .expect("keymap reply");
        assert!(
            map.keysyms.iter().any(|k| *k != 0),
            "keyboard not initialised"
        );
        let log = std::fs::read_to_string(x.log()).unwrap_or_default();
        assert!(
            log.contains("GUIEVICT: extension not loaded") && log.contains("12345678"),
            "no clear refusal in the server log:\n{log}"
        );
    });
}

/// DAMAGE objects at every report level, on the client's window, its pixmap and another
/// client's window: GetResources (1.4) says exactly what each watches and how it reports; a
/// server speaking 1.3 leaves them `Other` and refuses the 1.4 flag.
#[test]
fn xext_damage_objects() {
    use x11rb::protocol::damage::{self, ConnectionExt as _};
    with_timeout(60, || -> Result<()> {
        for minor in [None, Some("3")] {
            let x = Xvfb::start_with(XvfbOptions {
                env: minor
                    .map(|m| vec![("GUIEVICT_XEXT_PROTOCOL_MINOR".into(), m.into())])
                    .unwrap_or_default(),
                ..Default::default()
            })?;
            let other = x.connect()?;
            let foreign = other.generate_id()?;
            let root = other.setup().roots[0].root;
            other.create_window(
                0,
                foreign,
                root,
                0,
                0,
                10,
                10,
                0,
                xproto::WindowClass::INPUT_OUTPUT,
                0,
                &Default::default(),
            )?;
            x11rb::wrapper::ConnectionExt::sync(&other)?;
            let conn = x.connect()?;
            conn.damage_query_version(1, 1)?.reply()?;
            let win = conn.generate_id()?;
            conn.create_window(
                0,
                win,
                root,
                0,
                0,
                20,
                20,
                0,
                xproto::WindowClass::INPUT_OUTPUT,
                0,
                &Default::default(),
            )?;
            let pix = conn.generate_id()?;
            conn.create_pixmap(conn.setup().roots[0].root_depth, pix, root, 5, 5)?;
            let mut made = Vec::new();
            for (level, drawable) in [(0u8, win), (1, pix), (2, foreign), (3, win)] {
                let d = conn.generate_id()?;
                conn.damage_create(d, drawable, damage::ReportLevel::from(level))?;
                made.push((d, drawable, level));
            }
            x11rb::wrapper::ConnectionExt::sync(&conn)?;
            if minor.is_some() {
                let bad = get_page(
                    &conn,
                    &GetResourcesRequest {
                        flags: FLAG_DAMAGE,
                        ..GetResourcesRequest::first()
                    },
                );
                assert!(bad.is_err(), "a 1.3 server accepted the 1.4 flag");
                let rep = get_page(
                    &conn,
                    &GetResourcesRequest {
                        flags: flags_for_minor(3),
                        max_bytes: MAX_MAX_BYTES,
                        ..GetResourcesRequest::first()
                    },
                )?;
                assert!(!rep.more);
                let all = rep.resources;
                for (d, _, _) in &made {
                    assert_eq!(detail(&all, *d, kinds::DAMAGE), &Detail::Other);
                }
                continue;
            }
            let (all, _) = get_all(&conn, 0)?;
            for (d, drawable, level) in made {
                assert_eq!(
                    detail(&all, d, kinds::DAMAGE),
                    &Detail::Damage(DamageInfo { drawable, level }),
                    "damage {d:#x}"
                );
            }
        }
        Ok(())
    })
    .unwrap();
}

/// Protocol 1.6: a client that selected client events hears, as `ClientNotify`, when another
/// client finishes its setup and when it goes (by resource-ID base), in its own byte order;
/// mask 0 stops them; an undefined mask bit is `BadValue`.
#[test]
fn xext_client_events() {
    with_timeout(60, || -> Result<()> {
        let x = Xvfb::start()?;
        let watcher = x.connect()?;
        let info = watcher
            .extension_information(EXTENSION_NAME)?
            .ok_or_else(|| anyhow!("no GUIEVICT"))?;
        let select = |conn: &RustConnection, mask: u32| -> Result<()> {
            let b = encode_select_client_events(info.major_opcode, mask, ByteOrder::native());
            conn.send_request_without_reply(&[std::io::IoSlice::new(&b)], Vec::new())?
                .check()?;
            Ok(())
        };
        select(&watcher, CLIENT_EVENTS_ALL)?;
        let next = |conn: &RustConnection| -> Result<ClientNotify> {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            loop {
                if let Some(ev) = conn.poll_for_raw_event()? {
                    return Ok(decode_client_notify(
                        &ev,
                        info.first_event,
                        ByteOrder::native(),
                    )?);
                }
                anyhow::ensure!(
                    std::time::Instant::now() < deadline,
                    "no ClientNotify in 5 s"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        };
        // A swapped-order client subscribed too (only to "started").
        let other = if cfg!(target_endian = "little") {
            ByteOrder::Msb
        } else {
            ByteOrder::Lsb
        };
        let mut swapped = RawClient::connect(&x.display, other)?;
        let b = encode_select_client_events(swapped.major, CLIENT_EVENT_STARTED, other);
        assert!(matches!(swapped.request(&b, false)?, Answer::None));
        let ev = next(&watcher)?;
        assert_eq!(
            (ev.state, ev.client),
            (CLIENT_EVENT_STARTED, swapped.id_base),
            "{ev:?}"
        );

        let newcomer = x.connect()?;
        let base = newcomer.setup().resource_id_base;
        let ev = next(&watcher)?;
        assert_eq!(
            (ev.state, ev.client),
            (CLIENT_EVENT_STARTED, base),
            "{ev:?}"
        );
        drop(newcomer);
        let ev = next(&watcher)?;
        assert_eq!((ev.state, ev.client), (CLIENT_EVENT_GONE, base), "{ev:?}");

        // The swapped client heard of its own successor only: the watcher was there before it,
        // and "gone" was not selected. Events arrive before the fence's reply.
        let b = encode_select_client_events(swapped.major, 0, other);
        assert!(matches!(swapped.request(&b, false)?, Answer::None));
        let heard: Vec<ClientNotify> = swapped
            .events
            .iter()
            .map(|e| decode_client_notify(e, swapped.first_event, other))
            .collect::<Result<_, _>>()?;
        assert_eq!(heard.len(), 1, "{heard:?}");
        assert_eq!(
            (heard[0].state, heard[0].client),
            (CLIENT_EVENT_STARTED, base)
        );

        // Unsubscribed: nothing more.
        select(&watcher, 0)?;
        drop(x.connect()?);
        watcher.get_input_focus()?.reply()?;
        std::thread::sleep(std::time::Duration::from_millis(100));
        watcher.get_input_focus()?.reply()?;
        assert!(
            watcher.poll_for_raw_event()?.is_none(),
            "event after mask 0"
        );
        // Undefined bits are refused.
        let b = encode_select_client_events(info.major_opcode, 1 << 5, ByteOrder::native());
        let err = watcher
            .send_request_without_reply(&[std::io::IoSlice::new(&b)], Vec::new())?
            .check();
        assert!(err.is_err(), "mask bit 5 accepted");
        Ok(())
    })
    .unwrap();
}
