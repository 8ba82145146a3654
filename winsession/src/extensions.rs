//! Extension state beyond the core protocol and the GUIEVICT extension's resource details, one
//! module per extension: `render` (picture formats, pictures, glyph sets), `shape` (window
//! shapes), `xfixes` (regions, cursor names, selection inputs), `damage` (DAMAGE objects),
//! `sync` (counters and fences), `input` (XInput 2 event selections, with the devices they
//! name, mapped by use and name between servers), `xkb` (XKEYBOARD per-client state); `sink`
//! holds the requests a regeneration sends. This file is the driver.
//!
//! In: the application's own connection, its resource list and what the GUIEVICT extension
//! said about them. [`capture`] reads the state into the [`Session`] (pipelined: one round for
//! the queries, then one short round per unresolved DAMAGE object), with the root event mask
//! and the MIT-SHM segments, grabs, DOUBLE-BUFFER back buffers, GLX contexts and Present event
//! selections of the sibling modules. Out,
//! on the target server: [`negotiate`] asks for the application's extension versions,
//! [`regen_shapes`] shapes the fresh windows, and [`regen_resources`] turns the rest back into
//! requests, one function per extension.

mod damage;
mod input;
mod render;
mod shape;
mod sink;
mod sync;
mod xfixes;
mod xkb;

pub use damage::DEFAULT_DAMAGE_LEVEL;
pub use input::{map_xi_devices, XiDeviceMapping, ALL_DEVICES, ALL_MASTER_DEVICES};
pub(crate) use render::formats_of;
pub use render::{map_pict_formats, pict_formats};
pub(crate) use shape::regen_shapes;
pub(crate) use sink::Sink;
pub use xkb::{xkb_select_events, CORE_KEYBOARD_NAME};

use crate::capture::{CaptureError, ResourceList};
use crate::model::*;
use std::collections::HashMap;
use x11rb::connection::Connection;
use x11rb::protocol as xp;
use x11rb::protocol::damage::ConnectionExt as _;
use x11rb::protocol::sync::ConnectionExt as _;
use x11rb::protocol::xfixes::ConnectionExt as _;
use x11rb::protocol::xinput::ConnectionExt as _;
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// Server type names of the resources this module models.
pub mod type_names {
    /// XFIXES region.
    pub const REGION: &str = "XFixesRegion";
    /// DAMAGE object.
    pub const DAMAGE: &str = "DamageExt";
    /// SYNC counter.
    pub const COUNTER: &str = "SyncCounter";
    /// SYNC fence.
    pub const FENCE: &str = "SyncFence";
    /// XFIXES selection input record (one per XFixesSelectSelectionInput in effect).
    pub const SELECTION_CLIENT: &str = "XFixesSelectionClient";
    /// XFIXES's marker on a window that selection inputs refer to (made and freed with them).
    pub const SELECTION_WINDOW: &str = "XFixesSelectionWindow";
    /// XKEYBOARD interest record (one per device the client called XkbSelectEvents on).
    pub const XKB_CLIENT: &str = "XkbClient";
    /// SHAPE's list of the clients that selected shape events on a window, filed under the
    /// window's ID (so under the window's owner, whoever selected: a window manager's selection
    /// on the app's window shows up among the app's resources).
    pub const SHAPE_EVENT: &str = "ShapeEvent";
}

fn has_ext(conn: &impl Connection, name: &'static str) -> Result<bool, CaptureError> {
    Ok(conn.extension_information(name)?.is_some())
}

/// The IDs of the client's resources of server type `t`.
pub(crate) fn ids_of_type(list: &ResourceList, t: &str) -> Vec<u32> {
    list.other
        .iter()
        .filter(|(_, n)| n == t)
        .map(|(id, _)| *id)
        .collect()
}

fn rects(r: &[xproto::Rectangle]) -> Rects {
    r.iter().map(|r| (r.x, r.y, r.width, r.height)).collect()
}

fn xrects(r: &[(i16, i16, u16, u16)]) -> Vec<xproto::Rectangle> {
    r.iter()
        .map(|&(x, y, width, height)| xproto::Rectangle {
            x,
            y,
            width,
            height,
        })
        .collect()
}

/// Refuse (`Unsupported`) a target without the extension `name` when the application `uses` it.
fn require_ext(
    conn: &impl Connection,
    name: &'static str,
    uses: bool,
) -> Result<(), crate::RegenError> {
    if uses && conn.extension_information(name)?.is_none() {
        return Err(crate::RegenError::Unsupported(format!(
            "the target has no {name} extension, which the application uses"
        )));
    }
    Ok(())
}

/// Capture the extension state of the client into `s` (windows and pixmaps must be filled in
/// already). `list` is the client's resource list; `ext` what the GUIEVICT extension said (for
/// cursor names when the client's XFIXES version refuses GetCursorName). True when it sent
/// probes (DAMAGE, MIT-SHM) that change server state and were not followed by a wait.
pub fn capture(
    conn: &impl Connection,
    s: &mut Session,
    list: &ResourceList,
    in_process: bool,
    ext: Option<&crate::ext::ExtState>,
) -> Result<bool, CaptureError> {
    let windows: Vec<u32> = s.windows.iter().map(|w| w.id).collect();
    let asked = ask(conn, &windows, s.setup.root, list)?;
    finish(conn, s, list, in_process, ext, asked, &|_| None)
}

/// The extension queries of [`ask`], sent and not yet waited for.
pub(crate) struct Asked<'c, C: Connection> {
    have_shape: bool,
    have_xfixes: bool,
    have_damage: bool,
    have_xi: bool,
    xkb: Option<x11rb::cookie::Cookie<'c, C, xkb::RawReply>>,
    formats: Option<x11rb::cookie::Cookie<'c, C, xp::render::QueryPictFormatsReply>>,
    root_attrs: x11rb::cookie::Cookie<'c, C, xp::xproto::GetWindowAttributesReply>,
    shapes: Option<Vec<shape::WinShapeCookies<'c, C>>>,
    xi_selections: input::SelectionCookies<'c, C>,
    regions: xfixes::RegionCookies<'c, C>,
    sync_state: sync::SyncCookies<'c, C>,
    cursor_names: xfixes::CursorNameCookies<'c, C>,
}

/// Send the extension queries that need only the client's resource list and windows
/// (`windows` in the session's order, `root` the screen's): one pipelined round whose
/// answers [`finish`] reads, so a capture can send them with its own last round.
pub(crate) fn ask<'c, C: Connection>(
    conn: &'c C,
    windows: &[u32],
    root: u32,
    list: &ResourceList,
) -> Result<Asked<'c, C>, CaptureError> {
    let have_render = has_ext(conn, xp::render::X11_EXTENSION_NAME)?;
    let have_shape = has_ext(conn, xp::shape::X11_EXTENSION_NAME)?;
    let have_xfixes = has_ext(conn, xp::xfixes::X11_EXTENSION_NAME)?;
    let have_damage = has_ext(conn, xp::damage::X11_EXTENSION_NAME)?;
    let have_sync = has_ext(conn, xp::sync::X11_EXTENSION_NAME)?;
    let have_xi = has_ext(conn, xp::xinput::X11_EXTENSION_NAME)?;
    Ok(Asked {
        have_shape,
        have_xfixes,
        have_damage,
        have_xi,
        xkb: xkb::start_capture_xkb(conn)?,
        formats: render::ask_formats(conn, have_render)?,
        root_attrs: conn.get_window_attributes(root)?,
        shapes: shape::ask_shapes(conn, windows, have_shape)?,
        xi_selections: input::ask_selections(conn, windows, root, have_xi)?,
        regions: xfixes::ask_regions(conn, list, have_xfixes)?,
        sync_state: sync::ask_counters_and_fences(conn, list, have_sync)?,
        cursor_names: xfixes::ask_cursor_names(conn, &list.cursors, have_xfixes)?,
    })
}

/// Read the answers of [`ask`] into `s` and capture the rest (DAMAGE, XKB, MIT-SHM, XInput
/// devices, selection inputs, grabs, DOUBLE-BUFFER). `known_atom`: names of atoms the caller
/// already knows (not asked again). True as for [`capture`].
pub(crate) fn finish<C: Connection>(
    conn: &C,
    s: &mut Session,
    list: &ResourceList,
    in_process: bool,
    ext: Option<&crate::ext::ExtState>,
    asked: Asked<'_, C>,
    known_atom: &dyn Fn(u32) -> Option<String>,
) -> Result<bool, CaptureError> {
    let Asked {
        have_shape,
        have_xfixes,
        have_damage,
        have_xi,
        xkb: xkb_asked,
        formats,
        root_attrs,
        shapes,
        xi_selections,
        regions,
        sync_state,
        cursor_names,
    } = asked;
    render::read_formats(s, formats);
    match root_attrs.reply() {
        Ok(a) => s.root_event_mask = u32::from(a.your_event_mask),
        Err(e) => s.unknown.push(format!("root event mask: {e}")),
    }
    shape::read_shapes(s, shapes);
    input::read_selections(s, xi_selections);
    xfixes::read_cursor_names(conn, s, cursor_names, ext)?;
    xfixes::read_regions(s, regions);
    sync::read_counters_and_fences(s, sync_state);
    let damage_probed = damage::capture_damages(conn, s, list, ext, have_damage, have_xfixes)?;
    xkb::capture_xkb(s, ext, xkb_asked)?;
    let shm_probed = crate::shm::capture_segments(
        conn,
        s,
        ids_of_type(list, crate::shm::TYPE_NAME),
        in_process,
        ext,
    )?;
    input::capture_version_and_devices(conn, s, have_xi)?;
    xfixes::capture_selection_inputs(conn, s, list, ext, known_atom)?;
    crate::grabs::capture(s, list, ext);
    crate::active_grabs::capture(s, list, ext);
    crate::dbe::capture(conn, s, list)?;
    crate::glx::capture(conn, s, list, ext)?;
    crate::present::capture(s, ext);
    forget_modelled(s, have_shape);
    Ok(damage_probed || shm_probed)
}

/// Resources modelled by now leave `other_resources` (which lists what was not recreated).
fn forget_modelled(s: &mut Session, have_shape: bool) {
    let modelled = [
        crate::shm::TYPE_NAME,
        type_names::REGION,
        type_names::DAMAGE,
        type_names::COUNTER,
        type_names::FENCE,
        type_names::SELECTION_WINDOW,
    ];
    s.other_resources
        .retain(|o| !modelled.contains(&o.type_name.as_str()));
    if have_shape {
        shape::forget_own_selections(s);
    }
}

/// Negotiate extension versions for the new connection (it becomes the application's client,
/// and several extensions refuse requests from clients that did not ask for a version).
pub(crate) fn negotiate<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    sink: &mut Sink<'c, C>,
) -> Result<(), crate::RegenError> {
    let has = |n: &'static str| -> Result<bool, crate::RegenError> {
        Ok(conn.extension_information(n)?.is_some())
    };
    // Versions only add requests; the highest one is safe for these three.
    let xf = if has(xp::xfixes::X11_EXTENSION_NAME)? {
        Some(conn.xfixes_query_version(6, 0)?)
    } else {
        None
    };
    let dm = if has(xp::damage::X11_EXTENSION_NAME)? {
        Some(conn.damage_query_version(1, 1)?)
    } else {
        None
    };
    let sy = if has(xp::sync::X11_EXTENSION_NAME)? {
        Some(conn.sync_initialize(3, 1)?)
    } else {
        None
    };
    // XInput's version and XKB's UseExtension go out before any answer is awaited.
    let xi = match t
        .client_versions
        .iter()
        .find(|v| v.extension == xp::xinput::X11_EXTENSION_NAME)
    {
        Some(v) if has(xp::xinput::X11_EXTENSION_NAME)? => {
            Some((v, conn.xinput_xi_query_version(v.major, v.minor)?))
        }
        _ => None,
    };
    // The target's devices for the XInput 2 selections' device map (`input::regen_selections`),
    // asked after the version so that their answer comes with the versions'.
    if !t.xi_selections.is_empty()
        && !t.xi_devices.is_empty()
        && has(xp::xinput::X11_EXTENSION_NAME)?
    {
        sink.xi_devices = Some(conn.xinput_xi_query_device(input::ALL_DEVICES)?);
    }
    let xkb = xkb::start_xkb(conn, t, sink)?;
    let mut failed = |what: &str, e: x11rb::errors::ReplyError| {
        sink.warnings
            .push(format!("{what} version negotiation failed: {e}"))
    };
    if let Some(Err(e)) = xf.map(|c| c.reply()) {
        failed("XFIXES", e);
    }
    if let Some(Err(e)) = dm.map(|c| c.reply()) {
        failed("DAMAGE", e);
    }
    if let Some(Err(e)) = sy.map(|c| c.reply()) {
        failed("SYNC", e);
    }
    xkb.finish(sink)?;
    if let Some((v, c)) = xi {
        match c.reply() {
            Ok(r) if (r.major_version, r.minor_version) != (v.major, v.minor) => {
                sink.warnings.push(format!(
                    "XInput {}.{} negotiated on the target instead of the application's {}.{}",
                    r.major_version, r.minor_version, v.major, v.minor
                ))
            }
            Ok(_) => {}
            Err(e) => sink
                .warnings
                .push(format!("XInput version negotiation failed: {e}")),
        }
    }
    Ok(())
}

/// RENDER glyph sets (with every glyph) and pictures (all attributes), XFIXES regions, DAMAGE
/// objects, SYNC counters and fences, XInput 2 selections and the root event mask — after the
/// windows and pixmaps exist (their contents uploaded, so new damage starts empty). Returns the
/// XInput device map (source ID → target ID) the selections were made with.
pub(crate) fn regen_resources<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    orig_drawable: &HashMap<u32, u32>,
    sink: &mut Sink<'c, C>,
) -> Result<HashMap<u16, u16>, crate::RegenError> {
    render::regen_render(conn, t, orig_drawable, sink)?;
    xfixes::regen_regions(conn, t, sink)?;
    damage::regen_damages(conn, t, sink)?;
    sync::regen_counters_and_fences(conn, t, sink)?;
    let devices = input::regen_selections(conn, t, sink)?;
    xfixes::regen_selection_inputs(conn, t, sink)?;
    regen_root_event_mask(conn, t, sink)?;
    Ok(devices)
}

/// The application's event mask on the root window (a soft request: the root is shared).
fn regen_root_event_mask<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    sink: &mut Sink<'c, C>,
) -> Result<(), crate::RegenError> {
    if t.root_event_mask != 0 {
        sink.soft.push((
            "ChangeWindowAttributes(root event mask)",
            t.setup.root,
            conn.change_window_attributes(
                t.setup.root,
                &xproto::ChangeWindowAttributesAux::new()
                    .event_mask(xproto::EventMask::from(t.root_event_mask)),
            )?,
        ));
    }
    Ok(())
}
