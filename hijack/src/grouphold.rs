//! Group holds: the deadline of a [`crate::control::Request::GroupHold`]. The controller hands
//! in (token, deadline, the relays it held, the `guievict` process that asked); one lazily
//! started thread waits for the deadlines and for that process, and when either comes — the
//! deadline passed, or the `guievict` that took the hold exited without releasing it (killed,
//! crashed) — ends that hold on every relay still held under its token, so that the
//! application's requests are never left queued. A hold released in time makes this a no-op.
//! The holder is watched through a pidfd, looked at every [`HOLDER_LOOK`] while a hold is
//! armed (and not at all otherwise: an idle app does not wake up for this).

use crate::muxloop::MuxHandle;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often the holder's pidfd is looked at while a hold is armed.
const HOLDER_LOOK: Duration = Duration::from_millis(50);

/// One hold waiting for its deadline.
struct Armed {
    token: u64,
    at: Instant,
    relays: Vec<MuxHandle>,
    /// The `guievict` that took the hold (its PID and a pidfd for it), when known.
    holder: Option<(u32, OwnedFd)>,
}

impl Armed {
    /// Whether the process that took the hold has exited.
    fn holder_gone(&self) -> bool {
        let Some((_, fd)) = &self.holder else {
            return false;
        };
        let mut p = [libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        matches!(crate::ffi::poll(&mut p, 0), Ok(n) if n > 0)
    }
}

fn timer() -> Option<&'static Mutex<Sender<Armed>>> {
    static TIMER: OnceLock<Option<Mutex<Sender<Armed>>>> = OnceLock::new();
    TIMER
        .get_or_init(|| {
            let (tx, rx) = channel::<Armed>();
            let spawned = std::thread::Builder::new()
                .name("guievict-hold".into())
                .spawn(move || {
                    let mut armed: Vec<Armed> = Vec::new();
                    loop {
                        let mut next = armed.iter().map(|a| a.at).min();
                        if armed.iter().any(|a| a.holder.is_some()) {
                            let look = Instant::now() + HOLDER_LOOK;
                            next = next.map(|n| n.min(look));
                        }
                        let got = match next {
                            Some(at) => {
                                rx.recv_timeout(at.saturating_duration_since(Instant::now()))
                            }
                            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                        };
                        match got {
                            Ok(a) => armed.push(a),
                            Err(RecvTimeoutError::Timeout) => {}
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                        let now = Instant::now();
                        armed.retain(|a| {
                            if a.at <= now {
                                expire(a, "at its deadline");
                                return false;
                            }
                            if a.holder_gone() {
                                let why = format!(
                                    "as soon as guievict (pid {}) ended without releasing it",
                                    a.holder.as_ref().map_or(0, |h| h.0)
                                );
                                expire(a, &why);
                                return false;
                            }
                            true
                        });
                    }
                });
            match spawned {
                Ok(_) => Some(Mutex::new(tx)),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the group-hold timer thread");
                    None
                }
            }
        })
        .as_ref()
}

/// End hold `a` on every relay still held under its token (`when`: for the log).
fn expire(a: &Armed, when: &str) {
    let token = a.token;
    let mut ended = 0;
    for r in &a.relays {
        if let Ok(true) = r.with_engine(move |e| e.group_release(Some(token))) {
            ended += 1;
        }
    }
    if ended > 0 {
        tracing::warn!(
            token,
            connections = ended,
            "group hold not released by guievict; released {when}"
        );
    }
}

/// Release hold `token` on `relays` after `limit`, or as soon as process `holder` (the
/// `guievict` that asked) exits, unless it was released before. Without a timer thread (it
/// could not be started) the hold is refused: the caller releases at once.
pub fn arm(
    token: u64,
    limit: Duration,
    relays: Vec<MuxHandle>,
    holder: Option<u32>,
) -> Result<(), String> {
    let tx = timer().ok_or("no group-hold timer thread")?;
    // Opened now, while the holder waits for our answer: the pidfd is its, not a successor's.
    let holder = holder.and_then(|pid| match crate::ffi::pidfd_open(pid) {
        Ok(fd) => Some((pid, fd)),
        Err(e) => {
            tracing::debug!(pid, "no pidfd for the hold's holder ({e}); deadline only");
            None
        }
    });
    tx.lock()
        .unwrap_or_else(|p| p.into_inner())
        .send(Armed {
            token,
            at: Instant::now() + limit,
            relays,
            holder,
        })
        .map_err(|_| "the group-hold timer thread is gone".to_string())
}
