//! The session in target numbers: a copy of the captured session flows through the ID, visual,
//! picture-format and atom maps (references to what is not the application's are left as they
//! are and warned about), and pixel values of a converted depth (window backgrounds and
//! borders, GC foregrounds and backgrounds) are converted. Every later phase reads this copy.

use super::visuals::Numbers;
use super::Regen;
use crate::model::*;
use crate::remap::IdKind;
use x11rb::connection::Connection;

/// The session with every number translated to the target's.
pub(super) fn translate<C: Connection>(cx: &mut Regen<'_, C>, nums: &Numbers) -> Session {
    let session = cx.session;
    let src = &session.setup;
    let root_visual_new = cx.target.root_visual;
    let mut t = session.clone();
    let mut foreign: Vec<u32> = Vec::new();
    let (visual_map, xid_map) = (&cx.out.visual_map, &cx.out.xid_map);
    t.map_ids(|kind, id| {
        if id == 0 {
            return 0;
        }
        match kind {
            IdKind::Visual => visual_map.get(&id).copied().unwrap_or(root_visual_new),
            IdKind::PictFormat => nums.pict_map.get(&id).copied().unwrap_or(id),
            _ => match xid_map.get(&id) {
                Some(&n) => n,
                None => {
                    foreign.push(id);
                    id
                }
            },
        }
    });
    foreign.sort_unstable();
    foreign.dedup();
    // Our own setup IDs were mapped too; the foreign list only concerns references.
    foreign.retain(|id| *id != cx.target.root);
    // Pictures whose drawable the application freed get a placeholder (and their own warning).
    let freed: std::collections::HashSet<u32> =
        session.pictures.iter().map(|p| p.drawable).collect();
    foreign.retain(|id| !freed.contains(id));
    // A window manager's frame around a top-level has its own warning where the window is
    // created (on the root instead).
    let frames: std::collections::HashSet<u32> = session.windows.iter().map(|w| w.parent).collect();
    foreign.retain(|id| !frames.contains(id));
    // Numbers that named nothing on the source (an SDL2 window group) are carried by copying.
    foreign.retain(|id| !session.dangling_refs.contains(id));
    for id in &foreign {
        cx.warn(format!(
            "reference to {id:#x} (not the application's, not the root) left untranslated"
        ));
    }
    let amap = cx.out.atom_map.clone();
    t.map_atoms(|a| amap.get(&a).copied().unwrap_or(a));
    // Pixel conversion.
    let convert = |d: u8| nums.convert(src, &cx.target, d);
    for w in &mut t.windows {
        if let Some((a, b)) = convert(w.depth) {
            if let Some(Background::Pixel(p)) = &mut w.background {
                *p = a.convert(*p, &b);
            }
            if let Some(Border::Pixel(p)) = &mut w.border {
                *p = a.convert(*p, &b);
            }
        }
    }
    for g in &mut t.gcs {
        let d = if g.depth == 0 {
            src.root_depth
        } else {
            g.depth
        };
        if let (Some((a, b)), Some(v)) = (convert(d), &mut g.values) {
            v.foreground = a.convert(v.foreground, &b);
            v.background = a.convert(v.background, &b);
        }
    }
    t
}
