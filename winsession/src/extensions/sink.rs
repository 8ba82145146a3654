//! Where a regeneration's requests go: each extension's regeneration pushes the void cookies of
//! the requests it sent (with the request's name and the resource it concerns) and its warnings;
//! `regenerate` collects them and learns from the cookies which requests failed.

use x11rb::connection::RequestConnection;

/// Requests to send, collected by the caller: `hard` failures abort the regeneration, `soft`
/// ones become warnings (state the app can live without, such as a selection on the root that
/// another client holds).
pub(crate) struct Sink<'c, C: RequestConnection> {
    pub hard: Vec<(&'static str, u32, x11rb::cookie::VoidCookie<'c, C>)>,
    pub soft: Vec<(&'static str, u32, x11rb::cookie::VoidCookie<'c, C>)>,
    pub warnings: Vec<String>,
    /// The target's XInput devices, asked early (with the version negotiation) for the
    /// device map of XInput 2 selections, so that it costs no round trip of its own.
    pub xi_devices:
        Option<x11rb::cookie::Cookie<'c, C, x11rb::protocol::xinput::XIQueryDeviceReply>>,
}

impl<C: RequestConnection> Sink<'_, C> {
    /// An empty sink.
    pub(crate) fn new() -> Self {
        Sink {
            hard: Vec::new(),
            soft: Vec::new(),
            warnings: Vec::new(),
            xi_devices: None,
        }
    }
}
