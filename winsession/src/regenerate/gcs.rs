//! GCs: the translated session's GCs flow out as CreateGC with their captured values (tile,
//! stipple, font and clip mask already the target's), then SetDashes and SetClipRectangles
//! where the values need them. A GC is made on a drawable of its (target) depth: the root, or
//! a 1×1 scratch pixmap freed at the end.

use super::visuals::Numbers;
use super::{Regen, RegenError};
use crate::model::*;
use std::collections::HashMap;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// Create the GCs of `t` (target numbers).
pub(super) fn create<C: Connection>(
    cx: &mut Regen<'_, C>,
    t: &Session,
    nums: &Numbers,
) -> Result<(), RegenError> {
    let conn = cx.conn;
    let src = &cx.session.setup;
    let root = cx.target.root;
    let mut depth_drawables: HashMap<u8, u32> = HashMap::from([(cx.target.root_depth, root)]);
    for g in &t.gcs {
        let sd = if g.depth == 0 {
            src.root_depth
        } else {
            g.depth
        };
        let d = nums.depth(sd);
        let drawable = match depth_drawables.get(&d) {
            Some(&x) => x,
            None => {
                let pm = conn.generate_id()?;
                cx.pend.push(
                    "CreatePixmap(depth)",
                    pm,
                    conn.create_pixmap(d, pm, root, 1, 1)?,
                );
                cx.scratch.pixmaps.push(pm);
                depth_drawables.insert(d, pm);
                pm
            }
        };
        let Some(v) = &g.values else {
            cx.warn(format!(
                "gc {:#x}: values unknown, created with defaults",
                g.id
            ));
            cx.pend.push(
                "CreateGC",
                g.id,
                conn.create_gc(g.id, drawable, &xproto::CreateGCAux::new())?,
            );
            continue;
        };
        let mut aux = xproto::CreateGCAux::new()
            .function(xproto::GX::from(v.function))
            .plane_mask(v.plane_mask)
            .foreground(v.foreground)
            .background(v.background)
            .line_width(u32::from(v.line_width))
            .line_style(xproto::LineStyle::from(v.line_style))
            .cap_style(xproto::CapStyle::from(v.cap_style))
            .join_style(xproto::JoinStyle::from(v.join_style))
            .fill_style(xproto::FillStyle::from(v.fill_style))
            .fill_rule(xproto::FillRule::from(v.fill_rule))
            .tile_stipple_x_origin(i32::from(v.ts_x))
            .tile_stipple_y_origin(i32::from(v.ts_y))
            .subwindow_mode(xproto::SubwindowMode::from(v.subwindow_mode))
            .graphics_exposures(u32::from(v.graphics_exposures))
            .clip_x_origin(i32::from(v.clip_x))
            .clip_y_origin(i32::from(v.clip_y))
            .arc_mode(xproto::ArcMode::from(v.arc_mode));
        if v.tile != 0 {
            aux = aux.tile(v.tile);
        }
        if v.stipple != 0 {
            aux = aux.stipple(v.stipple);
        }
        if v.font != 0 {
            aux = aux.font(v.font);
        }
        if let Clip::Pixmap(p) = v.clip {
            aux = aux.clip_mask(p);
        }
        if v.dashes == [4, 4] {
            aux = aux.dash_offset(u32::from(v.dash_offset));
        }
        cx.pend
            .push("CreateGC", g.id, conn.create_gc(g.id, drawable, &aux)?);
        if v.dashes != [4, 4] && !v.dashes.is_empty() {
            cx.pend.push(
                "SetDashes",
                g.id,
                conn.set_dashes(g.id, v.dash_offset, &v.dashes)?,
            );
        }
        if let Clip::Rectangles { ordering, rects } = &v.clip {
            let r: Vec<_> = rects
                .iter()
                .map(|&(x, y, width, height)| xproto::Rectangle {
                    x,
                    y,
                    width,
                    height,
                })
                .collect();
            cx.pend.push(
                "SetClipRectangles",
                g.id,
                conn.set_clip_rectangles(
                    xproto::ClipOrdering::from(*ordering),
                    g.id,
                    v.clip_x,
                    v.clip_y,
                    &r,
                )?,
            );
        }
    }
    Ok(())
}
