//! The inline mode of a loop: the application's own threads translate their X traffic. The
//! application's bytes flow from libxcb's `writev`/`sendmsg` (hooked, `hooks.rs`) straight into
//! the engine and out to the server socket(s); the server's bytes flow from the primary's socket
//! into the engine and out through libxcb's `recvmsg` (hooked) on the thread that asked — no
//! thread hop. The loop's state ([`Loop`]) sits behind a mutex; the hooks
//! hold it only while the engine runs, never across a blocking call.
//!
//! The guimux thread stays for what needs it. While inline it sleeps in an epoll over: its
//! command eventfd (any command but a status query switches the connection back to *relayed*,
//! the loop of `muxloop.rs`, and it comes back inline once the engine is steady and no command
//! came for [`QUIET`]), the replicas' sockets (the guard's answers are its to read), the
//! application's end of the socketpair (still fd N: stray bytes, and its closing), a *nudge*
//! eventfd (a hook left bytes for the app that nobody is polling for) and the primary's socket —
//! but the primary only while the app's threads do not poll it themselves: the first hooked
//! `poll` takes it away (`Loop::primary_off`), and the guimux thread takes it back once no
//! hooked `poll` came for [`ARM_DELAY`] (`Loop::inline_tick`). Then bytes from the server are
//! translated by the guimux thread and put into the socketpair, so a toolkit polling fd N
//! itself (GLib, Xt's `select`) still wakes up.
//! The order of what the app reads is kept by the rule that the socketpair's bytes are older
//! than the engine's queue, and both change under the lock.
//!
//! [`Switch`] is the connection's switchboard the hooks find by descriptor number (the
//! registry): whether inline is wanted and in force, counters that let one side wait for the
//! other to leave (relayed writes in flight before going inline, hooks inside the lock's path
//! before going relayed), and the *kick*: an eventfd per mode generation, signalled when the
//! mode changes, that every hooked `poll` waits on too.

use super::handle::{lock, Ended};
use super::{Loop, Mode, BOUND};

/// Bytes waiting for a server above which a hooked write says EAGAIN (libxcb then polls for
/// POLLOUT): about a socket buffer, as the app would meet writing to the server directly.
/// The relayed loop's [`BOUND`] (16 MiB) let a pipelined PutImage stream pile up megabytes in
/// the engine, and every partial write then moved all of them (`drain`): PutImage inline ran
/// at 0.25× of direct under load with it.
const INLINE_BOUND: usize = 256 * 1024;

/// A guard's bytes are written once this many are queued (see `Loop::flush_servers`)…
const GUARD_BATCH: usize = 64 * 1024;
/// …or this long after they were queued, whichever comes first.
const GUARD_DELAY: std::time::Duration = std::time::Duration::from_millis(10);
/// While the app's threads poll the primary themselves the guimux thread does not watch it;
/// it looks this often whether they still do (then an event for a toolkit that polls fd N
/// itself waits at most about twice this long).
const ARM_DELAY: std::time::Duration = std::time::Duration::from_millis(2);
use guimux::salvage::Side;
use guimux::ServerId;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// How long after the last command a steady connection goes (back) inline.
pub const QUIET: std::time::Duration = std::time::Duration::from_millis(50);

const TOKEN_WAKE: u64 = 0;
const TOKEN_NUDGE: u64 = 1;
const TOKEN_APP: u64 = 2;
const TOKEN_SERVER: u64 = 16;

/// One connection's inline switchboard, shared by its loop, its handle and the hooks.
pub struct Switch {
    /// The application's descriptor number (the socketpair's app end).
    pub app_fd: RawFd,
    /// Inline asked for (control request `Inline`).
    wanted: AtomicBool,
    /// Why inline was given up for good on this connection (a hook panicked), if it was.
    broken: Mutex<Option<String>>,
    /// The hooks do the loop's work now.
    inline: AtomicBool,
    /// Relayed writes (`writev`/`sendmsg` on the socketpair) in progress.
    inflight: AtomicUsize,
    /// Hooks on the locked (inline) path.
    inside: AtomicUsize,
    /// Signalled (and replaced) at every mode change: hooked polls wait on it.
    kick: Mutex<Arc<EventFd>>,
    /// Hooks → loop: bytes for the app are queued and no thread polls for them.
    nudge: EventFd,
    /// The loop's command eventfd: a hook that gives up inline wakes the loop with it.
    wake: Arc<EventFd>,
    /// Test hook: the next hooked call panics.
    fault_next: AtomicBool,
    /// Hooked calls that did the loop's work in the app's thread (status: `inline_calls`).
    calls: std::sync::atomic::AtomicU64,
    /// The loop's state (set when the loop starts).
    pub(crate) state: std::sync::OnceLock<Arc<Mutex<Loop>>>,
}

impl std::fmt::Debug for Switch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switch")
            .field("app_fd", &self.app_fd)
            .field("inline", &self.is_inline())
            .finish_non_exhaustive()
    }
}

fn new_eventfd() -> std::io::Result<EventFd> {
    Ok(EventFd::from_flags(
        EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK,
    )?)
}

impl Switch {
    pub(super) fn new(app_fd: RawFd, wake: Arc<EventFd>) -> std::io::Result<Self> {
        Ok(Switch {
            app_fd,
            wanted: AtomicBool::new(false),
            broken: Mutex::new(None),
            inline: AtomicBool::new(false),
            inflight: AtomicUsize::new(0),
            inside: AtomicUsize::new(0),
            kick: Mutex::new(Arc::new(new_eventfd()?)),
            nudge: new_eventfd()?,
            wake,
            fault_next: AtomicBool::new(false),
            calls: std::sync::atomic::AtomicU64::new(0),
            state: std::sync::OnceLock::new(),
        })
    }

    /// Whether the hooks do the loop's work now.
    pub fn is_inline(&self) -> bool {
        self.inline.load(Ordering::SeqCst)
    }

    /// Hooked calls that took the inline path so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Why inline was given up on this connection, if it was.
    pub fn broken(&self) -> Option<String> {
        lock(&self.broken).clone()
    }

    /// Ask for inline (or relayed). The loop switches when it is steady.
    pub fn set_wanted(&self, on: bool) {
        self.wanted.store(on, Ordering::SeqCst);
        let _ = self.wake.write(1);
    }

    pub(super) fn wants_inline(&self) -> bool {
        self.wanted.load(Ordering::SeqCst) && lock(&self.broken).is_none()
    }

    /// Give inline up for good on this connection (a hook panicked): the loop relays from now
    /// on.
    pub fn give_up(&self, why: String) {
        tracing::error!(app_fd = self.app_fd, "inline translation given up: {why}");
        *lock(&self.broken) = Some(why);
        self.inline.store(false, Ordering::SeqCst);
        self.bump_kick();
        let _ = self.wake.write(1);
    }

    /// Ask the loop to take over (something a hook does not handle: a server's end, a
    /// contained panic, a new primary).
    pub(super) fn ask_relayed(&self) {
        let _ = self.wake.write(1);
    }

    /// The kick eventfd of the current mode generation.
    pub fn kick(&self) -> Arc<EventFd> {
        lock(&self.kick).clone()
    }

    fn bump_kick(&self) {
        let mut k = lock(&self.kick);
        let _ = k.write(1);
        if let Ok(n) = new_eventfd() {
            *k = Arc::new(n);
        }
    }

    /// Test hook: make the next hooked call panic.
    pub fn fault_next(&self) {
        self.fault_next.store(true, Ordering::SeqCst);
    }

    /// Whether the test hook is armed (and disarm it).
    pub fn take_fault(&self) -> bool {
        self.fault_next.swap(false, Ordering::SeqCst)
    }

    /// Count a relayed write on the socketpair; `None` when the connection is inline (the
    /// caller takes the inline path instead).
    pub fn relayed_write(&self) -> Option<Counted<'_>> {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        let c = Counted(&self.inflight);
        (!self.is_inline()).then_some(c)
    }

    /// Enter the inline (locked) path; `None` when the connection is relayed.
    pub fn enter(&self) -> Option<(Counted<'_>, std::sync::MutexGuard<'_, Loop>)> {
        self.inside.fetch_add(1, Ordering::SeqCst);
        let c = Counted(&self.inside);
        if !self.is_inline() {
            return None;
        }
        let state = self.state.get()?;
        let g = lock(state);
        // The mode may have changed while this thread waited for the lock.
        if !self.is_inline() {
            return None;
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        Some((c, g))
    }
}

/// A counter held up for as long as this lives (also through an unwinding panic).
pub struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether connections adopted from now on go inline (control request `Inline`).
static WANTED_FOR_NEW: AtomicBool = AtomicBool::new(false);

/// Whether connections adopted from now on go inline.
pub fn wanted_for_new() -> bool {
    WANTED_FOR_NEW.load(Ordering::SeqCst)
}

/// Set whether connections adopted from now on go inline.
pub fn set_wanted_for_new(on: bool) {
    WANTED_FOR_NEW.store(on, Ordering::SeqCst);
}

/// Every live connection's switchboard, by the application's descriptor number.
static REGISTRY: RwLock<Vec<Arc<Switch>>> = RwLock::new(Vec::new());
/// Whether any connection is registered (the hooks' fast path for other descriptors).
static ANY: AtomicBool = AtomicBool::new(false);

pub(super) fn register(sw: Arc<Switch>) {
    let mut r = REGISTRY.write().unwrap_or_else(|p| p.into_inner());
    r.retain(|s| s.app_fd != sw.app_fd);
    r.push(sw);
    ANY.store(true, Ordering::SeqCst);
}

/// Forget the connection on descriptor `fd` (its loop ended, or the app closes it).
pub fn unregister(fd: RawFd) -> Option<Arc<Switch>> {
    let mut r = REGISTRY.write().unwrap_or_else(|p| p.into_inner());
    let i = r.iter().position(|s| s.app_fd == fd)?;
    let sw = r.remove(i);
    ANY.store(!r.is_empty(), Ordering::SeqCst);
    Some(sw)
}

/// Forget this switchboard (its loop ended), unless another took its descriptor number since.
pub(super) fn unregister_switch(sw: &Arc<Switch>) {
    let mut r = REGISTRY.write().unwrap_or_else(|p| p.into_inner());
    r.retain(|s| !Arc::ptr_eq(s, sw));
    ANY.store(!r.is_empty(), Ordering::SeqCst);
}

/// The switchboard of the connection on descriptor `fd`, if it is one.
pub fn find(fd: RawFd) -> Option<Arc<Switch>> {
    if fd < 0 || !ANY.load(Ordering::Relaxed) {
        return None;
    }
    let r = REGISTRY.read().unwrap_or_else(|p| p.into_inner());
    r.iter().find(|s| s.app_fd == fd).cloned()
}

/// Every registered switchboard (the test hook arms them all).
pub fn all() -> Vec<Arc<Switch>> {
    REGISTRY.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// What a hooked `poll` on the app's descriptor found.
pub enum PollResult {
    /// The connection is (now) relayed: poll the socketpair.
    Relayed,
    /// These events (`POLLIN`/`POLLOUT`) are ready for the app.
    Ready(i16),
    /// The timeout passed.
    Timeout,
    /// The real poll failed with this errno (EINTR: the caller's loop retries).
    Failed(i32),
}

/// What a hooked receive produced.
pub enum RecvResult {
    /// The connection is relayed: the original call on the socketpair.
    Relayed,
    /// Read the socketpair first (it holds the oldest bytes): the caller runs the original
    /// call non-blocking and reports back with [`Loop::pair_read`].
    Pair,
    /// `n` bytes copied, with these descriptors for the app.
    Data(usize, Vec<OwnedFd>),
    /// Nothing for the app now.
    WouldBlock,
}

/// Something the hooks do not handle came up: the connection is being handed to the guimux
/// thread (relayed).
#[derive(Debug)]
pub struct HandedOver;

/// What a hooked write did.
pub enum WriteResult {
    /// The connection is relayed: the original call on the socketpair.
    Relayed,
    /// `n` bytes taken.
    Took(usize),
    /// The servers are behind: try later (libxcb polls for POLLOUT).
    WouldBlock,
}

impl Loop {
    /// Whether the engine is in a state the hooks can carry alone: translating to a primary
    /// (and replicas), nothing held, no internal client, no operation going on.
    pub(super) fn steady(&mut self) -> bool {
        matches!(self.mode, Mode::Engine)
            && self.internal.is_none()
            && self.internal_waiting.is_none()
            && !self.engine.is_paused()
            && self.engine.queued_bytes() == 0
            && self.engine.primary().is_some()
            && lock(&self.shared.degraded).is_none()
            && self
                .engine
                .status()
                .servers
                .iter()
                .all(|(_, r)| !matches!(r, guimux::Role::Pending))
    }

    /// The relayed loop is ready to hand over: steady, inline wanted, no command for [`QUIET`].
    /// `Some(wait)`: not yet, look again after `wait`.
    pub(super) fn inline_due(&mut self) -> Option<Option<std::time::Duration>> {
        if !self.switch.wants_inline() || !self.steady() {
            return None;
        }
        let since = self.last_command.elapsed();
        if since >= QUIET {
            Some(None)
        } else {
            Some(Some(QUIET - since))
        }
    }

    /// Total bytes waiting for any server.
    fn server_backlog(&mut self) -> usize {
        let mut most = 0;
        for s in self.servers.keys() {
            most = most.max(self.engine.server_output(*s).map_or(0, |o| o.len()));
        }
        most
    }

    /// Whether a guard has bytes waiting (the guimux thread then wakes after [`GUARD_DELAY`]).
    fn lazy_pending(&mut self) -> bool {
        self.lazy
            .iter()
            .any(|s| self.engine.server_output(*s).is_some_and(|o| !o.is_empty()))
    }

    /// Write every server's bytes, a guard's too (the guimux thread, after [`GUARD_DELAY`]).
    fn flush_lazy(&mut self) {
        let lazy = std::mem::take(&mut self.lazy);
        self.flush_servers();
        self.lazy = lazy;
    }

    /// Write what each server takes now (not the app's output: that is the hooks' to hand out).
    /// A failed write is left to the guimux thread (it sees the socket's error).
    /// A guard's bytes wait until [`GUARD_BATCH`] of them are queued, or [`GUARD_DELAY`]
    /// passed (the guimux thread's epoll timeout): nobody looks at a guard, and writing it a
    /// NoOperation per round trip woke its server each time — a third process to schedule per
    /// round trip on a loaded machine.
    fn flush_servers(&mut self) {
        for (s, p) in self.servers.iter_mut() {
            let Some(out) = self.engine.server_output(*s) else {
                continue;
            };
            if out.is_empty() || (self.lazy.contains(s) && out.len() < GUARD_BATCH) {
                continue;
            }
            if let Ok(n) = super::io::write_some(p, out) {
                out.drain(..n);
            }
        }
    }

    /// Set the guimux thread's epoll interest in each server: the primary's input only while no
    /// application thread polls it; output while something waits to go.
    fn rearm(&mut self) {
        let Some(ep) = self.epoll.as_ref() else {
            return;
        };
        let primary = self.engine.primary();
        // Back-pressure as in the relayed loop: servers are not read while the app is that far
        // behind (its reads through the hooks re-arm them).
        let app_behind = self.engine.app_output().len() > BOUND;
        for (s, p) in self.servers.iter() {
            let s = *s;
            let mut f = EpollFlags::empty();
            if (Some(s) != primary || !self.primary_off) && !app_behind {
                f |= EpollFlags::EPOLLIN;
            }
            let batch = if self.lazy.contains(&s) {
                GUARD_BATCH
            } else {
                1
            };
            if self
                .engine
                .server_output(s)
                .is_some_and(|o| o.len() >= batch)
            {
                f |= EpollFlags::EPOLLOUT;
            }
            let was = self.armed.get(&s).copied();
            if was == Some(f.bits() as u32) {
                continue;
            }
            let mut ev = EpollEvent::new(f, TOKEN_SERVER + s as u64);
            let r = if was.is_some() {
                ep.modify(p.fd.as_fd(), &mut ev)
            } else {
                ep.add(p.fd.as_fd(), ev)
            };
            if r.is_ok() {
                self.armed.insert(s, f.bits() as u32);
            }
        }
    }

    /// Wake the guimux thread when bytes for the app wait and no thread polls for them (a
    /// toolkit may be polling fd N itself: the loop puts them into the socketpair).
    fn nudge_if_unwatched(&mut self) {
        let has_fds = !self.app.fds_out.is_empty();
        if self.watchers == 0 && (!self.engine.app_output().is_empty() || has_fds) {
            let _ = self.switch.nudge.write(1);
        }
    }

    /// Something the hooks do not handle happened (the loop ended, a panic was contained, the
    /// servers changed): hand the connection to the guimux thread.
    fn trouble(&mut self, end: Option<Ended>) {
        if end.is_some() {
            self.end_inline = end;
        }
        self.switch.ask_relayed();
    }

    /// Whether the servers are as when the connection went inline.
    fn servers_unchanged(&self) -> bool {
        self.engine.primary() == self.inline_primary && self.servers.len() == self.inline_servers
    }

    /// Read the primary once into the engine (hook path). False on trouble.
    fn hook_read_primary(&mut self) -> bool {
        let Some(p) = self.engine.primary() else {
            return false;
        };
        if let Some(end) = self.read_server(p) {
            self.trouble(Some(end));
            return false;
        }
        if !matches!(self.mode, Mode::Engine) || !self.servers_unchanged() {
            self.trouble(None);
            return false;
        }
        true
    }

    /// Hooked `writev`/`sendmsg`: `data` (the app's bytes) and the descriptors that came with
    /// them go into the engine, the engine's output to the servers.
    pub fn hook_write(&mut self, data: &[&[u8]], fds: Vec<OwnedFd>) -> WriteResult {
        if self.server_backlog() > INLINE_BOUND {
            self.flush_servers();
            if self.server_backlog() > INLINE_BOUND {
                self.rearm();
                return WriteResult::WouldBlock;
            }
        }
        let mut n = 0;
        for d in data {
            let take = d.len().min(self.rbuf.len() - n);
            self.rbuf[n..n + take].copy_from_slice(&d[..take]);
            n += take;
            if n == self.rbuf.len() {
                break;
            }
        }
        if n == 0 {
            return WriteResult::Took(0);
        }
        if !fds.is_empty() {
            self.app_fds(fds);
        }
        match self.feed(Side::App, n) {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                tracing::error!("closing the application's X connection: {e}");
                self.trouble(Some(Ended::Error(e.to_string())));
                return WriteResult::Took(n);
            }
            None => {
                // A contained panic: the salvage has the bytes; the loop relays from now on.
                self.trouble(None);
                return WriteResult::Took(n);
            }
        }
        self.flush_servers();
        self.rearm();
        self.nudge_if_unwatched();
        if !self.lazy_armed && !self.lazy.is_empty() && self.lazy_pending() {
            // The guimux thread sleeps without a timeout: it must start the guard's clock.
            self.lazy_armed = true;
            let _ = self.switch.nudge.write(1);
        }
        WriteResult::Took(n)
    }

    /// Hooked receive into `buf`.
    pub fn hook_recv(&mut self, buf: &mut [u8]) -> RecvResult {
        if self.pair_bytes != Some(0) {
            return RecvResult::Pair;
        }
        if self.engine.app_output().is_empty() && self.app.fds_out.is_empty() {
            if !self.hook_read_primary() {
                return RecvResult::Relayed;
            }
            self.flush_servers();
        }
        let mut fds: Vec<OwnedFd> = std::mem::take(&mut self.app.fds_out);
        fds.extend(self.engine.take_fds_for_app());
        let out = self.engine.app_output();
        if out.is_empty() {
            if !fds.is_empty() {
                // Descriptors ride with a byte; none to carry them now.
                self.app.fds_out = fds;
            }
            return RecvResult::WouldBlock;
        }
        let n = buf.len().min(out.len());
        buf[..n].copy_from_slice(&out[..n]);
        out.drain(..n);
        self.nudge_if_unwatched();
        self.rearm();
        RecvResult::Data(n, fds)
    }

    /// What the original receive on the socketpair gave ([`RecvResult::Pair`]): `Some(n)` bytes,
    /// or `None` for nothing there (EAGAIN).
    pub fn pair_read(&mut self, got: Option<usize>) {
        match got {
            Some(n) => self.pair_bytes = self.pair_bytes.map(|b| b.saturating_sub(n)),
            None => self.pair_bytes = Some(0),
        }
    }

    /// Descriptors the app sent with its bytes go where the relayed loop sends them.
    fn app_fds(&mut self, fds: Vec<OwnedFd>) {
        if self.engine.primary_converts_shm() {
            self.engine.push_app_fds(fds);
        } else {
            if self.engine.any_converts_shm() {
                let copies = fds.iter().filter_map(|f| f.try_clone().ok()).collect();
                self.engine.push_app_fds(copies);
            }
            if let Some(p) = self.engine.primary().and_then(|p| self.servers.get_mut(&p)) {
                p.fds_out.extend(fds);
            }
        }
    }

    /// Hooked poll, before blocking: events ready for the app now (`POLLIN` when bytes wait for
    /// it, `POLLOUT` when the servers take more); otherwise the descriptors to wait on (the
    /// socketpair, the primary, servers with output waiting) — this thread is a watcher then.
    pub fn hook_poll_prepare(&mut self, events: i16, out: &mut Vec<libc::pollfd>) -> (i16, u64) {
        self.flush_servers();
        let mut ready = 0;
        if events & libc::POLLIN != 0
            && (!self.engine.app_output().is_empty() || self.pair_bytes.is_some_and(|b| b > 0))
        {
            ready |= libc::POLLIN;
        }
        if events & libc::POLLOUT != 0 && self.server_backlog() <= INLINE_BOUND {
            ready |= libc::POLLOUT;
        }
        if ready != 0 {
            return (ready, self.inline_gen);
        }
        self.watchers += 1;
        self.hooks_busy = true;
        if !self.primary_off {
            // The app's threads read the primary now: the guimux thread stops watching it
            // (one epoll_ctl at the start of a burst) and looks again every ARM_DELAY whether
            // they still do — nudged now, so that it sleeps with that timeout.
            self.primary_off = true;
            self.rearm();
            let _ = self.switch.nudge.write(1);
        }
        out.clear();
        out.push(libc::pollfd {
            fd: self.switch.app_fd,
            events: libc::POLLIN,
            revents: 0,
        });
        let primary = self.engine.primary();
        for (s, p) in self.servers.iter() {
            let batch = if self.lazy.contains(s) {
                GUARD_BATCH
            } else {
                1
            };
            let pending = self
                .engine
                .server_output(*s)
                .is_some_and(|o| o.len() >= batch);
            let mut ev = 0;
            if Some(*s) == primary {
                ev |= libc::POLLIN;
            }
            if pending {
                ev |= libc::POLLOUT;
            }
            if ev != 0 {
                out.push(libc::pollfd {
                    fd: p.fd.as_raw_fd(),
                    events: ev,
                    revents: 0,
                });
            }
        }
        (0, self.inline_gen)
    }

    /// Hooked poll, after blocking on what [`Loop::hook_poll_prepare`] gave: read the primary
    /// if it has bytes, write what servers take, stop watching; the events ready for the app.
    pub fn hook_poll_finish(
        &mut self,
        gen: u64,
        events: i16,
        fds: &[libc::pollfd],
    ) -> Result<i16, HandedOver> {
        if gen != self.inline_gen {
            // Counted in an earlier inline period: what it polled may be stale.
            return Ok(0);
        }
        self.watchers = self.watchers.saturating_sub(1);
        self.hooks_busy = true;
        let primary_fd = self
            .engine
            .primary()
            .and_then(|p| self.servers.get(&p))
            .map(|p| p.fd.as_raw_fd());
        let mut ok = true;
        for p in fds.iter().skip(1) {
            if Some(p.fd) == primary_fd
                && p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
            {
                ok = self.hook_read_primary();
            }
        }
        if !ok {
            self.watchers_done();
            return Err(HandedOver);
        }
        self.flush_servers();
        self.watchers_done();
        let mut ready = 0;
        let pair_in = fds.first().is_some_and(|p| p.revents & libc::POLLIN != 0);
        if pair_in && self.pair_bytes == Some(0) {
            // The loop wrote into the socketpair without this thread counting it.
            self.pair_bytes = None;
        }
        if events & libc::POLLIN != 0
            && (pair_in || !self.engine.app_output().is_empty() || !self.app.fds_out.is_empty())
        {
            ready |= libc::POLLIN;
        }
        if events & libc::POLLOUT != 0 && self.server_backlog() <= INLINE_BOUND {
            ready |= libc::POLLOUT;
        }
        Ok(ready)
    }

    /// A watcher left. The guimux thread takes the primary back only once no app thread
    /// polled it for [`ARM_DELAY`] (see [`Loop::inline_tick`]); output interest may have
    /// changed now.
    fn watchers_done(&mut self) {
        self.rearm();
    }

    /// The guimux thread's look after a wake-up or its timeout: when no app thread polled the
    /// primary since the last look, it watches the primary again (bytes already there wake it
    /// at once: epoll reports a descriptor ready when it is modified), so that a toolkit
    /// polling fd N itself gets events from it. Returns the timeout for its next sleep.
    fn inline_tick(&mut self) -> Option<std::time::Duration> {
        if self.primary_off && self.watchers == 0 && !self.hooks_busy {
            self.primary_off = false;
            self.rearm();
        }
        self.hooks_busy = false;
        let lazy = self.lazy_pending();
        // The guimux thread sleeps with a timeout from now on: hooks need not nudge it for the
        // guard's bytes.
        self.lazy_armed = lazy || self.primary_off;
        match (self.primary_off, lazy) {
            (true, _) => Some(ARM_DELAY),
            (false, true) => Some(GUARD_DELAY),
            (false, false) => None,
        }
    }

    /// Hooked poll gave up its wait without finishing (the mode changed, an error).
    pub fn hook_poll_abandon(&mut self, gen: u64) {
        if gen == self.inline_gen {
            self.watchers = self.watchers.saturating_sub(1);
        }
        self.rearm();
    }

    /// Go inline (guimux thread, with the lock): relayed writes in flight land first, what the
    /// app already wrote into the socketpair is read, then the hooks take over.
    fn enter_inline(&mut self) -> std::io::Result<Arc<Epoll>> {
        let sw = self.switch.clone();
        sw.inline.store(true, Ordering::SeqCst);
        while sw.inflight.load(Ordering::SeqCst) > 0 {
            std::thread::yield_now();
        }
        // What the app wrote into the socketpair before is older than anything the hooks get.
        loop {
            let mut p = [libc::pollfd {
                fd: self.app.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            if !matches!(crate::ffi::poll(&mut p, 0), Ok(1)) {
                break;
            }
            if let Some(end) = self.read_app() {
                sw.inline.store(false, Ordering::SeqCst);
                self.end_inline = Some(end);
                return Err(std::io::Error::other("the app's connection ended"));
            }
            if !matches!(self.mode, Mode::Engine) {
                sw.inline.store(false, Ordering::SeqCst);
                return Err(std::io::Error::other("a panic was contained"));
            }
        }
        let ep = Arc::new(Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?);
        ep.add(
            self.wake.as_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_WAKE),
        )?;
        ep.add(
            sw.nudge.as_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_NUDGE),
        )?;
        ep.add(
            self.app.fd.as_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_APP),
        )?;
        self.epoll = Some(ep.clone());
        self.armed.clear();
        self.watchers = 0;
        self.primary_off = false;
        self.hooks_busy = false;
        self.inline_gen += 1;
        self.pair_bytes = None;
        self.end_inline = None;
        self.inline_primary = self.engine.primary();
        self.inline_servers = self.servers.len();
        self.lazy = self.engine.lean_replicas();
        self.lazy_armed = false;
        self.rearm();
        sw.bump_kick();
        tracing::debug!(app_fd = sw.app_fd, "connection inline");
        Ok(ep)
    }

    /// Leave inline (guimux thread, with the lock): the hooks relay from now on.
    fn leave_inline(&mut self) {
        self.lazy.clear();
        self.switch.inline.store(false, Ordering::SeqCst);
        self.epoll = None;
        self.armed.clear();
        self.switch.bump_kick();
        tracing::debug!(app_fd = self.switch.app_fd, "connection relayed");
    }

    /// The guimux thread's part while inline, after a wake-up (with the lock). `Err` to leave.
    fn inline_events(&mut self, events: &[EpollEvent]) -> Result<(), Option<Ended>> {
        if self.end_inline.is_some() {
            return Err(self.end_inline.take());
        }
        let mut leave = !self.switch.wants_inline() || !matches!(self.mode, Mode::Engine);
        for ev in events {
            let readable = ev
                .events()
                .intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR);
            match ev.data() {
                TOKEN_WAKE => {
                    let _ = self.wake.read();
                    // Status queries are answered here; any other command is the relayed
                    // loop's.
                    while let Ok(c) = self.rx.try_recv() {
                        match c {
                            super::handle::Cmd::Query(f) => {
                                let engine = &mut self.engine;
                                let _ =
                                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                        f(engine)
                                    }));
                            }
                            other => {
                                self.deferred.push(other);
                                leave = true;
                            }
                        }
                    }
                }
                TOKEN_NUDGE => {
                    let _ = self.switch.nudge.read();
                }
                TOKEN_APP if readable => {
                    // Stray bytes (not through libxcb's hooked calls), or the app closed fd N.
                    let before = self.engine.stats().bytes_from_app;
                    if let Some(end) = self.read_app() {
                        return Err(Some(end));
                    }
                    if self.engine.stats().bytes_from_app != before {
                        // Something else writes this connection (an X library of its own
                        // beside libxcb): the hooks would reorder its bytes; relayed for good.
                        self.switch.give_up(
                            "the app writes its X connection other than through libxcb".into(),
                        );
                    }
                    leave = true;
                }
                t if t >= TOKEN_SERVER && readable => {
                    let s = (t - TOKEN_SERVER) as ServerId;
                    if Some(s) == self.engine.primary() && self.watchers > 0 {
                        continue;
                    }
                    if let Some(end) = self.read_server(s) {
                        return Err(Some(end));
                    }
                }
                _ => {}
            }
        }
        // Bytes for the app go into the socketpair (a toolkit polling fd N wakes), after the
        // ones already there.
        let before = self.engine.app_output().len();
        if let Some(end) = self.flush_all() {
            return Err(Some(end));
        }
        let written = before.saturating_sub(self.engine.app_output().len());
        if written > 0 {
            self.pair_bytes = self.pair_bytes.map(|b| b + written);
        }
        if !self.servers_unchanged() || !matches!(self.mode, Mode::Engine) {
            leave = true;
        }
        if leave {
            return Err(None);
        }
        self.rearm();
        Ok(())
    }
}

/// The connection's thread: the relayed loop, and the inline mode whenever it is due.
pub(super) fn drive(state: &Arc<Mutex<Loop>>, sw: &Switch) -> Ended {
    loop {
        let end = lock(state).run();
        if let Some(end) = end {
            return end;
        }
        if let Some(end) = run_inline(state) {
            return end;
        }
        // Back to relayed: hooks that saw inline leave the locked path first, then the relayed
        // loop keeps the lock.
        while sw.inside.load(Ordering::SeqCst) > 0 {
            std::thread::yield_now();
        }
    }
}

/// Inline until a command, trouble or the end: `Some(end)` when the connection ended.
fn run_inline(state: &Arc<Mutex<Loop>>) -> Option<Ended> {
    let ep = {
        let mut l = lock(state);
        match l.enter_inline() {
            Ok(ep) => ep,
            Err(e) => {
                tracing::debug!("not inline now: {e}");
                l.last_command = std::time::Instant::now();
                return l.end_inline.take();
            }
        }
    };
    let mut events = [EpollEvent::empty(); 16];
    let mut next: Option<std::time::Duration> = None;
    loop {
        let timeout = match next {
            Some(d) => EpollTimeout::try_from(d).unwrap_or(EpollTimeout::NONE),
            None => EpollTimeout::NONE,
        };
        let n = match ep.wait(&mut events, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                tracing::error!("epoll: {e}");
                let mut l = lock(state);
                l.leave_inline();
                return None;
            }
        };
        let mut l = lock(state);
        if n == 0 {
            l.flush_lazy();
            l.rearm();
        }
        let r = l.inline_events(&events[..n]);
        next = l.inline_tick();
        match r {
            Ok(()) => {}
            Err(end) => {
                l.leave_inline();
                l.last_command = std::time::Instant::now();
                if end.is_some() {
                    let _ = l.flush_all();
                }
                return end;
            }
        }
    }
}
