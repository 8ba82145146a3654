//! Renumbering a session: every resource-ID field and every atom field of a [`Session`] flows
//! through a caller's function ([`Session::map_ids`], [`Session::map_atoms`]) — how regenerate
//! turns the source server's numbers into the target's, and how [`Session::canonical`] makes
//! two captures of the same GUI on different servers comparable. Also which property types
//! carry IDs, and windows in tree order (parents before children).

use crate::model::*;
use std::collections::{BTreeMap, HashMap, HashSet};

/// What an ID field refers to (passed to [`Session::map_ids`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdKind {
    /// A window (or the root).
    Window,
    /// A pixmap.
    Pixmap,
    /// A window or pixmap.
    Drawable,
    /// A GC.
    Gc,
    /// A font.
    Font,
    /// A cursor.
    Cursor,
    /// A colormap.
    Colormap,
    /// A visual.
    Visual,
    /// A RENDER picture.
    Picture,
    /// A RENDER glyph set.
    GlyphSet,
    /// A RENDER PictFormat.
    PictFormat,
    /// An XFIXES region.
    Region,
    /// A DAMAGE object.
    Damage,
    /// A SYNC counter.
    Counter,
    /// A SYNC fence.
    Fence,
    /// An MIT-SHM segment.
    ShmSeg,
    /// Any XID (property data of an unspecific type).
    Any,
}

/// Atom-typed IDs inside property data: which property types carry resource IDs.
pub fn property_type_id_kind(type_name: &str) -> Option<IdKind> {
    Some(match type_name {
        "WINDOW" => IdKind::Window,
        "PIXMAP" | "BITMAP" => IdKind::Pixmap,
        "DRAWABLE" => IdKind::Drawable,
        "CURSOR" => IdKind::Cursor,
        "COLORMAP" => IdKind::Colormap,
        "FONT" => IdKind::Font,
        "VISUALID" => IdKind::Visual,
        _ => return None,
    })
}

impl Session {
    /// Name of an atom referenced by the session.
    pub fn atom_name(&self, atom: u32) -> Option<&str> {
        self.atoms.get(&atom).map(String::as_str)
    }

    /// Call `f` on every resource-ID field (definitions and references), replacing each value
    /// with the result. `0` (None) values are passed too; return them unchanged to keep them.
    /// Property data of ID types (WINDOW, PIXMAP, …, and WM_HINTS' window/pixmap fields) is
    /// included.
    pub fn map_ids(&mut self, mut f: impl FnMut(IdKind, u32) -> u32) {
        let atoms = self.atoms.clone();
        let s = &mut self.setup;
        s.root = f(IdKind::Window, s.root);
        s.default_colormap = f(IdKind::Colormap, s.default_colormap);
        s.root_visual = f(IdKind::Visual, s.root_visual);
        for v in &mut s.visuals {
            v.id = f(IdKind::Visual, v.id);
        }
        for p in &mut s.pict_formats {
            p.id = f(IdKind::PictFormat, p.id);
        }
        for w in &mut self.windows {
            w.id = f(IdKind::Window, w.id);
            w.parent = f(IdKind::Window, w.parent);
            w.visual = f(IdKind::Visual, w.visual);
            w.colormap = f(IdKind::Colormap, w.colormap);
            if let Some(Background::Pixmap(p)) = &mut w.background {
                *p = f(IdKind::Pixmap, *p);
            }
            if let Some(Border::Pixmap(p)) = &mut w.border {
                *p = f(IdKind::Pixmap, *p);
            }
            if let Some(c) = &mut w.cursor {
                *c = f(IdKind::Cursor, *c);
            }
            for p in &mut w.properties {
                map_property_ids(p, &atoms, &mut f);
            }
        }
        for p in &mut self.pixmaps {
            p.id = f(IdKind::Pixmap, p.id);
        }
        for g in &mut self.gcs {
            g.id = f(IdKind::Gc, g.id);
            if let Some(v) = &mut g.values {
                v.tile = f(IdKind::Pixmap, v.tile);
                v.stipple = f(IdKind::Pixmap, v.stipple);
                v.font = f(IdKind::Font, v.font);
                if let Clip::Pixmap(p) = &mut v.clip {
                    *p = f(IdKind::Pixmap, *p);
                }
            }
        }
        for x in &mut self.fonts {
            x.id = f(IdKind::Font, x.id);
        }
        for c in &mut self.cursors {
            c.id = f(IdKind::Cursor, c.id);
        }
        for c in &mut self.colormaps {
            c.id = f(IdKind::Colormap, c.id);
            c.visual = f(IdKind::Visual, c.visual);
        }
        for p in &mut self.pictures {
            p.id = f(IdKind::Picture, p.id);
            p.drawable = f(IdKind::Drawable, p.drawable);
            p.format = f(IdKind::PictFormat, p.format);
            p.alpha_map = f(IdKind::Picture, p.alpha_map);
            if let Clip::Pixmap(m) = &mut p.clip {
                *m = f(IdKind::Pixmap, *m);
            }
        }
        for r in &mut self.regions {
            r.id = f(IdKind::Region, r.id);
        }
        for d in &mut self.damages {
            d.id = f(IdKind::Damage, d.id);
            d.drawable = f(IdKind::Drawable, d.drawable);
        }
        for c in &mut self.counters {
            c.id = f(IdKind::Counter, c.id);
        }
        for x in &mut self.fences {
            x.id = f(IdKind::Fence, x.id);
        }
        for x in &mut self.shm_segments {
            x.id = f(IdKind::ShmSeg, x.id);
        }
        for x in &mut self.shm_pixmaps {
            x.id = f(IdKind::Pixmap, x.id);
            x.segment = f(IdKind::ShmSeg, x.segment);
        }
        for g in &mut self.glyphsets {
            g.id = f(IdKind::GlyphSet, g.id);
            g.format = f(IdKind::PictFormat, g.format);
        }
        for sel in &mut self.selections {
            sel.owner = f(IdKind::Window, sel.owner);
        }
        if let Some(fo) = &mut self.focus {
            fo.window = f(IdKind::Window, fo.window);
        }
        for x in &mut self.xi_selections {
            x.window = f(IdKind::Window, x.window);
        }
        for x in &mut self.selection_inputs {
            x.window = f(IdKind::Window, x.window);
        }
        for o in &mut self.other_resources {
            o.id = f(IdKind::Any, o.id);
        }
        for g in &mut self.passive_grabs {
            g.window = f(IdKind::Window, g.window);
            g.confine_to = f(IdKind::Window, g.confine_to);
            g.cursor = f(IdKind::Cursor, g.cursor);
        }
        for b in &mut self.dbe_buffers {
            b.id = f(IdKind::Drawable, b.id);
            b.window = f(IdKind::Window, b.window);
        }
        for c in &mut self.glx.contexts {
            c.id = f(IdKind::Any, c.id);
            c.share = f(IdKind::Any, c.share);
        }
        for w in &mut self.glx.windows {
            w.id = f(IdKind::Any, w.id);
            w.window = f(IdKind::Window, w.window);
        }
        for p in &mut self.glx_pbuffers {
            p.id = f(IdKind::Drawable, p.id);
        }
        for e in &mut self.present_events {
            e.id = f(IdKind::Any, e.id);
            e.window = f(IdKind::Window, e.window);
        }
        for g in &mut self.active_grabs {
            g.window = f(IdKind::Window, g.window);
            g.confine_to = f(IdKind::Window, g.confine_to);
            g.cursor = f(IdKind::Cursor, g.cursor);
        }
        for d in &mut self.freed_drawables {
            d.picture = f(IdKind::Picture, d.picture);
        }
    }

    /// Call `f` on every atom field (property names/types, ATOM-typed data, selections, the
    /// atom table's keys), replacing each with the result.
    pub fn map_atoms(&mut self, mut f: impl FnMut(u32) -> u32) {
        let old = std::mem::take(&mut self.atoms);
        for w in &mut self.windows {
            for p in &mut w.properties {
                let is_atom = old.get(&p.type_).map(String::as_str) == Some("ATOM");
                p.name = f(p.name);
                p.type_ = f(p.type_);
                if is_atom && p.format == 32 {
                    let items: Vec<u32> = p
                        .items32()
                        .into_iter()
                        .map(|a| if a == 0 { 0 } else { f(a) })
                        .collect();
                    p.set_items32(&items);
                }
            }
        }
        for s in &mut self.selections {
            s.name = f(s.name);
        }
        for s in &mut self.selection_inputs {
            s.selection = f(s.selection);
        }
        self.atoms = old.into_iter().map(|(k, v)| (f(k), v)).collect();
    }

    /// A copy with server-specific numbers made comparable: header cleared, setup facts
    /// cleared, resource IDs renumbered 1, 2, … in order of first appearance (windows in tree
    /// order, then pixmaps, GCs, fonts, cursors, colormaps, pictures, glyph sets), the source
    /// root as `0xffff_0001` and default colormap as `0xffff_0002`, visuals by (class, depth)
    /// index, PictFormats by their index in the server's list, atoms renumbered by sorted name, lists sorted by the new numbers.
    /// Two captures of the same GUI on different servers have equal canonical forms.
    pub fn canonical(&self) -> Session {
        let mut s = self.clone();
        s.header = Header::default();
        let mut ids: HashMap<u32, u32> = HashMap::new();
        ids.insert(0, 0);
        ids.insert(s.setup.root, 0xffff_0001);
        ids.insert(s.setup.default_colormap, 0xffff_0002);
        let mut next = 1u32;
        let order_windows = tree_order(&s.windows, s.setup.root);
        let defined = order_windows
            .iter()
            .map(|&i| s.windows[i].id)
            .chain(s.pixmaps.iter().map(|x| x.id))
            .chain(s.gcs.iter().map(|x| x.id))
            .chain(s.fonts.iter().map(|x| x.id))
            .chain(s.cursors.iter().map(|x| x.id))
            .chain(s.colormaps.iter().map(|x| x.id))
            .chain(s.pictures.iter().map(|x| x.id))
            .chain(s.glyphsets.iter().map(|x| x.id))
            .chain(s.regions.iter().map(|x| x.id))
            .chain(s.damages.iter().map(|x| x.id))
            .chain(s.counters.iter().map(|x| x.id))
            .chain(s.fences.iter().map(|x| x.id))
            .chain(s.shm_segments.iter().map(|x| x.id))
            .chain(s.dbe_buffers.iter().map(|x| x.id))
            .chain(s.glx.contexts.iter().map(|x| x.id))
            .chain(s.glx.windows.iter().map(|x| x.id))
            .chain(s.present_events.iter().map(|x| x.id))
            .chain(s.glx_pbuffers.iter().map(|x| x.id))
            .chain(s.other_resources.iter().map(|x| x.id))
            .collect::<Vec<_>>();
        for id in defined {
            ids.entry(id).or_insert_with(|| {
                next += 1;
                next - 1
            });
        }
        let mut visuals: HashMap<u32, u32> = HashMap::new();
        for v in &s.setup.visuals {
            let n = visuals.len() as u32;
            visuals.insert(
                v.id,
                0xfffe_0000 | (u32::from(v.class) << 8) | u32::from(v.depth) | (n << 12),
            );
        }
        visuals.insert(0, 0);
        // PictFormats are server-allocated like visuals: by their index in the server's list.
        let mut formats: HashMap<u32, u32> = s
            .setup
            .pict_formats
            .iter()
            .enumerate()
            .map(|(i, f)| (f.id, 0xfffd_0000 | i as u32))
            .collect();
        formats.insert(0, 0);
        let foreign = 0xfff0_0000u32;
        s.map_ids(|kind, id| match kind {
            IdKind::Visual => visuals.get(&id).copied().unwrap_or(id),
            IdKind::PictFormat => formats.get(&id).copied().unwrap_or(id),
            _ => ids.get(&id).copied().unwrap_or(foreign),
        });
        let mut names: Vec<String> = s.atoms.values().cloned().collect();
        names.sort();
        names.dedup();
        let by_old: HashMap<u32, u32> = s
            .atoms
            .iter()
            .map(|(k, v)| {
                (
                    *k,
                    names.iter().position(|n| n == v).unwrap_or(0) as u32 + 1,
                )
            })
            .collect();
        s.map_atoms(|a| by_old.get(&a).copied().unwrap_or(0xffff_ffff));
        s.setup = SetupFacts::default();
        let order = tree_order(&s.windows, 0xffff_0001);
        s.windows = order.into_iter().map(|i| s.windows[i].clone()).collect();
        for w in &mut s.windows {
            w.properties.sort_by_key(|p| p.name);
            w.all_event_masks = 0;
        }
        s.pixmaps.sort_by_key(|x| x.id);
        s.gcs.sort_by_key(|x| x.id);
        s.fonts.sort_by_key(|x| x.id);
        s.cursors.sort_by_key(|x| x.id);
        s.colormaps.sort_by_key(|x| x.id);
        s.pictures.sort_by_key(|x| x.id);
        s.glyphsets.sort_by_key(|x| x.id);
        s.regions.sort_by_key(|x| x.id);
        s.damages.sort_by_key(|x| x.id);
        s.counters.sort_by_key(|x| x.id);
        s.fences.sort_by_key(|x| x.id);
        s.shm_segments.sort_by_key(|x| x.id);
        s.shm_pixmaps.sort_by_key(|x| x.id);
        s.xi_selections.sort_by_key(|x| x.window);
        s.selections.sort_by_key(|x| x.name);
        s.selection_inputs
            .sort_by_key(|x| (x.window, x.selection, x.event_mask));
        s.other_resources.sort_by_key(|x| x.id);
        s.passive_grabs.sort_by(|a, b| {
            (a.window, a.button, a.detail, a.modifiers).cmp(&(
                b.window,
                b.button,
                b.detail,
                b.modifiers,
            ))
        });
        s.dbe_buffers.sort_by_key(|x| x.id);
        s.glx.windows.sort_by_key(|x| x.id);
        s.present_events.sort_by_key(|x| x.id);
        s
    }
}

/// Indices of `windows` in tree order: depth-first from the children of `root`, siblings in the
/// order they appear in the list (bottom-to-top). Windows whose parent is neither root nor
/// listed come last as roots of their own subtrees.
pub fn tree_order(windows: &[Window], root: u32) -> Vec<usize> {
    let ids: HashSet<u32> = windows.iter().map(|w| w.id).collect();
    let mut children: HashMap<u32, Vec<usize>> = HashMap::new();
    let mut tops = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        if w.parent == root || !ids.contains(&w.parent) {
            tops.push(i);
        } else {
            children.entry(w.parent).or_default().push(i);
        }
    }
    let mut out = Vec::with_capacity(windows.len());
    let mut seen = vec![false; windows.len()];
    let mut stack: Vec<usize> = tops.into_iter().rev().collect();
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        out.push(i);
        if let Some(c) = children.get(&windows[i].id) {
            stack.extend(c.iter().rev());
        }
    }
    // Cycles (corrupt input) leave windows unseen: append them so nothing is dropped.
    out.extend((0..windows.len()).filter(|&i| !seen[i]));
    out
}

fn map_property_ids(
    p: &mut Property,
    atoms: &BTreeMap<u32, String>,
    f: &mut impl FnMut(IdKind, u32) -> u32,
) {
    if p.format != 32 {
        return;
    }
    let type_name = atoms.get(&p.type_).map(String::as_str).unwrap_or("");
    let name = atoms.get(&p.name).map(String::as_str).unwrap_or("");
    let mut items = p.items32();
    if let Some(kind) = property_type_id_kind(type_name) {
        for v in &mut items {
            if *v != 0 {
                *v = f(kind, *v);
            }
        }
    } else if type_name == "WM_HINTS" || name == "WM_HINTS" {
        // flags, input, initial_state, icon_pixmap, icon_window, icon_x, icon_y, icon_mask,
        // window_group
        let flags = items.first().copied().unwrap_or(0);
        for (idx, bit, kind) in [
            (3usize, 1u32 << 2, IdKind::Pixmap),
            (4, 1 << 3, IdKind::Window),
            (7, 1 << 5, IdKind::Pixmap),
            (8, 1 << 6, IdKind::Window),
        ] {
            if flags & bit != 0 {
                if let Some(v) = items.get_mut(idx) {
                    if *v != 0 {
                        *v = f(kind, *v);
                    }
                }
            }
        }
    } else {
        return;
    }
    p.set_items32(&items);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A real session: `guievict snapshot` of an Xft xterm (`xterm -fa Monospace`, format 6),
    /// with windows, pixmaps, GCs, fonts, cursors, pictures, glyph sets, grabs and properties.
    fn xterm() -> Session {
        crate::file::from_bytes(include_bytes!("../tests/fixtures/session-v6-xterm-xft.gws"))
            .expect("fixture decodes")
    }

    /// Every (kind, id) `map_ids` passes, in order.
    fn visited(s: &Session) -> Vec<(IdKind, u32)> {
        let mut out = Vec::new();
        s.clone().map_ids(|k, id| {
            out.push((k, id));
            id
        });
        out
    }

    fn atom(s: &Session, name: &str) -> u32 {
        s.atoms
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(a, _)| *a)
            .unwrap_or_else(|| panic!("atom {name} in the fixture"))
    }

    #[test]
    fn the_fixture_has_what_the_properties_need() {
        let s = xterm();
        for (what, n) in [
            ("windows", s.windows.len()),
            ("pixmaps", s.pixmaps.len()),
            ("gcs", s.gcs.len()),
            ("pictures", s.pictures.len()),
            ("glyphsets", s.glyphsets.len()),
            ("atoms", s.atoms.len()),
            ("pict_formats", s.setup.pict_formats.len()),
            ("passive_grabs", s.passive_grabs.len()),
        ] {
            assert!(n > 0, "the xterm fixture has no {what}");
        }
    }

    #[test]
    fn map_ids_visits_every_definition_and_reference() {
        let s = xterm();
        let seen: HashSet<(IdKind, u32)> = visited(&s).into_iter().collect();
        let must = s
            .windows
            .iter()
            .flat_map(|w| [(IdKind::Window, w.id), (IdKind::Window, w.parent)])
            .chain(s.pixmaps.iter().map(|x| (IdKind::Pixmap, x.id)))
            .chain(s.gcs.iter().map(|x| (IdKind::Gc, x.id)))
            .chain(s.fonts.iter().map(|x| (IdKind::Font, x.id)))
            .chain(s.cursors.iter().map(|x| (IdKind::Cursor, x.id)))
            .chain(s.colormaps.iter().map(|x| (IdKind::Colormap, x.id)))
            .chain(
                s.pictures
                    .iter()
                    .flat_map(|p| [(IdKind::Picture, p.id), (IdKind::Drawable, p.drawable)]),
            )
            .chain(s.pictures.iter().map(|p| (IdKind::PictFormat, p.format)))
            .chain(s.glyphsets.iter().map(|g| (IdKind::GlyphSet, g.id)))
            .chain(s.setup.visuals.iter().map(|v| (IdKind::Visual, v.id)))
            .chain([
                (IdKind::Window, s.setup.root),
                (IdKind::Colormap, s.setup.default_colormap),
            ]);
        for k in must {
            assert!(seen.contains(&k), "{k:?} not passed to the function");
        }
    }

    #[test]
    fn map_ids_changes_only_what_the_function_changes() {
        let s = xterm();
        let mut t = s.clone();
        t.map_ids(|_, id| id);
        assert_eq!(s, t, "identity changed the session");
        // Zero is passed but kept when the function keeps it.
        let mut zeros = 0;
        t.map_ids(|_, id| {
            zeros += usize::from(id == 0);
            if id == 0 {
                0
            } else {
                id ^ 0x4000_0000
            }
        });
        assert!(zeros > 0, "no None field in an xterm session?");
        let after = visited(&t);
        assert!(after
            .iter()
            .all(|&(_, id)| id == 0 || id & 0x4000_0000 != 0));
    }

    #[test]
    fn wm_hints_ids_follow_their_flags() {
        let mut s = xterm();
        let hints = atom(&s, "WM_HINTS");
        let w = s.windows[0].clone();
        let mut set = |flags: u32| {
            let mut win = w.clone();
            let mut p = Property {
                name: hints,
                type_: hints,
                format: 32,
                data: Vec::new(),
            };
            // flags, input, state, icon_pixmap, icon_window, x, y, icon_mask, window_group
            p.set_items32(&[flags, 1, 1, 0x11, 0x22, 5, 6, 0x33, 0x44]);
            win.properties = vec![p];
            s.windows = vec![win];
            s.map_ids(|k, id| match (k, id) {
                (IdKind::Pixmap, 0x11 | 0x33) | (IdKind::Window, 0x22 | 0x44) => id + 0x100,
                _ => id,
            });
            s.windows[0].properties[0].items32()
        };
        assert_eq!(set(0), [0, 1, 1, 0x11, 0x22, 5, 6, 0x33, 0x44]);
        let all = (1 << 2) | (1 << 3) | (1 << 5) | (1 << 6);
        assert_eq!(set(all), [all, 1, 1, 0x111, 0x122, 5, 6, 0x133, 0x144]);
        // Only the icon pixmap flag: the rest keep their (meaningless) values.
        assert_eq!(set(1 << 2), [1 << 2, 1, 1, 0x111, 0x22, 5, 6, 0x33, 0x44]);
    }

    #[test]
    fn map_atoms_maps_atom_typed_data_but_not_other_data() {
        let mut s = xterm();
        let (atom_t, card, name) = (atom(&s, "ATOM"), atom(&s, "CARDINAL"), atom(&s, "WM_NAME"));
        let mut a = Property {
            name,
            type_: atom_t,
            format: 32,
            data: Vec::new(),
        };
        a.set_items32(&[atom_t, 0, card]);
        let mut c = a.clone();
        c.type_ = card;
        s.windows[0].properties = vec![a, c];
        s.map_atoms(|x| x + 1000);
        let p = &s.windows[0].properties;
        assert_eq!(p[0].items32(), [atom_t + 1000, 0, card + 1000]);
        assert_eq!(
            p[1].items32(),
            [atom_t, 0, card],
            "CARDINAL data is not atoms"
        );
        assert_eq!(p[0].name, name + 1000);
        assert!(s.atoms.keys().all(|k| *k > 1000));
    }

    #[test]
    fn tree_order_keeps_cycles_and_orphans() {
        let s = xterm();
        let mut ws = vec![s.windows[0].clone(); 3];
        let (a, b) = (0x100, 0x101);
        ws[0].id = a;
        ws[0].parent = b; // a ↔ b: a cycle (corrupt input)
        ws[1].id = b;
        ws[1].parent = a;
        ws[2].id = 0x102;
        ws[2].parent = 0x7777; // orphan: neither root nor listed
        let order = tree_order(&ws, s.setup.root);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 2], "every window exactly once");
        assert_eq!(order[0], 2, "the orphan is a top-level");
    }

    /// A renaming of every ID the session defines or references: XOR with a salt (injective)
    /// and moved into a client range of its own; 0 stays 0.
    fn rename(s: &mut Session, salt: u32) {
        s.map_ids(|_, id| {
            if id == 0 {
                0
            } else {
                (id ^ salt) | 0x8000_0000
            }
        });
    }

    /// A renumbering of the atoms: a rotation of the table's atoms among themselves plus an
    /// offset (what another server's atom numbers look like).
    fn renumber_atoms(s: &mut Session, rot: usize, off: u32) {
        let keys: Vec<u32> = s.atoms.keys().copied().collect();
        let n = keys.len();
        let m: HashMap<u32, u32> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (*k, keys[(i + rot) % n] + off))
            .collect();
        s.map_atoms(|a| m.get(&a).copied().unwrap_or(a));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Two captures of the same GUI on different servers (other IDs, other atom numbers,
        /// other visual and PictFormat IDs) have equal canonical forms.
        #[test]
        fn canonical_ignores_server_numbering(salt in 1u32..0x0fff_ffff, rot in 0usize..500, off in 0u32..100_000) {
            let s = xterm();
            let mut t = s.clone();
            rename(&mut t, salt);
            renumber_atoms(&mut t, rot, off);
            prop_assert_eq!(s.canonical(), t.canonical());
        }

        /// A renaming followed by its inverse gives the original session back, bit for bit.
        #[test]
        fn map_ids_round_trips(salt in 1u32..u32::MAX) {
            let s = xterm();
            let mut t = s.clone();
            t.map_ids(|_, id| if id == 0 { 0 } else { id ^ salt });
            t.map_ids(|_, id| if id == 0 { 0 } else { id ^ salt });
            prop_assert_eq!(s, t);
        }

        /// Canonical forms tell different GUIs apart: changing one window's geometry shows.
        #[test]
        fn canonical_sees_a_changed_window(i in 0usize..1000, dx in 1i16..100) {
            let s = xterm();
            let mut t = s.clone();
            let i = i % t.windows.len();
            t.windows[i].x = t.windows[i].x.wrapping_add(dx);
            prop_assert_ne!(s.canonical(), t.canonical());
        }

        /// Tree order: a permutation, every parent before its children, for any forest.
        #[test]
        fn tree_order_puts_parents_first(parents in prop::collection::vec(0usize..64, 1..64)) {
            let base = xterm().windows[0].clone();
            let root = 1u32;
            // Window i (ID 100+i) has parent: root when p ≥ i, else window p (an earlier one).
            let ws: Vec<Window> = parents
                .iter()
                .enumerate()
                .map(|(i, &p)| {
                    let mut w = base.clone();
                    w.id = 100 + i as u32;
                    w.parent = if p >= i { root } else { 100 + p as u32 };
                    w
                })
                .collect();
            let order = tree_order(&ws, root);
            let mut sorted = order.clone();
            sorted.sort_unstable();
            prop_assert_eq!(sorted, (0..ws.len()).collect::<Vec<_>>());
            let pos: HashMap<u32, usize> = order.iter().enumerate().map(|(k, &i)| (ws[i].id, k)).collect();
            for w in &ws {
                if w.parent != root {
                    prop_assert!(pos[&w.parent] < pos[&w.id], "parent after child");
                }
            }
        }
    }
}
