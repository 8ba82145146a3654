//! Group holds: the deadline of a [`crate::control::Request::GroupHold`]. The controller hands
//! in (token, deadline, the relays it held); one lazily started thread waits for the deadlines
//! and, at each, ends that hold on every relay still held under its token, so that a `guievict`
//! that died between hold and release (killed, or a move that hung) does not leave the
//! application's requests queued forever. A hold released in time makes this a no-op.

use crate::muxloop::MuxHandle;
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One hold waiting for its deadline.
struct Armed {
    token: u64,
    at: Instant,
    relays: Vec<MuxHandle>,
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
                        let next = armed.iter().map(|a| a.at).min();
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
                            if a.at > now {
                                return true;
                            }
                            expire(a);
                            false
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

/// End hold `a` on every relay still held under its token.
fn expire(a: &Armed) {
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
            "group hold not released in time by guievict; released at its deadline"
        );
    }
}

/// Release hold `token` on `relays` after `limit` unless it was released before. Without a
/// timer thread (it could not be started) the hold is refused: the caller releases at once.
pub fn arm(token: u64, limit: Duration, relays: Vec<MuxHandle>) -> Result<(), String> {
    let tx = timer().ok_or("no group-hold timer thread")?;
    tx.lock()
        .unwrap_or_else(|p| p.into_inner())
        .send(Armed {
            token,
            at: Instant::now() + limit,
            relays,
        })
        .map_err(|_| "the group-hold timer thread is gone".to_string())
}
