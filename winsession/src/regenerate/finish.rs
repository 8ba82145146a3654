//! The end of a regeneration: selections re-acquired, windows mapped (children first), the
//! focus set or left pending and the active grabs made again, the scratch resources freed,
//! then the one final
//! synchronisation: its answer means the server has processed every request, and every
//! pending cookie's error flows out — soft ones as warnings, hard ones as
//! [`RegenError::Requests`] — with the finished [`Regenerated`].

use super::{Regen, RegenError, Regenerated};
use crate::model::*;
use std::time::Instant;
use x11rb::connection::Connection;
use x11rb::cookie::VoidCookie;
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// Selections, mapping, focus; `order` is the windows' creation order, `managed` whether a
/// window manager holds the target's root.
pub(super) fn select_map_focus<C: Connection>(
    cx: &mut Regen<'_, C>,
    t: &Session,
    order: &[usize],
    managed: bool,
) -> Result<(), RegenError> {
    let (conn, opts) = (cx.conn, cx.opts);
    let root = cx.target.root;
    if opts.restore_selections {
        for s in &t.selections {
            cx.pend.push(
                "SetSelectionOwner",
                s.owner,
                conn.set_selection_owner(s.owner, s.name, x11rb::CURRENT_TIME)?,
            );
        }
    }
    if opts.map_windows {
        for &i in order.iter().rev() {
            let w = &t.windows[i];
            if w.mapped() {
                cx.pend.push("MapWindow", w.id, conn.map_window(w.id)?);
            }
        }
    }
    if let Some(f) = &t.focus {
        let viewable = viewable(t, f.window, root);
        if managed {
            tracing::debug!(
                window = f.window,
                "focus left to the target's window manager"
            );
        } else if opts.map_windows && viewable {
            cx.pend.push(
                "SetInputFocus",
                f.window,
                conn.set_input_focus(
                    xproto::InputFocus::from(f.revert_to),
                    f.window,
                    x11rb::CURRENT_TIME,
                )?,
            );
        } else if viewable {
            cx.out.pending_focus = Some((f.window, f.revert_to));
        }
    }
    // A grab needs its window viewable: after the mapping.
    if opts.map_windows {
        cx.grabs = crate::active_grabs::send(conn, t)?;
    } else if !t.active_grabs.is_empty() {
        cx.warn(format!(
            "{} active grab(s) not made again: the windows are mapped later by the caller",
            t.active_grabs.len()
        ));
    }
    Ok(())
}

/// Scratch resources go away; the cursors and GCs keep what they need.
pub(super) fn free_scratch<C: Connection>(cx: &mut Regen<'_, C>) -> Result<(), RegenError> {
    let conn = cx.conn;
    let scratch = std::mem::take(&mut cx.scratch);
    for (_, g) in scratch.gcs {
        cx.pend.push("FreeGC(scratch)", g, conn.free_gc(g)?);
    }
    for p in scratch.pixmaps {
        cx.pend.push("FreePixmap(scratch)", p, conn.free_pixmap(p)?);
    }
    for (_, f) in scratch.glyph_fonts {
        cx.pend.push("CloseFont(glyph)", f, conn.close_font(f)?);
    }
    if let Some(f) = scratch.cursor_font {
        cx.pend.push("CloseFont(cursor)", f, conn.close_font(f)?);
    }
    Ok(())
}

/// The final synchronisation and the checks of every pending request; `negotiated_soft` are
/// the first round's optional requests, `sink` the extension state's.
pub(super) fn sync<'c, C: Connection>(
    mut cx: Regen<'c, C>,
    negotiated_soft: Vec<(&'static str, u32, VoidCookie<'c, C>)>,
    sink: crate::extensions::Sink<'c, C>,
    t0: Instant,
) -> Result<Regenerated, RegenError> {
    let (conn, session) = (cx.conn, cx.session);
    for u in &session.unknown {
        if u.contains("not modelled") {
            cx.warn(format!("not recreated: {u}"));
        }
    }

    cx.out.stats.requests = cx.pend.cookies.len() + session.atoms.len() + session.fonts.len();
    // One round trip: every request sent has been processed when this answer comes (the
    // checks below then need none, and the caller may stop this client at once).
    let synced = conn.get_input_focus()?.reply();
    for w in crate::active_grabs::check(std::mem::take(&mut cx.grabs)) {
        cx.warn(w);
    }
    let mut failed = Vec::new();
    for (what, id, c) in negotiated_soft.into_iter().chain(sink.soft) {
        if let Err(e) = c.check() {
            cx.warn(format!("{what}({id:#x}) failed, state lost: {e}"));
        }
    }
    for (what, id, c) in cx.pend.cookies {
        if let Err(e) = c.check() {
            failed.push(format!("{what}({id:#x}): {e}"));
        }
    }
    cx.out.stats.elapsed = t0.elapsed();
    if !failed.is_empty() {
        return Err(RegenError::Requests(failed));
    }
    synced.map_err(|source| RegenError::Reply {
        what: "GetInputFocus (the final synchronisation)".into(),
        source,
    })?;
    tracing::debug!(
        "regenerated {} windows, {} pixmaps ({} bytes; {} on shared memory) in {:?}",
        session.windows.len(),
        session.pixmaps.len(),
        cx.out.stats.pixmap_bytes,
        cx.out.stats.shm_pixmaps,
        cx.out.stats.elapsed
    );
    Ok(cx.out)
}
/// Whether the window and all its ancestors are mapped.
fn viewable(s: &Session, mut w: u32, root: u32) -> bool {
    for _ in 0..=s.windows.len() {
        if w == root {
            return true;
        }
        match s.windows.iter().find(|x| x.id == w) {
            Some(x) if x.mapped() => w = x.parent,
            _ => return false,
        }
    }
    false
}
