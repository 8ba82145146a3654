//! The protocol numbers the conversion speaks: MIT-SHM's minor opcodes and name (what flows
//! in), the core opcodes and error codes of what flows out instead, and the request size limit
//! converted requests are cut to.

/// MIT-SHM minor opcodes.
pub mod minor {
    /// ShmQueryVersion.
    pub const QUERY_VERSION: u8 = 0;
    /// ShmAttach.
    pub const ATTACH: u8 = 1;
    /// ShmDetach.
    pub const DETACH: u8 = 2;
    /// ShmPutImage.
    pub const PUT_IMAGE: u8 = 3;
    /// ShmGetImage.
    pub const GET_IMAGE: u8 = 4;
    /// ShmCreatePixmap.
    pub const CREATE_PIXMAP: u8 = 5;
    /// ShmAttachFd.
    pub const ATTACH_FD: u8 = 6;
    /// ShmCreateSegment.
    pub const CREATE_SEGMENT: u8 = 7;
}

/// Name of the extension as servers announce it.
pub const EXTENSION: &str = "MIT-SHM";

/// Largest request guimux emits when converting (the core limit without BIG-REQUESTS).
pub const MAX_REQUEST_BYTES: usize = 65535 * 4;

/// Core opcodes used here.
pub(super) const PUT_IMAGE: u8 = 72;
pub(super) const GET_IMAGE: u8 = 73;
pub(super) const CREATE_PIXMAP: u8 = 53;
pub(super) const CREATE_GC: u8 = 55;
pub(super) const FREE_GC: u8 = 60;
pub(super) const GET_INPUT_FOCUS: u8 = 43;
pub(super) const NO_OPERATION: u8 = 127;

/// Core error codes.
pub(super) const BAD_VALUE: u8 = 2;
pub(super) const BAD_MATCH: u8 = 8;
pub(super) const BAD_ACCESS: u8 = 10;
pub(super) const BAD_ALLOC: u8 = 11;
pub(super) const BAD_IMPLEMENTATION: u8 = 17;
