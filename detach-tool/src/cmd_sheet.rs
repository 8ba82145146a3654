//! `guievict show FILE --png OUT.png`: a saved window session flows in; a private headless Xvfb
//! (its own display, `-nolisten tcp`, killed on every path) has the session regenerated on it —
//! windows with their geometry, borders, backgrounds and background pixmaps, subwindows, every
//! pixmap with its pixels — and each top-level window is read back (`GetImage` of the root
//! around it, raised to the top), scaled to a thumbnail and laid out on a contact sheet with its
//! ID, size and title; a PNG flows out. What an application draws into its windows at run time
//! is not part of a session (it is redrawn on Expose after an attach), so the sheet shows what
//! the file holds, not a screenshot of the application.

use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ConfigureWindowAux, ConnectionExt as _, CreateGCAux, ImageFormat, StackMode,
};
use x11rb::rust_connection::RustConnection;

/// Largest thumbnail cell (pixels); larger windows are scaled down to fit.
const CELL_W: u32 = 320;
/// Largest thumbnail cell height.
const CELL_H: u32 = 240;
/// Caption lines under a thumbnail, in pixels (two lines of the `fixed` font).
const CAPTION_H: u32 = 30;
/// Space around cells.
const GAP: u32 = 12;
/// Cells per row.
const COLUMNS: u32 = 4;
/// Largest screen the private server is given.
const MAX_SCREEN: u32 = 8192;

/// The private server, killed and reaped when dropped.
struct PrivateXvfb {
    child: Child,
    display: String,
}

impl Drop for PrivateXvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `Xvfb -displayfd` with a `w`×`h`×24 screen; returns once it has told its display.
fn start_xvfb(w: u32, h: u32) -> Result<PrivateXvfb> {
    let (r, wr) = nix::unistd::pipe().context("pipe for Xvfb -displayfd")?;
    nix::fcntl::fcntl(
        std::os::fd::AsRawFd::as_raw_fd(&r),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .context("fcntl")?;
    let wfd = std::os::fd::AsRawFd::as_raw_fd(&wr);
    let child = Command::new("Xvfb")
        .arg("-displayfd")
        .arg(wfd.to_string())
        .args(["-nolisten", "tcp", "-noreset", "-screen", "0"])
        .arg(format!("{w}x{h}x24"))
        .env_remove("LD_PRELOAD")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    drop(wr);
    let child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "`show --png` regenerates the session on a private Xvfb, and Xvfb is not installed \
             (`sudo apt install xvfb`)"
        ),
        Err(e) => return Err(e).context("starting Xvfb"),
    };
    let mut server = PrivateXvfb {
        child,
        display: String::new(),
    };
    // The display number arrives as one line; EOF means the server died.
    let (tx, rx) = std::sync::mpsc::channel();
    let mut file = std::fs::File::from(r);
    std::thread::spawn(move || {
        let mut s = Vec::new();
        let mut b = [0u8; 1];
        while let Ok(1) = file.read(&mut b) {
            if b[0] == b'\n' {
                break;
            }
            s.push(b[0]);
        }
        let _ = tx.send(String::from_utf8_lossy(&s).into_owned());
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .context("the private Xvfb did not start within 20 s")?;
    let n: u32 = line
        .trim()
        .parse()
        .with_context(|| format!("the private Xvfb exited at start ({:?})", line.trim()))?;
    server.display = format!(":{n}");
    Ok(server)
}

/// An RGB picture.
struct Rgb {
    w: u32,
    h: u32,
    px: Vec<[u8; 3]>,
}

impl Rgb {
    fn new(w: u32, h: u32, fill: [u8; 3]) -> Self {
        Self {
            w,
            h,
            px: vec![fill; (w * h) as usize],
        }
    }

    /// Box-filtered copy scaled by `1/f` (f ≥ 1) onto `dst` at (x, y).
    fn blit_scaled(&self, dst: &mut Rgb, x: u32, y: u32, tw: u32, th: u32) {
        for ty in 0..th {
            let sy0 = ty * self.h / th;
            let sy1 = ((ty + 1) * self.h / th).max(sy0 + 1).min(self.h);
            for tx in 0..tw {
                let sx0 = tx * self.w / tw;
                let sx1 = ((tx + 1) * self.w / tw).max(sx0 + 1).min(self.w);
                let mut acc = [0u32; 3];
                let mut n = 0u32;
                for sy in sy0..sy1 {
                    for sx in sx0..sx1 {
                        let p = self.px[(sy * self.w + sx) as usize];
                        for c in 0..3 {
                            acc[c] += u32::from(p[c]);
                        }
                        n += 1;
                    }
                }
                let (dx, dy) = (x + tx, y + ty);
                if dx < dst.w && dy < dst.h && n > 0 {
                    dst.px[(dy * dst.w + dx) as usize] = acc.map(|a| (a / n) as u8);
                }
            }
        }
    }
}

/// Read a rectangle of the root (depth 24, 32 bits per pixel) as RGB.
fn grab(conn: &RustConnection, root: u32, x: i16, y: i16, w: u16, h: u16) -> Result<Rgb> {
    let setup = conn.setup();
    let screen = &setup.roots[0];
    let visual = screen
        .allowed_depths
        .iter()
        .flat_map(|d| d.visuals.iter())
        .find(|v| v.visual_id == screen.root_visual)
        .context("the private server has no root visual")?;
    let bpp = setup
        .pixmap_formats
        .iter()
        .find(|f| f.depth == screen.root_depth)
        .map(|f| f.bits_per_pixel)
        .unwrap_or(0);
    anyhow::ensure!(
        bpp == 32,
        "the private server stores depth 24 in {bpp} bits"
    );
    let img = conn
        .get_image(ImageFormat::Z_PIXMAP, root, x, y, w, h, !0)?
        .reply()
        .context("GetImage on the private server")?;
    let big = setup.image_byte_order == x11rb::protocol::xproto::ImageOrder::MSB_FIRST;
    let chan = |p: u32, mask: u32| -> u8 {
        if mask == 0 {
            return 0;
        }
        ((p & mask) >> mask.trailing_zeros()) as u8
    };
    let mut px = Vec::with_capacity(usize::from(w) * usize::from(h));
    for c in img
        .data
        .chunks_exact(4)
        .take(usize::from(w) * usize::from(h))
    {
        let b = [c[0], c[1], c[2], c[3]];
        let p = if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        };
        px.push([
            chan(p, visual.red_mask),
            chan(p, visual.green_mask),
            chan(p, visual.blue_mask),
        ]);
    }
    anyhow::ensure!(
        px.len() == usize::from(w) * usize::from(h),
        "GetImage returned {} of {} pixels",
        px.len(),
        usize::from(w) * usize::from(h)
    );
    Ok(Rgb {
        w: u32::from(w),
        h: u32::from(h),
        px,
    })
}

/// Draw `lines` in the `fixed` font on the private server and read them back.
fn caption(conn: &RustConnection, root: u32, lines: &[String], w: u32) -> Result<Rgb> {
    let w16 = u16::try_from(w).unwrap_or(u16::MAX);
    let h16 = CAPTION_H as u16;
    let screen = &conn.setup().roots[0];
    let pm = conn.generate_id()?;
    conn.create_pixmap(screen.root_depth, pm, root, w16, h16)?;
    let font = conn.generate_id()?;
    conn.open_font(font, b"fixed")?;
    let gc = conn.generate_id()?;
    conn.create_gc(
        gc,
        pm,
        &CreateGCAux::new()
            .foreground(screen.white_pixel)
            .background(screen.white_pixel)
            .font(font),
    )?;
    conn.poly_fill_rectangle(
        pm,
        gc,
        &[x11rb::protocol::xproto::Rectangle {
            x: 0,
            y: 0,
            width: w16,
            height: h16,
        }],
    )?;
    conn.change_gc(
        gc,
        &x11rb::protocol::xproto::ChangeGCAux::new().foreground(screen.black_pixel),
    )?;
    for (i, l) in lines.iter().enumerate() {
        // The fixed font is 6 pixels wide: cut what does not fit, keep Latin-1 only.
        let max = (w / 6) as usize;
        let text: Vec<u8> = l
            .chars()
            .map(|c| if (c as u32) < 256 { c as u8 } else { b'?' })
            .take(max.min(255))
            .collect();
        conn.image_text8(pm, gc, 0, 12 + 14 * i as i16, &text)?;
    }
    let img = grab_drawable(conn, pm, w16, h16);
    let _ = conn.free_gc(gc);
    let _ = conn.close_font(font);
    let _ = conn.free_pixmap(pm);
    img
}

fn grab_drawable(conn: &RustConnection, d: u32, w: u16, h: u16) -> Result<Rgb> {
    grab(conn, d, 0, 0, w, h)
}

/// The session's top-level windows: those whose parent is not one of the session's windows.
fn toplevels(s: &winsession::Session) -> Vec<&winsession::Window> {
    let ids: HashSet<u32> = s.windows.iter().map(|w| w.id).collect();
    // InputOnly windows (class 2) have nothing to see; toolkits keep unmapped 1×1 helpers.
    let all: Vec<&winsession::Window> = s
        .windows
        .iter()
        .filter(|w| !ids.contains(&w.parent) && w.class != 2 && w.width > 1 && w.height > 1)
        .collect();
    let mapped: Vec<&winsession::Window> = all.iter().copied().filter(|w| w.mapped()).collect();
    if mapped.is_empty() {
        all
    } else {
        mapped
    }
}

/// What `render` made.
pub struct Sheet {
    /// Windows drawn.
    pub windows: usize,
    /// Sheet size.
    pub width: u32,
    /// Sheet size.
    pub height: u32,
    /// Warnings of the regeneration (what was not recreated exactly).
    pub warnings: Vec<String>,
}

/// Render the contact sheet of `session` into `out`.
pub fn render(session: &winsession::Session, out: &Path) -> Result<Sheet> {
    let tops = toplevels(session);
    if tops.is_empty() {
        bail!("the session has no top-level window to draw");
    }
    let need_w = tops
        .iter()
        .map(|w| u32::from(w.width) + 2 * u32::from(w.border_width))
        .max()
        .unwrap_or(1)
        .max(u32::from(session.setup.width))
        .clamp(640, MAX_SCREEN);
    let need_h = tops
        .iter()
        .map(|w| u32::from(w.height) + 2 * u32::from(w.border_width))
        .max()
        .unwrap_or(1)
        .max(u32::from(session.setup.height))
        .clamp(480, MAX_SCREEN);
    let server = start_xvfb(need_w, need_h)?;
    let (conn, _, name) = crate::xconn::connect(Some(&server.display))?;
    let root = conn.setup().roots[0].root;
    let regen = winsession::regenerate(
        &conn,
        session,
        &winsession::RegenOptions {
            map_windows: true,
            screen: 0,
            font_substitution: true,
            restore_selections: false,
            attach_shm: false,
        },
    )
    .with_context(|| format!("regenerating the session on the private server {name}"))?;
    let net_wm_name = conn.intern_atom(false, b"_NET_WM_NAME")?.reply()?.atom;
    let utf8 = conn.intern_atom(false, b"UTF8_STRING")?.reply()?.atom;

    let cols = COLUMNS.min(tops.len() as u32);
    let rows = (tops.len() as u32).div_ceil(cols);
    let sheet_w = GAP + cols * (CELL_W + GAP);
    let sheet_h = GAP + rows * (CELL_H + CAPTION_H + GAP);
    let mut sheet = Rgb::new(sheet_w, sheet_h, [0xe8, 0xe8, 0xe8]);
    for (i, w) in tops.iter().enumerate() {
        let (col, row) = (i as u32 % cols, i as u32 / cols);
        let cx = GAP + col * (CELL_W + GAP);
        let cy = GAP + row * (CELL_H + CAPTION_H + GAP);
        let Some(&new) = regen.xid_map.get(&w.id) else {
            continue;
        };
        let title = crate::cmd_clients::title(&conn, new, net_wm_name, utf8);
        let bw = w.border_width.saturating_mul(2);
        let clamp = |v: u16, max: u32| u16::try_from(max).map_or(v, |m| v.min(m)).max(1);
        let (fw, fh) = (
            clamp(w.width.saturating_add(bw), need_w),
            clamp(w.height.saturating_add(bw), need_h),
        );
        // Alone on top at the origin: a mapped window shows its own pixels; an unmapped one is
        // mapped for the picture (it is the private server's copy).
        conn.configure_window(
            new,
            &ConfigureWindowAux::new()
                .x(0)
                .y(0)
                .stack_mode(StackMode::ABOVE),
        )?;
        if !w.mapped() {
            conn.map_window(new)?;
        }
        conn.get_input_focus()?.reply()?;
        let img = grab(&conn, root, 0, 0, fw, fh)?;
        if !w.mapped() {
            conn.unmap_window(new)?;
        }
        let scale = (f64::from(img.w) / f64::from(CELL_W))
            .max(f64::from(img.h) / f64::from(CELL_H))
            .max(1.0);
        let (tw, th) = (
            ((f64::from(img.w) / scale) as u32).max(1),
            ((f64::from(img.h) / scale) as u32).max(1),
        );
        img.blit_scaled(&mut sheet, cx, cy, tw, th);
        let cap = caption(
            &conn,
            root,
            &[
                format!(
                    "{:#x} {}x{}{}",
                    w.id,
                    w.width,
                    w.height,
                    if w.mapped() { "" } else { " unmapped" }
                ),
                title.unwrap_or_else(|| "(no title)".into()),
            ],
            CELL_W,
        )?;
        cap.blit_scaled(&mut sheet, cx, cy + CELL_H + 2, cap.w, cap.h);
    }
    drop(conn);
    drop(server);
    write_png(&sheet, out)?;
    Ok(Sheet {
        windows: tops.len(),
        width: sheet_w,
        height: sheet_h,
        warnings: regen.warnings,
    })
}

fn write_png(img: &Rgb, out: &Path) -> Result<()> {
    let f = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), img.w, img.h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut wr = enc
        .write_header()
        .with_context(|| format!("writing {}", out.display()))?;
    let data: Vec<u8> = img.px.iter().flatten().copied().collect();
    wr.write_image_data(&data)
        .with_context(|| format!("writing {}", out.display()))?;
    wr.finish()
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}
