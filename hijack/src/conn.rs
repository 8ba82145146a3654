//! The records of the X connections under control, shared by the operations on them: what
//! flows through a [`Conn`] is one connection's state between control requests — its relay
//! handle, the display and server setup of its primary, its X authority, the captured session
//! while it is detached, its replicas and its guard. Types only, so that the controller and
//! the operations it calls (preflight, transaction, adoption) all import them from below.

use crate::muxloop::MuxHandle;
use crate::session::{Auth, Detached};
use guimux::ServerId;
use x11rb::protocol::xproto::Setup;

/// One X connection under control.
#[derive(Debug)]
pub struct Conn {
    /// The application's descriptor number for this connection (-1: not in this process).
    pub app_fd: i32,
    /// The relay.
    pub handle: MuxHandle,
    /// Display the primary is on (None while detached).
    pub display: Option<String>,
    /// Setup of the primary server as a client of it sees it (for internal clients).
    pub server_setup: Option<Setup>,
    /// X authority given for `display` (None: found the way libxcb finds it), kept so that a
    /// failed move can put the GUI back there.
    pub auth: Option<Auth>,
    /// While detached (or after a snapshot): the captured session.
    pub detached: Option<Detached>,
    /// Replicas: display → (server id, setup).
    pub replicas: Vec<(String, ServerId)>,
    /// The guard: a hidden view-only replica on guievict's private headless server, which
    /// becomes the primary should the primary's server die (see
    /// [`crate::control::Request::Guard`]). Kept while held, so that an attach guards the GUI
    /// again.
    pub guard: Option<Guard>,
    /// The primary is the private headless server: the connection is detached in the user's
    /// eyes (`display` names the private server, `status` shows it as `held_on`).
    pub held: bool,
}

/// A connection's guard (see [`Conn::guard`]).
#[derive(Debug, Clone)]
pub struct Guard {
    /// The private server's display.
    pub display: String,
    /// Its X authority.
    pub auth: Option<Auth>,
    /// The replica's server id while it is a replica (None once it became the primary, or
    /// while it is being renewed).
    pub server: Option<ServerId>,
}
