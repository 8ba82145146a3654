//! New resource IDs: every resource of the session gets its target ID up front (fonts got
//! theirs in the first round), so that references translate in one pass; the root window and
//! the default colormap map to the target's. Flows into `Regenerated::xid_map`.

use super::{Regen, RegenError};
use x11rb::connection::Connection;

/// Allocate a target ID for every resource but the fonts.
pub(super) fn allocate<C: Connection>(cx: &mut Regen<'_, C>) -> Result<(), RegenError> {
    let session = cx.session;
    for id in session
        .windows
        .iter()
        .map(|x| x.id)
        .chain(session.pixmaps.iter().map(|x| x.id))
        .chain(session.gcs.iter().map(|x| x.id))
        .chain(session.cursors.iter().map(|x| x.id))
        .chain(session.colormaps.iter().map(|x| x.id))
        .chain(session.pictures.iter().map(|x| x.id))
        .chain(session.glyphsets.iter().map(|x| x.id))
        .chain(session.regions.iter().map(|x| x.id))
        .chain(session.damages.iter().map(|x| x.id))
        .chain(session.counters.iter().map(|x| x.id))
        .chain(session.fences.iter().map(|x| x.id))
        .chain(session.shm_segments.iter().map(|x| x.id))
        .chain(session.dbe_buffers.iter().map(|x| x.id))
        .chain(session.glx.contexts.iter().map(|x| x.id))
        .chain(session.glx.windows.iter().map(|x| x.id))
        .chain(session.present_events.iter().map(|x| x.id))
        .chain(session.glx_pbuffers.iter().map(|x| x.id))
    {
        let new = cx.conn.generate_id()?;
        cx.out.xid_map.insert(id, new);
    }
    let src = &session.setup;
    cx.out.xid_map.insert(src.root, cx.target.root);
    cx.out
        .xid_map
        .insert(src.default_colormap, cx.target.default_colormap);
    Ok(())
}
