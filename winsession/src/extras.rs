//! Extension state beyond the core protocol and the GUIEVICT extension's resource details:
//! RENDER picture formats, SHAPE regions, XFIXES regions, DAMAGE objects, SYNC counters and
//! fences, XInput 2 event selections, and per-client extension versions. The capture half reads
//! them on the application's own connection (pipelined: one round for the queries, then one
//! short round per unresolved DAMAGE object) into the [`Session`]; the regenerate half turns
//! them back into requests on the target server.

use crate::capture::{CaptureError, ResourceList};
use crate::model::*;
use std::collections::HashMap;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::cookie::Cookie;
use x11rb::protocol::damage::{self, ConnectionExt as _};
use x11rb::protocol::render::{self, ConnectionExt as _};
use x11rb::protocol::shape::{self, ConnectionExt as _};
use x11rb::protocol::sync::{self, ConnectionExt as _};
use x11rb::protocol::xc_misc::ConnectionExt as _;
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xinput::{self, ConnectionExt as _};
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
}

/// Report level DAMAGE objects get when the capture cannot tell: NonEmpty, what xeyes and
/// Present-style back buffers use.
pub const DEFAULT_DAMAGE_LEVEL: u8 = 3;

/// Most candidate drawables tried per DAMAGE object.
const MAX_DAMAGE_CANDIDATES: usize = 256;

fn has_ext(conn: &impl Connection, name: &'static str) -> Result<bool, CaptureError> {
    Ok(conn.extension_information(name)?.is_some())
}

fn rects(r: &[xproto::Rectangle]) -> Rects {
    r.iter().map(|r| (r.x, r.y, r.width, r.height)).collect()
}

/// The picture formats of the server behind `conn` (empty without RENDER).
pub fn pict_formats(conn: &impl Connection) -> Result<Vec<PictFormat>, CaptureError> {
    if !has_ext(conn, render::X11_EXTENSION_NAME)? {
        return Ok(Vec::new());
    }
    let r = conn
        .render_query_pict_formats()?
        .reply()
        .map_err(|source| CaptureError::Reply {
            what: "RenderQueryPictFormats".into(),
            source,
        })?;
    Ok(formats_of(&r))
}

pub(crate) fn formats_of(r: &render::QueryPictFormatsReply) -> Vec<PictFormat> {
    r.formats
        .iter()
        .map(|f| PictFormat {
            id: f.id,
            type_: u8::from(f.type_),
            depth: f.depth,
            direct: [
                f.direct.red_shift,
                f.direct.red_mask,
                f.direct.green_shift,
                f.direct.green_mask,
                f.direct.blue_shift,
                f.direct.blue_mask,
                f.direct.alpha_shift,
                f.direct.alpha_mask,
            ],
            colormap: f.colormap,
        })
        .collect()
}

struct WinShapeCookies<'c, C: RequestConnection> {
    window: u32,
    bounding: Cookie<'c, C, shape::GetRectanglesReply>,
    clip: Cookie<'c, C, shape::GetRectanglesReply>,
    input: Cookie<'c, C, shape::GetRectanglesReply>,
    selected: Cookie<'c, C, shape::InputSelectedReply>,
}

/// Capture the extension state of the client into `s` (windows and pixmaps must be filled in
/// already). `list` is the client's resource list.
pub fn capture(
    conn: &impl Connection,
    s: &mut Session,
    list: &ResourceList,
    in_process: bool,
) -> Result<(), CaptureError> {
    let have_render = has_ext(conn, render::X11_EXTENSION_NAME)?;
    let have_shape = has_ext(conn, shape::X11_EXTENSION_NAME)?;
    let have_xfixes = has_ext(conn, xfixes::X11_EXTENSION_NAME)?;
    let have_damage = has_ext(conn, damage::X11_EXTENSION_NAME)?;
    let have_sync = has_ext(conn, sync::X11_EXTENSION_NAME)?;
    let have_xi = has_ext(conn, xinput::X11_EXTENSION_NAME)?;

    let of_type = |t: &str| -> Vec<u32> {
        list.other
            .iter()
            .filter(|(_, n)| n == t)
            .map(|(id, _)| *id)
            .collect()
    };
    let region_ids = if have_xfixes {
        of_type(type_names::REGION)
    } else {
        Vec::new()
    };
    let damage_ids = if have_damage {
        of_type(type_names::DAMAGE)
    } else {
        Vec::new()
    };
    let (counter_ids, fence_ids) = if have_sync {
        (of_type(type_names::COUNTER), of_type(type_names::FENCE))
    } else {
        (Vec::new(), Vec::new())
    };

    // One pipelined round.
    let formats = if have_render {
        Some(conn.render_query_pict_formats()?)
    } else {
        None
    };
    let root = s.setup.root;
    let root_attrs = conn.get_window_attributes(root)?;
    let mut shape_cookies = Vec::new();
    if have_shape {
        for w in &s.windows {
            shape_cookies.push(WinShapeCookies {
                window: w.id,
                bounding: conn.shape_get_rectangles(w.id, shape::SK::BOUNDING)?,
                clip: conn.shape_get_rectangles(w.id, shape::SK::CLIP)?,
                input: conn.shape_get_rectangles(w.id, shape::SK::INPUT)?,
                selected: conn.shape_input_selected(w.id)?,
            });
        }
    }
    let mut xi_cookies = Vec::new();
    if have_xi {
        for w in s.windows.iter().map(|w| w.id).chain(std::iter::once(root)) {
            xi_cookies.push((w, conn.xinput_xi_get_selected_events(w)?));
        }
    }
    let region_cookies: Vec<_> = region_ids
        .iter()
        .map(|&r| conn.xfixes_fetch_region(r).map(|c| (r, c)))
        .collect::<Result<_, _>>()?;
    let counter_cookies: Vec<_> = counter_ids
        .iter()
        .map(|&c| conn.sync_query_counter(c).map(|k| (c, k)))
        .collect::<Result<_, _>>()?;
    let fence_cookies: Vec<_> = fence_ids
        .iter()
        .map(|&f| conn.sync_query_fence(f).map(|k| (f, k)))
        .collect::<Result<_, _>>()?;

    if let Some(c) = formats {
        match c.reply() {
            Ok(r) => s.setup.pict_formats = formats_of(&r),
            Err(e) => s
                .unknown
                .push(format!("RENDER picture formats of the source server: {e}")),
        }
    }
    match root_attrs.reply() {
        Ok(a) => s.root_event_mask = u32::from(a.your_event_mask),
        Err(e) => s.unknown.push(format!("root event mask: {e}")),
    }
    let geometry: HashMap<u32, (u16, u16, u16)> = s
        .windows
        .iter()
        .map(|w| (w.id, (w.width, w.height, w.border_width)))
        .collect();
    let mut shapes: HashMap<u32, WindowShape> = HashMap::new();
    for c in shape_cookies {
        let (w, h, bw) = geometry.get(&c.window).copied().unwrap_or_default();
        // An unshaped window reports its full box for bounding and input. The X server reports
        // that box as width + border (not + 2 × border), so accept both spellings of it.
        let b = bw as i16;
        let defaults_bounding = [
            (
                -b,
                -b,
                w.saturating_add(bw.saturating_mul(2)),
                h.saturating_add(bw.saturating_mul(2)),
            ),
            (-b, -b, w.saturating_add(bw), h.saturating_add(bw)),
        ];
        let defaults_clip = [(0, 0, w, h), (0, 0, w, h)];
        let region = |r: Result<shape::GetRectanglesReply, _>,
                      defaults: [(i16, i16, u16, u16); 2]| {
            r.ok().and_then(|r: shape::GetRectanglesReply| {
                let rs = rects(&r.rectangles);
                (!defaults.iter().any(|d| rs == [*d])).then(|| ShapeRects {
                    ordering: u8::from(r.ordering),
                    rects: rs,
                })
            })
        };
        let shape = WindowShape {
            bounding: region(c.bounding.reply(), defaults_bounding),
            clip: region(c.clip.reply(), defaults_clip),
            input: region(c.input.reply(), defaults_bounding),
            events: c.selected.reply().map(|r| r.enabled).unwrap_or(false),
        };
        shapes.insert(c.window, shape);
    }
    if have_shape {
        for w in &mut s.windows {
            w.shape = Some(shapes.remove(&w.id).unwrap_or_default());
        }
    }
    for (w, c) in xi_cookies {
        match c.reply() {
            Ok(r) => {
                let masks: Vec<(u16, Vec<u32>)> = r
                    .masks
                    .into_iter()
                    .filter(|m| m.mask.iter().any(|&x| u32::from(x) != 0))
                    .map(|m| (m.deviceid, m.mask.into_iter().map(u32::from).collect()))
                    .collect();
                if !masks.is_empty() {
                    s.xi_selections.push(XiSelection { window: w, masks });
                }
            }
            Err(e) => s
                .unknown
                .push(format!("window {w:#x}: XInput 2 event selection ({e})")),
        }
    }
    for (id, c) in region_cookies {
        let rects = match c.reply() {
            Ok(r) => Some(rects(&r.rectangles)),
            Err(e) => {
                s.unknown.push(format!("region {id:#x}: rectangles ({e})"));
                None
            }
        };
        s.regions.push(Region { id, rects });
    }
    for (id, c) in counter_cookies {
        let value = match c.reply() {
            Ok(r) => Some((i64::from(r.counter_value.hi) << 32) | i64::from(r.counter_value.lo)),
            Err(e) => {
                s.unknown.push(format!("sync counter {id:#x}: value ({e})"));
                None
            }
        };
        s.counters.push(Counter { id, value });
    }
    for (id, c) in fence_cookies {
        let triggered = match c.reply() {
            Ok(r) => Some(r.triggered),
            Err(e) => {
                s.unknown.push(format!("sync fence {id:#x}: state ({e})"));
                None
            }
        };
        s.fences.push(Fence { id, triggered });
    }
    if !damage_ids.is_empty() {
        probe_damage(conn, s, &damage_ids, have_xfixes)?;
    }
    capture_xkb(conn, s)?;
    let shm_ids = of_type(crate::shm::TYPE_NAME);
    if !shm_ids.is_empty() && has_ext(conn, x11rb::protocol::shm::X11_EXTENSION_NAME)? {
        crate::shm::capture(conn, s, &shm_ids, in_process)?;
    }
    // XInput 2: the version the client negotiated. Asking for a version at least as high as the
    // client's returns the client's own (the server never raises an XI2 client's version); only
    // asked when the client has XI2 selections, i.e. certainly negotiated one.
    if have_xi && !s.xi_selections.is_empty() {
        match conn.xinput_xi_query_version(2, 4)?.reply() {
            Ok(r) => s.client_versions.push(ClientVersion {
                extension: xinput::X11_EXTENSION_NAME.into(),
                major: r.major_version,
                minor: r.minor_version,
                known: true,
            }),
            Err(e) => s.unknown.push(format!("XInput 2 client version ({e})")),
        }
    }
    let modelled = [
        crate::shm::TYPE_NAME,
        type_names::REGION,
        type_names::DAMAGE,
        type_names::COUNTER,
        type_names::FENCE,
    ];
    s.other_resources
        .retain(|o| !modelled.contains(&o.type_name.as_str()));
    Ok(())
}

/// Find the drawable each DAMAGE object watches. The protocol cannot read it back, so probe:
/// take the object's pending damage out (kept in a region), add damage to one candidate drawable,
/// and see whether the object picked it up; then give the pending damage back. Candidates are
/// tried nearest ID first (clients create a damage object right after its drawable). Adding
/// damage never changes pixels; at worst other watchers of a candidate see extra damage, which
/// DAMAGE allows (over-reporting is always safe). The report level cannot be probed: it becomes
/// [`DEFAULT_DAMAGE_LEVEL`] with a note in [`Session::unknown`].
fn probe_damage(
    conn: &impl Connection,
    s: &mut Session,
    ids: &[u32],
    have_xfixes: bool,
) -> Result<(), CaptureError> {
    let unknown_all = |s: &mut Session, why: &str| {
        for &id in ids {
            s.unknown.push(format!("damage {id:#x}: drawable ({why})"));
            s.damages.push(Damage {
                id,
                drawable: 0,
                level: DEFAULT_DAMAGE_LEVEL,
                level_known: false,
            });
        }
    };
    if !have_xfixes {
        unknown_all(s, "XFIXES is absent, so damage cannot be probed");
        return Ok(());
    }
    // DamageAdd needs DAMAGE 1.1 negotiated by the client; raising 1.0 to 1.1 changes nothing
    // else. Regions need XFIXES ≥ 2, which a client holding damage objects negotiated already.
    if let Err(e) = conn.damage_query_version(1, 1)?.reply() {
        unknown_all(s, &format!("DAMAGE QueryVersion failed: {e}"));
        return Ok(());
    }
    let mut candidates: Vec<(u32, bool)> = s
        .pixmaps
        .iter()
        .filter(|p| p.width > 0 && p.height > 0)
        .map(|p| (p.id, false))
        .chain(
            s.windows
                .iter()
                .filter(|w| w.mapped())
                .map(|w| (w.id, true)),
        )
        .collect();
    candidates.sort_unstable();
    let full = [xproto::Rectangle {
        x: -32768,
        y: -32768,
        width: u16::MAX,
        height: u16::MAX,
    }];
    // This connection is the application's: temporary IDs must be free IDs of its range.
    let free = conn
        .xc_misc_get_xid_list(3)?
        .reply()
        .map_err(|source| CaptureError::Reply {
            what: "XC-MISC GetXIDList".into(),
            source,
        })?
        .ids;
    let [everything, probe, saved] = free[..] else {
        unknown_all(s, "the client has no free resource IDs for probing");
        return Ok(());
    };
    conn.xfixes_create_region(everything, &full)?;
    conn.xfixes_create_region(probe, &[])?;
    conn.xfixes_create_region(saved, &[])?;
    for &id in ids {
        conn.damage_subtract(id, 0u32, saved)?;
        // Nearest ID first, lower IDs before higher at equal distance.
        let mut order = candidates.clone();
        order.sort_by_key(|&(c, _)| (c.abs_diff(id), c > id));
        let mut found = None;
        for &(c, _) in order.iter().take(MAX_DAMAGE_CANDIDATES) {
            conn.damage_add(c, everything)?;
            conn.damage_subtract(id, 0u32, probe)?;
            let r = conn.xfixes_fetch_region(probe)?.reply();
            match r {
                Ok(r) if !r.rectangles.is_empty() => {
                    found = Some(c);
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    s.unknown
                        .push(format!("damage {id:#x}: probing failed ({e})"));
                    break;
                }
            }
        }
        if let Some(d) = found {
            conn.damage_add(d, saved)?;
        } else {
            s.unknown.push(format!(
                "damage {id:#x}: drawable not found among the client's drawables; not recreated"
            ));
        }
        s.unknown.push(format!(
            "damage {id:#x}: report level cannot be read back; regenerated as NonEmpty"
        ));
        s.damages.push(Damage {
            id,
            drawable: found.unwrap_or(0),
            level: DEFAULT_DAMAGE_LEVEL,
            level_known: false,
        });
    }
    conn.xfixes_destroy_region(everything)?;
    conn.xfixes_destroy_region(probe)?;
    conn.xfixes_destroy_region(saved)?;
    Ok(())
}

// ------------------------------------------------------------------------------- regenerate

/// Old PICTFORMAT → new PICTFORMAT: formats are server-allocated, so each source format is
/// matched to the target format with the same type, depth and channel layout.
pub fn map_pict_formats(src: &[PictFormat], dst: &[PictFormat]) -> HashMap<u32, u32> {
    src.iter()
        .filter_map(|s| {
            dst.iter()
                .find(|d| {
                    d.type_ == s.type_
                        && d.depth == s.depth
                        && (s.type_ == 0 || d.direct == s.direct)
                })
                .map(|d| (s.id, d.id))
        })
        .collect()
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

fn color(c: [u16; 4]) -> render::Color {
    render::Color {
        red: c[0],
        green: c[1],
        blue: c[2],
        alpha: c[3],
    }
}

fn pointfix(x: i32, y: i32) -> render::Pointfix {
    render::Pointfix { x, y }
}

const IDENTITY: [i32; 9] = [1 << 16, 0, 0, 0, 1 << 16, 0, 0, 0, 1 << 16];

/// Requests to send, collected by the caller: `hard` failures abort the regeneration, `soft`
/// ones become warnings (state the app can live without, such as a selection on the root that
/// another client holds).
pub(crate) struct Sink<'c, C: RequestConnection> {
    pub hard: Vec<(&'static str, u32, x11rb::cookie::VoidCookie<'c, C>)>,
    pub soft: Vec<(&'static str, u32, x11rb::cookie::VoidCookie<'c, C>)>,
    pub warnings: Vec<String>,
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
    let xf = if has(xfixes::X11_EXTENSION_NAME)? {
        Some(conn.xfixes_query_version(6, 0)?)
    } else {
        None
    };
    let dm = if has(damage::X11_EXTENSION_NAME)? {
        Some(conn.damage_query_version(1, 1)?)
    } else {
        None
    };
    let sy = if has(sync::X11_EXTENSION_NAME)? {
        Some(conn.sync_initialize(3, 1)?)
    } else {
        None
    };
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
    regen_xkb(conn, t, sink)?;
    if has(xinput::X11_EXTENSION_NAME)? {
        let v = t
            .client_versions
            .iter()
            .find(|v| v.extension == xinput::X11_EXTENSION_NAME);
        if let Some(v) = v {
            let r = conn.xinput_xi_query_version(v.major, v.minor)?.reply();
            match r {
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
    }
    Ok(())
}

/// Shapes of freshly created windows (before they are mapped).
pub(crate) fn regen_shapes<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    sink: &mut Sink<'c, C>,
) -> Result<(), crate::RegenError> {
    if !t
        .windows
        .iter()
        .any(|w| w.shape.as_ref().is_some_and(|s| !s.is_default()))
    {
        return Ok(());
    }
    if conn
        .extension_information(shape::X11_EXTENSION_NAME)?
        .is_none()
    {
        sink.warnings
            .push("the target has no SHAPE extension: windows lose their shapes".into());
        return Ok(());
    }
    for w in &t.windows {
        let Some(s) = &w.shape else { continue };
        for (kind, r) in [
            (shape::SK::BOUNDING, &s.bounding),
            (shape::SK::CLIP, &s.clip),
            (shape::SK::INPUT, &s.input),
        ] {
            if let Some(r) = r {
                sink.hard.push((
                    "ShapeRectangles",
                    w.id,
                    conn.shape_rectangles(
                        shape::SO::SET,
                        kind,
                        xproto::ClipOrdering::from(r.ordering),
                        w.id,
                        0,
                        0,
                        &xrects(&r.rects),
                    )?,
                ));
            }
        }
        if s.events {
            sink.hard.push((
                "ShapeSelectInput",
                w.id,
                conn.shape_select_input(w.id, true)?,
            ));
        }
    }
    Ok(())
}

/// RENDER glyph sets (with every glyph) and pictures (all attributes), XFIXES regions, DAMAGE
/// objects, SYNC counters and fences, XInput 2 selections and the root event mask — after the
/// windows and pixmaps exist (their contents uploaded, so new damage starts empty).
pub(crate) fn regen_resources<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    orig_drawable: &HashMap<u32, u32>,
    sink: &mut Sink<'c, C>,
) -> Result<(), crate::RegenError> {
    let max_req = conn.maximum_request_bytes();
    let have_render = conn
        .extension_information(render::X11_EXTENSION_NAME)?
        .is_some();
    if !have_render && (!t.pictures.is_empty() || !t.glyphsets.is_empty()) {
        return Err(crate::RegenError::Unsupported(
            "the target has no RENDER extension, which the application uses".into(),
        ));
    }
    for g in &t.glyphsets {
        if !g.known {
            sink.warnings.push(format!(
                "glyph set {:#x}: glyphs unknown; created empty",
                g.id
            ));
        }
        sink.hard.push((
            "RenderCreateGlyphSet",
            g.id,
            conn.render_create_glyph_set(g.id, g.format)?,
        ));
        // AddGlyphs in batches that fit a request: 28 bytes header, 4 + 12 per glyph + image.
        let mut i = 0;
        while i < g.glyphs.len() {
            let mut size = 28usize;
            let mut j = i;
            while j < g.glyphs.len() {
                let add = 16 + g.glyphs[j].image.len().next_multiple_of(4);
                if j > i && size + add > max_req {
                    break;
                }
                size += add;
                j += 1;
            }
            let batch = &g.glyphs[i..j];
            let ids: Vec<u32> = batch.iter().map(|x| x.id).collect();
            let infos: Vec<render::Glyphinfo> = batch
                .iter()
                .map(|x| render::Glyphinfo {
                    width: x.width,
                    height: x.height,
                    x: x.x,
                    y: x.y,
                    x_off: x.x_off,
                    y_off: x.y_off,
                })
                .collect();
            let mut data = Vec::new();
            for x in batch {
                data.extend_from_slice(&x.image);
                data.resize(data.len().next_multiple_of(4), 0);
            }
            sink.hard.push((
                "RenderAddGlyphs",
                g.id,
                conn.render_add_glyphs(g.id, &ids, &infos, &data)?,
            ));
            i = j;
        }
    }
    let live: std::collections::HashSet<u32> = t
        .windows
        .iter()
        .map(|w| w.id)
        .chain(t.pixmaps.iter().map(|p| p.id))
        .chain(std::iter::once(t.setup.root))
        .collect();
    let mut placeholders = Vec::new();
    for p in &t.pictures {
        if !p.known {
            sink.warnings.push(format!(
                "picture {:#x}: attributes unknown; not recreated",
                p.id
            ));
            continue;
        }
        match &p.fill {
            Some(Fill::Solid(c)) => sink.hard.push((
                "RenderCreateSolidFill",
                p.id,
                conn.render_create_solid_fill(p.id, color(*c))?,
            )),
            Some(Fill::Gradient {
                kind,
                params,
                stops,
            }) => {
                let offs: Vec<i32> = stops.iter().map(|s| s.0).collect();
                let cols: Vec<render::Color> = stops.iter().map(|s| color(s.1)).collect();
                let q = |i: usize| params.get(i).copied().unwrap_or(0);
                let c = match kind {
                    GradientKind::Linear => conn.render_create_linear_gradient(
                        p.id,
                        pointfix(q(0), q(1)),
                        pointfix(q(2), q(3)),
                        &offs,
                        &cols,
                    )?,
                    GradientKind::Radial => conn.render_create_radial_gradient(
                        p.id,
                        pointfix(q(0), q(1)),
                        pointfix(q(2), q(3)),
                        q(4),
                        q(5),
                        &offs,
                        &cols,
                    )?,
                    GradientKind::Conical => conn.render_create_conical_gradient(
                        p.id,
                        pointfix(q(0), q(1)),
                        q(2),
                        &offs,
                        &cols,
                    )?,
                };
                sink.hard.push(("RenderCreateGradient", p.id, c));
            }
            None => {
                if p.drawable == 0 {
                    sink.warnings.push(format!(
                        "picture {:#x}: drawable unknown; not recreated",
                        p.id
                    ));
                    continue;
                }
                // A picture keeps its drawable alive after the application freed it (Xft and Tk
                // draw text into short-lived pixmaps this way). Such a drawable is gone from the
                // resource list: give the picture a placeholder pixmap of its depth, freed at
                // once like the original; its contents were unreachable to the application.
                let drawable = if live.contains(&p.drawable) {
                    p.drawable
                } else {
                    let depth = t
                        .setup
                        .pict_formats
                        .iter()
                        .find(|f| f.id == p.format)
                        .map(|f| f.depth)
                        .unwrap_or(t.setup.root_depth);
                    let pm = conn.generate_id()?;
                    sink.hard.push((
                        "CreatePixmap(picture placeholder)",
                        pm,
                        conn.create_pixmap(depth, pm, t.setup.root, 1, 1)?,
                    ));
                    placeholders.push(pm);
                    sink.warnings.push(format!(
                        "picture {:#x}: its drawable {:#x} was already freed by the application; recreated on a 1×1 placeholder",
                        p.id, orig_drawable.get(&p.id).copied().unwrap_or(p.drawable)
                    ));
                    pm
                };
                let aux = render::CreatePictureAux::new()
                    .repeat(render::Repeat::from(u32::from(p.repeat)))
                    .alphaxorigin(i32::from(p.alpha_x))
                    .alphayorigin(i32::from(p.alpha_y))
                    .clipxorigin(i32::from(p.clip_x))
                    .clipyorigin(i32::from(p.clip_y))
                    .graphicsexposure(u32::from(p.graphics_exposures))
                    .subwindowmode(xproto::SubwindowMode::from(p.subwindow_mode))
                    .polyedge(render::PolyEdge::from(u32::from(p.poly_edge)))
                    .polymode(render::PolyMode::from(u32::from(p.poly_mode)))
                    .componentalpha(u32::from(p.component_alpha));
                sink.hard.push((
                    "RenderCreatePicture",
                    p.id,
                    conn.render_create_picture(p.id, drawable, p.format, &aux)?,
                ));
                match &p.clip {
                    Clip::None => {}
                    Clip::Rectangles { rects, .. } => sink.hard.push((
                        "RenderSetPictureClipRectangles",
                        p.id,
                        conn.render_set_picture_clip_rectangles(
                            p.id,
                            p.clip_x,
                            p.clip_y,
                            &xrects(rects),
                        )?,
                    )),
                    Clip::Pixmap(m) => sink.hard.push((
                        "RenderChangePicture(clip)",
                        p.id,
                        conn.render_change_picture(
                            p.id,
                            &render::ChangePictureAux::new().clipmask(*m),
                        )?,
                    )),
                }
            }
        }
        if p.fill.is_some() && p.repeat != 0 {
            sink.hard.push((
                "RenderChangePicture(repeat)",
                p.id,
                conn.render_change_picture(
                    p.id,
                    &render::ChangePictureAux::new()
                        .repeat(render::Repeat::from(u32::from(p.repeat))),
                )?,
            ));
        }
        let default_filter =
            p.filter.is_empty() || (p.filter == "nearest" && p.filter_params.is_empty());
        if !default_filter {
            sink.hard.push((
                "RenderSetPictureFilter",
                p.id,
                conn.render_set_picture_filter(p.id, p.filter.as_bytes(), &p.filter_params)?,
            ));
        }
        if let Some(m) = p.transform.filter(|m| *m != IDENTITY) {
            let tr = render::Transform {
                matrix11: m[0],
                matrix12: m[1],
                matrix13: m[2],
                matrix21: m[3],
                matrix22: m[4],
                matrix23: m[5],
                matrix31: m[6],
                matrix32: m[7],
                matrix33: m[8],
            };
            sink.hard.push((
                "RenderSetPictureTransform",
                p.id,
                conn.render_set_picture_transform(p.id, tr)?,
            ));
        }
    }
    for pm in placeholders {
        sink.hard
            .push(("FreePixmap(picture placeholder)", pm, conn.free_pixmap(pm)?));
    }
    // Alpha maps refer to other pictures: after all exist.
    for p in t.pictures.iter().filter(|p| p.known && p.alpha_map != 0) {
        sink.hard.push((
            "RenderChangePicture(alpha map)",
            p.id,
            conn.render_change_picture(
                p.id,
                &render::ChangePictureAux::new().alphamap(p.alpha_map),
            )?,
        ));
    }
    if (!t.regions.is_empty() || !t.damages.is_empty())
        && conn
            .extension_information(xfixes::X11_EXTENSION_NAME)?
            .is_none()
    {
        return Err(crate::RegenError::Unsupported(
            "the target has no XFIXES extension, which the application uses".into(),
        ));
    }
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
    if !t.damages.is_empty()
        && conn
            .extension_information(damage::X11_EXTENSION_NAME)?
            .is_none()
    {
        return Err(crate::RegenError::Unsupported(
            "the target has no DAMAGE extension, which the application uses".into(),
        ));
    }
    for d in &t.damages {
        if d.drawable == 0 {
            sink.warnings.push(format!(
                "damage {:#x}: drawable unknown; not recreated (the application's requests on it will fail)",
                d.id
            ));
            continue;
        }
        if !d.level_known {
            sink.warnings.push(format!(
                "damage {:#x}: report level unknown; recreated as NonEmpty",
                d.id
            ));
        }
        sink.hard.push((
            "DamageCreate",
            d.id,
            conn.damage_create(d.id, d.drawable, damage::ReportLevel::from(d.level))?,
        ));
    }
    if (!t.counters.is_empty() || !t.fences.is_empty())
        && conn
            .extension_information(sync::X11_EXTENSION_NAME)?
            .is_none()
    {
        return Err(crate::RegenError::Unsupported(
            "the target has no SYNC extension, which the application uses".into(),
        ));
    }
    for c in &t.counters {
        let v = c.value.unwrap_or_else(|| {
            sink.warnings.push(format!(
                "sync counter {:#x}: value unknown; starts at 0",
                c.id
            ));
            0
        });
        sink.hard.push((
            "SyncCreateCounter",
            c.id,
            conn.sync_create_counter(
                c.id,
                sync::Int64 {
                    hi: (v >> 32) as i32,
                    lo: v as u32,
                },
            )?,
        ));
    }
    for f in &t.fences {
        sink.hard.push((
            "SyncCreateFence",
            f.id,
            conn.sync_create_fence(t.setup.root, f.id, f.triggered.unwrap_or(false))?,
        ));
    }
    if !t.xi_selections.is_empty() {
        if conn
            .extension_information(xinput::X11_EXTENSION_NAME)?
            .is_none()
        {
            sink.warnings.push(
                "the target has no XInputExtension: XInput 2 event selections are lost".into(),
            );
        } else {
            for x in &t.xi_selections {
                let masks: Vec<xinput::EventMask> = x
                    .masks
                    .iter()
                    .map(|(dev, m)| xinput::EventMask {
                        deviceid: *dev,
                        mask: m.iter().map(|&w| xinput::XIEventMask::from(w)).collect(),
                    })
                    .collect();
                let c = conn.xinput_xi_select_events(x.window, &masks)?;
                if x.window == t.setup.root {
                    sink.soft.push(("XISelectEvents(root)", x.window, c));
                } else {
                    sink.hard.push(("XISelectEvents", x.window, c));
                }
            }
        }
    }
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

// ------------------------------------------------------------------------------------ XKB
//
// Three XKEYBOARD requests, encoded by hand (fixed layouts): UseExtension (minor 0),
// SelectEvents (minor 1) with select-all details, PerClientFlags (minor 21).

/// A reply kept as raw bytes.
struct RawReply(Vec<u8>);

impl x11rb::x11_utils::TryParse for RawReply {
    fn try_parse(value: &[u8]) -> Result<(Self, &[u8]), x11rb::errors::ParseError> {
        Ok((RawReply(value.to_vec()), &[]))
    }
}

const XKB_NAME: &str = "XKEYBOARD";
const XKB_USE_CORE_KBD: u16 = 0x100;

fn xkb_per_client_flags(major: u8, change: u32, value: u32, auto: (u32, u32)) -> Vec<u8> {
    let mut b = vec![major, 21];
    b.extend_from_slice(&7u16.to_ne_bytes());
    b.extend_from_slice(&XKB_USE_CORE_KBD.to_ne_bytes());
    b.extend_from_slice(&[0, 0]);
    for v in [
        change,
        value,
        if change != 0 { !0 } else { 0 },
        auto.0,
        auto.1,
    ] {
        b.extend_from_slice(&v.to_ne_bytes());
    }
    b
}

fn ne_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map(|x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
        .unwrap_or(0)
}

/// Whether the client initialised XKB (any XKB request but UseExtension fails with BadAccess
/// before), and its per-client flags.
pub fn capture_xkb(conn: &impl Connection, s: &mut Session) -> Result<(), CaptureError> {
    let Some(info) = conn.extension_information(XKB_NAME)? else {
        return Ok(());
    };
    let req = xkb_per_client_flags(info.major_opcode, 0, 0, (0, 0));
    let c = conn.send_request_with_reply::<RawReply>(&[std::io::IoSlice::new(&req)], Vec::new())?;
    match c.reply() {
        Ok(r) => {
            s.xkb = Some(XkbClient {
                flags: ne_u32(&r.0, 12),
                auto_ctrls: ne_u32(&r.0, 16),
                auto_ctrls_values: ne_u32(&r.0, 20),
            });
            s.unknown.push(
                "XKB event selections cannot be read back; regenerated as GTK/Qt select them"
                    .into(),
            );
        }
        Err(x11rb::errors::ReplyError::X11Error(_)) => {} // not initialised: BadAccess
        Err(source) => {
            return Err(CaptureError::Reply {
                what: "XkbPerClientFlags".into(),
                source,
            })
        }
    }
    Ok(())
}

/// Initialise XKB for the new connection as the application had it.
pub(crate) fn regen_xkb<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    sink: &mut Sink<'c, C>,
) -> Result<(), crate::RegenError> {
    let Some(x) = t.xkb else { return Ok(()) };
    let Some(info) = conn.extension_information(XKB_NAME)? else {
        sink.warnings
            .push("the target has no XKEYBOARD extension, which the application uses".into());
        return Ok(());
    };
    let major = info.major_opcode;
    let mut use_ext = vec![major, 0];
    use_ext.extend_from_slice(&2u16.to_ne_bytes());
    use_ext.extend_from_slice(&1u16.to_ne_bytes());
    use_ext.extend_from_slice(&0u16.to_ne_bytes());
    let c =
        conn.send_request_with_reply::<RawReply>(&[std::io::IoSlice::new(&use_ext)], Vec::new())?;
    match c.reply() {
        Ok(r) if r.0.get(1) == Some(&1) => {}
        Ok(_) => {
            sink.warnings
                .push("the target refused XKB 1.0 for the application".into());
            return Ok(());
        }
        Err(e) => {
            sink.warnings.push(format!("XkbUseExtension failed: {e}"));
            return Ok(());
        }
    }
    // NewKeyboardNotify | MapNotify | StateNotify, all details.
    let mut sel = vec![major, 1];
    sel.extend_from_slice(&4u16.to_ne_bytes());
    for v in [XKB_USE_CORE_KBD, 0b111, 0, 0b111, 0, 0] {
        sel.extend_from_slice(&v.to_ne_bytes());
    }
    let c = conn.send_request_without_reply(&[std::io::IoSlice::new(&sel)], Vec::new())?;
    sink.soft.push(("XkbSelectEvents", 0, c));
    if x.flags != 0 || x.auto_ctrls != 0 {
        let req = xkb_per_client_flags(major, 0x1f, x.flags, (x.auto_ctrls, x.auto_ctrls_values));
        let c =
            conn.send_request_with_reply::<RawReply>(&[std::io::IoSlice::new(&req)], Vec::new())?;
        if let Err(e) = c.reply() {
            sink.warnings.push(format!(
                "XkbPerClientFlags failed, flags {:#x} lost: {e}",
                x.flags
            ));
        }
    }
    Ok(())
}
