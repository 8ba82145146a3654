//! `guievict move --all DISPLAY --display FROM`, `detach --all --display FROM`,
//! `attach --all DISPLAY`, `replicate --all DISPLAY --display FROM` and `snapshot --all --display FROM --save DIR` (a session file per
//! app plus `manifest.json`): every hijacked app of a display (for attach: every detached app of
//! the user) in one command — the whole desktop but its window manager. The display's clients
//! flow in from `guievict list`'s X-Resource listing; the window manager is the client whose
//! top-level windows hold other clients' windows (frames) and stays; the apps' processes are
//! held together (`GroupHold`, as for one multi-process app), moved in parallel (one thread
//! per process, each a `Move` control request), and either all land or those that did are put
//! back on FROM. Afterwards the apps' top-level windows are restacked on the target in the
//! order their apps had on FROM, so the desktop keeps its stacking; positions are carried by
//! each move.

use crate::cmd_clients::{self, Listing};
use crate::groupop::{call, output_group, GroupHold, Part};
use anyhow::{bail, Context, Result};
use guievict_hijack::control::{Request, Response, XAuth};
use std::collections::BTreeMap;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConfigureWindowAux, ConnectionExt as _, StackMode};

/// Resource-ID bases of the window managers of the display behind `conn`: clients owning a
/// top-level window that holds a window of another client (a frame).
fn window_managers(conn: &impl Connection) -> Result<Vec<u32>> {
    let mask = conn.setup().resource_id_mask;
    let mut wms = Vec::new();
    for screen in &conn.setup().roots {
        for w in conn.query_tree(screen.root)?.reply()?.children {
            let Ok(t) = conn.query_tree(w)?.reply() else {
                continue;
            };
            if t.children.iter().any(|c| c & !mask != w & !mask) && !wms.contains(&(w & !mask)) {
                wms.push(w & !mask);
            }
        }
    }
    Ok(wms)
}

fn parse_base(s: &str) -> u32 {
    u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or(0)
}

/// The apps to move (PIDs, bottom-most first in FROM's stacking order) and the window
/// managers left behind.
fn apps_of(l: &Listing, wms: &[u32], mask: u32) -> (Vec<u32>, Vec<u32>) {
    let mut apps: Vec<(usize, u32)> = Vec::new();
    let mut left = Vec::new();
    for (i, c) in l.clients.iter().enumerate() {
        let Some(pid) = c.pid else { continue };
        if c.is_self || !c.hijacked || apps.iter().any(|(_, p)| *p == pid) {
            continue;
        }
        if wms.contains(&(parse_base(&c.client) & !mask)) {
            left.push(pid);
            continue;
        }
        apps.push((i, pid));
    }
    (apps.into_iter().map(|(_, p)| p).collect(), left)
}

/// Stacking rank of each app on the display behind `conn`: the position of its topmost
/// window among the root's children (a framed window counts at its frame's position).
fn stacking(conn: &impl Connection, pids: &BTreeMap<u32, u32>) -> Result<Vec<u32>> {
    let mask = conn.setup().resource_id_mask;
    let mut order: Vec<u32> = Vec::new();
    let root = conn.setup().roots[0].root;
    for w in conn.query_tree(root)?.reply()?.children {
        let mut bases = vec![w & !mask];
        if let Ok(t) = conn.query_tree(w)?.reply() {
            bases.extend(t.children.iter().map(|c| c & !mask));
        }
        for b in bases {
            if let Some(&pid) = pids.get(&b) {
                order.retain(|p| *p != pid);
                order.push(pid);
            }
        }
    }
    Ok(order)
}

/// The apps of a display as `--all` sees them.
struct Desktop {
    /// The display's name.
    from: String,
    /// The clients of the display.
    listing: Listing,
    /// The apps (hijacked, not a window manager), bottom-most first where they have windows.
    order: Vec<u32>,
    /// Window managers left out.
    left: Vec<u32>,
}

/// The hijacked apps of `from` (default $DISPLAY) but its window managers, in stacking order.
/// The display's hijacked apps but its window managers, bottom of the stack first, and the
/// display's name (for `checkpoint --all`).
pub struct Apps {
    /// The display.
    pub from: String,
    /// Their processes, bottom first.
    pub order: Vec<u32>,
}

/// See [`Apps`].
pub fn apps_in_order(from: Option<&str>) -> Result<Apps> {
    let d = desktop(from)?;
    for pid in &d.left {
        eprintln!(
            "guievict: note: the window manager (pid {pid}) stays on {}",
            d.from
        );
    }
    Ok(Apps {
        from: d.from,
        order: d.order,
    })
}

fn desktop(from: Option<&str>) -> Result<Desktop> {
    let listing = cmd_clients::listing(from)?;
    let from = listing.display.clone();
    let (conn, _, _) = crate::xconn::connect(Some(&from))?;
    let mask = conn.setup().resource_id_mask;
    let wms = window_managers(&conn)?;
    let (apps, left) = apps_of(&listing, &wms, mask);
    if apps.is_empty() {
        bail!(
            "no hijacked app on {from} (`guievict protect --display {from}` hijacks them all; \
             `guievict list --display {from}` shows the display's clients)"
        );
    }
    let by_base: BTreeMap<u32, u32> = listing
        .clients
        .iter()
        .filter_map(|c| Some((parse_base(&c.client) & !mask, c.pid?)))
        .filter(|(_, p)| apps.contains(p))
        .collect();
    let mut order = stacking(&conn, &by_base)?;
    order.extend(
        apps.iter()
            .filter(|p| !order.contains(p))
            .copied()
            .collect::<Vec<_>>(),
    );
    Ok(Desktop {
        from,
        listing,
        order,
        left,
    })
}

/// Send `req(pid)` to every process at once (a thread each); each one's answer.
fn in_parallel(
    pids: &[u32],
    req: impl Fn(u32) -> Request,
) -> Vec<(u32, Result<(String, serde_json::Value)>)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = pids
            .iter()
            .map(|&pid| {
                let r = req(pid);
                (pid, s.spawn(move || call(pid, &r)))
            })
            .collect();
        handles
            .into_iter()
            .map(|(pid, h)| {
                let r = h
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("the request to {pid} panicked")));
                (pid, r)
            })
            .collect()
    })
}

/// What `--all` does to each app.
pub enum AllOp {
    /// Move from `--display` to this display.
    Move {
        /// Where to.
        to: String,
        /// Its authority.
        auth: Option<XAuth>,
    },
    /// Detach every app of `--display` (held on the private server, see
    /// [`crate::private::for_detach`]).
    Detach {
        /// `--private`.
        private: bool,
        /// `--in-memory`.
        in_memory: bool,
    },
    /// Show every app of `--display` on this display too (replicas).
    Replicate {
        /// Where to.
        to: String,
        /// Its authority.
        auth: Option<XAuth>,
        /// Input from the replicas is dropped.
        view_only: bool,
    },
    /// Attach every detached app of this user to this display.
    Attach {
        /// Where to.
        to: String,
        /// Its authority.
        auth: Option<XAuth>,
    },
}

/// Every hijacked process of this user whose connections are all detached (held in memory
/// or on the private server).
fn detached_apps() -> Vec<u32> {
    crate::cmd_hijack::hijacked_pids()
        .into_iter()
        .filter(|&pid| {
            matches!(
                crate::cmd_hijack::query(pid, &Request::Status),
                Ok(Response::Status(st))
                    if !st.connections.is_empty()
                        && st.connections.iter().all(|c| c.display.is_none())
            )
        })
        .map(|p| p as u32)
        .collect()
}

/// Run `--all`: `from` is `--display` (default $DISPLAY).
pub fn run_all(from: Option<&str>, op: AllOp, force: bool, json: bool) -> Result<()> {
    let t0 = std::time::Instant::now();
    // `shown`: the apps that had a window on the screen (waited for before restacking).
    let (apps, order, from, shown) = match &op {
        AllOp::Attach { .. } => {
            let apps = detached_apps();
            if apps.is_empty() {
                bail!("no detached app to attach (`guievict list` shows the hijacked processes)");
            }
            (apps.clone(), apps, String::new(), Vec::new())
        }
        AllOp::Move { .. } | AllOp::Detach { .. } | AllOp::Replicate { .. } => {
            let d = desktop(from)?;
            for pid in &d.left {
                eprintln!(
                    "guievict: note: the window manager (pid {pid}) stays on {}",
                    d.from
                );
            }
            let shown: Vec<u32> = d
                .listing
                .clients
                .iter()
                .filter(|c| c.windows.iter().any(|w| w.mapped))
                .filter_map(|c| c.pid)
                .filter(|p| d.order.contains(p))
                .collect();
            (d.order.clone(), d.order, d.from, shown)
        }
    };
    // The private server: for `detach --all` (unless --in-memory), and for apps held there or
    // guarded.
    let server = match &op {
        AllOp::Detach { private, in_memory } => {
            let (server, why) = crate::private::for_detach(*private, *in_memory)?;
            if let Some(why) = why {
                eprintln!(
                    "guievict: note: apps without a guard are held in memory (their requests \
                     queue until attach): the private server could not be started: {why}"
                );
            }
            server
        }
        AllOp::Attach { .. } if apps.iter().any(|&p| crate::cmd_mobility::uses_private(p)) => {
            Some(crate::private::ensure()?)
        }
        AllOp::Attach { .. } | AllOp::Move { .. } | AllOp::Replicate { .. } => None,
    };
    let private = server.as_ref().map(|s| s.request_value());
    let request = |_pid: u32| match &op {
        AllOp::Move { to, auth } => Request::Move {
            display: to.clone(),
            auth: auth.clone(),
            force,
        },
        AllOp::Detach { in_memory, .. } => Request::Detach {
            session_path: None,
            force,
            private: private.clone(),
            // Asked for in memory: also a guarded app (whose guard would take over otherwise).
            in_memory: *in_memory,
        },
        AllOp::Attach { to, auth } => Request::Attach {
            display: to.clone(),
            auth: auth.clone(),
            force,
            private: private.clone(),
        },
        AllOp::Replicate {
            to,
            auth,
            view_only,
        } => Request::Replicate {
            display: to.clone(),
            auth: auth.clone(),
            policy: if *view_only {
                guievict_hijack::control::InputPolicy::ViewOnly
            } else {
                guievict_hijack::control::InputPolicy::Interactive
            },
        },
    };
    let undo = |_pid: u32| match &op {
        AllOp::Move { .. } => Request::Move {
            display: from.clone(),
            auth: None,
            force: true,
        },
        AllOp::Detach { .. } => Request::Attach {
            display: from.clone(),
            auth: None,
            force: true,
            private: None,
        },
        AllOp::Attach { .. } => Request::Detach {
            session_path: None,
            force: true,
            private: private.clone(),
            in_memory: false,
        },
        AllOp::Replicate { to, .. } => Request::Unreplicate {
            display: to.clone(),
        },
    };

    let hold = GroupHold::take(&apps);
    let results = in_parallel(&apps, request);
    let (ok, failed): (Vec<_>, Vec<_>) = results.into_iter().partition(|(_, r)| r.is_ok());
    if !failed.is_empty() {
        // All or none: the apps already done are put back, in parallel.
        let done: Vec<u32> = ok.iter().map(|(pid, _)| *pid).collect();
        let back: Vec<String> = in_parallel(&done, undo)
            .into_iter()
            .map(|(pid, r)| match r {
                Ok(_) => format!("{pid} put back"),
                Err(e) => format!("{pid} NOT put back: {e:#}"),
            })
            .collect();
        hold.release(&[]);
        let why: Vec<String> = failed
            .into_iter()
            .map(|(pid, r)| {
                format!(
                    "{pid}: {:#}",
                    r.err().unwrap_or_else(|| anyhow::anyhow!("?"))
                )
            })
            .collect();
        bail!(
            "{} of the {} app(s) failed ({}); {}",
            why.len(),
            apps.len(),
            why.join("; "),
            if back.is_empty() {
                "nothing else had changed".to_string()
            } else {
                back.join(", ")
            }
        );
    }
    let mut parts: Vec<Part> = ok
        .into_iter()
        .filter_map(|(pid, r)| r.ok().map(|(msg, report)| Part { pid, msg, report }))
        .collect();
    match &op {
        // Held on the private server: the processes learn each other's IDs there.
        AllOp::Detach { .. } => hold.release(&parts),
        AllOp::Move { to, .. } | AllOp::Attach { to, .. } | AllOp::Replicate { to, .. } => {
            hold.release(&parts);
            restack(to, &order, &shown).context("restacking the windows")?;
        }
    }
    let total = t0.elapsed().as_secs_f64() * 1000.0;
    for p in &mut parts {
        if let Some(m) = p.report.as_object_mut() {
            m.insert("cli_total_ms".into(), serde_json::json!(total));
        }
    }
    crate::groupop::strip_own_ids(&mut parts);
    if !json {
        eprintln!("{} app(s) in {total:.0} ms", parts.len());
    }
    let first = parts.first().map(|p| p.pid).unwrap_or(0);
    output_group(json, first, parts, force)
}

/// Raise the apps' top-level windows on `to`, bottom-most app first, so that the topmost app
/// on the source is the topmost there (each app's own windows keep their order).
fn restack(to: &str, order: &[u32], shown: &[u32]) -> Result<()> {
    let (conn, _, _) = crate::xconn::connect(Some(to))?;
    let mut l = cmd_clients::listing(Some(to))?;
    // Under a window manager a window is shown (framed) only once the manager has handled its
    // MapRequest, and a frame made after the restacking lands on top: wait (up to 2 s) until
    // every app that showed a window before shows one here.
    let root = conn.setup().roots[0].root;
    let managed = conn
        .get_window_attributes(root)?
        .reply()?
        .all_event_masks
        .contains(x11rb::protocol::xproto::EventMask::SUBSTRUCTURE_REDIRECT);
    if managed {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let all_shown = |l: &cmd_clients::Listing| {
            shown.iter().all(|p| {
                l.clients
                    .iter()
                    .any(|c| c.pid == Some(*p) && c.windows.iter().any(|w| w.mapped))
            })
        };
        while !all_shown(&l) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            l = cmd_clients::listing(Some(to))?;
        }
    }
    for pid in order {
        for c in l.clients.iter().filter(|c| c.pid == Some(*pid)) {
            for w in c.windows.iter().filter(|w| w.mapped) {
                let id = parse_base(&w.id);
                conn.configure_window(id, &ConfigureWindowAux::new().stack_mode(StackMode::ABOVE))?;
            }
        }
    }
    conn.get_input_focus()?.reply()?;
    Ok(())
}

/// What `snapshot --all` writes next to the session files: `DIR/manifest.json`.
#[derive(serde::Serialize, serde::Deserialize, Debug)]
pub struct Manifest {
    /// The display the desktop was on.
    pub display: String,
    /// When, seconds since the epoch.
    pub taken_at: u64,
    /// The apps, bottom-most first (the desktop's stacking order).
    pub apps: Vec<ManifestApp>,
    /// Window managers left out.
    pub window_managers: Vec<u32>,
}

/// One app of a [`Manifest`].
#[derive(serde::Serialize, serde::Deserialize, Debug)]
pub struct ManifestApp {
    /// Its process.
    pub pid: u32,
    /// Its command line.
    pub command: Option<String>,
    /// Its session file, relative to the manifest.
    pub session: String,
}

/// Run `snapshot --all --display FROM --save DIR`: every hijacked app of FROM but its window
/// manager captured in parallel, each into `DIR/<pid>.gws`, and `DIR/manifest.json`.
pub fn snapshot_all(from: Option<&str>, dir: &std::path::Path, json: bool) -> Result<()> {
    let t0 = std::time::Instant::now();
    let Desktop {
        from,
        listing,
        order,
        left,
    } = desktop(from)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = std::path::absolute(dir)?;
    let results = in_parallel(&order, |pid| Request::Snapshot {
        path: dir.join(format!("{pid}.gws")),
    });
    let mut parts = Vec::new();
    let mut failed = Vec::new();
    for (pid, r) in results {
        match r {
            Ok((msg, report)) => parts.push(Part { pid, msg, report }),
            Err(e) => failed.push(format!("{pid}: {e:#}")),
        }
    }
    if !failed.is_empty() {
        bail!(
            "snapshot of the desktop of {from} failed for {}",
            failed.join("; ")
        );
    }
    let command_of = |pid: u32| {
        listing
            .clients
            .iter()
            .find(|c| c.pid == Some(pid))
            .and_then(|c| c.command.clone())
    };
    let manifest = Manifest {
        display: from.clone(),
        taken_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        apps: order
            .iter()
            .map(|&pid| ManifestApp {
                pid,
                command: command_of(pid),
                session: format!("{pid}.gws"),
            })
            .collect(),
        window_managers: left,
    };
    let mpath = dir.join("manifest.json");
    std::fs::write(&mpath, serde_json::to_vec_pretty(&manifest)?)
        .with_context(|| format!("writing {}", mpath.display()))?;
    let total = t0.elapsed().as_secs_f64() * 1000.0;
    if json {
        println!(
            "{}",
            serde_json::json!({"manifest": mpath, "apps": manifest.apps, "cli_total_ms": total})
        );
    } else {
        println!(
            "{} app(s) of {from} captured into {} in {total:.0} ms",
            parts.len(),
            dir.display()
        );
    }
    Ok(())
}
