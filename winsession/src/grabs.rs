//! Passive grabs: the GUIEVICT extension (protocol ≥ 1.3) describes every passive grab the
//! client holds (`PASSIVE GRAB` resources: window, key or button, modifiers, modes, event mask,
//! confine-to, cursor, and the exceptions later partial ungrabs cut out of an Any grab). The
//! capture half turns the core ones into [`PassiveGrab`]s of the [`Session`] and lists the
//! XInput ones (and any grab the extension could not describe) as not recreated; the regenerate
//! half issues `GrabKey` / `GrabButton` (plus the `UngrabKey` / `UngrabButton` that cut the
//! exceptions back out) on the target after the windows exist. A grab on another client's
//! window cannot be recreated (that window does not exist on the target) and is reported, and
//! so is an active pointer or keyboard grab that cannot be carried (`active_grabs`).

use crate::capture::ResourceList;
use crate::extensions::Sink;
use crate::model::{PassiveGrab, Session};
use guievict_ext_proto as proto;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// The server's type name of a passive grab resource.
pub const TYPE_NAME: &str = proto::kinds::PASSIVE_GRAB;

/// AnyModifier.
const ANY_MODIFIER: u16 = 0x8000;

/// Capture the client's passive grabs from the extension's answer into `s.passive_grabs`;
/// grabs that cannot be modelled go to `s.unknown` (with "not modelled", so regeneration
/// repeats them as warnings).
pub(crate) fn capture(s: &mut Session, list: &ResourceList, ext: Option<&crate::ext::ExtState>) {
    let listed = list.other.iter().filter(|(_, t)| t == TYPE_NAME).count();
    let mut described = 0;
    let mut xinput = 0;
    if let Some(st) = ext {
        for r in &st.resources {
            let proto::Detail::PassiveGrab(g) = &r.detail else {
                continue;
            };
            described += 1;
            if !(g.is_core_key() || g.is_core_button()) {
                xinput += 1;
                continue;
            }
            // Core details and modifiers always fit; a record where they do not is not
            // widened into an Any grab but reported.
            let (Ok(detail), Ok(modifiers)) = (u8::try_from(g.detail), u16::try_from(g.modifiers))
            else {
                s.unknown.push(format!(
                    "passive grab on {:#x}: detail {} / modifiers {:#x} out of the core range; not recreated (not modelled)",
                    g.window, g.detail, g.modifiers
                ));
                continue;
            };
            s.passive_grabs.push(PassiveGrab {
                window: g.window,
                button: g.is_core_button(),
                detail,
                modifiers,
                owner_events: g.owner_events,
                event_mask: g.event_mask as u16,
                pointer_mode: g.pointer_mode,
                keyboard_mode: g.keyboard_mode,
                confine_to: g.confine_to,
                cursor: g.cursor,
                modifier_mask: g.modifier_mask.clone(),
                detail_mask: g.detail_mask.clone(),
            });
        }
    }
    if xinput > 0 {
        s.unknown.push(format!(
            "{xinput} XInput passive grab(s) (XIPassiveGrabDevice / GrabDeviceKey / GrabDeviceButton): not recreated (not modelled)"
        ));
    }
    let total = ext
        .map(|st| {
            st.resources
                .iter()
                .filter(|r| r.kind.as_str() == TYPE_NAME)
                .count()
        })
        .unwrap_or(listed);
    if total > described {
        let why = if ext.is_some() {
            "the GUIEVICT extension (older than 1.3, or a record that did not check out) could not describe them"
        } else {
            "they cannot be read back without the GUIEVICT extension"
        };
        s.unknown.push(format!(
            "{} passive grab(s) (GrabKey/GrabButton): {why}; not recreated (not modelled)",
            total - described
        ));
    }
    s.other_resources.retain(|o| o.type_name != TYPE_NAME);
}

/// The values (0..256) whose bit is clear in a 256-bit mask: what partial ungrabs removed.
fn cleared(mask: &[u8]) -> impl Iterator<Item = u16> + '_ {
    (0u16..256).filter(move |&n| {
        mask.get(usize::from(n / 8))
            .is_none_or(|b| b & (1 << (n % 8)) == 0)
    })
}

/// Recreate the passive grabs of `t` (already in target numbers). Every request is soft: a
/// grab another client of the target already holds (BadAccess) is a warning, not a failed move.
pub(crate) fn regen<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    sink: &mut Sink<'c, C>,
) -> Result<(), crate::RegenError> {
    if t.passive_grabs.is_empty() {
        return Ok(());
    }
    let windows: std::collections::HashSet<u32> = t.windows.iter().map(|w| w.id).collect();
    let cursors: std::collections::HashSet<u32> = t.cursors.iter().map(|c| c.id).collect();
    let root = t.setup.root;
    let mut foreign = 0usize;
    for g in &t.passive_grabs {
        if g.window != root && !windows.contains(&g.window) {
            foreign += 1;
            continue;
        }
        let owner = g.owner_events;
        let pm = xproto::GrabMode::from(g.pointer_mode);
        let km = xproto::GrabMode::from(g.keyboard_mode);
        let what = if g.button { "GrabButton" } else { "GrabKey" };
        if g.button {
            let confine = if g.confine_to == root || windows.contains(&g.confine_to) {
                g.confine_to
            } else {
                0
            };
            let cursor = if cursors.contains(&g.cursor) {
                g.cursor
            } else {
                0
            };
            if cursor != g.cursor || confine != g.confine_to {
                sink.warnings.push(format!(
                    "GrabButton({:#x}, button {}, modifiers {:#x}): confine-to/cursor of another client dropped",
                    g.window, g.detail, g.modifiers
                ));
            }
            let c = conn.grab_button(
                owner,
                g.window,
                xproto::EventMask::from(u32::from(g.event_mask)),
                pm,
                km,
                confine,
                cursor,
                xproto::ButtonIndex::from(g.detail),
                xproto::ModMask::from(g.modifiers),
            )?;
            sink.soft.push((what, g.window, c));
        } else {
            let c = conn.grab_key(
                owner,
                g.window,
                xproto::ModMask::from(g.modifiers),
                g.detail,
                pm,
                km,
            )?;
            sink.soft.push((what, g.window, c));
        }
        // Partial ungrabs the application made after an Any grab.
        if let Some(m) = g
            .modifier_mask
            .as_deref()
            .filter(|_| g.modifiers == ANY_MODIFIER)
        {
            for n in cleared(m) {
                let c = if g.button {
                    conn.ungrab_button(
                        xproto::ButtonIndex::from(g.detail),
                        g.window,
                        xproto::ModMask::from(n),
                    )?
                } else {
                    conn.ungrab_key(g.detail, g.window, xproto::ModMask::from(n))?
                };
                sink.soft.push(("Ungrab (modifier exception)", g.window, c));
            }
        }
        if let Some(m) = g.detail_mask.as_deref().filter(|_| g.detail == 0) {
            for n in cleared(m).filter(|&n| n > 0) {
                let n = n as u8;
                let c = if g.button {
                    conn.ungrab_button(
                        xproto::ButtonIndex::from(n),
                        g.window,
                        xproto::ModMask::from(g.modifiers),
                    )?
                } else {
                    conn.ungrab_key(n, g.window, xproto::ModMask::from(g.modifiers))?
                };
                sink.soft.push(("Ungrab (detail exception)", g.window, c));
            }
        }
    }
    if foreign > 0 {
        sink.warnings.push(format!(
            "{foreign} passive grab(s) on other clients' windows: not recreated (those windows do not exist on the target)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleared_lists_the_removed_values() {
        let mut m = vec![0xffu8; 32];
        m[0] = 0xfe;
        m[1] = 0x7f;
        assert_eq!(cleared(&m).collect::<Vec<_>>(), vec![0, 15]);
        assert_eq!(cleared(&[]).count(), 256);
    }
}
