//! The CLI's own X connections. A display name (or `$DISPLAY`) flows in; a connection flows out,
//! or an error that says what is wrong and what to do: no display given, nothing listening, a
//! server that accepts the connection but never answers (stopped or hung: the wait is bounded),
//! a screen the display does not have. Also the window → owning process lookup every command
//! that takes a window uses, which refuses the windows no application owns (None, the root
//! windows, anything else the server itself created).

use anyhow::{bail, Context, Result};
use std::time::Duration;
use x11rb::connection::Connection;
use x11rb::errors::{ConnectError, ReplyError};
use x11rb::protocol::res::{self, ClientIdMask, ClientIdSpec};
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _};
use x11rb::rust_connection::RustConnection;

/// Longest wait for a server's answer to the connection setup (as the hijack library waits).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The display meant: the one given, else `$DISPLAY`.
pub fn display_name(display: Option<&str>) -> Result<String> {
    match display {
        Some(d) => Ok(d.to_string()),
        None => std::env::var("DISPLAY")
            .ok()
            .filter(|d| !d.is_empty())
            .context("no display given and $DISPLAY is not set: say which with --display :N"),
    }
}

/// Connect to `display` (default `$DISPLAY`), waiting at most [`CONNECT_TIMEOUT`] for the
/// server's answer. Returns the connection, the screen number and the display's name.
pub fn connect(display: Option<&str>) -> Result<(RustConnection, usize, String)> {
    let name = display_name(display)?;
    let (tx, rx) = std::sync::mpsc::channel();
    let n = name.clone();
    // x11rb waits for the setup without a bound; a thread left behind on a timeout ends with
    // the process.
    std::thread::spawn(move || {
        let _ = tx.send(x11rb::connect(Some(&n)));
    });
    match rx.recv_timeout(CONNECT_TIMEOUT) {
        Ok(Ok((conn, screen))) => Ok((conn, screen, name)),
        Ok(Err(e)) => Err(connect_error(&name, e)),
        Err(_) => bail!(
            "the X server of display {name} accepted the connection but did not answer within \
             {} s: it is stopped (SIGSTOP, a debugger) or hung; `kill -CONT` it or use another \
             display",
            CONNECT_TIMEOUT.as_secs()
        ),
    }
}

/// A connection failure in words a user can act on.
fn connect_error(name: &str, e: ConnectError) -> anyhow::Error {
    match e {
        ConnectError::InvalidScreen => {
            let screen = name.rsplit_once('.').map(|(_, s)| s).unwrap_or("?");
            anyhow::anyhow!(
                "display {name} has no screen {screen}: use {} (screen 0), or a screen the \
                 server was started with",
                name.rsplit_once('.').map(|(d, _)| d).unwrap_or(name)
            )
        }
        ConnectError::DisplayParsingError(_) => {
            anyhow::anyhow!("{name:?} is not a display name (`:N`, `:N.S`, `host:N`, `unix:N`)")
        }
        ConnectError::IoError(io) => anyhow::anyhow!(
            "cannot connect to X display {name}: {io} (is an X server running there? `guievict \
             doctor --display {name}` checks)"
        ),
        ConnectError::SetupAuthenticate(_) | ConnectError::SetupFailed(_) => anyhow::anyhow!(
            "the X server of display {name} refused the connection: {e} (is $XAUTHORITY right \
             for it?)"
        ),
        other => anyhow::anyhow!("cannot connect to X display {name}: {other}"),
    }
}

/// Parse `0x1a00004` or decimal; 0 (None) is refused.
pub fn parse_window(s: &str) -> Result<u32> {
    let r = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(h, 16)
    } else {
        s.parse()
    };
    let w = r.with_context(|| format!("{s:?} is not a window ID (0x… or decimal)"))?;
    anyhow::ensure!(
        w != 0,
        "{s} is not a window: window ID 0 means None (`guievict list --display D` shows the \
         windows of a display)"
    );
    Ok(w)
}

/// Refuse a window no application owns: a root window, or another window the server made
/// (resource IDs of the server's own client have no client bits).
pub fn check_owned_by_a_client(conn: &RustConnection, name: &str, window: u32) -> Result<()> {
    let setup = conn.setup();
    if let Some(n) = setup.roots.iter().position(|r| r.root == window) {
        bail!(
            "{window:#x} is the root window of screen {n} of {name}: it belongs to the X server, \
             not to an application; name one of an application's windows (`guievict list \
             --display {name}` lists them)"
        );
    }
    if window & !setup.resource_id_mask == 0 {
        bail!(
            "window {window:#x} on {name} was made by the X server itself, not by an application \
             (`guievict list --display {name}` lists the applications' windows)"
        );
    }
    Ok(())
}

/// PID of the client owning `window` on `display` (X-Resource `QueryClientIds` with the
/// window's client, fallback `_NET_WM_PID`).
pub fn window_to_pid(display: Option<&str>, window: u32) -> Result<u32> {
    let (conn, _, name) = connect(display)?;
    check_owned_by_a_client(&conn, &name, window)?;
    match conn.get_window_attributes(window)?.reply() {
        Ok(_) => {}
        Err(ReplyError::X11Error(e)) if e.error_kind == x11rb::protocol::ErrorKind::Window => {
            bail!(
                "there is no window {window:#x} on {name} (closed, or on another display? \
                 `guievict list --display {name}` lists the windows there)"
            )
        }
        Err(e) => return Err(e).context(format!("asking {name} about window {window:#x}")),
    }
    let r = res::query_client_ids(
        &conn,
        &[ClientIdSpec {
            client: window,
            mask: ClientIdMask::LOCAL_CLIENT_PID,
        }],
    )?
    .reply();
    if let Ok(r) = r {
        if let Some(pid) = r
            .ids
            .iter()
            .find(|i| i.spec.mask.contains(ClientIdMask::LOCAL_CLIENT_PID))
            .and_then(|i| i.value.first())
        {
            return Ok(*pid);
        }
    }
    let atom = conn.intern_atom(false, b"_NET_WM_PID")?.reply()?.atom;
    if let Ok(p) = conn
        .get_property(false, window, atom, AtomEnum::CARDINAL, 0, 1)?
        .reply()
    {
        if let Some(pid) = p.value32().and_then(|mut v| v.next()) {
            return Ok(pid);
        }
    }
    bail!(
        "cannot tell which process owns window {window:#x} on {name}: the server does not know \
         its client's PID (a remote client?) and the window has no _NET_WM_PID; use --pid"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_ids_parse_and_none_is_refused() {
        assert_eq!(parse_window("0x1a00004").unwrap(), 0x1a00004);
        assert_eq!(parse_window("27262980").unwrap(), 27262980);
        let e = parse_window("0").unwrap_err().to_string();
        assert!(e.contains("means None"), "{e}");
        let e = parse_window(":1").unwrap_err().to_string();
        assert!(e.contains("is not a window ID"), "{e}");
    }
}
