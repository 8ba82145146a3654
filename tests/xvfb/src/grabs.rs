//! Grab probes: whether some client of a display holds the pointer or the keyboard grabbed,
//! asked the only way X allows — a grab of our own on the root that answers AlreadyGrabbed —
//! and released at once. (A keyboard probe that succeeds moves the focus away and back:
//! NotifyGrab/NotifyUngrab, which some toolkits take for losing it.)

use crate::connect;
use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// Whether some client holds the pointer grabbed: a GrabPointer of another client fails
/// with AlreadyGrabbed.
pub fn pointer_grabbed(display: &str) -> bool {
    let c = connect(display).expect("connect");
    let root = c.setup().roots[0].root;
    let r = c
        .grab_pointer(
            false,
            root,
            xproto::EventMask::NO_EVENT,
            xproto::GrabMode::ASYNC,
            xproto::GrabMode::ASYNC,
            x11rb::NONE,
            x11rb::NONE,
            x11rb::CURRENT_TIME,
        )
        .expect("request")
        .reply()
        .expect("GrabPointer");
    let _ = c.ungrab_pointer(x11rb::CURRENT_TIME);
    let _ = c.get_input_focus().map(|c| c.reply());
    r.status == xproto::GrabStatus::ALREADY_GRABBED
}

/// Whether some client holds the keyboard grabbed.
pub fn keyboard_grabbed(display: &str) -> bool {
    let c = connect(display).expect("connect");
    let root = c.setup().roots[0].root;
    let r = c
        .grab_keyboard(
            false,
            root,
            x11rb::CURRENT_TIME,
            xproto::GrabMode::ASYNC,
            xproto::GrabMode::ASYNC,
        )
        .expect("request")
        .reply()
        .expect("GrabKeyboard");
    let _ = c.ungrab_keyboard(x11rb::CURRENT_TIME);
    let _ = c.get_input_focus().map(|c| c.reply());
    r.status == xproto::GrabStatus::ALREADY_GRABBED
}
