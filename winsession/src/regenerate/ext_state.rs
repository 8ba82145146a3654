//! Extension state after the windows: GLX contexts and windows (reading the FBConfigs asked in
//! the first round; the FBConfig pairs flow into `xid_map`), Present event selections, then
//! shapes, RENDER pictures and glyph sets, XFIXES regions, DAMAGE, SYNC, XInput 2 selections
//! (the device map flows into `xi_device_map`) and passive grabs. Each part's requests flow
//! into the pending list (hard) or the sink's soft list, its warnings into the result.

use super::{Regen, RegenError};
use crate::extensions::Sink;
use crate::model::*;
use std::collections::HashMap;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// GLX contexts and windows of a direct-rendering client, and Present event selections.
pub(super) fn glx_present<'c, C: Connection>(
    cx: &mut Regen<'c, C>,
    t: &Session,
    glx_asked: Option<crate::glx::Asked<'c, C>>,
) -> Result<(), RegenError> {
    let conn = cx.conn;
    let glx = crate::glx::regenerate(conn, t, glx_asked, cx.opts.screen as u32)?;
    for (what, id, c) in glx.checks {
        cx.pend.push(what, id, c);
    }
    for w in glx.warnings {
        cx.warn(w);
    }
    cx.out.xid_map.extend(glx.fbconfig_map);
    // Pbuffer contents go into the pixmap the server made under the pbuffer's ID.
    for id in glx.uploads {
        let Some(img) = t
            .glx_pbuffers
            .iter()
            .find(|p| p.id == id)
            .and_then(|p| p.contents.as_ref())
        else {
            continue;
        };
        let gc = conn.generate_id()?;
        cx.pend.push(
            "CreateGC(pbuffer)",
            id,
            conn.create_gc(gc, id, &xproto::CreateGCAux::new().graphics_exposures(0))?,
        );
        super::pixmaps::put_image_chunked(cx, id, gc, img)?;
        cx.pend.push("FreeGC(pbuffer)", id, conn.free_gc(gc)?);
    }
    // --- Present event selections (after the windows).
    let (checks, warnings) = crate::present::regenerate(conn, t)?;
    for (what, id, c) in checks {
        cx.pend.push(what, id, c);
    }
    for w in warnings {
        cx.warn(w);
    }
    Ok(())
}

/// Extension state: versions, shapes, RENDER, XFIXES, DAMAGE, SYNC, XInput 2, grabs.
pub(super) fn resources<'c, C: Connection>(
    cx: &mut Regen<'c, C>,
    t: &Session,
    sink: &mut Sink<'c, C>,
) -> Result<(), RegenError> {
    let conn = cx.conn;
    crate::extensions::regen_shapes(conn, t, sink)?;
    let orig_drawable: HashMap<u32, u32> = t
        .pictures
        .iter()
        .zip(&cx.session.pictures)
        .map(|(n, o)| (n.id, o.drawable))
        .collect();
    cx.out.xi_device_map = crate::extensions::regen_resources(conn, t, &orig_drawable, sink)?;
    crate::grabs::regen(conn, t, sink)?;
    cx.pend.cookies.append(&mut sink.hard);
    for w in std::mem::take(&mut sink.warnings) {
        cx.warn(w);
    }
    Ok(())
}
