//! Preflight of an attach: whether the target display can host the application at all. What
//! flows through here is evidence that the app depends on an extension guievict cannot stand in
//! for — direct rendering and presentation (GLX, Present, DRI3, DRI2) — and the target's answer
//! to QueryExtension for each of them. Evidence comes from two places: the app's server-side
//! resources of that extension's types, as captured in its window session (a GLX context, a
//! Present event selection), and the client libraries mapped into the process (a process that
//! has loaded `libxcb-present` may send Present requests at any time, e.g. xeyes on every
//! redraw, although it holds no Present resource). A library only counts when the app's
//! original server offered the extension: the app cannot have used what its server lacked.
//!
//! When the target lacks such an extension the attach is refused with a message naming it,
//! before anything is created there; if the GUI was detached from a display (a `move` is a
//! detach followed by an attach), it is put back on that display, so the app keeps running
//! where it was instead of dying on its first request for the missing extension.
//!
//! The same listing of the app's live resources ([`live_resources`]) tells, before a detach,
//! which RANDR event selections the app holds ([`randr_selections`]; `screen.rs` renews them on
//! the new root).

use crate::conn::Conn;
use crate::muxloop::MuxHandle;
use crate::session::{self, Auth, Detached, SessionError};
use guimux::Role;
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use x11rb::connection::RequestConnection as _;
use x11rb::protocol::res::{self, ConnectionExt as _};
use x11rb::protocol::xc_misc::ConnectionExt as _;
use x11rb::protocol::xproto::{ConnectionExt as _, Setup};

/// An extension the app cannot move without, and how to recognise that it depends on it.
struct Critical {
    /// Extension name as QueryExtension knows it.
    name: &'static str,
    /// X-Resource type names of its server-side resources.
    resource_types: &'static [&'static str],
    /// Client libraries (file-name prefixes) that speak it.
    libraries: &'static [&'static str],
}

/// The extensions a move is refused for when the target lacks them. Their state lives in the
/// server and in the GPU (contexts, buffers shared by file descriptor, presentation queues):
/// guievict can neither recreate it on another server nor stand in for it.
const CRITICAL: &[Critical] = &[
    Critical {
        name: "GLX",
        resource_types: &[
            "GLXContext",
            "GLXDrawable",
            "GLXServerIDRes",
            "GLXPixmap",
            "GLXWindow",
            "GLXPbuffer",
        ],
        libraries: &[
            "libGL.so",
            "libGLX.so",
            "libGLX_mesa.so",
            "libGLX_nvidia.so",
            "libxcb-glx.so",
        ],
    },
    Critical {
        name: "Present",
        resource_types: &["PresentEvent"],
        libraries: &["libxcb-present.so"],
    },
    Critical {
        name: "DRI3",
        resource_types: &[],
        libraries: &["libxcb-dri3.so"],
    },
    Critical {
        name: "DRI2",
        resource_types: &["DRI2Drawable"],
        libraries: &["libxcb-dri2.so"],
    },
];

/// Why guievict believes the app depends on an extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// The app owns server resources of the extension's types: (type name, count).
    Resources(Vec<(String, usize)>),
    /// The process has loaded a client library of the extension (file name).
    Library(String),
}

/// One extension the app depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// Extension name.
    pub extension: &'static str,
    /// The strongest evidence found.
    pub evidence: Evidence,
}

impl std::fmt::Display for Dependency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.evidence {
            Evidence::Resources(r) => {
                let list: Vec<String> = r.iter().map(|(t, n)| format!("{n} {t}")).collect();
                write!(
                    f,
                    "the application uses {} (it holds {})",
                    self.extension,
                    list.join(", ")
                )
            }
            Evidence::Library(l) => write!(
                f,
                "the application uses {} (it has loaded {l})",
                self.extension
            ),
        }
    }
}

/// Judge which critical extensions an app depends on, from the type names of its server-side
/// resources, the file names of the libraries mapped into it, and the extensions its original
/// server offered. Pure: the caller gathers the inputs.
pub fn judge<'a>(
    resource_types: impl IntoIterator<Item = &'a str>,
    libraries: &[String],
    offered: &[String],
) -> Vec<Dependency> {
    let types: Vec<&str> = resource_types.into_iter().collect();
    let mut out = Vec::new();
    for c in CRITICAL {
        let mut held: Vec<(String, usize)> = Vec::new();
        for t in c.resource_types {
            let n = types.iter().filter(|x| *x == t).count();
            if n > 0 {
                held.push(((*t).to_string(), n));
            }
        }
        if !held.is_empty() {
            out.push(Dependency {
                extension: c.name,
                evidence: Evidence::Resources(held),
            });
            continue;
        }
        if !offered.iter().any(|o| o == c.name) {
            continue;
        }
        if let Some(lib) = libraries
            .iter()
            .find(|l| c.libraries.iter().any(|p| l.starts_with(p)))
        {
            out.push(Dependency {
                extension: c.name,
                evidence: Evidence::Library(lib.clone()),
            });
        }
    }
    out
}

/// File names of the shared objects mapped into this process (from `/proc/self/maps`).
pub fn mapped_libraries() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    parse_maps(&text)
}

/// File names of the mapped files in a `/proc/<pid>/maps` text, each once.
fn parse_maps(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        // address perms offset dev inode [path]
        let Some(path) = line.split_whitespace().nth(5) else {
            continue;
        };
        if !path.starts_with('/') {
            continue;
        }
        let name = path.rsplit('/').next().unwrap_or(path);
        if !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    }
    out
}

/// The extensions the app's original server offered (the app's view), by name.
fn offered(d: &Detached) -> Vec<String> {
    match &d.prev {
        Some(prev) => prev
            .exts
            .entries
            .iter()
            .filter(|e| e.app.is_some())
            .map(|e| e.name.clone())
            .collect(),
        None => d.view.exts.iter().map(|(n, _)| n.clone()).collect(),
    }
}

/// The critical extensions a detached app depends on.
pub fn dependencies(d: &Detached) -> Vec<Dependency> {
    judge(
        d.session
            .other_resources
            .iter()
            .map(|o| o.type_name.as_str()),
        &mapped_libraries(),
        &offered(d),
    )
}

/// Ask `display` which of `names` it lacks (QueryExtension on a short connection of our own).
pub fn missing_on(
    display: &str,
    auth: Option<&Auth>,
    names: &[&'static str],
) -> Result<Vec<&'static str>, SessionError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let xe = |why: String| SessionError::X {
        stage: "preflight QueryExtension",
        why,
    };
    let (fd, setup) = session::connect_raw(display, auth)?;
    let conn = session::client_over(UnixStream::from(fd), setup)?;
    let cookies = names
        .iter()
        .map(|n| conn.query_extension(n.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| xe(e.to_string()))?;
    let mut out = Vec::new();
    for (n, c) in names.iter().zip(cookies) {
        if !c.reply().map_err(|e| xe(e.to_string()))?.present {
            out.push(*n);
        }
    }
    Ok(out)
}

/// Refuse to put `d` on `display` when the app depends on an extension the target lacks.
/// The message names the extension, the evidence, and the display.
pub fn check(d: &Detached, display: &str, auth: Option<&Auth>) -> Result<(), SessionError> {
    check_known(d, display, auth, &Default::default())
}

/// [`check`] against the target's extension placements learned already (`session::open_on`):
/// no connection of its own; names not among them are asked as [`check`] does.
pub fn check_known(
    d: &Detached,
    display: &str,
    auth: Option<&Auth>,
    known: &crate::viewconn::KnownExtensions,
) -> Result<(), SessionError> {
    let deps = dependencies(d);
    let mut missing = Vec::new();
    let mut ask = Vec::new();
    for n in deps.iter().map(|x| x.extension) {
        match known.get(n) {
            Some(Some(_)) => {}
            Some(None) => missing.push(n),
            None => ask.push(n),
        }
    }
    if !ask.is_empty() {
        missing.extend(missing_on(display, auth, &ask)?);
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(refusal(
        &deps,
        &missing,
        display,
        "nothing was created there",
    ))
}

/// The refusal naming each missing extension and its evidence, and where the app is.
fn refusal(
    deps: &[Dependency],
    missing: &[&'static str],
    display: &str,
    whereabouts: &str,
) -> SessionError {
    let why: Vec<String> = deps
        .iter()
        .filter(|x| missing.contains(&x.extension))
        .map(|x| format!("{x}, which the target display {display} lacks"))
        .collect();
    SessionError::Refused(format!(
        "{}; not moved: guievict cannot carry direct-rendering or presentation state to a server without it ({whereabouts})",
        why.join("; ")
    ))
}

/// At detach (before it): the app's RANDR event selections on its current server, as
/// `RandRClient` session resources (empty when it has none or the server cannot say). Their
/// ID is 0: the server's own number for a selection means nothing on another server.
pub fn randr_selections(h: &MuxHandle, setup: Setup) -> Vec<winsession::model::OtherResource> {
    randr_selections_of(live_resources(h, setup))
}

/// [`randr_selections`] of an app held after its capture: from the resources the capture's
/// GUIEVICT extension listed (no round trip of its own), else asked as before the capture.
pub fn randr_selections_held(
    h: &MuxHandle,
    setup: Setup,
    held: &crate::session::Held,
) -> Vec<winsession::model::OtherResource> {
    match &held.listed {
        Some(listed) => randr_selections_of(Ok(listed.clone())),
        None => randr_selections(h, setup),
    }
}

fn randr_selections_of(
    listed: Result<Vec<(u32, String)>, SessionError>,
) -> Vec<winsession::model::OtherResource> {
    match listed {
        Ok(r) => r
            .into_iter()
            .filter(|(_, t)| t == crate::screen::RANDR_SELECTION)
            .map(|(_, type_name)| winsession::model::OtherResource { id: 0, type_name })
            .collect(),
        Err(e) => {
            tracing::warn!("RANDR selections not known: {e}");
            Vec::new()
        }
    }
}

/// The app's resources on its primary server right now, as (ID, type name): every resource of
/// its X client, including the server-made ones that carry the client's bits (a RANDR event
/// selection is a `RandRClient` there). Asked on an internal client of the app's own
/// connection (so "this client" is the app); the app keeps running. `setup` is the primary's
/// setup as any client sees it.
///
/// Read with the GUIEVICT extension's GetResources when the server has it; else with X-Resource
/// `QueryClientResources`, which gives type names and counts only (the IDs are then 0). Never
/// with X-Resource `QueryResourceBytes`: Xvfb/Xorg 21.1.7 crash on it for clients in some
/// states (xfontsel after "select", gv), taking every client of the display down with them.
pub fn live_resources(h: &MuxHandle, setup: Setup) -> Result<Vec<(u32, String)>, SessionError> {
    let s = h
        .with_engine(|e| e.primary())?
        .ok_or_else(|| SessionError::State("the application is detached".into()))?;
    let xe = |why: String| SessionError::X {
        stage: "listing the application's resources",
        why,
    };
    // One internal client, two round trips: XC-MISC names the client (it hands out IDs of the
    // requesting client, the app), the GUIEVICT extension lists its resources. Both answer
    // for "this client" only, which on an internal client is the app; nothing is created.
    let sock = h.start_internal(s)?;
    let result = (|| {
        let conn = session::client_over(sock, setup)?;
        let range = conn
            .xc_misc_get_xid_range()
            .map_err(|e| xe(e.to_string()))?;
        // The extension's local guard compares with this client's setup: its own base.
        let own = x11rb::connection::Connection::setup(&conn).resource_id_base;
        let listed = winsession::ext::query(&conn, own).map_err(|e| xe(e.to_string()))?;
        let id = range.reply().map_err(|e| xe(e.to_string()))?.start_id;
        if let Some(st) = listed {
            return Ok(st
                .resources
                .iter()
                .map(|r| (r.id, r.kind.as_str().to_string()))
                .collect());
        }
        if conn
            .extension_information(res::X11_EXTENSION_NAME)
            .map_err(|e| xe(e.to_string()))?
            .is_none()
        {
            return Ok(Vec::new());
        }
        let types = conn
            .res_query_client_resources(id)
            .map_err(|e| xe(e.to_string()))?
            .reply()
            .map_err(|e| xe(e.to_string()))?
            .types;
        let cookies = types
            .iter()
            .map(|t| conn.get_atom_name(t.resource_type))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| xe(e.to_string()))?;
        let mut out = Vec::new();
        for (t, c) in types.iter().zip(cookies) {
            let n = c.reply().map_err(|e| xe(e.to_string()))?.name;
            let name = String::from_utf8_lossy(&n).into_owned();
            out.extend((0..t.count).map(|_| (0, name.clone())));
        }
        Ok(out)
    })();
    h.stop_internal()?;
    result
}
/// The extensions the app's original server offered, for an app that is attached now.
fn live_offered(h: &MuxHandle, display: &str) -> Result<Vec<String>, SessionError> {
    let maps = h.with_engine(|e| e.primary().and_then(|p| e.maps_of(p).cloned()))?;
    if let Some(m) = maps {
        return Ok(m
            .exts
            .entries
            .iter()
            .filter(|e| e.app.is_some())
            .map(|e| e.name.clone())
            .collect());
    }
    // Still on its original server: that server's list.
    let xe = |why: String| SessionError::X {
        stage: "preflight ListExtensions",
        why,
    };
    let (fd, setup) = session::connect_raw(display, None)?;
    let conn = session::client_over(UnixStream::from(fd), setup)?;
    let names = conn
        .list_extensions()
        .map_err(|e| xe(e.to_string()))?
        .reply()
        .map_err(|e| xe(e.to_string()))?;
    Ok(names
        .names
        .iter()
        .map(|n| String::from_utf8_lossy(&n.name).into_owned())
        .collect())
}

/// Preflight of a move while the GUI is still on its display (`guievict move` asks this before
/// it detaches): refused, with nothing changed, when an attached connection depends on an
/// extension `display` lacks. Detached connections are judged from their captured sessions.
pub fn check_before_move(
    conns: &[Conn],
    display: &str,
    auth: Option<&Auth>,
) -> Result<(), SessionError> {
    for c in conns {
        let Some(current) = c.display.as_deref() else {
            if let Some(d) = &c.detached {
                check(d, display, auth)?;
            }
            continue;
        };
        let setup = match c.server_setup.clone() {
            Some(s) => s,
            None => session::connect_raw(current, None)?.1,
        };
        let resources = live_resources(&c.handle, setup)?;
        let deps = judge(
            resources.iter().map(|(_, t)| t.as_str()),
            &mapped_libraries(),
            &live_offered(&c.handle, current)?,
        );
        let names: Vec<&'static str> = deps.iter().map(|x| x.extension).collect();
        let missing = missing_on(display, auth, &names)?;
        if !missing.is_empty() {
            return Err(refusal(
                &deps,
                &missing,
                display,
                &format!("the application stays on {current}"),
            ));
        }
    }
    Ok(())
}

/// Where each connection (by the app's descriptor number) was last detached from.
static ORIGINS: Mutex<Vec<(i32, String)>> = Mutex::new(Vec::new());

/// Remember that the connection `app_fd` was detached from `display`, so that a refused attach
/// can put it back there.
pub fn note_origin(app_fd: i32, display: &str) {
    if let Ok(mut o) = ORIGINS.lock() {
        o.retain(|(fd, _)| *fd != app_fd);
        o.push((app_fd, display.to_string()));
    }
}

pub fn origin_of(app_fd: i32) -> Option<String> {
    ORIGINS
        .lock()
        .ok()?
        .iter()
        .find(|(fd, _)| *fd == app_fd)
        .map(|(_, d)| d.clone())
}

/// Preflight of an attach of every detached connection in `conns` to `display`: the first
/// refusal, if any of them depends on an extension the target lacks. `known[i]`: the target's
/// extension placements as connection `i`'s opened target learned them (`session::open_on`;
/// missing: asked on a connection of the check's own). Nothing changes; on a refusal the
/// caller closes what it opened there and calls [`put_back_refused`].
pub fn first_refusal(
    conns: &[Conn],
    display: &str,
    auth: Option<&Auth>,
    known: &[crate::viewconn::KnownExtensions],
) -> Option<SessionError> {
    for (i, c) in conns.iter().enumerate() {
        if let Some(d) = c.detached.as_ref().filter(|_| c.display.is_none()) {
            let r = match known.get(i) {
                Some(k) => check_known(d, display, auth, k),
                None => check(d, display, auth),
            };
            if let Err(e) = r {
                return Some(e);
            }
        }
    }
    None
}

/// After a refused attach to `display`: each detached connection goes back to the display it
/// was detached from (when known and different); returns the refusal, saying where the app is
/// now.
pub fn put_back_refused(conns: &mut [Conn], display: &str, refusal: SessionError) -> SessionError {
    let target = display.to_string();
    tracing::warn!("attach to {target} refused: {refusal}");
    let mut back: Vec<String> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    for c in conns.iter_mut() {
        if c.display.is_some() {
            continue;
        }
        let (Some(d), Some(origin)) = (c.detached.as_ref(), origin_of(c.app_fd)) else {
            continue;
        };
        if origin == display {
            continue;
        }
        match session::attach(&c.handle, &origin, None, d, Role::Primary) {
            Ok((_, setup)) => {
                c.display = Some(origin.clone());
                c.server_setup = Some(setup);
                c.detached = None;
                if !back.contains(&origin) {
                    back.push(origin);
                }
            }
            Err(e) => failed.push(format!("{origin}: {e}")),
        }
    }
    let whereabouts = match (back.is_empty(), failed.is_empty()) {
        (true, true) => "the application stays detached".to_string(),
        (false, true) => format!("the application is back on {}", back.join(", ")),
        (_, false) => format!(
            "putting the application back failed ({}); it stays detached",
            failed.join("; ")
        ),
    };
    SessionError::Refused(format!("{refusal}. {whereabouts}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn resources_are_evidence_even_without_the_library() {
        let d = judge(["WINDOW", "GLXContext", "GLXServerIDRes"], &[], &[]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].extension, "GLX");
        assert_eq!(
            d[0].evidence,
            Evidence::Resources(vec![("GLXContext".into(), 1), ("GLXServerIDRes".into(), 1)])
        );
        assert!(d[0].to_string().contains("1 GLXContext"));
    }

    #[test]
    fn a_library_counts_only_where_the_original_server_offered_the_extension() {
        let libs = s(&[
            "libxcb-present.so.0.0.0",
            "libxcb-dri3.so.0.1.0",
            "libc.so.6",
        ]);
        // Xvfb offers Present but not DRI3.
        let d = judge([], &libs, &s(&["RENDER", "Present", "GLX"]));
        assert_eq!(
            d,
            vec![Dependency {
                extension: "Present",
                evidence: Evidence::Library("libxcb-present.so.0.0.0".into())
            }]
        );
        assert!(judge([], &libs, &s(&["RENDER"])).is_empty());
    }

    #[test]
    fn maps_give_each_file_once() {
        let text = "\
7f00-7f01 r--p 00000000 08:01 123 /usr/lib/x86_64-linux-gnu/libxcb-present.so.0.0.0
7f01-7f02 r-xp 00001000 08:01 123 /usr/lib/x86_64-linux-gnu/libxcb-present.so.0.0.0
7f02-7f03 rw-p 00000000 00:00 0
7ffd-7ffe rw-p 00000000 00:00 0 [stack]
";
        assert_eq!(parse_maps(text), s(&["libxcb-present.so.0.0.0"]));
    }
}
