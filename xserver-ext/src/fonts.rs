//! Font names as clients opened them. The server keeps no name for a font ID, so the core
//! `OpenFont` and `CloseFont` handlers in `ProcVector` are wrapped from the first server
//! generation on: OpenFont requests flow through here (name recorded by XID, then the original
//! handler runs) and CloseFont drops the entry. Swapped clients reach `ProcVector` after the
//! server's own swap, so fields are already in native order here.

use crate::ffi;
use crate::server::Api;
use std::collections::BTreeMap;
use std::ffi::c_int;
use std::sync::Mutex;

type Handler = Option<unsafe extern "C" fn(ffi::ClientPtr) -> c_int>;

const X_OPEN_FONT: usize = 45;
const X_CLOSE_FONT: usize = 46;

struct State {
    orig_open: Handler,
    orig_close: Handler,
    names: BTreeMap<u32, String>,
}

static STATE: Mutex<State> = Mutex::new(State {
    orig_open: None,
    orig_close: None,
    names: BTreeMap::new(),
});

fn lock() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Wrap the handlers (once; `ProcVector` survives server resets) and forget names from the
/// previous generation (all its fonts are gone).
pub fn install(api: &Api) {
    let mut st = lock();
    st.names.clear();
    let pv = api.f.ProcVector;
    // ProcVector is the server's 256-entry dispatch table; we are on the main thread during
    // extension init, before any client request is dispatched. Core entries survive resets,
    // so they are wrapped once.
    if st.orig_open.is_none() && st.orig_close.is_none() {
        // SAFETY: see above; the original handlers are kept to forward to.
        unsafe {
            st.orig_open = (*pv)[X_OPEN_FONT];
            st.orig_close = (*pv)[X_CLOSE_FONT];
            (*pv)[X_OPEN_FONT] = Some(open_font);
            (*pv)[X_CLOSE_FONT] = Some(close_font);
        }
    }
}

/// The request bytes of the current request of `client` (length from `req_len`).
///
/// # Safety
/// `client` must be the client whose request is being dispatched.
pub unsafe fn request_bytes<'a>(client: ffi::ClientPtr) -> &'a [u8] {
    // SAFETY: during dispatch requestBuffer holds req_len*4 bytes of the current request.
    unsafe {
        let c = &*client;
        let len = (c.req_len as usize).saturating_mul(4);
        if c.requestBuffer.is_null() || len == 0 {
            return &[];
        }
        std::slice::from_raw_parts(c.requestBuffer as *const u8, len)
    }
}

/// The server's OpenFont, wrapped: the name the client asked for is kept for its font ID.
///
/// # Safety
/// Called by the dispatcher in place of the original, with the client being dispatched.
unsafe extern "C" fn open_font(client: ffi::ClientPtr) -> c_int {
    let orig = lock().orig_open;
    let Some(orig) = orig else { return 17 }; // BadImplementation
                                              // SAFETY: we are dispatching this client's OpenFont request.
    let req = unsafe { request_bytes(client) };
    // xOpenFontReq: reqType, pad, length(2), fid(4), nbytes(2), pad(2), name.
    let parsed = (|| {
        let fid = u32::from_ne_bytes(req.get(4..8)?.try_into().ok()?);
        let n = u16::from_ne_bytes(req.get(8..10)?.try_into().ok()?) as usize;
        let name = req.get(12..12 + n)?;
        Some((fid, name.iter().map(|&b| char::from(b)).collect::<String>()))
    })();
    // SAFETY: forwarding the same request to the server's own handler.
    let rc = unsafe { orig(client) };
    if rc == 0 {
        if let Some((fid, name)) = parsed {
            lock().names.insert(fid, name);
        }
    }
    rc
}

/// The server's CloseFont, wrapped: the kept name is forgotten.
///
/// # Safety
/// Called by the dispatcher in place of the original, with the client being dispatched.
unsafe extern "C" fn close_font(client: ffi::ClientPtr) -> c_int {
    let orig = lock().orig_close;
    let Some(orig) = orig else { return 17 };
    // SAFETY: we are dispatching this client's CloseFont request (xResourceReq: id at 4).
    let req = unsafe { request_bytes(client) };
    let fid = req
        .get(4..8)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_ne_bytes);
    // SAFETY: forwarding the same request to the server's own handler.
    let rc = unsafe { orig(client) };
    if rc == 0 {
        if let Some(fid) = fid {
            lock().names.remove(&fid);
        }
    }
    rc
}

/// The name font `fid` was opened with, if it went through OpenFont since the extension loaded.
pub fn opened_name(fid: u32) -> Option<String> {
    lock().names.get(&fid).cloned()
}
