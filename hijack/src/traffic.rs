//! What guievict's own X connections cost on the link: round trips and bytes. Every internal
//! x11rb client (capture, regenerate, preflight probes) talks through a [`Counted`] stream,
//! and the setup handshakes of `session::connect_raw` report themselves here; the bytes each
//! way and every *round trip* — a wait for the server's answer after requests were written —
//! flow into a per-thread meter. Operations read the meter before and after
//! ([`now`], [`Traffic::since`]) and put the difference in their JSON report, so that a
//! slow link's cost can be seen per operation and per connection (issue 15: on a 50 ms link
//! each round trip is 50 ms).

use std::io::IoSlice;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use x11rb::rust_connection::{DefaultStream, PollMode, RustConnection, Stream};
use x11rb::utils::RawFdContainer;

/// guievict's own x11rb client: its round trips and bytes are counted (see [`Counted`]).
pub type Internal = RustConnection<Counted>;

/// Round trips and bytes of an operation on one X connection of the app.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Traffic {
    /// Waits for the server's answer (setup handshakes and connects included).
    pub round_trips: u64,
    /// Bytes written to the X server.
    pub bytes_sent: u64,
    /// Bytes read from the X server.
    pub bytes_received: u64,
}

impl Traffic {
    /// What was counted between `before` and `self`.
    pub fn since(self, before: Traffic) -> Traffic {
        Traffic {
            round_trips: self.round_trips.saturating_sub(before.round_trips),
            bytes_sent: self.bytes_sent.saturating_sub(before.bytes_sent),
            bytes_received: self.bytes_received.saturating_sub(before.bytes_received),
        }
    }

    /// The two summed.
    pub fn plus(self, o: Traffic) -> Traffic {
        Traffic {
            round_trips: self.round_trips + o.round_trips,
            bytes_sent: self.bytes_sent + o.bytes_sent,
            bytes_received: self.bytes_received + o.bytes_received,
        }
    }
}

#[derive(Debug, Default)]
struct Meter {
    round_trips: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
}

thread_local! {
    static METER: Arc<Meter> = Arc::default();
}

fn meter() -> Arc<Meter> {
    METER.with(Arc::clone)
}

/// The totals counted on this thread so far.
pub fn now() -> Traffic {
    let m = meter();
    Traffic {
        round_trips: m.round_trips.load(Ordering::Relaxed),
        bytes_sent: m.sent.load(Ordering::Relaxed),
        bytes_received: m.received.load(Ordering::Relaxed),
    }
}

/// Count traffic that did not pass through a [`Counted`] stream (a setup handshake).
pub fn add(t: Traffic) {
    let m = meter();
    m.round_trips.fetch_add(t.round_trips, Ordering::Relaxed);
    m.sent.fetch_add(t.bytes_sent, Ordering::Relaxed);
    m.received.fetch_add(t.bytes_received, Ordering::Relaxed);
}

/// An x11rb stream that counts into the meter of the thread that made it.
#[derive(Debug)]
pub struct Counted {
    inner: DefaultStream,
    meter: Arc<Meter>,
    /// Requests were written since the last wait for an answer.
    wrote: AtomicBool,
}

impl Counted {
    /// Count `inner`'s traffic on this thread's meter.
    pub fn new(inner: DefaultStream) -> Self {
        Self {
            inner,
            meter: meter(),
            wrote: AtomicBool::new(false),
        }
    }
}

impl Stream for Counted {
    fn poll(&self, mode: PollMode) -> std::io::Result<()> {
        // x11rb polls for reading alone only when it must wait for an answer; a wait after
        // writing is one round trip (waiting again for the rest of the same answer is not).
        if matches!(mode, PollMode::Readable) && self.wrote.swap(false, Ordering::Relaxed) {
            self.meter.round_trips.fetch_add(1, Ordering::Relaxed);
            if tracing::enabled!(tracing::Level::TRACE) {
                tracing::trace!(
                    "round trip {} at {}",
                    self.meter.round_trips.load(Ordering::Relaxed),
                    std::backtrace::Backtrace::force_capture()
                );
            }
        }
        self.inner.poll(mode)
    }

    fn read(&self, buf: &mut [u8], fds: &mut Vec<RawFdContainer>) -> std::io::Result<usize> {
        let n = self.inner.read(buf, fds)?;
        self.meter.received.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn write(&self, buf: &[u8], fds: &mut Vec<RawFdContainer>) -> std::io::Result<usize> {
        let n = self.inner.write(buf, fds)?;
        self.note_write(n);
        Ok(n)
    }

    fn write_vectored(
        &self,
        bufs: &[IoSlice<'_>],
        fds: &mut Vec<RawFdContainer>,
    ) -> std::io::Result<usize> {
        let n = self.inner.write_vectored(bufs, fds)?;
        self.note_write(n);
        Ok(n)
    }
}

impl Counted {
    fn note_write(&self, n: usize) {
        if n > 0 {
            self.meter.sent.fetch_add(n as u64, Ordering::Relaxed);
            self.wrote.store(true, Ordering::Relaxed);
        }
    }
}
