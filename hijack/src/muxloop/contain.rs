//! Panic containment. A panic while the engine handles bytes (app, server) or a command is
//! caught here and turned into a state: with the connection still on its original server and
//! identity maps, the engine gives way to a [`guimux::salvage::PassThrough`] (bytes unchanged,
//! sequence numbers shifted, this module relays them); otherwise the engine goes on with the
//! failed call's unconsumed bytes put back, and after [`MAX_PANICS`] the loop relays nothing but
//! keeps the application's socket open. Either way the state text is published (the handle's
//! `degraded`) and commands that need the engine are refused from then on.

use super::handle::{lock, Cmd, Ended};
use super::io::{read_some, write_some, ReadResult};
use super::{panic_message, Loop, Mode, BOUND, MAX_PANICS};
use crate::ffi;
use guimux::salvage::{FailedCall, Side};
use guimux::ServerId;
use std::os::fd::{AsFd, AsRawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};

impl Loop {
    /// Record a contained panic and decide how the connection goes on.
    pub(super) fn contained_panic(
        &mut self,
        what: &str,
        msg: String,
        failed: Option<FailedCall<'_>>,
    ) {
        self.panics += 1;
        tracing::error!(
            panics = self.panics,
            "guimux panicked while handling {what}: {msg}"
        );
        // A guard is guievict's, not the user's: when it is all that stands between the app
        // and passing bytes through on its original server, it goes (the app lives on
        // unguarded, said in the state below).
        let guards = self.engine.lean_replicas();
        let only_guards = !guards.is_empty()
            && self.engine.server_ids().len() == guards.len() + 1
            && self.engine.salvage_obstacle().as_deref()
                == Some("replicas or pending servers exist");
        if only_guards {
            for s in &guards {
                self.engine.remove_server(*s);
                if let Some(p) = self.servers.remove(s) {
                    crate::interpose::unmark_own(p.fd.as_raw_fd());
                }
            }
        }
        let state = match self.engine.salvage(failed) {
            Ok((pt, lost)) => {
                if lost > 0 {
                    tracing::warn!(lost, "bytes of a partial message lost in the salvage");
                }
                self.mode = Mode::PassThrough(pt);
                self.internal = None;
                format!(
                    "guimux panicked while handling {what} ({msg}); passing bytes through unchanged to the original server{}",
                    if only_guards { " (its guard dropped: it no longer outlives its X server)" } else { "" }
                )
            }
            Err(why) => {
                if let Some(f) = failed {
                    let lost = self.engine.recover_input(&f);
                    if lost > 0 {
                        tracing::warn!(lost, "bytes of a partial message lost after the panic");
                    }
                }
                if self.panics >= MAX_PANICS {
                    self.mode = Mode::Stopped;
                    format!(
                        "guimux panicked {} times, last while handling {what} ({msg}); relaying stopped, the application's connection is held open",
                        self.panics
                    )
                } else {
                    format!(
                        "guimux panicked while handling {what} ({msg}); no pass-through fallback ({why}), relaying on"
                    )
                }
            }
        };
        tracing::error!("{state}");
        *lock(&self.shared.degraded) = Some(state);
    }

    /// Feed `n` bytes of the read buffer to the engine for `side`, containing a panic.
    pub(super) fn feed(&mut self, side: Side, n: usize) -> Option<Result<(), guimux::EngineError>> {
        let mark = self.engine.input_mark(side);
        let fault = std::mem::take(&mut self.panic_next);
        let mut entered = false;
        let engine = &mut self.engine;
        let d = &self.rbuf[..n];
        let r = catch_unwind(AssertUnwindSafe(|| {
            if fault {
                panic!("guievict test fault: engine panic requested");
            }
            entered = true;
            match side {
                Side::App => engine.app_input(d),
                Side::Server(s) => engine.server_input(s, d),
            }
        }));
        match r {
            Ok(r) => Some(r),
            Err(p) => {
                let data = self.rbuf[..n].to_vec();
                let what = match side {
                    Side::App => "application bytes".to_string(),
                    Side::Server(s) => format!("bytes from server {s}"),
                };
                let call = FailedCall {
                    side,
                    mark,
                    data: &data,
                    entered,
                };
                self.contained_panic(&what, panic_message(&*p), Some(call));
                None
            }
        }
    }

    /// A command while degraded: nothing that needs the engine is carried out.
    pub(super) fn command_degraded(&mut self, c: Cmd) {
        match c {
            // Dropping the closure drops its reply channel: the caller gets the degraded error.
            Cmd::Engine(_) | Cmd::Query(_) | Cmd::AddServer(..) | Cmd::PanicNext => {}
            Cmd::RemoveServer(s, reply) => {
                if !matches!(&self.mode, Mode::PassThrough(pt) if pt.server() == s) {
                    if let Some(p) = self.servers.remove(&s) {
                        crate::interpose::unmark_own(p.fd.as_raw_fd());
                    }
                }
                let _ = reply.send(());
            }
            Cmd::StartInternal(_, _, reply) => {
                let _ = reply.send(Err(lock(&self.shared.degraded)
                    .clone()
                    .unwrap_or_else(|| "degraded".into())));
            }
            Cmd::StopInternal(reply) => {
                let _ = reply.send(());
            }
        }
    }

    /// Relay without the engine (after a contained panic): app and original server only.
    pub(super) fn run_passthrough(&mut self) -> Ended {
        let Mode::PassThrough(pt) = std::mem::replace(&mut self.mode, Mode::Stopped) else {
            return self.run_stopped();
        };
        let mut pt = pt;
        let sid = pt.server();
        // Other servers (replicas, pending ones) are closed; so is the internal client.
        self.internal = None;
        let others: Vec<ServerId> = self.servers.keys().copied().filter(|s| *s != sid).collect();
        for s in others {
            if let Some(p) = self.servers.remove(&s) {
                crate::interpose::unmark_own(p.fd.as_raw_fd());
            }
        }
        let Some(mut server) = self.servers.remove(&sid) else {
            return Ended::ServerClosed(sid);
        };
        loop {
            // Write what each side can take.
            let out = pt.app_output();
            if !out.is_empty() {
                match write_some(&mut self.app, out) {
                    Ok(n) => {
                        out.drain(..n);
                    }
                    Err(e) => return Ended::Error(format!("writing to the app: {e}")),
                }
            }
            let out = pt.server_output();
            if !out.is_empty() {
                match write_some(&mut server, out) {
                    Ok(n) => {
                        out.drain(..n);
                    }
                    Err(_) => return Ended::ServerClosed(sid),
                }
            }
            let app_out = pt.app_output().len();
            let srv_out = pt.server_output().len();
            let mut pfds = [
                libc::pollfd {
                    fd: self.wake.as_fd().as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.app.fd.as_raw_fd(),
                    events: if srv_out <= BOUND { libc::POLLIN } else { 0 }
                        | if app_out > 0 { libc::POLLOUT } else { 0 },
                    revents: 0,
                },
                libc::pollfd {
                    fd: server.fd.as_raw_fd(),
                    events: if app_out <= BOUND { libc::POLLIN } else { 0 }
                        | if srv_out > 0 { libc::POLLOUT } else { 0 },
                    revents: 0,
                },
            ];
            match ffi::poll(&mut pfds, -1) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Ended::Error(format!("poll: {e}")),
            }
            let readable = |p: &libc::pollfd| {
                p.events & libc::POLLIN != 0
                    && p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
            };
            if pfds[0].revents != 0 {
                let _ = self.wake.read();
                let mut cmds = std::mem::take(&mut self.deferred);
                cmds.extend(std::iter::from_fn(|| self.rx.try_recv().ok()));
                for c in cmds {
                    self.command_degraded(c);
                }
            }
            if readable(&pfds[1]) {
                match read_some(self.app.fd.as_raw_fd(), &mut self.rbuf) {
                    Ok(ReadResult::Data(n, fds)) => {
                        server.fds_out.extend(fds);
                        pt.app_input(&self.rbuf[..n]);
                    }
                    Ok(ReadResult::WouldBlock) => {}
                    Ok(ReadResult::Eof) => return Ended::AppClosed,
                    Err(e) => return Ended::Error(format!("reading from the app: {e}")),
                }
            }
            if readable(&pfds[2]) {
                match read_some(server.fd.as_raw_fd(), &mut self.rbuf) {
                    Ok(ReadResult::Data(n, fds)) => {
                        self.app.fds_out.extend(fds);
                        pt.server_input(&self.rbuf[..n]);
                    }
                    Ok(ReadResult::WouldBlock) => {}
                    Ok(ReadResult::Eof) | Err(_) => {
                        let out = pt.app_output();
                        if let Ok(n) = write_some(&mut self.app, out) {
                            out.drain(..n);
                        }
                        return Ended::ServerClosed(sid);
                    }
                }
            }
        }
    }

    /// Relay nothing, keep the application's socket open (after [`MAX_PANICS`]): the process
    /// lives on; the loop ends only when the application closes its end.
    pub(super) fn run_stopped(&mut self) -> Ended {
        loop {
            let mut pfds = [
                libc::pollfd {
                    fd: self.wake.as_fd().as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.app.fd.as_raw_fd(),
                    events: 0,
                    revents: 0,
                },
            ];
            match ffi::poll(&mut pfds, -1) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Ended::Error(format!("poll: {e}")),
            }
            if pfds[0].revents != 0 {
                let _ = self.wake.read();
                let mut cmds = std::mem::take(&mut self.deferred);
                cmds.extend(std::iter::from_fn(|| self.rx.try_recv().ok()));
                for c in cmds {
                    self.command_degraded(c);
                }
            }
            if pfds[1].revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                return Ended::AppClosed;
            }
        }
    }
}
