//! Hand-written walkers for layouts that xcb-proto describes only as opaque bytes. Message
//! bytes flow in; server-specific values inside them are handed to the rewriter. Each function
//! here is listed in docs/generated-tables.md. (Copied verbatim by guimux-codegen from
//! guimux/codegen/templates/special.rs.)

use super::rt::{rd, vis};
use crate::fields::{ByteOrder, Kind, Rewriter, WalkError};

/// RENDER CompositeGlyphs8/16/32 `glyphcmds`, from offset `p` to the end of the request.
///
/// Each item starts with an 8-byte header: count (1), pad (3), delta x (2), delta y (2).
/// A count of 255 switches glyph set: the header is followed by a 4-byte GLYPHSET id.
/// Otherwise `count` glyph ids of `glyph_size` bytes follow, padded to 4 bytes.
pub(super) fn glyph_items(
    m: &mut [u8],
    mut p: usize,
    glyph_size: usize,
    o: ByteOrder,
    rw: &mut dyn Rewriter,
    w: &'static str,
) -> Result<(), WalkError> {
    // Fewer than 8 bytes left is trailing request padding.
    while p.saturating_add(8) <= m.len() {
        let count = rd(m, p, 1, o, w)? as usize;
        if count == 255 {
            vis(m, p + 8, 4, Kind::Xid("render:GLYPHSET"), o, rw, w)?;
            p += 12;
        } else {
            let body = (count * glyph_size + 3) & !3;
            p = p.saturating_add(8 + body);
        }
    }
    Ok(())
}
