//! A slow link in front of a local X server, for tests and benchmarks of remote attach (this
//! kernel has no `netem` qdisc). What flows through it: X protocol bytes between TCP clients of
//! `127.0.0.1:6000+N` (so `localhost:N` / `127.0.0.1:N` is a display) and the server's unix
//! socket `/tmp/.X11-unix/X<M>`; each chunk read on one side is written to the other `delay`
//! after it was read (order kept), in both directions, so a round trip costs twice `delay`.
//! The relay counts the bytes each way. It runs in threads of the test process and stops (every
//! socket shut down) when the [`DelayLink`] is dropped.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bytes carried by a link, both directions, summed over its connections.
#[derive(Debug, Default)]
pub struct LinkCounters {
    /// Client → server bytes.
    pub to_server: AtomicU64,
    /// Server → client bytes.
    pub to_client: AtomicU64,
    /// Connections accepted.
    pub connections: AtomicU64,
}

/// A TCP display `127.0.0.1:N` whose every byte reaches the local server `target` (`:M`)
/// `delay` after it was sent, and whose answers come back as late. Dropped: stops.
pub struct DelayLink {
    /// Display name of the link, `127.0.0.1:N`.
    pub display: String,
    /// Display number N (TCP port 6000+N).
    pub number: u16,
    /// One-way delay.
    pub delay: Duration,
    /// What crossed the link so far.
    pub counters: Arc<LinkCounters>,
    stop: Arc<AtomicBool>,
    sockets: Arc<Mutex<Vec<Socket>>>,
}

enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl DelayLink {
    /// Start a link to the local display `target` (`":M"`) with a round trip of `rtt`
    /// (`rtt / 2` each way), listening on the first free TCP port 6000+N for N in `numbers`.
    pub fn start(target: &str, rtt: Duration, numbers: std::ops::Range<u16>) -> Result<Self> {
        let m: u32 = target
            .trim_start_matches(':')
            .split('.')
            .next()
            .unwrap_or_default()
            .parse()
            .with_context(|| format!("{target} is not a local display :M"))?;
        let path = format!("/tmp/.X11-unix/X{m}");
        let mut bound = None;
        for n in numbers.clone() {
            if let Ok(l) = TcpListener::bind(("127.0.0.1", 6000 + n)) {
                bound = Some((n, l));
                break;
            }
        }
        let Some((number, listener)) = bound else {
            bail!("no free TCP port 6000+N for N in {numbers:?}");
        };
        listener.set_nonblocking(true)?;
        let delay = rtt / 2;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(LinkCounters::default());
        let sockets: Arc<Mutex<Vec<Socket>>> = Arc::default();
        {
            let (stop, counters, sockets) = (stop.clone(), counters.clone(), sockets.clone());
            std::thread::Builder::new()
                .name(format!("delay-link-{number}"))
                .spawn(move || accept_loop(listener, path, delay, stop, counters, sockets))?;
        }
        Ok(Self {
            display: format!("127.0.0.1:{number}"),
            number,
            delay,
            counters,
            stop,
            sockets,
        })
    }

    /// The PID the far server sees (X-Resource `LOCAL_CLIENT_PID`) for every client of the
    /// link: the relay's own process, not the app (use it with `wait_for_window`).
    pub fn peer_pid(&self) -> u32 {
        std::process::id()
    }

    /// Bytes carried so far: (client → server, server → client).
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.counters.to_server.load(Ordering::Relaxed),
            self.counters.to_client.load(Ordering::Relaxed),
        )
    }
}

impl Drop for DelayLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Ok(mut s) = self.sockets.lock() {
            for s in s.drain(..) {
                match s {
                    Socket::Tcp(t) => {
                        let _ = t.shutdown(Shutdown::Both);
                    }
                    Socket::Unix(u) => {
                        let _ = u.shutdown(Shutdown::Both);
                    }
                }
            }
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    path: String,
    delay: Duration,
    stop: Arc<AtomicBool>,
    counters: Arc<LinkCounters>,
    sockets: Arc<Mutex<Vec<Socket>>>,
) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((tcp, _)) => {
                let _ = tcp.set_nonblocking(false);
                let _ = tcp.set_nodelay(true);
                let unix = match UnixStream::connect(&path) {
                    Ok(u) => u,
                    Err(e) => {
                        tracing::warn!("delay link: connecting {path}: {e}");
                        continue;
                    }
                };
                counters.connections.fetch_add(1, Ordering::Relaxed);
                let pair = (|| {
                    Ok::<_, std::io::Error>((
                        tcp.try_clone()?,
                        tcp.try_clone()?,
                        unix.try_clone()?,
                        unix.try_clone()?,
                    ))
                })();
                let Ok((tcp_r, tcp_w, unix_r, unix_w)) = pair else {
                    continue;
                };
                if let Ok(mut s) = sockets.lock() {
                    s.push(Socket::Tcp(tcp));
                    s.push(Socket::Unix(unix));
                }
                let c = counters.clone();
                pipe(
                    Box::new(tcp_r),
                    Box::new(unix_w),
                    delay,
                    move |n| {
                        c.to_server.fetch_add(n, Ordering::Relaxed);
                    },
                    stop.clone(),
                );
                let c = counters.clone();
                pipe(
                    Box::new(unix_r),
                    Box::new(tcp_w),
                    delay,
                    move |n| {
                        c.to_client.fetch_add(n, Ordering::Relaxed);
                    },
                    stop.clone(),
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => {
                tracing::warn!("delay link: accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

type Chunk = (Instant, Vec<u8>);

/// One direction: a reader thread stamps each chunk with its due time, a writer thread writes
/// it then. When either side ends, the other's write side is shut down.
fn pipe(
    mut from: Box<dyn ReadHalf>,
    mut to: Box<dyn WriteHalf>,
    delay: Duration,
    count: impl Fn(u64) + Send + 'static,
    stop: Arc<AtomicBool>,
) {
    let (tx, rx): (Sender<Chunk>, Receiver<Chunk>) = channel();
    let _ = std::thread::Builder::new()
        .name("delay-link-read".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx
                            .send((Instant::now() + delay, buf[..n].to_vec()))
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
            from.close_read();
        });
    let _ = std::thread::Builder::new()
        .name("delay-link-write".into())
        .spawn(move || {
            while let Ok((due, bytes)) = rx.recv() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                if to.write_all(&bytes).is_err() {
                    break;
                }
                count(bytes.len() as u64);
            }
            to.close_write();
        });
}

trait ReadHalf: Read + Send {
    fn close_read(&self);
}
trait WriteHalf: Write + Send {
    fn close_write(&self);
}
impl ReadHalf for TcpStream {
    fn close_read(&self) {
        let _ = self.shutdown(Shutdown::Read);
    }
}
impl WriteHalf for TcpStream {
    fn close_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}
impl ReadHalf for UnixStream {
    fn close_read(&self) {
        let _ = self.shutdown(Shutdown::Read);
    }
}
impl WriteHalf for UnixStream {
    fn close_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}
