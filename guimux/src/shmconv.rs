//! MIT-SHM conversion for a server that cannot share memory with the application (no MIT-SHM,
//! another host, another IPC namespace). The application's MIT-SHM requests (app view) flow in
//! and core requests in the server's values flow out: ShmPutImage becomes PutImage with the
//! pixels read from the segment, ShmGetImage becomes GetImage whose reply is written into the
//! segment, ShmCreatePixmap becomes CreatePixmap plus an upload, ShmAttach/ShmDetach become
//! NoOperation, ShmCreateSegment is served with memory guimux creates, and ShmQueryVersion is
//! answered by guimux. Replies flow back as the MIT-SHM replies and ShmCompletion events the
//! application waits for, in sequence order.
//!
//! The segments live in the application's process; the caller supplies access to them through
//! [`SegmentMemory`] (guimux itself performs no I/O and no unsafe memory access).
//!
//! The parts: `codes` (the protocol numbers), `memory` ([`SegmentMemory`]), `layout` (image
//! row layout), `request` (the application's requests converted, [`convert`]) and `reply` (the
//! replies rewritten, [`reply`]); the first three are used by the last two, and nothing here
//! uses this file, which only names them.

mod codes;
mod layout;
mod memory;
mod reply;
mod request;

pub use codes::{minor, EXTENSION, MAX_REQUEST_BYTES};
pub use layout::ImageFormats;
pub use memory::{SegmentInfo, SegmentMemory};
pub use reply::reply;
pub use request::{convert, effect, pixmap_source, refresh, Conv, Ctx, Effect, Out, PixmapSrc};

#[cfg(test)]
pub(crate) mod tests;
