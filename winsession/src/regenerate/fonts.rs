//! The first round of a regeneration: the session's fonts (and the fonts of its glyph cursors)
//! are opened and its atoms interned, and every question that needs no answer yet goes out
//! with them (BIG-REQUESTS, the target root's event masks, RENDER's picture formats, the GLX
//! configurations, the extension versions). The atoms' answers flow back into `atom_map`; a
//! font the target lacks is replaced by the closest one (`FontSubstitution`). What later phases
//! read from this round (the questions still unanswered, whether a window manager runs) flows
//! out as [`FirstRound`].

use super::{closest_font, FontSubstitution, Regen, RegenError};
use crate::model::*;
use x11rb::connection::Connection;
use x11rb::cookie::{Cookie, VoidCookie};
use x11rb::protocol::render::{self, ConnectionExt as _};
use x11rb::protocol::xinput::XIQueryDeviceReply;
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// What the first round leaves for later phases.
pub(super) struct FirstRound<'c, C: Connection> {
    /// RENDER's picture formats, asked when pictures, glyph sets or ARGB cursors need them.
    pub formats_asked: Option<Cookie<'c, C, render::QueryPictFormatsReply>>,
    /// The target's GLX configurations (see `crate::glx`).
    pub glx_asked: Option<crate::glx::Asked<'c, C>>,
    /// The extension-version requests whose failure only loses state.
    pub negotiated_soft: Vec<(&'static str, u32, VoidCookie<'c, C>)>,
    /// The target's XInput devices, asked with the versions.
    pub xi_devices: Option<Cookie<'c, C, XIQueryDeviceReply>>,
    /// Whether a window manager holds the target's root.
    pub managed: bool,
}

/// Open the fonts, intern the atoms, ask what later phases need; wait once for the answers.
pub(super) fn first_round<'c, C: Connection>(
    cx: &mut Regen<'c, C>,
) -> Result<FirstRound<'c, C>, RegenError> {
    let (conn, session, opts) = (cx.conn, cx.session, cx.opts);
    let mut font_cookies = Vec::new();
    for f in &session.fonts {
        let new = conn.generate_id()?;
        cx.out.xid_map.insert(f.id, new);
        match f.open_name() {
            Some(name) => {
                font_cookies.push((f, name.to_string(), conn.open_font(new, name.as_bytes())?))
            }
            None => font_cookies.push((f, String::new(), conn.open_font(new, b"fixed")?)),
        }
    }
    let glyph_fonts = &mut cx.scratch.glyph_fonts;
    let mut glyph_cookies = Vec::new();
    for c in &session.cursors {
        if let Some(g) = &c.glyph {
            for n in [&g.font, &g.mask_font] {
                if !glyph_fonts.contains_key(n) {
                    let id = conn.generate_id()?;
                    glyph_cookies.push((n, conn.open_font(id, n.as_bytes())?));
                    glyph_fonts.insert(n.clone(), id);
                }
            }
        }
    }
    // The atoms go out after the fonts: their answers then tell that the fonts opened (a
    // void request's check needs no round trip once a later reply has come).
    let atom_cookies: Vec<_> = session
        .atoms
        .iter()
        .map(|(&a, n)| conn.intern_atom(false, n.as_bytes()).map(|c| (a, c)))
        .collect::<Result<_, _>>()?;
    // --- Extension versions for the new connection (it becomes the application's client).
    // Sent before the atoms' answers are awaited: the wait for the extensions' placements
    // (asked together at the start) brings those answers too. BIG-REQUESTS is enabled as the
    // app had it (large requests replay); its answer comes with the versions'. The optional
    // requests are checked with everything else at the end (no round trip of their own).
    conn.prefetch_maximum_request_bytes();
    // RENDER's picture formats are needed for pictures, glyph sets and ARGB cursors: asked
    // now, their answer comes with the versions' (the extensions' placements are in by now).
    let needs_formats = !session.pictures.is_empty()
        || !session.glyphsets.is_empty()
        || session
            .cursors
            .iter()
            .any(|c| matches!(c.image, Some(CursorImage::Argb(_))));
    // Whether a window manager holds the target's root: asked with the atoms (same round trip).
    let root_attrs = conn.get_window_attributes(cx.target.root)?;
    let formats_asked = if needs_formats
        && conn
            .extension_information(render::X11_EXTENSION_NAME)?
            .is_some()
    {
        Some(conn.render_query_pict_formats()?)
    } else {
        None
    };
    // The target's GLX configurations (answer read with everything else, see `glx`).
    let glx_asked = crate::glx::ask(conn, session, opts.screen as u32)?;
    let (negotiated_soft, xi_devices) = {
        let mut sink = crate::extensions::Sink::new();
        crate::extensions::negotiate(conn, session, &mut sink)?;
        for w in sink.warnings {
            cx.warn(w);
        }
        (sink.soft, sink.xi_devices)
    };
    for (old, c) in atom_cookies {
        let r = c.reply().map_err(|source| RegenError::Reply {
            what: format!("InternAtom({:?})", session.atoms.get(&old)),
            source,
        })?;
        cx.out.atom_map.insert(old, r.atom);
    }
    // Under a window manager a MapWindow is only a request to it: the window is not viewable
    // yet, SetInputFocus on it would fail with BadMatch, and the focus is the manager's to give.
    let managed = root_attrs.reply().is_ok_and(|a| {
        a.all_event_masks
            .contains(xproto::EventMask::SUBSTRUCTURE_REDIRECT)
    });
    for (n, c) in glyph_cookies {
        c.check().map_err(|source| RegenError::Reply {
            what: format!("OpenFont({n:?}) for a glyph cursor"),
            source,
        })?;
    }
    for (f, name, c) in font_cookies {
        if f.open_name().is_none() {
            cx.warn(format!("font {:#x}: name unknown, opened \"fixed\"", f.id));
        }
        if c.check().is_ok() {
            continue;
        }
        if !opts.font_substitution {
            return Err(RegenError::FontUnavailable { name });
        }
        let Some((used, distance)) = closest_font(conn, f)? else {
            return Err(RegenError::FontUnavailable { name });
        };
        conn.open_font(cx.out.xid_map[&f.id], used.as_bytes())?
            .check()
            .map_err(|source| RegenError::Reply {
                what: format!("OpenFont({used:?}) as substitute for {name:?}"),
                source,
            })?;
        cx.warn(format!(
            "font {name:?} is missing on the target; using closest match {used:?} (distance {distance:.1})"
        ));
        cx.out.font_substitutions.push(FontSubstitution {
            id: f.id,
            wanted: name,
            used,
            distance,
        });
    }
    Ok(FirstRound {
        formats_asked,
        glx_asked,
        negotiated_soft,
        xi_devices,
        managed,
    })
}
