//! Windows: the translated session's windows flow out parent-first in stacking order as
//! CreateWindow (attributes, background and border, cursor, a colormap that fits the visual
//! on the target; a parent that is not the application's — a window manager's frame —
//! becomes the root), each followed by ChangeProperty for its properties. The order flows
//! back for mapping at the end.

use super::visuals::Numbers;
use super::{Regen, RegenError};
use crate::model::*;
use crate::remap::tree_order;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// Create the windows of `t` (target numbers) with their properties; returns the indices of
/// `t.windows` in creation order.
pub(super) fn create<C: Connection>(
    cx: &mut Regen<'_, C>,
    t: &Session,
    nums: &Numbers,
) -> Result<Vec<usize>, RegenError> {
    let conn = cx.conn;
    let root = cx.target.root;
    let root_visual_new = cx.target.root_visual;
    let ours: std::collections::HashSet<u32> = t.windows.iter().map(|w| w.id).collect();
    let order = tree_order(&t.windows, root);
    for &i in &order {
        let w = &t.windows[i];
        let parent = if w.parent == root || ours.contains(&w.parent) {
            w.parent
        } else {
            cx.warn(format!("window {:#x}: parent {:#x} is not the application's (window manager frame?); created on the root", w.id, w.parent),
            );
            root
        };
        let mut aux = xproto::CreateWindowAux::new()
            .win_gravity(xproto::Gravity::from(w.win_gravity))
            .override_redirect(u32::from(w.override_redirect))
            .event_mask(xproto::EventMask::from(w.event_mask))
            .do_not_propogate_mask(xproto::EventMask::from(u32::from(w.do_not_propagate_mask)));
        if let Some(c) = w.cursor {
            if c != 0 {
                aux = aux.cursor(c);
            }
        }
        let (depth, visual) = if w.class == 2 {
            (0, 0)
        } else {
            aux = aux
                .bit_gravity(xproto::Gravity::from(w.bit_gravity))
                .backing_store(xproto::BackingStore::from(w.backing_store))
                .backing_planes(w.backing_planes)
                .backing_pixel(w.backing_pixel)
                .save_under(u32::from(w.save_under));
            match w.background {
                Some(Background::None) | None => {}
                Some(Background::ParentRelative) => {
                    aux = aux.background_pixmap(xproto::BackPixmap::PARENT_RELATIVE)
                }
                Some(Background::Pixel(p)) => aux = aux.background_pixel(p),
                Some(Background::Pixmap(p)) => aux = aux.background_pixmap(p),
            }
            match w.border {
                Some(Border::CopyFromParent) | None => {}
                Some(Border::Pixel(p)) => aux = aux.border_pixel(p),
                Some(Border::Pixmap(p)) => aux = aux.border_pixmap(p),
            }
            let depth = nums.depth(w.depth);
            let visual_ok = cx.target.visual(w.visual).is_some_and(|v| v.depth == depth);
            let visual = if visual_ok { w.visual } else { root_visual_new };
            let cmap_visual = if w.colormap == cx.target.default_colormap {
                Some(root_visual_new)
            } else {
                t.colormaps
                    .iter()
                    .find(|c| c.id == w.colormap)
                    .map(|c| c.visual)
            };
            if w.colormap != 0 {
                if cmap_visual == Some(visual) {
                    aux = aux.colormap(w.colormap);
                } else {
                    cx.warn(format!("window {:#x}: colormap {:#x} does not fit its visual on the target; using CopyFromParent", w.id, w.colormap),
                    );
                }
            }
            (depth, visual)
        };
        if w.class != 2 && w.background.is_none() {
            cx.warn(format!(
                "window {:#x}: background unknown, left as None",
                w.id
            ));
        }
        cx.pend.push(
            "CreateWindow",
            w.id,
            conn.create_window(
                depth,
                w.id,
                parent,
                w.x,
                w.y,
                w.width.max(1),
                w.height.max(1),
                w.border_width,
                xproto::WindowClass::from(w.class),
                visual,
                &aux,
            )?,
        );
        for p in &w.properties {
            let data = from_le_items(&p.data, p.format);
            let len = match p.format {
                16 => data.len() / 2,
                32 => data.len() / 4,
                _ => data.len(),
            } as u32;
            cx.pend.push(
                "ChangeProperty",
                w.id,
                conn.change_property(
                    xproto::PropMode::REPLACE,
                    w.id,
                    p.name,
                    p.type_,
                    p.format,
                    len,
                    &data,
                )?,
            );
        }
    }
    Ok(order)
}

/// Little-endian property items to the connection's (native) order.
fn from_le_items(data: &[u8], format: u8) -> Vec<u8> {
    let mut d = data.to_vec();
    if cfg!(target_endian = "big") {
        match format {
            16 => d.chunks_exact_mut(2).for_each(|c| c.swap(0, 1)),
            32 => d.chunks_exact_mut(4).for_each(|c| c.reverse()),
            _ => {}
        }
    }
    d
}
