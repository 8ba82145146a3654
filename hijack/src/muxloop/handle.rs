//! The loop's handle: how other threads reach a running loop. Commands (run a closure on the
//! engine, add or remove a server, start or stop the internal client) flow in over a channel
//! with an eventfd wake-up, each answered over its own reply channel within
//! [`COMMAND_TIMEOUT`]; what the loop publishes (degraded, the internal client cut off, replicas
//! promoted, extension placements learnt) flows out through shared state; [`LoopGone`] when it
//! cannot answer.

use guimux::{Engine, Maps, Role, ServerId};
use nix::sys::eventfd::EventFd;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

/// Longest wait for the loop to answer a command (it never blocks, so this only guards against
/// a loop that is gone or wedged).
pub const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

type EngineFn = Box<dyn FnOnce(&mut Engine) + Send>;

/// A command for the loop.
pub(super) enum Cmd {
    /// Run a closure on the engine.
    Engine(EngineFn),
    /// Run a closure that only reads the engine (status): an inline connection stays inline.
    Query(EngineFn),
    /// A new server connection (setup already done): returns its id.
    AddServer(OwnedFd, Sender<ServerId>),
    /// Close and forget a server connection.
    RemoveServer(ServerId, Sender<()>),
    /// Start the internal client on a server, talking over `fd`.
    StartInternal(ServerId, OwnedFd, Sender<Result<(), String>>),
    /// Stop the internal client.
    StopInternal(Sender<()>),
    /// Test hook: panic while handling the next message (see `control::Request::TestFault`).
    PanicNext,
}

/// Why the loop ended.
#[derive(Clone, Debug)]
pub enum Ended {
    /// The application closed its connection.
    AppClosed,
    /// The primary server closed the connection.
    ServerClosed(ServerId),
    /// An unrecoverable engine or I/O error.
    Error(String),
}

/// Handle to a running loop; cloneable, usable from any thread.
#[derive(Clone)]
pub struct MuxHandle {
    pub(super) tx: Sender<Cmd>,
    pub(super) wake: Arc<EventFd>,
    pub(super) done: Arc<std::sync::Mutex<Option<Ended>>>,
    pub(super) shared: Arc<Shared>,
    pub(super) switch: Arc<super::inline::Switch>,
}

/// State the loop publishes for other threads.
#[derive(Debug, Default)]
pub(super) struct Shared {
    /// Set once a panic was contained: what happened and how the connection goes on.
    pub(super) degraded: std::sync::Mutex<Option<String>>,
    /// Set when the internal client was cut off because its server did not answer.
    pub(super) internal_timeout: std::sync::Mutex<Option<String>>,
    /// Replicas promoted because the primary's server died: (dead primary, new primary), not
    /// yet taken by the controller (see [`MuxHandle::take_promotions`]).
    pub(super) promotions: std::sync::Mutex<Vec<(ServerId, ServerId)>>,
    /// Extension placements learned on a server connection (at its attach or a capture from
    /// it), so that a later capture from it asks none (one round trip less on a link).
    pub(super) extensions: std::sync::Mutex<HashMap<ServerId, crate::viewconn::KnownExtensions>>,
}

impl std::fmt::Debug for MuxHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MuxHandle").finish_non_exhaustive()
    }
}

/// The loop has ended; commands cannot be served.
#[derive(Clone, Debug, thiserror::Error)]
#[error("the connection's relay has ended: {0:?}")]
pub struct LoopGone(pub Option<Ended>);

impl MuxHandle {
    fn send(&self, c: Cmd) -> Result<(), LoopGone> {
        self.tx.send(c).map_err(|_| self.gone())?;
        self.wake.write(1).map_err(|_| self.gone())?;
        Ok(())
    }

    fn gone(&self) -> LoopGone {
        if let Some(d) = self.degraded() {
            return LoopGone(Some(Ended::Error(format!("degraded: {d}"))));
        }
        LoopGone(self.done.lock().ok().and_then(|d| d.clone()))
    }

    fn recv<T>(&self, rrx: &Receiver<T>) -> Result<T, LoopGone> {
        rrx.recv_timeout(COMMAND_TIMEOUT).map_err(|e| match e {
            std::sync::mpsc::RecvTimeoutError::Timeout => LoopGone(Some(Ended::Error(format!(
                "the relay did not answer within {} s",
                COMMAND_TIMEOUT.as_secs()
            )))),
            std::sync::mpsc::RecvTimeoutError::Disconnected => self.gone(),
        })
    }

    /// Like [`MuxHandle::with_engine`] with a shorter limit (status must answer quickly).
    pub fn with_engine_within<T: Send + 'static>(
        &self,
        limit: std::time::Duration,
        f: impl FnOnce(&mut Engine) -> T + Send + 'static,
    ) -> Option<T> {
        let (rtx, rrx) = channel();
        self.send(Cmd::Query(Box::new(move |e| {
            let _ = rtx.send(f(e));
        })))
        .ok()?;
        rrx.recv_timeout(limit).ok()
    }

    /// Ask for inline translation in the app's threads (`on`), or for relaying by the guimux
    /// thread. The switch happens when the connection is steady (see `muxloop/inline.rs`).
    pub fn set_inline(&self, on: bool) {
        self.switch.set_wanted(on);
    }

    /// `"inline"` while the app's threads translate, else `"relayed"`.
    pub fn io_mode(&self) -> &'static str {
        if self.switch.is_inline() {
            "inline"
        } else {
            "relayed"
        }
    }

    /// Hooked libxcb calls that took the inline path on this connection so far.
    pub fn inline_calls(&self) -> u64 {
        self.switch.calls()
    }

    /// Why inline translation was given up on this connection (a hook panicked), if it was.
    pub fn inline_broken(&self) -> Option<String> {
        self.switch.broken()
    }

    /// Test hook: the next hooked libxcb call on this connection panics.
    pub fn hook_fault_next(&self) {
        self.switch.fault_next();
    }

    /// Why this connection is degraded (a contained panic), if it is.
    pub fn degraded(&self) -> Option<String> {
        lock(&self.shared.degraded).clone()
    }

    /// Why the internal client was last cut off (its server did not answer), if it was; reading
    /// clears it.
    pub fn internal_timed_out(&self) -> Option<String> {
        lock(&self.shared.internal_timeout).take()
    }

    /// Replicas this loop made the primary since the last call, because the primary's X server
    /// died: `(dead primary, new primary)` (reading clears them).
    pub fn take_promotions(&self) -> Vec<(ServerId, ServerId)> {
        std::mem::take(&mut *lock(&self.shared.promotions))
    }

    /// Test hook: make the loop panic while handling its next message.
    pub fn panic_next(&self) -> Result<(), LoopGone> {
        self.send(Cmd::PanicNext)
    }

    /// Run `f` on the engine inside the loop and return its result.
    pub fn with_engine<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Engine) -> T + Send + 'static,
    ) -> Result<T, LoopGone> {
        let (rtx, rrx) = channel();
        self.send(Cmd::Engine(Box::new(move |e| {
            let _ = rtx.send(f(e));
        })))?;
        self.recv(&rrx)
    }

    /// Hand the loop a new server connection (setup completed); returns its id (role Pending).
    pub fn add_server(&self, fd: OwnedFd) -> Result<ServerId, LoopGone> {
        let (rtx, rrx) = channel();
        self.send(Cmd::AddServer(fd, rtx))?;
        self.recv(&rrx)
    }

    /// Remember the extension placements of server `s` (see [`MuxHandle::known_extensions`]).
    pub fn remember_extensions(&self, s: ServerId, known: crate::viewconn::KnownExtensions) {
        lock(&self.shared.extensions).insert(s, known);
    }

    /// The extension placements of server `s` learned by an earlier internal client, if any
    /// (placements do not change while the connection lives).
    pub fn known_extensions(&self, s: ServerId) -> Option<crate::viewconn::KnownExtensions> {
        lock(&self.shared.extensions).get(&s).cloned()
    }

    /// Close a server connection.
    pub fn remove_server(&self, s: ServerId) -> Result<(), LoopGone> {
        lock(&self.shared.extensions).remove(&s);
        let (rtx, rrx) = channel();
        self.send(Cmd::RemoveServer(s, rtx))?;
        self.recv(&rrx)
    }

    /// Start the internal client on server `s`; returns the socket to speak X on (numbered
    /// from request 1, no setup handshake).
    pub fn start_internal(&self, s: ServerId) -> Result<std::os::unix::net::UnixStream, LoopGone> {
        let (mine, theirs) = std::os::unix::net::UnixStream::pair()
            .map_err(|e| LoopGone(Some(Ended::Error(format!("socketpair: {e}")))))?;
        let (rtx, rrx) = channel();
        self.send(Cmd::StartInternal(s, theirs.into(), rtx))?;
        self.recv(&rrx)?
            .map_err(|e| LoopGone(Some(Ended::Error(e))))?;
        Ok(mine)
    }

    /// Stop the internal client.
    pub fn stop_internal(&self) -> Result<(), LoopGone> {
        let (rtx, rrx) = channel();
        self.send(Cmd::StopInternal(rtx))?;
        self.recv(&rrx)
    }

    /// Make `s` the primary (or a replica) with the given maps.
    pub fn activate(&self, s: ServerId, role: Role, maps: Option<Maps>) -> Result<(), String> {
        self.with_engine(move |e| e.activate(s, role, maps).map_err(|e| e.to_string()))
            .map_err(|e| e.to_string())?
    }

    /// Why the loop ended, if it has.
    pub fn ended(&self) -> Option<Ended> {
        self.done.lock().ok().and_then(|d| d.clone())
    }
}

/// Lock a mutex whose data stays meaningful even if a holder panicked (plain values).
pub(super) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
