//! XFIXES. Capture: the client's regions (their rectangles), its cursors' names (GetCursorName,
//! or the atom the GUIEVICT extension reported) and its selection inputs (described by the
//! GUIEVICT extension, their atoms named in `Session::atoms`). Regeneration: the regions and
//! the selection inputs as XFIXES requests into the [`Sink`]; cursor names go back with the
//! cursors (`regenerate`).

use super::{ids_of_type, rects, require_ext, type_names, xrects, Sink};
use crate::capture::{CaptureError, ResourceList};
use crate::model::*;
use std::collections::HashMap;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::cookie::Cookie;
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xproto::ConnectionExt as _;

/// Regions asked about: (ID, FetchRegion).
pub(super) type RegionCookies<'c, C> = Vec<(u32, Cookie<'c, C, xfixes::FetchRegionReply>)>;
/// Cursors asked about: (ID, GetCursorName).
pub(super) type CursorNameCookies<'c, C> = Vec<(u32, Cookie<'c, C, xfixes::GetCursorNameReply>)>;

/// Ask for the rectangles of each of the client's regions (none without XFIXES).
pub(super) fn ask_regions<'c, C: Connection>(
    conn: &'c C,
    list: &ResourceList,
    have_xfixes: bool,
) -> Result<RegionCookies<'c, C>, CaptureError> {
    let region_ids = if have_xfixes {
        ids_of_type(list, type_names::REGION)
    } else {
        Vec::new()
    };
    Ok(region_ids
        .iter()
        .map(|&r| conn.xfixes_fetch_region(r).map(|c| (r, c)))
        .collect::<Result<_, _>>()?)
}

/// The answers to [`ask_regions`] into `s.regions`.
pub(super) fn read_regions<C: RequestConnection>(s: &mut Session, asked: RegionCookies<'_, C>) {
    for (id, c) in asked {
        let rects = match c.reply() {
            Ok(r) => Some(rects(&r.rectangles)),
            Err(e) => {
                s.unknown.push(format!("region {id:#x}: rectangles ({e})"));
                None
            }
        };
        s.regions.push(Region { id, rects });
    }
}

/// Ask for each cursor's name (none without XFIXES).
pub(super) fn ask_cursor_names<'c, C: Connection>(
    conn: &'c C,
    cursors: &[u32],
    have_xfixes: bool,
) -> Result<CursorNameCookies<'c, C>, CaptureError> {
    // Cursor names: GetCursorName works once the client negotiated XFIXES ≥ 2, which it must
    // have done to name a cursor; an error therefore means "no name" (unless the extension
    // reported one: then its atom is resolved below).
    Ok(if have_xfixes {
        cursors
            .iter()
            .map(|&c| conn.xfixes_get_cursor_name(c).map(|k| (c, k)))
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    })
}

/// The answers to [`ask_cursor_names`] into each cursor's `name`; where the client's XFIXES
/// version refused, the name of the atom the GUIEVICT extension reported (one more round).
pub(super) fn read_cursor_names<C: Connection>(
    conn: &C,
    s: &mut Session,
    asked: CursorNameCookies<'_, C>,
    ext: Option<&crate::ext::ExtState>,
) -> Result<(), CaptureError> {
    let ext_cursor_atoms = crate::ext::described(ext, |d| match d {
        guievict_ext_proto::Detail::Cursor(c) if c.name != 0 => Some(c.name),
        _ => None,
    });
    let mut names: HashMap<u32, Option<String>> = HashMap::new();
    let mut by_atom = Vec::new();
    for (id, c) in asked {
        match c.reply() {
            Ok(r) => {
                let n = (r.atom != 0).then(|| String::from_utf8_lossy(&r.name).into_owned());
                names.insert(id, n);
            }
            Err(x11rb::errors::ReplyError::X11Error(_)) => {
                if let Some(&a) = ext_cursor_atoms.get(&id) {
                    by_atom.push((id, conn.get_atom_name(a)?));
                }
            }
            Err(e) => s.unknown.push(format!("cursor {id:#x}: name ({e})")),
        }
    }
    for (id, c) in by_atom {
        match c.reply() {
            Ok(r) => {
                names.insert(id, Some(String::from_utf8_lossy(&r.name).into_owned()));
            }
            Err(e) => s.unknown.push(format!("cursor {id:#x}: name ({e})")),
        }
    }
    for c in &mut s.cursors {
        if let Some(n) = names.remove(&c.id) {
            c.name = n;
        }
    }
    Ok(())
}

/// XFIXES selection inputs: the GUIEVICT extension (protocol ≥ 1.1) describes each record;
/// without it they are only counted (X-Resource lists the records, not their contents).
/// Names of the selection atoms are added to `s.atoms`.
pub(super) fn capture_selection_inputs(
    conn: &impl Connection,
    s: &mut Session,
    list: &ResourceList,
    ext: Option<&crate::ext::ExtState>,
    known_atom: &dyn Fn(u32) -> Option<String>,
) -> Result<(), CaptureError> {
    use guievict_ext_proto::Detail;
    let records = list
        .other
        .iter()
        .filter(|(_, t)| t == type_names::SELECTION_CLIENT)
        .count();
    let mut described = 0;
    if let Some(st) = ext {
        for r in &st.resources {
            if let Detail::SelectionInput(x) = &r.detail {
                described += 1;
                s.selection_inputs.push(SelectionInput {
                    window: x.window,
                    selection: x.selection,
                    event_mask: x.event_mask,
                });
            }
        }
    }
    if records > described {
        let why = if ext.is_some() {
            "the GUIEVICT extension could not describe them"
        } else {
            "they cannot be read back without the GUIEVICT extension"
        };
        s.unknown.push(format!(
            "{} XFIXES selection input(s) (XFixesSelectSelectionInput): {why}; not recreated (not modelled)",
            records - described
        ));
    }
    s.selection_inputs
        .sort_by_key(|x| (x.window, x.selection, x.event_mask));
    s.selection_inputs.dedup();
    let mut missing: Vec<u32> = s
        .selection_inputs
        .iter()
        .map(|x| x.selection)
        .filter(|a| !s.atoms.contains_key(a))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    // Names the caller knows (its enumeration of the atom table) cost no round trip.
    missing.retain(|&a| match known_atom(a) {
        Some(n) => {
            s.atoms.insert(a, n);
            false
        }
        None => true,
    });
    let cookies: Vec<_> = missing
        .iter()
        .map(|&a| conn.get_atom_name(a).map(|c| (a, c)))
        .collect::<Result<_, _>>()?;
    for (a, c) in cookies {
        match c.reply() {
            Ok(r) => {
                s.atoms
                    .insert(a, String::from_utf8_lossy(&r.name).into_owned());
            }
            Err(e) => {
                s.unknown
                    .push(format!("atom {a}: name ({e}); selection input dropped"));
                s.selection_inputs.retain(|x| x.selection != a);
            }
        }
    }
    Ok(())
}

/// The client's regions; refused (`Unsupported`) when the application has regions or DAMAGE
/// objects and the target has no XFIXES.
pub(super) fn regen_regions<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    sink: &mut Sink<'c, C>,
) -> Result<(), crate::RegenError> {
    require_ext(
        conn,
        xfixes::X11_EXTENSION_NAME,
        !t.regions.is_empty() || !t.damages.is_empty(),
    )?;
    for r in &t.regions {
        let rects = r.rects.clone().unwrap_or_else(|| {
            sink.warnings.push(format!(
                "region {:#x}: contents unknown; created empty",
                r.id
            ));
            Vec::new()
        });
        sink.hard.push((
            "XFixesCreateRegion",
            r.id,
            conn.xfixes_create_region(r.id, &xrects(&rects))?,
        ));
    }
    Ok(())
}

/// The client's selection inputs: on its own windows a failure is hard, on the root or another
/// client's window soft. Without XFIXES on the target they are lost, with a warning.
pub(super) fn regen_selection_inputs<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    sink: &mut Sink<'c, C>,
) -> Result<(), crate::RegenError> {
    if t.selection_inputs.is_empty() {
        return Ok(());
    }
    if conn
        .extension_information(xfixes::X11_EXTENSION_NAME)?
        .is_none()
    {
        sink.warnings.push(
            "the target has no XFIXES extension: selection change notification (XFixesSelectSelectionInput) is lost".into(),
        );
        return Ok(());
    }
    let ours: std::collections::HashSet<u32> = t.windows.iter().map(|w| w.id).collect();
    for x in &t.selection_inputs {
        let c = conn.xfixes_select_selection_input(
            x.window,
            x.selection,
            xfixes::SelectionEventMask::from(x.event_mask),
        )?;
        if ours.contains(&x.window) {
            sink.hard.push(("XFixesSelectSelectionInput", x.window, c));
        } else {
            sink.soft.push((
                "XFixesSelectSelectionInput(root or foreign window)",
                x.window,
                c,
            ));
        }
    }
    Ok(())
}
