//! shm-painter: a small, real MIT-SHM client for the tests. It paints a window only through
//! shared memory — ShmPutImage with `send_event` (waiting for each ShmCompletion, as toolkits
//! do before reusing the memory) — and reads every frame back with ShmGetImage into the same
//! segment to check what the server holds. Each key press advances the pattern and, like Qt
//! on a resize, replaces the segment (detach the old one, attach a new one) before painting.
//! Status lines go to the file named on the command line ("paint N ok", "paint N MISMATCH").
//!
//! Usage: `shm-painter sysv|fd|create STATUS_FILE` — how segments are made: System V
//! (`ShmAttach`), a memfd the client passes (`ShmAttachFd`), or one the server creates
//! (`ShmCreateSegment`). `SHM_PAINTER_SIZE=WxH` sets the window size (default 160x120), `SHM_PAINTER_POS=X,Y` its place;
//! with `SHM_PAINTER_BENCH=N` a key press instead paints N frames back to back (each waits for
//! its ShmCompletion) and reports "bench N frames in T ms" (used by `guievict-bench`).
//! `SHM_PAINTER_PIXMAP=1` paints through a pixmap made with ShmCreatePixmap over the segment
//! instead (CopyArea to the window after writing the memory); a new segment and pixmap come
//! with every odd frame, even frames reuse them with new contents; with `SHM_PAINTER_REUSE=1`
//! too, the first segment and pixmap serve every frame. Before each pixmap-mode frame the
//! server draws a pixel into the pixmap and the painter checks that it reached the segment
//! ("pixmap-draw N ok" / "pixmap-draw N MISMATCH": the pixmap is the shared memory).

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use x11rb::connection::{Connection, RequestConnection as _};
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Sysv,
    Fd,
    Create,
}

/// A segment attached to the server and mapped here.
struct Segment {
    id: u32,
    addr: *mut u8,
    len: usize,
    sysv: bool,
}

impl Segment {
    fn new(conn: &RustConnection, mode: Mode, len: usize) -> Result<Self> {
        let id = conn.generate_id()?;
        match mode {
            Mode::Sysv => {
                // SAFETY: creating a private segment and attaching it at a kernel-chosen address.
                let shmid =
                    unsafe { libc::shmget(libc::IPC_PRIVATE, len, libc::IPC_CREAT | 0o600) };
                if shmid < 0 {
                    bail!("shmget: {}", std::io::Error::last_os_error());
                }
                // SAFETY: see above.
                let p = unsafe { libc::shmat(shmid, std::ptr::null(), 0) };
                if p as isize == -1 {
                    bail!("shmat: {}", std::io::Error::last_os_error());
                }
                conn.shm_attach(id, shmid as u32, false)?.check()?;
                // As real clients do: the segment goes away with its last attachment.
                // SAFETY: marks the segment for removal only.
                unsafe { libc::shmctl(shmid, libc::IPC_RMID, std::ptr::null_mut()) };
                Ok(Self {
                    id,
                    addr: p.cast(),
                    len,
                    sysv: true,
                })
            }
            Mode::Fd => {
                // SAFETY: static NUL-terminated name.
                let raw = unsafe { libc::memfd_create(c"shm-painter".as_ptr(), libc::MFD_CLOEXEC) };
                if raw < 0 {
                    bail!("memfd_create: {}", std::io::Error::last_os_error());
                }
                // SAFETY: a new descriptor nobody else owns.
                let fd = unsafe { OwnedFd::from_raw_fd(raw) };
                nix::unistd::ftruncate(&fd, len as i64)?;
                let addr = map(&fd, len)?;
                conn.shm_attach_fd(id, fd, false)?.check()?;
                Ok(Self {
                    id,
                    addr,
                    len,
                    sysv: false,
                })
            }
            Mode::Create => {
                let r = conn.shm_create_segment(id, len as u32, false)?.reply()?;
                let fd: OwnedFd = r.shm_fd;
                let addr = map(&fd, len)?;
                Ok(Self {
                    id,
                    addr,
                    len,
                    sysv: false,
                })
            }
        }
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: our own live mapping of `len` bytes.
        unsafe { std::slice::from_raw_parts_mut(self.addr, self.len) }
    }

    fn release(self, conn: &RustConnection) -> Result<()> {
        conn.shm_detach(self.id)?;
        if self.sysv {
            // SAFETY: detaching our own attachment once.
            unsafe { libc::shmdt(self.addr.cast()) };
        } else {
            // SAFETY: unmapping our own mapping once.
            unsafe { libc::munmap(self.addr.cast(), self.len) };
        }
        Ok(())
    }
}

fn map(fd: &OwnedFd, len: usize) -> Result<*mut u8> {
    // SAFETY: a fresh shared mapping at a kernel-chosen address.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        bail!("mmap: {}", std::io::Error::last_os_error());
    }
    Ok(p.cast())
}

/// The picture of frame `n`: diagonal stripes whose colours and phase depend on `n`.
fn pixel(n: u32, x: usize, y: usize) -> u32 {
    const COLOURS: [u32; 5] = [0xd03030, 0x30a040, 0x3050d0, 0xe0c020, 0x202020];
    let band = ((x + y) / 10 + n as usize) % COLOURS.len();
    COLOURS[band] ^ (n.wrapping_mul(0x0a0b0c) & 0x3f3f3f)
}

struct Painter {
    conn: RustConnection,
    w: u16,
    h: u16,
    bench: Option<u32>,
    win: u32,
    gc: u32,
    depth: u8,
    mode: Mode,
    seg: Option<Segment>,
    frame: u32,
    status: std::fs::File,
    held: std::collections::VecDeque<Event>,
    completion: u8,
    /// The shared pixmap over the segment (pixmap mode).
    pixmap: Option<u32>,
    pixmap_mode: bool,
    /// Pixmap mode: keep the first segment and pixmap for every frame.
    reuse: bool,
}

impl Painter {
    fn log(&mut self, line: &str) {
        let _ = writeln!(self.status, "{line}");
        let _ = self.status.flush();
    }

    fn frame_bytes(&self) -> usize {
        usize::from(self.w) * usize::from(self.h) * 4
    }

    /// Draw frame `n` into the segment and put it on the window; returns once the server
    /// (or guimux) says the memory is free again.
    fn put(&mut self, n: u32) -> Result<u32> {
        let (w, h) = (self.w, self.h);
        if let Some(pix) = self.pixmap {
            // Drawing into the pixmap must reach the segment (the pixmap *is* that memory).
            let mark = 0x00_8000 | (n.wrapping_mul(40503) & 0xff_00ff);
            self.conn
                .change_gc(self.gc, &xproto::ChangeGCAux::new().foreground(mark))?;
            self.conn.poly_fill_rectangle(
                pix,
                self.gc,
                &[xproto::Rectangle {
                    x: 0,
                    y: 0,
                    width: 1,
                    height: 1,
                }],
            )?;
            self.conn.get_input_focus()?.reply()?;
            let seg = self.seg.as_mut().context("no segment")?;
            let b = &seg.bytes()[..4];
            let got = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) & 0xff_ffff;
            let line = format!(
                "pixmap-draw {n} {} (want {mark:06x}, memory has {got:06x})",
                if got == mark { "ok" } else { "MISMATCH" }
            );
            self.log(&line);
        }
        let frame = self.frame_bytes();
        let seg = self.seg.as_mut().context("no segment")?;
        let id = seg.id;
        let buf = seg.bytes();
        for y in 0..usize::from(h) {
            for x in 0..usize::from(w) {
                let at = (y * usize::from(w) + x) * 4;
                buf[at..at + 4].copy_from_slice(&pixel(n, x, y).to_ne_bytes());
            }
        }
        buf[frame..].fill(0);
        if let Some(pix) = self.pixmap {
            // The server reads the memory through the pixmap when it copies it.
            self.conn
                .copy_area(pix, self.win, self.gc, 0, 0, 0, 0, w, h)?;
            self.conn.get_input_focus()?.reply()?;
            return Ok(id);
        }
        self.conn.shm_put_image(
            self.win,
            self.gc,
            w,
            h,
            0,
            0,
            w,
            h,
            0,
            0,
            self.depth,
            u8::from(xproto::ImageFormat::Z_PIXMAP),
            true,
            id,
            0,
        )?;
        self.conn.flush()?;
        // The memory is the server's until its ShmCompletion arrives.
        loop {
            let ev = self.conn.wait_for_event()?;
            match ev {
                Event::ShmCompletion(c) if c.shmseg == id => break,
                Event::Unknown(ref raw)
                    if raw.first().map(|b| b & 0x7f) == Some(self.completion) =>
                {
                    break
                }
                other => self.held.push_back(other),
            }
        }
        Ok(id)
    }

    /// A pixmap over the current segment (ShmCreatePixmap).
    fn make_pixmap(&mut self) -> Result<()> {
        let seg = self.seg.as_ref().context("no segment")?.id;
        let pix = self.conn.generate_id()?;
        self.conn
            .shm_create_pixmap(pix, self.win, self.w, self.h, self.depth, seg, 0)?
            .check()?;
        self.pixmap = Some(pix);
        Ok(())
    }

    fn paint(&mut self) -> Result<()> {
        let n = self.frame;
        let id = self.put(n)?;
        let (w, h) = (self.w, self.h);
        let frame = self.frame_bytes();
        let r = self
            .conn
            .shm_get_image(
                self.win,
                0,
                0,
                w,
                h,
                !0,
                u8::from(xproto::ImageFormat::Z_PIXMAP),
                id,
                frame as u32,
            )?
            .reply()?;
        let seg = self.seg.as_mut().context("no segment")?;
        let buf = seg.bytes();
        let (drawn, read) = buf.split_at(frame);
        let same = r.size as usize == frame
            && drawn
                .chunks_exact(4)
                .zip(read[..frame].chunks_exact(4))
                .all(|(a, b)| {
                    let a = u32::from_ne_bytes([a[0], a[1], a[2], a[3]]) & 0xff_ffff;
                    let b = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) & 0xff_ffff;
                    a == b
                });
        let line = format!(
            "paint {n} {} (size {})",
            if same { "ok" } else { "MISMATCH" },
            r.size
        );
        self.log(&line);
        Ok(())
    }

    fn next_event(&mut self) -> Result<Event> {
        if let Some(e) = self.held.pop_front() {
            return Ok(e);
        }
        Ok(self.conn.wait_for_event()?)
    }

    fn run(&mut self) -> Result<()> {
        loop {
            match self.next_event()? {
                Event::Expose(e) if e.count == 0 => self.paint()?,
                Event::KeyPress(_) if self.bench.is_some() => {
                    let n = self.bench.unwrap_or(1);
                    let t = std::time::Instant::now();
                    for i in 0..n {
                        self.put(self.frame + i)?;
                    }
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    self.log(&format!("bench {n} frames in {ms:.3} ms"));
                }
                Event::KeyPress(_) => {
                    self.frame += 1;
                    // Replace the segment, as toolkits do when their backing store changes
                    // (pixmap mode: every other frame).
                    if !self.pixmap_mode || (self.frame % 2 == 1 && !self.reuse) {
                        if let Some(p) = self.pixmap.take() {
                            self.conn.free_pixmap(p)?;
                        }
                        if let Some(old) = self.seg.take() {
                            old.release(&self.conn)?;
                        }
                        let len = self.frame_bytes() * 2;
                        self.seg = Some(Segment::new(&self.conn, self.mode, len)?);
                        if self.pixmap_mode {
                            self.make_pixmap()?;
                        }
                    }
                    let line = format!("key {}", self.frame);
                    self.log(&line);
                    self.paint()?;
                }
                _ => {}
            }
        }
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(status)) = (args.get(1), args.get(2)) else {
        bail!("usage: shm-painter sysv|fd|create STATUS_FILE");
    };
    let mode = match mode.as_str() {
        "sysv" => Mode::Sysv,
        "fd" => Mode::Fd,
        "create" => Mode::Create,
        m => bail!("unknown mode {m}"),
    };
    let status = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(status)
        .with_context(|| format!("opening {status}"))?;
    let (conn, screen_num) = x11rb::connect(None).context("connecting to the X server")?;
    let v = conn.shm_query_version()?.reply().context("no MIT-SHM")?;
    let completion = conn
        .extension_information(shm::X11_EXTENSION_NAME)?
        .context("no MIT-SHM")?
        .first_event;
    let screen = conn.setup().roots[screen_num].clone();
    let (w, h) = match std::env::var("SHM_PAINTER_SIZE") {
        Ok(v) => {
            let (a, b) = v.split_once('x').context("SHM_PAINTER_SIZE=WxH")?;
            (a.parse::<u16>()?, b.parse::<u16>()?)
        }
        Err(_) => (160, 120),
    };
    let bench = match std::env::var("SHM_PAINTER_BENCH") {
        Ok(v) => Some(v.parse::<u32>().context("SHM_PAINTER_BENCH=N")?),
        Err(_) => None,
    };
    let win = conn.generate_id()?;
    let (x, y) = match std::env::var("SHM_PAINTER_POS") {
        Ok(v) => {
            let (a, b) = v.split_once(',').context("SHM_PAINTER_POS=X,Y")?;
            (a.parse::<i16>()?, b.parse::<i16>()?)
        }
        Err(_) => (0, 0),
    };
    conn.create_window(
        screen.root_depth,
        win,
        screen.root,
        x,
        y,
        w,
        h,
        0,
        xproto::WindowClass::INPUT_OUTPUT,
        screen.root_visual,
        &xproto::CreateWindowAux::new()
            .background_pixel(screen.white_pixel)
            .event_mask(xproto::EventMask::EXPOSURE | xproto::EventMask::KEY_PRESS),
    )?;
    conn.change_property8(
        xproto::PropMode::REPLACE,
        win,
        xproto::AtomEnum::WM_NAME,
        xproto::AtomEnum::STRING,
        b"shm-painter",
    )?;
    let gc = conn.generate_id()?;
    conn.create_gc(gc, win, &xproto::CreateGCAux::new().graphics_exposures(0))?;
    let seg = Segment::new(&conn, mode, usize::from(w) * usize::from(h) * 8)?;
    conn.map_window(win)?;
    conn.flush()?;
    let mut p = Painter {
        conn,
        w,
        h,
        bench,
        win,
        gc,
        depth: screen.root_depth,
        mode,
        seg: Some(seg),
        frame: 0,
        status,
        held: Default::default(),
        completion,
        pixmap: None,
        pixmap_mode: std::env::var_os("SHM_PAINTER_PIXMAP").is_some(),
        reuse: std::env::var_os("SHM_PAINTER_REUSE").is_some(),
    };
    let line = format!(
        "started MIT-SHM {}.{} shared pixmaps {}",
        v.major_version, v.minor_version, v.shared_pixmaps
    );
    p.log(&line);
    if p.pixmap_mode {
        if !v.shared_pixmaps {
            bail!("SHM_PAINTER_PIXMAP: the server has no shared pixmaps");
        }
        p.make_pixmap()?;
    }
    p.run()
}
