//! The reply side: the server's reply to a converted request flows in with the [`Conv`] the
//! request side recorded, and what the application waits for flows out — the ShmQueryVersion
//! or ShmCreateSegment reply, the ShmCompletion event, or the ShmGetImage reply after the
//! image was written into the segment in the application's row layout.

use super::codes::{BAD_IMPLEMENTATION, BAD_MATCH, BAD_VALUE};
use super::layout::{layout, Z_PIXMAP};
use super::memory::SegmentMemory;
use super::request::{Conv, Ctx};

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
