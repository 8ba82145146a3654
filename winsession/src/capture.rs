//! Capture: requests flow out on the application's own connection, replies flow back into a
//! [`Session`]. Pipelined in a fixed number of rounds, never one round trip per resource:
//! (1) the resource list with whatever needs no list (focus, root children, selection owners),
//! (2) per-resource queries (window attributes, geometry, children, property lists, pixmap
//! geometry, fonts), (3) property data, pixmap images, colours, the extension state
//! (`extensions::ask`); atom names only for atoms the caller does not already know. [`start`]
//! sends round 1 without waiting, so that a caller (hijack's app view) can put its own
//! requests into the same round trip; [`finish`] does the rest.
//!
//! The resource list comes from the GUIEVICT extension when the server has it (with the hidden
//! state the core protocol cannot read), else from the window tree and X-Resource
//! `QueryResourceBytes` asked one type at a time, never for windows ([`list_resources_xres`]); state
//! neither can supply is taken from caller [`Hints`] (what guimux tracked) or recorded in
//! [`Session::unknown`].

use crate::model::*;
use crate::remap::IdKind;
use guievict_ext_proto as proto;
use std::collections::{BTreeMap, HashMap};
use x11rb::connection::Connection;
use x11rb::cookie::Cookie;
use x11rb::errors::{ConnectionError, ReplyError};
use x11rb::protocol::res::{self, ResourceIdSpec};
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// What to capture and what the caller already knows.
#[derive(Clone, Debug)]
pub struct CaptureOptions {
    /// Read pixmap contents with GetImage.
    pub with_pixmap_contents: bool,
    /// Screen whose root the application's top-level windows live on.
    pub screen: usize,
    /// Any XID of the client to capture; `None` = the connection's own resource-ID base (the
    /// connection *is* the application's).
    pub client: Option<u32>,
    /// Use the GUIEVICT extension when the server has it.
    pub use_extension: bool,
    /// Header fields to record (time is filled in by capture).
    pub header: Header,
    /// State known from elsewhere (guimux's request tracking), used where the server cannot
    /// tell.
    pub hints: Hints,
    /// Names of the server's atoms the caller already knows (its enumeration of the atom
    /// table): those are not asked again, which saves the capture a round trip. Predefined
    /// atoms are known anyway.
    pub atom_names: HashMap<u32, String>,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        Self {
            with_pixmap_contents: true,
            screen: 0,
            client: None,
            use_extension: true,
            header: Header::default(),
            hints: Hints::default(),
            atom_names: HashMap::new(),
        }
    }
}

/// The names of the predefined atoms 1..=68 (X11 protocol, Xatom.h), by number − 1.
const PREDEFINED_ATOMS: [&str; 68] = [
    "PRIMARY",
    "SECONDARY",
    "ARC",
    "ATOM",
    "BITMAP",
    "CARDINAL",
    "COLORMAP",
    "CURSOR",
    "CUT_BUFFER0",
    "CUT_BUFFER1",
    "CUT_BUFFER2",
    "CUT_BUFFER3",
    "CUT_BUFFER4",
    "CUT_BUFFER5",
    "CUT_BUFFER6",
    "CUT_BUFFER7",
    "DRAWABLE",
    "FONT",
    "INTEGER",
    "PIXMAP",
    "POINT",
    "RECTANGLE",
    "RESOURCE_MANAGER",
    "RGB_COLOR_MAP",
    "RGB_BEST_MAP",
    "RGB_BLUE_MAP",
    "RGB_DEFAULT_MAP",
    "RGB_GRAY_MAP",
    "RGB_GREEN_MAP",
    "RGB_RED_MAP",
    "STRING",
    "VISUALID",
    "WINDOW",
    "WM_COMMAND",
    "WM_HINTS",
    "WM_CLIENT_MACHINE",
    "WM_ICON_NAME",
    "WM_ICON_SIZE",
    "WM_NAME",
    "WM_NORMAL_HINTS",
    "WM_SIZE_HINTS",
    "WM_ZOOM_HINTS",
    "MIN_SPACE",
    "NORM_SPACE",
    "MAX_SPACE",
    "END_SPACE",
    "SUPERSCRIPT_X",
    "SUPERSCRIPT_Y",
    "SUBSCRIPT_X",
    "SUBSCRIPT_Y",
    "UNDERLINE_POSITION",
    "UNDERLINE_THICKNESS",
    "STRIKEOUT_ASCENT",
    "STRIKEOUT_DESCENT",
    "ITALIC_ANGLE",
    "X_HEIGHT",
    "QUAD_WIDTH",
    "WEIGHT",
    "POINT_SIZE",
    "RESOLUTION",
    "COPYRIGHT",
    "NOTICE",
    "FONT_NAME",
    "FAMILY_NAME",
    "FULL_NAME",
    "CAP_HEIGHT",
    "WM_CLASS",
    "WM_TRANSIENT_FOR",
];

/// The name of atom `a` when the caller or the protocol already tells it.
fn known_atom(opts: &CaptureOptions, a: u32) -> Option<String> {
    if let Some(n) = opts.atom_names.get(&a) {
        return Some(n.clone());
    }
    let i = usize::try_from(a).ok()?.checked_sub(1)?;
    PREDEFINED_ATOMS.get(i).map(|n| n.to_string())
}

/// State known to the caller that the server may not reveal without the extension.
#[derive(Clone, Debug, Default)]
pub struct Hints {
    /// GC values by GC ID (with the GC's depth, 0 if unknown).
    pub gcs: HashMap<u32, (u8, GcValues)>,
    /// Name each font was opened with.
    pub font_names: HashMap<u32, String>,
    /// Window backgrounds.
    pub backgrounds: HashMap<u32, Background>,
    /// Window borders.
    pub borders: HashMap<u32, Border>,
    /// Window cursors (0 = None).
    pub window_cursors: HashMap<u32, u32>,
    /// How glyph cursors were made.
    pub glyph_cursors: HashMap<u32, GlyphSource>,
    /// Colormaps: (visual, alloc_all).
    pub colormaps: HashMap<u32, (u32, bool)>,
}

/// Why a capture failed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The connection failed while sending.
    #[error("X connection failed during capture: {0}")]
    Connection(#[from] ConnectionError),
    /// A request needed for the capture failed.
    #[error("capture request {what} failed: {source}")]
    Reply {
        /// Request and resource.
        what: String,
        /// The error.
        source: ReplyError,
    },
    /// Neither the GUIEVICT extension nor X-Resource is available to list resources.
    #[error(
        "cannot list the client's resources: the server has neither GUIEVICT nor X-Resource ≥ 1.2"
    )]
    NoResourceList,
    /// The requested screen does not exist.
    #[error("screen {0} does not exist on this server")]
    NoScreen(usize),
}

fn reply<R: x11rb::x11_utils::TryParse, C: x11rb::connection::RequestConnection>(
    cookie: Cookie<'_, C, R>,
    what: impl FnOnce() -> String,
) -> Result<R, CaptureError> {
    cookie.reply().map_err(|source| CaptureError::Reply {
        what: what(),
        source,
    })
}

/// Resource IDs of one client, by kind.
#[derive(Clone, Debug, Default)]
pub struct ResourceList {
    /// Windows.
    pub windows: Vec<u32>,
    /// Pixmaps.
    pub pixmaps: Vec<u32>,
    /// GCs.
    pub gcs: Vec<u32>,
    /// Fonts.
    pub fonts: Vec<u32>,
    /// Cursors.
    pub cursors: Vec<u32>,
    /// Colormaps.
    pub colormaps: Vec<u32>,
    /// Pictures.
    pub pictures: Vec<u32>,
    /// Glyph sets.
    pub glyphsets: Vec<u32>,
    /// Anything else: (id, type name).
    pub other: Vec<(u32, String)>,
    /// Resources the client holds that could not be listed (by type, with how many and why);
    /// the capture reports them in [`Session::unknown`].
    pub unlisted: Vec<String>,
}

/// Setup facts of `screen` as the connection sees them.
pub fn setup_facts(conn: &impl Connection, screen: usize) -> Option<SetupFacts> {
    let setup = conn.setup();
    let s = setup.roots.get(screen)?;
    let mut visuals = Vec::new();
    for d in &s.allowed_depths {
        for v in &d.visuals {
            visuals.push(Visual {
                id: v.visual_id,
                depth: d.depth,
                class: u8::from(v.class),
                bits_per_rgb: v.bits_per_rgb_value,
                colormap_entries: v.colormap_entries,
                red_mask: v.red_mask,
                green_mask: v.green_mask,
                blue_mask: v.blue_mask,
            });
        }
    }
    Some(SetupFacts {
        root: s.root,
        root_visual: s.root_visual,
        root_depth: s.root_depth,
        default_colormap: s.default_colormap,
        white_pixel: s.white_pixel,
        black_pixel: s.black_pixel,
        width: s.width_in_pixels,
        height: s.height_in_pixels,
        resource_id_base: setup.resource_id_base,
        resource_id_mask: setup.resource_id_mask,
        image_byte_order: u8::from(setup.image_byte_order),
        pixmap_formats: setup
            .pixmap_formats
            .iter()
            .map(|f| PixmapFormat {
                depth: f.depth,
                bits_per_pixel: f.bits_per_pixel,
                scanline_pad: f.scanline_pad,
            })
            .collect(),
        visuals,
        pict_formats: Vec::new(),
        vendor: String::from_utf8_lossy(&setup.vendor).into_owned(),
        release: setup.release_number,
    })
}

/// Bit the X server sets in IDs it makes for a client's sub-resources (`FakeClientID`).
const SERVER_BIT: u32 = 0x4000_0000;

// X-Resource `QueryResourceBytes` as X.Org servers implement it (checked on Xvfb 21.1.7):
//
// - Sizing a window whose border is a pixmap while its background is a pixel or None (xfontsel
//   after its "select" button, gv from the start, any `XSetWindowBorderPixmap` on a plain
//   window) makes the server hand the *background* union to the pixmap size function as a
//   pixmap pointer (dix `FindWindowSubRes`): a segfault in `FindAllClientResources` that takes
//   every client of the display down. Every spec that reaches a window does it: `{0, 0}` (all
//   resources), `{0, RT_WINDOW}`, `{window ID, 0}` with client 0.
// - A spec's `type` is compared with the server's internal type number (`RESTYPE`, flags
//   included), not with the type atom the protocol names; replies do report atoms. Specs
//   naming a resource ID match nothing when a client is given.
// - `QueryClientResources` (type atoms and counts) never sizes anything: safe.
//
// So the fallback below never asks for a window in any form: the client's windows come from
// the core window tree, every other type from per-type specs, and what neither lists is
// reported (`ResourceList::unlisted`) instead of asked for.

/// X.Org's resource class flags (`dix/resource.h`).
const RC_DRAWABLE: u32 = 1 << 30;
const RC_NEVERRETAIN: u32 = 1 << 29;
/// X.Org's internal numbers of the core resource types (`dix/resource.h`), the same in every
/// build. `RT_WINDOW` (`1 | RC_DRAWABLE`) is never asked for.
const RT_WINDOW: u32 = 1 | RC_DRAWABLE;
const CORE_TYPES: [u32; 7] = [
    2 | RC_DRAWABLE,    // RT_PIXMAP
    3,                  // RT_GC
    4,                  // RT_FONT
    5,                  // RT_CURSOR
    6,                  // RT_COLORMAP
    8 | RC_NEVERRETAIN, // RT_OTHERCLIENT
    9 | RC_NEVERRETAIN, // RT_PASSIVEGRAB
];
/// RT_CMAPENTRY: asked after the probe (as an atom, 7 is COLORMAP, which would blur it).
const RT_CMAPENTRY: u32 = 7;
/// Extension types are numbered on from `RT_LASTPREDEF + 1` in creation order; the per-type
/// specs go up to here (a server creates a few dozen; a type beyond this would not be listed,
/// and the count check would report it as unlisted).
const LAST_TYPE_PROBED: u32 = 1023;

/// Per-type specs for every internal type number but the window's.
fn internal_type_specs() -> Vec<ResourceIdSpec> {
    let mut types = vec![RT_CMAPENTRY];
    for n in 10..=LAST_TYPE_PROBED {
        types.extend([n, n | RC_DRAWABLE, n | RC_NEVERRETAIN]);
    }
    debug_assert!(!types.contains(&RT_WINDOW));
    types
        .into_iter()
        .map(|type_| ResourceIdSpec { resource: 0, type_ })
        .collect()
}

/// The client's windows (`id & !mask == base`), from the window tree of every screen, one
/// pipelined round per tree level. Every window but the roots is in the tree while it exists.
fn tree_windows(conn: &impl Connection, base: u32, mask: u32) -> Result<Vec<u32>, CaptureError> {
    let mut level: Vec<u32> = conn.setup().roots.iter().map(|s| s.root).collect();
    let mut found = Vec::new();
    while !level.is_empty() {
        let cookies: Vec<_> = level
            .iter()
            .map(|&w| conn.query_tree(w))
            .collect::<Result<_, _>>()?;
        let mut next = Vec::new();
        for (&w, c) in level.iter().zip(cookies) {
            match c.reply() {
                Ok(t) => next.extend(t.children),
                // Destroyed between its parent's answer and ours.
                Err(ReplyError::X11Error(_)) => {}
                Err(source) => {
                    return Err(CaptureError::Reply {
                        what: format!("QueryTree({w:#x})"),
                        source,
                    })
                }
            }
        }
        found.extend(next.iter().copied().filter(|&w| w & !mask == base));
        level = next;
    }
    Ok(found)
}

/// List the resources of the client owning `client_xid` with X-Resource (servers without the
/// GUIEVICT extension), never with a request form that makes X.Org servers crash (see above):
/// windows from the window tree, the other types from `QueryResourceBytes` specs of one type
/// each, checked against the counts of `QueryClientResources`. Resources that could not be
/// listed safely are in [`ResourceList::unlisted`].
pub fn list_resources_xres(
    conn: &impl Connection,
    client_xid: u32,
    mask: u32,
) -> Result<ResourceList, CaptureError> {
    if conn
        .extension_information(res::X11_EXTENSION_NAME)?
        .is_none()
    {
        return Err(CaptureError::NoResourceList);
    }
    let base = client_xid & !mask;
    // Round 1: version, counts by type, the core types by internal number (safe whichever way
    // the server reads a spec's type: as atoms, 3..6 are ARC, ATOM, BITMAP, CARDINAL, which no
    // resource type is called, and the others are no atoms), the window tree.
    let version = res::query_version(conn, 1, 2)?;
    let counts = res::query_client_resources(conn, client_xid)?;
    let core_specs: Vec<ResourceIdSpec> = CORE_TYPES
        .iter()
        .map(|&type_| ResourceIdSpec { resource: 0, type_ })
        .collect();
    let core = res::query_resource_bytes(conn, client_xid, &core_specs)?;
    let v = reply(version, || "X-Resource QueryVersion".into())?;
    if (v.server_major, v.server_minor) < (1, 2) {
        return Err(CaptureError::NoResourceList);
    }
    let windows = tree_windows(conn, base, mask)?;
    let counts = reply(counts, || "X-Resource QueryClientResources".into())?.types;
    let mut found: Vec<(u32, u32)> = Vec::new(); // (id, type atom)
    let core_answered = match core.reply() {
        Ok(r) => {
            found.extend(
                r.sizes
                    .iter()
                    .map(|v| (v.size.spec.resource, v.size.spec.type_)),
            );
            // Read as internal numbers iff a resource of another type than asked came back.
            found.iter().any(|(_, t)| !CORE_TYPES.contains(t))
        }
        Err(ReplyError::X11Error(_)) => false,
        Err(source) => {
            return Err(CaptureError::Reply {
                what: "X-Resource QueryResourceBytes (core types)".into(),
                source,
            })
        }
    };
    if !core_answered {
        found.clear();
    }
    let window_atom = u32::from(xproto::AtomEnum::WINDOW);
    let listed = |found: &[(u32, u32)], atom: u32| {
        if atom == window_atom {
            windows.len()
        } else {
            found.iter().filter(|(_, t)| *t == atom).count()
        }
    };
    let missing = |found: &[(u32, u32)]| {
        counts
            .iter()
            .any(|t| listed(found, t.resource_type) < t.count as usize)
    };

    // Round 2: the remaining types, and the names of every type the client holds.
    let name_cookies: Vec<_> = counts
        .iter()
        .map(|t| conn.get_atom_name(t.resource_type))
        .collect::<Result<_, _>>()?;
    if missing(&found) {
        let specs: Vec<ResourceIdSpec> = if core_answered {
            internal_type_specs()
        } else {
            // Types read as atoms (or nothing told which way): one spec per type held, but
            // never the window's. Safe either way: as an internal number, no atom is a window.
            counts
                .iter()
                .map(|t| t.resource_type)
                .filter(|&a| a != window_atom && a != 0)
                .map(|type_| ResourceIdSpec { resource: 0, type_ })
                .collect()
        };
        if !specs.is_empty() {
            let more = res::query_resource_bytes(conn, client_xid, &specs)?;
            match more.reply() {
                Ok(r) => found.extend(
                    r.sizes
                        .iter()
                        .map(|v| (v.size.spec.resource, v.size.spec.type_)),
                ),
                Err(ReplyError::X11Error(_)) => {}
                Err(source) => {
                    return Err(CaptureError::Reply {
                        what: "X-Resource QueryResourceBytes (per type)".into(),
                        source,
                    })
                }
            }
        }
    }
    // One ID may carry several types (XFIXES marks a window with a second resource of its ID).
    found.sort_unstable();
    found.dedup();
    let mut names: HashMap<u32, String> = HashMap::new();
    for (t, c) in counts.iter().zip(name_cookies) {
        let name = match c.reply() {
            Ok(r) => String::from_utf8_lossy(&r.name).into_owned(),
            Err(_) => format!("type atom {}", t.resource_type),
        };
        names.insert(t.resource_type, name);
    }
    // Types seen in the answers but not in the counts (made in between): named as well.
    let strays: Vec<u32> = {
        let mut v: Vec<u32> = found
            .iter()
            .map(|(_, t)| *t)
            .filter(|t| !names.contains_key(t))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let stray_cookies: Vec<_> = strays
        .iter()
        .map(|&t| conn.get_atom_name(t))
        .collect::<Result<_, _>>()?;
    for (t, c) in strays.into_iter().zip(stray_cookies) {
        let name = match c.reply() {
            Ok(r) => String::from_utf8_lossy(&r.name).into_owned(),
            Err(_) => format!("type atom {t}"),
        };
        names.insert(t, name);
    }

    let mut list = ResourceList {
        windows: windows.clone(),
        ..Default::default()
    };
    for t in &counts {
        let have = listed(&found, t.resource_type);
        if have < t.count as usize {
            list.unlisted.push(format!(
                "{} {} resource(s) of the client: not listed (X-Resource cannot list them without risking the server; no GUIEVICT extension)",
                t.count as usize - have,
                names
                    .get(&t.resource_type)
                    .map_or("unnamed", String::as_str)
            ));
        }
    }
    for (id, t) in found {
        let name = names.get(&t).map_or("unnamed", String::as_str);
        if id & !mask & !SERVER_BIT == base && id & SERVER_BIT != 0 {
            // Server-side sub-resources (grabs, XKB, XFIXES selection inputs): listed by type
            // only, so that what cannot be read back is at least counted.
            list.other.push((id, name.to_string()));
            continue;
        }
        if id & !mask != base {
            continue; // other clients
        }
        match name {
            "WINDOW" => {} // never asked for; from the tree
            "PIXMAP" => list.pixmaps.push(id),
            "GC" => list.gcs.push(id),
            "FONT" => list.fonts.push(id),
            "CURSOR" => list.cursors.push(id),
            "COLORMAP" => list.colormaps.push(id),
            "PICTURE" => list.pictures.push(id),
            "GLYPHSET" => list.glyphsets.push(id),
            _ => list.other.push((id, name.to_string())),
        }
    }
    for v in [
        &mut list.windows,
        &mut list.pixmaps,
        &mut list.gcs,
        &mut list.fonts,
        &mut list.cursors,
        &mut list.colormaps,
        &mut list.pictures,
        &mut list.glyphsets,
    ] {
        v.sort_unstable();
    }
    list.other.sort();
    Ok(list)
}

/// Capture the window session of the client on `conn` (the application's own connection).
pub fn capture(conn: &impl Connection, opts: &CaptureOptions) -> Result<Session, CaptureError> {
    let started = start(conn, opts)?;
    finish(conn, started, opts).map(|c| c.session)
}

/// What [`finish`] returns beside the session.
#[derive(Debug)]
pub struct Captured {
    /// The session.
    pub session: Session,
    /// What the GUIEVICT extension reported (`None` without it): every resource of the client
    /// by kind, the server-made ones included (a RANDR event selection), which the session
    /// does not carry.
    pub ext: Option<crate::ext::ExtState>,
    /// The capture made temporary resources with free IDs of the client's range (SHM and
    /// DAMAGE probes) and freed them with its last requests, which nothing waited for: the
    /// caller must synchronise before the connection goes if the client lives on.
    pub made_temporaries: bool,
}

/// The capture's first round, sent and not yet waited for ([`start`]).
pub struct Started<'c, C: Connection> {
    ext: Option<crate::ext::Asked<'c, C>>,
    focus: Cookie<'c, C, xproto::GetInputFocusReply>,
    clipboard: Cookie<'c, C, xproto::InternAtomReply>,
    root_tree: Cookie<'c, C, xproto::QueryTreeReply>,
    /// PRIMARY and SECONDARY (CLIPBOARD's atom is asked in the same round).
    selections: Vec<(u32, Cookie<'c, C, xproto::GetSelectionOwnerReply>)>,
}

/// Send the capture's first round (the GUIEVICT extension's resource list, the focus, the root's
/// children, the selection owners) without waiting for any answer: a caller that has more to
/// ask of the same server sends it next, and everything shares one round trip. The
/// connection's setup may still change before [`finish`] (its `resource_id_base` is not used
/// here unless `opts.client` names another client).
pub fn start<'c, C: Connection>(
    conn: &'c C,
    opts: &CaptureOptions,
) -> Result<Started<'c, C>, CaptureError> {
    if conn.setup().roots.get(opts.screen).is_none() {
        return Err(CaptureError::NoScreen(opts.screen));
    }
    crate::prefetch_extensions(conn);
    let root = conn.setup().roots[opts.screen].root;
    let focus = conn.get_input_focus()?;
    let clipboard = conn.intern_atom(true, b"CLIPBOARD")?;
    let root_tree = conn.query_tree(root)?;
    let selections = [xproto::AtomEnum::PRIMARY, xproto::AtomEnum::SECONDARY]
        .into_iter()
        .map(|a| {
            conn.get_selection_owner(u32::from(a))
                .map(|c| (u32::from(a), c))
        })
        .collect::<Result<_, _>>()?;
    let ext = if opts.use_extension {
        let client = opts.client.unwrap_or(conn.setup().resource_id_base);
        crate::ext::ask(conn, client)?
    } else {
        None
    };
    Ok(Started {
        ext,
        focus,
        clipboard,
        root_tree,
        selections,
    })
}

/// The rest of the capture after [`start`] on the same connection. Round 1 is collected
/// with the round 2 requests already sent where they do not depend on it.
pub fn finish<C: Connection>(
    conn: &C,
    started: Started<'_, C>,
    opts: &CaptureOptions,
) -> Result<Captured, CaptureError> {
    let setup = setup_facts(conn, opts.screen).ok_or(CaptureError::NoScreen(opts.screen))?;
    let client = opts.client.unwrap_or(setup.resource_id_base);
    let mut session = Session {
        header: opts.header.clone(),
        ..Default::default()
    };
    session.header.time_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if session.header.producer.is_empty() {
        session.header.producer = format!("winsession {}", env!("CARGO_PKG_VERSION"));
    }
    let Started {
        ext,
        focus: focus_cookie,
        clipboard: clipboard_cookie,
        root_tree: root_tree_cookie,
        selections: first_selections,
    } = started;

    // Round 1: resource list (+ things that need no list).
    let ext_state = match ext {
        Some(a) => a.collect()?,
        None => None,
    };
    let list = match &ext_state {
        Some(st) => st.list.clone(),
        None => list_resources_xres(conn, client, setup.resource_id_mask)?,
    };
    let id_mask = setup.resource_id_mask;
    let mine = move |id: u32| id & !id_mask == client & !id_mask;
    session.unknown.extend(list.unlisted.iter().cloned());

    // Round 2: per-resource queries. CLIPBOARD's atom came with round 1: its owner is asked
    // first, so that its answer is in before the round's others.
    let clipboard = reply(clipboard_cookie, || "InternAtom CLIPBOARD".into())?.atom;
    let mut sc = first_selections;
    if clipboard != 0 {
        sc.push((clipboard, conn.get_selection_owner(clipboard)?));
    }
    struct WinCookies<'c, C: x11rb::connection::RequestConnection> {
        attrs: Cookie<'c, C, xproto::GetWindowAttributesReply>,
        geom: Cookie<'c, C, xproto::GetGeometryReply>,
        tree: Cookie<'c, C, xproto::QueryTreeReply>,
        props: Cookie<'c, C, xproto::ListPropertiesReply>,
    }
    let mut wc = Vec::with_capacity(list.windows.len());
    for &w in &list.windows {
        wc.push(WinCookies {
            attrs: conn.get_window_attributes(w)?,
            geom: conn.get_geometry(w)?,
            tree: conn.query_tree(w)?,
            props: conn.list_properties(w)?,
        });
    }
    let pc: Vec<_> = list
        .pixmaps
        .iter()
        .map(|&p| conn.get_geometry(p))
        .collect::<Result<_, _>>()?;
    // A font whose name the GUIEVICT extension knows is described by ListFontsWithInfo: the
    // same header and properties as QueryFont without the per-character metrics, which are
    // most of the bytes (xterm's fonts: ~2.4 MB over a link; issue 15). QueryFont otherwise.
    let font_names = crate::ext::described(ext_state.as_ref(), |d| match d {
        proto::Detail::Font(x) if !x.name.is_empty() => Some(x.name.clone()),
        _ => None,
    });
    let fc: Vec<FontAsk<'_, C>> = list
        .fonts
        .iter()
        .map(|&f| match font_names.get(&f) {
            Some(n) => conn
                .list_fonts_with_info(1, n.as_bytes())
                .map(FontAsk::Listed),
            None => conn.query_font(f).map(FontAsk::Queried),
        })
        .collect::<Result<_, _>>()?;

    let focus = reply(focus_cookie, || "GetInputFocus".into())?;
    let root_tree = reply(root_tree_cookie, || "QueryTree(root)".into())?;
    let mut windows: HashMap<u32, (Window, Vec<u32>, Vec<u32>)> = HashMap::new();
    for (&id, c) in list.windows.iter().zip(wc) {
        // A window may vanish between the list and the query (the app is live in tests):
        // report, don't fail.
        let (a, g, t, p) = match (
            c.attrs.reply(),
            c.geom.reply(),
            c.tree.reply(),
            c.props.reply(),
        ) {
            (Ok(a), Ok(g), Ok(t), Ok(p)) => (a, g, t, p),
            (a, ..) => {
                session.unknown.push(format!(
                    "window {id:#x}: vanished during capture ({:?})",
                    a.err()
                ));
                continue;
            }
        };
        let mut props: Vec<u32> = p.atoms;
        props.sort_unstable();
        let class = u16::from(a.class);
        windows.insert(
            id,
            (
                Window {
                    id,
                    parent: t.parent,
                    class,
                    depth: g.depth,
                    visual: a.visual,
                    x: g.x,
                    y: g.y,
                    width: g.width,
                    height: g.height,
                    border_width: g.border_width,
                    bit_gravity: u32::from(a.bit_gravity) as u8,
                    win_gravity: u32::from(a.win_gravity) as u8,
                    backing_store: u32::from(a.backing_store) as u8,
                    backing_planes: a.backing_planes,
                    backing_pixel: a.backing_pixel,
                    save_under: a.save_under,
                    override_redirect: a.override_redirect,
                    colormap: a.colormap,
                    event_mask: u32::from(a.your_event_mask),
                    all_event_masks: u32::from(a.all_event_masks),
                    do_not_propagate_mask: u32::from(a.do_not_propagate_mask) as u16,
                    map_state: u32::from(a.map_state) as u8,
                    background: None,
                    border: None,
                    cursor: None,
                    properties: Vec::new(),
                    shape: None,
                },
                t.children,
                props,
            ),
        );
    }
    let mut pixmaps = Vec::with_capacity(list.pixmaps.len());
    for (&id, c) in list.pixmaps.iter().zip(pc) {
        let g = reply(c, || format!("GetGeometry(pixmap {id:#x})"))?;
        pixmaps.push(Pixmap {
            id,
            depth: g.depth,
            width: g.width,
            height: g.height,
            contents: None,
        });
    }
    let mut font_atoms: Vec<(usize, u32)> = Vec::new();
    for (&id, c) in list.fonts.iter().zip(fc) {
        let q = match c {
            FontAsk::Queried(c) => reply(c, || format!("QueryFont({id:#x})"))?.into(),
            FontAsk::Listed(c) => {
                let first = c
                    .collect::<Result<Vec<_>, _>>()
                    .ok()
                    .and_then(|mut v| (!v.is_empty()).then(|| v.swap_remove(0)));
                match first {
                    Some(r) => FontHeader::from(r),
                    // The name no longer lists (the font path changed since it was opened).
                    None => reply(conn.query_font(id)?, || format!("QueryFont({id:#x})"))?.into(),
                }
            }
        };
        let ci = |c: xproto::Charinfo| CharInfo {
            left_side_bearing: c.left_side_bearing,
            right_side_bearing: c.right_side_bearing,
            character_width: c.character_width,
            ascent: c.ascent,
            descent: c.descent,
            attributes: c.attributes,
        };
        if let Some(p) = q
            .properties
            .iter()
            .find(|p| p.name == u32::from(xproto::AtomEnum::FONT))
        {
            font_atoms.push((session.fonts.len(), p.value));
        }
        session.fonts.push(Font {
            id,
            name: opts.hints.font_names.get(&id).cloned(),
            xlfd: None,
            metrics: FontMetrics {
                min_bounds: ci(q.min_bounds),
                max_bounds: ci(q.max_bounds),
                min_char_or_byte2: q.min_char_or_byte2,
                max_char_or_byte2: q.max_char_or_byte2,
                default_char: q.default_char,
                draw_direction: u32::from(q.draw_direction) as u8,
                min_byte1: q.min_byte1,
                max_byte1: q.max_byte1,
                all_chars_exist: q.all_chars_exist,
                font_ascent: q.font_ascent,
                font_descent: q.font_descent,
            },
        });
    }
    for (a, c) in sc {
        let owner = reply(c, || "GetSelectionOwner".into())?.owner;
        if windows.contains_key(&owner) {
            session.selections.push(Selection { name: a, owner });
        }
    }
    if windows.contains_key(&focus.focus) {
        session.focus = Some(Focus {
            window: focus.focus,
            revert_to: u8::from(focus.revert_to),
        });
    }

    // Window order: tree order from the root's stacking, siblings bottom-to-top.
    let mut ordered = Vec::with_capacity(windows.len());
    let mut stack: Vec<u32> = root_tree
        .children
        .iter()
        .rev()
        .copied()
        .filter(|w| windows.contains_key(w))
        .collect();
    // Windows whose parent is foreign (reparented by a window manager) start their own trees.
    let mut orphans: Vec<u32> = windows
        .values()
        .filter(|(w, ..)| w.parent != setup.root && !windows.contains_key(&w.parent))
        .map(|(w, ..)| w.id)
        .collect();
    orphans.sort_unstable();
    // Such a window keeps its place on the screen, not in the frame: it is recreated on the
    // root (see regenerate), so its root position (outer corner) is what is recorded.
    let tc = orphans
        .iter()
        .map(|&w| {
            conn.translate_coordinates(w, setup.root, 0, 0)
                .map(|c| (w, c))
        })
        .collect::<Result<Vec<_>, _>>()?;
    stack.extend(orphans.into_iter().rev());
    let mut seen = std::collections::HashSet::new();
    while let Some(w) = stack.pop() {
        if !seen.insert(w) {
            continue;
        }
        ordered.push(w);
        if let Some((_, children, _)) = windows.get(&w) {
            stack.extend(children.iter().rev().filter(|c| windows.contains_key(c)));
        }
    }

    // Round 3: property data, images, colours, the orphans' root positions (asked above) and
    // the extension state (sent below, read last).
    let mut prop_cookies = Vec::new();
    for &w in &ordered {
        let (_, _, props) = &windows[&w];
        for &p in props {
            prop_cookies.push((
                w,
                p,
                conn.get_property(false, w, p, xproto::AtomEnum::ANY, 0, u32::MAX / 4)?,
            ));
        }
    }
    let mut image_cookies = Vec::new();
    if opts.with_pixmap_contents {
        for (i, p) in pixmaps.iter().enumerate() {
            if p.width == 0 || p.height == 0 {
                continue;
            }
            let bpp = setup.bpp(p.depth).unwrap_or(32);
            let pad = setup
                .pixmap_formats
                .iter()
                .find(|f| f.depth == p.depth)
                .map(|f| f.scanline_pad)
                .unwrap_or(32);
            let st = stride(p.width, bpp, pad).max(1);
            let rows = (IMAGE_CHUNK / st).clamp(1, usize::from(p.height)) as u16;
            let mut y = 0u16;
            while y < p.height {
                let h = rows.min(p.height - y);
                image_cookies.push((
                    i,
                    bpp,
                    pad,
                    conn.get_image(
                        xproto::ImageFormat::Z_PIXMAP,
                        p.id,
                        0,
                        y as i16,
                        p.width,
                        h,
                        !0,
                    )?,
                ));
                y += h;
            }
        }
    }
    // Colormap visuals: extension, hint, or a window that uses it.
    let mut cmap_info: HashMap<u32, (u32, Option<bool>)> = HashMap::new();
    let mut ext_cells: HashMap<u32, Vec<ColorCell>> = HashMap::new();
    let entries_of = |v: u32| setup.visual(v).map(|v| v.colormap_entries).unwrap_or(0);
    for &c in &list.colormaps {
        if let Some((v, all, cells)) = ext_state.as_ref().and_then(|s| s.colormap(c, entries_of)) {
            cmap_info.insert(c, (v, Some(all)));
            if !cells.is_empty() {
                ext_cells.insert(c, cells);
            }
        } else if let Some((v, all)) = opts.hints.colormaps.get(&c) {
            cmap_info.insert(c, (*v, Some(*all)));
        } else if let Some((w, ..)) = windows.values().find(|(w, ..)| w.colormap == c) {
            cmap_info.insert(c, (w.visual, None));
        } else {
            cmap_info.insert(c, (0, None));
        }
    }
    let mut color_cookies = Vec::new();
    for &c in &list.colormaps {
        let (vid, _) = cmap_info[&c];
        let Some(v) = setup.visual(vid) else { continue };
        if ext_cells.contains_key(&c) {
            continue;
        }
        let pixels = colormap_pixels(v);
        if pixels.is_empty() {
            continue;
        }
        color_cookies.push((c, pixels.clone(), conn.query_colors(c, &pixels)?));
    }

    let ext_asked = crate::extensions::ask(conn, &ordered, setup.root, &list)?;
    for (w, c) in tc {
        if let (Ok(r), Some((win, ..))) = (c.reply(), windows.get_mut(&w)) {
            let bw = i16::try_from(win.border_width).unwrap_or(0);
            win.x = r.dst_x.saturating_sub(bw);
            win.y = r.dst_y.saturating_sub(bw);
        }
    }

    let mut props_by_window: HashMap<u32, Vec<Property>> = HashMap::new();
    let mut atoms_needed: Vec<u32> = Vec::new();
    for (w, name, c) in prop_cookies {
        let r = match c.reply() {
            Ok(r) => r,
            Err(e) => {
                session
                    .unknown
                    .push(format!("window {w:#x}: property atom {name}: {e}"));
                continue;
            }
        };
        if r.type_ == 0 {
            continue; // deleted between list and get
        }
        let data = to_le_items(r.value, r.format);
        atoms_needed.push(name);
        atoms_needed.push(r.type_);
        props_by_window.entry(w).or_default().push(Property {
            name,
            type_: r.type_,
            format: r.format,
            data,
        });
    }
    for (i, bpp, pad, c) in image_cookies {
        let p = &mut pixmaps[i];
        let r = reply(c, || format!("GetImage(pixmap {:#x})", p.id))?;
        let mut data = r.data;
        if setup.image_byte_order == 1 {
            swap_pixels(&mut data, bpp);
        }
        match &mut p.contents {
            Some(img) => img.data.extend_from_slice(&data),
            None => {
                p.contents = Some(Image {
                    depth: p.depth,
                    bits_per_pixel: bpp,
                    scanline_pad: pad,
                    width: p.width,
                    height: p.height,
                    data,
                })
            }
        }
    }
    for &c in &list.colormaps {
        let (visual, alloc_all) = cmap_info[&c];
        if visual == 0 {
            session.unknown.push(format!("colormap {c:#x}: visual"));
        }
        if alloc_all.is_none() {
            session
                .unknown
                .push(format!("colormap {c:#x}: allocation mode"));
        }
        session.colormaps.push(Colormap {
            id: c,
            visual,
            alloc_all,
            cells: ext_cells.remove(&c).unwrap_or_default(),
        });
    }
    for (c, pixels, cookie) in color_cookies {
        let r = reply(cookie, || format!("QueryColors(colormap {c:#x})"))?;
        if let Some(cm) = session.colormaps.iter_mut().find(|m| m.id == c) {
            cm.cells = pixels
                .iter()
                .zip(r.colors)
                .map(|(&pixel, rgb)| ColorCell {
                    pixel,
                    rgb: [rgb.red, rgb.green, rgb.blue],
                    flags: 7,
                })
                .collect();
        }
    }

    // Atoms inside ATOM-typed data; font names.
    let atom_atom = u32::from(xproto::AtomEnum::ATOM);
    for props in props_by_window.values() {
        for p in props {
            if p.type_ == atom_atom && p.format == 32 {
                atoms_needed.extend(p.items32().into_iter().filter(|&a| a != 0));
            }
        }
    }
    for s in &session.selections {
        atoms_needed.push(s.name);
    }
    atoms_needed.sort_unstable();
    atoms_needed.dedup();
    let mut font_atom_ids: Vec<u32> = font_atoms.iter().map(|f| f.1).collect();
    font_atom_ids.sort_unstable();
    font_atom_ids.dedup();
    let mut names: BTreeMap<u32, String> = BTreeMap::new();
    let mut ask = Vec::new();
    for &a in atoms_needed.iter().chain(font_atom_ids.iter()) {
        match known_atom(opts, a) {
            Some(n) => {
                names.insert(a, n);
            }
            None => ask.push(a),
        }
    }
    let ac: Vec<_> = ask
        .iter()
        .map(|&a| conn.get_atom_name(a))
        .collect::<Result<_, _>>()?;
    for (&a, c) in ask.iter().zip(ac) {
        match c.reply() {
            Ok(r) => {
                names.insert(a, String::from_utf8_lossy(&r.name).into_owned());
            }
            Err(e) => session.unknown.push(format!("atom {a}: name ({e})")),
        }
    }
    for (i, a) in font_atoms {
        session.fonts[i].xlfd = names.get(&a).cloned();
    }
    session.atoms = atoms_needed
        .iter()
        .filter_map(|a| names.get(a).map(|n| (*a, n.clone())))
        .collect();

    for w in ordered {
        let Some((mut win, ..)) = windows.remove(&w) else {
            continue;
        };
        win.properties = props_by_window.remove(&w).unwrap_or_default();
        session.windows.push(win);
    }
    session.pixmaps = pixmaps;
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
    session.setup = setup;

    if let Some(st) = &ext_state {
        crate::ext::apply(&mut session, st);
    }
    let made_temporaries = crate::extensions::finish(
        conn,
        &mut session,
        &list,
        opts.client.is_none(),
        ext_state.as_ref(),
        ext_asked,
        &|a| known_atom(opts, a),
    )?;
    apply_hints(&mut session, &opts.hints);
    find_dangling(conn, &mut session, &mine)?;
    note_unknown(&mut session, ext_state.is_some());
    if session.header.app_name.is_empty() {
        session.header.app_name = app_name(&session).unwrap_or_default();
    }
    Ok(Captured {
        session,
        ext: ext_state,
        made_temporaries,
    })
}

/// How a font is asked about (see `finish`).
enum FontAsk<'c, C: Connection> {
    Queried(Cookie<'c, C, xproto::QueryFontReply>),
    Listed(x11rb::cookie::ListFontsWithInfoCookie<'c, C>),
}

/// What the capture keeps of a QueryFont or ListFontsWithInfo answer.
struct FontHeader {
    min_bounds: xproto::Charinfo,
    max_bounds: xproto::Charinfo,
    min_char_or_byte2: u16,
    max_char_or_byte2: u16,
    default_char: u16,
    draw_direction: xproto::FontDraw,
    min_byte1: u8,
    max_byte1: u8,
    all_chars_exist: bool,
    font_ascent: i16,
    font_descent: i16,
    properties: Vec<xproto::Fontprop>,
}

macro_rules! font_header_from {
    ($t:ty) => {
        impl From<$t> for FontHeader {
            fn from(q: $t) -> Self {
                FontHeader {
                    min_bounds: q.min_bounds,
                    max_bounds: q.max_bounds,
                    min_char_or_byte2: q.min_char_or_byte2,
                    max_char_or_byte2: q.max_char_or_byte2,
                    default_char: q.default_char,
                    draw_direction: q.draw_direction,
                    min_byte1: q.min_byte1,
                    max_byte1: q.max_byte1,
                    all_chars_exist: q.all_chars_exist,
                    font_ascent: q.font_ascent,
                    font_descent: q.font_descent,
                    properties: q.properties,
                }
            }
        }
    };
}
font_header_from!(xproto::QueryFontReply);
font_header_from!(xproto::ListFontsWithInfoReply);

/// Fill [`Session::dangling_refs`]: the references to drawables that are neither the client's
/// nor the root nor a window's parent (a window manager's frame) and that name nothing on this
/// server (SDL2 puts a made-up number in WM_HINTS' window group). Such a number is carried
/// exactly by copying it; a reference to another client's live window is not. One round trip,
/// only when the session holds such references.
fn find_dangling(
    conn: &impl Connection,
    s: &mut Session,
    mine: &dyn Fn(u32) -> bool,
) -> Result<(), CaptureError> {
    let parents: std::collections::HashSet<u32> = s.windows.iter().map(|w| w.parent).collect();
    let root = s.setup.root;
    let mut refs: Vec<u32> = Vec::new();
    s.clone().map_ids(|kind, id| {
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

/// Largest GetImage reply asked for at once.
const IMAGE_CHUNK: usize = 32 << 20;

/// Pixels whose colours describe a colormap's state (empty for read-only visuals).
fn colormap_pixels(v: &Visual) -> Vec<u32> {
    match v.class {
        // GrayScale, PseudoColor
        1 | 3 => (0..u32::from(v.colormap_entries)).collect(),
        // DirectColor: one cell index per channel.
        5 => {
            let sh = |m: u32| if m == 0 { 0 } else { m.trailing_zeros() };
            (0..u32::from(v.colormap_entries))
                .map(|i| {
                    ((i << sh(v.red_mask)) & v.red_mask)
                        | ((i << sh(v.green_mask)) & v.green_mask)
                        | ((i << sh(v.blue_mask)) & v.blue_mask)
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Property data from the connection's (native) byte order to little-endian items.
fn to_le_items(mut data: Vec<u8>, format: u8) -> Vec<u8> {
    if cfg!(target_endian = "big") {
        match format {
            16 => data.chunks_exact_mut(2).for_each(|c| c.swap(0, 1)),
            32 => data.chunks_exact_mut(4).for_each(|c| c.reverse()),
            _ => {}
        }
    }
    data
}

/// Swap pixel byte order in place (MSB-first server images to little-endian).
pub(crate) fn swap_pixels(data: &mut [u8], bpp: u8) {
    match bpp {
        16 => data.chunks_exact_mut(2).for_each(|c| c.swap(0, 1)),
        32 => data.chunks_exact_mut(4).for_each(|c| c.reverse()),
        24 => data.chunks_exact_mut(3).for_each(|c| c.swap(0, 2)),
        _ => {}
    }
}

fn apply_hints(s: &mut Session, h: &Hints) {
    for g in &mut s.gcs {
        if g.values.is_none() {
            if let Some((d, v)) = h.gcs.get(&g.id) {
                g.depth = *d;
                g.values = Some(v.clone());
            }
        }
    }
    for w in &mut s.windows {
        if w.background.is_none() {
            w.background = h.backgrounds.get(&w.id).copied();
        }
        if w.border.is_none() {
            w.border = h.borders.get(&w.id).copied();
        }
        if w.cursor.is_none() {
            w.cursor = h.window_cursors.get(&w.id).copied();
        }
    }
    for f in &mut s.fonts {
        if f.name.is_none() {
            f.name = h.font_names.get(&f.id).cloned();
        }
    }
    for c in &mut s.cursors {
        if c.glyph.is_none() {
            c.glyph = h.glyph_cursors.get(&c.id).cloned();
        }
    }
}

fn note_unknown(s: &mut Session, have_ext: bool) {
    let why = if have_ext {
        "not reported by the GUIEVICT extension"
    } else {
        "GUIEVICT extension absent, no hint"
    };
    let mut u = Vec::new();
    for w in &s.windows {
        if w.class == 1 && w.background.is_none() {
            u.push(format!("window {:#x}: background ({why})", w.id));
        }
        if w.class == 1 && w.border.is_none() {
            u.push(format!("window {:#x}: border ({why})", w.id));
        }
        if w.cursor.is_none() {
            u.push(format!("window {:#x}: cursor ({why})", w.id));
        }
    }
    for g in &s.gcs {
        if g.values.is_none() {
            u.push(format!("gc {:#x}: values ({why})", g.id));
        }
    }
    for c in &s.cursors {
        if c.image.is_none() && c.glyph.is_none() {
            u.push(format!("cursor {:#x}: image ({why})", c.id));
        }
    }
    for f in &s.fonts {
        if f.open_name().is_none() {
            u.push(format!("font {:#x}: name (no FONT property; {why})", f.id));
        }
    }
    for p in &s.pictures {
        if !p.known {
            u.push(format!("picture {:#x}: attributes ({why})", p.id));
        }
    }
    for g in &s.glyphsets {
        if !g.known {
            u.push(format!("glyphset {:#x}: glyphs ({why})", g.id));
        }
    }
    for o in &s.other_resources {
        u.push(format!(
            "{} {:#x}: not modelled, will not be recreated",
            o.type_name, o.id
        ));
    }
    s.unknown.extend(u);
}

/// The instance name from the first top-level's WM_CLASS, else its WM_NAME.
fn app_name(s: &Session) -> Option<String> {
    let wm_class = u32::from(xproto::AtomEnum::WM_CLASS);
    let wm_name = u32::from(xproto::AtomEnum::WM_NAME);
    for w in s.windows.iter().filter(|w| w.parent == s.setup.root) {
        if let Some(p) = w.properties.iter().find(|p| p.name == wm_class) {
            let inst = p.data.split(|&b| b == 0).next().unwrap_or_default();
            if !inst.is_empty() {
                return Some(String::from_utf8_lossy(inst).into_owned());
            }
        }
        if let Some(p) = w.properties.iter().find(|p| p.name == wm_name) {
            return Some(String::from_utf8_lossy(&p.data).into_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_fallback_spec_can_reach_a_window() {
        let window_atom = u32::from(xproto::AtomEnum::WINDOW);
        // The first request is sent before the server's reading of `type` is known: safe both
        // ways (neither the window's internal number nor its atom, never "every type").
        for t in CORE_TYPES {
            assert!(t != 0 && t != RT_WINDOW && t != window_atom, "{t:#x}");
        }
        // As atoms, 3..=6 name no resource type; the flagged ones are no atoms at all.
        for t in CORE_TYPES {
            assert!(
                (3..=6).contains(&t) || t & (RC_DRAWABLE | RC_NEVERRETAIN) != 0,
                "{t:#x}"
            );
        }
        // The second is sent only to a server reading internal numbers.
        let specs = internal_type_specs();
        assert!(specs
            .iter()
            .all(|s| s.resource == 0 && s.type_ != 0 && s.type_ != RT_WINDOW));
        let mut types: Vec<u32> = specs.iter().map(|s| s.type_).collect();
        types.extend(CORE_TYPES);
        let n = types.len();
        types.sort_unstable();
        types.dedup();
        assert_eq!(types.len(), n, "a type asked twice would be listed twice");
    }
}
