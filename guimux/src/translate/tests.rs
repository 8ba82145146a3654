//! Unit tests of `translate`: messages built byte by byte (or with x11rb-protocol's
//! serializers) flow through the translation functions with hand-made maps, and the bytes that
//! come out are checked field by field.

use super::*;
use crate::maps::{ExtEntry, ExtPlace};
use x11rb_protocol::protocol::xinput;
use x11rb_protocol::x11_utils::Serialize;

const LE: ByteOrder = ByteOrder::Little;
const APP_MAJOR: u8 = 131;
const SERVER_MAJOR: u8 = 140;
const APP_ROOT: u32 = 0x3ea;
const SERVER_ROOT: u32 = 0x4ff;
/// The app's window 0x0020_0001 is 0x0040_0001 on the server.
const APP_WIN: u32 = 0x0020_0001;
const SERVER_WIN: u32 = 0x0040_0001;

/// Maps to a server where XInputExtension sits elsewhere and the app's "Second pointer" 8
/// and its XTEST slave 10 are 12 and 14 (the server's 8 and 10 are other devices).
fn maps(devices: DeviceMap) -> Maps {
    let mut xids = XidMap::new(0x20_0000, 0x1f_ffff, 0x40_0000, 0x1f_ffff);
    xids.insert(APP_ROOT, SERVER_ROOT);
    xids.insert(APP_WIN, SERVER_WIN);
    let mut exts = ExtMap::default();
    exts.entries.push(ExtEntry {
        name: "XInputExtension".into(),
        table: tables::ext_by_xname("XInputExtension"),
        app: Some(ExtPlace {
            major: APP_MAJOR,
            first_event: 66,
            first_error: 129,
        }),
        server: Some(ExtPlace {
            major: SERVER_MAJOR,
            first_event: 70,
            first_error: 140,
        }),
    });
    exts.entries.push(ExtEntry {
        name: "XKEYBOARD".into(),
        table: tables::ext_by_xname("XKEYBOARD"),
        app: Some(ExtPlace {
            major: 135,
            first_event: 85,
            first_error: 137,
        }),
        server: Some(ExtPlace {
            major: 136,
            first_event: 95,
            first_error: 138,
        }),
    });
    Maps {
        xids,
        atoms: AtomMap::new(),
        visuals: HashMap::new(),
        exts,
        named: HashMap::new(),
        devices,
    }
}

/// WM_PROTOCOLS is 300 to the app and 400 on the server, WM_DELETE_WINDOW 301/401 and
/// WM_TAKE_FOCUS 302/402 (the numbering differs when other clients interned atoms in
/// another order on each server).
fn protocol_atoms(m: &mut Maps) {
    for (name, a, s) in [
        ("WM_PROTOCOLS", 300, 400),
        ("WM_DELETE_WINDOW", 301, 401),
        ("WM_TAKE_FOCUS", 302, 402),
        ("_NET_WM_STATE", 303, 403),
        ("_NET_WM_STATE_FULLSCREEN", 304, 404),
        ("_NET_WM_STATE_ABOVE", 305, 405),
    ] {
        m.atoms.insert(a, s);
        m.named.insert(name.into(), (a, s));
    }
}

/// A format-32 ClientMessage to `window` of type `ty` with data[0] `d0`.
fn client_message(window: u32, ty: u32, d0: u32) -> Vec<u8> {
    let mut ev = vec![33u8, 32, 0, 0];
    ev.extend_from_slice(&window.to_le_bytes());
    ev.extend_from_slice(&ty.to_le_bytes());
    ev.extend_from_slice(&d0.to_le_bytes());
    ev.extend_from_slice(&0x1234u32.to_le_bytes());
    ev.resize(32, 0);
    ev
}

/// twm on the target sends WM_TAKE_FOCUS; the app must read WM_TAKE_FOCUS in its own
/// numbering, not the server's number, which may be its WM_DELETE_WINDOW (found with
/// gtk3-widget-factory, which closed its window and exited after a move).
#[test]
fn wm_protocols_data_atom_is_translated_both_ways() {
    let mut m = maps(DeviceMap::default());
    protocol_atoms(&mut m);
    let mut ev = client_message(SERVER_WIN, 400, 402);
    assert!(event_to_app(&mut ev, LE, &mut m).expect("translate"));
    assert_eq!(ev, client_message(APP_WIN, 300, 302));
    // The app's SendEvent of WM_DELETE_WINDOW (e.g. to a window of another client).
    let mut req = vec![25u8, 0, 11, 0];
    req.extend_from_slice(&APP_WIN.to_le_bytes());
    req.extend_from_slice(&0u32.to_le_bytes());
    req.extend_from_slice(&client_message(APP_WIN, 300, 301));
    request_to_server(&mut req, LE, &mut m).expect("translate");
    assert_eq!(&req[12..], &client_message(SERVER_WIN, 400, 401)[..]);
}

/// An app asking its window manager for fullscreen (EWMH `_NET_WM_STATE` to the root):
/// both properties in the server's numbering, the action and source untouched.
#[test]
fn net_wm_state_request_atoms_are_translated() {
    let mut m = maps(DeviceMap::default());
    protocol_atoms(&mut m);
    let state = |win: u32, ty: u32, p1: u32, p2: u32| {
        let mut ev = client_message(win, ty, 1);
        ev[16..20].copy_from_slice(&p1.to_le_bytes());
        ev[20..24].copy_from_slice(&p2.to_le_bytes());
        ev[24..28].copy_from_slice(&1u32.to_le_bytes());
        ev
    };
    let mut req = vec![25u8, 0, 11, 0];
    req.extend_from_slice(&APP_ROOT.to_le_bytes());
    req.extend_from_slice(&0x18_0000u32.to_le_bytes());
    req.extend_from_slice(&state(APP_WIN, 303, 304, 305));
    request_to_server(&mut req, LE, &mut m).expect("translate");
    assert_eq!(&req[12..], &state(SERVER_WIN, 403, 404, 405)[..]);
    // "none" as the second property stays 0.
    let mut req = vec![25u8, 0, 11, 0];
    req.extend_from_slice(&APP_ROOT.to_le_bytes());
    req.extend_from_slice(&0x18_0000u32.to_le_bytes());
    req.extend_from_slice(&state(APP_WIN, 303, 304, 0));
    request_to_server(&mut req, LE, &mut m).expect("translate");
    assert_eq!(&req[12..], &state(SERVER_WIN, 403, 404, 0)[..]);
}

#[test]
fn xkb_device_specs_are_device_ids_but_use_core_kbd_is_not() {
    let mut m = maps(moved_devices());
    // XkbGetState(deviceSpec).
    let get_state = |major: u8, spec: u16| {
        let s = spec.to_le_bytes();
        vec![major, 4, 2, 0, s[0], s[1], 0, 0]
    };
    let mut req = get_state(135, 8);
    request_to_server(&mut req, LE, &mut m).expect("translate");
    assert_eq!(req, get_state(136, 12));
    let mut req = get_state(135, 0x100);
    request_to_server(&mut req, LE, &mut m).expect("translate");
    assert_eq!(req, get_state(136, 0x100), "XkbUseCoreKbd passes");
    // An XKB StateNotify of the server's device 12 (deviceID, byte 8).
    let mut ev = [0u8; 32];
    ev[0] = 95;
    ev[1] = 2;
    ev[8] = 12;
    assert!(event_to_app(&mut ev, LE, &mut m).expect("translate"));
    assert_eq!((ev[0], ev[8]), (85, 8));
}

#[test]
fn dbe_back_buffer_names_are_resource_ids() {
    // The app's back buffer 0x0020_0002 of window APP_WIN was regenerated as 0x0040_0002.
    let mut m = maps(DeviceMap::default());
    m.xids.insert(0x0020_0002, 0x0040_0002);
    m.exts.entries.push(ExtEntry {
        name: "DOUBLE-BUFFER".into(),
        table: tables::ext_by_xname("DOUBLE-BUFFER"),
        app: Some(ExtPlace {
            major: 150,
            first_event: 0,
            first_error: 160,
        }),
        server: Some(ExtPlace {
            major: 151,
            first_event: 0,
            first_error: 161,
        }),
    });
    let words = |major: u8, minor: u8, w: &[u32]| {
        let mut v = vec![major, minor];
        v.extend_from_slice(&(1 + w.len() as u16).to_le_bytes());
        for x in w {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v
    };
    // AllocateBackBufferName(window, buffer, swap action).
    let mut req = words(150, 1, &[APP_WIN, 0x0020_0002, 1]);
    request_to_server(&mut req, LE, &mut m).expect("translate");
    assert_eq!(req, words(151, 1, &[SERVER_WIN, 0x0040_0002, 1]));
    // SwapBuffers([{window, action}]).
    let mut req = words(150, 3, &[1, APP_WIN, 1]);
    request_to_server(&mut req, LE, &mut m).expect("translate");
    assert_eq!(req, words(151, 3, &[1, SERVER_WIN, 1]));
    // Drawing into the back buffer: PolyFillRectangle(drawable, gc, …) names it as any
    // drawable.
    let mut req = words(70, 0, &[0x0020_0002, 0x0020_0003]);
    request_to_server(&mut req, LE, &mut m).expect("translate");
    assert_eq!(&req[4..8], &0x0040_0002u32.to_le_bytes());
}

fn moved_devices() -> DeviceMap {
    DeviceMap::between(
        [(0, 0), (1, 1), (2, 2), (3, 3), (8, 12), (10, 14)],
        [2, 3, 8, 10],
    )
}

fn query_pointer(major: u8, window: u32, deviceid: u16) -> Vec<u8> {
    let (parts, _) = xinput::XIQueryPointerRequest { window, deviceid }.serialize(major);
    parts.iter().flat_map(|c| c.iter().copied()).collect()
}

#[test]
fn xi_query_pointer_gets_the_servers_device_id() {
    let mut m = maps(moved_devices());
    let mut req = query_pointer(APP_MAJOR, APP_WIN, 8);
    let t = request_to_server(&mut req, LE, &mut m).expect("translate");
    assert_eq!(t.walk_error, None);
    assert_eq!(req, query_pointer(SERVER_MAJOR, SERVER_WIN, 12));
    // AllMasterDevices and the core pointer are the same everywhere.
    for d in [1, 2] {
        let mut req = query_pointer(APP_MAJOR, APP_WIN, d);
        request_to_server(&mut req, LE, &mut m).expect("translate");
        assert_eq!(req, query_pointer(SERVER_MAJOR, SERVER_WIN, d));
    }
}

#[test]
fn identity_device_map_changes_nothing() {
    let mut m = maps(DeviceMap::default());
    let mut req = query_pointer(APP_MAJOR, APP_WIN, 8);
    request_to_server(&mut req, LE, &mut m).expect("translate");
    assert_eq!(req, query_pointer(SERVER_MAJOR, SERVER_WIN, 8));
}

fn button_press(major: u8, root: u32, event: u32, deviceid: u16, sourceid: u16) -> Vec<u8> {
    let e = xinput::ButtonPressEvent {
        response_type: 35,
        extension: major,
        sequence: 9,
        length: 0,
        event_type: xinput::BUTTON_PRESS_EVENT,
        deviceid,
        time: 77,
        detail: 1,
        root,
        event,
        child: 0,
        root_x: 0,
        root_y: 0,
        event_x: 0,
        event_y: 0,
        sourceid,
        flags: 0u32.into(),
        mods: xinput::ModifierInfo {
            base: 0,
            latched: 0,
            locked: 0,
            effective: 0,
        },
        group: xinput::GroupInfo {
            base: 0,
            latched: 0,
            locked: 0,
            effective: 0,
        },
        button_mask: vec![2],
        valuator_mask: vec![],
        axisvalues: vec![],
    };
    let mut m = e.serialize();
    let len = ((m.len() - 32) / 4) as u32;
    m[4..8].copy_from_slice(&len.to_le_bytes());
    m
}

#[test]
fn xi2_button_press_reaches_the_app_with_its_device_ids() {
    let mut m = maps(moved_devices());
    let mut ev = button_press(SERVER_MAJOR, SERVER_ROOT, SERVER_WIN, 12, 14);
    assert!(event_to_app(&mut ev, LE, &mut m).expect("translate"));
    assert_eq!(ev, button_press(APP_MAJOR, APP_ROOT, APP_WIN, 8, 10));
}

#[test]
fn xi1_device_event_keeps_the_more_events_bit() {
    let mut m = maps(moved_devices());
    // DeviceButtonPress (XI1 event 3) from device 12 with "more events follow".
    let mut ev = [0u8; 32];
    ev[0] = 70 + 3;
    ev[31] = 0x80 | 12;
    assert!(event_to_app(&mut ev, LE, &mut m).expect("translate"));
    assert_eq!(ev[0], 66 + 3);
    assert_eq!(ev[31], 0x80 | 8);
}

fn query_device_reply(devices: &[(u16, u16, u16)]) -> Vec<u8> {
    let infos = devices
        .iter()
        .map(|&(deviceid, attachment, sourceid)| xinput::XIDeviceInfo {
            deviceid,
            type_: xinput::DeviceType::SLAVE_POINTER,
            attachment,
            enabled: true,
            name: b"dev".to_vec(),
            classes: vec![xinput::DeviceClass {
                len: 4,
                sourceid,
                data: xinput::DeviceClassData::Button(xinput::DeviceClassDataButton {
                    state: vec![0],
                    labels: vec![0],
                }),
            }],
        })
        .collect();
    let mut m = xinput::XIQueryDeviceReply {
        sequence: 4,
        length: 0,
        infos,
    }
    .serialize();
    let len = ((m.len() - 32) / 4) as u32;
    m[4..8].copy_from_slice(&len.to_le_bytes());
    m
}

#[test]
fn xi_query_device_reply_in_the_apps_ids_and_newcomers_do_not_collide() {
    let mut m = maps(moved_devices());
    // The server's 14 (slave of 12), and its own 8 (a device the app never saw, whose
    // number the app knows as "Second pointer").
    let mut reply = query_device_reply(&[(14, 12, 14), (8, 2, 8)]);
    let table = tables::ext_by_xname("XInputExtension").expect("xinput table");
    reply_to_app(&mut reply, LE, &mut m, table, 48, &ReplyAux::None).expect("translate");
    let alias = m.devices.to_app(8);
    assert!(![0, 1, 2, 3, 8, 10].contains(&alias), "alias {alias}");
    assert_eq!(
        reply,
        query_device_reply(&[(10, 8, 10), (alias as u16, 2, alias as u16)])
    );
    // The alias leads back to the server's device.
    let mut req = query_pointer(APP_MAJOR, APP_WIN, alias as u16);
    request_to_server(&mut req, LE, &mut m).expect("translate");
    assert_eq!(req, query_pointer(SERVER_MAJOR, SERVER_WIN, 8));
}
