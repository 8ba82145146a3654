//! guimux: the X protocol engine. Bytes written by an application and bytes sent by X servers
//! flow through it; it finds message boundaries in both directions, tracks sequence numbers, and
//! rewrites everything that is specific to one server (resource IDs, atoms, extension opcodes,
//! sequence numbers) so that the application never notices which server it talks to.
//! It performs no I/O: callers feed it buffers and send what it returns.
#![forbid(unsafe_code)]

pub mod engine;
pub mod fields;
pub mod framing;
pub mod generated;
pub mod maps;
pub mod salvage;
pub mod shmconv;
pub mod tables;
pub mod translate;

pub use engine::{Engine, EngineError, Role, ServerId, Stats, Status};
pub use translate::Maps;
