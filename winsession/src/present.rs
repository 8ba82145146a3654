//! Present event selections (`PresentSelectInput`: a video player such as mpv asks for
//! CompleteNotify events to time its frames). The server files each selection under the
//! client's event ID; the Present protocol cannot read one back, so the capture takes the
//! window and mask from the GUIEVICT extension (1.7) into [`Session::present_events`], and
//! regenerate (after the windows) selects the same events under the same event ID on the
//! target. Without the extension a selection stays unknown, so a move is refused.

use crate::ext::ExtState;
use crate::model::{PresentSelection, Session};
use guievict_ext_proto as proto;
use x11rb::connection::Connection;
use x11rb::cookie::VoidCookie;
use x11rb::protocol::present::{self, ConnectionExt as _};

/// Capture the client's Present event selections on its own windows (windows must be in `s`
/// already).
pub(crate) fn capture(s: &mut Session, ext: Option<&ExtState>) {
    let found = crate::ext::described(ext, |d| match d {
        proto::Detail::PresentEvent(x) => Some(*x),
        _ => None,
    });
    let mut ids: Vec<u32> = found.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let x = found[&id];
        if !s.windows.iter().any(|w| w.id == x.window) {
            s.unknown.push(format!(
                "PresentEvent {id:#x}: selects on window {:#x}, which is not the application's; \
                 not recreated",
                x.window
            ));
            continue;
        }
        s.present_events.push(PresentSelection {
            id,
            window: x.window,
            event_mask: x.event_mask,
        });
    }
    s.other_resources
        .retain(|o| o.type_name != proto::kinds::PRESENT_EVENT || !found.contains_key(&o.id));
}

/// Select the same Present events on the target (IDs already the target's). Returns the
/// requests to check and the warnings.
#[allow(clippy::type_complexity)]
pub(crate) fn regenerate<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
) -> Result<
    (Vec<(&'static str, u32, VoidCookie<'c, C>)>, Vec<String>),
    x11rb::errors::ConnectionError,
> {
    let mut checks = Vec::new();
    let mut warnings = Vec::new();
    if t.present_events.is_empty() {
        return Ok((checks, warnings));
    }
    if conn
        .extension_information(present::X11_EXTENSION_NAME)?
        .is_none()
    {
        warnings.push(format!(
            "the target has no Present extension: {} Present event selection(s) not recreated",
            t.present_events.len()
        ));
        return Ok((checks, warnings));
    }
    for e in &t.present_events {
        checks.push((
            "PresentSelectInput",
            e.id,
            conn.present_select_input(e.id, e.window, present::EventMask::from(e.event_mask))?,
        ));
    }
    Ok((checks, warnings))
}
