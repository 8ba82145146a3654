//! The request side: one application MIT-SHM request (app view) flows in, the requests to send
//! instead flow out (core requests in the server's values, each with how its reply is to be
//! rewritten — a [`Conv`] — or an error for the application): ShmPutImage → PutImage bands
//! read from the segment, ShmGetImage → GetImage, ShmCreatePixmap → CreatePixmap plus an
//! upload (again before each use: [`refresh`]), ShmAttach/AttachFd/Detach → NoOperation,
//! ShmQueryVersion and ShmCreateSegment → a GetInputFocus round trip. Also the request's
//! [`Effect`] on the segment table, applied once per application request.

use super::codes::{
    minor, BAD_ACCESS, BAD_ALLOC, BAD_IMPLEMENTATION, BAD_MATCH, BAD_VALUE, CREATE_GC,
    CREATE_PIXMAP, FREE_GC, GET_IMAGE, GET_INPUT_FOCUS, MAX_REQUEST_BYTES, NO_OPERATION, PUT_IMAGE,
};
use super::layout::{layout, ImageFormats, Z_PIXMAP};
use super::memory::SegmentMemory;
use crate::fields::ByteOrder;

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

pub(super) fn header(order: ByteOrder, op: u8, byte1: u8, len: usize) -> Vec<u8> {
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
