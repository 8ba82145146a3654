//! A control operation over the processes of one application, as a transaction. In: the PIDs
//! and, per process, the control request to send. The processes are held together while it
//! runs ([`GroupHold`]); each request goes out by [`call`] (hijacking first when needed), all
//! or none ([`all_or_none`]: a failure puts the processes already done back where they were,
//! [`undo`]). Out: each process's answer as a [`Part`], printed as one report
//! ([`output_group`]) whose `lost` entries fail the command unless `--force` ([`NotExact`]).

use crate::cmd_mobility::socket_of;
use anyhow::{bail, Result};
use guievict_hijack::control::{self, Request, Response};

/// Send one request; turn the answer into (message, report JSON) or an error.
pub(crate) fn call(pid: u32, req: &Request) -> Result<(String, serde_json::Value)> {
    let path = socket_of(pid)?;
    let resp = match control::request(&path, req) {
        Ok(r) => r,
        Err(e) if !std::path::Path::new(&format!("/proc/{pid}")).exists() => {
            bail!("process {pid} exited during the operation ({e})")
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("talking to process {pid}"))),
    };
    report_of(pid, resp)
}

/// A control answer as (its first line, the JSON report after it), or an error naming the
/// process. The controller puts the human message first and the JSON report on the next line.
pub fn report_of(pid: u32, resp: Response) -> Result<(String, serde_json::Value)> {
    match resp {
        Response::Ok { message } => {
            let (first, rest) = message.split_once('\n').unwrap_or((&message, "null"));
            Ok((
                first.to_string(),
                serde_json::from_str(rest).unwrap_or(serde_json::Value::Null),
            ))
        }
        // `Failed` is every ordinary refusal: the message says it all.
        Response::Error {
            kind: control::ErrorKind::Failed,
            message,
        } => bail!("process {pid}: {message}"),
        Response::Error { kind, message } => bail!("process {pid}: {message} ({kind:?})"),
        Response::Status(_) => bail!("process {pid}: unexpected status answer"),
    }
}

pub(crate) fn output(json: bool, pid: u32, msg: &str, report: serde_json::Value) {
    if json {
        println!(
            "{}",
            serde_json::json!({"pid": pid, "result": msg, "report": report})
        );
    } else {
        let total = report
            .get("total_ms")
            .and_then(|v| v.as_f64())
            .map(|t| format!(" in {t:.1} ms"))
            .unwrap_or_default();
        eprintln!("guievict: pid {pid}: {msg}{total}");
    }
}

/// Part of the GUI was not carried exactly; each loss is on stderr. `main` exits with
/// [`NotExact::EXIT_CODE`].
#[derive(Debug, thiserror::Error)]
#[error("{0} part(s) of the GUI were not carried exactly (listed above); --force accepts that")]
pub struct NotExact(pub usize);

impl NotExact {
    /// Exit status of a command that did its work but not exactly.
    pub const EXIT_CODE: i32 = 3;
}

/// Every `lost` list anywhere in a report (per connection, per step).
fn losses(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("lost", serde_json::Value::Array(a)) => {
                        out.extend(a.iter().filter_map(|s| s.as_str().map(String::from)))
                    }
                    _ => losses(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| losses(x, out)),
        _ => {}
    }
}

/// Print the result, then name on stderr what was not carried exactly; that fails the
/// command unless `force`.
fn output_checked(
    json: bool,
    pid: u32,
    msg: &str,
    report: serde_json::Value,
    force: bool,
) -> Result<()> {
    let mut lost = Vec::new();
    losses(&report, &mut lost);
    lost.sort();
    lost.dedup();
    output(json, pid, msg, report);
    for l in &lost {
        eprintln!("guievict: warning: pid {pid}: not carried exactly: {l}");
    }
    if !lost.is_empty() && !force {
        return Err(NotExact(lost.len()).into());
    }
    Ok(())
}

/// One process's part of a group operation.
pub(crate) struct Part {
    pub(crate) pid: u32,
    pub(crate) msg: String,
    pub(crate) report: serde_json::Value,
}

/// Print a group operation's result: one process as before; several as one report listing
/// each. What was not carried exactly is named and fails the command unless `force`.
pub(crate) fn output_group(json: bool, root: u32, parts: Vec<Part>, force: bool) -> Result<()> {
    if parts.len() == 1 {
        let p = parts.into_iter().next().expect("one part");
        return output_checked(json, p.pid, &p.msg, p.report, force);
    }
    let msg = parts
        .first()
        .map(|p| format!("{} ({} processes)", p.msg, parts.len()))
        .unwrap_or_default();
    let report = serde_json::json!({
        "processes": parts
            .iter()
            .map(|p| serde_json::json!({"pid": p.pid, "result": p.msg, "report": p.report}))
            .collect::<Vec<_>>(),
    });
    output_checked(json, root, &msg, report, force)
}

/// The display each connection of `pid` is on now (`None`: detached).
fn displays_now(pid: u32) -> Vec<Option<String>> {
    let Ok(path) = socket_of(pid) else {
        return Vec::new();
    };
    match control::request(&path, &Request::Status) {
        Ok(Response::Status(st)) => st.connections.into_iter().map(|c| c.display).collect(),
        _ => Vec::new(),
    }
}

/// Carry out a request on each process of a group in turn, all or none. `op` makes the request
/// for the `i`-th process; on a failure, the processes already done are put back: with
/// `back(display it was on)` when given (a process on no display is left as it is), else with
/// a forced detach (an attach is undone by detaching again).
pub(crate) fn all_or_none(
    pids: &[u32],
    op: impl Fn(usize, u32) -> Request,
    back: Option<impl Fn(&str) -> Request>,
) -> Result<Vec<Part>> {
    let mut done: Vec<(u32, Option<String>)> = Vec::new();
    let mut parts = Vec::new();
    for (i, &pid) in pids.iter().enumerate() {
        // Where it was: only needed to put it back there.
        let was = match back {
            Some(_) => displays_now(pid).into_iter().flatten().next(),
            None => None,
        };
        match call(pid, &op(i, pid)) {
            Ok((msg, report)) => {
                done.push((pid, was));
                parts.push(Part { pid, msg, report });
            }
            Err(e) => {
                let put_back = undo(&done, |pid, was| {
                    let req = match (&back, was) {
                        (Some(b), Some(d)) => b(d),
                        (Some(_), None) => return Ok(()),
                        (None, _) => Request::Detach {
                            session_path: None,
                            force: true,
                            private: None,
                            in_memory: false,
                        },
                    };
                    call(pid, &req).map(|_| ())
                });
                // An application of one process: its own message names it already.
                if pids.len() == 1 {
                    return Err(e);
                }
                return Err(e.context(format!("process {pid} of the application{put_back}")));
            }
        }
    }
    Ok(parts)
}

/// Undo the parts of a group operation already done (in reverse order); a text for the error
/// saying what became of them.
fn undo(done: &[(u32, Option<String>)], f: impl Fn(u32, &Option<String>) -> Result<()>) -> String {
    if done.is_empty() {
        return String::new();
    }
    let mut failed = Vec::new();
    for (pid, was) in done.iter().rev() {
        if let Err(e) = f(*pid, was) {
            failed.push(format!("{pid}: {e:#}"));
        }
    }
    let pids: Vec<String> = done.iter().map(|(p, _)| p.to_string()).collect();
    if failed.is_empty() {
        format!(
            "; processes {} of the same application were put back as they were",
            pids.join(", ")
        )
    } else {
        format!(
            "; putting processes {} back failed: {}",
            pids.join(", "),
            failed.join("; ")
        )
    }
}

/// The ID pairs were for the other processes; the printed report stays readable without them.
pub(crate) fn strip_own_ids(parts: &mut [Part]) {
    for p in parts {
        for c in p.report["connections"].as_array_mut().into_iter().flatten() {
            if let Some(m) = c.as_object_mut() {
                m.remove("own_ids");
            }
        }
    }
}

/// Longest a group hold may last per process of the group (the hold ends by itself after
/// that if this command dies); a move of one process takes well under a second.
const HOLD_SECS_PER_PROCESS: u64 = 15;

/// The hold of a group operation (see `Request::GroupHold`): every process of an application
/// of several is held before the first of them is detached or moved, and released — having
/// learnt the others' IDs on the new server — once all are done, or the operation failed.
/// Without it a GPU process goes on drawing into the browser's windows after they left the
/// old server, or into IDs it cannot yet translate on the new one, and Chromium's compositor
/// waits forever for the completion of a frame that failed: the window stays blank.
pub(crate) struct GroupHold {
    token: u64,
    /// The processes held.
    pids: Vec<u32>,
}

impl GroupHold {
    /// Hold every process of `pids` (nothing for a single process). A process that cannot
    /// be held (an older library) is named in a warning; the operation goes on.
    pub(crate) fn take(pids: &[u32]) -> GroupHold {
        let token = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            ^ (u64::from(std::process::id()) << 40)
            | 1;
        let mut held = Vec::new();
        if pids.len() > 1 {
            let secs = 10 + HOLD_SECS_PER_PROCESS * pids.len() as u64;
            for &pid in pids {
                match call(pid, &Request::GroupHold { token, secs }) {
                    Ok(_) => held.push(pid),
                    Err(e) => eprintln!(
                        "guievict: warning: pid {pid} is not held while the application's other processes move: {e:#}"
                    ),
                }
            }
        }
        // Test seam: a `guievict` that stops here long enough to be killed holding the group
        // (survive_server_death::a_killed_cli_releases_its_group_hold_at_once).
        if let Some(ms) = std::env::var("GUIEVICT_TEST_PAUSE_AFTER_HOLD_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            if !held.is_empty() {
                eprintln!("guievict: test seam: holding for {ms} ms");
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
        }
        GroupHold { token, pids: held }
    }

    /// The operation's result; a failure releases the hold first.
    pub(crate) fn during<T>(&self, r: Result<T>) -> Result<T> {
        if r.is_err() {
            self.release(&[]);
        }
        r
    }

    /// End the hold; each process first learns the other processes' resource IDs on their new
    /// server (from the reports' `own_ids`), so that IDs one process uses of another's (a GPU
    /// process drawing into the browser's windows) are translated when its queued requests go
    /// out. Best effort: a failure is a warning (the hold also ends by itself).
    pub(crate) fn release(&self, parts: &[Part]) {
        let all: Vec<(u32, Vec<(u32, u32)>)> =
            parts.iter().map(|p| (p.pid, own_ids_of(p))).collect();
        let mut pids: Vec<u32> = self.pids.clone();
        pids.extend(
            parts
                .iter()
                .map(|p| p.pid)
                .filter(|p| !self.pids.contains(p)),
        );
        if pids.len() < 2 {
            return;
        }
        for pid in pids {
            let pairs: Vec<(u32, u32)> = all
                .iter()
                .filter(|(p, _)| *p != pid)
                .flat_map(|(_, v)| v.iter().copied())
                .collect();
            let token = self.token;
            if let Err(e) = call(pid, &Request::GroupRelease { token, pairs }) {
                eprintln!("guievict: warning: pid {pid}: the application's other processes' IDs were not shared: {e:#}");
            }
        }
    }
}

/// The `(app-view ID, new server ID)` pairs a process's report lists as its own.
fn own_ids_of(p: &Part) -> Vec<(u32, u32)> {
    let mut v = Vec::new();
    for c in p.report["connections"].as_array().into_iter().flatten() {
        for pair in c["own_ids"].as_array().into_iter().flatten() {
            if let (Some(a), Some(s)) = (pair[0].as_u64(), pair[1].as_u64()) {
                v.push((a as u32, s as u32));
            }
        }
    }
    v
}
