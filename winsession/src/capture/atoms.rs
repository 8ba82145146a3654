//! Atom names: the atoms the captured state names (property names and types, atoms inside
//! ATOM-typed data, selections, the fonts' FONT property) flow in; those the caller does not
//! already know are asked with GetAtomName (one round), and the names flow into
//! `Session::atoms` and the fonts' XLFD names.

use super::{known_atom, CaptureError, CaptureOptions};
use crate::model::*;
use std::collections::{BTreeMap, HashMap};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// Name the atoms of `atoms_needed` (from the properties' names and types), those inside
/// `props_by_window`'s ATOM data and the selections', and the fonts' FONT atoms
/// (`font_atoms`: index in `session.fonts`, atom).
pub(super) fn name<C: Connection>(
    conn: &C,
    opts: &CaptureOptions,
    session: &mut Session,
    props_by_window: &HashMap<u32, Vec<Property>>,
    mut atoms_needed: Vec<u32>,
    font_atoms: Vec<(usize, u32)>,
) -> Result<(), CaptureError> {
    // Atoms inside ATOM-typed data; font names.
    let atom_atom = u32::from(xproto::AtomEnum::ATOM);
    for props in props_by_window.values() {
        for p in props {
            if p.type_ == atom_atom && p.format == 32 {
                atoms_needed.extend(p.items32().into_iter().filter(|&a| a != 0));
            }
        }
    }
    for s in &session.selections {
        atoms_needed.push(s.name);
    }
    atoms_needed.sort_unstable();
    atoms_needed.dedup();
    let mut font_atom_ids: Vec<u32> = font_atoms.iter().map(|f| f.1).collect();
    font_atom_ids.sort_unstable();
    font_atom_ids.dedup();
    let mut names: BTreeMap<u32, String> = BTreeMap::new();
    let mut ask = Vec::new();
    for &a in atoms_needed.iter().chain(font_atom_ids.iter()) {
        match known_atom(opts, a) {
            Some(n) => {
                names.insert(a, n);
            }
            None => ask.push(a),
        }
    }
    let ac: Vec<_> = ask
        .iter()
        .map(|&a| conn.get_atom_name(a))
        .collect::<Result<_, _>>()?;
    for (&a, c) in ask.iter().zip(ac) {
        match c.reply() {
            Ok(r) => {
                names.insert(a, String::from_utf8_lossy(&r.name).into_owned());
            }
            Err(e) => session.unknown.push(format!("atom {a}: name ({e})")),
        }
    }
    for (i, a) in font_atoms {
        session.fonts[i].xlfd = names.get(&a).cloned();
    }
    session.atoms = atoms_needed
        .iter()
        .filter_map(|a| names.get(a).map(|n| (*a, n.clone())))
        .collect();
    Ok(())
}
