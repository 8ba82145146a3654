//! The engine's view of the generated protocol tables (`crate::generated`, made by
//! guimux-codegen from xcb-proto). Message bytes flow in with their extension and opcode; the
//! walkers visit every server-specific field. Until the generated module lands this file holds
//! stand-ins that know nothing (every walk reports `Unknown`).
#![allow(missing_docs)]
use crate::fields::{ByteOrder, Kind, Rewriter, WalkError};

pub struct ExtInfo {
    pub header: &'static str,
    pub xname: &'static str,
    pub num_events: u8,
    pub num_errors: u8,
}
pub static EXTENSIONS: &[ExtInfo] = &[ExtInfo {
    header: "xproto",
    xname: "",
    num_events: 0,
    num_errors: 0,
}];
pub fn ext_by_xname(xname: &str) -> Option<usize> {
    EXTENSIONS.iter().position(|e| e.xname == xname)
}
pub fn request_has_reply(_ext: usize, _opcode: u8) -> Option<bool> {
    None
}
pub fn request_name(_ext: usize, _opcode: u8) -> Option<&'static str> {
    None
}
pub fn walk_request(
    _ext: usize,
    opcode: u8,
    _msg: &mut [u8],
    _order: ByteOrder,
    _rw: &mut dyn Rewriter,
) -> Result<(), WalkError> {
    Err(WalkError::Unknown {
        family: "request",
        ext: "stub",
        code: opcode,
    })
}
pub fn walk_reply(
    _ext: usize,
    opcode: u8,
    _msg: &mut [u8],
    _order: ByteOrder,
    _rw: &mut dyn Rewriter,
) -> Result<(), WalkError> {
    Err(WalkError::Unknown {
        family: "reply",
        ext: "stub",
        code: opcode,
    })
}
pub fn walk_event(
    _ext: usize,
    code: u8,
    _msg: &mut [u8],
    _order: ByteOrder,
    _rw: &mut dyn Rewriter,
) -> Result<(), WalkError> {
    Err(WalkError::Unknown {
        family: "event",
        ext: "stub",
        code,
    })
}
pub fn walk_generic_event(
    _ext: usize,
    _evtype: u16,
    _msg: &mut [u8],
    _order: ByteOrder,
    _rw: &mut dyn Rewriter,
) -> Result<(), WalkError> {
    Err(WalkError::Unsupported { what: "stub" })
}
pub fn error_value_kind(_ext: usize, _code: u8) -> Option<Kind> {
    None
}
