//! Colormaps: the translated session's colormaps flow out as CreateColormap (on the target's
//! visual for theirs) and, for colormaps with every cell allocated, StoreColors with the
//! captured cells (not when the visual's depth changed).

use super::{Regen, RegenError};
use crate::model::*;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// Create the colormaps of `t` (target numbers).
pub(super) fn create<C: Connection>(cx: &mut Regen<'_, C>, t: &Session) -> Result<(), RegenError> {
    let (conn, session) = (cx.conn, cx.session);
    let src = &session.setup;
    let root = cx.target.root;
    let root_visual_new = cx.target.root_visual;
    for (c, orig) in t.colormaps.iter().zip(&session.colormaps) {
        let new = c.id;
        let src_depth = src.visual(orig.visual).map(|v| v.depth);
        let dst_depth = cx.target.visual(c.visual).map(|v| v.depth);
        let visual = if c.visual == 0 {
            cx.warn(format!(
                "colormap {new:#x}: visual unknown, using the root visual"
            ));
            root_visual_new
        } else {
            c.visual
        };
        let all = c.alloc_all.unwrap_or(false);
        let alloc = if all {
            xproto::ColormapAlloc::ALL
        } else {
            xproto::ColormapAlloc::NONE
        };
        cx.pend.push(
            "CreateColormap",
            new,
            conn.create_colormap(alloc, new, root, visual)?,
        );
        if all && !c.cells.is_empty() && src_depth != dst_depth {
            cx.warn(format!(
                "colormap {new:#x}: visual depth {src_depth:?} becomes {dst_depth:?}; cell contents not restored"
            ));
        } else if all && !c.cells.is_empty() {
            let items: Vec<_> = c
                .cells
                .iter()
                .map(|cell| xproto::Coloritem {
                    pixel: cell.pixel,
                    red: cell.rgb[0],
                    green: cell.rgb[1],
                    blue: cell.rgb[2],
                    flags: xproto::ColorFlag::from(cell.flags & 7),
                })
                .collect();
            cx.pend
                .push("StoreColors", new, conn.store_colors(new, &items)?);
        }
    }
    Ok(())
}
