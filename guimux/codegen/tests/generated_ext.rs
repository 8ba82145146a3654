//! Extension walkers checked against messages encoded by x11rb-protocol (see generated_core.rs
//! for the method): RENDER, SHAPE, XFIXES, DAMAGE, SYNC, Present and XInput 2 GenericEvents,
//! XKB events (one event code, xkbType sub-code).
mod common;
#[path = "../../src/fields.rs"]
#[allow(dead_code)]
mod fields;
#[path = "../../src/generated/mod.rs"]
#[allow(dead_code)]
mod generated;

use common::{check, ext, x, xd, xk, Family};
use fields::{ByteOrder, Kind};
use std::borrow::Cow;
use x11rb_protocol::protocol::{damage, present, render, shape, sync, xfixes, xinput, xkb, xproto};
use x11rb_protocol::x11_utils::Serialize;

const LE: ByteOrder = ByteOrder::Little;
const W: Kind = Kind::Xid("WINDOW");
const PIC: Kind = Kind::Xid("render:PICTURE");
const MAJOR: u8 = 139;

fn pad32(v: &[u8]) -> Vec<u8> {
    let mut v = v.to_vec();
    v.resize(32, 0);
    v
}

#[test]
fn render_create_picture() {
    let enc = |pid: u32, drawable: u32, format: u32, alpha: u32, clip: u32, dither: u32| {
        let aux = render::CreatePictureAux::new()
            .repeat(render::Repeat::NORMAL)
            .alphamap(alpha)
            .clipmask(clip)
            .dither(dither);
        common::cat(
            &render::CreatePictureRequest {
                pid,
                drawable,
                format,
                value_list: Cow::Owned(aux),
            }
            .serialize(MAJOR)
            .0,
        )
    };
    let v = [0x0400_0001, 0x0400_0002, 0x25, 0x0400_0003, 0x0400_0004, 77];
    check(
        Family::Request,
        ext("render"),
        4,
        LE,
        &enc(v[0], v[1], v[2], v[3], v[4], v[5]),
        &enc(x(v[0]), x(v[1]), x(v[2]), x(v[3]), x(v[4]), x(v[5])),
        &[
            (PIC, v[0]),
            (Kind::Xid("DRAWABLE"), v[1]),
            (Kind::Xid("render:PICTFORMAT"), v[2]),
            (PIC, v[3]),
            (Kind::Xid("PIXMAP"), v[4]),
            (Kind::Atom, v[5]),
        ],
    );
}

#[test]
fn render_composite() {
    let enc = |src: u32, mask: u32, dst: u32| {
        common::cat(
            &render::CompositeRequest {
                op: render::PictOp::OVER,
                src,
                mask,
                dst,
                src_x: 1,
                src_y: 2,
                mask_x: 3,
                mask_y: 4,
                dst_x: 5,
                dst_y: 6,
                width: 7,
                height: 8,
            }
            .serialize(MAJOR)
            .0,
        )
    };
    check(
        Family::Request,
        ext("render"),
        8,
        LE,
        &enc(0x0400_0001, 0, 0x0400_0003),
        &enc(x(0x0400_0001), x(0), x(0x0400_0003)),
        &[(PIC, 0x0400_0001), (PIC, 0), (PIC, 0x0400_0003)],
    );
}

/// Glyph items: a run of 3 one-byte glyphs, a glyph-set switch, a run of 1 glyph.
fn glyphcmds(gs: u32) -> Vec<u8> {
    let mut g = vec![3u8, 0, 0, 0, 5, 0, 6, 0, b'a', b'b', b'c', 0];
    g.extend_from_slice(&[255, 0, 0, 0, 0, 0, 0, 0]);
    g.extend_from_slice(&gs.to_le_bytes());
    g.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, b'd', 0, 0, 0]);
    g
}

#[test]
fn render_composite_glyphs8_with_glyphset_switch() {
    let enc = |src: u32, dst: u32, fmt: u32, gs: u32, gs2: u32| {
        let cmds = glyphcmds(gs2);
        common::cat(
            &render::CompositeGlyphs8Request {
                op: render::PictOp::OVER,
                src,
                dst,
                mask_format: fmt,
                glyphset: gs,
                src_x: 0,
                src_y: 0,
                glyphcmds: Cow::Owned(cmds),
            }
            .serialize(MAJOR)
            .0,
        )
    };
    let v = [0x0400_0001, 0x0400_0002, 0x25, 0x0400_0010, 0x0400_0011];
    check(
        Family::Request,
        ext("render"),
        23,
        LE,
        &enc(v[0], v[1], v[2], v[3], v[4]),
        &enc(x(v[0]), x(v[1]), x(v[2]), x(v[3]), x(v[4])),
        &[
            (PIC, v[0]),
            (PIC, v[1]),
            (Kind::Xid("render:PICTFORMAT"), v[2]),
            (Kind::Xid("render:GLYPHSET"), v[3]),
            (Kind::Xid("render:GLYPHSET"), v[4]),
        ],
    );
}

#[test]
fn shape_rectangles_and_combine() {
    let rects = |win: u32| {
        common::cat(
            &shape::RectanglesRequest {
                operation: shape::SO::SET,
                destination_kind: shape::SK::BOUNDING,
                ordering: xproto::ClipOrdering::UNSORTED,
                destination_window: win,
                x_offset: 0,
                y_offset: 0,
                rectangles: Cow::Owned(vec![xproto::Rectangle {
                    x: 1,
                    y: 2,
                    width: 3,
                    height: 4,
                }]),
            }
            .serialize(MAJOR)
            .0,
        )
    };
    check(
        Family::Request,
        ext("shape"),
        1,
        LE,
        &rects(0x0400_0001),
        &rects(x(0x0400_0001)),
        &[(W, 0x0400_0001)],
    );
    let comb = |d: u32, s: u32| {
        common::cat(
            &shape::CombineRequest {
                operation: shape::SO::UNION,
                destination_kind: shape::SK::BOUNDING,
                source_kind: shape::SK::CLIP,
                destination_window: d,
                x_offset: 0,
                y_offset: 0,
                source_window: s,
            }
            .serialize(MAJOR)
            .0,
        )
    };
    check(
        Family::Request,
        ext("shape"),
        3,
        LE,
        &comb(0x0400_0001, 0x0400_0002),
        &comb(x(0x0400_0001), x(0x0400_0002)),
        &[(W, 0x0400_0001), (W, 0x0400_0002)],
    );
}

#[test]
fn shape_notify_event() {
    let enc = |win: u32, time: u32| {
        <[u8; 32]>::from(&shape::NotifyEvent {
            response_type: 64,
            shape_kind: shape::SK::BOUNDING,
            sequence: 1,
            affected_window: win,
            extents_x: 0,
            extents_y: 0,
            extents_width: 5,
            extents_height: 5,
            server_time: time,
            shaped: true,
        })
        .to_vec()
    };
    check(
        Family::Event,
        ext("shape"),
        0,
        LE,
        &enc(0x0400_0001, 99),
        &enc(x(0x0400_0001), x(99)),
        &[(W, 0x0400_0001), (Kind::Timestamp, 99)],
    );
}

#[test]
fn xfixes_requests_and_event() {
    let crw = |region: u32, window: u32| {
        common::cat(
            &xfixes::CreateRegionFromWindowRequest {
                region,
                window,
                kind: shape::SK::BOUNDING,
            }
            .serialize(MAJOR)
            .0,
        )
    };
    check(
        Family::Request,
        ext("xfixes"),
        7,
        LE,
        &crw(0x0400_0001, 0x0400_0002),
        &crw(x(0x0400_0001), x(0x0400_0002)),
        &[(Kind::Xid("xfixes:REGION"), 0x0400_0001), (W, 0x0400_0002)],
    );
    let ssi = |window: u32, selection: u32| {
        common::cat(
            &xfixes::SelectSelectionInputRequest {
                window,
                selection,
                event_mask: xfixes::SelectionEventMask::SET_SELECTION_OWNER,
            }
            .serialize(MAJOR)
            .0,
        )
    };
    check(
        Family::Request,
        ext("xfixes"),
        2,
        LE,
        &ssi(0x0400_0001, 1),
        &ssi(x(0x0400_0001), x(1)),
        &[(W, 0x0400_0001), (Kind::Atom, 1)],
    );
    let ev = |window: u32, owner: u32, sel: u32, t1: u32, t2: u32| {
        <[u8; 32]>::from(&xfixes::SelectionNotifyEvent {
            response_type: 87,
            subtype: xfixes::SelectionEvent::SET_SELECTION_OWNER,
            sequence: 1,
            window,
            owner,
            selection: sel,
            timestamp: t1,
            selection_timestamp: t2,
        })
        .to_vec()
    };
    let v = [0x0400_0001, 0x0060_0001, 1, 1000, 999];
    check(
        Family::Event,
        ext("xfixes"),
        0,
        LE,
        &ev(v[0], v[1], v[2], v[3], v[4]),
        &ev(x(v[0]), x(v[1]), x(v[2]), x(v[3]), x(v[4])),
        &[
            (W, v[0]),
            (W, v[1]),
            (Kind::Atom, v[2]),
            (Kind::Timestamp, v[3]),
            (Kind::Timestamp, v[4]),
        ],
    );
}

#[test]
fn damage_notify_event() {
    let enc = |drawable: u32, dmg: u32, t: u32| {
        pad32(
            &damage::NotifyEvent {
                response_type: 90,
                level: damage::ReportLevel::NON_EMPTY,
                sequence: 1,
                drawable,
                damage: dmg,
                timestamp: t,
                area: xproto::Rectangle {
                    x: 0,
                    y: 0,
                    width: 1,
                    height: 1,
                },
                geometry: xproto::Rectangle {
                    x: 0,
                    y: 0,
                    width: 1,
                    height: 1,
                },
            }
            .serialize(),
        )
    };
    check(
        Family::Event,
        ext("damage"),
        0,
        LE,
        &enc(0x0400_0001, 0x0400_0002, 5),
        &enc(x(0x0400_0001), x(0x0400_0002), x(5)),
        &[
            (Kind::Xid("DRAWABLE"), 0x0400_0001),
            (Kind::Xid("damage:DAMAGE"), 0x0400_0002),
            (Kind::Timestamp, 5),
        ],
    );
}

#[test]
fn sync_counter_notify_event() {
    let enc = |counter: u32, t: u32| {
        pad32(
            &sync::CounterNotifyEvent {
                response_type: 95,
                kind: 0,
                sequence: 1,
                counter,
                wait_value: sync::Int64 { hi: 0, lo: 1 },
                counter_value: sync::Int64 { hi: 0, lo: 2 },
                timestamp: t,
                count: 0,
                destroyed: false,
            }
            .serialize(),
        )
    };
    check(
        Family::Event,
        ext("sync"),
        0,
        LE,
        &enc(0x0400_0001, 7),
        &enc(x(0x0400_0001), x(7)),
        &[
            (Kind::Xid("sync:COUNTER"), 0x0400_0001),
            (Kind::Timestamp, 7),
        ],
    );
}

#[test]
fn present_complete_notify_generic_event() {
    let enc = |event: u32, window: u32| {
        pad32(
            &present::CompleteNotifyEvent {
                response_type: 35,
                extension: MAJOR,
                sequence: 1,
                length: 2,
                event_type: 1,
                kind: present::CompleteKind::PIXMAP,
                mode: present::CompleteMode::COPY,
                event,
                window,
                serial: 3,
                ust: 4,
                msc: 5,
            }
            .serialize(),
        )
    };
    let mut m = enc(1, 2);
    m.resize(40, 0);
    check(
        Family::Generic,
        ext("present"),
        1,
        LE,
        &enc(0x0400_0001, 0x0400_0002),
        &enc(x(0x0400_0001), x(0x0400_0002)),
        &[(Kind::Xid("present:EVENT"), 0x0400_0001), (W, 0x0400_0002)],
    );
}

fn xi2_button(time: u32, root: u32, event: u32, child: u32, dev: u16, src: u16) -> Vec<u8> {
    let e = xinput::ButtonPressEvent {
        response_type: 35,
        extension: MAJOR,
        sequence: 1,
        length: 0,
        event_type: 4,
        deviceid: dev,
        time,
        detail: 1,
        root,
        event,
        child,
        root_x: 0,
        root_y: 0,
        event_x: 0,
        event_y: 0,
        sourceid: src,
        flags: xinput::PointerEventFlags::from(0u32),
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
        valuator_mask: vec![3],
        axisvalues: vec![
            xinput::Fp3232 {
                integral: 1,
                frac: 0,
            },
            xinput::Fp3232 {
                integral: 2,
                frac: 0,
            },
        ],
    };
    let mut m = e.serialize();
    let len = ((m.len() - 32) / 4) as u32;
    m[4..8].copy_from_slice(&len.to_le_bytes());
    m
}

#[test]
fn xinput_xi2_button_press_generic_event() {
    let v = [1234, 0x3ea, 0x0400_0001, 0x0400_0002];
    check(
        Family::Generic,
        ext("xinput"),
        4,
        LE,
        &xi2_button(v[0], v[1], v[2], v[3], 2, 4),
        &xi2_button(x(v[0]), x(v[1]), x(v[2]), x(v[3]), xd(2), xd(4)),
        &[
            (Kind::Device, 2),
            (Kind::Timestamp, v[0]),
            (W, v[1]),
            (W, v[2]),
            (W, v[3]),
            (Kind::Device, 4),
        ],
    );
}

#[test]
fn xinput_xi2_big_endian() {
    // XI2 ButtonPress, MSB first: swap each multi-byte field of the LE encoding by hand
    // (header, deviceid, time, detail, root, event, child, 4 x FP1616, buttons_len,
    // valuators_len, sourceid, flags, 4 x mods, then the lists of 32-bit words).
    let be = |m: Vec<u8>| {
        let mut b = m.clone();
        let mut fields = vec![
            (2, 2),
            (4, 4),
            (8, 2),
            (10, 2),
            (12, 4),
            (16, 4),
            (20, 4),
            (24, 4),
            (28, 4),
        ];
        fields.extend([
            (32, 4),
            (36, 4),
            (40, 4),
            (44, 4),
            (48, 2),
            (50, 2),
            (52, 2),
            (56, 4),
        ]);
        fields.extend([(60, 4), (64, 4), (68, 4), (72, 4)]);
        let mut off = 80;
        while off + 4 <= b.len() {
            fields.push((off, 4));
            off += 4;
        }
        for (o, l) in fields {
            b[o..o + l].reverse();
        }
        b
    };
    let v = [1234, 0x3ea, 0x0400_0001, 0x0400_0002];
    check(
        Family::Generic,
        ext("xinput"),
        4,
        ByteOrder::Big,
        &be(xi2_button(v[0], v[1], v[2], v[3], 2, 4)),
        &be(xi2_button(x(v[0]), x(v[1]), x(v[2]), x(v[3]), xd(2), xd(4))),
        &[
            (Kind::Device, 2),
            (Kind::Timestamp, v[0]),
            (W, v[1]),
            (W, v[2]),
            (W, v[3]),
            (Kind::Device, 4),
        ],
    );
}

#[test]
fn xinput_xi_select_events_visits_each_mask_device() {
    let enc = |window: u32, d1: u16, d2: u16| {
        common::cat(
            &xinput::XISelectEventsRequest {
                window,
                masks: Cow::Owned(vec![
                    xinput::EventMask {
                        deviceid: d1,
                        mask: vec![xinput::XIEventMask::BUTTON_PRESS],
                    },
                    xinput::EventMask {
                        deviceid: d2,
                        mask: vec![xinput::XIEventMask::MOTION, 0u32.into()],
                    },
                ]),
            }
            .serialize(MAJOR)
            .0,
        )
    };
    check(
        Family::Request,
        ext("xinput"),
        46,
        LE,
        &enc(0x0400_0001, 1, 9),
        &enc(x(0x0400_0001), xd(1), xd(9)),
        &[(W, 0x0400_0001), (Kind::Device, 1), (Kind::Device, 9)],
    );
}

#[test]
fn xinput_xi_query_device_reply_visits_devices_and_class_sources() {
    let enc = |dev: u16, attach: u16, src: u16, label: u32| {
        let key = xinput::DeviceClass {
            len: 4,
            sourceid: src,
            data: xinput::DeviceClassData::Key(xinput::DeviceClassDataKey { keys: vec![9, 10] }),
        };
        let button = xinput::DeviceClass {
            len: 4,
            sourceid: src,
            data: xinput::DeviceClassData::Button(xinput::DeviceClassDataButton {
                state: vec![0],
                labels: vec![label],
            }),
        };
        let mut m = xinput::XIQueryDeviceReply {
            sequence: 2,
            length: 0,
            infos: vec![xinput::XIDeviceInfo {
                deviceid: dev,
                type_: xinput::DeviceType::SLAVE_POINTER,
                attachment: attach,
                enabled: true,
                name: b"pen".to_vec(),
                classes: vec![key, button],
            }],
        }
        .serialize();
        let len = ((m.len() - 32) / 4) as u32;
        m[4..8].copy_from_slice(&len.to_le_bytes());
        m
    };
    check(
        Family::Reply,
        ext("xinput"),
        48,
        LE,
        &enc(12, 8, 12, 300),
        &enc(xd(12), xd(8), xd(12), x(300)),
        &[
            (Kind::Device, 12),
            (Kind::Device, 8),
            (Kind::Device, 12),
            (Kind::Device, 12),
            (Kind::Atom, 300),
        ],
    );
}

#[test]
fn xinput_xi1_device_event_marks_the_more_events_bit() {
    let enc = |device_id: u8, time: u32, root: u32, event: u32, child: u32| {
        <[u8; 32]>::from(xinput::DeviceButtonPressEvent {
            response_type: 70,
            detail: 1,
            sequence: 1,
            time,
            root,
            event,
            child,
            root_x: 0,
            root_y: 0,
            event_x: 0,
            event_y: 0,
            state: 0u16.into(),
            same_screen: true,
            device_id,
        })
        .to_vec()
    };
    // DeviceButtonPress is XI1 event 3; 0x85 = "more events follow" + device 5.
    check(
        Family::Event,
        ext("xinput"),
        3,
        LE,
        &enc(0x85, 7, 0x3ea, 0x0400_0002, 0),
        &enc(xk(0x85), x(7), x(0x3ea), x(0x0400_0002), x(0)),
        &[
            (Kind::Timestamp, 7),
            (W, 0x3ea),
            (W, 0x0400_0002),
            (W, 0),
            (Kind::DeviceMore, 0x85),
        ],
    );
}

#[test]
fn xkb_state_notify_event_by_subcode() {
    let enc = |time: u32, device_id: u8, keycode: u8| {
        <[u8; 32]>::from(&xkb::StateNotifyEvent {
            response_type: 85,
            xkb_type: 2,
            sequence: 1,
            time,
            device_id,
            mods: 0u8.into(),
            base_mods: 0u8.into(),
            latched_mods: 0u8.into(),
            locked_mods: 0u8.into(),
            group: xkb::Group::M1,
            base_group: 0,
            latched_group: 0,
            locked_group: xkb::Group::M1,
            compat_state: 0u8.into(),
            grab_mods: 0u8.into(),
            compat_grab_mods: 0u8.into(),
            lookup_mods: 0u8.into(),
            compat_loockup_mods: 0u8.into(),
            ptr_btn_state: 0u16.into(),
            changed: 0u16.into(),
            keycode,
            event_type: 2,
            request_major: 0,
            request_minor: 0,
        })
        .to_vec()
    };
    check(
        Family::Event,
        ext("xkb"),
        0,
        LE,
        &enc(4242, 3, 38),
        &enc(x(4242), xk(3), xk(38)),
        &[
            (Kind::Timestamp, 4242),
            (Kind::Device, 3),
            (Kind::Keycode, 38),
        ],
    );
}

#[test]
fn extension_table() {
    for (xname, header) in [
        ("RENDER", "render"),
        ("XInputExtension", "xinput"),
        ("MIT-SHM", "shm"),
        ("BIG-REQUESTS", "bigreq"),
        ("XKEYBOARD", "xkb"),
        ("Present", "present"),
    ] {
        let i = generated::ext_by_xname(xname).expect(xname);
        assert_eq!(generated::EXTENSIONS[i].header, header);
    }
    assert_eq!(generated::ext_by_xname(""), None);
    let info = |h: &str| &generated::EXTENSIONS[ext(h)];
    assert_eq!(
        (info("render").num_events, info("render").num_errors),
        (0, 5)
    );
    assert_eq!(
        (info("xinput").num_events, info("xinput").num_errors),
        (17, 5)
    );
    assert_eq!(info("xkb").num_events, 1);
    assert_eq!(info("present").num_events, 0);
    assert_eq!(info("damage").num_events, 1);
    assert_eq!(info("xfixes").num_events, 2);
    assert_eq!(info("sync").num_errors, 2);
    assert_eq!(generated::error_value_kind(ext("render"), 1), Some(PIC));
    assert_eq!(
        generated::error_value_kind(ext("xfixes"), 0),
        Some(Kind::Xid("xfixes:REGION"))
    );
    assert_eq!(
        generated::error_value_kind(ext("damage"), 0),
        Some(Kind::Xid("damage:DAMAGE"))
    );
    assert_eq!(
        generated::request_name(ext("render"), 23),
        Some("CompositeGlyphs8")
    );
    assert_eq!(generated::request_has_reply(ext("bigreq"), 0), Some(true));
}
