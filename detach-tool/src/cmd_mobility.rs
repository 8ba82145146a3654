//! `guievict detach | attach | move | snapshot | replicate | unreplicate | policy`. A target
//! (window, PID) and options flow in; the target is resolved to a process, its control socket is
//! found (hijacking it first when needed), one or two control requests flow out, and the
//! library's answer flows back as text on stderr or JSON on stdout.

use crate::group;
use crate::groupop::{all_or_none, call, output, output_group, strip_own_ids, GroupHold};
use anyhow::{bail, Result};
use clap::Args;
use guievict_hijack::control::{self, InputPolicy, Request, Response, XAuth};
use std::path::PathBuf;

/// How the application is named, besides a window ID: shared by every command that acts on
/// one.
#[derive(Args, Debug, Clone)]
pub struct TargetOpts {
    /// The application's process ID.
    #[arg(long)]
    pub pid: Option<u32>,
    /// A top-level window whose title (WM_NAME / _NET_WM_NAME) matches this regular expression.
    #[arg(long, conflicts_with = "pid")]
    pub name: Option<String>,
    /// Click the window to act on (like xwininfo).
    #[arg(long, conflicts_with_all = ["pid", "name"])]
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

impl TargetOpts {
    /// Whether an option (not a window ID) names the application.
    fn names_app(&self) -> bool {
        self.pid.is_some() || self.name.is_some() || self.pick
    }
}

/// Which process to act on: a window ID or one of [`TargetOpts`].
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// A window of the application (`0x…` or decimal); a display (`:N`) may come with it, in
    /// either order, and then says which display the window is on, like --display.
    #[arg(value_name = "WINDOW", num_args = 0..=2)]
    pub words: Vec<String>,
    /// The window, once [`Target::settled`] has sorted the words.
    #[arg(skip)]
    pub window: Option<String>,
    #[command(flatten)]
    pub opts: TargetOpts,
}

impl Target {
    /// A target named by a window ID (or by the options) on the display of the options.
    pub fn new(window: Option<String>, opts: TargetOpts) -> Self {
        Self {
            words: Vec::new(),
            window,
            opts,
        }
    }

    /// The words of `detach`, `snapshot`, `checkpoint` sorted into a window and a display, in
    /// either order (`detach :1 0x20000c` = `detach 0x20000c --display :1`).
    pub fn settled(&self) -> Result<Target> {
        if self.words.is_empty() {
            return Ok(self.clone());
        }
        let (displays, windows): (Vec<&String>, Vec<&String>) =
            self.words.iter().partition(|w| looks_like_display(w));
        let mut t = Target::new(None, self.opts.clone());
        match (displays.as_slice(), windows.as_slice()) {
            ([], [w]) => t.window = Some((*w).clone()),
            ([d], rest) if rest.len() <= 1 => {
                if let Some(given) = &self.opts.display {
                    if given != *d {
                        bail!(
                            "two displays: {d} and --display {given}; the window is on one of \
                     them, give it once"
                        );
                    }
                }
                if rest.is_empty() && !self.opts.names_app() {
                    bail!(
                        "{d} is a display; name the application too: a WINDOW id, --pid PID, \
                     --name REGEX or --pick (`guievict list --display {d}` shows the \
                     windows and processes of a display)"
                    );
                }
                t.opts.display = Some((*d).clone());
                t.window = rest.first().map(|w| (*w).clone());
            }
            ([a, b], []) => bail!(
                "{a} and {b} are both displays (a display has a colon); give one WINDOW, and at \
                     most one DISPLAY it is on"
            ),
            _ => bail!(
                "{} are both window IDs; give one WINDOW (and, if it is not on $DISPLAY, the \
                     DISPLAY it is on)",
                self.words.join(" and ")
            ),
        }
        Ok(t)
    }
}

impl std::ops::Deref for Target {
    type Target = TargetOpts;
    fn deref(&self) -> &TargetOpts {
        &self.opts
    }
}

/// What `attach`, `move`, `replicate`, `unreplicate` and `policy` are given: a display and,
/// unless an option names the application, one of its windows — in either order (a display
/// has a colon, a window ID has none).
#[derive(Args, Debug, Clone)]
pub struct Placed {
    /// The display (`:N`, `:N.S`, `host:N`, `unix:N`) and, unless --pid, --name or --pick names
    /// the application, a window of it (`0x…` or decimal), in either order.
    #[arg(value_name = "DISPLAY|WINDOW", num_args = 1..=2, required = true)]
    pub places: Vec<String>,
    #[command(flatten)]
    pub opts: TargetOpts,
}

/// Help text shared by the commands that take a display and a target.
pub const EITHER_ORDER: &str = "DISPLAY and WINDOW may come in either order: \
`guievict move 0x1a00004 :2` and `guievict move :2 0x1a00004` are the same. A display has a \
colon (`:2`, `:2.0`, `host:2`, `unix:2`); a window ID has none (`0x1a00004`, `27262980`). \
The window is looked up on --display (default $DISPLAY). `guievict list --display D` shows \
which windows and processes a display has.";

impl Placed {
    /// The display and the target, whatever order they came in.
    pub fn split(&self) -> Result<(String, Target)> {
        let (display, window) = split_places(&self.places, self.opts.names_app())?;
        Ok((display, Target::new(window, self.opts.clone())))
    }
}

/// Whether `s` names a display rather than a window: every display name has a colon.
pub fn looks_like_display(s: &str) -> bool {
    s.contains(':')
}

/// Sort the positional words of a command into (display, window). `named`: an option already
/// names the application, so a single word is the display.
pub fn split_places(places: &[String], named: bool) -> Result<(String, Option<String>)> {
    let is_window = |s: &str| !looks_like_display(s) && parse_window(s).is_ok();
    match places {
        [one] if named => Ok((one.clone(), None)),
        [one] if is_window(one) => bail!(
            "{one} is a window; say where to as well: a DISPLAY such as :1 \
             (in either order, e.g. `{one} :1`)"
        ),
        [one] if looks_like_display(one) => bail!(
            "{one} is a display; name the application too: a WINDOW id, --pid PID, --name REGEX \
             or --pick (`guievict list --display DISPLAY` shows the windows and processes of a \
             display)"
        ),
        [one] => bail!(
            "{one:?} is neither a display (`:N`, `host:N`, `unix:N`) nor a window ID (`0x…` or \
             decimal); give a DISPLAY and a WINDOW (or --pid PID)"
        ),
        [a, b] if named => bail!(
            "{a} and {b}: the application is already named by --pid, --name or --pick, so give \
             only the DISPLAY"
        ),
        [a, b] => match (looks_like_display(a), looks_like_display(b)) {
            (true, false) => Ok((a.clone(), Some(b.clone()))),
            (false, true) => Ok((b.clone(), Some(a.clone()))),
            (true, true) => bail!(
                "{a} and {b} are both displays (a display has a colon); give one DISPLAY and one \
                 WINDOW of the application (or --pid PID)"
            ),
            (false, false) => match (is_window(a), is_window(b)) {
                // The other word is meant as the display; connecting to it says what is wrong.
                (true, false) => Ok((b.clone(), Some(a.clone()))),
                (false, true) => Ok((a.clone(), Some(b.clone()))),
                (true, true) => bail!(
                    "{a} and {b} are both window IDs; give one WINDOW and one DISPLAY (`:N`, \
                     `host:N`, `unix:N`)"
                ),
                (false, false) => bail!(
                    "neither {a:?} nor {b:?} is a display (`:N`, `host:N`, `unix:N`) or a window \
                     ID (`0x…` or decimal)"
                ),
            },
        },
        _ => bail!("give a DISPLAY and a WINDOW (or --pid PID), in either order"),
    }
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
    /// Hold the GUI on guievict's private headless server (started on demand, one per user),
    /// or fail: the app keeps running for real (its requests get replies, nothing piles up),
    /// and `attach` moves it from there. This is the default, except with --save; without
    /// this flag, a private server that cannot be started means the GUI is held in memory.
    #[arg(long, conflicts_with_all = ["save", "in_memory"])]
    private: bool,
    /// Hold the GUI in guievict's memory inside the app instead of on the private server: its
    /// requests queue (and the app waits for replies) until attach. Implied by --save.
    #[arg(long)]
    in_memory: bool,
    /// Detach every hijacked app of --display (default $DISPLAY) but its window manager, at
    /// once and all or none.
    #[arg(long, conflicts_with_all = ["pid", "name", "pick", "only_pid", "save"])]
    all: bool,
}

/// `guievict attach`.
#[derive(Args, Debug)]
pub struct AttachArgs {
    #[command(flatten)]
    place: Placed,
    /// Xauthority file for the target display (default: this command's $XAUTHORITY, else
    /// ~/.Xauthority; the entry is matched to the display as Xlib does).
    #[arg(long)]
    auth: Option<PathBuf>,
    /// Attach even if the display lacks GLX, Present, DRI3 or DRI2 and the app depends on it
    /// (its requests for that extension then fail there), and exit 0 even when part of the GUI
    /// was not recreated exactly (still named on stderr).
    #[arg(long)]
    force: bool,
    /// Attach every detached app of this user to DISPLAY, at once and all or none.
    #[arg(long, conflicts_with_all = ["pid", "name", "pick", "only_pid"])]
    all: bool,
}

/// `guievict move`.
#[derive(Args, Debug)]
pub struct MoveArgs {
    #[command(flatten)]
    place: Placed,
    /// Xauthority file for the target display (default: this command's $XAUTHORITY, else
    /// ~/.Xauthority; the entry is matched to the display as Xlib does).
    #[arg(long)]
    auth: Option<PathBuf>,
    /// Move even if the display lacks GLX, Present, DRI3 or DRI2 and the app depends on it
    /// (its requests for that extension then fail there), or part of the GUI cannot be carried
    /// exactly (named on stderr; exit 0 all the same).
    #[arg(long)]
    force: bool,
    /// Move every hijacked app of --display (default $DISPLAY) but its window manager, at once
    /// and all or none, keeping their stacking order (`guievict protect` hijacks them all).
    #[arg(long, conflicts_with_all = ["pid", "name", "pick", "only_pid"])]
    all: bool,
}

/// `guievict snapshot`.
#[derive(Args, Debug)]
pub struct SnapshotArgs {
    #[command(flatten)]
    target: Target,
    /// Session file to write (with --all: a directory, which gets a session file per app and
    /// `manifest.json`).
    #[arg(long)]
    save: PathBuf,
    /// Capture every hijacked app of --display (default $DISPLAY) but its window manager.
    #[arg(long, conflicts_with_all = ["pid", "name", "pick", "only_pid"])]
    all: bool,
}

/// `guievict replicate`.
#[derive(Args, Debug)]
pub struct ReplicateArgs {
    #[command(flatten)]
    place: Placed,
    /// Drop input from that display.
    #[arg(long)]
    view_only: bool,
    /// Xauthority file for that display (default: this command's $XAUTHORITY, else
    /// ~/.Xauthority; the entry is matched to the display as Xlib does).
    #[arg(long)]
    auth: Option<PathBuf>,
    /// Show every hijacked app of --display (default $DISPLAY) but its window manager there,
    /// at once and all or none, in the same stacking order.
    #[arg(long, conflicts_with_all = ["pid", "name", "pick", "only_pid"])]
    all: bool,
}

/// `guievict unreplicate`.
#[derive(Args, Debug)]
pub struct UnreplicateArgs {
    #[command(flatten)]
    place: Placed,
}

/// `guievict policy`.
#[derive(Args, Debug)]
pub struct PolicyArgs {
    #[command(flatten)]
    place: Placed,
    /// Drop input from that display.
    #[arg(long, conflicts_with = "interactive")]
    view_only: bool,
    /// Accept input from that display.
    #[arg(long)]
    interactive: bool,
}

use crate::pick::{pick_window, window_by_name};
pub use crate::xconn::{parse_window, window_to_pid};

/// Resolve a target to a PID.
pub fn resolve(t: &Target) -> Result<u32> {
    let settled = t.settled()?;
    let t = &settled;
    if let (Some(w), true) = (&t.window, t.names_app()) {
        bail!(
            "the application is named twice: window {w} and --pid/--name/--pick; give one of them"
        );
    }
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
            bail!(
                "name the application: a WINDOW id, --pid PID, --name REGEX or --pick \
                 (`guievict list --display D` shows the windows and processes of a display)"
            )
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

/// The processes an operation on `t` acts on (see [`crate::group`]), the resolved PID first
/// when it takes part.
pub(crate) fn group_of(t: &Target, root: u32, want: group::Want) -> Result<Vec<u32>> {
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

/// Say which helpers holding X connections on the application's display stay behind (see
/// [`group::helpers_left_behind`]): not moved, and not an error — they draw nothing.
fn note_helpers_left_behind(pids: &[u32]) {
    let Some(display) = pids
        .first()
        .and_then(|p| group::seen(*p).displays.into_iter().flatten().next())
    else {
        return;
    };
    for (pid, name) in group::helpers_left_behind(pids, display) {
        eprintln!(
            "guievict: note: {name} (pid {pid}) also holds an X connection to :{display} but is \
             outside the application's process tree (a D-Bus helper GTK/GIO starts): it is not \
             moved and stays on :{display}"
        );
    }
}

/// `guievict detach`: every process of the application, all or none (a failure re-attaches
/// those already detached where they were).
pub fn detach(a: DetachArgs) -> Result<()> {
    let target = a.target.settled()?;
    if a.all {
        if target.window.is_some() {
            bail!("detach --all takes no WINDOW: it detaches every app of --display");
        }
        return crate::cmd_desktop::run_all(
            target.opts.display.as_deref(),
            crate::cmd_desktop::AllOp::Detach {
                private: a.private,
                in_memory: a.in_memory,
            },
            a.force,
            target.opts.json,
        );
    }
    let root = resolve(&target)?;
    let pids = group_of(&target, root, group::Want::OnDisplay)?;
    note_helpers_left_behind(&pids);
    let save = a.save.map(|p| std::path::absolute(&p)).transpose()?;
    // Held on the private headless server (started now if needed; reachable while the request
    // runs) unless --in-memory or --save.
    let (server, no_private) =
        crate::private::for_detach(a.private, a.in_memory || save.is_some())?;
    let hold = GroupHold::take(&pids);
    let detach_all = |private: Option<control::PrivateServer>| {
        all_or_none(
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
                private: private.clone(),
                // Asked for in memory: also a guarded app (whose guard would take over
                // otherwise).
                in_memory: a.in_memory,
            },
            Some(|was: &str| Request::Attach {
                display: was.to_string(),
                auth: None,
                force: true,
                private: None,
            }),
        )
    };
    let parts = hold.during(match &server {
        // Held on the private server by default; when the GUI cannot go there (e.g. a depth the
        // private server lacks), in memory as before, said on stderr. Asked for (`--private`):
        // its error.
        Some(s) if !a.private => detach_all(Some(s.request_value())).or_else(|e| {
            let r = detach_all(None);
            if r.is_ok() {
                eprintln!(
                    "guievict: note: the GUI is held in memory (its requests queue until \
                     attach): holding it on the private server {} failed: {e:#}",
                    s.display
                );
            }
            r
        }),
        _ => detach_all(server.as_ref().map(|s| s.request_value())),
    })?;
    // Held on the private server, the processes learn each other's IDs there (a GPU process
    // draws into the browser's windows); detached in memory, their requests queue anyway.
    // Then the hold ends.
    let mut parts = parts;
    if let Some(why) = no_private {
        // A guarded app is held by its guard, on the private server it already has.
        if !parts
            .iter()
            .all(|p| p.msg.contains("held on the private server"))
        {
            eprintln!(
                "guievict: note: the GUI is held in memory (its requests queue until attach): \
                 the private server could not be started: {why}"
            );
        }
    }
    hold.release(&parts);
    strip_own_ids(&mut parts);
    output_group(a.target.json, root, parts, a.force)
}

/// `guievict attach`: every detached process of the application, all or none (a failure
/// detaches again those already attached).
pub fn attach(a: AttachArgs) -> Result<()> {
    if a.all {
        let to = all_target(&a.place.places, "attach", "attach to")?;
        let auth = auth_for(&a.auth, to)?;
        return crate::cmd_desktop::run_all(
            None,
            crate::cmd_desktop::AllOp::Attach {
                to: to.clone(),
                auth,
            },
            a.force,
            a.place.opts.json,
        );
    }
    let (to, target) = a.place.split()?;
    let root = resolve(&target)?;
    let pids = group_of(&target, root, group::Want::Detached)?;
    let auth = auth_for(&a.auth, &to)?;
    // A GUI held on the private server or guarded gets its guard there again: the server is
    // started if it went away, and kept up (our connection) while the requests run.
    let server = if pids.iter().any(|&p| uses_private(p)) {
        Some(crate::private::ensure()?)
    } else {
        None
    };
    let private = server.as_ref().map(|s| s.request_value());
    let hold = GroupHold::take(&pids);
    let mut parts = hold.during(all_or_none(
        &pids,
        |_, _| Request::Attach {
            display: to.clone(),
            auth: auth.clone(),
            force: a.force,
            private: private.clone(),
        },
        None::<fn(&str) -> Request>,
    ))?;
    hold.release(&parts);
    strip_own_ids(&mut parts);
    output_group(target.json, root, parts, a.force)
}

/// Whether process `pid` has a connection held on the private server or guarded there.
pub(crate) fn uses_private(pid: u32) -> bool {
    let Ok(path) = socket_of(pid) else {
        return false;
    };
    match control::request(&path, &Request::Status) {
        Ok(Response::Status(st)) => st
            .connections
            .iter()
            .any(|c| c.held_on.is_some() || c.guarded),
        _ => false,
    }
}

/// The one DISPLAY `VERB --all` takes (`what`: what it is for, in the messages).
fn all_target<'a>(places: &'a [String], verb: &str, what: &str) -> Result<&'a String> {
    let [to] = places else {
        bail!("{verb} --all takes one DISPLAY to {what}");
    };
    if !looks_like_display(to) {
        bail!("{to:?} is not a display: {verb} --all takes the DISPLAY to {what}");
    }
    Ok(to)
}

/// `guievict move`: one transaction inside the app (see hijack's `transaction`): the target is
/// reached and judged before anything changes, and a failure after the detach puts the GUI
/// back. A CLI killed half-way changes nothing.
pub fn r#move(a: MoveArgs) -> Result<()> {
    if a.all {
        let to = all_target(
            &a.place.places,
            "move",
            "move to (the apps are those of --display)",
        )?;
        let auth = auth_for(&a.auth, to)?;
        return crate::cmd_desktop::run_all(
            a.place.opts.display.as_deref(),
            crate::cmd_desktop::AllOp::Move {
                to: to.clone(),
                auth,
            },
            a.force,
            a.place.opts.json,
        );
    }
    let (to, target) = a.place.split()?;
    let root = resolve(&target)?;
    let pids = group_of(&target, root, group::Want::OnDisplay)?;
    note_helpers_left_behind(&pids);
    let auth = auth_for(&a.auth, &to)?;
    let t = std::time::Instant::now();
    let hold = GroupHold::take(&pids);
    let mut parts = hold.during(all_or_none(
        &pids,
        |_, _| Request::Move {
            display: to.clone(),
            auth: auth.clone(),
            force: a.force,
        },
        Some(|was: &str| Request::Move {
            display: was.to_string(),
            auth: None,
            force: true,
        }),
    ))?;
    hold.release(&parts);
    let total = t.elapsed().as_secs_f64() * 1000.0;
    for p in &mut parts {
        if let Some(m) = p.report.as_object_mut() {
            m.insert("cli_total_ms".into(), serde_json::json!(total));
        }
    }
    strip_own_ids(&mut parts);
    output_group(target.json, root, parts, a.force)
}

/// `guievict snapshot`.
pub fn snapshot(a: SnapshotArgs) -> Result<()> {
    if a.all {
        let target = a.target.settled()?;
        return crate::cmd_desktop::snapshot_all(
            target.opts.display.as_deref(),
            &a.save,
            target.opts.json,
        );
    }
    let pid = resolve(&a.target)?;
    let path = std::path::absolute(&a.save)?;
    let (msg, rep) = call(pid, &Request::Snapshot { path })?;
    output(a.target.json, pid, &msg, rep);
    Ok(())
}

/// `guievict replicate`.
pub fn replicate(a: ReplicateArgs) -> Result<()> {
    if a.all {
        let to = all_target(&a.place.places, "replicate", "show the apps on")?;
        let auth = auth_for(&a.auth, to)?;
        return crate::cmd_desktop::run_all(
            a.place.opts.display.as_deref(),
            crate::cmd_desktop::AllOp::Replicate {
                to: to.clone(),
                auth,
                view_only: a.view_only,
            },
            false,
            a.place.opts.json,
        );
    }
    let (to, target) = a.place.split()?;
    let pid = resolve(&target)?;
    let auth = auth_for(&a.auth, &to)?;
    let policy = if a.view_only {
        InputPolicy::ViewOnly
    } else {
        InputPolicy::Interactive
    };
    let (msg, rep) = call(
        pid,
        &Request::Replicate {
            display: to.clone(),
            auth,
            policy,
        },
    )?;
    output(target.json, pid, &msg, rep);
    Ok(())
}

/// `guievict unreplicate`.
pub fn unreplicate(a: UnreplicateArgs) -> Result<()> {
    let (from, target) = a.place.split()?;
    let pid = resolve(&target)?;
    let (msg, rep) = call(
        pid,
        &Request::Unreplicate {
            display: from.clone(),
        },
    )?;
    output(target.json, pid, &msg, rep);
    Ok(())
}

/// `guievict policy`.
pub fn policy(a: PolicyArgs) -> Result<()> {
    let (on, target) = a.place.split()?;
    let pid = resolve(&target)?;
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
            display: on.clone(),
            policy,
        },
    )?;
    output(target.json, pid, &msg, rep);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn display_and_window_sort_in_either_order() {
        for w in [&["0x20000c", ":1"][..], &[":1", "0x20000c"][..]] {
            let (d, win) = split_places(&words(w), false).expect("sorted");
            assert_eq!((d.as_str(), win.as_deref()), (":1", Some("0x20000c")));
        }
        for d in ["host:1", "unix:1", ":1.0", "localhost:10.0"] {
            let (got, win) = split_places(&words(&["27262980", d]), false).expect("sorted");
            assert_eq!((got.as_str(), win.as_deref()), (d, Some("27262980")));
        }
        assert_eq!(
            split_places(&words(&[":2"]), true).expect("named by --pid"),
            (":2".to_string(), None)
        );
        let e = split_places(&words(&[":1", ":2"]), false).unwrap_err();
        assert!(e.to_string().contains("both displays"), "{e}");
        let e = split_places(&words(&["0x1", "0x2"]), false).unwrap_err();
        assert!(e.to_string().contains("both window IDs"), "{e}");
        let e = split_places(&words(&["0x1"]), false).unwrap_err();
        assert!(e.to_string().contains("say where to"), "{e}");
    }

    #[test]
    fn a_display_next_to_the_window_is_where_the_window_is() {
        let opts = TargetOpts {
            pid: None,
            name: None,
            pick: false,
            display: None,
            only_pid: false,
            json: false,
        };
        for w in [&[":3", "0x20000c"][..], &["0x20000c", ":3"][..]] {
            let t = Target {
                words: words(w),
                window: None,
                opts: opts.clone(),
            }
            .settled()
            .expect("settled");
            assert_eq!(t.window.as_deref(), Some("0x20000c"));
            assert_eq!(t.opts.display.as_deref(), Some(":3"));
        }
        let t = Target {
            words: words(&[":3"]),
            window: None,
            opts: opts.clone(),
        };
        assert!(t.settled().is_err(), "a display alone names no application");
    }
}
