//! Which processes make up "the application": a PID (or the owner of a window) flows in, the
//! processes that draw that application flow out — the process itself and every descendant
//! with an X connection to the same display (a wrapper script's X-client child, a browser's GPU
//! process), or, for an attach, every descendant whose GUI guievict holds detached. A process
//! already under guievict is asked (its control socket's status); another is inspected through
//! its descriptors (`pidfd_getfd` + `getpeername`), without being touched. The children of a
//! `guievict run` relay are not members: their X traffic already passes through the relay.

use crate::inject;
use anyhow::{bail, Result};
use guievict_hijack::control::{self, Request, Response};
use std::collections::{BTreeMap, BTreeSet};

/// `pid` and all its descendants, parents before children.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(pp) = parent_of(p) {
                children.entry(pp).or_default().push(p);
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            let new: Vec<u32> = c.iter().copied().filter(|c| !out.contains(c)).collect();
            out.extend(new);
        }
        i += 1;
    }
    out
}

/// The parent PID from `/proc/PID/stat` (the field after the parenthesised command name).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_ppid(&stat)
}

fn parse_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Helpers that hold an X connection on an application's behalf but leave its process tree
/// (they daemonise), so a move of the application cannot take them along: GIO/GTK's
/// `dbus-launch --autolaunch`, which keeps the session bus's address on the display.
const DETACHED_HELPERS: &[&str] = &["dbus-launch"];

/// Helpers of [`DETACHED_HELPERS`] of this user, not among `members`, with an X connection to
/// display `display`: `(pid, command name)`. They stay where they are; the CLI says so.
pub fn helpers_left_behind(members: &[u32], display: u32) -> Vec<(u32, String)> {
    let uid = nix::unistd::geteuid().as_raw();
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if members.contains(&p) {
            continue;
        }
        let Ok(comm) = std::fs::read_to_string(format!("/proc/{p}/comm")) else {
            continue;
        };
        let comm = comm.trim();
        if !DETACHED_HELPERS.contains(&comm) {
            continue;
        }
        let mine = {
            use std::os::unix::fs::MetadataExt;
            e.metadata().is_ok_and(|m| m.uid() == uid)
        };
        if !mine {
            continue;
        }
        let on_display = inject::x_fds(p as i32)
            .is_ok_and(|v| v.iter().any(|(_, peer)| peer.display() == display));
        if on_display {
            out.push((p, comm.to_string()));
        }
    }
    out
}

/// What a process is to guievict.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Where its X connections are: display numbers, `None` for a connection guievict holds
    /// detached. Empty: no X connection (or not inspectable).
    pub displays: Vec<Option<u32>>,
    /// A `guievict run` relay: the connections it controls are its children's, whose X
    /// traffic already passes through it.
    pub relay: bool,
}

/// Where a process's X connections are (see [`Seen`]).
pub fn seen(pid: u32) -> Seen {
    // The socket is named after the process's owner (root controls others' apps too).
    let uid = crate::inject::procfs::owner_uid(pid as i32)
        .unwrap_or_else(|_| nix::unistd::geteuid().as_raw());
    for sock in control::socket_candidates(pid, uid) {
        if !sock.exists() {
            continue;
        }
        if let Ok(Response::Status(st)) = control::request(&sock, &Request::Status) {
            return Seen {
                relay: !st.connections.is_empty() && st.connections.iter().all(|c| c.app_fd < 0),
                displays: st
                    .connections
                    .iter()
                    .map(|c| c.display.as_deref().and_then(display_number))
                    .collect(),
            };
        }
    }
    Seen {
        displays: inject::x_fds(pid as i32)
            .map(|v| v.iter().map(|(_, p)| Some(p.display())).collect())
            .unwrap_or_default(),
        relay: false,
    }
}

/// The display number of a display name (`:3`, `:3.0`, `unix:3`, `host:3`).
pub fn display_number(name: &str) -> Option<u32> {
    x11rb_protocol::parse_display::parse_display(Some(name))
        .ok()
        .map(|d| u32::from(d.display))
}

/// What an operation wants of a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// Connections on a display (detach, move): those on the source display.
    OnDisplay,
    /// Connections guievict holds detached (attach).
    Detached,
}

/// The processes of `root`'s application for an operation: `root` first, then its descendants
/// that take part. `display` names the source display (else: `root`'s own, or the one display
/// its descendants are on).
pub fn members(root: u32, display: Option<&str>, want: Want) -> Result<Vec<u32>> {
    let mut all: Vec<(u32, Vec<Option<u32>>)> = Vec::new();
    let mut relays: Vec<u32> = Vec::new();
    for p in tree(root) {
        // Below a `guievict run` relay, X traffic is the relay's already.
        if parent_of(p).is_some_and(|pp| relays.contains(&pp)) {
            relays.push(p);
            continue;
        }
        let s = seen(p);
        if s.relay {
            relays.push(p);
        }
        all.push((p, s.displays));
    }
    select(root, &all, display.and_then(display_number), want)
}

/// Pure part of [`members`]: `all` is (pid, its connections' displays), `root` first.
fn select(
    root: u32,
    all: &[(u32, Vec<Option<u32>>)],
    display: Option<u32>,
    want: Want,
) -> Result<Vec<u32>> {
    let takes = |d: &[Option<u32>], on: Option<u32>| match want {
        Want::Detached => d.iter().any(Option::is_none),
        Want::OnDisplay => d.iter().any(|x| x.is_some() && *x == on),
    };
    let on = match (want, display) {
        (Want::Detached, _) => None,
        (Want::OnDisplay, Some(n)) => Some(n),
        (Want::OnDisplay, None) => {
            let own: BTreeSet<u32> = all
                .iter()
                .find(|(p, _)| *p == root)
                .map(|(_, d)| d.iter().flatten().copied().collect())
                .unwrap_or_default();
            let seen: BTreeSet<u32> = if own.is_empty() {
                all.iter()
                    .flat_map(|(_, d)| d.iter().flatten().copied())
                    .collect()
            } else {
                own
            };
            match seen.len() {
                0 => return Ok(vec![root]),
                1 => seen.into_iter().next(),
                _ => bail!(
                    "the processes of {root} are on several displays ({}): say which with --display",
                    seen.iter().map(|d| format!(":{d}")).collect::<Vec<_>>().join(", ")
                ),
            }
        }
    };
    let mut out: Vec<u32> = all
        .iter()
        .filter(|(_, d)| takes(d, on))
        .map(|(p, _)| *p)
        .collect();
    if out.is_empty() {
        // Nothing to do anywhere: the root alone, so that its own error explains why.
        out.push(root);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppid_is_read_after_the_command_name() {
        assert_eq!(parse_ppid("42 (a (weird) name) S 7 42 42 0"), Some(7));
        assert_eq!(parse_ppid("1 (init) S 0 1 1"), Some(0));
        assert_eq!(parse_ppid("garbage"), None);
    }

    #[test]
    fn a_wrapper_script_stands_for_its_x_client_children() {
        // sh (no X) → xfig (on :1) → helper without X; another child on :2.
        let all = vec![(10, vec![]), (11, vec![Some(1)]), (12, vec![])];
        assert_eq!(select(10, &all, None, Want::OnDisplay).unwrap(), vec![11]);
        let two = vec![(10, vec![]), (11, vec![Some(1)]), (13, vec![Some(2)])];
        assert!(select(10, &two, None, Want::OnDisplay).is_err());
        assert_eq!(
            select(10, &two, Some(2), Want::OnDisplay).unwrap(),
            vec![13]
        );
    }

    #[test]
    fn the_root_display_decides_and_detached_members_are_found_for_attach() {
        let all = vec![
            (20, vec![Some(3)]),
            (21, vec![Some(3), Some(4)]),
            (22, vec![Some(4)]),
            (23, vec![None]),
        ];
        assert_eq!(
            select(20, &all, None, Want::OnDisplay).unwrap(),
            vec![20, 21]
        );
        assert_eq!(select(20, &all, None, Want::Detached).unwrap(), vec![23]);
        // No process with X at all: the root, whose own error will say why.
        assert_eq!(
            select(30, &[(30, vec![])], None, Want::OnDisplay).unwrap(),
            vec![30]
        );
    }
}
