//! XInput 2. Capture: the client's event selections on its windows and the root, with the
//! version it negotiated and the source server's devices (device IDs are server-allocated), into
//! `Session::xi_selections`, `client_versions`, `xi_devices`. Between servers: devices are
//! matched by use and name ([`map_xi_devices`]). Regeneration: XISelectEvents with the device
//! IDs mapped, into the [`Sink`]; the device map goes back to the caller (guimux translates the
//! application's live device IDs with it). XKB finds devices by name here too
//! ([`input_devices`]).

use super::Sink;
use crate::capture::CaptureError;
use crate::model::*;
use std::collections::HashMap;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::cookie::Cookie;
use x11rb::protocol::xinput::{self, ConnectionExt as _};

/// XInput 2 `AllDevices`: a selection for every device, present and future.
pub const ALL_DEVICES: u16 = 0;
/// XInput 2 `AllMasterDevices`: a selection for every master device.
pub const ALL_MASTER_DEVICES: u16 = 1;

pub(super) fn xi_devices_of(r: &xinput::XIQueryDeviceReply) -> Vec<XiDevice> {
    let mut v: Vec<XiDevice> = r
        .infos
        .iter()
        .map(|d| XiDevice {
            id: d.deviceid,
            use_: u16::from(d.type_) as u8,
            name: String::from_utf8_lossy(&d.name).into_owned(),
        })
        .collect();
    v.sort_by_key(|d| d.id);
    v
}

/// Device IDs of one server matched to another's ([`map_xi_devices`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XiDeviceMapping {
    /// Source device ID → target device ID; always holds 0 → 0 (AllDevices) and
    /// 1 → 1 (AllMasterDevices).
    pub map: HashMap<u16, u16>,
    /// Source devices with no counterpart, and masters matched by use alone.
    pub warnings: Vec<String>,
}

fn use_name(u: u8) -> &'static str {
    match u {
        1 => "master pointer",
        2 => "master keyboard",
        3 => "slave pointer",
        4 => "slave keyboard",
        5 => "floating slave",
        _ => "device",
    }
}

/// Match XInput 2 devices of the source server to the target's. Device IDs are allocated by
/// each server in the order devices appear, so the same device can have another ID elsewhere
/// (an Xorg with a hardware keyboard numbers its devices differently from Xvfb). A device
/// matches the target device with the same use and name (several with the same use and name
/// pair up in ID order); a master device left over matches a remaining master of the same use
/// (every server has a core pointer/keyboard pair; a warning says so); any other device left
/// over has no counterpart and is reported. 0 (AllDevices) and 1 (AllMasterDevices) are not
/// devices and map to themselves.
pub fn map_xi_devices(src: &[XiDevice], dst: &[XiDevice]) -> XiDeviceMapping {
    let mut out = XiDeviceMapping {
        map: HashMap::from([
            (ALL_DEVICES, ALL_DEVICES),
            (ALL_MASTER_DEVICES, ALL_MASTER_DEVICES),
        ]),
        warnings: Vec::new(),
    };
    let by_id = |v: &[XiDevice]| {
        let mut v: Vec<XiDevice> = v.iter().filter(|d| d.id >= 2).cloned().collect();
        v.sort_by_key(|d| d.id);
        v
    };
    let (src, dst) = (by_id(src), by_id(dst));
    let mut taken = std::collections::HashSet::new();
    for d in &src {
        if let Some(t) = dst
            .iter()
            .find(|t| !taken.contains(&t.id) && t.use_ == d.use_ && t.name == d.name)
        {
            taken.insert(t.id);
            out.map.insert(d.id, t.id);
        }
    }
    let left: Vec<&XiDevice> = src
        .iter()
        .filter(|d| !out.map.contains_key(&d.id))
        .collect();
    for d in left {
        let master = d.use_ == 1 || d.use_ == 2;
        let t = dst
            .iter()
            .find(|t| master && !taken.contains(&t.id) && t.use_ == d.use_);
        match t {
            Some(t) => {
                taken.insert(t.id);
                out.map.insert(d.id, t.id);
                out.warnings.push(format!(
                    "XInput device {} ({:?}, {}) has no namesake on the target; using {} ({:?})",
                    d.id,
                    d.name,
                    use_name(d.use_),
                    t.id,
                    t.name
                ));
            }
            None => out.warnings.push(format!(
                "XInput device {} ({:?}, {}) does not exist on the target; its event selections are dropped",
                d.id,
                d.name,
                use_name(d.use_)
            )),
        }
    }
    out
}

/// Windows asked about: (window, XIGetSelectedEvents).
pub(super) type SelectionCookies<'c, C> =
    Vec<(u32, Cookie<'c, C, xinput::XIGetSelectedEventsReply>)>;

/// Ask for the client's event selections on each of its windows and the root (none without
/// XInput).
pub(super) fn ask_selections<'c, C: Connection>(
    conn: &'c C,
    windows: &[u32],
    root: u32,
    have_xi: bool,
) -> Result<SelectionCookies<'c, C>, CaptureError> {
    let mut xi_cookies = Vec::new();
    if have_xi {
        for w in windows.iter().copied().chain(std::iter::once(root)) {
            xi_cookies.push((w, conn.xinput_xi_get_selected_events(w)?));
        }
    }
    Ok(xi_cookies)
}

/// The answers to [`ask_selections`] into `s.xi_selections` (windows without any left out).
pub(super) fn read_selections<C: RequestConnection>(
    s: &mut Session,
    asked: SelectionCookies<'_, C>,
) {
    for (w, c) in asked {
        match c.reply() {
            Ok(r) => {
                let masks: Vec<(u16, Vec<u32>)> = r
                    .masks
                    .into_iter()
                    .filter(|m| m.mask.iter().any(|&x| u32::from(x) != 0))
                    .map(|m| (m.deviceid, m.mask.into_iter().map(u32::from).collect()))
                    .collect();
                if !masks.is_empty() {
                    s.xi_selections.push(XiSelection { window: w, masks });
                }
            }
            Err(e) => s
                .unknown
                .push(format!("window {w:#x}: XInput 2 event selection ({e})")),
        }
    }
}

/// The XInput 2 version the client negotiated and the devices its selections name.
pub(super) fn capture_version_and_devices(
    conn: &impl Connection,
    s: &mut Session,
    have_xi: bool,
) -> Result<(), CaptureError> {
    // XInput 2: the version the client negotiated. Asking for a version at least as high as the
    // client's returns the client's own (the server never raises an XI2 client's version); only
    // asked when the client has XI2 selections, i.e. certainly negotiated one.
    if have_xi && !s.xi_selections.is_empty() {
        let version = conn.xinput_xi_query_version(2, 4)?;
        // The devices the selections name (IDs are server-allocated: regenerate maps them).
        let devices = conn.xinput_xi_query_device(ALL_DEVICES)?;
        match version.reply() {
            Ok(r) => s.client_versions.push(ClientVersion {
                extension: xinput::X11_EXTENSION_NAME.into(),
                major: r.major_version,
                minor: r.minor_version,
                known: true,
            }),
            Err(e) => s.unknown.push(format!("XInput 2 client version ({e})")),
        }
        match devices.reply() {
            Ok(r) => s.xi_devices = xi_devices_of(&r),
            Err(e) => s.unknown.push(format!("XInput 2 devices ({e})")),
        }
    }
    Ok(())
}

/// The client's XInput 2 selections with the device IDs mapped (on the root a failure is soft);
/// without XInput on the target they are lost, with a warning. Returns the device map (empty
/// when there were no selections).
pub(super) fn regen_selections<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    sink: &mut Sink<'c, C>,
) -> Result<HashMap<u16, u16>, crate::RegenError> {
    let mut devices = HashMap::new();
    if !t.xi_selections.is_empty() {
        if conn
            .extension_information(xinput::X11_EXTENSION_NAME)?
            .is_none()
        {
            sink.warnings.push(
                "the target has no XInputExtension: XInput 2 event selections are lost".into(),
            );
        } else {
            devices = regen_xi_device_map(conn, t, sink)?;
            for x in &t.xi_selections {
                let masks: Vec<xinput::EventMask> = x
                    .masks
                    .iter()
                    .filter_map(|(dev, m)| {
                        Some(xinput::EventMask {
                            deviceid: *devices.get(dev)?,
                            mask: m.iter().map(|&w| xinput::XIEventMask::from(w)).collect(),
                        })
                    })
                    .collect();
                if masks.is_empty() {
                    continue;
                }
                let c = conn.xinput_xi_select_events(x.window, &masks)?;
                if x.window == t.setup.root {
                    sink.soft.push(("XISelectEvents(root)", x.window, c));
                } else {
                    sink.hard.push(("XISelectEvents", x.window, c));
                }
            }
        }
    }
    Ok(devices)
}

/// The device map for XI2 selections: the target's devices matched to the recorded source
/// devices; identity (with a warning) for device IDs when the source devices are unknown or the
/// target cannot list its own.
fn regen_xi_device_map<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    sink: &mut Sink<'c, C>,
) -> Result<HashMap<u16, u16>, crate::RegenError> {
    let mut used: Vec<u16> = t
        .xi_selections
        .iter()
        .flat_map(|x| x.masks.iter().map(|m| m.0))
        .collect();
    used.sort_unstable();
    used.dedup();
    let identity = || -> HashMap<u16, u16> {
        used.iter()
            .map(|&d| (d, d))
            .chain([
                (ALL_DEVICES, ALL_DEVICES),
                (ALL_MASTER_DEVICES, ALL_MASTER_DEVICES),
            ])
            .collect()
    };
    if t.xi_devices.is_empty() {
        if used.iter().any(|&d| d > ALL_MASTER_DEVICES) {
            sink.warnings.push(
                "XInput devices of the source are unknown: device IDs of event selections kept as they were".into(),
            );
        }
        return Ok(identity());
    }
    let asked = match sink.xi_devices.take() {
        Some(c) => c,
        None => conn.xinput_xi_query_device(ALL_DEVICES)?,
    };
    let dst = match asked.reply() {
        Ok(r) => xi_devices_of(&r),
        Err(e) => {
            sink.warnings.push(format!(
                "XIQueryDevice on the target failed ({e}): device IDs of event selections kept as they were"
            ));
            return Ok(identity());
        }
    };
    let m = map_xi_devices(&t.xi_devices, &dst);
    // Only devices the application selected on matter for its warnings.
    for w in m.warnings {
        let relevant = used
            .iter()
            .any(|d| w.starts_with(&format!("XInput device {d} ")));
        if relevant {
            sink.warnings.push(w);
        }
    }
    Ok(m.map)
}

/// The target's input devices (XInput 1 ListInputDevices, which needs no version
/// negotiation on the application's connection): (ID, name). Empty when unavailable.
pub(super) fn input_devices(conn: &impl Connection) -> Vec<(u16, String)> {
    let Ok(Some(_)) = conn.extension_information(xinput::X11_EXTENSION_NAME) else {
        return Vec::new();
    };
    let Ok(c) = conn.xinput_list_input_devices() else {
        return Vec::new();
    };
    match c.reply() {
        Ok(r) => r
            .devices
            .iter()
            .zip(&r.names)
            .map(|(d, n)| {
                (
                    u16::from(d.device_id),
                    String::from_utf8_lossy(&n.name).into_owned(),
                )
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(id: u16, use_: u8, name: &str) -> XiDevice {
        XiDevice {
            id,
            use_,
            name: name.into(),
        }
    }

    /// Xvfb's devices.
    fn xvfb() -> Vec<XiDevice> {
        vec![
            dev(2, 1, "Virtual core pointer"),
            dev(3, 2, "Virtual core keyboard"),
            dev(4, 3, "Virtual core XTEST pointer"),
            dev(5, 4, "Virtual core XTEST keyboard"),
        ]
    }

    #[test]
    fn same_devices_map_to_themselves() {
        let m = map_xi_devices(&xvfb(), &xvfb());
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        for id in 0..=5 {
            assert_eq!(m.map.get(&id), Some(&id));
        }
        assert_eq!(m.map.len(), 6);
    }

    #[test]
    fn renumbered_devices_map_by_use_and_name() {
        // An Xorg with hardware devices: masters first, then slaves in another order.
        let dst = vec![
            dev(2, 1, "Virtual core pointer"),
            dev(3, 2, "Virtual core keyboard"),
            dev(4, 3, "Virtual core XTEST pointer"),
            dev(5, 4, "Virtual core XTEST keyboard"),
            dev(6, 4, "Power Button"),
            dev(7, 3, "SynPS/2 Synaptics TouchPad"),
        ];
        let src = vec![
            dev(2, 1, "Virtual core pointer"),
            dev(3, 2, "Virtual core keyboard"),
            dev(4, 3, "SynPS/2 Synaptics TouchPad"),
            dev(5, 3, "Virtual core XTEST pointer"),
            dev(6, 4, "Virtual core XTEST keyboard"),
        ];
        let m = map_xi_devices(&src, &dst);
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        assert_eq!(m.map[&4], 7);
        assert_eq!(m.map[&5], 4);
        assert_eq!(m.map[&6], 5);
        assert_eq!(m.map[&0], 0);
        assert_eq!(m.map[&1], 1);
    }

    #[test]
    fn masters_fall_back_to_use_and_slaves_are_reported() {
        let src = vec![
            dev(2, 1, "xwayland-pointer"),
            dev(3, 2, "xwayland-keyboard"),
            dev(7, 3, "Wacom Intuos Pen"),
        ];
        let m = map_xi_devices(&src, &xvfb());
        assert_eq!(m.map[&2], 2);
        assert_eq!(m.map[&3], 3);
        assert!(!m.map.contains_key(&7));
        assert_eq!(m.warnings.len(), 3, "{:?}", m.warnings);
        assert!(m.warnings[2].contains("Wacom") && m.warnings[2].contains("dropped"));
        assert!(m.warnings[0].contains("no namesake"));
    }

    #[test]
    fn duplicate_names_pair_in_id_order_and_use_must_agree() {
        let src = vec![
            dev(8, 4, "USB Keyboard"),
            dev(9, 4, "USB Keyboard"),
            dev(10, 5, "Floating thing"),
        ];
        let dst = vec![
            dev(12, 4, "USB Keyboard"),
            dev(11, 4, "USB Keyboard"),
            dev(13, 3, "Floating thing"),
        ];
        let m = map_xi_devices(&src, &dst);
        assert_eq!(m.map[&8], 11);
        assert_eq!(m.map[&9], 12);
        // A floating slave that is attached on the target is not "the same" device.
        assert!(!m.map.contains_key(&10));
        assert_eq!(m.warnings.len(), 1);
        // 0 and 1 are never treated as devices, even if a list claims them.
        let m = map_xi_devices(&[dev(1, 1, "bogus")], &[dev(1, 1, "other")]);
        assert_eq!(m.map[&1], 1);
        assert!(m.warnings.is_empty());
    }
}
