//! Dangling references: the captured session's references to drawables that are neither the
//! client's nor the root nor a window's parent flow out as GetGeometry (one round, only when
//! there are such references); those that name nothing on this server flow into
//! `Session::dangling_refs`, to be carried by copying.

use super::CaptureError;
use crate::model::*;
use crate::remap::IdKind;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::ConnectionExt as _;

/// Fill [`Session::dangling_refs`]: the references to drawables that are neither the client's
/// nor the root nor a window's parent (a window manager's frame) and that name nothing on this
/// server (SDL2 puts a made-up number in WM_HINTS' window group). Such a number is carried
/// exactly by copying it; a reference to another client's live window is not. One round trip,
/// only when the session holds such references.
pub(super) fn find_dangling(
    conn: &impl Connection,
    s: &mut Session,
    mine: &dyn Fn(u32) -> bool,
) -> Result<(), CaptureError> {
    let parents: std::collections::HashSet<u32> = s.windows.iter().map(|w| w.parent).collect();
    let root = s.setup.root;
    let mut refs: Vec<u32> = Vec::new();
    // An identity mapping visits every ID field and changes nothing (no copy of the session
    // and its images just to read its IDs).
    s.map_ids(|kind, id| {
        if matches!(
            kind,
            IdKind::Window | IdKind::Drawable | IdKind::Pixmap | IdKind::Any
        ) && id != 0
            && id != root
            && !mine(id)
            && !parents.contains(&id)
        {
            refs.push(id);
        }
        id
    });
    refs.sort_unstable();
    refs.dedup();
    let asked = refs
        .iter()
        .map(|&id| conn.get_geometry(id).map(|c| (id, c)))
        .collect::<Result<Vec<_>, _>>()?;
    for (id, c) in asked {
        if let Err(x11rb::errors::ReplyError::X11Error(e)) = c.reply() {
            if e.error_kind == x11rb::protocol::ErrorKind::Drawable {
                s.dangling_refs.push(id);
            }
        }
    }
    Ok(())
}
