//! MIT-SHM conversion for a server that cannot share memory with the application (no MIT-SHM,
//! another host, another IPC namespace). The application's MIT-SHM requests (app view) flow in
//! and core requests in the server's values flow out: ShmPutImage becomes PutImage with the
//! pixels read from the segment, ShmGetImage becomes GetImage whose reply is written into the
//! segment, ShmCreatePixmap becomes CreatePixmap plus an upload, ShmAttach/ShmDetach become
//! NoOperation, ShmCreateSegment is served with memory guimux creates, and ShmQueryVersion is
//! answered by guimux. Replies flow back as the MIT-SHM replies and ShmCompletion events the
//! application waits for, in sequence order.
//!
//! The segments live in the application's process; the caller supplies access to them through
//! [`SegmentMemory`] (guimux itself performs no I/O and no unsafe memory access).

use crate::fields::ByteOrder;
use std::os::fd::OwnedFd;

/// MIT-SHM minor opcodes.
pub mod minor {
    /// ShmQueryVersion.
    pub const QUERY_VERSION: u8 = 0;
    /// ShmAttach.
    pub const ATTACH: u8 = 1;
    /// ShmDetach.
    pub const DETACH: u8 = 2;
    /// ShmPutImage.
    pub const PUT_IMAGE: u8 = 3;
    /// ShmGetImage.
    pub const GET_IMAGE: u8 = 4;
    /// ShmCreatePixmap.
    pub const CREATE_PIXMAP: u8 = 5;
    /// ShmAttachFd.
    pub const ATTACH_FD: u8 = 6;
    /// ShmCreateSegment.
    pub const CREATE_SEGMENT: u8 = 7;
}

/// Name of the extension as servers announce it.
pub const EXTENSION: &str = "MIT-SHM";

/// Largest request guimux emits when converting (the core limit without BIG-REQUESTS).
pub const MAX_REQUEST_BYTES: usize = 65535 * 4;

/// Core opcodes used here.
const PUT_IMAGE: u8 = 72;
const GET_IMAGE: u8 = 73;
const CREATE_PIXMAP: u8 = 53;
const CREATE_GC: u8 = 55;
const FREE_GC: u8 = 60;
const GET_INPUT_FOCUS: u8 = 43;
const NO_OPERATION: u8 = 127;

/// Core error codes.
const BAD_VALUE: u8 = 2;
const BAD_MATCH: u8 = 8;
const BAD_ACCESS: u8 = 10;
const BAD_ALLOC: u8 = 11;
const BAD_IMPLEMENTATION: u8 = 17;

/// Access to the shared memory behind the application's segments, keyed by the app-view ShmSeg
/// ID. Implemented by the process that hosts the application (the hijack library).
pub trait SegmentMemory: Send + std::fmt::Debug {
    /// ShmAttach: the application attached System V segment `shmid` as `seg`.
    fn attach_sysv(&mut self, seg: u32, shmid: u32, read_only: bool) -> Result<(), String>;
    /// ShmAttachFd: the application passed this descriptor for `seg`.
    fn attach_fd(&mut self, seg: u32, fd: OwnedFd, read_only: bool) -> Result<(), String>;
    /// ShmCreateSegment: create `size` bytes of shared memory as `seg`; returns a descriptor of
    /// it for the application.
    fn create(&mut self, seg: u32, size: u32, read_only: bool) -> Result<OwnedFd, String>;
    /// ShmDetach.
    fn detach(&mut self, seg: u32);
    /// Size in bytes of `seg`, if known.
    fn len(&self, seg: u32) -> Option<usize>;
    /// Whether `seg` was attached read-only.
    fn read_only(&self, seg: u32) -> bool;
    /// Copy `out.len()` bytes from `seg` at `offset`; false if unknown or out of bounds.
    fn read(&self, seg: u32, offset: usize, out: &mut [u8]) -> bool;
    /// Copy `data` into `seg` at `offset`; false if unknown, read-only or out of bounds.
    fn write(&mut self, seg: u32, offset: usize, data: &[u8]) -> bool;
    /// Every known segment (for moving the application back to a server that shares memory).
    fn segments(&self) -> Vec<SegmentInfo>;
}

/// What the memory provider knows about one segment.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SegmentInfo {
    /// App-view ShmSeg ID.
    pub seg: u32,
    /// System V ID, for System V segments.
    pub shmid: Option<u32>,
    /// For file-backed segments: a mapping of it in this process (start, length).
    pub mapping: Option<(u64, u64)>,
    /// Attached read-only.
    pub read_only: bool,
}

/// Image layout parameters of one server (from its setup), or of the server the application
/// computed its segment layout for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageFormats {
    /// bitmap-format-scanline-pad (XY formats), in bits.
    pub bitmap_pad: u8,
    /// Pixmap formats: (depth, bits per pixel, scanline pad in bits).
    pub formats: Vec<(u8, u8, u8)>,
}

impl ImageFormats {
    fn z(&self, depth: u8) -> Option<(u8, u8)> {
        self.formats
            .iter()
            .find(|f| f.0 == depth)
            .map(|f| (f.1, f.2))
    }
}

fn pad_bits(bits: usize, pad: u8) -> usize {
    let p = usize::from(pad.max(8));
    bits.div_ceil(p) * p / 8
}

/// Image format codes.
const XY_BITMAP: u8 = 0;
const XY_PIXMAP: u8 = 1;
const Z_PIXMAP: u8 = 2;

/// Bytes per row and rows per plane layout of an image of `width` pixels, `depth`, `format`.
/// Returns (bytes per row, planes).
fn layout(f: &ImageFormats, format: u8, depth: u8, width: usize) -> Option<(usize, usize)> {
    match format {
        Z_PIXMAP => {
            let (bpp, pad) = f.z(depth)?;
            Some((pad_bits(width * usize::from(bpp), pad), 1))
        }
        XY_BITMAP => Some((pad_bits(width, f.bitmap_pad), 1)),
        XY_PIXMAP => Some((pad_bits(width, f.bitmap_pad), usize::from(depth))),
        _ => None,
    }
}

/// How the reply to a converted request becomes what the application expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conv {
    /// Reply of a GetInputFocus → ShmQueryVersion reply.
    QueryVersion {
        /// Owner the reply reports.
        uid: u16,
        /// Group the reply reports.
        gid: u16,
    },
    /// Reply of a GetInputFocus → ShmCompletion event (app view; sequence set by the engine).
    Completion(Box<[u8; 32]>),
    /// Reply of a GetImage → data written into the segment, ShmGetImage reply to the app.
    GetImage {
        /// Segment.
        seg: u32,
        /// Offset in it.
        offset: u32,
        /// Image format asked for.
        format: u8,
        /// Width in pixels.
        width: u16,
        /// Height in pixels.
        height: u16,
    },
    /// Reply of a GetInputFocus → ShmCreateSegment reply (the descriptor rides along).
    CreateSegment {
        /// Segment.
        seg: u32,
    },
}

/// One request to send instead of the application's.
#[derive(Debug, PartialEq, Eq)]
pub enum Out {
    /// Bytes of a core request in the server's values; `conv` when its reply is rewritten.
    Request {
        /// Request bytes.
        bytes: Vec<u8>,
        /// Reply rewriting.
        conv: Option<Conv>,
    },
    /// The application gets this error (app-view code) for its request.
    Error {
        /// Error code (app view).
        code: u8,
        /// Bad value.
        value: u32,
    },
}

/// The application's MIT-SHM placement and the side conditions of one conversion.
pub struct Ctx<'a> {
    /// Byte order of the connection.
    pub order: ByteOrder,
    /// App-view major opcode of MIT-SHM.
    pub major: u8,
    /// App-view first event of MIT-SHM.
    pub first_event: u8,
    /// App-view first error of MIT-SHM.
    pub first_error: u8,
    /// Layout the application computed its images with.
    pub app: &'a ImageFormats,
    /// Layout of the server the requests go to.
    pub server: &'a ImageFormats,
    /// Owner reported in ShmQueryVersion.
    pub owner: (u16, u16),
}

/// Effects on the segment table that must happen once per application request (not once per
/// server); see [`Effect::apply`].
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    /// ShmAttach of a System V segment.
    AttachSysv {
        /// Segment.
        seg: u32,
        /// shmid.
        shmid: u32,
        /// Read-only.
        read_only: bool,
    },
    /// ShmAttachFd (the descriptor is the next one the application passed).
    AttachFd {
        /// Segment.
        seg: u32,
        /// Read-only.
        read_only: bool,
    },
    /// ShmCreateSegment.
    Create {
        /// Segment.
        seg: u32,
        /// Size.
        size: u32,
        /// Read-only.
        read_only: bool,
    },
    /// ShmDetach.
    Detach {
        /// Segment.
        seg: u32,
    },
}

/// The segment-table effect of an application MIT-SHM request (`req` app view).
pub fn effect(req: &[u8], order: ByteOrder) -> Option<Effect> {
    let u32_at = |o: usize| (req.len() >= o + 4).then(|| order.u32(req, o));
    match req[1] {
        minor::ATTACH => Some(Effect::AttachSysv {
            seg: u32_at(4)?,
            shmid: u32_at(8)?,
            read_only: *req.get(12)? != 0,
        }),
        minor::ATTACH_FD => Some(Effect::AttachFd {
            seg: u32_at(4)?,
            read_only: *req.get(8)? != 0,
        }),
        minor::CREATE_SEGMENT => Some(Effect::Create {
            seg: u32_at(4)?,
            size: u32_at(8)?,
            read_only: *req.get(12)? != 0,
        }),
        minor::DETACH => Some(Effect::Detach { seg: u32_at(4)? }),
        _ => None,
    }
}

fn header(order: ByteOrder, op: u8, byte1: u8, len: usize) -> Vec<u8> {
    let mut r = vec![0u8; len];
    r[0] = op;
    r[1] = byte1;
    order.put_u16(&mut r, 2, (len / 4) as u16);
    r
}

fn round_trip(order: ByteOrder, conv: Conv) -> Out {
    Out::Request {
        bytes: header(order, GET_INPUT_FOCUS, 0, 4),
        conv: Some(conv),
    }
}

fn noop(order: ByteOrder) -> Out {
    Out::Request {
        bytes: header(order, NO_OPERATION, 0, 4),
        conv: None,
    }
}

/// PutImage requests (server values) for rows of an image read from a segment, split so that
/// each fits the core request limit. `rows` yields each destination row's bytes (already in the
/// server's row length); `planes` XY planes of `height` rows each.
#[allow(clippy::too_many_arguments)]
fn put_image_bands(
    order: ByteOrder,
    format: u8,
    drawable: u32,
    gc: u32,
    width: u16,
    height: u16,
    dst: (i16, i16),
    left_pad: u8,
    depth: u8,
    server_row: usize,
    planes: usize,
    row: &mut dyn FnMut(usize, usize, &mut [u8]) -> bool,
) -> Result<Vec<Out>, u8> {
    let mut outs = Vec::new();
    let per_band_rows = if server_row == 0 {
        usize::from(height).max(1)
    } else {
        ((MAX_REQUEST_BYTES - 24) / (server_row * planes.max(1))).max(1)
    };
    if server_row * planes > MAX_REQUEST_BYTES - 24 {
        return Err(BAD_ALLOC); // a single row does not fit a request
    }
    let mut y0 = 0usize;
    while y0 < usize::from(height) || (height == 0 && y0 == 0) {
        let h = per_band_rows.min(usize::from(height) - y0.min(usize::from(height)));
        let len = 24 + server_row * planes * h;
        let mut r = header(order, PUT_IMAGE, format, len);
        order.put_u32(&mut r, 4, drawable);
        order.put_u32(&mut r, 8, gc);
        order.put_u16(&mut r, 12, width);
        order.put_u16(&mut r, 14, h as u16);
        order.put_u16(&mut r, 16, dst.0 as u16);
        order.put_u16(&mut r, 18, (i32::from(dst.1) + y0 as i32) as i16 as u16);
        r[20] = left_pad;
        r[21] = depth;
        for p in 0..planes {
            for i in 0..h {
                let at = 24 + (p * h + i) * server_row;
                if !row(p, y0 + i, &mut r[at..at + server_row]) {
                    return Err(BAD_VALUE);
                }
            }
        }
        outs.push(Out::Request {
            bytes: r,
            conv: None,
        });
        y0 += h;
        if height == 0 {
            break;
        }
    }
    Ok(outs)
}

/// Source geometry of an image in a segment (the application's layout).
struct Src {
    seg: u32,
    offset: usize,
    format: u8,
    depth: u8,
    total_width: usize,
    total_height: usize,
    src_x: usize,
    src_y: usize,
    width: usize,
    height: usize,
}

/// Convert reading `src` from the segment into PutImage requests on `drawable`/`gc` at `dst`.
fn upload(
    ctx: &Ctx<'_>,
    mem: &dyn SegmentMemory,
    src: &Src,
    drawable: u32,
    gc: u32,
    dst: (i16, i16),
) -> Result<Vec<Out>, (u8, u32)> {
    let (app_row, planes) = layout(ctx.app, src.format, src.depth, src.total_width)
        .ok_or((BAD_VALUE, u32::from(src.depth)))?;
    let seg_len = mem.len(src.seg).ok_or((ctx.first_error, src.seg))?;
    let need = src.offset + app_row * src.total_height * planes;
    if need > seg_len
        || src.src_x + src.width > src.total_width
        || src.src_y + src.height > src.total_height
    {
        return Err((BAD_VALUE, src.offset as u32));
    }
    let (server_row, left_pad, src_byte) = match src.format {
        Z_PIXMAP => {
            let (bpp, _) = ctx.app.z(src.depth).ok_or((BAD_MATCH, 0))?;
            let bits = src.src_x * usize::from(bpp);
            if !bits.is_multiple_of(8) {
                // A sub-byte start in Z format cannot be expressed with left-pad.
                return Err((BAD_IMPLEMENTATION, 0));
            }
            let (row, _) = layout(ctx.server, Z_PIXMAP, src.depth, src.width)
                .ok_or((BAD_MATCH, u32::from(src.depth)))?;
            (row, 0u8, bits / 8)
        }
        _ => {
            let lp = (src.src_x % 8) as u8;
            let (row, _) = layout(
                ctx.server,
                src.format,
                src.depth,
                src.width + usize::from(lp),
            )
            .ok_or((BAD_MATCH, 0))?;
            (row, lp, src.src_x / 8)
        }
    };
    let plane_bytes = app_row * src.total_height;
    let mut row = |p: usize, y: usize, out: &mut [u8]| {
        let at = src.offset + p * plane_bytes + (src.src_y + y) * app_row + src_byte;
        let n = out.len().min(app_row - src_byte);
        let (copy, rest) = out.split_at_mut(n);
        rest.fill(0);
        mem.read(src.seg, at, copy)
    };
    put_image_bands(
        ctx.order,
        src.format,
        drawable,
        gc,
        src.width as u16,
        src.height as u16,
        dst,
        left_pad,
        src.depth,
        server_row,
        planes,
        &mut row,
    )
    .map_err(|c| (c, 0))
}

/// Convert one application MIT-SHM request (`req`, app view) for a server without shared
/// memory. `xid` maps app-view resource IDs to the server's (allocating for new ones);
/// `scratch` is an ID in the server's values that guimux may use for a temporary GC.
pub fn convert(
    ctx: &Ctx<'_>,
    req: &[u8],
    mem: &dyn SegmentMemory,
    xid: &mut dyn FnMut(u32) -> u32,
    scratch: u32,
) -> Vec<Out> {
    let order = ctx.order;
    let u32_at = |o: usize| (req.len() >= o + 4).then(|| order.u32(req, o));
    let u16_at = |o: usize| (req.len() >= o + 2).then(|| order.u16(req, o));
    let err = |code: u8, value: u32| vec![Out::Error { code, value }];
    let short = || err(BAD_VALUE, 0);
    let bad_seg = |seg: u32| err(ctx.first_error, seg);
    match req[1] {
        minor::QUERY_VERSION => vec![round_trip(
            order,
            Conv::QueryVersion {
                uid: ctx.owner.0,
                gid: ctx.owner.1,
            },
        )],
        minor::ATTACH | minor::DETACH | minor::ATTACH_FD => {
            let Some(seg) = u32_at(4) else {
                return short();
            };
            if mem.len(seg).is_none() {
                // The segment table refused it (bad shmid, permissions) or never saw it.
                return if req[1] == minor::DETACH {
                    bad_seg(seg)
                } else {
                    err(BAD_ACCESS, seg)
                };
            }
            vec![noop(order)]
        }
        minor::CREATE_SEGMENT => {
            let Some(seg) = u32_at(4) else {
                return short();
            };
            if mem.len(seg).is_none() {
                return err(BAD_ALLOC, seg);
            }
            vec![round_trip(order, Conv::CreateSegment { seg })]
        }
        minor::PUT_IMAGE => {
            let (Some(drawable), Some(gc), Some(seg), Some(offset)) =
                (u32_at(4), u32_at(8), u32_at(32), u32_at(36))
            else {
                return short();
            };
            let g = |o| u16_at(o).unwrap_or(0);
            let src = Src {
                seg,
                offset: offset as usize,
                format: req.get(29).copied().unwrap_or(0),
                depth: req.get(28).copied().unwrap_or(0),
                total_width: usize::from(g(12)),
                total_height: usize::from(g(14)),
                src_x: usize::from(g(16)),
                src_y: usize::from(g(18)),
                width: usize::from(g(20)),
                height: usize::from(g(22)),
            };
            if mem.len(seg).is_none() {
                return bad_seg(seg);
            }
            let dst = (g(24) as i16, g(26) as i16);
            let sdrawable = xid(drawable);
            let sgc = xid(gc);
            let mut outs = match upload(ctx, mem, &src, sdrawable, sgc, dst) {
                Ok(o) => o,
                Err((code, value)) => return err(code, value),
            };
            if req.get(30).copied().unwrap_or(0) != 0 {
                let mut ev = [0u8; 32];
                ev[0] = ctx.first_event;
                order.put_u32(&mut ev, 4, drawable);
                order.put_u16(&mut ev, 8, u16::from(minor::PUT_IMAGE));
                ev[10] = ctx.major;
                order.put_u32(&mut ev, 12, seg);
                order.put_u32(&mut ev, 16, offset);
                outs.push(round_trip(order, Conv::Completion(Box::new(ev))));
            }
            outs
        }
        minor::GET_IMAGE => {
            let (Some(drawable), Some(plane_mask), Some(seg), Some(offset)) =
                (u32_at(4), u32_at(16), u32_at(24), u32_at(28))
            else {
                return short();
            };
            let (x, y) = (u16_at(8).unwrap_or(0), u16_at(10).unwrap_or(0));
            let (w, h) = (u16_at(12).unwrap_or(0), u16_at(14).unwrap_or(0));
            let format = req.get(20).copied().unwrap_or(Z_PIXMAP);
            let Some(len) = mem.len(seg) else {
                return bad_seg(seg);
            };
            if mem.read_only(seg) {
                return err(BAD_ACCESS, seg);
            }
            // The depth is the drawable's, unknown here: size checks happen on the reply.
            let _ = len;
            let mut r = header(order, GET_IMAGE, format, 20);
            order.put_u32(&mut r, 4, xid(drawable));
            order.put_u16(&mut r, 8, x);
            order.put_u16(&mut r, 10, y);
            order.put_u16(&mut r, 12, w);
            order.put_u16(&mut r, 14, h);
            order.put_u32(&mut r, 16, plane_mask);
            vec![Out::Request {
                bytes: r,
                conv: Some(Conv::GetImage {
                    seg,
                    offset,
                    format,
                    width: w,
                    height: h,
                }),
            }]
        }
        minor::CREATE_PIXMAP => {
            let Some((pid, src)) = pixmap_source(req, order) else {
                return short();
            };
            let Some(drawable) = u32_at(8) else {
                return short();
            };
            if mem.len(src.seg).is_none() {
                return bad_seg(src.seg);
            }
            let spid = xid(pid);
            let mut cp = header(order, CREATE_PIXMAP, src.depth, 16);
            order.put_u32(&mut cp, 4, spid);
            order.put_u32(&mut cp, 8, xid(drawable));
            order.put_u16(&mut cp, 12, src.width);
            order.put_u16(&mut cp, 14, src.height);
            let mut outs = vec![Out::Request {
                bytes: cp,
                conv: None,
            }];
            match refresh(ctx, mem, &src, spid, scratch) {
                Ok(up) => outs.extend(up),
                Err((code, value)) => return err(code, value),
            }
            outs
        }
        _ => err(BAD_IMPLEMENTATION, 0),
    }
}

/// Where the pixels of a pixmap made with ShmCreatePixmap live: it mirrors this region of a
/// segment (ZPixmap, the app's layout). On a server that cannot share memory guimux uploads
/// the region again before each request that uses the pixmap (see [`refresh`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PixmapSrc {
    /// Segment.
    pub seg: u32,
    /// Offset in it.
    pub offset: u32,
    /// Width.
    pub width: u16,
    /// Height.
    pub height: u16,
    /// Depth.
    pub depth: u8,
}

/// The pixmap ID and source of an ShmCreatePixmap request (app view).
pub fn pixmap_source(req: &[u8], order: ByteOrder) -> Option<(u32, PixmapSrc)> {
    if req.len() < 28 || req[1] != minor::CREATE_PIXMAP {
        return None;
    }
    Some((
        order.u32(req, 4),
        PixmapSrc {
            seg: order.u32(req, 20),
            offset: order.u32(req, 24),
            width: order.u16(req, 12),
            height: order.u16(req, 14),
            depth: req[16],
        },
    ))
}

/// Requests (server values) that copy the segment region `src` into the server pixmap `spid`
/// through a temporary GC `scratch`.
pub fn refresh(
    ctx: &Ctx<'_>,
    mem: &dyn SegmentMemory,
    src: &PixmapSrc,
    spid: u32,
    scratch: u32,
) -> Result<Vec<Out>, (u8, u32)> {
    let order = ctx.order;
    let region = Src {
        seg: src.seg,
        offset: src.offset as usize,
        format: Z_PIXMAP,
        depth: src.depth,
        total_width: usize::from(src.width),
        total_height: usize::from(src.height),
        src_x: 0,
        src_y: 0,
        width: usize::from(src.width),
        height: usize::from(src.height),
    };
    let up = upload(ctx, mem, &region, spid, scratch, (0, 0))?;
    let mut gc = header(order, CREATE_GC, 0, 20);
    order.put_u32(&mut gc, 4, scratch);
    order.put_u32(&mut gc, 8, spid);
    order.put_u32(&mut gc, 12, 1 << 16); // GraphicsExposures
    order.put_u32(&mut gc, 16, 0);
    let mut free = header(order, FREE_GC, 0, 8);
    order.put_u32(&mut free, 4, scratch);
    let mut outs = vec![Out::Request {
        bytes: gc,
        conv: None,
    }];
    outs.extend(up);
    outs.push(Out::Request {
        bytes: free,
        conv: None,
    });
    Ok(outs)
}

/// Rewrite the reply to a converted request (`msg`, server values, whole reply) into what the
/// application expects (its sequence number is set by the caller). `Err`: the application gets
/// this error (app-view code) instead; the text says why.
pub fn reply(
    ctx: &Ctx<'_>,
    conv: &Conv,
    msg: &[u8],
    mem: &mut dyn SegmentMemory,
) -> Result<[u8; 32], (u8, String)> {
    let order = ctx.order;
    let mut out = [0u8; 32];
    match conv {
        Conv::QueryVersion { uid, gid } => {
            out[0] = 1;
            out[1] = 0; // no shared pixmaps: they cannot stay shared through a copy
            order.put_u16(&mut out, 8, 1);
            order.put_u16(&mut out, 10, 2);
            order.put_u16(&mut out, 12, *uid);
            order.put_u16(&mut out, 14, *gid);
            out[16] = Z_PIXMAP;
        }
        Conv::Completion(ev) => out.copy_from_slice(&ev[..]),
        Conv::CreateSegment { .. } => {
            out[0] = 1;
            out[1] = 1; // one descriptor
        }
        Conv::GetImage {
            seg,
            offset,
            format,
            width,
            height,
        } => {
            if msg.len() < 32 {
                return Err((BAD_IMPLEMENTATION, "short GetImage reply".into()));
            }
            let depth = msg[1];
            let visual = order.u32(msg, 8);
            let data = &msg[32..];
            let w = usize::from(*width);
            let (Some((srow, _)), Some((arow, _))) = (
                layout(ctx.server, *format, depth, w),
                layout(ctx.app, *format, depth, w),
            ) else {
                return Err((BAD_MATCH, format!("no image format for depth {depth}")));
            };
            // Rows: `height` per plane; an XY_PIXMAP GetImage carries one plane per bit set in
            // the plane mask, so the data length says how many there are.
            let rows = data.len().checked_div(srow).unwrap_or(0);
            if !rows.is_multiple_of(usize::from((*height).max(1))) {
                return Err((BAD_MATCH, format!("GetImage returned {} bytes", data.len())));
            }
            let size = arow * rows;
            let mut buf = vec![0u8; size];
            let n = srow.min(arow);
            for i in 0..rows {
                buf[i * arow..i * arow + n].copy_from_slice(&data[i * srow..i * srow + n]);
            }
            if !mem.write(*seg, *offset as usize, &buf) {
                return Err((
                    BAD_VALUE,
                    format!(
                        "ShmGetImage: {size} bytes at offset {offset} do not fit segment {seg:#x}"
                    ),
                ));
            }
            out[0] = 1;
            out[1] = depth;
            order.put_u32(&mut out, 8, visual);
            order.put_u32(&mut out, 12, size as u32);
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Segments as plain vectors (also used by the engine's tests).
    #[derive(Debug, Default)]
    pub(crate) struct VecMem(pub(crate) HashMap<u32, Vec<u8>>);

    impl SegmentMemory for VecMem {
        fn attach_sysv(&mut self, _: u32, _: u32, _: bool) -> Result<(), String> {
            Err("not in unit tests".into())
        }
        fn attach_fd(&mut self, _: u32, _: OwnedFd, _: bool) -> Result<(), String> {
            Err("not in unit tests".into())
        }
        fn create(&mut self, _: u32, _: u32, _: bool) -> Result<OwnedFd, String> {
            Err("not in unit tests".into())
        }
        fn detach(&mut self, seg: u32) {
            self.0.remove(&seg);
        }
        fn len(&self, seg: u32) -> Option<usize> {
            self.0.get(&seg).map(Vec::len)
        }
        fn read_only(&self, _: u32) -> bool {
            false
        }
        fn read(&self, seg: u32, offset: usize, out: &mut [u8]) -> bool {
            match self
                .0
                .get(&seg)
                .and_then(|v| v.get(offset..offset + out.len()))
            {
                Some(b) => {
                    out.copy_from_slice(b);
                    true
                }
                None => false,
            }
        }
        fn write(&mut self, seg: u32, offset: usize, data: &[u8]) -> bool {
            match self
                .0
                .get_mut(&seg)
                .and_then(|v| v.get_mut(offset..offset + data.len()))
            {
                Some(b) => {
                    b.copy_from_slice(data);
                    true
                }
                None => false,
            }
        }
        fn segments(&self) -> Vec<SegmentInfo> {
            Vec::new()
        }
    }

    fn formats() -> ImageFormats {
        ImageFormats {
            bitmap_pad: 32,
            formats: vec![(1, 1, 32), (24, 32, 32)],
        }
    }

    fn ctx<'a>(f: &'a ImageFormats) -> Ctx<'a> {
        Ctx {
            order: ByteOrder::Little,
            major: 130,
            first_event: 65,
            first_error: 128,
            app: f,
            server: f,
            owner: (1000, 1000),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn shm_put(
        tw: u16,
        th: u16,
        sx: u16,
        sy: u16,
        w: u16,
        h: u16,
        send_event: bool,
        seg: u32,
        offset: u32,
    ) -> Vec<u8> {
        let o = ByteOrder::Little;
        let mut r = header(o, 130, minor::PUT_IMAGE, 40);
        o.put_u32(&mut r, 4, 0x0020_0001); // drawable
        o.put_u32(&mut r, 8, 0x0020_0002); // gc
        for (i, v) in [tw, th, sx, sy, w, h, 5, 6].iter().enumerate() {
            o.put_u16(&mut r, 12 + 2 * i, *v);
        }
        r[28] = 24;
        r[29] = Z_PIXMAP;
        r[30] = u8::from(send_event);
        o.put_u32(&mut r, 32, seg);
        o.put_u32(&mut r, 36, offset);
        r
    }

    #[test]
    fn put_image_reads_the_sub_rectangle_and_completes() {
        let f = formats();
        let mut mem = VecMem::default();
        // 4×3 image, pixel value = y * 16 + x, at offset 8.
        let mut seg = vec![0u8; 8 + 4 * 3 * 4];
        for y in 0..3u32 {
            for x in 0..4u32 {
                let at = 8 + ((y * 4 + x) * 4) as usize;
                seg[at..at + 4].copy_from_slice(&(y * 16 + x).to_le_bytes());
            }
        }
        mem.0.insert(7, seg);
        let mut ids = |id: u32| id + 0x100_0000;
        let outs = convert(
            &ctx(&f),
            &shm_put(4, 3, 1, 1, 2, 2, true, 7, 8),
            &mem,
            &mut ids,
            9,
        );
        assert_eq!(outs.len(), 2, "{outs:?}");
        let Out::Request { bytes, conv: None } = &outs[0] else {
            panic!("{outs:?}")
        };
        let o = ByteOrder::Little;
        assert_eq!((bytes[0], bytes[1]), (PUT_IMAGE, Z_PIXMAP));
        assert_eq!(o.u32(bytes, 4), 0x0120_0001, "drawable in server values");
        assert_eq!(o.u32(bytes, 8), 0x0120_0002, "gc in server values");
        assert_eq!((o.u16(bytes, 12), o.u16(bytes, 14)), (2, 2));
        assert_eq!((o.u16(bytes, 16), o.u16(bytes, 18)), (5, 6));
        let px: Vec<u32> = bytes[24..]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(px, vec![0x11, 0x12, 0x21, 0x22]);
        let Out::Request {
            conv: Some(Conv::Completion(ev)),
            ..
        } = &outs[1]
        else {
            panic!("{outs:?}")
        };
        assert_eq!(ev[0], 65);
        assert_eq!(o.u32(&ev[..], 4), 0x0020_0001, "the app's own drawable ID");
        assert_eq!((o.u16(&ev[..], 8), ev[10]), (3, 130));
        assert_eq!((o.u32(&ev[..], 12), o.u32(&ev[..], 16)), (7, 8));
    }

    #[test]
    fn large_images_are_split_into_bands_and_bad_input_is_an_error() {
        let f = formats();
        let mut mem = VecMem::default();
        mem.0.insert(1, vec![0u8; 1000 * 200 * 4]);
        let mut ids = |id: u32| id;
        let outs = convert(
            &ctx(&f),
            &shm_put(1000, 200, 0, 0, 1000, 200, false, 1, 0),
            &mem,
            &mut ids,
            9,
        );
        assert!(outs.len() >= 4, "800 KB must take several requests");
        let mut rows = 0;
        for o in &outs {
            let Out::Request { bytes, .. } = o else {
                panic!("{o:?}")
            };
            assert!(bytes.len() <= MAX_REQUEST_BYTES);
            assert_eq!(ByteOrder::Little.u16(bytes, 2) as usize * 4, bytes.len());
            rows += ByteOrder::Little.u16(bytes, 14);
        }
        assert_eq!(rows, 200);
        // Unknown segment: BadShmSeg (the app's first error).
        let outs = convert(
            &ctx(&f),
            &shm_put(10, 10, 0, 0, 10, 10, false, 2, 0),
            &mem,
            &mut ids,
            9,
        );
        assert_eq!(
            outs,
            vec![Out::Error {
                code: 128,
                value: 2
            }]
        );
        // Past the end of the segment: BadValue.
        let outs = convert(
            &ctx(&f),
            &shm_put(1000, 200, 0, 0, 10, 10, false, 1, 4),
            &mem,
            &mut ids,
            9,
        );
        assert!(
            matches!(
                outs[..],
                [Out::Error {
                    code: BAD_VALUE,
                    ..
                }]
            ),
            "{outs:?}"
        );
        // A truncated request is an error, never a panic.
        let outs = convert(
            &ctx(&f),
            &shm_put(10, 10, 0, 0, 10, 10, false, 1, 0)[..20],
            &mem,
            &mut ids,
            9,
        );
        assert!(matches!(outs[..], [Out::Error { .. }]));
    }

    #[test]
    fn get_image_reply_lands_in_the_segment() {
        let f = formats();
        let mut mem = VecMem::default();
        mem.0.insert(3, vec![0u8; 64]);
        let o = ByteOrder::Little;
        let conv = Conv::GetImage {
            seg: 3,
            offset: 16,
            format: Z_PIXMAP,
            width: 2,
            height: 2,
        };
        let mut msg = vec![0u8; 32 + 16];
        msg[0] = 1;
        msg[1] = 24;
        o.put_u32(&mut msg, 4, 4);
        o.put_u32(&mut msg, 8, 0x21);
        for (i, b) in msg[32..].iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        let out = reply_of(&f, &conv, &msg, &mut mem);
        assert_eq!((out[0], out[1]), (1, 24));
        assert_eq!(o.u32(&out, 8), 0x21);
        assert_eq!(o.u32(&out, 12), 16, "size");
        assert_eq!(&mem.0[&3][16..32], &msg[32..]);
        assert_eq!(&mem.0[&3][..16], &[0u8; 16]);
        // Does not fit: an error for the app, memory untouched.
        let conv = Conv::GetImage {
            seg: 3,
            offset: 60,
            format: Z_PIXMAP,
            width: 2,
            height: 2,
        };
        assert!(reply(&ctx(&f), &conv, &msg, &mut mem).is_err());
    }

    fn reply_of(f: &ImageFormats, conv: &Conv, msg: &[u8], mem: &mut VecMem) -> [u8; 32] {
        reply(&ctx(f), conv, msg, mem).expect("reply")
    }

    proptest::proptest! {
        /// Any bytes after an MIT-SHM major opcode: a conversion or an error, never a panic;
        /// every request emitted is well formed and within the core limit.
        #[test]
        fn arbitrary_requests_never_panic(
            minor in 0u8..10,
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            seg_len in 0usize..4096,
        ) {
            let f = formats();
            let mut mem = VecMem::default();
            mem.0.insert(1, vec![0u8; seg_len]);
            let mut req = vec![130u8, minor];
            req.extend_from_slice(&body);
            if req.len() < 4 {
                req.resize(4, 0);
            }
            let mut ids = |id: u32| id;
            for o in convert(&ctx(&f), &req, &mem, &mut ids, 9) {
                if let Out::Request { bytes, .. } = o {
                    proptest::prop_assert!(bytes.len() <= MAX_REQUEST_BYTES);
                    proptest::prop_assert_eq!(
                        ByteOrder::Little.u16(&bytes, 2) as usize * 4,
                        bytes.len()
                    );
                }
            }
            let _ = effect(&req, ByteOrder::Little);
        }

        /// Any GetImage reply bytes: a reply or an error for the app, never a panic.
        #[test]
        fn arbitrary_get_image_replies_never_panic(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
            w in 0u16..40, h in 0u16..40, format in 0u8..4, offset in 0u32..5000,
        ) {
            let f = formats();
            let mut mem = VecMem::default();
            mem.0.insert(1, vec![0u8; 4096]);
            let conv = Conv::GetImage { seg: 1, offset, format, width: w, height: h };
            let _ = reply(&ctx(&f), &conv, &data, &mut mem);
        }
    }

    #[test]
    fn effects_parse_and_query_version_is_answered() {
        let o = ByteOrder::Little;
        let mut r = header(o, 130, minor::ATTACH, 16);
        o.put_u32(&mut r, 4, 5);
        o.put_u32(&mut r, 8, 77);
        assert_eq!(
            effect(&r, o),
            Some(Effect::AttachSysv {
                seg: 5,
                shmid: 77,
                read_only: false
            })
        );
        assert_eq!(effect(&r[..10], o), None);
        let f = formats();
        let out = reply_of(
            &f,
            &Conv::QueryVersion { uid: 1, gid: 2 },
            &[0u8; 32],
            &mut VecMem::default(),
        );
        assert_eq!(
            (out[0], out[1], o.u16(&out, 8), o.u16(&out, 10)),
            (1, 0, 1, 2)
        );
    }
}
