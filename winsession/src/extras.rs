//! Extension state beyond the core protocol and the GUIEVICT extension's resource details:
//! RENDER picture formats, SHAPE regions, XFIXES regions, cursor names and selection inputs,
//! DAMAGE objects, SYNC counters and fences, XInput 2 event selections (with the devices they
//! name, mapped by use and name between servers), and per-client extension versions. The capture half reads
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
/// already). `list` is the client's resource list; `ext` what the GUIEVICT extension said (for
/// cursor names when the client's XFIXES version refuses GetCursorName).
pub fn capture(
    conn: &impl Connection,
    s: &mut Session,
    list: &ResourceList,
    in_process: bool,
    ext: Option<&crate::ext::ExtState>,
) -> Result<(), CaptureError> {
    let have_render = has_ext(conn, render::X11_EXTENSION_NAME)?;
    let have_shape = has_ext(conn, shape::X11_EXTENSION_NAME)?;
    let have_xfixes = has_ext(conn, xfixes::X11_EXTENSION_NAME)?;
    let have_damage = has_ext(conn, damage::X11_EXTENSION_NAME)?;
    let have_sync = has_ext(conn, sync::X11_EXTENSION_NAME)?;
    let have_xi = has_ext(conn, xinput::X11_EXTENSION_NAME)?;
    // Its answer comes with the next ones.
    let xkb_asked = start_capture_xkb(conn)?;

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
    // Cursor names: GetCursorName works once the client negotiated XFIXES ≥ 2, which it must
    // have done to name a cursor; an error therefore means "no name" (unless the extension
    // reported one: then its atom is resolved below).
    let cursor_name_cookies: Vec<_> = if have_xfixes {
        s.cursors
            .iter()
            .map(|c| conn.xfixes_get_cursor_name(c.id).map(|k| (c.id, k)))
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };

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
    let ext_cursor_atoms: HashMap<u32, u32> = ext
        .map(|st| {
            st.resources
                .iter()
                .filter_map(|r| match &r.detail {
                    guievict_ext_proto::Detail::Cursor(c) if c.name != 0 => Some((r.id, c.name)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut names: HashMap<u32, Option<String>> = HashMap::new();
    let mut by_atom = Vec::new();
    for (id, c) in cursor_name_cookies {
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
    // The GUIEVICT extension (≥ 1.3) says exactly what each DAMAGE object watches and how it
    // reports; only the objects it could not describe are probed.
    let described: HashMap<u32, guievict_ext_proto::DamageInfo> = ext
        .map(|st| {
            st.resources
                .iter()
                .filter_map(|r| match r.detail {
                    guievict_ext_proto::Detail::Damage(d) => Some((r.id, d)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut probed = Vec::new();
    for &id in &damage_ids {
        match described.get(&id) {
            Some(d) => s.damages.push(Damage {
                id,
                drawable: d.drawable,
                level: d.level,
                level_known: true,
            }),
            None => probed.push(id),
        }
    }
    if !probed.is_empty() {
        probe_damage(conn, s, &probed, have_xfixes)?;
    }
    capture_xkb(s, ext, xkb_asked)?;
    let mut shm_ids = of_type(crate::shm::TYPE_NAME);
    if !shm_ids.is_empty() && has_ext(conn, x11rb::protocol::shm::X11_EXTENSION_NAME)? {
        // The GUIEVICT extension (≥ 1.5) names a System V segment's shmid: no probing (two
        // segments with equal contents, e.g. a double buffer, cannot be told apart by reading
        // them). Descriptor-backed segments are still found among this process's mappings.
        let described: HashMap<u32, guievict_ext_proto::ShmSegmentInfo> = ext
            .map(|st| {
                st.resources
                    .iter()
                    .filter_map(|r| match r.detail {
                        guievict_ext_proto::Detail::ShmSegment(d) => Some((r.id, d)),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        shm_ids.retain(|id| match described.get(id).and_then(|d| d.shmid) {
            Some(shmid) => {
                s.shm_segments.push(ShmSegment {
                    id: *id,
                    shmid: Some(shmid),
                    mapping: None,
                });
                false
            }
            None => true,
        });
        if !shm_ids.is_empty() {
            crate::shm::capture(conn, s, &shm_ids, in_process)?;
        }
        s.shm_segments.sort_by_key(|g| g.id);
        // Pixmaps the extension found inside one of the client's segments (ShmCreatePixmap).
        if let Some(st) = ext {
            for r in &st.resources {
                if let guievict_ext_proto::Detail::ShmPixmap(p) = r.detail {
                    if s.shm_segments.iter().any(|g| g.id == p.segment) {
                        s.shm_pixmaps.push(ShmPixmap {
                            id: r.id,
                            segment: p.segment,
                            offset: p.offset,
                        });
                    }
                }
            }
        }
    }
    // XInput 2: the version the client negotiated. Asking for a version at least as high as the
    // client's returns the client's own (the server never raises an XI2 client's version); only
    // asked when the client has XI2 selections, i.e. certainly negotiated one.
    if have_xi && !s.xi_selections.is_empty() {
        let version = conn.xinput_xi_query_version(2, 4)?;
        // The devices the selections name (IDs are server-allocated: regenerate maps them).
        let devices = conn.xinput_xi_query_device(ALL_DEVICES)?;
        match version.reply() {
            Ok(r) => s.client_versions.push(ClientVersion {
                extension: xinput::X11_EXTENSION_NAME.into(),
                major: r.major_version,
                minor: r.minor_version,
                known: true,
            }),
            Err(e) => s.unknown.push(format!("XInput 2 client version ({e})")),
        }
        match devices.reply() {
            Ok(r) => s.xi_devices = xi_devices_of(&r),
            Err(e) => s.unknown.push(format!("XInput 2 devices ({e})")),
        }
    }
    capture_selection_inputs(conn, s, list, ext)?;
    crate::grabs::capture(s, list, ext);
    crate::dbe::capture(conn, s, list)?;
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
    // The app's own shape-event selection is each window's `shape.events` (ShapeInputSelected
    // asks for this client only); other clients' selections on its windows are theirs to make
    // again on the new server.
    if have_shape {
        let windows: std::collections::HashSet<u32> = s.windows.iter().map(|w| w.id).collect();
        s.other_resources
            .retain(|o| !(o.type_name == type_names::SHAPE_EVENT && windows.contains(&o.id)));
    }
    Ok(())
}

/// XInput 2 `AllDevices`: a selection for every device, present and future.
pub const ALL_DEVICES: u16 = 0;
/// XInput 2 `AllMasterDevices`: a selection for every master device.
pub const ALL_MASTER_DEVICES: u16 = 1;

pub(crate) fn xi_devices_of(r: &xinput::XIQueryDeviceReply) -> Vec<XiDevice> {
    let mut v: Vec<XiDevice> = r
        .infos
        .iter()
        .map(|d| XiDevice {
            id: d.deviceid,
            use_: u16::from(d.type_) as u8,
            name: String::from_utf8_lossy(&d.name).into_owned(),
        })
        .collect();
    v.sort_by_key(|d| d.id);
    v
}

/// Device IDs of one server matched to another's ([`map_xi_devices`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XiDeviceMapping {
    /// Source device ID → target device ID; always holds 0 → 0 (AllDevices) and
    /// 1 → 1 (AllMasterDevices).
    pub map: HashMap<u16, u16>,
    /// Source devices with no counterpart, and masters matched by use alone.
    pub warnings: Vec<String>,
}

fn use_name(u: u8) -> &'static str {
    match u {
        1 => "master pointer",
        2 => "master keyboard",
        3 => "slave pointer",
        4 => "slave keyboard",
        5 => "floating slave",
        _ => "device",
    }
}

/// Match XInput 2 devices of the source server to the target's. Device IDs are allocated by
/// each server in the order devices appear, so the same device can have another ID elsewhere
/// (an Xorg with a hardware keyboard numbers its devices differently from Xvfb). A device
/// matches the target device with the same use and name (several with the same use and name
/// pair up in ID order); a master device left over matches a remaining master of the same use
/// (every server has a core pointer/keyboard pair; a warning says so); any other device left
/// over has no counterpart and is reported. 0 (AllDevices) and 1 (AllMasterDevices) are not
/// devices and map to themselves.
pub fn map_xi_devices(src: &[XiDevice], dst: &[XiDevice]) -> XiDeviceMapping {
    let mut out = XiDeviceMapping {
        map: HashMap::from([
            (ALL_DEVICES, ALL_DEVICES),
            (ALL_MASTER_DEVICES, ALL_MASTER_DEVICES),
        ]),
        warnings: Vec::new(),
    };
    let by_id = |v: &[XiDevice]| {
        let mut v: Vec<XiDevice> = v.iter().filter(|d| d.id >= 2).cloned().collect();
        v.sort_by_key(|d| d.id);
        v
    };
    let (src, dst) = (by_id(src), by_id(dst));
    let mut taken = std::collections::HashSet::new();
    for d in &src {
        if let Some(t) = dst
            .iter()
            .find(|t| !taken.contains(&t.id) && t.use_ == d.use_ && t.name == d.name)
        {
            taken.insert(t.id);
            out.map.insert(d.id, t.id);
        }
    }
    let left: Vec<&XiDevice> = src
        .iter()
        .filter(|d| !out.map.contains_key(&d.id))
        .collect();
    for d in left {
        let master = d.use_ == 1 || d.use_ == 2;
        let t = dst
            .iter()
            .find(|t| master && !taken.contains(&t.id) && t.use_ == d.use_);
        match t {
            Some(t) => {
                taken.insert(t.id);
                out.map.insert(d.id, t.id);
                out.warnings.push(format!(
                    "XInput device {} ({:?}, {}) has no namesake on the target; using {} ({:?})",
                    d.id,
                    d.name,
                    use_name(d.use_),
                    t.id,
                    t.name
                ));
            }
            None => out.warnings.push(format!(
                "XInput device {} ({:?}, {}) does not exist on the target; its event selections are dropped",
                d.id,
                d.name,
                use_name(d.use_)
            )),
        }
    }
    out
}

/// XFIXES selection inputs: the GUIEVICT extension (protocol ≥ 1.1) describes each record;
/// without it they are only counted (X-Resource lists the records, not their contents).
/// Names of the selection atoms are added to `s.atoms`.
fn capture_selection_inputs(
    conn: &impl Connection,
    s: &mut Session,
    list: &ResourceList,
    ext: Option<&crate::ext::ExtState>,
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
    // XInput's version and XKB's UseExtension go out before any answer is awaited.
    let xi = match t
        .client_versions
        .iter()
        .find(|v| v.extension == xinput::X11_EXTENSION_NAME)
    {
        Some(v) if has(xinput::X11_EXTENSION_NAME)? => {
            Some((v, conn.xinput_xi_query_version(v.major, v.minor)?))
        }
        _ => None,
    };
    let xkb = start_xkb(conn, t, sink)?;
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
) -> Result<HashMap<u16, u16>, crate::RegenError> {
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
        .chain(t.dbe_buffers.iter().map(|b| b.id))
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
    let mut devices = HashMap::new();
    if !t.xi_selections.is_empty() {
        if conn
            .extension_information(xinput::X11_EXTENSION_NAME)?
            .is_none()
        {
            sink.warnings.push(
                "the target has no XInputExtension: XInput 2 event selections are lost".into(),
            );
        } else {
            devices = regen_xi_device_map(conn, t, sink)?;
            for x in &t.xi_selections {
                let masks: Vec<xinput::EventMask> = x
                    .masks
                    .iter()
                    .filter_map(|(dev, m)| {
                        Some(xinput::EventMask {
                            deviceid: *devices.get(dev)?,
                            mask: m.iter().map(|&w| xinput::XIEventMask::from(w)).collect(),
                        })
                    })
                    .collect();
                if masks.is_empty() {
                    continue;
                }
                let c = conn.xinput_xi_select_events(x.window, &masks)?;
                if x.window == t.setup.root {
                    sink.soft.push(("XISelectEvents(root)", x.window, c));
                } else {
                    sink.hard.push(("XISelectEvents", x.window, c));
                }
            }
        }
    }
    if !t.selection_inputs.is_empty() {
        if conn
            .extension_information(xfixes::X11_EXTENSION_NAME)?
            .is_none()
        {
            sink.warnings.push(
                "the target has no XFIXES extension: selection change notification (XFixesSelectSelectionInput) is lost".into(),
            );
        } else {
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
    Ok(devices)
}

/// The device map for XI2 selections: the target's devices matched to the recorded source
/// devices; identity (with a warning) for device IDs when the source devices are unknown or the
/// target cannot list its own.
fn regen_xi_device_map<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    sink: &mut Sink<'c, C>,
) -> Result<HashMap<u16, u16>, crate::RegenError> {
    let mut used: Vec<u16> = t
        .xi_selections
        .iter()
        .flat_map(|x| x.masks.iter().map(|m| m.0))
        .collect();
    used.sort_unstable();
    used.dedup();
    let identity = || -> HashMap<u16, u16> {
        used.iter()
            .map(|&d| (d, d))
            .chain([
                (ALL_DEVICES, ALL_DEVICES),
                (ALL_MASTER_DEVICES, ALL_MASTER_DEVICES),
            ])
            .collect()
    };
    if t.xi_devices.is_empty() {
        if used.iter().any(|&d| d > ALL_MASTER_DEVICES) {
            sink.warnings.push(
                "XInput devices of the source are unknown: device IDs of event selections kept as they were".into(),
            );
        }
        return Ok(identity());
    }
    let dst = match conn.xinput_xi_query_device(ALL_DEVICES)?.reply() {
        Ok(r) => xi_devices_of(&r),
        Err(e) => {
            sink.warnings.push(format!(
                "XIQueryDevice on the target failed ({e}): device IDs of event selections kept as they were"
            ));
            return Ok(identity());
        }
    };
    let m = map_xi_devices(&t.xi_devices, &dst);
    // Only devices the application selected on matter for its warnings.
    for w in m.warnings {
        let relevant = used
            .iter()
            .any(|d| w.starts_with(&format!("XInput device {d} ")));
        if relevant {
            sink.warnings.push(w);
        }
    }
    Ok(m.map)
}

// ------------------------------------------------------------------------------------ XKB
//
// Three XKEYBOARD requests, encoded by hand (fixed layouts): UseExtension (minor 0),
// SelectEvents (minor 1, one event type per request), PerClientFlags (minor 21).

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

/// Ask whether the client initialised XKB (see [`capture_xkb`]); `None` without XKEYBOARD.
fn start_capture_xkb<C: Connection>(
    conn: &C,
) -> Result<Option<x11rb::cookie::Cookie<'_, C, RawReply>>, CaptureError> {
    let Some(info) = conn.extension_information(XKB_NAME)? else {
        return Ok(None);
    };
    let req = xkb_per_client_flags(info.major_opcode, 0, 0, (0, 0));
    Ok(Some(conn.send_request_with_reply::<RawReply>(
        &[std::io::IoSlice::new(&req)],
        Vec::new(),
    )?))
}

/// Whether the client initialised XKB (any XKB request but UseExtension fails with BadAccess
/// before), its per-client flags and, when the GUIEVICT extension (≥ 1.2) describes them, its
/// event selections. The `XkbClient` records the selections live in are then modelled and
/// leave `other_resources`.
/// [`start_capture_xkb`] sends the question (PerClientFlags, changing nothing) early, so that
/// its answer comes with others'.
fn capture_xkb<C: Connection>(
    s: &mut Session,
    ext: Option<&crate::ext::ExtState>,
    asked: Option<x11rb::cookie::Cookie<'_, C, RawReply>>,
) -> Result<(), CaptureError> {
    let Some(c) = asked else {
        return Ok(());
    };
    match c.reply() {
        Ok(r) => {
            let selections = ext.and_then(xkb_selections_of);
            let records = s
                .other_resources
                .iter()
                .filter(|o| o.type_name == type_names::XKB_CLIENT)
                .count();
            match &selections {
                Some(sel) if sel.described >= records => s
                    .other_resources
                    .retain(|o| o.type_name != type_names::XKB_CLIENT),
                Some(sel) => s.unknown.push(format!(
                    "{} of {records} XKB event selection record(s) could not be described; \
                     their selections are lost",
                    records - sel.described
                )),
                None => s.unknown.push(
                    "XKB event selections cannot be read back without GUIEVICT 1.2; \
                     regenerated as GTK/Qt select them"
                        .into(),
                ),
            }
            s.xkb = Some(XkbClient {
                flags: ne_u32(&r.0, 12),
                auto_ctrls: ne_u32(&r.0, 16),
                auto_ctrls_values: ne_u32(&r.0, 20),
                selections: selections.map(|x| x.selections),
            });
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

/// What the GUIEVICT extension said about the client's XKB selections.
struct DescribedXkb {
    selections: XkbSelections,
    /// Interest records described (each an `XkbClient` resource).
    described: usize,
}

/// The client's XKB selections from the extension's answer; `None` when the server did not
/// describe them (older than 1.2). Records without any selection are left out.
fn xkb_selections_of(st: &crate::ext::ExtState) -> Option<DescribedXkb> {
    let c = st.xkb?;
    let mut described = 0;
    let mut devices = Vec::new();
    for r in &st.resources {
        if let guievict_ext_proto::Detail::XkbInterest(x) = &r.detail {
            described += 1;
            let d = XkbDeviceSelection {
                device: x.device,
                device_name: x.device_name.clone(),
                state: x.state,
                controls: x.controls,
                indicator_state: x.indicator_state,
                indicator_map: x.indicator_map,
                names: x.names,
                compat_map: x.compat_map,
                bell: x.bell,
                action_message: x.action_message,
                access_x: x.access_x,
                ext_dev: x.ext_dev,
            };
            if d != (XkbDeviceSelection {
                device: d.device,
                device_name: d.device_name.clone(),
                ..Default::default()
            }) {
                devices.push(d);
            }
        }
    }
    devices.sort_by_key(|d| d.device);
    Some(DescribedXkb {
        selections: XkbSelections {
            map_notify: c.map_notify,
            new_keyboard_notify: c.new_keyboard_notify,
            devices,
        },
        described,
    })
}

/// XKB event type indices (`XkbSelectEvents` affectWhich bits) and the size in bytes of their
/// detail masks; MapNotify (1) has its own fields in the request.
const XKB_NEW_KEYBOARD_NOTIFY: u16 = 0;
const XKB_MAP_NOTIFY: u16 = 1;

/// The name the X server gives the core keyboard; selections made on it are renewed with
/// `XkbUseCoreKbd` (whatever its ID is on the target).
pub const CORE_KEYBOARD_NAME: &str = "Virtual core keyboard";

/// One `XkbSelectEvents` request for one event type `ndx` on `device`, selecting exactly
/// `details` (affect = details: on a fresh client every mask starts empty). A mask of all ones
/// in its width is what `selectAll` leaves (the server stores ~0, beyond the legal bits that an
/// explicit mask may name), so it is renewed with `selectAll`. One event per request keeps the
/// detail layout unambiguous: the server reads a 1-byte pair from a 4-byte slot, xcb-proto
/// describes it as 2 bytes; alone in a padded request both agree.
pub fn xkb_select_events(major: u8, device: u16, ndx: u16, details: u32) -> Vec<u8> {
    let bit = 1u16 << ndx;
    let size = xkb_detail_size(ndx);
    // The server keeps what a client selected as one mask per event type: all ones after a
    // selectAll, and later selections with an `affect` mask change only the bits they affect.
    // Bits outside the type's legal set (left over from a selectAll that was narrowed later)
    // mean nothing — and the server refuses them in a request (BadValue): they are dropped.
    // All ones is what a selectAll leaves: asked for as selectAll again (stored the same).
    let all_ones = match size {
        1 => details == 0xff,
        2 => details == 0xffff,
        4 => details == u32::MAX,
        _ => false,
    };
    let details = details & xkb_legal_details(ndx);
    let (affect_map, map) = if ndx == XKB_MAP_NOTIFY {
        (details as u16, details as u16)
    } else {
        (0, 0)
    };
    let select_all = if all_ones { bit } else { 0 };
    let mut body: Vec<u8> = Vec::new();
    for v in [device, bit, 0, select_all, affect_map, map] {
        body.extend_from_slice(&v.to_ne_bytes());
    }
    match size {
        _ if all_ones => {}
        1 => body.extend_from_slice(&[details as u8, details as u8, 0, 0]),
        2 => {
            body.extend_from_slice(&(details as u16).to_ne_bytes());
            body.extend_from_slice(&(details as u16).to_ne_bytes());
        }
        4 => {
            body.extend_from_slice(&details.to_ne_bytes());
            body.extend_from_slice(&details.to_ne_bytes());
        }
        _ => {}
    }
    let mut b = vec![major, 1];
    let words = (4 + body.len()).div_ceil(4) as u16;
    b.extend_from_slice(&words.to_ne_bytes());
    b.extend_from_slice(&body);
    b.resize(usize::from(words) * 4, 0);
    b
}

/// The details an XKB event type has (`XkbAll…Mask` of XKB.h): what `XkbSelectEvents` accepts.
fn xkb_legal_details(ndx: u16) -> u32 {
    match ndx {
        0 => 0x7,          // NewKeyboardNotify: keycodes, geometry, device ID
        1 => 0xff,         // MapNotify: map components
        2 => 0x3fff,       // StateNotify: state components
        3 => 0xf800_1fff,  // ControlsNotify: controls
        4 | 5 => u32::MAX, // IndicatorState/MapNotify: 32 indicators
        6 => 0x3fff,       // NamesNotify: name components
        7 => 0x3,          // CompatMapNotify: group compat, sym interpret
        8 | 9 => 0x1,      // BellNotify, ActionMessage
        10 => 0x7f,        // AccessXNotify: the seven AXN details
        11 => 0x801f,      // ExtensionDeviceNotify: XI features, unsupported
        _ => 0,
    }
}

/// Size of an XKB event type's detail mask in `XkbSelectEvents` (0: no detail list).
fn xkb_detail_size(ndx: u16) -> usize {
    match ndx {
        0 | 2 | 6 | 10 | 11 => 2,
        3..=5 => 4,
        7..=9 => 1,
        _ => 0,
    }
}

/// The (event type, details) pairs of one device selection, in `affectWhich` bit order.
fn xkb_device_events(d: &XkbDeviceSelection) -> Vec<(u16, u32)> {
    [
        (2, u32::from(d.state)),
        (3, d.controls),
        (4, d.indicator_state),
        (5, d.indicator_map),
        (6, u32::from(d.names)),
        (7, u32::from(d.compat_map)),
        (8, u32::from(d.bell)),
        (9, u32::from(d.action_message)),
        (10, u32::from(d.access_x)),
        (11, u32::from(d.ext_dev)),
    ]
    .into_iter()
    .filter(|&(_, v)| v != 0)
    .collect()
}

/// XKB's initialisation for the new connection, under way: UseExtension is sent,
/// [`XkbStart::finish`] awaits it and sends the rest.
pub(crate) struct XkbStart<'c, 'a, C: Connection> {
    conn: &'c C,
    t: &'a Session,
    sent: Option<(u8, x11rb::cookie::Cookie<'c, C, RawReply>)>,
}

/// Initialise XKB for the new connection as the application had it: UseExtension, its event
/// selections (exactly as captured, or GTK/Qt's when unknown), its per-client flags. This
/// sends UseExtension only; the rest follows its answer ([`XkbStart::finish`]).
pub(crate) fn start_xkb<'c, 'a, C: Connection>(
    conn: &'c C,
    t: &'a Session,
    sink: &mut Sink<'c, C>,
) -> Result<XkbStart<'c, 'a, C>, crate::RegenError> {
    let mut start = XkbStart {
        conn,
        t,
        sent: None,
    };
    if t.xkb.is_none() {
        return Ok(start);
    }
    let Some(info) = conn.extension_information(XKB_NAME)? else {
        sink.warnings
            .push("the target has no XKEYBOARD extension, which the application uses".into());
        return Ok(start);
    };
    let major = info.major_opcode;
    let mut use_ext = vec![major, 0];
    use_ext.extend_from_slice(&2u16.to_ne_bytes());
    use_ext.extend_from_slice(&1u16.to_ne_bytes());
    use_ext.extend_from_slice(&0u16.to_ne_bytes());
    let c =
        conn.send_request_with_reply::<RawReply>(&[std::io::IoSlice::new(&use_ext)], Vec::new())?;
    start.sent = Some((major, c));
    Ok(start)
}

impl<'c, C: Connection> XkbStart<'c, '_, C> {
    /// Await UseExtension's answer; then the app's selections and flags.
    pub(crate) fn finish(self, sink: &mut Sink<'c, C>) -> Result<(), crate::RegenError> {
        let (conn, t) = (self.conn, self.t);
        let (Some(x), Some((major, c))) = (&t.xkb, self.sent) else {
            return Ok(());
        };
        regen_xkb_rest(conn, x, major, c, sink)
    }
}

fn regen_xkb_rest<'c, C: Connection>(
    conn: &'c C,
    x: &XkbClient,
    major: u8,
    c: x11rb::cookie::Cookie<'c, C, RawReply>,
    sink: &mut Sink<'c, C>,
) -> Result<(), crate::RegenError> {
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
    match &x.selections {
        None => {
            // Unknown: NewKeyboardNotify | MapNotify | StateNotify, all details.
            let mut sel = vec![major, 1];
            sel.extend_from_slice(&4u16.to_ne_bytes());
            for v in [XKB_USE_CORE_KBD, 0b111, 0, 0b111, 0, 0] {
                sel.extend_from_slice(&v.to_ne_bytes());
            }
            let c = conn.send_request_without_reply(&[std::io::IoSlice::new(&sel)], Vec::new())?;
            sink.soft.push(("XkbSelectEvents", 0, c));
        }
        Some(sel) => regen_xkb_selections(conn, major, sel, sink)?,
    }
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

/// Renew captured XKB selections: the client-wide MapNotify / NewKeyboardNotify details on the
/// core keyboard, the rest on the device of the same name (the core keyboard by
/// `XkbUseCoreKbd`; another device by its XInput name, or reported when the target lacks it).
fn regen_xkb_selections<'c, C: Connection>(
    conn: &'c C,
    major: u8,
    sel: &XkbSelections,
    sink: &mut Sink<'c, C>,
) -> Result<(), crate::RegenError> {
    let mut reqs: Vec<(u16, u16, u32)> = Vec::new();
    if sel.new_keyboard_notify != 0 {
        reqs.push((
            XKB_USE_CORE_KBD,
            XKB_NEW_KEYBOARD_NOTIFY,
            u32::from(sel.new_keyboard_notify),
        ));
    }
    if sel.map_notify != 0 {
        reqs.push((XKB_USE_CORE_KBD, XKB_MAP_NOTIFY, u32::from(sel.map_notify)));
    }
    let mut others: Option<Vec<(u16, String)>> = None;
    for d in &sel.devices {
        let device = if d.device_name == CORE_KEYBOARD_NAME {
            XKB_USE_CORE_KBD
        } else {
            if others.is_none() {
                others = Some(input_devices(conn));
            }
            match others.iter().flatten().find(|(_, n)| *n == d.device_name) {
                Some((id, _)) => *id,
                None => {
                    sink.warnings.push(format!(
                        "XKB events selected on device {} \"{}\" are lost: the target has no such device",
                        d.device, d.device_name
                    ));
                    continue;
                }
            }
        };
        for (ndx, v) in xkb_device_events(d) {
            reqs.push((device, ndx, v));
        }
    }
    for (device, ndx, v) in reqs {
        let req = xkb_select_events(major, device, ndx, v);
        let c = conn.send_request_without_reply(&[std::io::IoSlice::new(&req)], Vec::new())?;
        sink.soft.push(("XkbSelectEvents", u32::from(device), c));
    }
    Ok(())
}

/// The target's input devices (XInput 1 ListInputDevices, which needs no version
/// negotiation on the application's connection): (ID, name). Empty when unavailable.
fn input_devices(conn: &impl Connection) -> Vec<(u16, String)> {
    let Ok(Some(_)) = conn.extension_information(xinput::X11_EXTENSION_NAME) else {
        return Vec::new();
    };
    let Ok(c) = conn.xinput_list_input_devices() else {
        return Vec::new();
    };
    match c.reply() {
        Ok(r) => r
            .devices
            .iter()
            .zip(&r.names)
            .map(|(d, n)| {
                (
                    u16::from(d.device_id),
                    String::from_utf8_lossy(&n.name).into_owned(),
                )
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(id: u16, use_: u8, name: &str) -> XiDevice {
        XiDevice {
            id,
            use_,
            name: name.into(),
        }
    }

    /// Xvfb's devices.
    fn xvfb() -> Vec<XiDevice> {
        vec![
            dev(2, 1, "Virtual core pointer"),
            dev(3, 2, "Virtual core keyboard"),
            dev(4, 3, "Virtual core XTEST pointer"),
            dev(5, 4, "Virtual core XTEST keyboard"),
        ]
    }

    #[test]
    fn same_devices_map_to_themselves() {
        let m = map_xi_devices(&xvfb(), &xvfb());
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        for id in 0..=5 {
            assert_eq!(m.map.get(&id), Some(&id));
        }
        assert_eq!(m.map.len(), 6);
    }

    #[test]
    fn renumbered_devices_map_by_use_and_name() {
        // An Xorg with hardware devices: masters first, then slaves in another order.
        let dst = vec![
            dev(2, 1, "Virtual core pointer"),
            dev(3, 2, "Virtual core keyboard"),
            dev(4, 3, "Virtual core XTEST pointer"),
            dev(5, 4, "Virtual core XTEST keyboard"),
            dev(6, 4, "Power Button"),
            dev(7, 3, "SynPS/2 Synaptics TouchPad"),
        ];
        let src = vec![
            dev(2, 1, "Virtual core pointer"),
            dev(3, 2, "Virtual core keyboard"),
            dev(4, 3, "SynPS/2 Synaptics TouchPad"),
            dev(5, 3, "Virtual core XTEST pointer"),
            dev(6, 4, "Virtual core XTEST keyboard"),
        ];
        let m = map_xi_devices(&src, &dst);
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        assert_eq!(m.map[&4], 7);
        assert_eq!(m.map[&5], 4);
        assert_eq!(m.map[&6], 5);
        assert_eq!(m.map[&0], 0);
        assert_eq!(m.map[&1], 1);
    }

    #[test]
    fn masters_fall_back_to_use_and_slaves_are_reported() {
        let src = vec![
            dev(2, 1, "xwayland-pointer"),
            dev(3, 2, "xwayland-keyboard"),
            dev(7, 3, "Wacom Intuos Pen"),
        ];
        let m = map_xi_devices(&src, &xvfb());
        assert_eq!(m.map[&2], 2);
        assert_eq!(m.map[&3], 3);
        assert!(!m.map.contains_key(&7));
        assert_eq!(m.warnings.len(), 3, "{:?}", m.warnings);
        assert!(m.warnings[2].contains("Wacom") && m.warnings[2].contains("dropped"));
        assert!(m.warnings[0].contains("no namesake"));
    }

    #[test]
    fn duplicate_names_pair_in_id_order_and_use_must_agree() {
        let src = vec![
            dev(8, 4, "USB Keyboard"),
            dev(9, 4, "USB Keyboard"),
            dev(10, 5, "Floating thing"),
        ];
        let dst = vec![
            dev(12, 4, "USB Keyboard"),
            dev(11, 4, "USB Keyboard"),
            dev(13, 3, "Floating thing"),
        ];
        let m = map_xi_devices(&src, &dst);
        assert_eq!(m.map[&8], 11);
        assert_eq!(m.map[&9], 12);
        // A floating slave that is attached on the target is not "the same" device.
        assert!(!m.map.contains_key(&10));
        assert_eq!(m.warnings.len(), 1);
        // 0 and 1 are never treated as devices, even if a list claims them.
        let m = map_xi_devices(&[dev(1, 1, "bogus")], &[dev(1, 1, "other")]);
        assert_eq!(m.map[&1], 1);
        assert!(m.warnings.is_empty());
    }

    fn ne16(b: &[u8], at: usize) -> u16 {
        u16::from_ne_bytes([b[at], b[at + 1]])
    }

    #[test]
    fn xkb_select_events_one_type_per_request() {
        // StateNotify on the core keyboard, 2-byte details.
        let b = xkb_select_events(135, XKB_USE_CORE_KBD, 2, 0x1fff);
        assert_eq!((b[0], b[1], ne16(&b, 2)), (135, 1, 5));
        assert_eq!(b.len(), 20);
        assert_eq!(ne16(&b, 4), 0x100);
        assert_eq!(ne16(&b, 6), 1 << 2); // affectWhich
        assert_eq!((ne16(&b, 8), ne16(&b, 10)), (0, 0)); // clear, selectAll
        assert_eq!((ne16(&b, 12), ne16(&b, 14)), (0, 0)); // affectMap, map
                                                          // 4-byte details (ControlsNotify): affect then value.
        let b = xkb_select_events(135, 3, 3, 0x8000_0001);
        assert_eq!(b.len(), 24);
        assert_eq!(&b[16..20], &0x8000_0001u32.to_ne_bytes());
        assert_eq!(&b[20..24], &0x8000_0001u32.to_ne_bytes());
        // 1-byte details (CompatMapNotify) sit in a padded 4-byte slot.
        let b = xkb_select_events(135, 3, 7, 1);
        assert_eq!(b.len(), 20);
        assert_eq!(&b[16..20], &[1, 1, 0, 0]);
        // BellNotify's one detail, selected as such: details, not selectAll (stored as 1).
        let b = xkb_select_events(135, 3, 8, 1);
        assert_eq!((b.len(), ne16(&b, 10)), (20, 0));
        assert_eq!(&b[16..20], &[1, 1, 0, 0]);
        // All ones (what selectAll leaves): selectAll, no details.
        let b = xkb_select_events(135, 3, 8, 0xff);
        assert_eq!(b.len(), 16);
        assert_eq!((ne16(&b, 6), ne16(&b, 10)), (1 << 8, 1 << 8));
        // A selectAll later narrowed with an affect mask (GTK3: StateNotify 0xc000 | value):
        // the bits outside the legal 0x3fff are not sent (the server would say BadValue).
        let b = xkb_select_events(135, XKB_USE_CORE_KBD, 2, 0xc000 | 0x0131);
        assert_eq!(b.len(), 20);
        assert_eq!(ne16(&b, 10), 0); // not selectAll
        assert_eq!((ne16(&b, 16), ne16(&b, 18)), (0x0131, 0x0131));
        let b = xkb_select_events(135, XKB_USE_CORE_KBD, 2, 0xffff);
        assert_eq!((b.len(), ne16(&b, 10)), (16, 1 << 2));
        // MapNotify: no detail list, its mask in affectMap/map.
        let b = xkb_select_events(135, 0x100, XKB_MAP_NOTIFY, 0xff);
        assert_eq!(b.len(), 16);
        assert_eq!(ne16(&b, 6), 2);
        assert_eq!((ne16(&b, 12), ne16(&b, 14)), (0xff, 0xff));
    }

    #[test]
    fn xkb_selections_from_the_extension_leave_empty_records_out() {
        use guievict_ext_proto as proto;
        let rec = |id, state| proto::Resource {
            id,
            kind: proto::ResourceKind(type_names::XKB_CLIENT.into()),
            server_type: 30,
            detail: proto::Detail::XkbInterest(proto::XkbInterestInfo {
                device: 3,
                device_name: CORE_KEYBOARD_NAME.into(),
                state,
                ..Default::default()
            }),
        };
        let st = crate::ext::ExtState {
            resources: vec![rec(0x4000_0001, 0), rec(0x4000_0002, 0x30)],
            xkb: Some(proto::XkbClientState {
                map_notify: 6,
                new_keyboard_notify: 1,
                flags: proto::XkbClientState::INITIALISED,
            }),
            ..Default::default()
        };
        let d = xkb_selections_of(&st).unwrap();
        assert_eq!(d.described, 2);
        assert_eq!(
            (d.selections.map_notify, d.selections.new_keyboard_notify),
            (6, 1)
        );
        assert_eq!(d.selections.devices.len(), 1);
        assert_eq!(xkb_device_events(&d.selections.devices[0]), vec![(2, 0x30)]);
        // A 1.1 server said nothing about XKB.
        let old = crate::ext::ExtState { xkb: None, ..st };
        assert!(xkb_selections_of(&old).is_none());
    }
}
