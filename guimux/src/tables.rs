//! The engine's view of the protocol tables generated from xcb-proto by guimux-codegen
//! (`crate::generated`): message bytes flow in with their extension and opcode, and the walkers
//! visit every server-specific field. This indirection keeps the engine independent of how the
//! generator lays out its modules.
pub use crate::generated::{
    error_value_kind, ext_by_xname, request_has_reply, request_name, walk_event,
    walk_generic_event, walk_reply, walk_request, ExtInfo, EXTENSIONS,
};
