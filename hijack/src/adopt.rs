//! Adoption of interposed connections by guimux. The safe-point function parks each swapped X
//! connection (app end of the socketpair + original server socket) and writes the wake eventfd;
//! this thread wakes, takes them, starts one [`crate::muxloop`] per connection with a
//! [`guimux::Engine`] that synchronises on a sentinel request, and registers it with the
//! process-wide [`Controller`] so that control commands reach it.

use crate::conn::Conn;
use crate::controller::Controller;
use crate::{interpose, muxloop, xfd};
use guimux::fields::ByteOrder;
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::OnceLock;

/// The process-wide controller of hijacked connections.
pub fn controller() -> &'static Controller {
    static C: OnceLock<Controller> = OnceLock::new();
    C.get_or_init(Controller::default)
}

/// A sentinel XID no client can own: client-index bits all ones, low bits from the PID and a
/// counter so that two sentinels never look alike.
fn sentinel_id() -> u32 {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    0x1fe0_0000 | ((std::process::id().wrapping_mul(31).wrapping_add(n * 7919)) & 0x000f_ffff)
}

/// Start the adopter thread; returns the raw eventfd the safe-point function writes.
pub fn spawn() -> std::io::Result<RawFd> {
    let wake = EventFd::from_flags(EfdFlags::EFD_CLOEXEC)?;
    let raw = wake.as_fd().as_raw_fd();
    std::thread::Builder::new()
        .name("guievict-adopt".into())
        .spawn(move || {
            let _old = crate::ffi::block_all_signals();
            loop {
                if wake.read().is_err() {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
                for sw in interpose::take_ready() {
                    adopt_one(sw);
                }
            }
        })?;
    Ok(raw)
}

fn adopt_one(sw: interpose::Swapped) {
    let peer = xfd::peer_of(sw.server.as_raw_fd());
    let dpy = match &peer {
        Some(xfd::XPeer::Unix { display, .. }) => format!(":{display}"),
        Some(xfd::XPeer::Tcp { display, addr }) => {
            let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
            format!("{host}:{display}")
        }
        None => std::env::var("DISPLAY").unwrap_or_default(),
    };
    interpose::mark_own(sw.server.as_raw_fd());
    let app_fd = sw.app_fd;
    let server_raw = sw.server.as_raw_fd();
    // x86-64 and every little-endian host: xcb speaks the host's byte order.
    let order = if cfg!(target_endian = "big") {
        ByteOrder::Big
    } else {
        ByteOrder::Little
    };
    let mut engine = guimux::Engine::hijacked(order, sentinel_id());
    // The app's MIT-SHM segments are in this process: guimux can serve them itself where a
    // server cannot share memory.
    engine.set_segment_memory(Box::new(crate::shmmem::ProcessSegments::default()));
    match muxloop::spawn(engine, sw.relay, Some(sw.server), Some(app_fd)) {
        Ok((handle, join)) => {
            tracing::info!(app_fd, display = %dpy, "guimux relays X connection");
            controller().add(Conn {
                app_fd,
                handle,
                display: Some(dpy),
                server_setup: None,
                auth: None,
                detached: None,
                replicas: Vec::new(),
                guard: None,
                held: false,
            });
            // Release the connection's slots when its loop ends.
            let _ = std::thread::Builder::new()
                .name("guievict-reap".into())
                .spawn(move || {
                    let _ = join.join();
                    interpose::unmark_own(server_raw);
                    interpose::release(app_fd);
                });
        }
        Err(e) => tracing::error!(app_fd, error = %e, "cannot start guimux for connection"),
    }
}
