//! Client notifications (protocol 1.6): the server's client-state callback flows in — a client
//! finished its connection setup, or its connection closed — and a `ClientNotify` event flows
//! out to every client that asked for that kind with `SelectClientEvents` (but the client
//! itself). An event names the client only by its resource-ID base, which X-Resource shows
//! every client anyway; nothing of its resources is revealed. Events are written in each
//! subscriber's own byte order, so byte-swapped clients need no swap handler.

use crate::ffi;
use crate::server::{api, Api};
use guievict_ext_proto as proto;
use proto::ByteOrder;
use std::collections::{HashMap, HashSet};
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

/// The extension's first event code of this server generation (0: not registered).
static EVENT_BASE: AtomicU8 = AtomicU8::new(0);

/// Subscribers and started clients. Only touched on the server's main thread (dispatch and
/// the client-state callback); the mutex makes that a checked fact rather than a promise.
#[derive(Default)]
struct Clients {
    /// By client index: the subscriber and its `CLIENT_EVENT_*` mask.
    subscribers: HashMap<i16, (Subscriber, u32)>,
    /// Indexes of clients announced as started, so that "gone" is told once (a client whose
    /// resources are retained closes twice: Retained, later Gone).
    started: HashSet<i16>,
}

/// A subscribed client. The pointer stays valid while the client is connected: it is removed
/// in the client's own Retained/Gone callback, before the server frees it.
#[derive(Clone, Copy)]
struct Subscriber(ffi::ClientPtr);

// SAFETY: only used on the server's main thread (see `Clients`).
unsafe impl Send for Subscriber {}

static CLIENTS: Mutex<Option<Clients>> = Mutex::new(None);

fn with<R>(f: impl FnOnce(&mut Clients) -> R) -> R {
    let mut g = CLIENTS.lock().unwrap_or_else(|p| p.into_inner());
    f(g.get_or_insert_with(Clients::default))
}

/// Per server generation: remember the event base and hook the client-state callback list
/// (the server empties its callback lists at every reset).
pub fn install(api: &Api, event_base: u8) {
    EVENT_BASE.store(event_base, Ordering::Release);
    with(|c| *c = Clients::default());
    // SAFETY: dlsym on the running server for its exported `CallbackListPtr
    // ClientStateCallback` variable (a global; bindgen's dynamic loader resolves functions
    // only).
    let list = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"ClientStateCallback".as_ptr()) };
    if list.is_null() {
        eprintln!("GUIEVICT: no ClientStateCallback in this server; client events disabled");
        EVENT_BASE.store(0, Ordering::Release);
        return;
    }
    // SAFETY: `list` points to the server's callback list head; AddCallback keeps our
    // function pointer (static) with a null closure.
    let ok = unsafe {
        (api.f.AddCallback)(
            list as *mut ffi::CallbackListPtr,
            Some(client_state),
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        eprintln!("GUIEVICT: AddCallback failed; client events disabled");
        EVENT_BASE.store(0, Ordering::Release);
    }
}

/// Whether client events work in this generation (else `SelectClientEvents` is refused).
pub fn available() -> bool {
    EVENT_BASE.load(Ordering::Acquire) != 0
}

/// `SelectClientEvents`: set (or with 0 clear) the mask of `client`.
///
/// # Safety
/// `client` must be the live client being dispatched.
pub unsafe fn select(client: ffi::ClientPtr, mask: u32) {
    // SAFETY: valid during dispatch.
    let index = unsafe { (*client).index };
    with(|c| {
        if mask == 0 {
            c.subscribers.remove(&index);
        } else {
            c.subscribers.insert(index, (Subscriber(client), mask));
        }
    });
}

/// The server's client-state callback.
///
/// # Safety
/// Called by the server's CallCallbacks with `data` pointing to a `NewClientInfoRec`.
unsafe extern "C" fn client_state(
    _list: *mut ffi::CallbackListPtr,
    _closure: *mut c_void,
    data: *mut c_void,
) {
    let _ = std::panic::catch_unwind(|| {
        let Some(api) = api() else { return };
        let base = EVENT_BASE.load(Ordering::Acquire);
        if base == 0 || data.is_null() {
            return;
        }
        // SAFETY: the server passes a NewClientInfoRec whose client is live during the call.
        let client = unsafe { (*(data as *mut ffi::NewClientInfoRec)).client };
        if client.is_null() {
            return;
        }
        // SAFETY: as above.
        let (index, state, mask) = unsafe {
            let c = &*client;
            (c.index, c.clientState(), c.clientAsMask)
        };
        let kind = if state == ffi::ClientState_ClientStateRunning {
            let new = with(|c| c.started.insert(index));
            if !new {
                return;
            }
            proto::CLIENT_EVENT_STARTED
        } else if state == ffi::ClientState_ClientStateRetained
            || state == ffi::ClientState_ClientStateGone
        {
            let was = with(|c| {
                c.subscribers.remove(&index);
                c.started.remove(&index)
            });
            if !was {
                return;
            }
            proto::CLIENT_EVENT_GONE
        } else {
            return;
        };
        let to: Vec<Subscriber> = with(|c| {
            c.subscribers
                .iter()
                .filter(|(i, (_, m))| **i != index && m & kind != 0)
                .map(|(_, (s, _))| *s)
                .collect()
        });
        for s in to {
            // SAFETY: subscribers are live (removed in their own Gone callback).
            unsafe { notify(api, s.0, base, kind, mask) };
        }
    });
}

/// Write one `ClientNotify` to `to` in its byte order.
///
/// # Safety
/// `to` must be a live client.
unsafe fn notify(api: &Api, to: ffi::ClientPtr, base: u8, kind: u32, client: u32) {
    // SAFETY: live client.
    let c = unsafe { &*to };
    if c.clientGone() != 0 {
        return;
    }
    let order = if c.swapped() != 0 {
        ByteOrder::native().swapped()
    } else {
        ByteOrder::native()
    };
    let ev = proto::encode_client_notify(
        base,
        &proto::ClientNotify {
            sequence: c.sequence as u16,
            state: kind,
            client,
        },
        order,
    );
    // SAFETY: WriteToClient copies our 32 bytes into the client's output buffer.
    unsafe { (api.f.WriteToClient)(to, ev.len() as c_int, ev.as_ptr() as *const c_void) };
}
