//! Passive grabs and DOUBLE-BUFFER back buffers through a window session. A test client on
//! server A grabs keys and buttons the way Motif/Xt applications do (on its own window and on
//! the root, one AnyModifier grab narrowed by a partial ungrab, a button grab with a cursor and
//! mixed modes) and allocates a DBE back buffer with a picture on it and known pixels in it;
//! it captures itself (GUIEVICT 1.3 describes each grab), the session goes through the file
//! format and is regenerated on server B. There, another client must find exactly those grabs
//! taken (GrabKey/GrabButton on the same combination fails with BadAccess, the cut-out
//! combination does not), a capture on B must describe the same grabs, and a swap of the
//! regenerated back buffer must show the pixels drawn on A. A capture from a 1.2 server says
//! the grabs are unknown.

use anyhow::{anyhow, Context, Result};
use x11rb::connection::Connection;
use x11rb::protocol::dbe::{self, ConnectionExt as _};
use x11rb::protocol::render::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _, ModMask};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use xvfb_harness::{with_timeout, Xvfb, XvfbOptions};

const KEY_S: u8 = 39;
const KEY_D: u8 = 40;
const KEY_A: u8 = 38;

struct Built {
    window: u32,
    cursor: u32,
}

fn window(conn: &RustConnection, w: u16, h: u16) -> Result<u32> {
    let s = &conn.setup().roots[0];
    let id = conn.generate_id()?;
    conn.create_window(
        0,
        id,
        s.root,
        10,
        10,
        w,
        h,
        0,
        xproto::WindowClass::INPUT_OUTPUT,
        0,
        &xproto::CreateWindowAux::new().background_pixel(s.white_pixel),
    )?;
    conn.map_window(id)?;
    Ok(id)
}

/// The grabs an Xt application makes (accelerators on its shell, a root hot key).
fn grab_like_motif(conn: &RustConnection) -> Result<Built> {
    let root = conn.setup().roots[0].root;
    let w = window(conn, 120, 80)?;
    let font = conn.generate_id()?;
    conn.open_font(font, b"cursor")?;
    let cursor = conn.generate_id()?;
    conn.create_glyph_cursor(cursor, font, font, 68, 69, 0, 0, 0, 0xffff, 0xffff, 0xffff)?;
    conn.close_font(font)?;
    const ASYNC: xproto::GrabMode = xproto::GrabMode::ASYNC;
    const SYNC: xproto::GrabMode = xproto::GrabMode::SYNC;
    conn.grab_key(false, w, ModMask::CONTROL, KEY_S, ASYNC, ASYNC)?
        .check()?;
    conn.grab_key(true, w, ModMask::ANY, KEY_D, ASYNC, SYNC)?
        .check()?;
    conn.ungrab_key(KEY_D, w, ModMask::LOCK)?.check()?;
    conn.grab_key(false, root, ModMask::M4, KEY_A, ASYNC, ASYNC)?
        .check()?;
    conn.grab_button(
        false,
        w,
        xproto::EventMask::BUTTON_PRESS | xproto::EventMask::BUTTON_RELEASE,
        ASYNC,
        SYNC,
        x11rb::NONE,
        cursor,
        xproto::ButtonIndex::M3,
        ModMask::SHIFT,
    )?
    .check()?;
    conn.sync()?;
    Ok(Built { window: w, cursor })
}

fn check_grabs_captured(s: &winsession::Session, b: &Built) {
    let root = s.setup.root;
    let mut g = s.passive_grabs.clone();
    g.sort_by_key(|g| (g.button, g.detail));
    assert_eq!(g.len(), 4, "{g:?}");
    let (a, s_, d, btn) = (&g[0], &g[1], &g[2], &g[3]);
    assert_eq!(
        (a.window, a.detail, a.modifiers, a.button),
        (root, KEY_A, 0x40, false)
    );
    assert_eq!(
        (s_.window, s_.detail, s_.modifiers, s_.owner_events),
        (b.window, KEY_S, 4, false)
    );
    assert_eq!((s_.pointer_mode, s_.keyboard_mode), (1, 1));
    assert_eq!(
        (d.window, d.detail, d.modifiers, d.owner_events),
        (b.window, KEY_D, 0x8000, true)
    );
    assert_eq!(
        (d.pointer_mode, d.keyboard_mode),
        (1, 0),
        "pointer async, keyboard sync"
    );
    let m = d
        .modifier_mask
        .as_ref()
        .expect("AnyModifier grab with an exception");
    assert_eq!(m[0], 0xfb, "only LockMask (value 2, bit 2) cut out: {m:?}");
    assert!(m[1..].iter().all(|&b| b == 0xff));
    assert_eq!(
        (
            btn.window,
            btn.detail,
            btn.modifiers,
            btn.cursor,
            btn.confine_to
        ),
        (b.window, 3, 1, b.cursor, 0)
    );
    assert_eq!(btn.event_mask, 0x0c);
    assert_eq!((btn.pointer_mode, btn.keyboard_mode), (1, 0));
}

fn is_access(r: Result<(), x11rb::errors::ReplyError>) -> bool {
    matches!(r, Err(x11rb::errors::ReplyError::X11Error(e)) if e.error_kind == x11rb::protocol::ErrorKind::Access)
}

#[test]
fn winsession_passive_grabs_round_trip() {
    with_timeout(90, || -> Result<()> {
        let a = Xvfb::start()?;
        let b = Xvfb::start()?;
        let ca = a.connect()?;
        let built = grab_like_motif(&ca)?;
        // Baseline on A: another client cannot take the same key.
        let oa = a.connect()?;
        const ASYNC: xproto::GrabMode = xproto::GrabMode::ASYNC;
        assert!(is_access(
            oa.grab_key(false, built.window, ModMask::CONTROL, KEY_S, ASYNC, ASYNC)?
                .check()
        ));

        let sa = winsession::capture(&ca, &winsession::CaptureOptions::default())?;
        check_grabs_captured(&sa, &built);
        assert!(
            !sa.unknown.iter().any(|u| u.contains("grab")),
            "{:?}",
            sa.unknown
        );
        let sa = winsession::from_bytes(&winsession::to_bytes(&sa)?)?;

        let cb = b.connect()?;
        let ob = b.connect()?;
        let _ = ob.intern_atom(false, b"GRABS_TEST_PAD")?.reply()?;
        let regen = winsession::regenerate(&cb, &sa, &winsession::RegenOptions::default())?;
        assert!(regen.warnings.is_empty(), "{:?}", regen.warnings);
        let wb = regen.xid_map[&built.window];
        let root_b = ob.setup().roots[0].root;
        let try_key = |w: u32, m: ModMask, k: u8| {
            let r = ob
                .grab_key(false, w, m, k, ASYNC, ASYNC)
                .map_err(anyhow::Error::from)?
                .check();
            if r.is_ok() {
                ob.ungrab_key(k, w, m)?.check()?;
            }
            Ok::<_, anyhow::Error>(r)
        };
        assert!(
            is_access(try_key(wb, ModMask::CONTROL, KEY_S)?),
            "Ctrl+s on B"
        );
        assert!(
            is_access(try_key(root_b, ModMask::M4, KEY_A)?),
            "root grab on B"
        );
        assert!(
            is_access(try_key(wb, ModMask::SHIFT, KEY_D)?),
            "AnyModifier d"
        );
        assert!(is_access(try_key(wb, 0u16.into(), KEY_D)?), "AnyModifier d");
        assert!(
            try_key(wb, ModMask::LOCK, KEY_D)?.is_ok(),
            "Lock+d was cut out of the AnyModifier grab on A and must stay free on B"
        );
        assert!(try_key(wb, ModMask::CONTROL, KEY_A)?.is_ok(), "not grabbed");
        let r = ob
            .grab_button(
                false,
                wb,
                xproto::EventMask::BUTTON_PRESS,
                ASYNC,
                ASYNC,
                x11rb::NONE,
                x11rb::NONE,
                xproto::ButtonIndex::M3,
                ModMask::SHIFT,
            )?
            .check();
        assert!(is_access(r), "Shift+button 3 on B");

        // Captured again on B: the same grabs (in B's numbers).
        let sb = winsession::capture(&cb, &winsession::CaptureOptions::default())?;
        let back = Built {
            window: wb,
            cursor: regen.xid_map[&built.cursor],
        };
        check_grabs_captured(&sb, &back);
        Ok(())
    })
    .unwrap();
}

#[test]
fn winsession_passive_grabs_from_a_protocol_1_2_server() {
    with_timeout(60, || -> Result<()> {
        let a = Xvfb::start_with(XvfbOptions {
            env: vec![("GUIEVICT_XEXT_PROTOCOL_MINOR".into(), "2".into())],
            ..Default::default()
        })?;
        let ca = a.connect()?;
        grab_like_motif(&ca)?;
        let s = winsession::capture(&ca, &winsession::CaptureOptions::default())?;
        assert!(s.passive_grabs.is_empty());
        assert!(
            s.unknown
                .iter()
                .any(|u| u.starts_with("4 passive grab(s)") && u.contains("not modelled")),
            "{:?}",
            s.unknown
        );
        assert!(
            s.windows.iter().all(|w| w.background.is_some()),
            "window details from the extension"
        );
        let b = Xvfb::start()?;
        let cb = b.connect()?;
        let regen = winsession::regenerate(&cb, &s, &winsession::RegenOptions::default())?;
        assert!(
            regen.warnings.iter().any(|w| w.contains("passive grab(s)")),
            "{:?}",
            regen.warnings
        );
        Ok(())
    })
    .unwrap();
}

/// A 64×48 pattern: a distinct colour per 8×8 block.
fn pattern_color(x: u16, y: u16) -> u32 {
    let i = u32::from(x / 8) * 7 + u32::from(y / 8) * 13;
    ((i * 37) & 0xff) << 16 | ((i * 91) & 0xff) << 8 | ((i * 53) & 0xff)
}

fn window_pixels(conn: &RustConnection, w: u32, width: u16, height: u16) -> Result<Vec<u32>> {
    let img = conn
        .get_image(xproto::ImageFormat::Z_PIXMAP, w, 0, 0, width, height, !0)?
        .reply()?;
    Ok(img
        .data
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) & 0xff_ffff)
        .collect())
}

#[test]
fn winsession_dbe_back_buffer_round_trip() {
    with_timeout(90, || -> Result<()> {
        let a = Xvfb::start()?;
        let b = Xvfb::start()?;
        let ca = a.connect()?;
        ca.dbe_query_version(1, 0)?.reply()?;
        let (w, h) = (64u16, 48u16);
        let win = window(&ca, w, h)?;
        let bb = ca.generate_id()?;
        ca.dbe_allocate_back_buffer(win, bb, 1)?.check()?; // swap action Background
        let gc = ca.generate_id()?;
        ca.create_gc(gc, bb, &xproto::CreateGCAux::new())?;
        for y in (0..h).step_by(8) {
            for x in (0..w).step_by(8) {
                ca.change_gc(
                    gc,
                    &xproto::ChangeGCAux::new().foreground(pattern_color(x, y)),
                )?;
                ca.poly_fill_rectangle(
                    bb,
                    gc,
                    &[xproto::Rectangle {
                        x: x as i16,
                        y: y as i16,
                        width: 8,
                        height: 8,
                    }],
                )?;
            }
        }
        // A RENDER picture on the back buffer (what cairo makes for GTK's double buffering).
        let formats = ca.render_query_pict_formats()?.reply()?;
        let fmt = formats
            .formats
            .iter()
            .find(|f| f.depth == 24 && f.type_ == render::PictType::DIRECT)
            .ok_or_else(|| anyhow!("no depth-24 format"))?
            .id;
        let pic = ca.generate_id()?;
        ca.render_create_picture(pic, bb, fmt, &render::CreatePictureAux::new())?
            .check()?;
        ca.sync()?;

        let sa = winsession::capture(&ca, &winsession::CaptureOptions::default())?;
        assert_eq!(sa.dbe_buffers.len(), 1, "{:?}", sa.dbe_buffers);
        assert_eq!((sa.dbe_buffers[0].id, sa.dbe_buffers[0].window), (bb, win));
        assert!(sa.dbe_buffers[0].contents.is_some(), "back buffer pixels");
        let p = sa
            .pictures
            .iter()
            .find(|p| p.id == pic)
            .context("picture captured")?;
        assert_eq!(p.drawable, bb, "the picture names the back buffer");
        assert!(
            !sa.unknown.iter().any(|u| u.contains("dbe")),
            "{:?}",
            sa.unknown
        );
        let sa = winsession::from_bytes(&winsession::to_bytes(&sa)?)?;

        let cb = b.connect()?;
        let regen = winsession::regenerate(&cb, &sa, &winsession::RegenOptions::default())?;
        assert!(regen.warnings.is_empty(), "{:?}", regen.warnings);
        let (wb, bbb, picb) = (regen.xid_map[&win], regen.xid_map[&bb], regen.xid_map[&pic]);
        // The picture on B draws into the back buffer without an error.
        cb.render_fill_rectangles(
            render::PictOp::OVER,
            picb,
            render::Color {
                red: 0,
                green: 0,
                blue: 0,
                alpha: 0,
            },
            &[xproto::Rectangle {
                x: 0,
                y: 0,
                width: 1,
                height: 1,
            }],
        )?
        .check()?;
        let attrs = cb.dbe_get_back_buffer_attributes(bbb)?.reply()?;
        assert_eq!(attrs.attributes.window, wb);
        cb.dbe_swap_buffers(&[dbe::SwapInfo {
            window: wb,
            swap_action: dbe::SwapAction::UNDEFINED,
        }])?
        .check()?;
        cb.sync()?;
        let got = window_pixels(&cb, wb, w, h)?;
        let mut bad = 0;
        for y in 0..h {
            for x in 0..w {
                if got[usize::from(y) * usize::from(w) + usize::from(x)] != pattern_color(x, y) {
                    bad += 1;
                }
            }
        }
        assert_eq!(
            bad, 0,
            "pixels of the swapped-in back buffer differ from A's"
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn winsession_active_grabs_are_carried() {
    with_timeout(60, || -> Result<()> {
        let a = Xvfb::start()?;
        let ca = a.connect()?;
        let w = window(&ca, 50, 50)?;
        ca.sync()?;
        let r = ca
            .grab_pointer(
                false,
                w,
                xproto::EventMask::BUTTON_PRESS,
                xproto::GrabMode::ASYNC,
                xproto::GrabMode::ASYNC,
                x11rb::NONE,
                x11rb::NONE,
                x11rb::CURRENT_TIME,
            )?
            .reply()?;
        assert_eq!(r.status, xproto::GrabStatus::SUCCESS);
        // Another client's keyboard grab is not this client's.
        let oa = a.connect()?;
        let ow = window(&oa, 20, 20)?;
        oa.sync()?;
        let r = oa
            .grab_keyboard(
                false,
                ow,
                x11rb::CURRENT_TIME,
                xproto::GrabMode::ASYNC,
                xproto::GrabMode::ASYNC,
            )?
            .reply()?;
        assert_eq!(r.status, xproto::GrabStatus::SUCCESS);
        let s = winsession::capture(&ca, &winsession::CaptureOptions::default())?;
        assert!(
            !s.unknown.iter().any(|u| u.starts_with("active ")),
            "{:?}",
            s.unknown
        );
        assert_eq!(s.active_grabs.len(), 1, "{:?}", s.active_grabs);
        let g = &s.active_grabs[0];
        assert!(!g.keyboard && !g.xi2 && g.window == w, "{g:?}");
        assert_eq!(
            u32::from(g.event_mask),
            u32::from(xproto::EventMask::BUTTON_PRESS)
        );
        // Made again on B: the regenerating client holds the pointer there.
        let b = Xvfb::start()?;
        let cb = b.connect()?;
        let regen = winsession::regenerate(&cb, &s, &winsession::RegenOptions::default())?;
        assert!(regen.warnings.is_empty(), "{:?}", regen.warnings);
        assert!(
            xvfb_harness::pointer_grabbed(&b.display),
            "no pointer grab on B"
        );
        // On a server where another client holds the pointer, the grab cannot be made: a
        // warning (hence a loss) says so.
        let c = Xvfb::start()?;
        let holder = c.connect()?;
        let hroot = holder.setup().roots[0].root;
        holder
            .grab_pointer(
                false,
                hroot,
                xproto::EventMask::NO_EVENT,
                xproto::GrabMode::ASYNC,
                xproto::GrabMode::ASYNC,
                x11rb::NONE,
                x11rb::NONE,
                x11rb::CURRENT_TIME,
            )?
            .reply()?;
        let regen =
            winsession::regenerate(&c.connect()?, &s, &winsession::RegenOptions::default())?;
        assert!(
            regen
                .warnings
                .iter()
                .any(|w| w.contains("active pointer grab") && w.contains("AlreadyGrabbed")),
            "{:?}",
            regen.warnings
        );
        Ok(())
    })
    .unwrap();
}
