//! `guievict list --display D`: the X clients of a display, for someone who knows only what is
//! on the screen. The server's client list flows in through X-Resource (`QueryClients` for each
//! client's resource-ID base, `QueryClientIds` with client 0 — every client — for their PIDs;
//! never `QueryResourceBytes` or per-window specs, which crash Xvfb 21.1.7), the window tree
//! flows in through `QueryTree` (top-level windows and the client windows inside window-manager
//! frames) and is matched to clients by resource-ID base; each process's command comes from
//! /proc and its guievict state from its control socket. A table or JSON flows out.

use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::res::{self, ClientIdMask, ClientIdSpec};
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _, MapState, Window};
use x11rb::rust_connection::RustConnection;

/// One window of a client.
#[derive(Serialize, Debug)]
pub struct WindowInfo {
    /// Window ID, `0x…`.
    pub id: String,
    /// Its title (`_NET_WM_NAME`, else `WM_NAME`), if any.
    pub title: Option<String>,
    /// Whether it is mapped (viewable).
    pub mapped: bool,
}

/// One X client of the display.
#[derive(Serialize, Debug)]
pub struct ClientInfo {
    /// The client's resource-ID base, `0x…` (every ID it creates starts there).
    pub client: String,
    /// Its process, when the server knows it (local clients).
    pub pid: Option<u32>,
    /// The process's command line.
    pub command: Option<String>,
    /// Its top-level windows (and client windows inside window-manager frames).
    pub windows: Vec<WindowInfo>,
    /// Whether guievict's library is in the process (its control socket answers).
    pub hijacked: bool,
    /// Where the process's X connections under guievict are now: display names, `null` for a
    /// connection held detached.
    pub connections: Vec<Option<String>>,
    /// This is the `guievict list` command's own connection.
    pub is_self: bool,
}

/// The whole listing.
#[derive(Serialize, Debug)]
pub struct Listing {
    /// The display listed.
    pub display: String,
    /// Its clients, in the server's order.
    pub clients: Vec<ClientInfo>,
}

/// A window's title (`_NET_WM_NAME`, else `WM_NAME`).
pub fn title(conn: &RustConnection, w: Window, net_wm_name: u32, utf8: u32) -> Option<String> {
    for (prop, ty) in [
        (net_wm_name, utf8),
        (AtomEnum::WM_NAME.into(), AtomEnum::STRING.into()),
    ] {
        if let Ok(r) = conn.get_property(false, w, prop, ty, 0, 256).ok()?.reply() {
            if !r.value.is_empty() {
                return Some(String::from_utf8_lossy(&r.value).into_owned());
            }
        }
    }
    None
}

pub(crate) fn command_of(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let words: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    if words.is_empty() {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()
            .map(|s| format!("[{}]", s.trim()))
    } else {
        Some(words.join(" "))
    }
}

/// Every client of the display behind `conn` but the server itself: (resource-ID base with
/// the mask's bits cleared, its PID when the server knows it), in the server's order. Client 0
/// in a `QueryClientIds` spec means every client.
pub(crate) fn client_pids(conn: &RustConnection) -> Result<Vec<(u32, Option<u32>)>> {
    let mask = conn.setup().resource_id_mask;
    let clients = res::query_clients(conn)?.reply()?.clients;
    let ids = res::query_client_ids(
        conn,
        &[ClientIdSpec {
            client: 0,
            mask: ClientIdMask::LOCAL_CLIENT_PID,
        }],
    )?
    .reply()?
    .ids;
    let pid_of: BTreeMap<u32, u32> = ids
        .iter()
        .filter(|i| i.spec.mask.contains(ClientIdMask::LOCAL_CLIENT_PID))
        .filter_map(|i| Some((i.spec.client & !mask, *i.value.first()?)))
        .collect();
    Ok(clients
        .iter()
        .map(|c| c.resource_base & !mask)
        .filter(|b| *b != 0)
        .map(|b| (b, pid_of.get(&b).copied()))
        .collect())
}

/// Collect the listing of `display` (default `$DISPLAY`).
pub fn listing(display: Option<&str>) -> Result<Listing> {
    let (conn, _, name) = crate::xconn::connect(display)?;
    anyhow::ensure!(
        conn.extension_information(res::X11_EXTENSION_NAME)?
            .is_some(),
        "{name} has no X-Resource extension, so its clients cannot be listed; `guievict status` \
         lists the hijacked processes, and `xlsclients -display {name}` the windows' programs"
    );
    let clients = client_pids(&conn).with_context(|| format!("X-Resource on {name}"))?;
    let mask = conn.setup().resource_id_mask;

    // Top-level windows and, below window-manager frames, the client windows in them.
    let net_wm_name = conn.intern_atom(false, b"_NET_WM_NAME")?.reply()?.atom;
    let utf8 = conn.intern_atom(false, b"UTF8_STRING")?.reply()?.atom;
    let mut windows: BTreeMap<u32, Vec<WindowInfo>> = BTreeMap::new();
    for screen in &conn.setup().roots {
        let top = conn.query_tree(screen.root)?.reply()?.children;
        let mut cands: Vec<Window> = top.clone();
        for &w in &top {
            if let Ok(t) = conn.query_tree(w)?.reply() {
                // A frame's children that belong to another client: the framed windows.
                cands.extend(t.children.into_iter().filter(|c| c & !mask != w & !mask));
            }
        }
        for w in cands {
            let Ok(attr) = conn.get_window_attributes(w)?.reply() else {
                continue; // gone meanwhile
            };
            let mapped = attr.map_state == MapState::VIEWABLE;
            let title = title(&conn, w, net_wm_name, utf8);
            // Toolkits keep unmapped untitled helper windows at the top: not what a user sees.
            if mapped || title.is_some() {
                windows.entry(w & !mask).or_default().push(WindowInfo {
                    id: format!("{w:#x}"),
                    title,
                    mapped,
                });
            }
        }
    }
    let me = std::process::id();
    let mut out = Vec::new();
    for (base, pid) in clients {
        let (hijacked, connections) = match pid.and_then(|p| crate::cmd_hijack::socket_of(p as i32))
        {
            Some(sock) => match guievict_hijack::control::request(
                &sock,
                &guievict_hijack::control::Request::Status,
            ) {
                Ok(guievict_hijack::control::Response::Status(st)) => (
                    true,
                    st.connections.into_iter().map(|c| c.display).collect(),
                ),
                _ => (true, Vec::new()),
            },
            None => (false, Vec::new()),
        };
        out.push(ClientInfo {
            client: format!("{base:#x}"),
            pid,
            command: pid.and_then(command_of),
            windows: windows.remove(&base).unwrap_or_default(),
            hijacked,
            connections,
            is_self: pid == Some(me),
        });
    }
    Ok(Listing {
        display: name,
        clients: out,
    })
}

/// `guievict list --display D [--json]`.
pub fn run(display: &str, json: bool) -> Result<()> {
    let mut l = listing(Some(display))?;
    l.clients.retain(|c| !c.is_self);
    if json {
        println!("{}", serde_json::to_string_pretty(&l)?);
        return Ok(());
    }
    println!(
        "{} X client(s) on {} (besides this command):",
        l.clients.len(),
        l.display
    );
    println!(
        "{:>7}  {:<10}  {:<28}  COMMAND",
        "PID", "CLIENT", "GUIEVICT"
    );
    for c in &l.clients {
        let state = if c.hijacked {
            let on: Vec<String> = c
                .connections
                .iter()
                .map(|d| d.clone().unwrap_or_else(|| "detached".into()))
                .collect();
            format!("hijacked, on {}", on.join(","))
        } else {
            "-".into()
        };
        let mut cmd = c.command.clone().unwrap_or_else(|| "?".into());
        if cmd.chars().count() > 60 {
            cmd = cmd.chars().take(59).collect::<String>() + "…";
        }
        println!(
            "{:>7}  {:<10}  {:<28}  {}",
            c.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
            c.client,
            state,
            cmd
        );
        for w in &c.windows {
            println!(
                "{:>7}  window {} {}{}",
                "",
                w.id,
                w.title
                    .as_deref()
                    .map(|t| format!("{t:?}"))
                    .unwrap_or_else(|| "(no title)".into()),
                if w.mapped { "" } else { " (unmapped)" }
            );
        }
    }
    Ok(())
}
