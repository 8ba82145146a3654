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
//!
//! This file holds the options, errors, the resource list and [`start`]; [`finish`] drives the
//! phases in submodules, in their rounds: `windows` (and their properties), `pixmaps`,
//! `fonts`, `colormaps`, `atoms` (names), `listed` (resources known by ID only) and
//! `dangling` (references that name nothing).

mod atoms;
mod colormaps;
mod dangling;
mod fonts;
mod listed;
mod pixmaps;
mod windows;

use crate::model::*;
use std::collections::HashMap;
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
    let wc = windows::ask(conn, &list)?;
    let pc = pixmaps::ask_geometry(conn, &list)?;
    let fc = fonts::ask(conn, &list, ext_state.as_ref())?;

    let focus = reply(focus_cookie, || "GetInputFocus".into())?;
    let root_tree = reply(root_tree_cookie, || "QueryTree(root)".into())?;
    let mut windows = windows::read(&mut session, &list, wc);
    let mut pixmaps = pixmaps::read_geometry(&list, pc)?;
    let font_atoms = fonts::read(conn, &mut session, opts, &list, fc)?;
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

    let (ordered, tc) = windows::order(conn, &windows, &root_tree, setup.root)?;

    // Round 3: property data, images, colours, the orphans' root positions (asked above) and
    // the extension state (sent below, read last).
    let prop_cookies = windows::ask_properties(conn, &windows, &ordered)?;
    let image_cookies = pixmaps::ask_images(conn, &setup, opts, &pixmaps)?;
    // Colormap visuals: extension, hint, or a window that uses it.
    let colors = colormaps::ask(conn, &setup, opts, &list, ext_state.as_ref(), &windows)?;

    let ext_asked = crate::extensions::ask(conn, &ordered, setup.root, &list)?;
    windows::read_positions(&mut windows, tc);
    let (props_by_window, atoms_needed) = windows::read_properties(&mut session, prop_cookies);
    pixmaps::read_images(&setup, &mut pixmaps, image_cookies)?;
    colormaps::read(&mut session, &list, colors)?;

    // Atoms inside ATOM-typed data; font names.
    atoms::name(
        conn,
        opts,
        &mut session,
        &props_by_window,
        atoms_needed,
        font_atoms,
    )?;

    windows::store(&mut session, windows, ordered, props_by_window);
    session.pixmaps = pixmaps;
    listed::store(&mut session, &list, opts, &mine);
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
    dangling::find_dangling(conn, &mut session, &mine)?;
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
