//! Resources known by ID only at this point: the listed GCs, cursors (with a glyph cursor's
//! hint), RENDER pictures and glyph sets, and the other resources of the client flow into the
//! session as placeholders; the extension state (`crate::extensions::finish`) and the
//! caller's hints fill them in afterwards.

use super::{CaptureOptions, ResourceList};
use crate::model::*;

/// The listed resources the capture has not read into the session; `mine` tells the client's
/// IDs.
pub(super) fn store(
    session: &mut Session,
    list: &ResourceList,
    opts: &CaptureOptions,
    mine: &dyn Fn(u32) -> bool,
) {
    session.gcs = list
        .gcs
        .iter()
        .map(|&id| Gc {
            id,
            depth: 0,
            values: None,
        })
        .collect();
    session.cursors = list
        .cursors
        .iter()
        .map(|&id| Cursor {
            id,
            width: 0,
            height: 0,
            x_hot: 0,
            y_hot: 0,
            image: None,
            glyph: opts.hints.glyph_cursors.get(&id).cloned(),
            name: None,
        })
        .collect();
    session.pictures = list
        .pictures
        .iter()
        .map(|&id| Picture::unknown(id))
        .collect();
    session.glyphsets = list
        .glyphsets
        .iter()
        .map(|&id| GlyphSet {
            id,
            format: 0,
            glyphs: Vec::new(),
            known: false,
        })
        .collect();
    session.other_resources = list
        .other
        .iter()
        .filter(|(id, _)| mine(*id))
        .map(|(id, t)| OtherResource {
            id: *id,
            type_name: t.clone(),
        })
        .collect();
}
