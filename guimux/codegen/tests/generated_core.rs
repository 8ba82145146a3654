//! Core protocol walkers checked against messages encoded by x11rb-protocol: each test builds
//! a message with some values, the same message with those values mapped by `common::x`, and
//! checks that walking the first with `x` visits exactly the expected fields and yields the
//! second (so every offset and width agrees with x11rb's encoder), and that walking back
//! restores the original.
mod common;
#[path = "../../src/fields.rs"]
#[allow(dead_code)]
mod fields;
#[path = "../../src/generated/mod.rs"]
#[allow(dead_code)]
mod generated;

use common::{check, x, xk, Family};
use fields::{ByteOrder, Kind};
use std::borrow::Cow;
use x11rb_protocol::protocol::xproto::*;
use x11rb_protocol::x11_utils::Serialize;

const LE: ByteOrder = ByteOrder::Little;
const W: Kind = Kind::Xid("WINDOW");

fn create_window(wid: u32, parent: u32, visual: u32, bg: u32, cmap: u32, cursor: u32) -> Vec<u8> {
    let aux = CreateWindowAux::new()
        .background_pixmap(bg)
        .border_pixel(0x00ff_00ff)
        .event_mask(EventMask::EXPOSURE | EventMask::KEY_PRESS)
        .colormap(cmap)
        .cursor(cursor);
    let r = CreateWindowRequest {
        depth: 24,
        wid,
        parent,
        x: -5,
        y: 7,
        width: 300,
        height: 200,
        border_width: 1,
        class: WindowClass::INPUT_OUTPUT,
        visual,
        value_list: Cow::Owned(aux),
    };
    common::cat(&r.serialize().0)
}

#[test]
fn create_window_with_value_list() {
    let (wid, parent, vis, bg, cmap, cur) = (
        0x0400_0001,
        0x0000_03ea,
        0x21,
        0x0400_0002,
        0x20,
        0x0400_0003,
    );
    let before = create_window(wid, parent, vis, bg, cmap, cur);
    let after = create_window(x(wid), x(parent), x(vis), x(bg), x(cmap), x(cur));
    check(
        Family::Request,
        0,
        1,
        LE,
        &before,
        &after,
        &[
            (W, wid),
            (W, parent),
            (Kind::Visual, vis),
            (Kind::Xid("PIXMAP"), bg),
            (Kind::Xid("COLORMAP"), cmap),
            (Kind::Xid("CURSOR"), cur),
        ],
    );
}

/// The BIG-REQUESTS form: length field 0, 32-bit length at bytes 4..8, body shifted by 4.
fn to_big(m: &[u8]) -> Vec<u8> {
    let words = (m.len() / 4 + 1) as u32;
    let mut out = m[..2].to_vec();
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&words.to_le_bytes());
    out.extend_from_slice(&m[4..]);
    out
}

#[test]
fn create_window_big_request() {
    let (wid, parent, vis, bg, cmap, cur) = (
        0x0400_0001,
        0x0000_03ea,
        0x21,
        0x0400_0002,
        0x20,
        0x0400_0003,
    );
    let before = to_big(&create_window(wid, parent, vis, bg, cmap, cur));
    let after = to_big(&create_window(
        x(wid),
        x(parent),
        x(vis),
        x(bg),
        x(cmap),
        x(cur),
    ));
    check(
        Family::Request,
        0,
        1,
        LE,
        &before,
        &after,
        &[
            (W, wid),
            (W, parent),
            (Kind::Visual, vis),
            (Kind::Xid("PIXMAP"), bg),
            (Kind::Xid("COLORMAP"), cmap),
            (Kind::Xid("CURSOR"), cur),
        ],
    );
}

#[test]
fn create_window_big_endian() {
    // Hand-encoded MSB-first CreateWindow with CWBackPixmap | CWColormap.
    let enc = |wid: u32, parent: u32, vis: u32, bg: u32, cmap: u32| {
        let mut m = vec![1u8, 24];
        m.extend_from_slice(&10u16.to_be_bytes());
        for v in [wid, parent] {
            m.extend_from_slice(&v.to_be_bytes());
        }
        for v in [0i16, 0, 10, 10, 0] {
            m.extend_from_slice(&v.to_be_bytes());
        }
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&vis.to_be_bytes());
        m.extend_from_slice(&(0x0001u32 | 0x2000).to_be_bytes());
        m.extend_from_slice(&bg.to_be_bytes());
        m.extend_from_slice(&cmap.to_be_bytes());
        m
    };
    let before = enc(0x0040_0001, 0x3ea, 0x21, 0x0040_0002, 0x20);
    assert_eq!(before.len(), 40);
    let after = enc(x(0x0040_0001), x(0x3ea), x(0x21), x(0x0040_0002), x(0x20));
    check(
        Family::Request,
        0,
        1,
        ByteOrder::Big,
        &before,
        &after,
        &[
            (W, 0x0040_0001),
            (W, 0x3ea),
            (Kind::Visual, 0x21),
            (Kind::Xid("PIXMAP"), 0x0040_0002),
            (Kind::Xid("COLORMAP"), 0x20),
        ],
    );
}

#[test]
fn change_gc() {
    let enc = |gc: u32, tile: u32, stipple: u32, font: u32, clip: u32| {
        let aux = ChangeGCAux::new()
            .foreground(0x123456)
            .tile(tile)
            .stipple(stipple)
            .font(font)
            .clip_mask(clip)
            .dashes(4);
        common::cat(
            &ChangeGCRequest {
                gc,
                value_list: Cow::Owned(aux),
            }
            .serialize()
            .0,
        )
    };
    let v = [
        0x0400_0010,
        0x0400_0011,
        0x0400_0012,
        0x0400_0013,
        0x0400_0014,
    ];
    check(
        Family::Request,
        0,
        56,
        LE,
        &enc(v[0], v[1], v[2], v[3], v[4]),
        &enc(x(v[0]), x(v[1]), x(v[2]), x(v[3]), x(v[4])),
        &[
            (Kind::Xid("GCONTEXT"), v[0]),
            (Kind::Xid("PIXMAP"), v[1]),
            (Kind::Xid("PIXMAP"), v[2]),
            (Kind::Xid("FONT"), v[3]),
            (Kind::Xid("PIXMAP"), v[4]),
        ],
    );
}

#[test]
fn configure_window() {
    let enc = |win: u32, sib: u32| {
        let aux = ConfigureWindowAux::new()
            .x(10)
            .width(100)
            .sibling(sib)
            .stack_mode(StackMode::ABOVE);
        common::cat(
            &ConfigureWindowRequest {
                window: win,
                value_list: Cow::Owned(aux),
            }
            .serialize()
            .0,
        )
    };
    check(
        Family::Request,
        0,
        12,
        LE,
        &enc(0x0400_0001, 0x0400_0002),
        &enc(x(0x0400_0001), x(0x0400_0002)),
        &[(W, 0x0400_0001), (W, 0x0400_0002)],
    );
}

#[test]
fn change_property() {
    let enc = |win: u32, prop: u32, ty: u32| {
        common::cat(
            &ChangePropertyRequest {
                mode: PropMode::REPLACE,
                window: win,
                property: prop,
                type_: ty,
                format: 8,
                data_len: 5,
                data: Cow::Borrowed(b"hello"),
            }
            .serialize()
            .0,
        )
    };
    check(
        Family::Request,
        0,
        18,
        LE,
        &enc(0x0400_0001, 39, 31),
        &enc(x(0x0400_0001), x(39), x(31)),
        &[(W, 0x0400_0001), (Kind::Atom, 39), (Kind::Atom, 31)],
    );
}

#[test]
fn get_property_reply() {
    let enc = |ty: u32| {
        GetPropertyReply {
            format: 32,
            sequence: 7,
            length: 2,
            type_: ty,
            bytes_after: 0,
            value_len: 2,
            value: vec![1, 0, 0, 0, 2, 0, 0, 0],
        }
        .serialize()
    };
    check(
        Family::Reply,
        0,
        20,
        LE,
        &enc(33),
        &enc(x(33)),
        &[(Kind::Atom, 33)],
    );
}

#[test]
fn query_tree_reply() {
    let enc = |root: u32, parent: u32, kids: &[u32]| {
        QueryTreeReply {
            sequence: 3,
            length: kids.len() as u32,
            root,
            parent,
            children: kids.to_vec(),
        }
        .serialize()
    };
    let kids = [0x0400_0001, 0x0400_0005, 0x0060_0001];
    check(
        Family::Reply,
        0,
        15,
        LE,
        &enc(0x3ea, 0x3eb, &kids),
        &enc(x(0x3ea), x(0x3eb), &kids.map(x)),
        &[
            (W, 0x3ea),
            (W, 0x3eb),
            (W, kids[0]),
            (W, kids[1]),
            (W, kids[2]),
        ],
    );
}

#[test]
fn query_tree_reply_big_endian() {
    let enc = |root: u32, parent: u32, kids: &[u32]| {
        let mut m = vec![1u8, 0];
        m.extend_from_slice(&9u16.to_be_bytes());
        m.extend_from_slice(&(kids.len() as u32).to_be_bytes());
        m.extend_from_slice(&root.to_be_bytes());
        m.extend_from_slice(&parent.to_be_bytes());
        m.extend_from_slice(&(kids.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0; 14]);
        for k in kids {
            m.extend_from_slice(&k.to_be_bytes());
        }
        m
    };
    let kids = [0x0400_0001, 0x0400_0005];
    check(
        Family::Reply,
        0,
        15,
        ByteOrder::Big,
        &enc(0x3ea, 0x3eb, &kids),
        &enc(x(0x3ea), x(0x3eb), &kids.map(x)),
        &[(W, 0x3ea), (W, 0x3eb), (W, kids[0]), (W, kids[1])],
    );
}

#[test]
fn intern_atom_reply() {
    let enc = |atom: u32| {
        InternAtomReply {
            sequence: 1,
            length: 0,
            atom,
        }
        .serialize()
        .to_vec()
    };
    check(
        Family::Reply,
        0,
        16,
        LE,
        &enc(301),
        &enc(x(301)),
        &[(Kind::Atom, 301)],
    );
}

#[test]
fn get_window_attributes_reply() {
    let enc = |visual: u32, colormap: u32| {
        GetWindowAttributesReply {
            backing_store: BackingStore::NOT_USEFUL,
            sequence: 4,
            length: 3,
            visual,
            class: WindowClass::INPUT_OUTPUT,
            bit_gravity: Gravity::NORTH_WEST,
            win_gravity: Gravity::NORTH_WEST,
            backing_planes: 0xffff_ffff,
            backing_pixel: 0,
            save_under: false,
            map_is_installed: true,
            map_state: MapState::VIEWABLE,
            override_redirect: false,
            colormap,
            all_event_masks: EventMask::EXPOSURE,
            your_event_mask: EventMask::EXPOSURE,
            do_not_propagate_mask: EventMask::NO_EVENT,
        }
        .serialize()
        .to_vec()
    };
    check(
        Family::Reply,
        0,
        3,
        LE,
        &enc(0x21, 0x20),
        &enc(x(0x21), x(0x20)),
        &[(Kind::Visual, 0x21), (Kind::Xid("COLORMAP"), 0x20)],
    );
}

#[test]
fn get_geometry_reply() {
    let enc = |root: u32| {
        GetGeometryReply {
            depth: 24,
            sequence: 5,
            length: 0,
            root,
            x: 1,
            y: 2,
            width: 3,
            height: 4,
            border_width: 0,
        }
        .serialize()
        .to_vec()
    };
    check(
        Family::Reply,
        0,
        14,
        LE,
        &enc(0x3ea),
        &enc(x(0x3ea)),
        &[(W, 0x3ea)],
    );
}

fn pad32(v: &[u8]) -> Vec<u8> {
    let mut v = v.to_vec();
    v.resize(32, 0);
    v
}

#[test]
fn key_press_event() {
    let enc = |detail: u8, time: u32, root: u32, event: u32, child: u32| {
        let e = KeyPressEvent {
            response_type: KEY_PRESS_EVENT,
            detail,
            sequence: 9,
            time,
            root,
            event,
            child,
            root_x: 1,
            root_y: 2,
            event_x: 3,
            event_y: 4,
            state: KeyButMask::SHIFT,
            same_screen: true,
        };
        <[u8; 32]>::from(&e).to_vec()
    };
    check(
        Family::Event,
        0,
        2,
        LE,
        &enc(38, 1000, 0x3ea, 0x0400_0001, 0),
        &enc(xk(38), x(1000), x(0x3ea), x(0x0400_0001), x(0)),
        &[
            (Kind::Keycode, 38),
            (Kind::Timestamp, 1000),
            (W, 0x3ea),
            (W, 0x0400_0001),
            (W, 0),
        ],
    );
}

#[test]
fn button_press_event() {
    let enc = |time: u32, root: u32, event: u32, child: u32| {
        let e = ButtonPressEvent {
            response_type: BUTTON_PRESS_EVENT,
            detail: 1,
            sequence: 9,
            time,
            root,
            event,
            child,
            root_x: 1,
            root_y: 2,
            event_x: 3,
            event_y: 4,
            state: KeyButMask::BUTTON1,
            same_screen: true,
        };
        <[u8; 32]>::from(&e).to_vec()
    };
    check(
        Family::Event,
        0,
        4,
        LE,
        &enc(1000, 0x3ea, 0x0400_0001, 0x0400_0002),
        &enc(x(1000), x(0x3ea), x(0x0400_0001), x(0x0400_0002)),
        &[
            (Kind::Timestamp, 1000),
            (W, 0x3ea),
            (W, 0x0400_0001),
            (W, 0x0400_0002),
        ],
    );
}

#[test]
fn expose_event() {
    let enc = |window: u32| {
        pad32(
            &ExposeEvent {
                response_type: EXPOSE_EVENT,
                sequence: 2,
                window,
                x: 0,
                y: 0,
                width: 10,
                height: 10,
                count: 0,
            }
            .serialize(),
        )
    };
    check(
        Family::Event,
        0,
        12,
        LE,
        &enc(0x0400_0001),
        &enc(x(0x0400_0001)),
        &[(W, 0x0400_0001)],
    );
}

fn configure_notify(event: u32, window: u32, above: u32) -> Vec<u8> {
    pad32(
        &ConfigureNotifyEvent {
            response_type: CONFIGURE_NOTIFY_EVENT,
            sequence: 2,
            event,
            window,
            above_sibling: above,
            x: 1,
            y: 2,
            width: 3,
            height: 4,
            border_width: 0,
            override_redirect: false,
        }
        .serialize(),
    )
}

#[test]
fn configure_notify_event() {
    let v = [0x0400_0001, 0x0400_0002, 0x0400_0003];
    check(
        Family::Event,
        0,
        22,
        LE,
        &configure_notify(v[0], v[1], v[2]),
        &configure_notify(x(v[0]), x(v[1]), x(v[2])),
        &[(W, v[0]), (W, v[1]), (W, v[2])],
    );
}

#[test]
fn configure_notify_event_big_endian() {
    // Same event, MSB first: swap each multi-byte field of the LE encoding by hand.
    let be = |m: Vec<u8>| {
        let mut b = m.clone();
        for (off, len) in [
            (2, 2),
            (4, 4),
            (8, 4),
            (12, 4),
            (16, 2),
            (18, 2),
            (20, 2),
            (22, 2),
            (24, 2),
        ] {
            b[off..off + len].reverse();
        }
        b
    };
    let v = [0x0400_0001, 0x0400_0002, 0x0400_0003];
    check(
        Family::Event,
        0,
        22,
        ByteOrder::Big,
        &be(configure_notify(v[0], v[1], v[2])),
        &be(configure_notify(x(v[0]), x(v[1]), x(v[2]))),
        &[(W, v[0]), (W, v[1]), (W, v[2])],
    );
}

#[test]
fn property_notify_event() {
    let enc = |window: u32, atom: u32, time: u32| {
        pad32(
            &PropertyNotifyEvent {
                response_type: PROPERTY_NOTIFY_EVENT,
                sequence: 2,
                window,
                atom,
                time,
                state: Property::NEW_VALUE,
            }
            .serialize(),
        )
    };
    check(
        Family::Event,
        0,
        28,
        LE,
        &enc(0x0400_0001, 39, 5000),
        &enc(x(0x0400_0001), x(39), x(5000)),
        &[(W, 0x0400_0001), (Kind::Atom, 39), (Kind::Timestamp, 5000)],
    );
}

#[test]
fn client_message_event() {
    // The data words are not described by the XML (they depend on the message type); the
    // engine rewrites them. The walker visits window and type only.
    let enc = |window: u32, ty: u32| {
        let e = ClientMessageEvent {
            response_type: CLIENT_MESSAGE_EVENT,
            format: 32,
            sequence: 2,
            window,
            type_: ty,
            data: ClientMessageData::from([300u32, 1000, 0, 0, 0]),
        };
        <[u8; 32]>::from(&e).to_vec()
    };
    check(
        Family::Event,
        0,
        33,
        LE,
        &enc(0x0400_0001, 301),
        &enc(x(0x0400_0001), x(301)),
        &[(W, 0x0400_0001), (Kind::Atom, 301)],
    );
}

#[test]
fn send_event_visits_destination_only() {
    let ev = configure_notify(1, 2, 3);
    let enc = |dest: u32| {
        common::cat(
            &SendEventRequest {
                propagate: false,
                destination: dest,
                event_mask: EventMask::STRUCTURE_NOTIFY,
                event: Cow::Owned(ev.clone().try_into().unwrap()),
            }
            .serialize()
            .0,
        )
    };
    check(
        Family::Request,
        0,
        25,
        LE,
        &enc(0x0400_0001),
        &enc(x(0x0400_0001)),
        &[(W, 0x0400_0001)],
    );
}

#[test]
fn names_and_replies() {
    assert_eq!(generated::request_name(0, 1), Some("CreateWindow"));
    assert_eq!(generated::request_name(0, 127), Some("NoOperation"));
    assert_eq!(generated::request_name(0, 200), None);
    assert_eq!(generated::request_has_reply(0, 16), Some(true));
    assert_eq!(generated::request_has_reply(0, 8), Some(false));
    assert_eq!(generated::error_value_kind(0, 3), Some(W));
    assert_eq!(generated::error_value_kind(0, 5), Some(Kind::Atom));
    assert_eq!(
        generated::error_value_kind(0, 9),
        Some(Kind::Xid("DRAWABLE"))
    );
    assert_eq!(generated::error_value_kind(0, 2), None);
    assert_eq!(generated::EXTENSIONS[0].header, "xproto");
}

#[test]
fn truncated_is_an_error() {
    let mut m = create_window(1, 2, 3, 4, 5, 6);
    m.truncate(30);
    let mut rw = common::Map::ident();
    assert!(matches!(
        generated::walk_request(0, 1, &mut m, LE, &mut rw),
        Err(fields::WalkError::Truncated { .. })
    ));
}
