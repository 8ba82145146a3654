//! Numbers the target server chose: the source's depths, visuals and RENDER picture formats
//! flow in, and their target counterparts flow out — the depth map and picture-format map as
//! [`Numbers`] (with the pixel conversion a changed depth needs), the visual map and the
//! picture formats' pairs into `Regenerated`. Reads the answer to RenderQueryPictFormats
//! asked in the first round (no round trip of its own).

use super::{depth_layout, layout_of, Regen, RegenError};
use crate::convert::PixelLayout;
use crate::model::*;
use std::collections::HashMap;
use x11rb::connection::Connection;
use x11rb::cookie::Cookie;
use x11rb::protocol::render;

/// The depth and picture-format maps, and the target's picture formats when asked.
pub(super) struct Numbers {
    /// Source depth → target depth (a depth the target cannot show becomes the root's).
    pub depth_map: HashMap<u8, u8>,
    /// Source PICTFORMAT → target PICTFORMAT, matched by layout.
    pub pict_map: HashMap<u32, u32>,
    /// The target's formats, asked once (ARGB cursors need them too).
    pub target_formats: Option<render::QueryPictFormatsReply>,
}

impl Numbers {
    /// The target depth of source depth `d`.
    pub fn depth(&self, d: u8) -> u8 {
        self.depth_map.get(&d).copied().unwrap_or(d)
    }

    /// The pixel layouts (source, target) of source depth `d` when its pixels must be
    /// converted.
    pub fn convert(
        &self,
        src: &SetupFacts,
        target: &SetupFacts,
        d: u8,
    ) -> Option<(PixelLayout, PixelLayout)> {
        let to = *self.depth_map.get(&d)?;
        let (a, b) = (depth_layout(src, d)?, depth_layout(target, to)?);
        (a != b).then_some((a, b))
    }
}

/// Match depths, visuals and picture formats of the session to the target's.
pub(super) fn match_numbers<C: Connection>(
    cx: &mut Regen<'_, C>,
    formats_asked: Option<Cookie<'_, C, render::QueryPictFormatsReply>>,
) -> Result<Numbers, RegenError> {
    let session = cx.session;
    let src = &session.setup;
    // --- Visuals and depths.
    let mut depth_map: HashMap<u8, u8> = HashMap::from([(0, 0), (1, 1)]);
    let used_depths = session
        .windows
        .iter()
        .map(|w| w.depth)
        .chain(session.pixmaps.iter().map(|p| p.depth))
        .chain(session.gcs.iter().map(|g| g.depth));
    for d in used_depths {
        if depth_map.contains_key(&d) {
            continue;
        }
        // Windows need a visual of their depth; pixmaps (and GCs on them) only a pixmap format
        // (cairo's depth-8 alpha masks exist on servers without depth-8 visuals).
        let has_visual = cx.target.visuals.iter().any(|v| v.depth == d);
        let window_depth = session.windows.iter().any(|w| w.depth == d);
        let has_format = cx.target.pixmap_formats.iter().any(|f| f.depth == d);
        let to = if has_visual || (has_format && !window_depth) {
            d
        } else {
            cx.target.root_depth
        };
        if to != d {
            cx.warn(format!(
                "target has no depth-{d} visual: depth {d} becomes {to}, pixels converted"
            ));
        }
        depth_map.insert(d, to);
    }
    // One-to-one where the target allows it: a visual keeps its ID when the target has the
    // same visual under it (two servers of one build list the same ~390 visuals, GLX's many
    // identical TrueColor ones among them), the others take the first equal visual not yet
    // taken. guimux translates the visual IDs of live requests with the same map
    // (`hijack::session`), so a window created after the move with the visual of a colormap
    // regenerated here names the visual that colormap got: with the first equal visual for
    // every source visual, Firefox's CreateWindow(visual 0x3b7, colormap of 0x3b7 → 0x21)
    // failed with BadMatch on the target and Firefox exited.
    let target = &cx.target;
    let visual_map = &mut cx.out.visual_map;
    let equal = |v: &Visual, t: &Visual, d: u8| {
        t.depth == d && t.class == v.class && (d != v.depth || layout_of(t) == layout_of(v))
    };
    let depth_of = |v: &Visual| depth_map.get(&v.depth).copied().unwrap_or(v.depth);
    let mut taken: std::collections::HashSet<u32> = std::collections::HashSet::new();
    if let (Some(v), Some(t)) = (
        src.visual(src.root_visual),
        target.visual(target.root_visual),
    ) {
        if equal(v, t, depth_of(v)) {
            visual_map.insert(v.id, t.id);
            taken.insert(t.id);
        }
    }
    for v in &src.visuals {
        let d = depth_of(v);
        if visual_map.contains_key(&v.id) || taken.contains(&v.id) {
            continue;
        }
        if let Some(t) = target
            .visuals
            .iter()
            .find(|t| t.id == v.id && equal(v, t, d))
        {
            visual_map.insert(v.id, t.id);
            taken.insert(t.id);
        }
    }
    for v in &src.visuals {
        if visual_map.contains_key(&v.id) {
            continue;
        }
        let d = depth_of(v);
        let exact = target
            .visuals
            .iter()
            .find(|t| equal(v, t, d) && !taken.contains(&t.id))
            .or_else(|| target.visuals.iter().find(|t| equal(v, t, d)));
        let pick = exact
            .or_else(|| {
                target
                    .visuals
                    .iter()
                    .find(|t| t.depth == d && t.class == v.class)
            })
            .or_else(|| {
                (d == target.root_depth)
                    .then(|| target.visual(target.root_visual))
                    .flatten()
            });
        if let Some(t) = pick {
            visual_map.insert(v.id, t.id);
            taken.insert(t.id);
        }
    }
    visual_map.insert(0, 0);

    // --- RENDER picture formats are server-allocated: match them by layout.
    let mut pict_map: HashMap<u32, u32> = HashMap::new();
    let mut target_formats: Option<render::QueryPictFormatsReply> = None;
    if let Some(c) = formats_asked {
        let r = c.reply().map_err(|source| RegenError::Reply {
            what: "RenderQueryPictFormats".into(),
            source,
        })?;
        let dst = crate::extensions::formats_of(&r);
        target_formats = Some(r);
        pict_map = crate::extensions::map_pict_formats(&src.pict_formats, &dst);
        for f in &src.pict_formats {
            match pict_map.get(&f.id) {
                Some(&n) => {
                    cx.out.xid_map.insert(f.id, n);
                }
                None => {
                    let used = session.pictures.iter().any(|p| p.format == f.id)
                        || session.glyphsets.iter().any(|g| g.format == f.id);
                    if used {
                        cx.warn(format!(
                            "picture format {:#x} (depth {}) has no counterpart on the target",
                            f.id, f.depth
                        ));
                    }
                }
            }
        }
    }
    Ok(Numbers {
        depth_map,
        pict_map,
        target_formats,
    })
}
