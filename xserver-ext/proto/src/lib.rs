//! Wire format of the GUIEVICT extension. Request bytes are encoded here for clients and decoded
//! here by the server side; reply bytes flow the other way (the server encodes them with the same
//! functions the client decodes them with). Pure functions over buffers, no I/O; both byte orders.
//! The byte-by-byte specification is `docs/protocol.md`; the xcb-proto style description is
//! `xserver-ext/guievict.xml`.
#![forbid(unsafe_code)]

mod detail;
mod grabs;
mod wire;

pub use detail::*;
pub use wire::{pad4, ByteOrder, Reader, Writer};

/// Name of the extension as registered with the X server (`QueryExtension`).
pub const EXTENSION_NAME: &str = "GUIEVICT";
/// Protocol major version implemented by this crate.
pub const MAJOR_VERSION: u16 = 1;
/// Protocol minor version implemented by this crate. 1.1 added [`FLAG_SELECTION_INPUTS`] and
/// the [`Detail::SelectionInput`] record it enables; a 1.0 server answers that flag with
/// `BadValue`, and a 1.1 server sends the new record only to clients that set the flag.
/// 1.2 added [`FLAG_XKB_SELECTIONS`] the same way: [`Detail::XkbInterest`] records and the
/// client's XKB state in the reply header ([`GetResourcesReply::xkb`]).
/// 1.3 added [`FLAG_PASSIVE_GRABS`]: [`Detail::PassiveGrab`] records for the client's passive
/// key and button grabs.
/// 1.4 added [`FLAG_DAMAGE`]: [`Detail::Damage`] records (drawable and report level).
/// 1.5 added [`FLAG_SHM`]: [`Detail::ShmSegment`] and [`Detail::ShmPixmap`] records.
/// 1.6 added the `SelectClientEvents` request and the [`ClientNotify`] event: a subscribed
/// client hears when another client of the server starts or goes away (a 1.5 server answers
/// the request with `BadRequest`).
/// 1.7 added [`FLAG_GLX_DRAWABLES`]: [`Detail::GlxDrawable`] records (the X drawable a GLX
/// drawable stands for, which the GLX protocol cannot read back), and [`FLAG_PRESENT_EVENTS`]:
/// [`Detail::PresentEvent`] records (`PresentSelectInput`'s window and mask).
/// 1.8 added the `GetActiveGrabs` request: the client's active pointer and keyboard grabs in
/// full ([`ActiveGrab`]), so that they can be made again on another server (a 1.7 server
/// answers it with `BadRequest`), and [`FLAG_ORPHAN_DRAWABLES`]: the freed pixmap behind a
/// picture ([`OrphanDrawable`]).
pub const MINOR_VERSION: u16 = 8;

/// Minor opcode of `QueryVersion`.
pub const X_QUERY_VERSION: u8 = 0;
/// Minor opcode of `GetResources`.
pub const X_GET_RESOURCES: u8 = 1;
/// Minor opcode of `SelectClientEvents` (protocol 1.6).
pub const X_SELECT_CLIENT_EVENTS: u8 = 2;
pub use grabs::*;

/// `SelectClientEvents` mask bit: a [`ClientNotify`] when another client has finished its
/// connection setup.
pub const CLIENT_EVENT_STARTED: u32 = 1 << 0;
/// `SelectClientEvents` mask bit: a [`ClientNotify`] when another client has gone.
pub const CLIENT_EVENT_GONE: u32 = 1 << 1;
/// Every defined `SelectClientEvents` mask bit.
pub const CLIENT_EVENTS_ALL: u32 = CLIENT_EVENT_STARTED | CLIENT_EVENT_GONE;
/// Number of events the extension defines; [`ClientNotify`] is its first event code.
pub const NUM_EVENTS: u8 = 1;

/// `GetResources` flag: include cursor images (source/mask bitmaps or ARGB pixels).
pub const FLAG_CURSOR_IMAGES: u32 = 1 << 0;
/// `GetResources` flag: include glyph images of RENDER glyph sets.
pub const FLAG_GLYPH_IMAGES: u32 = 1 << 1;
/// `GetResources` flag: include the cells a client allocated in its colormaps.
pub const FLAG_COLORMAP_CELLS: u32 = 1 << 2;
/// `GetResources` flag (protocol 1.1): describe the client's XFIXES selection-input records
/// (`XFixesSelectSelectionInput`) as [`Detail::SelectionInput`]; without it they are
/// [`Detail::Other`], as in 1.0.
pub const FLAG_SELECTION_INPUTS: u32 = 1 << 3;
/// `GetResources` flag (protocol 1.2): describe the client's XKEYBOARD interest records
/// (`XkbSelectEvents`, one per device) as [`Detail::XkbInterest`] and fill the reply header's
/// client-wide XKB state ([`GetResourcesReply::xkb`]); without it they are [`Detail::Other`]
/// and zero, as in 1.1.
pub const FLAG_XKB_SELECTIONS: u32 = 1 << 4;
/// `GetResources` flag (protocol 1.3): describe the client's passive grabs (`GrabKey`,
/// `GrabButton` and the XInput ones; server resources of type `PASSIVE GRAB`) as
/// [`Detail::PassiveGrab`]; without it they are [`Detail::Other`], as in 1.2.
pub const FLAG_PASSIVE_GRABS: u32 = 1 << 5;
/// `GetResources` flag (protocol 1.4): describe the client's DAMAGE objects as
/// [`Detail::Damage`] (the drawable watched and the report level, which the DAMAGE protocol
/// cannot read back); without it they are [`Detail::Other`], as in 1.3.
pub const FLAG_DAMAGE: u32 = 1 << 6;
/// `GetResources` flag (protocol 1.5): describe the client's MIT-SHM segments as
/// [`Detail::ShmSegment`] (System V shmid or descriptor-backed, size, read-only) and its
/// pixmaps whose pixels live in one of its segments (ShmCreatePixmap) as [`Detail::ShmPixmap`]
/// (segment and offset); without it segments are [`Detail::Other`] and every pixmap is a
/// [`Detail::Pixmap`], as in 1.4.
pub const FLAG_SHM: u32 = 1 << 7;
/// `GetResources` flag (protocol 1.7): describe the client's GLX drawables (server type
/// `GLXDrawable`) as [`Detail::GlxDrawable`]: the window or pixmap each one draws to (a
/// `glXCreateWindow` drawable and its window are two IDs of one server object); without it
/// they are [`Detail::Other`], as in 1.6.
pub const FLAG_GLX_DRAWABLES: u32 = 1 << 8;
/// `GetResources` flag (protocol 1.7): describe the client's Present event selections (server
/// type `PresentEvent`, one per `PresentSelectInput`) as [`Detail::PresentEvent`]: the window
/// and the event mask, which the Present protocol cannot read back; without it they are
/// [`Detail::Other`], as in 1.6.
pub const FLAG_PRESENT_EVENTS: u32 = 1 << 9;
/// The `GetResources` flags protocol 1.0 defines (what a 1.0 server accepts).
pub const FLAGS_V1_0: u32 = FLAG_CURSOR_IMAGES | FLAG_GLYPH_IMAGES | FLAG_COLORMAP_CELLS;
/// The `GetResources` flags protocol 1.1 defines (what a 1.1 server accepts).
pub const FLAGS_V1_1: u32 = FLAGS_V1_0 | FLAG_SELECTION_INPUTS;
/// The `GetResources` flags protocol 1.2 defines (what a 1.2 server accepts).
pub const FLAGS_V1_2: u32 = FLAGS_V1_1 | FLAG_XKB_SELECTIONS;
/// The `GetResources` flags protocol 1.3 defines (what a 1.3 server accepts).
pub const FLAGS_V1_3: u32 = FLAGS_V1_2 | FLAG_PASSIVE_GRABS;
/// The `GetResources` flags protocol 1.4 defines (what a 1.4 server accepts).
pub const FLAGS_V1_4: u32 = FLAGS_V1_3 | FLAG_DAMAGE;
/// The `GetResources` flags protocols 1.5 and 1.6 define.
pub const FLAGS_V1_6: u32 = FLAGS_V1_4 | FLAG_SHM;
/// `GetResources` flag (protocol 1.8): a drawable picture whose pixmap the application already
/// freed (the picture keeps it alive) carries that pixmap's size, depth and small image
/// ([`OrphanDrawable`]); without it only the stale drawable ID is told, as in 1.7.
pub const FLAG_ORPHAN_DRAWABLES: u32 = 1 << 10;
/// The `GetResources` flags protocol 1.7 defines.
pub const FLAGS_V1_7: u32 = FLAGS_V1_6 | FLAG_GLX_DRAWABLES | FLAG_PRESENT_EVENTS;
/// All defined `GetResources` flags.
pub const FLAGS_ALL: u32 = FLAGS_V1_7 | FLAG_ORPHAN_DRAWABLES;

/// The `GetResources` flags a server of protocol 1.`minor` accepts.
pub const fn flags_for_minor(minor: u16) -> u32 {
    match minor {
        0 => FLAGS_V1_0,
        1 => FLAGS_V1_1,
        2 => FLAGS_V1_2,
        3 => FLAGS_V1_3,
        4 => FLAGS_V1_4,
        5 | 6 => FLAGS_V1_6,
        7 => FLAGS_V1_7,
        _ => FLAGS_ALL,
    }
}

/// Reply budget the server uses when a request asks for 0 (4 MiB).
pub const DEFAULT_MAX_BYTES: u32 = 4 << 20;
/// Smallest reply budget the server honours; smaller requests are raised to this.
pub const MIN_MAX_BYTES: u32 = 4096;
/// Largest reply budget the server honours (64 MiB); larger requests are lowered to this.
pub const MAX_MAX_BYTES: u32 = 64 << 20;

/// Length of every X reply header.
pub const REPLY_HEADER_LEN: usize = 32;

/// Why bytes could not be decoded. Every variant names the byte offset (from the start of the
/// request or reply) and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The buffer ended before a field.
    #[error("truncated at offset {offset}: {what} needs {needed} bytes, {available} left")]
    Truncated {
        /// Offset of the field.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
        /// The field.
        what: &'static str,
    },
    /// A count claims more items than the remaining bytes can hold.
    #[error("count {count} of {what} at offset {offset} cannot fit in {available} bytes")]
    CountTooLarge {
        /// Offset of the items.
        offset: usize,
        /// Claimed count.
        count: usize,
        /// Bytes left.
        available: usize,
        /// What is counted.
        what: &'static str,
    },
    /// Bytes left over after a complete structure.
    #[error("{extra} trailing bytes at offset {offset} after {what}")]
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
        /// Number of extra bytes.
        extra: usize,
        /// The structure that should have ended.
        what: &'static str,
    },
    /// A field holds a value outside its defined set.
    #[error("bad value {value} for {what} at offset {offset}")]
    BadValue {
        /// Offset of the field.
        offset: usize,
        /// The value found.
        value: u32,
        /// The field.
        what: &'static str,
    },
    /// The length field disagrees with the buffer.
    #[error("length field at offset {offset} says {declared} bytes but {actual} are present")]
    LengthMismatch {
        /// Offset of the length field.
        offset: usize,
        /// Bytes the length field declares.
        declared: usize,
        /// Bytes present.
        actual: usize,
    },
    /// Text that is not UTF-8 where UTF-8 (or Latin-1-compatible ASCII) is required.
    #[error("{what} at offset {offset} is not valid UTF-8")]
    BadText {
        /// Offset of the text.
        offset: usize,
        /// The field.
        what: &'static str,
    },
}

/// Client's `QueryVersion` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueryVersionRequest {
    /// Highest major version the client supports.
    pub client_major: u16,
    /// Highest minor version the client supports.
    pub client_minor: u16,
}

/// Server's `QueryVersion` reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueryVersionReply {
    /// Sequence number of the request.
    pub sequence: u16,
    /// Server's major version.
    pub major: u16,
    /// Server's minor version.
    pub minor: u16,
    /// `VENDOR_RELEASE` of the X server headers the extension was built against (and that the
    /// running server was checked to match), e.g. 12101007 for 21.1.7.
    pub server_release: u32,
}

/// Client's `GetResources` request: one page of the requesting client's resources, in
/// ascending `(id, server_type)` order, starting at `(start_id, start_type)` inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GetResourcesRequest {
    /// First resource ID of the page (0 for the first page; else the reply's `next_id`).
    pub start_id: u32,
    /// First server type number within `start_id` (0 for the first page; else `next_type`).
    pub start_type: u32,
    /// Reply budget in bytes (0: [`DEFAULT_MAX_BYTES`]); clamped to
    /// [`MIN_MAX_BYTES`]..=[`MAX_MAX_BYTES`]. A page always holds at least one resource.
    pub max_bytes: u32,
    /// `FLAG_*` bits selecting the heavy parts (images, colormap cells).
    pub flags: u32,
}

impl GetResourcesRequest {
    /// The first page, with everything included and the default budget.
    pub const fn first() -> Self {
        Self {
            start_id: 0,
            start_type: 0,
            max_bytes: 0,
            flags: FLAGS_ALL,
        }
    }

    /// The request for the page after `reply`, or `None` if `reply` was the last page.
    pub fn next_after(&self, reply: &GetResourcesReply) -> Option<Self> {
        reply.more.then_some(Self {
            start_id: reply.next_id,
            start_type: reply.next_type,
            ..*self
        })
    }
}

/// One page of the requesting client's resources.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GetResourcesReply {
    /// Sequence number of the request.
    pub sequence: u16,
    /// Whether more pages follow.
    pub more: bool,
    /// `start_id` of the next page (meaningful when `more`).
    pub next_id: u32,
    /// `start_type` of the next page (meaningful when `more`).
    pub next_type: u32,
    /// How many resources the client owned in total when this page was made.
    pub total: u32,
    /// The requesting client's own XKEYBOARD state (protocol 1.2, with
    /// [`FLAG_XKB_SELECTIONS`]; all zero otherwise). The same in every page.
    pub xkb: XkbClientState,
    /// Active grabs the requesting client holds on the core devices (protocol 1.3, with
    /// [`FLAG_PASSIVE_GRABS`]; 0 otherwise): [`ACTIVE_GRAB_POINTER`] | [`ACTIVE_GRAB_KEYBOARD`]
    /// | [`ACTIVE_GRAB_POINTER_IMPLICIT`]. The same in every page.
    pub active_grabs: u8,
    /// The resources of this page.
    pub resources: Resources,
}

/// [`GetResourcesReply::active_grabs`] bit: the client holds the core pointer's active grab.
pub const ACTIVE_GRAB_POINTER: u8 = 1;
/// [`GetResourcesReply::active_grabs`] bit: the client holds the core keyboard's active grab.
pub const ACTIVE_GRAB_KEYBOARD: u8 = 2;
/// [`GetResourcesReply::active_grabs`] bit: the pointer grab was activated by a button press
/// (implicitly or through a passive grab) and ends with the release.
pub const ACTIVE_GRAB_POINTER_IMPLICIT: u8 = 4;

/// The XKEYBOARD state the server keeps per client rather than per device (reply header
/// bytes 24..29 of `GetResources`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct XkbClientState {
    /// `MapNotify` details the client selected (its map-component mask; 0: none).
    pub map_notify: u16,
    /// `NewKeyboardNotify` details the client selected (0: none).
    pub new_keyboard_notify: u16,
    /// Bit 0: the client initialised XKB (`XkbUseExtension` accepted); bit 1: it asked for
    /// the pre-release version 0.65.
    pub flags: u8,
}

impl XkbClientState {
    /// `flags` bit: the client initialised XKB.
    pub const INITIALISED: u8 = 1;
    /// `flags` bit: the client initialised XKB as version 0.65.
    pub const ANCIENT: u8 = 2;
}

/// A list of resources (one page, or all pages merged with [`Resources::extend`]).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Resources {
    /// The resources, ascending by `(id, server_type)`.
    pub resources: Vec<Resource>,
}

impl Resources {
    /// Append the resources of another page.
    pub fn extend(&mut self, other: Resources) {
        self.resources.extend(other.resources);
    }

    /// Resources of a given kind name (e.g. `kinds::WINDOW`).
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Resource> + 'a {
        self.resources.iter().filter(move |r| r.kind.0 == kind)
    }

    /// The resource with this ID and kind, if any.
    pub fn get(&self, id: u32, kind: &str) -> Option<&Resource> {
        self.resources
            .iter()
            .find(|r| r.id == id && r.kind.0 == kind)
    }
}

/// The server's name for a resource type, as registered with `CreateNewResourceType` (for
/// example `"WINDOW"`, `"PIXMAP"`, `"GC"`, `"FONT"`, `"CURSOR"`, `"COLORMAP"`, `"PICTURE"`,
/// `"GLYPHSET"`, `"REGION"`, `"DAMAGE"`, `"PASSIVE GRAB"`). Constants in [`kinds`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ResourceKind(pub String);

impl ResourceKind {
    /// The type name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Common resource type names as the X server reports them.
pub mod kinds {
    /// Core window.
    pub const WINDOW: &str = "WINDOW";
    /// Core pixmap.
    pub const PIXMAP: &str = "PIXMAP";
    /// Core graphics context.
    pub const GC: &str = "GC";
    /// Core font.
    pub const FONT: &str = "FONT";
    /// Core cursor.
    pub const CURSOR: &str = "CURSOR";
    /// Core colormap.
    pub const COLORMAP: &str = "COLORMAP";
    /// RENDER picture.
    pub const PICTURE: &str = "PICTURE";
    /// RENDER glyph set.
    pub const GLYPHSET: &str = "GLYPHSET";
    /// One XFIXES selection-input record of the client (`XFixesSelectSelectionInput`); the
    /// resource ID is a server-made one (bit 0x40000000 set).
    pub const XFIXES_SELECTION_CLIENT: &str = "XFixesSelectionClient";
    /// One XKEYBOARD interest record of the client (`XkbSelectEvents` on one device); the
    /// resource ID is a server-made one (bit 0x40000000 set).
    pub const XKB_CLIENT: &str = "XkbClient";
    /// A DAMAGE object of the client (`DamageCreate`).
    pub const DAMAGE: &str = "DamageExt";
    /// One passive grab of the client (`GrabKey`, `GrabButton`, XInput passive grabs); the
    /// resource ID is a server-made one (bit 0x40000000 set).
    pub const PASSIVE_GRAB: &str = "PASSIVE GRAB";
    /// An MIT-SHM segment the client attached (ShmAttach, ShmAttachFd, ShmCreateSegment).
    pub const SHM_SEG: &str = "ShmSeg";
    /// A GLX drawable: a `glXCreateWindow`/`glXCreatePixmap`/`glXCreatePbuffer` ID, and the
    /// window or pixmap ID it draws to (the server files one object under both IDs).
    pub const GLX_DRAWABLE: &str = "GLXDrawable";
    /// A GLX rendering context.
    pub const GLX_CONTEXT: &str = "GLXContext";
    /// GLX's marker on each GLX ID (context or drawable) the client made.
    pub const GLX_SERVER_ID: &str = "GLXServerIDRes";
    /// A Present event selection (`PresentSelectInput`), under the client's event ID.
    pub const PRESENT_EVENT: &str = "PresentEvent";
}

/// One resource of the requesting client.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Resource {
    /// The resource ID (XID).
    pub id: u32,
    /// Type name from the server.
    pub kind: ResourceKind,
    /// The server's type number (opaque; valid only for this server generation; the paging key).
    pub server_type: u32,
    /// The state the core protocol cannot return.
    pub detail: Detail,
}

// ---------------------------------------------------------------------------------------------
// Requests

pub(crate) fn request_header(w: &mut Writer, major_opcode: u8, minor: u8, words: u16) {
    w.u8(major_opcode);
    w.u8(minor);
    w.u16(words);
}

/// Encode `QueryVersion` (8 bytes) for an extension with major opcode `major_opcode`.
pub fn encode_query_version(
    major_opcode: u8,
    req: &QueryVersionRequest,
    order: ByteOrder,
) -> Vec<u8> {
    let mut w = Writer::with_capacity(order, 8);
    request_header(&mut w, major_opcode, X_QUERY_VERSION, 2);
    w.u16(req.client_major);
    w.u16(req.client_minor);
    w.into_inner()
}

/// Encode `QueryVersion` announcing the version this crate speaks
/// ([`MAJOR_VERSION`].[`MINOR_VERSION`]): what a client of this workspace sends first.
pub fn encode_query_own_version(major_opcode: u8, order: ByteOrder) -> Vec<u8> {
    encode_query_version(
        major_opcode,
        &QueryVersionRequest {
            client_major: MAJOR_VERSION,
            client_minor: MINOR_VERSION,
        },
        order,
    )
}

/// Encode `GetResources` (20 bytes).
pub fn encode_get_resources(
    major_opcode: u8,
    req: &GetResourcesRequest,
    order: ByteOrder,
) -> Vec<u8> {
    let mut w = Writer::with_capacity(order, 20);
    request_header(&mut w, major_opcode, X_GET_RESOURCES, 5);
    w.u32(req.start_id);
    w.u32(req.start_type);
    w.u32(req.max_bytes);
    w.u32(req.flags);
    w.into_inner()
}

/// Encode `SelectClientEvents` (8 bytes, protocol 1.6): `mask` is a set of `CLIENT_EVENT_*`
/// bits; 0 ends the subscription.
pub fn encode_select_client_events(major_opcode: u8, mask: u32, order: ByteOrder) -> Vec<u8> {
    let mut w = Writer::with_capacity(order, 8);
    request_header(&mut w, major_opcode, X_SELECT_CLIENT_EVENTS, 2);
    w.u32(mask);
    w.into_inner()
}

/// A decoded GUIEVICT request (server side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `QueryVersion`.
    QueryVersion(QueryVersionRequest),
    /// `GetResources`.
    GetResources(GetResourcesRequest),
    /// `SelectClientEvents` (1.6): the new mask.
    SelectClientEvents(u32),
    /// `GetActiveGrabs` (1.8).
    GetActiveGrabs,
}

/// `ClientNotify` (protocol 1.6): another client of the server started or went away. It names
/// the client only by its resource-ID base, which X-Resource's `QueryClients` shows every
/// client anyway; its process is asked of X-Resource (`QueryClientIds`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientNotify {
    /// The subscriber's sequence number (low 16 bits) when the event was sent.
    pub sequence: u16,
    /// [`CLIENT_EVENT_STARTED`] or [`CLIENT_EVENT_GONE`].
    pub state: u32,
    /// The client's resource-ID base.
    pub client: u32,
}

/// Encode a `ClientNotify` event (32 bytes) with event code `code` (the extension's first
/// event).
pub fn encode_client_notify(code: u8, ev: &ClientNotify, order: ByteOrder) -> Vec<u8> {
    let mut w = Writer::with_capacity(order, 32);
    w.u8(code);
    w.u8(match ev.state {
        CLIENT_EVENT_GONE => 1,
        _ => 0,
    });
    w.u16(ev.sequence);
    w.u32(ev.client);
    w.zeros(24);
    w.into_inner()
}

/// Decode a `ClientNotify` event (32 bytes; the send-event bit of the code is ignored);
/// `code` is the extension's first event.
pub fn decode_client_notify(
    bytes: &[u8],
    code: u8,
    order: ByteOrder,
) -> Result<ClientNotify, DecodeError> {
    if bytes.len() != 32 {
        return Err(DecodeError::LengthMismatch {
            offset: 0,
            declared: 32,
            actual: bytes.len(),
        });
    }
    let mut r = Reader::new(bytes, order, 0);
    let got = r.u8("event code")? & 0x7f;
    if got != code {
        return Err(DecodeError::BadValue {
            offset: 0,
            value: got.into(),
            what: "event code (not ClientNotify)",
        });
    }
    let state = match r.u8("state")? {
        0 => CLIENT_EVENT_STARTED,
        1 => CLIENT_EVENT_GONE,
        v => {
            return Err(DecodeError::BadValue {
                offset: 1,
                value: v.into(),
                what: "ClientNotify state",
            })
        }
    };
    let sequence = r.u16("sequence number")?;
    let client = r.u32("client")?;
    Ok(ClientNotify {
        sequence,
        state,
        client,
    })
}

/// Why a request is rejected; maps to the X error the server sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Unknown minor opcode (`BadRequest`).
    #[error("unknown GUIEVICT minor opcode {0}")]
    BadMinor(u8),
    /// The length field does not match the request (`BadLength`).
    #[error("GUIEVICT request length mismatch: {0}")]
    BadLength(DecodeError),
    /// A field has an undefined value (`BadValue`; the value is the offending field).
    #[error("GUIEVICT request field {what} has undefined value {value}")]
    BadValue {
        /// The field.
        what: &'static str,
        /// The value.
        value: u32,
    },
}

/// Decode a complete request (header included; `bytes.len()` is the length the server took
/// from the length field, BIG-REQUESTS already unwrapped). `order` is the client's byte order.
pub fn decode_request(bytes: &[u8], order: ByteOrder) -> Result<Request, RequestError> {
    let mut r = Reader::new(bytes, order, 0);
    let _major = r.u8("major opcode").map_err(RequestError::BadLength)?;
    let minor = r.u8("minor opcode").map_err(RequestError::BadLength)?;
    let _len = r.u16("request length").map_err(RequestError::BadLength)?;
    let body = (|| match minor {
        X_QUERY_VERSION => {
            let client_major = r.u16("client major version")?;
            let client_minor = r.u16("client minor version")?;
            r.finish("QueryVersion request")?;
            Ok(Request::QueryVersion(QueryVersionRequest {
                client_major,
                client_minor,
            }))
        }
        X_GET_ACTIVE_GRABS => {
            r.finish("GetActiveGrabs request")?;
            Ok(Request::GetActiveGrabs)
        }
        X_SELECT_CLIENT_EVENTS => {
            let mask = r.u32("mask")?;
            r.finish("SelectClientEvents request")?;
            Ok(Request::SelectClientEvents(mask))
        }
        X_GET_RESOURCES => {
            let start_id = r.u32("start_id")?;
            let start_type = r.u32("start_type")?;
            let max_bytes = r.u32("max_bytes")?;
            let flags = r.u32("flags")?;
            r.finish("GetResources request")?;
            Ok(Request::GetResources(GetResourcesRequest {
                start_id,
                start_type,
                max_bytes,
                flags,
            }))
        }
        _ => Err(DecodeError::BadValue {
            offset: 1,
            value: minor.into(),
            what: "minor opcode",
        }),
    })();
    match body {
        Err(DecodeError::BadValue { offset: 1, .. }) => Err(RequestError::BadMinor(minor)),
        Err(e) => Err(RequestError::BadLength(e)),
        Ok(Request::GetResources(g)) if g.flags & !FLAGS_ALL != 0 => Err(RequestError::BadValue {
            what: "flags",
            value: g.flags,
        }),
        Ok(Request::SelectClientEvents(m)) if m & !CLIENT_EVENTS_ALL != 0 => {
            Err(RequestError::BadValue {
                what: "mask",
                value: m,
            })
        }
        Ok(req) => Ok(req),
    }
}

// ---------------------------------------------------------------------------------------------
// Replies

pub(crate) fn reply_header(r: &mut Reader<'_>, total_len: usize) -> Result<(u8, u16), DecodeError> {
    let kind = r.u8("reply type")?;
    if kind != 1 {
        return Err(DecodeError::BadValue {
            offset: 0,
            value: kind.into(),
            what: "reply type (expected 1)",
        });
    }
    let data1 = r.u8("reply data byte")?;
    let sequence = r.u16("sequence number")?;
    let words = r.u32("reply length")?;
    let declared = (words as usize)
        .saturating_mul(4)
        .saturating_add(REPLY_HEADER_LEN);
    if declared != total_len {
        return Err(DecodeError::LengthMismatch {
            offset: 4,
            declared,
            actual: total_len,
        });
    }
    Ok((data1, sequence))
}

/// Encode a `QueryVersion` reply (32 bytes).
pub fn encode_query_version_reply(reply: &QueryVersionReply, order: ByteOrder) -> Vec<u8> {
    let mut w = Writer::with_capacity(order, 32);
    w.u8(1);
    w.u8(0);
    w.u16(reply.sequence);
    w.u32(0);
    w.u16(reply.major);
    w.u16(reply.minor);
    w.u32(reply.server_release);
    w.zeros(16);
    w.into_inner()
}

/// Decode a `QueryVersion` reply (all 32 bytes, header included).
pub fn decode_query_version_reply(
    bytes: &[u8],
    order: ByteOrder,
) -> Result<QueryVersionReply, DecodeError> {
    let mut r = Reader::new(bytes, order, 0);
    let (_, sequence) = reply_header(&mut r, bytes.len())?;
    let major = r.u16("major version")?;
    let minor = r.u16("minor version")?;
    let server_release = r.u32("server release")?;
    r.skip(16, "reply padding")?;
    r.finish("QueryVersion reply")?;
    Ok(QueryVersionReply {
        sequence,
        major,
        minor,
        server_release,
    })
}

/// Size in bytes of one encoded resource record (header, type name and detail).
pub fn encoded_resource_len(res: &Resource, order: ByteOrder) -> usize {
    let mut w = Writer::new(order);
    encode_resource(&mut w, res);
    w.len()
}

/// Append one resource record (see `docs/protocol.md`, "RESOURCE").
pub fn encode_resource(w: &mut Writer, res: &Resource) {
    let name = res.kind.0.as_bytes();
    let name = &name[..name.len().min(u16::MAX as usize)];
    w.u32(res.id);
    w.u32(res.server_type);
    w.u16(name.len() as u16);
    w.u8(res.detail.code());
    w.u8(0);
    let detail_len_at = w.len();
    w.u32(0);
    w.bytes(name);
    w.pad4();
    let start = w.len();
    res.detail.encode(w);
    w.pad4();
    let detail_len = (w.len() - start) as u32;
    w.patch_u32(detail_len_at, detail_len);
}

fn decode_resource(r: &mut Reader<'_>) -> Result<Resource, DecodeError> {
    let id = r.u32("resource id")?;
    let server_type = r.u32("resource server type")?;
    let name_len = r.u16("type name length")? as usize;
    let code_off = r.offset();
    let code = r.u8("detail kind")?;
    r.skip(1, "resource padding")?;
    let detail_len = r.u32("detail length")? as usize;
    let name_off = r.offset();
    let name = r.bytes(name_len, "type name")?;
    let name = std::str::from_utf8(name)
        .map_err(|_| DecodeError::BadText {
            offset: name_off,
            what: "type name",
        })?
        .to_owned();
    r.pad4("type name padding")?;
    if detail_len % 4 != 0 {
        return Err(DecodeError::BadValue {
            offset: code_off + 2,
            value: detail_len as u32,
            what: "detail length (multiple of 4)",
        });
    }
    let mut d = r.sub(detail_len, "resource detail")?;
    let detail = Detail::decode(code, code_off, &mut d)?;
    Ok(Resource {
        id,
        kind: ResourceKind(name),
        server_type,
        detail,
    })
}

/// Encode a `GetResources` reply (header plus records).
pub fn encode_get_resources_reply(reply: &GetResourcesReply, order: ByteOrder) -> Vec<u8> {
    let mut w = Writer::with_capacity(order, 64 + 64 * reply.resources.resources.len());
    encode_get_resources_reply_header(&mut w, reply, reply.resources.resources.len() as u32);
    for res in &reply.resources.resources {
        encode_resource(&mut w, res);
    }
    finish_get_resources_reply(w)
}

/// Write the 32-byte `GetResources` reply header with a zero length field (the server side
/// streams records after it, then calls [`finish_get_resources_reply`]). `reply.resources` is
/// ignored; `count` is the number of records that will follow.
pub fn encode_get_resources_reply_header(w: &mut Writer, reply: &GetResourcesReply, count: u32) {
    w.u8(1);
    w.u8(u8::from(reply.more));
    w.u16(reply.sequence);
    w.u32(0);
    w.u32(count);
    w.u32(reply.next_id);
    w.u32(reply.next_type);
    w.u32(reply.total);
    w.u16(reply.xkb.map_notify);
    w.u16(reply.xkb.new_keyboard_notify);
    w.u8(reply.xkb.flags);
    w.u8(reply.active_grabs);
    w.zeros(2);
}

/// Fill in the length field of a reply written with [`encode_get_resources_reply_header`].
pub fn finish_get_resources_reply(mut w: Writer) -> Vec<u8> {
    w.pad4();
    let words = ((w.len().saturating_sub(REPLY_HEADER_LEN)) / 4) as u32;
    w.patch_u32(4, words);
    w.into_inner()
}

/// Decode a complete `GetResources` reply (header included).
pub fn decode_get_resources_reply(
    bytes: &[u8],
    order: ByteOrder,
) -> Result<GetResourcesReply, DecodeError> {
    let mut r = Reader::new(bytes, order, 0);
    let (flags, sequence) = reply_header(&mut r, bytes.len())?;
    if flags & !1 != 0 {
        return Err(DecodeError::BadValue {
            offset: 1,
            value: flags.into(),
            what: "reply flags",
        });
    }
    let count = r.u32("resource count")? as usize;
    let next_id = r.u32("next_id")?;
    let next_type = r.u32("next_type")?;
    let total = r.u32("total")?;
    let xkb = XkbClientState {
        map_notify: r.u16("xkb map notify details")?,
        new_keyboard_notify: r.u16("xkb new keyboard notify details")?,
        flags: r.u8("xkb client flags")?,
    };
    let active_off = r.offset();
    let active_grabs = r.u8("active grabs")?;
    if active_grabs & !7 != 0 {
        return Err(DecodeError::BadValue {
            offset: active_off,
            value: active_grabs.into(),
            what: "active grabs",
        });
    }
    r.skip(2, "reply padding")?;
    r.check_count(count, 16, "resources")?;
    let mut resources = Vec::with_capacity(count);
    for _ in 0..count {
        resources.push(decode_resource(&mut r)?);
    }
    r.finish("GetResources reply")?;
    Ok(GetResourcesReply {
        sequence,
        more: flags & 1 != 0,
        next_id,
        next_type,
        total,
        xkb,
        active_grabs,
        resources: Resources { resources },
    })
}

#[cfg(test)]
mod tests;
