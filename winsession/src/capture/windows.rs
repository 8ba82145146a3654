//! Windows and their properties: per-window queries flow out in round 2 (attributes,
//! geometry, children, property list), their answers into [`Windows`]; the windows' order
//! (the root's stacking, then windows reparented by a window manager, whose root positions
//! are asked) is worked out from them; property data flows out in round 3 and back as
//! [`Property`] lists; at the end the windows flow into the session in that order.

use super::{CaptureError, ResourceList};
use crate::model::*;
use std::collections::HashMap;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::cookie::Cookie;
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// Captured windows by ID, each with its children and its properties' names.
pub(super) type Windows = HashMap<u32, (Window, Vec<u32>, Vec<u32>)>;

/// Round 2's questions about one window.
pub(super) struct WinCookies<'c, C: RequestConnection> {
    attrs: Cookie<'c, C, xproto::GetWindowAttributesReply>,
    geom: Cookie<'c, C, xproto::GetGeometryReply>,
    tree: Cookie<'c, C, xproto::QueryTreeReply>,
    props: Cookie<'c, C, xproto::ListPropertiesReply>,
}

/// The orphans' root positions, asked before round 3.
pub(super) type Positions<'c, C> = Vec<(u32, Cookie<'c, C, xproto::TranslateCoordinatesReply>)>;

/// Property data asked in round 3: window, property name, cookie.
pub(super) type PropertyAsks<'c, C> = Vec<(u32, u32, Cookie<'c, C, xproto::GetPropertyReply>)>;

/// Round 2: ask about every listed window.
pub(super) fn ask<'c, C: Connection>(
    conn: &'c C,
    list: &ResourceList,
) -> Result<Vec<WinCookies<'c, C>>, CaptureError> {
    let mut wc = Vec::with_capacity(list.windows.len());
    for &w in &list.windows {
        wc.push(WinCookies {
            attrs: conn.get_window_attributes(w)?,
            geom: conn.get_geometry(w)?,
            tree: conn.query_tree(w)?,
            props: conn.list_properties(w)?,
        });
    }
    Ok(wc)
}

/// Round 2's answers: the windows (one that vanished meanwhile is noted in `unknown`).
pub(super) fn read<C: Connection>(
    session: &mut Session,
    list: &ResourceList,
    wc: Vec<WinCookies<'_, C>>,
) -> Windows {
    let mut windows: Windows = HashMap::new();
    for (&id, c) in list.windows.iter().zip(wc) {
        // A window may vanish between the list and the query (the app is live in tests):
        // report, don't fail.
        let (a, g, t, p) = match (
            c.attrs.reply(),
            c.geom.reply(),
            c.tree.reply(),
            c.props.reply(),
        ) {
            (Ok(a), Ok(g), Ok(t), Ok(p)) => (a, g, t, p),
            (a, ..) => {
                session.unknown.push(format!(
                    "window {id:#x}: vanished during capture ({:?})",
                    a.err()
                ));
                continue;
            }
        };
        let mut props: Vec<u32> = p.atoms;
        props.sort_unstable();
        let class = u16::from(a.class);
        windows.insert(
            id,
            (
                Window {
                    id,
                    parent: t.parent,
                    class,
                    depth: g.depth,
                    visual: a.visual,
                    x: g.x,
                    y: g.y,
                    width: g.width,
                    height: g.height,
                    border_width: g.border_width,
                    bit_gravity: u32::from(a.bit_gravity) as u8,
                    win_gravity: u32::from(a.win_gravity) as u8,
                    backing_store: u32::from(a.backing_store) as u8,
                    backing_planes: a.backing_planes,
                    backing_pixel: a.backing_pixel,
                    save_under: a.save_under,
                    override_redirect: a.override_redirect,
                    colormap: a.colormap,
                    event_mask: u32::from(a.your_event_mask),
                    all_event_masks: u32::from(a.all_event_masks),
                    do_not_propagate_mask: u32::from(a.do_not_propagate_mask) as u16,
                    map_state: u32::from(a.map_state) as u8,
                    background: None,
                    border: None,
                    cursor: None,
                    properties: Vec::new(),
                    shape: None,
                },
                t.children,
                props,
            ),
        );
    }
    windows
}

/// The windows' order: tree order from the root's stacking, siblings bottom-to-top; windows
/// whose parent is foreign start their own trees, and their root positions are asked.
pub(super) fn order<'c, C: Connection>(
    conn: &'c C,
    windows: &Windows,
    root_tree: &xproto::QueryTreeReply,
    root: u32,
) -> Result<(Vec<u32>, Positions<'c, C>), CaptureError> {
    let mut ordered = Vec::with_capacity(windows.len());
    let mut stack: Vec<u32> = root_tree
        .children
        .iter()
        .rev()
        .copied()
        .filter(|w| windows.contains_key(w))
        .collect();
    // Windows whose parent is foreign (reparented by a window manager) start their own trees.
    let mut orphans: Vec<u32> = windows
        .values()
        .filter(|(w, ..)| w.parent != root && !windows.contains_key(&w.parent))
        .map(|(w, ..)| w.id)
        .collect();
    orphans.sort_unstable();
    // Such a window keeps its place on the screen, not in the frame: it is recreated on the
    // root (see regenerate), so its root position (outer corner) is what is recorded.
    let tc = orphans
        .iter()
        .map(|&w| conn.translate_coordinates(w, root, 0, 0).map(|c| (w, c)))
        .collect::<Result<Vec<_>, _>>()?;
    stack.extend(orphans.into_iter().rev());
    let mut seen = std::collections::HashSet::new();
    while let Some(w) = stack.pop() {
        if !seen.insert(w) {
            continue;
        }
        ordered.push(w);
        if let Some((_, children, _)) = windows.get(&w) {
            stack.extend(children.iter().rev().filter(|c| windows.contains_key(c)));
        }
    }
    Ok((ordered, tc))
}

/// Round 3: ask every listed property's data, windows in order.
pub(super) fn ask_properties<'c, C: Connection>(
    conn: &'c C,
    windows: &Windows,
    ordered: &[u32],
) -> Result<PropertyAsks<'c, C>, CaptureError> {
    let mut prop_cookies = Vec::new();
    for &w in ordered {
        let (_, _, props) = &windows[&w];
        for &p in props {
            prop_cookies.push((
                w,
                p,
                conn.get_property(false, w, p, xproto::AtomEnum::ANY, 0, u32::MAX / 4)?,
            ));
        }
    }
    Ok(prop_cookies)
}

/// The orphans' root positions (outer corner) replace their positions in the frame.
pub(super) fn read_positions<C: Connection>(windows: &mut Windows, tc: Positions<'_, C>) {
    for (w, c) in tc {
        if let (Ok(r), Some((win, ..))) = (c.reply(), windows.get_mut(&w)) {
            let bw = i16::try_from(win.border_width).unwrap_or(0);
            win.x = r.dst_x.saturating_sub(bw);
            win.y = r.dst_y.saturating_sub(bw);
        }
    }
}

/// Round 3's property data by window, and the atoms it names (property names and types).
pub(super) fn read_properties<C: Connection>(
    session: &mut Session,
    prop_cookies: PropertyAsks<'_, C>,
) -> (HashMap<u32, Vec<Property>>, Vec<u32>) {
    let mut props_by_window: HashMap<u32, Vec<Property>> = HashMap::new();
    let mut atoms_needed: Vec<u32> = Vec::new();
    for (w, name, c) in prop_cookies {
        let r = match c.reply() {
            Ok(r) => r,
            Err(e) => {
                session
                    .unknown
                    .push(format!("window {w:#x}: property atom {name}: {e}"));
                continue;
            }
        };
        if r.type_ == 0 {
            continue; // deleted between list and get
        }
        let data = to_le_items(r.value, r.format);
        atoms_needed.push(name);
        atoms_needed.push(r.type_);
        props_by_window.entry(w).or_default().push(Property {
            name,
            type_: r.type_,
            format: r.format,
            data,
        });
    }
    (props_by_window, atoms_needed)
}

/// The windows into the session in their order, with their properties.
pub(super) fn store(
    session: &mut Session,
    mut windows: Windows,
    ordered: Vec<u32>,
    mut props_by_window: HashMap<u32, Vec<Property>>,
) {
    for w in ordered {
        let Some((mut win, ..)) = windows.remove(&w) else {
            continue;
        };
        win.properties = props_by_window.remove(&w).unwrap_or_default();
        session.windows.push(win);
    }
}

/// Property data from the connection's (native) byte order to little-endian items.
fn to_le_items(mut data: Vec<u8>, format: u8) -> Vec<u8> {
    if cfg!(target_endian = "big") {
        match format {
            16 => data.chunks_exact_mut(2).for_each(|c| c.swap(0, 1)),
            32 => data.chunks_exact_mut(4).for_each(|c| c.reverse()),
            _ => {}
        }
    }
    data
}
