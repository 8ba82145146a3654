//! Request dispatch: the server hands each GUIEVICT request (normal or byte-swapped client) to
//! [`proc_guievict`], which decodes it with `guievict-ext-proto`, gathers the client's own
//! resources with `FindAllClientResources`, describes one page of them and writes the reply in
//! the client's byte order. Any panic becomes `BadImplementation`; malformed requests become
//! `BadLength` / `BadRequest` / `BadValue`.

use crate::describe::{describe, Ctx};
use crate::ffi;
use crate::fonts::request_bytes;
use crate::server::{api, client_items, type_name, Api, Status};
use guievict_ext_proto as proto;
use proto::{ByteOrder, GetResourcesReply, Request, RequestError, Resource, ResourceKind, Writer};
use std::collections::HashMap;
use std::ffi::{c_int, c_void};

const SUCCESS: Status = 0;
const BAD_REQUEST: Status = 1;
const BAD_VALUE: Status = 2;
const BAD_LENGTH: Status = 16;
const BAD_IMPLEMENTATION: Status = 17;

/// Longest GUIEVICT request in 4-byte units; anything longer is rejected before reading it.
const MAX_REQUEST_WORDS: u32 = 16;

/// The protocol minor version this server speaks. Test seam: `GUIEVICT_XEXT_PROTOCOL_MINOR=N`
/// in the server's environment makes it behave as a 1.N server (reports 1.N and refuses the
/// flags later versions added), so that clients' compatibility path runs against a real server.
fn protocol_minor() -> u16 {
    static MINOR: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *MINOR.get_or_init(|| {
        std::env::var("GUIEVICT_XEXT_PROTOCOL_MINOR")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&m| m <= proto::MINOR_VERSION)
            .unwrap_or(proto::MINOR_VERSION)
    })
}

/// Minor opcode of the current request (StandardMinorOpcode is not exported by Xvfb).
///
/// # Safety
/// The server calls it with the client whose request is being dispatched.
pub unsafe extern "C" fn minor_opcode(client: ffi::ClientPtr) -> std::ffi::c_ushort {
    // SAFETY: called by the server for the client being dispatched; byte 1 of every request.
    let req = unsafe { request_bytes(client) };
    req.get(1).copied().unwrap_or(0).into()
}

/// Entry point for GUIEVICT requests (both byte orders).
///
/// # Safety
/// The server's dispatcher calls it with the live client whose request buffer holds a
/// GUIEVICT request.
pub unsafe extern "C" fn proc_guievict(client: ffi::ClientPtr) -> c_int {
    std::panic::catch_unwind(|| {
        let Some(api) = api() else {
            return BAD_IMPLEMENTATION;
        };
        // SAFETY: the server calls us with the client whose request is being dispatched.
        unsafe { dispatch(api, client) }
    })
    .unwrap_or(BAD_IMPLEMENTATION)
}

/// Decode the current request of `client` and answer it.
///
/// # Safety
/// `client` must be the live client being dispatched.
unsafe fn dispatch(api: &Api, client: ffi::ClientPtr) -> Status {
    // SAFETY: valid client during dispatch.
    let c = unsafe { &mut *client };
    if c.req_len > MAX_REQUEST_WORDS {
        return BAD_LENGTH;
    }
    let order = if c.swapped() != 0 {
        ByteOrder::native().swapped()
    } else {
        ByteOrder::native()
    };
    // SAFETY: as above.
    let bytes = unsafe { request_bytes(client) };
    match proto::decode_request(bytes, order) {
        Err(RequestError::BadMinor(_)) => BAD_REQUEST,
        Err(RequestError::BadLength(_)) => BAD_LENGTH,
        Err(RequestError::BadValue { value, .. }) => {
            c.errorValue = value;
            BAD_VALUE
        }
        Ok(Request::QueryVersion(_)) => {
            let reply = proto::encode_query_version_reply(
                &proto::QueryVersionReply {
                    sequence: c.sequence as u16,
                    major: proto::MAJOR_VERSION,
                    minor: protocol_minor(),
                    server_release: api.release,
                },
                order,
            );
            // SAFETY: writes our own buffer to the client.
            unsafe { write(api, client, &reply) }
        }
        Ok(Request::SelectClientEvents(_))
            if protocol_minor() < 6 || !crate::clients::available() =>
        {
            BAD_REQUEST
        }
        Ok(Request::SelectClientEvents(mask)) => {
            // SAFETY: valid client during dispatch.
            unsafe { crate::clients::select(client, mask) };
            SUCCESS
        }
        Ok(Request::GetActiveGrabs) if protocol_minor() < 8 => BAD_REQUEST,
        Ok(Request::GetActiveGrabs) => {
            // SAFETY: valid client during dispatch, on the dispatch thread.
            let grabs = unsafe { crate::describe::active_grab_records(api, client) };
            let reply = proto::encode_get_active_grabs_reply(
                &proto::GetActiveGrabsReply {
                    sequence: c.sequence as u16,
                    grabs,
                },
                order,
            );
            // SAFETY: writes our own buffer to the client.
            unsafe { write(api, client, &reply) }
        }
        Ok(Request::GetResources(req))
            if req.flags & !proto::flags_for_minor(protocol_minor()) != 0 =>
        {
            c.errorValue = req.flags;
            BAD_VALUE
        }
        Ok(Request::GetResources(req)) => {
            // SAFETY: valid client during dispatch.
            let reply = unsafe { get_resources(api, client, &req, order) };
            // SAFETY: as above.
            unsafe { write(api, client, &reply) }
        }
    }
}

/// Send a reply to `client`.
///
/// # Safety
/// `client` must be a live client.
unsafe fn write(api: &Api, client: ffi::ClientPtr, bytes: &[u8]) -> Status {
    let Ok(len) = c_int::try_from(bytes.len()) else {
        return BAD_IMPLEMENTATION;
    };
    // SAFETY: WriteToClient copies `len` bytes from our buffer.
    unsafe { (api.f.WriteToClient)(client, len, bytes.as_ptr() as *const c_void) };
    SUCCESS
}

/// The reply to GetResources: the client's own resources, described as `req` asks.
///
/// # Safety
/// `client` must be the live client being dispatched.
unsafe fn get_resources(
    api: &Api,
    client: ffi::ClientPtr,
    req: &proto::GetResourcesRequest,
    order: ByteOrder,
) -> Vec<u8> {
    // SAFETY: valid client.
    let items = unsafe { client_items(api, client) };
    let mut names: HashMap<ffi::RESTYPE, String> = HashMap::new();
    for it in &items {
        names
            .entry(it.rtype)
            .or_insert_with(|| type_name(api, it.rtype));
    }
    // SAFETY: valid client; items were just collected from it.
    let ctx = unsafe { Ctx::new(api, client, &items, &names, req.flags, order) };
    let budget = match req.max_bytes {
        0 => proto::DEFAULT_MAX_BYTES,
        n => n.clamp(proto::MIN_MAX_BYTES, proto::MAX_MAX_BYTES),
    } as usize;
    let start = items.partition_point(|i| (i.id, i.rtype) < (req.start_id, req.start_type));
    // SAFETY: valid client.
    let sequence = unsafe { (*client).sequence } as u16;
    let mut body = Writer::with_capacity(order, 4096);
    let mut count = 0u32;
    let mut next = None;
    for it in &items[start..] {
        let before = body.len();
        let name = names.get(&it.rtype).cloned().unwrap_or_default();
        // SAFETY: the item's value pointer is live for the duration of this request.
        let detail = unsafe { describe(&ctx, it, &name) };
        let res = Resource {
            id: it.id,
            kind: ResourceKind(name),
            server_type: it.rtype,
            detail,
        };
        proto::encode_resource(&mut body, &res);
        if count > 0 && proto::REPLY_HEADER_LEN + body.len() > budget {
            body.truncate(before);
            next = Some(*it);
            break;
        }
        count += 1;
    }
    let reply = GetResourcesReply {
        sequence,
        more: next.is_some(),
        next_id: next.map_or(0, |n| n.id),
        next_type: next.map_or(0, |n| n.rtype),
        total: items.len() as u32,
        xkb: if req.flags & proto::FLAG_XKB_SELECTIONS != 0 {
            // SAFETY: valid client.
            unsafe { crate::describe::xkb_client_state(client) }
        } else {
            proto::XkbClientState::default()
        },
        active_grabs: if req.flags & proto::FLAG_PASSIVE_GRABS != 0 {
            // SAFETY: valid client, dispatch thread.
            unsafe { crate::describe::active_grabs(api, client) }
        } else {
            0
        },
        resources: proto::Resources::default(),
    };
    let mut w = Writer::with_capacity(order, proto::REPLY_HEADER_LEN + body.len());
    proto::encode_get_resources_reply_header(&mut w, &reply, count);
    w.bytes(&body.into_inner());
    proto::finish_get_resources_reply(w)
}
