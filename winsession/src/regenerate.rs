//! Regenerate: a [`Session`] flows in, creation requests flow out on a connection to another
//! server, and the old→new ID and atom maps flow back for guimux. Order: intern atoms and open
//! fonts (one round trip, font substitution where needed), allocate every new ID up front so
//! references translate in one pass, then colormaps, pixmaps with contents, cursors, GCs,
//! windows parent-first in stacking order with properties, selections, and — only if asked —
//! map. All creation requests are pipelined and their errors collected at the end with one
//! sync.

use crate::capture::setup_facts;
use crate::convert::{convert_image, PixelLayout};
use crate::model::*;
use crate::remap::{tree_order, IdKind};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::cookie::VoidCookie;
use x11rb::errors::{ConnectionError, ReplyError, ReplyOrIdError};
use x11rb::protocol::render::{self, ConnectionExt as _};
use x11rb::protocol::shm::ConnectionExt as _;
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// How to regenerate.
#[derive(Clone, Debug)]
pub struct RegenOptions {
    /// Map the windows that were mapped (false: the caller maps after replaying requests).
    pub map_windows: bool,
    /// Screen of the target server to create the windows on.
    pub screen: usize,
    /// Substitute the closest font (by metrics) when the target lacks one; false → error.
    pub font_substitution: bool,
    /// Re-acquire selections the application owned.
    pub restore_selections: bool,
    /// Attach the application's MIT-SHM segments on the target (false when the target cannot
    /// share memory with the application and guimux serves the segments itself).
    pub attach_shm: bool,
}

impl Default for RegenOptions {
    fn default() -> Self {
        Self {
            map_windows: true,
            screen: 0,
            font_substitution: true,
            restore_selections: true,
            attach_shm: true,
        }
    }
}

/// A font replaced by another on the target server.
#[derive(Clone, Debug, PartialEq)]
pub struct FontSubstitution {
    /// Source font ID.
    pub id: u32,
    /// Name that was not available.
    pub wanted: String,
    /// Name opened instead.
    pub used: String,
    /// Least-squares distance over the metrics.
    pub distance: f64,
}

/// Counters of one regeneration.
#[derive(Clone, Debug, Default)]
pub struct RegenStats {
    /// Wall time.
    pub elapsed: Duration,
    /// Requests sent.
    pub requests: usize,
    /// Pixmap content bytes uploaded.
    pub pixmap_bytes: u64,
    /// Pixmaps made again with ShmCreatePixmap on the application's segment (still shared).
    pub shm_pixmaps: usize,
}

/// Result of a regeneration.
#[derive(Clone, Debug, Default)]
pub struct Regenerated {
    /// Old resource ID → new resource ID (the client's resources, plus the root window and the
    /// default colormap).
    pub xid_map: HashMap<u32, u32>,
    /// Old atom → new atom, for every atom the session references.
    pub atom_map: HashMap<u32, u32>,
    /// Old visual → new visual.
    pub visual_map: HashMap<u32, u32>,
    /// What was approximated (fonts, depths, unknown state) — also logged.
    pub warnings: Vec<String>,
    /// Fonts replaced by the closest match.
    pub font_substitutions: Vec<FontSubstitution>,
    /// Old XInput 2 device ID → new one (matched by use and name; 0 AllDevices and
    /// 1 AllMasterDevices map to themselves). Empty when the session has no XI2 selections.
    /// Devices without a counterpart are absent and named in `warnings`.
    pub xi_device_map: HashMap<u16, u16>,
    /// Focus to set after mapping (new window ID, revert-to), when `map_windows` was false.
    pub pending_focus: Option<(u32, u8)>,
    /// Counters.
    pub stats: RegenStats,
}

/// Why regeneration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegenError {
    /// The connection failed.
    #[error("X connection failed during regeneration: {0}")]
    Connection(#[from] ConnectionError),
    /// A reply was needed and did not come.
    #[error("regeneration request {what} failed: {source}")]
    Reply {
        /// Request.
        what: String,
        /// Error.
        source: ReplyError,
    },
    /// The target ran out of resource IDs.
    #[error("target server refused resource IDs: {0}")]
    Ids(String),
    /// The target screen does not exist.
    #[error("screen {0} does not exist on the target server")]
    NoScreen(usize),
    /// A font is missing on the target and substitution is off or found nothing.
    #[error("font {name:?} is not available on the target server and no substitute was found")]
    FontUnavailable {
        /// Font name.
        name: String,
    },
    /// The target cannot show this session (e.g. a depth with no visual and no conversion).
    #[error("cannot regenerate on this server: {0}")]
    Unsupported(String),
    /// Creation requests failed on the server.
    #[error("{} creation request(s) failed on the target server: {}", .0.len(), .0.join("; "))]
    Requests(Vec<String>),
}

impl From<ReplyOrIdError> for RegenError {
    fn from(e: ReplyOrIdError) -> Self {
        match e {
            ReplyOrIdError::ConnectionError(c) => RegenError::Connection(c),
            other => RegenError::Ids(other.to_string()),
        }
    }
}

struct Pending<'c, C: RequestConnection> {
    cookies: Vec<(&'static str, u32, VoidCookie<'c, C>)>,
}

impl<'c, C: RequestConnection> Pending<'c, C> {
    fn push(&mut self, what: &'static str, id: u32, c: VoidCookie<'c, C>) {
        self.cookies.push((what, id, c));
    }
}

fn layout_of(v: &Visual) -> PixelLayout {
    PixelLayout {
        red: v.red_mask,
        green: v.green_mask,
        blue: v.blue_mask,
    }
}

/// The TrueColor layout used for pixels of `depth` on a server.
fn depth_layout(s: &SetupFacts, depth: u8) -> Option<PixelLayout> {
    s.visuals
        .iter()
        .filter(|v| v.depth == depth && (v.class == 4 || v.class == 5))
        .min_by_key(|v| (v.id != s.root_visual, v.class != 4))
        .map(layout_of)
}

/// Recreate `session` on the server behind `conn`. Requests go out in a few rounds whatever
/// the session's size (atoms, fonts and extension versions in the first two, every creation
/// in the third), and one final synchronisation collects every error, matched to its
/// resource by the request's sequence number: on a slow link the cost is a small constant
/// number of round trips. When it returns, the server has processed every request sent.
pub fn regenerate(
    conn: &impl Connection,
    session: &Session,
    opts: &RegenOptions,
) -> Result<Regenerated, RegenError> {
    let t0 = Instant::now();
    let target = setup_facts(conn, opts.screen).ok_or(RegenError::NoScreen(opts.screen))?;
    crate::prefetch_extensions(conn);
    let src = &session.setup;
    let mut out = Regenerated::default();
    let warn = |out: &mut Regenerated, msg: String| {
        tracing::warn!("{msg}");
        out.warnings.push(msg);
    };

    // --- Round 1: atoms and fonts.
    let mut font_cookies = Vec::new();
    for f in &session.fonts {
        let new = conn.generate_id()?;
        out.xid_map.insert(f.id, new);
        match f.open_name() {
            Some(name) => {
                font_cookies.push((f, name.to_string(), conn.open_font(new, name.as_bytes())?))
            }
            None => font_cookies.push((f, String::new(), conn.open_font(new, b"fixed")?)),
        }
    }
    let mut glyph_fonts: BTreeMap<String, u32> = BTreeMap::new();
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
    let root_attrs = conn.get_window_attributes(target.root)?;
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
            warn(&mut out, w);
        }
        (sink.soft, sink.xi_devices)
    };
    for (old, c) in atom_cookies {
        let r = c.reply().map_err(|source| RegenError::Reply {
            what: format!("InternAtom({:?})", session.atoms.get(&old)),
            source,
        })?;
        out.atom_map.insert(old, r.atom);
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
            warn(
                &mut out,
                format!("font {:#x}: name unknown, opened \"fixed\"", f.id),
            );
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
        conn.open_font(out.xid_map[&f.id], used.as_bytes())?
            .check()
            .map_err(|source| RegenError::Reply {
                what: format!("OpenFont({used:?}) as substitute for {name:?}"),
                source,
            })?;
        warn(
            &mut out,
            format!("font {name:?} is missing on the target; using closest match {used:?} (distance {distance:.1})"),
        );
        out.font_substitutions.push(FontSubstitution {
            id: f.id,
            wanted: name,
            used,
            distance,
        });
    }

    // --- IDs for everything else.
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
        let new = conn.generate_id()?;
        out.xid_map.insert(id, new);
    }
    out.xid_map.insert(src.root, target.root);
    out.xid_map
        .insert(src.default_colormap, target.default_colormap);

    // --- Visuals and depths.
    let mut depth_map: HashMap<u8, u8> = HashMap::from([(0, 0), (1, 1)]);
    let used_depths = session
        .windows
        .iter()
        .map(|w| w.depth)
        .chain(session.pixmaps.iter().map(|p| p.depth))
        .chain(session.gcs.iter().map(|g| g.depth));
    for d in used_depths {
        if depth_map.contains_key(&d) {
            continue;
        }
        // Windows need a visual of their depth; pixmaps (and GCs on them) only a pixmap format
        // (cairo's depth-8 alpha masks exist on servers without depth-8 visuals).
        let has_visual = target.visuals.iter().any(|v| v.depth == d);
        let window_depth = session.windows.iter().any(|w| w.depth == d);
        let has_format = target.pixmap_formats.iter().any(|f| f.depth == d);
        let to = if has_visual || (has_format && !window_depth) {
            d
        } else {
            target.root_depth
        };
        if to != d {
            warn(
                &mut out,
                format!("target has no depth-{d} visual: depth {d} becomes {to}, pixels converted"),
            );
        }
        depth_map.insert(d, to);
    }
    // One-to-one where the target allows it: a visual keeps its ID when the target has the
    // same visual under it (two servers of one build list the same ~390 visuals, GLX's many
    // identical TrueColor ones among them), the others take the first equal visual not yet
    // taken. guimux translates the visual IDs of live requests with the same map
    // (`hijack::session`), so a window created after the move with the visual of a colormap
    // regenerated here names the visual that colormap got: with the first equal visual for
    // every source visual, Firefox's CreateWindow(visual 0x3b7, colormap of 0x3b7 → 0x21)
    // failed with BadMatch on the target and Firefox exited.
    let equal = |v: &Visual, t: &Visual, d: u8| {
        t.depth == d && t.class == v.class && (d != v.depth || layout_of(t) == layout_of(v))
    };
    let depth_of = |v: &Visual| depth_map.get(&v.depth).copied().unwrap_or(v.depth);
    let mut taken: std::collections::HashSet<u32> = std::collections::HashSet::new();
    if let (Some(v), Some(t)) = (
        src.visual(src.root_visual),
        target.visual(target.root_visual),
    ) {
        if equal(v, t, depth_of(v)) {
            out.visual_map.insert(v.id, t.id);
            taken.insert(t.id);
        }
    }
    for v in &src.visuals {
        let d = depth_of(v);
        if out.visual_map.contains_key(&v.id) || taken.contains(&v.id) {
            continue;
        }
        if let Some(t) = target
            .visuals
            .iter()
            .find(|t| t.id == v.id && equal(v, t, d))
        {
            out.visual_map.insert(v.id, t.id);
            taken.insert(t.id);
        }
    }
    for v in &src.visuals {
        if out.visual_map.contains_key(&v.id) {
            continue;
        }
        let d = depth_of(v);
        let exact = target
            .visuals
            .iter()
            .find(|t| equal(v, t, d) && !taken.contains(&t.id))
            .or_else(|| target.visuals.iter().find(|t| equal(v, t, d)));
        let pick = exact
            .or_else(|| {
                target
                    .visuals
                    .iter()
                    .find(|t| t.depth == d && t.class == v.class)
            })
            .or_else(|| {
                (d == target.root_depth)
                    .then(|| target.visual(target.root_visual))
                    .flatten()
            });
        if let Some(t) = pick {
            out.visual_map.insert(v.id, t.id);
            taken.insert(t.id);
        }
    }
    out.visual_map.insert(0, 0);
    let root_visual_new = target.root_visual;
    let convert = |d: u8| -> Option<(PixelLayout, PixelLayout)> {
        let to = *depth_map.get(&d)?;
        let (a, b) = (depth_layout(src, d)?, depth_layout(&target, to)?);
        (a != b).then_some((a, b))
    };

    // --- RENDER picture formats are server-allocated: match them by layout.
    let mut pict_map: HashMap<u32, u32> = HashMap::new();
    // The target's formats, asked once (ARGB cursors need them too).
    let mut target_formats: Option<render::QueryPictFormatsReply> = None;
    if let Some(c) = formats_asked {
        let r = c.reply().map_err(|source| RegenError::Reply {
            what: "RenderQueryPictFormats".into(),
            source,
        })?;
        let dst = crate::extensions::formats_of(&r);
        target_formats = Some(r);
        pict_map = crate::extensions::map_pict_formats(&src.pict_formats, &dst);
        for f in &src.pict_formats {
            match pict_map.get(&f.id) {
                Some(&n) => {
                    out.xid_map.insert(f.id, n);
                }
                None => {
                    let used = session.pictures.iter().any(|p| p.format == f.id)
                        || session.glyphsets.iter().any(|g| g.format == f.id);
                    if used {
                        warn(
                            &mut out,
                            format!(
                                "picture format {:#x} (depth {}) has no counterpart on the target",
                                f.id, f.depth
                            ),
                        );
                    }
                }
            }
        }
    }

    // --- Translate the session into target numbers.
    let mut t = session.clone();
    let mut foreign: Vec<u32> = Vec::new();
    t.map_ids(|kind, id| {
        if id == 0 {
            return 0;
        }
        match kind {
            IdKind::Visual => out.visual_map.get(&id).copied().unwrap_or(root_visual_new),
            IdKind::PictFormat => pict_map.get(&id).copied().unwrap_or(id),
            _ => match out.xid_map.get(&id) {
                Some(&n) => n,
                None => {
                    foreign.push(id);
                    id
                }
            },
        }
    });
    foreign.sort_unstable();
    foreign.dedup();
    // Our own setup IDs were mapped too; the foreign list only concerns references.
    foreign.retain(|id| *id != target.root);
    // Pictures whose drawable the application freed get a placeholder (and their own warning).
    let freed: std::collections::HashSet<u32> =
        session.pictures.iter().map(|p| p.drawable).collect();
    foreign.retain(|id| !freed.contains(id));
    // A window manager's frame around a top-level has its own warning where the window is
    // created (on the root instead).
    let frames: std::collections::HashSet<u32> = session.windows.iter().map(|w| w.parent).collect();
    foreign.retain(|id| !frames.contains(id));
    // Numbers that named nothing on the source (an SDL2 window group) are carried by copying.
    foreign.retain(|id| !session.dangling_refs.contains(id));
    for id in &foreign {
        warn(
            &mut out,
            format!("reference to {id:#x} (not the application's, not the root) left untranslated"),
        );
    }
    let amap = out.atom_map.clone();
    t.map_atoms(|a| amap.get(&a).copied().unwrap_or(a));
    // Pixel conversion.
    for w in &mut t.windows {
        if let Some((a, b)) = convert(w.depth) {
            if let Some(Background::Pixel(p)) = &mut w.background {
                *p = a.convert(*p, &b);
            }
            if let Some(Border::Pixel(p)) = &mut w.border {
                *p = a.convert(*p, &b);
            }
        }
    }
    for g in &mut t.gcs {
        let d = if g.depth == 0 {
            src.root_depth
        } else {
            g.depth
        };
        if let (Some((a, b)), Some(v)) = (convert(d), &mut g.values) {
            v.foreground = a.convert(v.foreground, &b);
            v.background = a.convert(v.background, &b);
        }
    }

    let mut pend = Pending {
        cookies: Vec::new(),
    };
    let root = target.root;

    // --- Colormaps.
    for (c, orig) in t.colormaps.iter().zip(&session.colormaps) {
        let new = c.id;
        let src_depth = src.visual(orig.visual).map(|v| v.depth);
        let dst_depth = target.visual(c.visual).map(|v| v.depth);
        let visual = if c.visual == 0 {
            warn(
                &mut out,
                format!("colormap {new:#x}: visual unknown, using the root visual"),
            );
            root_visual_new
        } else {
            c.visual
        };
        let all = c.alloc_all.unwrap_or(false);
        let alloc = if all {
            xproto::ColormapAlloc::ALL
        } else {
            xproto::ColormapAlloc::NONE
        };
        pend.push(
            "CreateColormap",
            new,
            conn.create_colormap(alloc, new, root, visual)?,
        );
        if all && !c.cells.is_empty() && src_depth != dst_depth {
            warn(
                &mut out,
                format!(
                    "colormap {new:#x}: visual depth {src_depth:?} becomes {dst_depth:?}; cell contents not restored"
                ),
            );
        } else if all && !c.cells.is_empty() {
            let items: Vec<_> = c
                .cells
                .iter()
                .map(|cell| xproto::Coloritem {
                    pixel: cell.pixel,
                    red: cell.rgb[0],
                    green: cell.rgb[1],
                    blue: cell.rgb[2],
                    flags: xproto::ColorFlag::from(cell.flags & 7),
                })
                .collect();
            pend.push("StoreColors", new, conn.store_colors(new, &items)?);
        }
    }

    // --- MIT-SHM segments first: pixmaps made with ShmCreatePixmap are made on them again.
    let mut sink = crate::extensions::Sink::new();
    sink.xi_devices = xi_devices;
    let attached = if opts.attach_shm {
        crate::shm::regen(conn, &t, &mut sink)?
    } else {
        Vec::new()
    };

    // --- Pixmaps with contents.
    let mut scratch_gcs: HashMap<u8, u32> = HashMap::new();
    let mut scratch_pixmaps: Vec<u32> = Vec::new();
    let max_req = conn.maximum_request_bytes();
    for p in &t.pixmaps {
        let depth = depth_map.get(&p.depth).copied().unwrap_or(p.depth);
        // A shared pixmap stays shared where the segment is attached and the server lays the
        // pixels out as the source did: its pixels are the application's memory, no upload.
        let shared = t.shm_pixmaps.iter().find(|x| x.id == p.id).filter(|x| {
            attached.contains(&x.segment)
                && depth == p.depth
                && target.bpp(depth) == src.bpp(p.depth)
                && scanline_pad(&target, depth) == scanline_pad(src, p.depth)
        });
        if let Some(x) = shared {
            pend.push(
                "ShmCreatePixmap",
                p.id,
                conn.shm_create_pixmap(
                    p.id,
                    root,
                    p.width.max(1),
                    p.height.max(1),
                    depth,
                    x.segment,
                    x.offset,
                )?,
            );
            out.stats.shm_pixmaps += 1;
            continue;
        }
        if t.shm_pixmaps.iter().any(|x| x.id == p.id) && !attached.is_empty() {
            warn(
                &mut out,
                format!(
                    "pixmap {:#x}: made with ShmCreatePixmap, recreated as a copy (its segment is not attached here or the pixel layout differs)",
                    p.id
                ),
            );
        }
        pend.push(
            "CreatePixmap",
            p.id,
            conn.create_pixmap(depth, p.id, root, p.width.max(1), p.height.max(1))?,
        );
        let Some(img) = &p.contents else { continue };
        let bpp = target.bpp(depth).unwrap_or(img.bits_per_pixel);
        let pad = target
            .pixmap_formats
            .iter()
            .find(|f| f.depth == depth)
            .map(|f| f.scanline_pad)
            .unwrap_or(32);
        let converted;
        let img = if depth != img.depth || bpp != img.bits_per_pixel || pad != img.scanline_pad {
            let (a, b) = convert(p.depth).unwrap_or((
                depth_layout(src, p.depth).unwrap_or(PixelLayout {
                    red: 0,
                    green: 0,
                    blue: 0,
                }),
                depth_layout(&target, depth).unwrap_or(PixelLayout {
                    red: 0,
                    green: 0,
                    blue: 0,
                }),
            ));
            match convert_image(img, &a, &b, depth, bpp, pad) {
                Some(c) => {
                    converted = c;
                    &converted
                }
                None => {
                    warn(
                        &mut out,
                        format!(
                            "pixmap {:#x}: cannot convert {}-bpp contents to {bpp} bpp; left blank",
                            p.id, img.bits_per_pixel
                        ),
                    );
                    continue;
                }
            }
        } else {
            img
        };
        let gc = match scratch_gcs.get(&depth) {
            Some(&g) => g,
            None => {
                let g = conn.generate_id()?;
                pend.push(
                    "CreateGC(scratch)",
                    g,
                    conn.create_gc(g, p.id, &xproto::CreateGCAux::new().graphics_exposures(0))?,
                );
                scratch_gcs.insert(depth, g);
                g
            }
        };
        put_image_chunked(conn, &mut pend, p.id, gc, img, &target, max_req)?;
        out.stats.pixmap_bytes += img.data.len() as u64;
    }

    // --- Cursors.
    let mut cursor_font = None;
    for c in &t.cursors {
        if let Some(g) = &c.glyph {
            let (sf, mf) = (glyph_fonts[&g.font], glyph_fonts[&g.mask_font]);
            pend.push(
                "CreateGlyphCursor",
                c.id,
                conn.create_glyph_cursor(
                    c.id,
                    sf,
                    mf,
                    g.source_char,
                    g.mask_char,
                    g.fore[0],
                    g.fore[1],
                    g.fore[2],
                    g.back[0],
                    g.back[1],
                    g.back[2],
                )?,
            );
            continue;
        }
        match &c.image {
            Some(CursorImage::Core {
                source,
                mask,
                fore,
                back,
            }) => {
                let (w, h) = (c.width.max(1), c.height.max(1));
                let mut pix = [0u32; 2];
                for (i, bits) in [source, mask].into_iter().enumerate() {
                    let pm = conn.generate_id()?;
                    pend.push(
                        "CreatePixmap(cursor)",
                        pm,
                        conn.create_pixmap(1, pm, root, w, h)?,
                    );
                    let gc = match scratch_gcs.get(&1) {
                        Some(&g) => g,
                        None => {
                            let g = conn.generate_id()?;
                            pend.push(
                                "CreateGC(scratch)",
                                g,
                                conn.create_gc(g, pm, &xproto::CreateGCAux::new())?,
                            );
                            scratch_gcs.insert(1, g);
                            g
                        }
                    };
                    let img = Image {
                        depth: 1,
                        bits_per_pixel: 1,
                        scanline_pad: 32,
                        width: w,
                        height: h,
                        data: bits.clone(),
                    };
                    put_image_chunked(conn, &mut pend, pm, gc, &img, &target, max_req)?;
                    pix[i] = pm;
                    scratch_pixmaps.push(pm);
                }
                pend.push(
                    "CreateCursor",
                    c.id,
                    conn.create_cursor(
                        c.id, pix[0], pix[1], fore[0], fore[1], fore[2], back[0], back[1], back[2],
                        c.x_hot, c.y_hot,
                    )?,
                );
            }
            Some(CursorImage::Argb(pixels)) => {
                create_argb_cursor(
                    conn,
                    &mut pend,
                    &mut scratch_pixmaps,
                    c,
                    pixels,
                    root,
                    max_req,
                    &target,
                    &mut target_formats,
                )?;
            }
            None => {
                let f = match cursor_font {
                    Some(f) => f,
                    None => {
                        let f = conn.generate_id()?;
                        pend.push("OpenFont(cursor)", f, conn.open_font(f, b"cursor")?);
                        cursor_font = Some(f);
                        f
                    }
                };
                warn(
                    &mut out,
                    format!("cursor {:#x}: image unknown, using left_ptr", c.id),
                );
                pend.push(
                    "CreateGlyphCursor(placeholder)",
                    c.id,
                    conn.create_glyph_cursor(c.id, f, f, 68, 69, 0, 0, 0, 0xffff, 0xffff, 0xffff)?,
                );
            }
        }
    }

    // --- Cursor names (XFixesSetCursorName; XFIXES was negotiated above).
    if t.cursors.iter().any(|c| c.name.is_some()) {
        if conn
            .extension_information(x11rb::protocol::xfixes::X11_EXTENSION_NAME)?
            .is_none()
        {
            warn(
                &mut out,
                "the target has no XFIXES extension: cursor names are lost".into(),
            );
        } else {
            use x11rb::protocol::xfixes::ConnectionExt as _;
            for c in &t.cursors {
                if let Some(n) = &c.name {
                    pend.push(
                        "XFixesSetCursorName",
                        c.id,
                        conn.xfixes_set_cursor_name(c.id, n.as_bytes())?,
                    );
                }
            }
        }
    }

    // --- GCs.
    let mut depth_drawables: HashMap<u8, u32> = HashMap::from([(target.root_depth, root)]);
    for g in &t.gcs {
        let sd = if g.depth == 0 {
            src.root_depth
        } else {
            g.depth
        };
        let d = depth_map.get(&sd).copied().unwrap_or(sd);
        let drawable = match depth_drawables.get(&d) {
            Some(&x) => x,
            None => {
                let pm = conn.generate_id()?;
                pend.push(
                    "CreatePixmap(depth)",
                    pm,
                    conn.create_pixmap(d, pm, root, 1, 1)?,
                );
                scratch_pixmaps.push(pm);
                depth_drawables.insert(d, pm);
                pm
            }
        };
        let Some(v) = &g.values else {
            warn(
                &mut out,
                format!("gc {:#x}: values unknown, created with defaults", g.id),
            );
            pend.push(
                "CreateGC",
                g.id,
                conn.create_gc(g.id, drawable, &xproto::CreateGCAux::new())?,
            );
            continue;
        };
        let mut aux = xproto::CreateGCAux::new()
            .function(xproto::GX::from(v.function))
            .plane_mask(v.plane_mask)
            .foreground(v.foreground)
            .background(v.background)
            .line_width(u32::from(v.line_width))
            .line_style(xproto::LineStyle::from(v.line_style))
            .cap_style(xproto::CapStyle::from(v.cap_style))
            .join_style(xproto::JoinStyle::from(v.join_style))
            .fill_style(xproto::FillStyle::from(v.fill_style))
            .fill_rule(xproto::FillRule::from(v.fill_rule))
            .tile_stipple_x_origin(i32::from(v.ts_x))
            .tile_stipple_y_origin(i32::from(v.ts_y))
            .subwindow_mode(xproto::SubwindowMode::from(v.subwindow_mode))
            .graphics_exposures(u32::from(v.graphics_exposures))
            .clip_x_origin(i32::from(v.clip_x))
            .clip_y_origin(i32::from(v.clip_y))
            .arc_mode(xproto::ArcMode::from(v.arc_mode));
        if v.tile != 0 {
            aux = aux.tile(v.tile);
        }
        if v.stipple != 0 {
            aux = aux.stipple(v.stipple);
        }
        if v.font != 0 {
            aux = aux.font(v.font);
        }
        if let Clip::Pixmap(p) = v.clip {
            aux = aux.clip_mask(p);
        }
        if v.dashes == [4, 4] {
            aux = aux.dash_offset(u32::from(v.dash_offset));
        }
        pend.push("CreateGC", g.id, conn.create_gc(g.id, drawable, &aux)?);
        if v.dashes != [4, 4] && !v.dashes.is_empty() {
            pend.push(
                "SetDashes",
                g.id,
                conn.set_dashes(g.id, v.dash_offset, &v.dashes)?,
            );
        }
        if let Clip::Rectangles { ordering, rects } = &v.clip {
            let r: Vec<_> = rects
                .iter()
                .map(|&(x, y, width, height)| xproto::Rectangle {
                    x,
                    y,
                    width,
                    height,
                })
                .collect();
            pend.push(
                "SetClipRectangles",
                g.id,
                conn.set_clip_rectangles(
                    xproto::ClipOrdering::from(*ordering),
                    g.id,
                    v.clip_x,
                    v.clip_y,
                    &r,
                )?,
            );
        }
    }

    // --- Windows, parent-first in stacking order, with properties.
    let ours: std::collections::HashSet<u32> = t.windows.iter().map(|w| w.id).collect();
    let order = tree_order(&t.windows, root);
    for &i in &order {
        let w = &t.windows[i];
        let parent = if w.parent == root || ours.contains(&w.parent) {
            w.parent
        } else {
            warn(
                &mut out,
                format!("window {:#x}: parent {:#x} is not the application's (window manager frame?); created on the root", w.id, w.parent),
            );
            root
        };
        let mut aux = xproto::CreateWindowAux::new()
            .win_gravity(xproto::Gravity::from(w.win_gravity))
            .override_redirect(u32::from(w.override_redirect))
            .event_mask(xproto::EventMask::from(w.event_mask))
            .do_not_propogate_mask(xproto::EventMask::from(u32::from(w.do_not_propagate_mask)));
        if let Some(c) = w.cursor {
            if c != 0 {
                aux = aux.cursor(c);
            }
        }
        let (depth, visual) = if w.class == 2 {
            (0, 0)
        } else {
            aux = aux
                .bit_gravity(xproto::Gravity::from(w.bit_gravity))
                .backing_store(xproto::BackingStore::from(w.backing_store))
                .backing_planes(w.backing_planes)
                .backing_pixel(w.backing_pixel)
                .save_under(u32::from(w.save_under));
            match w.background {
                Some(Background::None) | None => {}
                Some(Background::ParentRelative) => {
                    aux = aux.background_pixmap(xproto::BackPixmap::PARENT_RELATIVE)
                }
                Some(Background::Pixel(p)) => aux = aux.background_pixel(p),
                Some(Background::Pixmap(p)) => aux = aux.background_pixmap(p),
            }
            match w.border {
                Some(Border::CopyFromParent) | None => {}
                Some(Border::Pixel(p)) => aux = aux.border_pixel(p),
                Some(Border::Pixmap(p)) => aux = aux.border_pixmap(p),
            }
            let depth = depth_map.get(&w.depth).copied().unwrap_or(w.depth);
            let visual_ok = target.visual(w.visual).is_some_and(|v| v.depth == depth);
            let visual = if visual_ok { w.visual } else { root_visual_new };
            let cmap_visual = if w.colormap == target.default_colormap {
                Some(root_visual_new)
            } else {
                t.colormaps
                    .iter()
                    .find(|c| c.id == w.colormap)
                    .map(|c| c.visual)
            };
            if w.colormap != 0 {
                if cmap_visual == Some(visual) {
                    aux = aux.colormap(w.colormap);
                } else {
                    warn(
                        &mut out,
                        format!("window {:#x}: colormap {:#x} does not fit its visual on the target; using CopyFromParent", w.id, w.colormap),
                    );
                }
            }
            (depth, visual)
        };
        if w.class != 2 && w.background.is_none() {
            warn(
                &mut out,
                format!("window {:#x}: background unknown, left as None", w.id),
            );
        }
        pend.push(
            "CreateWindow",
            w.id,
            conn.create_window(
                depth,
                w.id,
                parent,
                w.x,
                w.y,
                w.width.max(1),
                w.height.max(1),
                w.border_width,
                xproto::WindowClass::from(w.class),
                visual,
                &aux,
            )?,
        );
        for p in &w.properties {
            let data = from_le_items(&p.data, p.format);
            let len = match p.format {
                16 => data.len() / 2,
                32 => data.len() / 4,
                _ => data.len(),
            } as u32;
            pend.push(
                "ChangeProperty",
                w.id,
                conn.change_property(
                    xproto::PropMode::REPLACE,
                    w.id,
                    p.name,
                    p.type_,
                    p.format,
                    len,
                    &data,
                )?,
            );
        }
    }

    // --- GLX contexts and windows of a direct-rendering client (after the windows).
    let glx = crate::glx::regenerate(
        conn,
        &t,
        glx_asked,
        opts.screen as u32,
        target.image_byte_order == 1,
    )?;
    for (what, id, c) in glx.checks {
        pend.push(what, id, c);
    }
    for w in glx.warnings {
        warn(&mut out, w);
    }
    out.xid_map.extend(glx.fbconfig_map);
    // --- Present event selections (after the windows).
    let (checks, warnings) = crate::present::regenerate(conn, &t)?;
    for (what, id, c) in checks {
        pend.push(what, id, c);
    }
    for w in warnings {
        warn(&mut out, w);
    }

    // --- DOUBLE-BUFFER back buffers: the same names on the new windows, before the pictures
    // and GCs that draw into them; contents uploaded once per window (names share a buffer).
    if !t.dbe_buffers.is_empty() {
        if conn
            .extension_information(x11rb::protocol::dbe::X11_EXTENSION_NAME)?
            .is_none()
        {
            warn(
                &mut out,
                format!(
                    "the target has no DOUBLE-BUFFER extension: {} back buffer(s) not recreated",
                    t.dbe_buffers.len()
                ),
            );
        } else {
            use x11rb::protocol::dbe::ConnectionExt as _;
            let depth_of: HashMap<u32, u8> = t.windows.iter().map(|w| (w.id, w.depth)).collect();
            for b in &t.dbe_buffers {
                pend.push(
                    "DbeAllocateBackBufferName",
                    b.id,
                    conn.dbe_allocate_back_buffer(b.window, b.id, b.swap_action)?,
                );
            }
            for b in &t.dbe_buffers {
                let Some(img) = &b.contents else { continue };
                let Some(&src_depth) = depth_of.get(&b.window) else {
                    continue;
                };
                let depth = depth_map.get(&src_depth).copied().unwrap_or(src_depth);
                let bpp = target.bpp(depth).unwrap_or(img.bits_per_pixel);
                let pad = target
                    .pixmap_formats
                    .iter()
                    .find(|f| f.depth == depth)
                    .map(|f| f.scanline_pad)
                    .unwrap_or(32);
                let converted;
                let img =
                    if depth != img.depth || bpp != img.bits_per_pixel || pad != img.scanline_pad {
                        let conv = convert(src_depth)
                            .and_then(|(a, c)| convert_image(img, &a, &c, depth, bpp, pad));
                        match conv {
                            Some(c) => {
                                converted = c;
                                &converted
                            }
                            None => {
                                warn(
                                    &mut out,
                                    format!(
                                        "dbe back buffer {:#x}: contents not converted; left blank",
                                        b.id
                                    ),
                                );
                                continue;
                            }
                        }
                    } else {
                        img
                    };
                let gc = conn.generate_id()?;
                pend.push(
                    "CreateGC(back buffer)",
                    gc,
                    conn.create_gc(
                        gc,
                        b.window,
                        &xproto::CreateGCAux::new().graphics_exposures(0),
                    )?,
                );
                put_image_chunked(conn, &mut pend, b.id, gc, img, &target, max_req)?;
                pend.push("FreeGC(back buffer)", gc, conn.free_gc(gc)?);
                out.stats.pixmap_bytes += img.data.len() as u64;
            }
        }
    }

    // --- Extension state: versions, shapes, RENDER, XFIXES, DAMAGE, SYNC, XInput 2.
    crate::extensions::regen_shapes(conn, &t, &mut sink)?;
    let orig_drawable: HashMap<u32, u32> = t
        .pictures
        .iter()
        .zip(&session.pictures)
        .map(|(n, o)| (n.id, o.drawable))
        .collect();
    out.xi_device_map = crate::extensions::regen_resources(conn, &t, &orig_drawable, &mut sink)?;
    crate::grabs::regen(conn, &t, &mut sink)?;
    pend.cookies.append(&mut sink.hard);
    for w in std::mem::take(&mut sink.warnings) {
        warn(&mut out, w);
    }

    // --- Selections, mapping, focus.
    if opts.restore_selections {
        for s in &t.selections {
            pend.push(
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
                pend.push("MapWindow", w.id, conn.map_window(w.id)?);
            }
        }
    }
    if let Some(f) = &t.focus {
        let viewable = viewable(&t, f.window, root);
        if managed {
            tracing::debug!(
                window = f.window,
                "focus left to the target's window manager"
            );
        } else if opts.map_windows && viewable {
            pend.push(
                "SetInputFocus",
                f.window,
                conn.set_input_focus(
                    xproto::InputFocus::from(f.revert_to),
                    f.window,
                    x11rb::CURRENT_TIME,
                )?,
            );
        } else if viewable {
            out.pending_focus = Some((f.window, f.revert_to));
        }
    }

    // Scratch resources go away; the cursors and GCs keep what they need.
    for (_, g) in scratch_gcs {
        pend.push("FreeGC(scratch)", g, conn.free_gc(g)?);
    }
    for p in scratch_pixmaps {
        pend.push("FreePixmap(scratch)", p, conn.free_pixmap(p)?);
    }
    for (_, f) in glyph_fonts {
        pend.push("CloseFont(glyph)", f, conn.close_font(f)?);
    }
    if let Some(f) = cursor_font {
        pend.push("CloseFont(cursor)", f, conn.close_font(f)?);
    }
    for u in &session.unknown {
        if u.contains("not modelled") {
            warn(&mut out, format!("not recreated: {u}"));
        }
    }

    out.stats.requests = pend.cookies.len() + session.atoms.len() + session.fonts.len();
    // One round trip: every request sent has been processed when this answer comes (the
    // checks below then need none, and the caller may stop this client at once).
    let synced = conn.get_input_focus()?.reply();
    let mut failed = Vec::new();
    for (what, id, c) in negotiated_soft.into_iter().chain(sink.soft) {
        if let Err(e) = c.check() {
            warn(&mut out, format!("{what}({id:#x}) failed, state lost: {e}"));
        }
    }
    for (what, id, c) in pend.cookies {
        if let Err(e) = c.check() {
            failed.push(format!("{what}({id:#x}): {e}"));
        }
    }
    out.stats.elapsed = t0.elapsed();
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
        out.stats.pixmap_bytes,
        out.stats.shm_pixmaps,
        out.stats.elapsed
    );
    Ok(out)
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

/// Little-endian property items to the connection's (native) order.
fn from_le_items(data: &[u8], format: u8) -> Vec<u8> {
    let mut d = data.to_vec();
    if cfg!(target_endian = "big") {
        match format {
            16 => d.chunks_exact_mut(2).for_each(|c| c.swap(0, 1)),
            32 => d.chunks_exact_mut(4).for_each(|c| c.reverse()),
            _ => {}
        }
    }
    d
}

/// PutImage in row bands that fit the server's maximum request length.
/// Scanline pad of `depth`'s image format on a server (32 when it has none).
fn scanline_pad(s: &SetupFacts, depth: u8) -> u8 {
    s.pixmap_formats
        .iter()
        .find(|f| f.depth == depth)
        .map(|f| f.scanline_pad)
        .unwrap_or(32)
}

/// The pixel value of an image whose every pixel has the same value (8, 16 or 32 bits per
/// pixel, little-endian data as captured; bits above the depth ignored).
fn uniform_pixel(img: &Image) -> Option<u32> {
    let bytes = match img.bits_per_pixel {
        8 => 1,
        16 => 2,
        32 => 4,
        _ => return None,
    };
    let (w, h) = (usize::from(img.width), usize::from(img.height));
    if w == 0 || h == 0 || img.depth == 0 {
        return None;
    }
    let mask = if img.depth >= 32 {
        u32::MAX
    } else {
        (1u32 << img.depth) - 1
    };
    let stride = img.stride();
    let value = |px: &[u8]| {
        let mut b = [0u8; 4];
        b[..bytes].copy_from_slice(px);
        u32::from_le_bytes(b) & mask
    };
    let first = value(img.data.get(..bytes)?);
    for y in 0..h {
        let row = img.data.get(y * stride..y * stride + w * bytes)?;
        if !row.chunks_exact(bytes).all(|px| value(px) == first) {
            return None;
        }
    }
    Some(first)
}

fn put_image_chunked<'c, C: Connection>(
    conn: &'c C,
    pend: &mut Pending<'c, C>,
    drawable: u32,
    gc: u32,
    img: &Image,
    target: &SetupFacts,
    max_req: usize,
) -> Result<(), RegenError> {
    // A picture of one colour goes as a fill: a few bytes instead of the whole image (issue
    // 15: bytes matter on a link).
    if let Some(pixel) = uniform_pixel(img) {
        pend.push(
            "ChangeGC(fill)",
            drawable,
            conn.change_gc(gc, &xproto::ChangeGCAux::new().foreground(pixel))?,
        );
        pend.push(
            "PolyFillRectangle(uniform image)",
            drawable,
            conn.poly_fill_rectangle(
                drawable,
                gc,
                &[xproto::Rectangle {
                    x: 0,
                    y: 0,
                    width: img.width,
                    height: img.height,
                }],
            )?,
        );
        return Ok(());
    }
    let stride = img.stride().max(1);
    let rows = ((max_req.saturating_sub(64)) / stride).clamp(1, usize::from(img.height.max(1)));
    let mut y = 0usize;
    let h = usize::from(img.height);
    while y < h {
        let n = rows.min(h - y);
        let Some(band) = img.data.get(y * stride..(y + n) * stride) else {
            break;
        };
        let band = if target.image_byte_order == 1 {
            let mut b = band.to_vec();
            crate::capture::swap_pixels(&mut b, img.bits_per_pixel);
            std::borrow::Cow::Owned(b)
        } else {
            std::borrow::Cow::Borrowed(band)
        };
        pend.push(
            "PutImage",
            drawable,
            conn.put_image(
                xproto::ImageFormat::Z_PIXMAP,
                drawable,
                gc,
                img.width,
                n as u16,
                0,
                y as i16,
                0,
                img.depth,
                &band,
            )?,
        );
        y += n;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn create_argb_cursor<'c, C: Connection>(
    conn: &'c C,
    pend: &mut Pending<'c, C>,
    scratch_pixmaps: &mut Vec<u32>,
    c: &Cursor,
    pixels: &[u32],
    root: u32,
    max_req: usize,
    target: &SetupFacts,
    known: &mut Option<render::QueryPictFormatsReply>,
) -> Result<(), RegenError> {
    if known.is_none() {
        *known = Some(
            conn.render_query_pict_formats()?
                .reply()
                .map_err(|source| RegenError::Reply {
                    what: "RenderQueryPictFormats".into(),
                    source,
                })?,
        );
    }
    let Some(formats) = known.as_ref() else {
        return Err(RegenError::Unsupported(
            "RENDER picture formats unknown".into(),
        ));
    };
    let argb = formats
        .formats
        .iter()
        .find(|f| {
            f.depth == 32
                && f.direct.alpha_mask == 0xff
                && f.direct.alpha_shift == 24
                && f.direct.red_shift == 16
                && f.direct.green_shift == 8
        })
        .ok_or_else(|| {
            RegenError::Unsupported("no ARGB32 picture format for an ARGB cursor".into())
        })?;
    let (w, h) = (c.width.max(1), c.height.max(1));
    let pm = conn.generate_id()?;
    pend.push(
        "CreatePixmap(cursor)",
        pm,
        conn.create_pixmap(32, pm, root, w, h)?,
    );
    scratch_pixmaps.push(pm);
    let gc = conn.generate_id()?;
    pend.push(
        "CreateGC(cursor)",
        gc,
        conn.create_gc(gc, pm, &xproto::CreateGCAux::new())?,
    );
    let img = Image {
        depth: 32,
        bits_per_pixel: 32,
        scanline_pad: 32,
        width: w,
        height: h,
        data: pixels.iter().flat_map(|p| p.to_le_bytes()).collect(),
    };
    put_image_chunked(conn, pend, pm, gc, &img, target, max_req)?;
    let pic = conn.generate_id()?;
    pend.push(
        "CreatePicture(cursor)",
        pic,
        conn.render_create_picture(pic, pm, argb.id, &render::CreatePictureAux::new())?,
    );
    pend.push(
        "CreateCursor(ARGB)",
        c.id,
        conn.render_create_cursor(c.id, pic, c.x_hot, c.y_hot)?,
    );
    pend.push("FreePicture(cursor)", pic, conn.render_free_picture(pic)?);
    pend.push("FreeGC(cursor)", gc, conn.free_gc(gc)?);
    Ok(())
}

/// Find the font on the target closest to `f` by least squares over its metrics. Candidates
/// are the fonts with the same charset registry/encoding (when the XLFD names one); slant,
/// weight and spacing differences add a penalty. Returns the name and distance.
pub fn closest_font(conn: &impl Connection, f: &Font) -> Result<Option<(String, f64)>, RegenError> {
    let xlfd = f.xlfd.as_deref().or(f.name.as_deref()).unwrap_or("");
    let fields: Vec<&str> = xlfd.split('-').collect();
    let pattern = if fields.len() == 15 {
        format!("-*-*-*-*-*-*-*-*-*-*-*-*-{}-{}", fields[13], fields[14])
    } else {
        "*".to_string()
    };
    let m = &f.metrics;
    let key = |c: &FontMetrics| -> [f64; 8] {
        [
            f64::from(c.font_ascent),
            f64::from(c.font_descent),
            f64::from(c.max_bounds.character_width),
            f64::from(c.min_bounds.character_width),
            f64::from(c.max_bounds.ascent),
            f64::from(c.max_bounds.descent),
            f64::from(c.min_bounds.left_side_bearing),
            f64::from(c.max_bounds.right_side_bearing),
        ]
    };
    let want = key(m);
    let field = |name: &str, i: usize| name.split('-').nth(i).map(str::to_ascii_lowercase);
    let mut best: Option<(String, f64)> = None;
    for r in conn.list_fonts_with_info(4000, pattern.as_bytes())? {
        let r = r.map_err(|source| RegenError::Reply {
            what: format!("ListFontsWithInfo({pattern:?})"),
            source,
        })?;
        let name = String::from_utf8_lossy(&r.name).into_owned();
        let cm = FontMetrics {
            min_bounds: ci(r.min_bounds),
            max_bounds: ci(r.max_bounds),
            font_ascent: r.font_ascent,
            font_descent: r.font_descent,
            ..Default::default()
        };
        // Scalable fonts report zero metrics here; they can't be compared.
        if cm.max_bounds.character_width == 0 {
            continue;
        }
        let have = key(&cm);
        let mut d: f64 = want.iter().zip(have).map(|(a, b)| (a - b) * (a - b)).sum();
        for (i, pen) in [(3usize, 4.0), (4, 4.0), (11, 2.0)] {
            if fields.len() == 15 && field(&name, i) != Some(fields[i].to_ascii_lowercase()) {
                d += pen;
            }
        }
        if best.as_ref().is_none_or(|(_, bd)| d < *bd) {
            best = Some((name, d));
        }
    }
    Ok(best)
}

fn ci(c: xproto::Charinfo) -> CharInfo {
    CharInfo {
        left_side_bearing: c.left_side_bearing,
        right_side_bearing: c.right_side_bearing,
        character_width: c.character_width,
        ascent: c.ascent,
        descent: c.descent,
        attributes: c.attributes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(depth: u8, bpp: u8, width: u16, height: u16, data: Vec<u8>) -> Image {
        Image {
            depth,
            bits_per_pixel: bpp,
            scanline_pad: 32,
            width,
            height,
            data,
        }
    }

    #[test]
    fn uniform_images_are_told_by_their_pixels_not_their_padding() {
        // 3×2 at 32 bpp, depth 24: the unused top byte differs, the pixels do not.
        let mut d = Vec::new();
        for i in 0..6u8 {
            d.extend_from_slice(&[0x11, 0x22, 0x33, i]);
        }
        assert_eq!(uniform_pixel(&img(24, 32, 3, 2, d.clone())), Some(0x332211));
        d[4 * 4] = 0x12;
        assert_eq!(uniform_pixel(&img(24, 32, 3, 2, d)), None);
        // 8 bpp rows padded to 4 bytes: the padding may hold anything.
        let d = vec![7, 7, 7, 0xff, 7, 7, 7, 0x00];
        assert_eq!(uniform_pixel(&img(8, 8, 3, 2, d)), Some(7));
        // 1 bpp is not judged (sent as an image).
        assert_eq!(uniform_pixel(&img(1, 1, 8, 1, vec![0, 0, 0, 0])), None);
        // An image shorter than its geometry is not uniform.
        assert_eq!(uniform_pixel(&img(24, 32, 3, 2, vec![0; 8])), None);
    }
}
