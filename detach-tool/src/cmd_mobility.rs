//! `guievict detach | attach | move | snapshot | replicate | unreplicate | policy`. A target
//! (window, PID) and options flow in; the target is resolved to a process, its control socket is
//! found (hijacking it first when needed), one or two control requests flow out, and the
//! library's answer flows back as text on stderr or JSON on stdout.

use crate::group;
use anyhow::{bail, Context, Result};
use clap::Args;
use guievict_hijack::control::{self, InputPolicy, Request, Response, XAuth};
use std::path::PathBuf;
use x11rb::connection::Connection;
use x11rb::protocol::res::{self, ClientIdMask, ClientIdSpec};
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _};

/// Which process to act on.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// A window of the application: `0x…` or decimal.
    pub window: Option<String>,
    /// The application's process ID.
    #[arg(long, conflicts_with = "window")]
    pub pid: Option<u32>,
    /// A top-level window whose title (WM_NAME / _NET_WM_NAME) matches this regular expression.
    #[arg(long, conflicts_with_all = ["window", "pid"])]
    pub name: Option<String>,
    /// Click the window to act on (like xwininfo).
    #[arg(long, conflicts_with_all = ["window", "pid", "name"])]
    pub pick: bool,
    /// Display the window is on (default: $DISPLAY); for `--pid`, the display whose processes
    /// are meant when the application's processes are on several.
    #[arg(long)]
    pub display: Option<String>,
    /// Act on this one process only. By default the application is every process of its tree
    /// with an X connection to that display (a wrapper script's X-client child, a browser's GPU
    /// process), moved together, all or none.
    #[arg(long)]
    pub only_pid: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `guievict detach`.
#[derive(Args, Debug)]
pub struct DetachArgs {
    #[command(flatten)]
    target: Target,
    /// Also write the window session to this file.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Detach even when part of the GUI cannot be captured exactly (a later attach cannot
    /// bring that part back); refused otherwise, and the app stays where it is.
    #[arg(long)]
    force: bool,
}

/// `guievict attach`.
#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Display to attach to.
    pub to: String,
    #[command(flatten)]
    target: Target,
    /// Xauthority file for the target display (default: this command's $XAUTHORITY, else
    /// ~/.Xauthority; the entry is matched to the display as Xlib does).
    #[arg(long)]
    auth: Option<PathBuf>,
    /// Attach even if the display lacks GLX, Present, DRI3 or DRI2 and the app depends on it
    /// (its requests for that extension then fail there), and exit 0 even when part of the GUI
    /// was not recreated exactly (still named on stderr).
    #[arg(long)]
    force: bool,
}

/// `guievict move`.
#[derive(Args, Debug)]
pub struct MoveArgs {
    /// Display to move to.
    pub to: String,
    #[command(flatten)]
    target: Target,
    /// Xauthority file for the target display (default: this command's $XAUTHORITY, else
    /// ~/.Xauthority; the entry is matched to the display as Xlib does).
    #[arg(long)]
    auth: Option<PathBuf>,
    /// Move even if the display lacks GLX, Present, DRI3 or DRI2 and the app depends on it
    /// (its requests for that extension then fail there), or part of the GUI cannot be carried
    /// exactly (named on stderr; exit 0 all the same).
    #[arg(long)]
    force: bool,
}

/// `guievict snapshot`.
#[derive(Args, Debug)]
pub struct SnapshotArgs {
    #[command(flatten)]
    target: Target,
    /// Session file to write.
    #[arg(long)]
    save: PathBuf,
}

/// `guievict replicate`.
#[derive(Args, Debug)]
pub struct ReplicateArgs {
    /// Display to add.
    pub to: String,
    #[command(flatten)]
    target: Target,
    /// Drop input from that display.
    #[arg(long)]
    view_only: bool,
    /// Xauthority file for that display (default: this command's $XAUTHORITY, else
    /// ~/.Xauthority; the entry is matched to the display as Xlib does).
    #[arg(long)]
    auth: Option<PathBuf>,
}

/// `guievict unreplicate`.
#[derive(Args, Debug)]
pub struct UnreplicateArgs {
    /// Display to remove.
    pub from: String,
    #[command(flatten)]
    target: Target,
}

/// `guievict policy`.
#[derive(Args, Debug)]
pub struct PolicyArgs {
    /// Replica display.
    pub on: String,
    #[command(flatten)]
    target: Target,
    /// Drop input from that display.
    #[arg(long, conflicts_with = "interactive")]
    view_only: bool,
    /// Accept input from that display.
    #[arg(long)]
    interactive: bool,
}

/// Parse `0x1a00004` or decimal.
pub fn parse_window(s: &str) -> Result<u32> {
    let r = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(h, 16)
    } else {
        s.parse()
    };
    r.with_context(|| format!("{s:?} is not a window ID (0x… or decimal)"))
}

/// PID of the client owning `window` on `display` (X-Resource, fallback `_NET_WM_PID`).
pub fn window_to_pid(display: Option<&str>, window: u32) -> Result<u32> {
    let (conn, _) = x11rb::connect(display).context("connecting to the window's display")?;
    let r = res::query_client_ids(
        &conn,
        &[ClientIdSpec {
            client: window,
            mask: ClientIdMask::LOCAL_CLIENT_PID,
        }],
    )?
    .reply();
    if let Ok(r) = r {
        if let Some(pid) = r
            .ids
            .iter()
            .find(|i| i.spec.mask.contains(ClientIdMask::LOCAL_CLIENT_PID))
            .and_then(|i| i.value.first())
        {
            return Ok(*pid);
        }
    }
    let atom = conn.intern_atom(false, b"_NET_WM_PID")?.reply()?.atom;
    let p = conn
        .get_property(false, window, atom, AtomEnum::CARDINAL, 0, 1)?
        .reply()
        .with_context(|| format!("window {window:#x} does not exist"))?;
    if let Some(pid) = p.value32().and_then(|mut v| v.next()) {
        return Ok(pid);
    }
    let _ = conn.flush();
    bail!(
        "cannot tell which process owns window {window:#x} (no X-Resource answer, no _NET_WM_PID)"
    )
}

/// The top-level window (child of a root, or the client window below a WM frame) whose
/// title matches `re`; exactly one must match.
pub fn window_by_name(display: Option<&str>, re: &str) -> Result<u32> {
    let re = regex::Regex::new(re).with_context(|| format!("bad regular expression {re:?}"))?;
    let (conn, _) = x11rb::connect(display).context("connecting to the display")?;
    let net_wm_name = conn.intern_atom(false, b"_NET_WM_NAME")?.reply()?.atom;
    let utf8 = conn.intern_atom(false, b"UTF8_STRING")?.reply()?.atom;
    let mut found = Vec::new();
    for screen in &conn.setup().roots {
        let top = conn.query_tree(screen.root)?.reply()?.children;
        let mut candidates = top.clone();
        // Below a window manager's frames: their children too.
        for w in &top {
            if let Ok(t) = conn.query_tree(*w)?.reply() {
                candidates.extend(t.children);
            }
        }
        for w in candidates {
            let mut title = None;
            for (prop, ty) in [
                (net_wm_name, utf8),
                (AtomEnum::WM_NAME.into(), AtomEnum::STRING.into()),
            ] {
                if let Ok(r) = conn.get_property(false, w, prop, ty, 0, 1024)?.reply() {
                    if !r.value.is_empty() {
                        title = Some(String::from_utf8_lossy(&r.value).into_owned());
                        break;
                    }
                }
            }
            if let Some(t) = title.filter(|t| re.is_match(t)) {
                found.push((w, t));
            }
        }
    }
    match found.as_slice() {
        [(w, _)] => Ok(*w),
        [] => bail!("no window title matches {}", re.as_str()),
        many => bail!(
            "{} windows match {}: {}; be more specific or give the window ID",
            many.len(),
            re.as_str(),
            many.iter()
                .map(|(w, t)| format!("{w:#x} {t:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Let the user click a window: grab the pointer with a crosshair and return the top-level
/// window under the click (the child of the root, as xwininfo does).
pub fn pick_window(display: Option<&str>) -> Result<u32> {
    use x11rb::protocol::xproto::{EventMask, GrabMode, GrabStatus};
    use x11rb::protocol::Event;
    let (conn, screen) = x11rb::connect(display).context("connecting to the display")?;
    let root = conn.setup().roots[screen].root;
    let font = conn.generate_id()?;
    conn.open_font(font, b"cursor")?;
    let cursor = conn.generate_id()?;
    // XC_crosshair = 34.
    conn.create_glyph_cursor(cursor, font, font, 34, 35, 0, 0, 0, 0xffff, 0xffff, 0xffff)?;
    let g = conn
        .grab_pointer(
            false,
            root,
            EventMask::BUTTON_PRESS | EventMask::BUTTON_RELEASE,
            GrabMode::ASYNC,
            GrabMode::ASYNC,
            root,
            cursor,
            x11rb::CURRENT_TIME,
        )?
        .reply()?;
    anyhow::ensure!(
        g.status == GrabStatus::SUCCESS,
        "cannot grab the pointer ({:?})",
        g.status
    );
    eprintln!("guievict: click the window to act on");
    let picked = loop {
        if let Event::ButtonPress(e) = conn.wait_for_event()? {
            break if e.child == x11rb::NONE {
                e.event
            } else {
                e.child
            };
        }
    };
    conn.ungrab_pointer(x11rb::CURRENT_TIME)?;
    conn.flush()?;
    anyhow::ensure!(picked != root, "you clicked the root window");
    Ok(picked)
}

/// Resolve a target to a PID.
pub fn resolve(t: &Target) -> Result<u32> {
    match (&t.window, t.pid, &t.name) {
        (_, Some(p), _) => Ok(p),
        (Some(w), None, _) => window_to_pid(t.display.as_deref(), parse_window(w)?),
        (None, None, Some(re)) => {
            let w = window_by_name(t.display.as_deref(), re)?;
            window_to_pid(t.display.as_deref(), w)
        }
        (None, None, None) if t.pick => {
            let w = pick_window(t.display.as_deref())?;
            window_to_pid(t.display.as_deref(), w)
        }
        (None, None, None) => {
            bail!("name the application: a WINDOW id, --pid PID, --name REGEX or --pick")
        }
    }
}

/// Control socket of `pid`, hijacking the process first if it has none.
pub fn socket_of(pid: u32) -> Result<PathBuf> {
    // Looked up as the process's owner would have placed it (root may control anyone's app).
    let find = || crate::cmd_hijack::socket_of(pid as i32);
    if let Some(p) = find() {
        return Ok(p);
    }
    anyhow::ensure!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} does not exist"
    );
    crate::ensure_hijacked(pid)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if let Some(p) = find() {
            return Ok(p);
        }
        if std::time::Instant::now() > deadline {
            bail!("process {pid} was hijacked but its control socket did not appear");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Send one request; turn the answer into (message, report JSON) or an error.
fn call(pid: u32, req: &Request) -> Result<(String, serde_json::Value)> {
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
        Response::Error { kind, message } => bail!("process {pid}: {message} ({kind:?})"),
        Response::Status(_) => bail!("process {pid}: unexpected status answer"),
    }
}

fn output(json: bool, pid: u32, msg: &str, report: serde_json::Value) {
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

/// The cookie for `display` (see [`crate::xauth`]): `--auth FILE`, else the CLI's own
/// `$XAUTHORITY`, else `~/.Xauthority`; `None` when none holds an entry (the connection is
/// then tried without, as libxcb does).
fn auth_for(file: &Option<PathBuf>, to: &str) -> Result<Option<XAuth>> {
    let found = crate::xauth::find(file.as_deref(), to)?;
    match &found {
        Some(f) => tracing::debug!(
            "authority for {}: {} entry from {}",
            to,
            f.entry.name,
            f.file.display()
        ),
        None => tracing::debug!(
            "no authority for {} in {}",
            to,
            crate::xauth::looked_in(file.as_deref())
        ),
    }
    Ok(found.map(|f| XAuth {
        name: f.entry.name,
        data: f.entry.data,
    }))
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

/// The processes an operation on `t` acts on (see [`crate::group`]), the resolved PID first
/// when it takes part.
fn group_of(t: &Target, root: u32, want: group::Want) -> Result<Vec<u32>> {
    if t.only_pid {
        return Ok(vec![root]);
    }
    let display = match (&t.window, t.pid) {
        // A window names its display; a PID names the display only when asked.
        (None, Some(_)) => t.display.clone(),
        _ => t.display.clone().or_else(|| std::env::var("DISPLAY").ok()),
    };
    group::members(root, display.as_deref(), want)
}

/// One process's part of a group operation.
struct Part {
    pid: u32,
    msg: String,
    report: serde_json::Value,
}

/// Print a group operation's result: one process as before; several as one report listing
/// each. What was not carried exactly is named and fails the command unless `force`.
fn output_group(json: bool, root: u32, parts: Vec<Part>, force: bool) -> Result<()> {
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

/// `guievict detach`: every process of the application, all or none (a failure re-attaches
/// those already detached where they were).
pub fn detach(a: DetachArgs) -> Result<()> {
    let root = resolve(&a.target)?;
    let pids = group_of(&a.target, root, group::Want::OnDisplay)?;
    let save = a.save.map(|p| std::path::absolute(&p)).transpose()?;
    let parts = all_or_none(
        &pids,
        |i, pid| Request::Detach {
            // One session file per process: the first process's at the path given, the
            // others beside it with their PID.
            session_path: save.as_ref().map(|p| {
                if i == 0 {
                    p.clone()
                } else {
                    p.with_extension(format!("{pid}.gws"))
                }
            }),
            force: a.force,
        },
        Some(|was: &str| Request::Attach {
            display: was.to_string(),
            auth: None,
            force: true,
        }),
    )?;
    output_group(a.target.json, root, parts, a.force)
}

/// Carry out a request on each process of a group in turn, all or none. `op` makes the request
/// for the `i`-th process; on a failure, the processes already done are put back: with
/// `back(display it was on)` when given (a process on no display is left as it is), else with
/// a forced detach (an attach is undone by detaching again).
fn all_or_none(
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
                        },
                    };
                    call(pid, &req).map(|_| ())
                });
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

/// `guievict attach`: every detached process of the application, all or none (a failure
/// detaches again those already attached).
pub fn attach(a: AttachArgs) -> Result<()> {
    let root = resolve(&a.target)?;
    let pids = group_of(&a.target, root, group::Want::Detached)?;
    let auth = auth_for(&a.auth, &a.to)?;
    let mut parts = all_or_none(
        &pids,
        |_, _| Request::Attach {
            display: a.to.clone(),
            auth: auth.clone(),
            force: a.force,
        },
        None::<fn(&str) -> Request>,
    )?;
    share_ids(&parts);
    strip_own_ids(&mut parts);
    output_group(a.target.json, root, parts, a.force)
}

/// The ID pairs were for the other processes; the printed report stays readable without them.
fn strip_own_ids(parts: &mut [Part]) {
    for p in parts {
        for c in p.report["connections"].as_array_mut().into_iter().flatten() {
            if let Some(m) = c.as_object_mut() {
                m.remove("own_ids");
            }
        }
    }
}

/// `guievict move`: one transaction inside the app (see hijack's `transaction`): the target is
/// reached and judged before anything changes, and a failure after the detach puts the GUI
/// back. A CLI killed half-way changes nothing.
pub fn r#move(a: MoveArgs) -> Result<()> {
    let root = resolve(&a.target)?;
    let pids = group_of(&a.target, root, group::Want::OnDisplay)?;
    let auth = auth_for(&a.auth, &a.to)?;
    let t = std::time::Instant::now();
    let mut parts = all_or_none(
        &pids,
        |_, _| Request::Move {
            display: a.to.clone(),
            auth: auth.clone(),
            force: a.force,
        },
        Some(|was: &str| Request::Move {
            display: was.to_string(),
            auth: None,
            force: true,
        }),
    )?;
    let total = t.elapsed().as_secs_f64() * 1000.0;
    for p in &mut parts {
        if let Some(m) = p.report.as_object_mut() {
            m.insert("cli_total_ms".into(), serde_json::json!(total));
        }
    }
    share_ids(&parts);
    strip_own_ids(&mut parts);
    output_group(a.target.json, root, parts, a.force)
}

/// After a group move or attach: each process learns the other processes' resource IDs on the new
/// server (from their reports' `own_ids`), so that IDs one process uses of another's (a GPU
/// process drawing into the browser's windows) are translated. Best effort: a failure is a
/// warning, the move itself is done.
fn share_ids(parts: &[Part]) {
    if parts.len() < 2 {
        return;
    }
    let ids_of = |p: &Part| -> Vec<(u32, u32)> {
        let mut v = Vec::new();
        for c in p.report["connections"].as_array().into_iter().flatten() {
            for pair in c["own_ids"].as_array().into_iter().flatten() {
                if let (Some(a), Some(s)) = (pair[0].as_u64(), pair[1].as_u64()) {
                    v.push((a as u32, s as u32));
                }
            }
        }
        v
    };
    let all: Vec<Vec<(u32, u32)>> = parts.iter().map(ids_of).collect();
    for (i, p) in parts.iter().enumerate() {
        let pairs: Vec<(u32, u32)> = all
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, v)| v.iter().copied())
            .collect();
        if let Err(e) = call(p.pid, &Request::AddForeignIds { pairs }) {
            eprintln!("guievict: warning: pid {}: the application's other processes' IDs were not shared: {e:#}", p.pid);
        }
    }
}

/// `guievict snapshot`.
pub fn snapshot(a: SnapshotArgs) -> Result<()> {
    let pid = resolve(&a.target)?;
    let path = std::path::absolute(&a.save)?;
    let (msg, rep) = call(pid, &Request::Snapshot { path })?;
    output(a.target.json, pid, &msg, rep);
    Ok(())
}

/// `guievict replicate`.
pub fn replicate(a: ReplicateArgs) -> Result<()> {
    let pid = resolve(&a.target)?;
    let auth = auth_for(&a.auth, &a.to)?;
    let policy = if a.view_only {
        InputPolicy::ViewOnly
    } else {
        InputPolicy::Interactive
    };
    let (msg, rep) = call(
        pid,
        &Request::Replicate {
            display: a.to.clone(),
            auth,
            policy,
        },
    )?;
    output(a.target.json, pid, &msg, rep);
    Ok(())
}

/// `guievict unreplicate`.
pub fn unreplicate(a: UnreplicateArgs) -> Result<()> {
    let pid = resolve(&a.target)?;
    let (msg, rep) = call(
        pid,
        &Request::Unreplicate {
            display: a.from.clone(),
        },
    )?;
    output(a.target.json, pid, &msg, rep);
    Ok(())
}

/// `guievict policy`.
pub fn policy(a: PolicyArgs) -> Result<()> {
    let pid = resolve(&a.target)?;
    anyhow::ensure!(
        a.view_only || a.interactive,
        "say --view-only or --interactive"
    );
    let policy = if a.view_only {
        InputPolicy::ViewOnly
    } else {
        InputPolicy::Interactive
    };
    let (msg, rep) = call(
        pid,
        &Request::Policy {
            display: a.on.clone(),
            policy,
        },
    )?;
    output(a.target.json, pid, &msg, rep);
    Ok(())
}
