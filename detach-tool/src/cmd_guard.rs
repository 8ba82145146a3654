//! `guievict guard` (and the guard of `hijack --guard` and `protect --guard`): a target flows
//! in, resolved to its application's processes as `cmd_mobility` does; the private server is
//! started if needed and each process gets a `Guard` control request naming it; the library's
//! answers flow back as text or JSON.

use crate::cmd_mobility::{group_of, resolve, Target};
use crate::group;
use crate::groupop::{call, output_group, Part};
use anyhow::Result;
use clap::Args;
use guievict_hijack::control::Request;

/// `guievict guard`.
#[derive(Args, Debug)]
pub struct GuardArgs {
    #[command(flatten)]
    target: Target,
}

/// `guievict guard`: a hidden view-only replica of the application's GUI on guievict's private
/// headless server (started on demand). Should the application's X server die, the guard
/// becomes the primary: the app lives on, detached, held there with its exact state, and
/// `guievict attach D` brings it back. Detach then holds it there too.
pub fn guard(a: GuardArgs) -> Result<()> {
    let target = a.target.settled()?;
    let root = resolve(&target)?;
    let pids = group_of(&target, root, group::Want::OnDisplay)?;
    guard_pids(&pids, root, target.json)
}

/// Guard every process of `pids` (see [`guard`]); the private server is held reachable while
/// the requests run.
pub fn guard_pids(pids: &[u32], root: u32, json: bool) -> Result<()> {
    let parts = guard_quiet(pids)?;
    output_group(json, root, parts, true)
}

/// Guard every process of `pids` without printing (see [`guard`]).
fn guard_quiet(pids: &[u32]) -> Result<Vec<Part>> {
    let server = crate::private::ensure()?;
    let private = server.request_value();
    let mut parts = Vec::new();
    for &pid in pids {
        let (msg, report) = call(
            pid,
            &Request::Guard {
                private: private.clone(),
            },
        )?;
        parts.push(Part { pid, msg, report });
    }
    drop(server);
    Ok(parts)
}

/// The guard `hijack` and `protect` make: guard the one process just hijacked — if it is the
/// caller's own. The private server is per user: another user's app (root controls every
/// app) would get a key to the caller's private server and all it holds, so it is refused.
pub fn guard_one_if_own(pid: u32) -> Result<()> {
    let me = nix::unistd::geteuid().as_raw();
    let owner = crate::inject::procfs::owner_uid(pid as i32)?;
    if owner != me {
        anyhow::bail!(
            "process {pid} belongs to uid {owner}: guievict's private server is per user, so \
             the guard is made by its owner (`guievict guard --pid {pid}` as uid {owner})"
        );
    }
    guard_quiet(&[pid]).map(|_| ())
}
