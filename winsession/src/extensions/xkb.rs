//! XKEYBOARD per-client state. Capture: whether the client initialised XKB, its per-client
//! flags (PerClientFlags, asked early so its answer comes with others') and its event
//! selections as the GUIEVICT extension (≥ 1.2) describes them, into `Session::xkb`.
//! Regeneration: UseExtension, the selections (the core keyboard's by `XkbUseCoreKbd`, other
//! devices found by name) and the flags, into the [`Sink`].
//!
//! Three XKEYBOARD requests, encoded by hand (fixed layouts): UseExtension (minor 0),
//! SelectEvents (minor 1, one event type per request), PerClientFlags (minor 21).

use super::input::input_devices;
use super::{type_names, Sink};
use crate::capture::CaptureError;
use crate::model::*;
use x11rb::connection::Connection;

/// A reply kept as raw bytes.
pub(super) struct RawReply(Vec<u8>);

impl x11rb::x11_utils::TryParse for RawReply {
    fn try_parse(value: &[u8]) -> Result<(Self, &[u8]), x11rb::errors::ParseError> {
        Ok((RawReply(value.to_vec()), &[]))
    }
}

const XKB_NAME: &str = "XKEYBOARD";
const XKB_USE_CORE_KBD: u16 = 0x100;

fn xkb_per_client_flags(major: u8, change: u32, value: u32, auto: (u32, u32)) -> Vec<u8> {
    let mut b = vec![major, 21];
    b.extend_from_slice(&7u16.to_ne_bytes());
    b.extend_from_slice(&XKB_USE_CORE_KBD.to_ne_bytes());
    b.extend_from_slice(&[0, 0]);
    for v in [
        change,
        value,
        if change != 0 { !0 } else { 0 },
        auto.0,
        auto.1,
    ] {
        b.extend_from_slice(&v.to_ne_bytes());
    }
    b
}

fn ne_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map(|x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
        .unwrap_or(0)
}

/// Ask whether the client initialised XKB (see [`capture_xkb`]); `None` without XKEYBOARD.
pub(super) fn start_capture_xkb<C: Connection>(
    conn: &C,
) -> Result<Option<x11rb::cookie::Cookie<'_, C, RawReply>>, CaptureError> {
    let Some(info) = conn.extension_information(XKB_NAME)? else {
        return Ok(None);
    };
    let req = xkb_per_client_flags(info.major_opcode, 0, 0, (0, 0));
    Ok(Some(conn.send_request_with_reply::<RawReply>(
        &[std::io::IoSlice::new(&req)],
        Vec::new(),
    )?))
}

/// Whether the client initialised XKB (any XKB request but UseExtension fails with BadAccess
/// before), its per-client flags and, when the GUIEVICT extension (≥ 1.2) describes them, its
/// event selections. The `XkbClient` records the selections live in are then modelled and
/// leave `other_resources`.
/// [`start_capture_xkb`] sends the question (PerClientFlags, changing nothing) early, so that
/// its answer comes with others'.
pub(super) fn capture_xkb<C: Connection>(
    s: &mut Session,
    ext: Option<&crate::ext::ExtState>,
    asked: Option<x11rb::cookie::Cookie<'_, C, RawReply>>,
) -> Result<(), CaptureError> {
    let Some(c) = asked else {
        return Ok(());
    };
    match c.reply() {
        Ok(r) => {
            let selections = ext.and_then(xkb_selections_of);
            let records = s
                .other_resources
                .iter()
                .filter(|o| o.type_name == type_names::XKB_CLIENT)
                .count();
            match &selections {
                Some(sel) if sel.described >= records => s
                    .other_resources
                    .retain(|o| o.type_name != type_names::XKB_CLIENT),
                Some(sel) => s.unknown.push(format!(
                    "{} of {records} XKB event selection record(s) could not be described; \
                     their selections are lost",
                    records - sel.described
                )),
                None => s.unknown.push(
                    "XKB event selections cannot be read back without GUIEVICT 1.2; \
                     regenerated as GTK/Qt select them"
                        .into(),
                ),
            }
            s.xkb = Some(XkbClient {
                flags: ne_u32(&r.0, 12),
                auto_ctrls: ne_u32(&r.0, 16),
                auto_ctrls_values: ne_u32(&r.0, 20),
                selections: selections.map(|x| x.selections),
            });
        }
        Err(x11rb::errors::ReplyError::X11Error(_)) => {} // not initialised: BadAccess
        Err(source) => {
            return Err(CaptureError::Reply {
                what: "XkbPerClientFlags".into(),
                source,
            })
        }
    }
    Ok(())
}

/// What the GUIEVICT extension said about the client's XKB selections.
struct DescribedXkb {
    selections: XkbSelections,
    /// Interest records described (each an `XkbClient` resource).
    described: usize,
}

/// The client's XKB selections from the extension's answer; `None` when the server did not
/// describe them (older than 1.2). Records without any selection are left out.
fn xkb_selections_of(st: &crate::ext::ExtState) -> Option<DescribedXkb> {
    let c = st.xkb?;
    let mut described = 0;
    let mut devices = Vec::new();
    for r in &st.resources {
        if let guievict_ext_proto::Detail::XkbInterest(x) = &r.detail {
            described += 1;
            let d = XkbDeviceSelection {
                device: x.device,
                device_name: x.device_name.clone(),
                state: x.state,
                controls: x.controls,
                indicator_state: x.indicator_state,
                indicator_map: x.indicator_map,
                names: x.names,
                compat_map: x.compat_map,
                bell: x.bell,
                action_message: x.action_message,
                access_x: x.access_x,
                ext_dev: x.ext_dev,
            };
            if d != (XkbDeviceSelection {
                device: d.device,
                device_name: d.device_name.clone(),
                ..Default::default()
            }) {
                devices.push(d);
            }
        }
    }
    devices.sort_by_key(|d| d.device);
    Some(DescribedXkb {
        selections: XkbSelections {
            map_notify: c.map_notify,
            new_keyboard_notify: c.new_keyboard_notify,
            devices,
        },
        described,
    })
}

/// XKB event type indices (`XkbSelectEvents` affectWhich bits) and the size in bytes of their
/// detail masks; MapNotify (1) has its own fields in the request.
const XKB_NEW_KEYBOARD_NOTIFY: u16 = 0;
const XKB_MAP_NOTIFY: u16 = 1;

/// The name the X server gives the core keyboard; selections made on it are renewed with
/// `XkbUseCoreKbd` (whatever its ID is on the target).
pub const CORE_KEYBOARD_NAME: &str = "Virtual core keyboard";

/// One `XkbSelectEvents` request for one event type `ndx` on `device`, selecting exactly
/// `details` (affect = details: on a fresh client every mask starts empty). A mask of all ones
/// in its width is what `selectAll` leaves (the server stores ~0, beyond the legal bits that an
/// explicit mask may name), so it is renewed with `selectAll`. One event per request keeps the
/// detail layout unambiguous: the server reads a 1-byte pair from a 4-byte slot, xcb-proto
/// describes it as 2 bytes; alone in a padded request both agree.
pub fn xkb_select_events(major: u8, device: u16, ndx: u16, details: u32) -> Vec<u8> {
    let bit = 1u16 << ndx;
    let size = xkb_detail_size(ndx);
    // The server keeps what a client selected as one mask per event type: all ones after a
    // selectAll, and later selections with an `affect` mask change only the bits they affect.
    // Bits outside the type's legal set (left over from a selectAll that was narrowed later)
    // mean nothing — and the server refuses them in a request (BadValue): they are dropped.
    // All ones is what a selectAll leaves: asked for as selectAll again (stored the same).
    let all_ones = match size {
        1 => details == 0xff,
        2 => details == 0xffff,
        4 => details == u32::MAX,
        _ => false,
    };
    let details = details & xkb_legal_details(ndx);
    let (affect_map, map) = if ndx == XKB_MAP_NOTIFY {
        (details as u16, details as u16)
    } else {
        (0, 0)
    };
    let select_all = if all_ones { bit } else { 0 };
    let mut body: Vec<u8> = Vec::new();
    for v in [device, bit, 0, select_all, affect_map, map] {
        body.extend_from_slice(&v.to_ne_bytes());
    }
    match size {
        _ if all_ones => {}
        1 => body.extend_from_slice(&[details as u8, details as u8, 0, 0]),
        2 => {
            body.extend_from_slice(&(details as u16).to_ne_bytes());
            body.extend_from_slice(&(details as u16).to_ne_bytes());
        }
        4 => {
            body.extend_from_slice(&details.to_ne_bytes());
            body.extend_from_slice(&details.to_ne_bytes());
        }
        _ => {}
    }
    let mut b = vec![major, 1];
    let words = (4 + body.len()).div_ceil(4) as u16;
    b.extend_from_slice(&words.to_ne_bytes());
    b.extend_from_slice(&body);
    b.resize(usize::from(words) * 4, 0);
    b
}

/// The details an XKB event type has (`XkbAll…Mask` of XKB.h): what `XkbSelectEvents` accepts.
fn xkb_legal_details(ndx: u16) -> u32 {
    match ndx {
        0 => 0x7,          // NewKeyboardNotify: keycodes, geometry, device ID
        1 => 0xff,         // MapNotify: map components
        2 => 0x3fff,       // StateNotify: state components
        3 => 0xf800_1fff,  // ControlsNotify: controls
        4 | 5 => u32::MAX, // IndicatorState/MapNotify: 32 indicators
        6 => 0x3fff,       // NamesNotify: name components
        7 => 0x3,          // CompatMapNotify: group compat, sym interpret
        8 | 9 => 0x1,      // BellNotify, ActionMessage
        10 => 0x7f,        // AccessXNotify: the seven AXN details
        11 => 0x801f,      // ExtensionDeviceNotify: XI features, unsupported
        _ => 0,
    }
}

/// Size of an XKB event type's detail mask in `XkbSelectEvents` (0: no detail list).
fn xkb_detail_size(ndx: u16) -> usize {
    match ndx {
        0 | 2 | 6 | 10 | 11 => 2,
        3..=5 => 4,
        7..=9 => 1,
        _ => 0,
    }
}

/// The (event type, details) pairs of one device selection, in `affectWhich` bit order.
fn xkb_device_events(d: &XkbDeviceSelection) -> Vec<(u16, u32)> {
    [
        (2, u32::from(d.state)),
        (3, d.controls),
        (4, d.indicator_state),
        (5, d.indicator_map),
        (6, u32::from(d.names)),
        (7, u32::from(d.compat_map)),
        (8, u32::from(d.bell)),
        (9, u32::from(d.action_message)),
        (10, u32::from(d.access_x)),
        (11, u32::from(d.ext_dev)),
    ]
    .into_iter()
    .filter(|&(_, v)| v != 0)
    .collect()
}

/// XKB's initialisation for the new connection, under way: UseExtension is sent,
/// [`XkbStart::finish`] awaits it and sends the rest.
pub(super) struct XkbStart<'c, 'a, C: Connection> {
    conn: &'c C,
    t: &'a Session,
    sent: Option<(u8, x11rb::cookie::Cookie<'c, C, RawReply>)>,
}

/// Initialise XKB for the new connection as the application had it: UseExtension, its event
/// selections (exactly as captured, or GTK/Qt's when unknown), its per-client flags. This
/// sends UseExtension only; the rest follows its answer ([`XkbStart::finish`]).
pub(super) fn start_xkb<'c, 'a, C: Connection>(
    conn: &'c C,
    t: &'a Session,
    sink: &mut Sink<'c, C>,
) -> Result<XkbStart<'c, 'a, C>, crate::RegenError> {
    let mut start = XkbStart {
        conn,
        t,
        sent: None,
    };
    if t.xkb.is_none() {
        return Ok(start);
    }
    let Some(info) = conn.extension_information(XKB_NAME)? else {
        sink.warnings
            .push("the target has no XKEYBOARD extension, which the application uses".into());
        return Ok(start);
    };
    let major = info.major_opcode;
    let mut use_ext = vec![major, 0];
    use_ext.extend_from_slice(&2u16.to_ne_bytes());
    use_ext.extend_from_slice(&1u16.to_ne_bytes());
    use_ext.extend_from_slice(&0u16.to_ne_bytes());
    let c =
        conn.send_request_with_reply::<RawReply>(&[std::io::IoSlice::new(&use_ext)], Vec::new())?;
    start.sent = Some((major, c));
    Ok(start)
}

impl<'c, C: Connection> XkbStart<'c, '_, C> {
    /// Await UseExtension's answer; then the app's selections and flags.
    pub(super) fn finish(self, sink: &mut Sink<'c, C>) -> Result<(), crate::RegenError> {
        let (conn, t) = (self.conn, self.t);
        let (Some(x), Some((major, c))) = (&t.xkb, self.sent) else {
            return Ok(());
        };
        regen_xkb_rest(conn, x, major, c, sink)
    }
}

fn regen_xkb_rest<'c, C: Connection>(
    conn: &'c C,
    x: &XkbClient,
    major: u8,
    c: x11rb::cookie::Cookie<'c, C, RawReply>,
    sink: &mut Sink<'c, C>,
) -> Result<(), crate::RegenError> {
    match c.reply() {
        Ok(r) if r.0.get(1) == Some(&1) => {}
        Ok(_) => {
            sink.warnings
                .push("the target refused XKB 1.0 for the application".into());
            return Ok(());
        }
        Err(e) => {
            sink.warnings.push(format!("XkbUseExtension failed: {e}"));
            return Ok(());
        }
    }
    match &x.selections {
        None => {
            // Unknown: NewKeyboardNotify | MapNotify | StateNotify, all details.
            let mut sel = vec![major, 1];
            sel.extend_from_slice(&4u16.to_ne_bytes());
            for v in [XKB_USE_CORE_KBD, 0b111, 0, 0b111, 0, 0] {
                sel.extend_from_slice(&v.to_ne_bytes());
            }
            let c = conn.send_request_without_reply(&[std::io::IoSlice::new(&sel)], Vec::new())?;
            sink.soft.push(("XkbSelectEvents", 0, c));
        }
        Some(sel) => regen_xkb_selections(conn, major, sel, sink)?,
    }
    if x.flags != 0 || x.auto_ctrls != 0 {
        let req = xkb_per_client_flags(major, 0x1f, x.flags, (x.auto_ctrls, x.auto_ctrls_values));
        let c =
            conn.send_request_with_reply::<RawReply>(&[std::io::IoSlice::new(&req)], Vec::new())?;
        if let Err(e) = c.reply() {
            sink.warnings.push(format!(
                "XkbPerClientFlags failed, flags {:#x} lost: {e}",
                x.flags
            ));
        }
    }
    Ok(())
}

/// Renew captured XKB selections: the client-wide MapNotify / NewKeyboardNotify details on the
/// core keyboard, the rest on the device of the same name (the core keyboard by
/// `XkbUseCoreKbd`; another device by its XInput name, or reported when the target lacks it).
fn regen_xkb_selections<'c, C: Connection>(
    conn: &'c C,
    major: u8,
    sel: &XkbSelections,
    sink: &mut Sink<'c, C>,
) -> Result<(), crate::RegenError> {
    let mut reqs: Vec<(u16, u16, u32)> = Vec::new();
    if sel.new_keyboard_notify != 0 {
        reqs.push((
            XKB_USE_CORE_KBD,
            XKB_NEW_KEYBOARD_NOTIFY,
            u32::from(sel.new_keyboard_notify),
        ));
    }
    if sel.map_notify != 0 {
        reqs.push((XKB_USE_CORE_KBD, XKB_MAP_NOTIFY, u32::from(sel.map_notify)));
    }
    let mut others: Option<Vec<(u16, String)>> = None;
    for d in &sel.devices {
        let device = if d.device_name == CORE_KEYBOARD_NAME {
            XKB_USE_CORE_KBD
        } else {
            if others.is_none() {
                others = Some(input_devices(conn));
            }
            match others.iter().flatten().find(|(_, n)| *n == d.device_name) {
                Some((id, _)) => *id,
                None => {
                    sink.warnings.push(format!(
                        "XKB events selected on device {} \"{}\" are lost: the target has no such device",
                        d.device, d.device_name
                    ));
                    continue;
                }
            }
        };
        for (ndx, v) in xkb_device_events(d) {
            reqs.push((device, ndx, v));
        }
    }
    for (device, ndx, v) in reqs {
        let req = xkb_select_events(major, device, ndx, v);
        let c = conn.send_request_without_reply(&[std::io::IoSlice::new(&req)], Vec::new())?;
        sink.soft.push(("XkbSelectEvents", u32::from(device), c));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ne16(b: &[u8], at: usize) -> u16 {
        u16::from_ne_bytes([b[at], b[at + 1]])
    }

    #[test]
    fn xkb_select_events_one_type_per_request() {
        // StateNotify on the core keyboard, 2-byte details.
        let b = xkb_select_events(135, XKB_USE_CORE_KBD, 2, 0x1fff);
        assert_eq!((b[0], b[1], ne16(&b, 2)), (135, 1, 5));
        assert_eq!(b.len(), 20);
        assert_eq!(ne16(&b, 4), 0x100);
        assert_eq!(ne16(&b, 6), 1 << 2); // affectWhich
        assert_eq!((ne16(&b, 8), ne16(&b, 10)), (0, 0)); // clear, selectAll
        assert_eq!((ne16(&b, 12), ne16(&b, 14)), (0, 0)); // affectMap, map
                                                          // 4-byte details (ControlsNotify): affect then value.
        let b = xkb_select_events(135, 3, 3, 0x8000_0001);
        assert_eq!(b.len(), 24);
        assert_eq!(&b[16..20], &0x8000_0001u32.to_ne_bytes());
        assert_eq!(&b[20..24], &0x8000_0001u32.to_ne_bytes());
        // 1-byte details (CompatMapNotify) sit in a padded 4-byte slot.
        let b = xkb_select_events(135, 3, 7, 1);
        assert_eq!(b.len(), 20);
        assert_eq!(&b[16..20], &[1, 1, 0, 0]);
        // BellNotify's one detail, selected as such: details, not selectAll (stored as 1).
        let b = xkb_select_events(135, 3, 8, 1);
        assert_eq!((b.len(), ne16(&b, 10)), (20, 0));
        assert_eq!(&b[16..20], &[1, 1, 0, 0]);
        // All ones (what selectAll leaves): selectAll, no details.
        let b = xkb_select_events(135, 3, 8, 0xff);
        assert_eq!(b.len(), 16);
        assert_eq!((ne16(&b, 6), ne16(&b, 10)), (1 << 8, 1 << 8));
        // A selectAll later narrowed with an affect mask (GTK3: StateNotify 0xc000 | value):
        // the bits outside the legal 0x3fff are not sent (the server would say BadValue).
        let b = xkb_select_events(135, XKB_USE_CORE_KBD, 2, 0xc000 | 0x0131);
        assert_eq!(b.len(), 20);
        assert_eq!(ne16(&b, 10), 0); // not selectAll
        assert_eq!((ne16(&b, 16), ne16(&b, 18)), (0x0131, 0x0131));
        let b = xkb_select_events(135, XKB_USE_CORE_KBD, 2, 0xffff);
        assert_eq!((b.len(), ne16(&b, 10)), (16, 1 << 2));
        // MapNotify: no detail list, its mask in affectMap/map.
        let b = xkb_select_events(135, 0x100, XKB_MAP_NOTIFY, 0xff);
        assert_eq!(b.len(), 16);
        assert_eq!(ne16(&b, 6), 2);
        assert_eq!((ne16(&b, 12), ne16(&b, 14)), (0xff, 0xff));
    }

    #[test]
    fn xkb_selections_from_the_extension_leave_empty_records_out() {
        use guievict_ext_proto as proto;
        let rec = |id, state| proto::Resource {
            id,
            kind: proto::ResourceKind(type_names::XKB_CLIENT.into()),
            server_type: 30,
            detail: proto::Detail::XkbInterest(proto::XkbInterestInfo {
                device: 3,
                device_name: CORE_KEYBOARD_NAME.into(),
                state,
                ..Default::default()
            }),
        };
        let st = crate::ext::ExtState {
            resources: vec![rec(0x4000_0001, 0), rec(0x4000_0002, 0x30)],
            xkb: Some(proto::XkbClientState {
                map_notify: 6,
                new_keyboard_notify: 1,
                flags: proto::XkbClientState::INITIALISED,
            }),
            ..Default::default()
        };
        let d = xkb_selections_of(&st).unwrap();
        assert_eq!(d.described, 2);
        assert_eq!(
            (d.selections.map_notify, d.selections.new_keyboard_notify),
            (6, 1)
        );
        assert_eq!(d.selections.devices.len(), 1);
        assert_eq!(xkb_device_events(&d.selections.devices[0]), vec![(2, 0x30)]);
        // A 1.1 server said nothing about XKB.
        let old = crate::ext::ExtState { xkb: None, ..st };
        assert!(xkb_selections_of(&old).is_none());
    }
}
