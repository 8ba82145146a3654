//! Colormaps: each listed colormap's visual and allocation mode come from the GUIEVICT
//! extension (with its cells), a caller hint, or a window that uses it; for the others, the
//! colours of every cell of a writable visual flow out in round 3 as QueryColors and back as
//! [`ColorCell`]s. Flows into the session's [`Colormap`]s.

use super::windows::Windows;
use super::{reply, CaptureError, CaptureOptions, ResourceList};
use crate::model::*;
use std::collections::HashMap;
use x11rb::connection::Connection;
use x11rb::cookie::Cookie;
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// What round 3 learned or asked about the colormaps.
pub(super) struct Asked<'c, C: Connection> {
    /// Colormap → (visual, all cells allocated when known).
    cmap_info: HashMap<u32, (u32, Option<bool>)>,
    /// Cells the GUIEVICT extension reported.
    ext_cells: HashMap<u32, Vec<ColorCell>>,
    /// QueryColors for the rest: colormap, pixels asked, cookie.
    color_cookies: Vec<(u32, Vec<u32>, Cookie<'c, C, xproto::QueryColorsReply>)>,
}

/// Round 3: the colormaps' visuals (extension, hint, or a window that uses it) and their
/// colours where the extension did not give them.
pub(super) fn ask<'c, C: Connection>(
    conn: &'c C,
    setup: &SetupFacts,
    opts: &CaptureOptions,
    list: &ResourceList,
    ext_state: Option<&crate::ext::ExtState>,
    windows: &Windows,
) -> Result<Asked<'c, C>, CaptureError> {
    let mut cmap_info: HashMap<u32, (u32, Option<bool>)> = HashMap::new();
    let mut ext_cells: HashMap<u32, Vec<ColorCell>> = HashMap::new();
    let entries_of = |v: u32| setup.visual(v).map(|v| v.colormap_entries).unwrap_or(0);
    for &c in &list.colormaps {
        if let Some((v, all, cells)) = ext_state.and_then(|s| s.colormap(c, entries_of)) {
            cmap_info.insert(c, (v, Some(all)));
            if !cells.is_empty() {
                ext_cells.insert(c, cells);
            }
        } else if let Some((v, all)) = opts.hints.colormaps.get(&c) {
            cmap_info.insert(c, (*v, Some(*all)));
        } else if let Some((w, ..)) = windows.values().find(|(w, ..)| w.colormap == c) {
            cmap_info.insert(c, (w.visual, None));
        } else {
            cmap_info.insert(c, (0, None));
        }
    }
    let mut color_cookies = Vec::new();
    for &c in &list.colormaps {
        let (vid, _) = cmap_info[&c];
        let Some(v) = setup.visual(vid) else { continue };
        if ext_cells.contains_key(&c) {
            continue;
        }
        let pixels = colormap_pixels(v);
        if pixels.is_empty() {
            continue;
        }
        color_cookies.push((c, pixels.clone(), conn.query_colors(c, &pixels)?));
    }

    Ok(Asked {
        cmap_info,
        ext_cells,
        color_cookies,
    })
}

/// Round 3's answers: the colormaps into the session (what is not known noted in `unknown`).
pub(super) fn read<C: Connection>(
    session: &mut Session,
    list: &ResourceList,
    asked: Asked<'_, C>,
) -> Result<(), CaptureError> {
    let Asked {
        cmap_info,
        mut ext_cells,
        color_cookies,
    } = asked;
    for &c in &list.colormaps {
        let (visual, alloc_all) = cmap_info[&c];
        if visual == 0 {
            session.unknown.push(format!("colormap {c:#x}: visual"));
        }
        if alloc_all.is_none() {
            session
                .unknown
                .push(format!("colormap {c:#x}: allocation mode"));
        }
        session.colormaps.push(Colormap {
            id: c,
            visual,
            alloc_all,
            cells: ext_cells.remove(&c).unwrap_or_default(),
        });
    }
    for (c, pixels, cookie) in color_cookies {
        let r = reply(cookie, || format!("QueryColors(colormap {c:#x})"))?;
        if let Some(cm) = session.colormaps.iter_mut().find(|m| m.id == c) {
            cm.cells = pixels
                .iter()
                .zip(r.colors)
                .map(|(&pixel, rgb)| ColorCell {
                    pixel,
                    rgb: [rgb.red, rgb.green, rgb.blue],
                    flags: 7,
                })
                .collect();
        }
    }

    Ok(())
}

/// Pixels whose colours describe a colormap's state (empty for read-only visuals).
fn colormap_pixels(v: &Visual) -> Vec<u32> {
    match v.class {
        // GrayScale, PseudoColor
        1 | 3 => (0..u32::from(v.colormap_entries)).collect(),
        // DirectColor: one cell index per channel.
        5 => {
            let sh = |m: u32| if m == 0 { 0 } else { m.trailing_zeros() };
            (0..u32::from(v.colormap_entries))
                .map(|i| {
                    ((i << sh(v.red_mask)) & v.red_mask)
                        | ((i << sh(v.green_mask)) & v.green_mask)
                        | ((i << sh(v.blue_mask)) & v.blue_mask)
                })
                .collect()
        }
        _ => Vec::new(),
    }
}
