//! Which window the user means when they give no ID: a regular expression over the titles of a
//! display's top-level windows (`--name`), or the window they click (`--pick`, the pointer grabbed
//! until a button press). A display flows in, one window ID flows out, or an error that says why
//! (none or several matched, the grab was refused).

use anyhow::{bail, Context, Result};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _};

/// The top-level window (child of a root, or the client window below a WM frame) whose
/// title matches `re`; exactly one must match.
pub fn window_by_name(display: Option<&str>, re: &str) -> Result<u32> {
    let re = regex::Regex::new(re).with_context(|| format!("bad regular expression {re:?}"))?;
    let (conn, _, _) = crate::xconn::connect(display)?;
    let net_wm_name = conn.intern_atom(false, b"_NET_WM_NAME")?.reply()?.atom;
    let utf8 = conn.intern_atom(false, b"UTF8_STRING")?.reply()?.atom;
    let mut found = Vec::new();
    for screen in &conn.setup().roots {
        let top = conn.query_tree(screen.root)?.reply()?.children;
        let mut candidates = top.clone();
        // Below a window manager's frames: their children too.
        for w in &top {
            if let Ok(t) = conn.query_tree(*w)?.reply() {
                candidates.extend(t.children);
            }
        }
        for w in candidates {
            let mut title = None;
            for (prop, ty) in [
                (net_wm_name, utf8),
                (AtomEnum::WM_NAME.into(), AtomEnum::STRING.into()),
            ] {
                if let Ok(r) = conn.get_property(false, w, prop, ty, 0, 1024)?.reply() {
                    if !r.value.is_empty() {
                        title = Some(String::from_utf8_lossy(&r.value).into_owned());
                        break;
                    }
                }
            }
            if let Some(t) = title.filter(|t| re.is_match(t)) {
                found.push((w, t));
            }
        }
    }
    match found.as_slice() {
        [(w, _)] => Ok(*w),
        [] => bail!("no window title matches {}", re.as_str()),
        many => bail!(
            "{} windows match {}: {}; be more specific or give the window ID",
            many.len(),
            re.as_str(),
            many.iter()
                .map(|(w, t)| format!("{w:#x} {t:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Let the user click a window: grab the pointer with a crosshair and return the top-level
/// window under the click (the child of the root, as xwininfo does).
pub fn pick_window(display: Option<&str>) -> Result<u32> {
    use x11rb::protocol::xproto::{EventMask, GrabMode, GrabStatus};
    use x11rb::protocol::Event;
    let (conn, screen, _) = crate::xconn::connect(display)?;
    let root = conn.setup().roots[screen].root;
    let font = conn.generate_id()?;
    conn.open_font(font, b"cursor")?;
    let cursor = conn.generate_id()?;
    // XC_crosshair = 34.
    conn.create_glyph_cursor(cursor, font, font, 34, 35, 0, 0, 0, 0xffff, 0xffff, 0xffff)?;
    let g = conn
        .grab_pointer(
            false,
            root,
            EventMask::BUTTON_PRESS | EventMask::BUTTON_RELEASE,
            GrabMode::ASYNC,
            GrabMode::ASYNC,
            root,
            cursor,
            x11rb::CURRENT_TIME,
        )?
        .reply()?;
    anyhow::ensure!(
        g.status == GrabStatus::SUCCESS,
        "cannot grab the pointer ({:?})",
        g.status
    );
    eprintln!("guievict: click the window to act on");
    let picked = loop {
        if let Event::ButtonPress(e) = conn.wait_for_event()? {
            break if e.child == x11rb::NONE {
                e.event
            } else {
                e.child
            };
        }
    };
    conn.ungrab_pointer(x11rb::CURRENT_TIME)?;
    conn.flush()?;
    anyhow::ensure!(picked != root, "you clicked the root window");
    Ok(picked)
}
