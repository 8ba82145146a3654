//! dbe-dizzy: a small, real DOUBLE-BUFFER client for the tests, in the spirit of xorg's
//! xdbedizzy (which Debian does not ship). It draws every frame into a DBE back buffer — core
//! PolyFillRectangle stripes that move with the frame number, then a translucent square
//! composited through a RENDER picture made on the back buffer (what cairo does for GTK's
//! double buffering) — and shows it with DbeSwapBuffers, 20 frames a second. Any X error ends
//! it with exit status 2, so a test sees a broken back buffer as a dead process.
//!
//! Usage: `dbe-dizzy [STATUS_FILE]`: the file gets "frame N" every 20 frames.

use anyhow::{Context, Result};
use std::io::Write;
use std::time::Duration;
use x11rb::connection::Connection;
use x11rb::protocol::dbe::{self, ConnectionExt as _};
use x11rb::protocol::render::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::protocol::Event;
use x11rb::wrapper::ConnectionExt as _;

const W: u16 = 200;
const H: u16 = 150;

fn main() {
    if let Err(e) = run() {
        eprintln!("dbe-dizzy: {e:#}");
        std::process::exit(2);
    }
}

fn run() -> Result<()> {
    let status = std::env::args().nth(1);
    let (conn, screen_num) = x11rb::connect(None).context("connect")?;
    let screen = &conn.setup().roots[screen_num];
    let root = screen.root;
    conn.dbe_query_version(1, 0)?
        .reply()
        .context("DOUBLE-BUFFER")?;
    let win = conn.generate_id()?;
    conn.create_window(
        0,
        win,
        root,
        20,
        20,
        W,
        H,
        0,
        xproto::WindowClass::INPUT_OUTPUT,
        0,
        &xproto::CreateWindowAux::new()
            .background_pixel(screen.white_pixel)
            .event_mask(xproto::EventMask::EXPOSURE),
    )?;
    conn.change_property8(
        xproto::PropMode::REPLACE,
        win,
        xproto::AtomEnum::WM_NAME,
        xproto::AtomEnum::STRING,
        b"dbe-dizzy",
    )?;
    let back = conn.generate_id()?;
    conn.dbe_allocate_back_buffer(win, back, dbe::SwapAction::BACKGROUND.into())?;
    let gc = conn.generate_id()?;
    conn.create_gc(gc, back, &xproto::CreateGCAux::new().graphics_exposures(0))?;
    let formats = conn.render_query_pict_formats()?.reply()?;
    let fmt = formats
        .formats
        .iter()
        .find(|f| f.depth == screen.root_depth && f.type_ == render::PictType::DIRECT)
        .context("no picture format for the root depth")?
        .id;
    let pic = conn.generate_id()?;
    conn.render_create_picture(pic, back, fmt, &render::CreatePictureAux::new())?;
    conn.map_window(win)?;
    conn.sync()?;
    let mut frame: u32 = 0;
    loop {
        while let Some(ev) = conn.poll_for_event()? {
            if let Event::Error(e) = ev {
                anyhow::bail!("X error: {e:?}");
            }
        }
        draw(&conn, back, gc, pic, frame)?;
        conn.dbe_swap_buffers(&[dbe::SwapInfo {
            window: win,
            swap_action: dbe::SwapAction::BACKGROUND,
        }])?;
        // A round trip per frame: errors of this frame arrive before the next.
        conn.get_input_focus()?.reply()?;
        frame += 1;
        if frame.is_multiple_of(20) {
            if let Some(p) = &status {
                let mut f = std::fs::File::create(p)?;
                writeln!(f, "frame {frame}")?;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn draw(conn: &impl Connection, back: u32, gc: u32, pic: u32, frame: u32) -> Result<()> {
    for i in 0..10u32 {
        let c = (i * 25 + frame * 7) & 0xff;
        conn.change_gc(
            gc,
            &xproto::ChangeGCAux::new().foreground((c << 16) | ((255 - c) << 8) | (c / 2)),
        )?;
        let x = ((i * 20 + frame * 3) % u32::from(W)) as i16;
        conn.poly_fill_rectangle(
            back,
            gc,
            &[xproto::Rectangle {
                x,
                y: 0,
                width: 20,
                height: H,
            }],
        )?;
    }
    let y = ((frame * 5) % u32::from(H - 40)) as i16;
    conn.render_fill_rectangles(
        render::PictOp::OVER,
        pic,
        render::Color {
            red: 0x4000,
            green: 0x4000,
            blue: 0xc000,
            alpha: 0xc000,
        },
        &[xproto::Rectangle {
            x: 80,
            y,
            width: 40,
            height: 40,
        }],
    )?;
    Ok(())
}
