//! Regenerate: a [`Session`] flows in, creation requests flow out on a connection to another
//! server, and the old→new ID and atom maps flow back for guimux. Order: intern atoms and open
//! fonts (one round trip, font substitution where needed), allocate every new ID up front so
//! references translate in one pass, then colormaps, pixmaps with contents, cursors, GCs,
//! windows parent-first in stacking order with properties, selections, and — only if asked —
//! map. All creation requests are pipelined and their errors collected at the end with one
//! sync.
//!
//! This file holds the public types, the context every phase works on (`Regen`: the
//! connection, the target's setup facts, the [`Regenerated`] being filled, the pending
//! creation cookies) and the driver [`regenerate`], which runs the phases in their order:
//! `fonts` (the first round), `ids`, `visuals`, `translate`, `colormaps`,
//! `pixmaps`, `cursors`, `gcs`, `windows`, `ext_state` and `back_buffers`, and
//! `finish` (selections, mapping, focus, the final synchronisation).

mod back_buffers;
mod colormaps;
mod cursors;
mod ext_state;
mod finish;
mod fonts;
mod gcs;
mod ids;
mod pixmaps;
mod translate;
mod visuals;
mod windows;

use crate::capture::setup_facts;
use crate::convert::PixelLayout;
use crate::model::*;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::cookie::VoidCookie;
use x11rb::errors::{ConnectionError, ReplyError, ReplyOrIdError};
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

/// What every phase works on: the connection and the target's facts in, the result and the
/// creation requests still to check out.
struct Regen<'c, C: Connection> {
    conn: &'c C,
    /// The session as captured (source numbers).
    session: &'c Session,
    opts: &'c RegenOptions,
    /// The target screen's setup facts.
    target: SetupFacts,
    out: Regenerated,
    pend: Pending<'c, C>,
    scratch: Scratch,
    /// The target's maximum request length in bytes (known from the pixmaps phase on).
    max_req: usize,
    /// Active grabs sent after mapping, their answers read with the final synchronisation's.
    grabs: Vec<(String, crate::active_grabs::Sent<'c, C>)>,
}

/// Resources made only to build others, freed at the end.
#[derive(Default)]
struct Scratch {
    /// A GC per depth for uploading images.
    gcs: HashMap<u8, u32>,
    /// Cursor bitmaps, ARGB cursor images, drawables of a depth for GCs.
    pixmaps: Vec<u32>,
    /// Fonts of glyph cursors, by name.
    glyph_fonts: BTreeMap<String, u32>,
    /// The "cursor" font for cursors whose image is unknown.
    cursor_font: Option<u32>,
}

impl<C: Connection> Regen<'_, C> {
    /// Log a warning and keep it in the result.
    fn warn(&mut self, msg: String) {
        tracing::warn!("{msg}");
        self.out.warnings.push(msg);
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
    let mut cx = Regen {
        conn,
        session,
        opts,
        target,
        out: Regenerated::default(),
        pend: Pending {
            cookies: Vec::new(),
        },
        scratch: Scratch::default(),
        max_req: 0,
        grabs: Vec::new(),
    };
    // Round 1: fonts and atoms, with every question that needs no answer yet.
    let first = fonts::first_round(&mut cx)?;
    ids::allocate(&mut cx)?;
    let mut nums = visuals::match_numbers(&mut cx, first.formats_asked)?;
    let t = translate::translate(&mut cx, &nums);
    colormaps::create(&mut cx, &t)?;
    // MIT-SHM segments first: pixmaps made with ShmCreatePixmap are made on them again.
    let mut sink = crate::extensions::Sink::new();
    sink.xi_devices = first.xi_devices;
    let attached = if opts.attach_shm {
        crate::shm::regen(conn, &t, &mut sink)?
    } else {
        Vec::new()
    };
    cx.max_req = conn.maximum_request_bytes();
    pixmaps::create(&mut cx, &t, &nums, &attached)?;
    cursors::create(&mut cx, &t, &mut nums)?;
    gcs::create(&mut cx, &t, &nums)?;
    let order = windows::create(&mut cx, &t, &nums)?;
    ext_state::glx_present(&mut cx, &t, first.glx_asked)?;
    back_buffers::create(&mut cx, &t, &nums)?;
    ext_state::resources(&mut cx, &t, &mut sink)?;
    finish::select_map_focus(&mut cx, &t, &order, first.managed)?;
    finish::free_scratch(&mut cx)?;
    finish::sync(cx, first.negotiated_soft, sink, t0)
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
