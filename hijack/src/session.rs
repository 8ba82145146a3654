//! Detach, attach, snapshot and replicate for one application connection. This is where the
//! window session flows: captured through guimux's internal client on the app's own server
//! connection (the extension then answers for the app's resources), kept in memory (so a
//! checkpointer saves it with the process), regenerated on a new server through another internal
//! client, and turned into the maps that let guimux translate the app's queued and future
//! requests.
//!
//! The parts, each a module of its own: `view` (the app's view and the internal clients it is
//! learnt through), `detach` (hold and capture), `attach` (regenerate, build the maps,
//! activate), `mapping` (the pure map algebra an attach uses), `shm` (MIT-SHM across moves),
//! `connect` (raw connection and setup handshake) and `error`. None of them uses this file:
//! it only names them and re-exports what the rest of the crate calls.

mod attach;
mod connect;
mod detach;
mod error;
mod mapping;
mod shm;
mod view;

pub use crate::traffic::Internal;
pub use attach::{attach, attach_on, attach_opened, internal_for, open_on, AttachReport, Opened};
pub use connect::{connect_raw, connect_socket, is_unix_socket, Auth, CONNECT_TIMEOUT};
pub use detach::{detach, hold_and_capture, snapshot, Held};
pub use error::SessionError;
pub use view::{client_over, learn_view, send_view, AppView, Detached, Timings, ViewAsked};
