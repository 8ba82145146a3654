//! Property tests of the engine and the translation: streams of real requests (encoded by
//! x11rb-protocol) split at random points frame identically, and translating A → B and back
//! with the inverse maps gives the original bytes.
use guimux::fields::ByteOrder;
use guimux::maps::{AtomMap, ExtMap, XidMap};
use guimux::{translate, Engine, Maps};
use proptest::prelude::*;
use std::collections::HashMap;
use x11rb_protocol::protocol::xproto;

const APP_BASE: u32 = 0x0060_0000;
const SRV_BASE: u32 = 0x00a0_0000;
const MASK: u32 = 0x001f_ffff;

/// One request, serialized as the app would send it.
fn request(kind: u8, a: u32, b: u32, atom: u32, n: u16) -> Vec<u8> {
    match kind % 8 {
        0 => xproto::CreateWindowRequest {
            depth: 0,
            wid: a,
            parent: b,
            x: n as i16,
            y: 2,
            width: 10 + n,
            height: 20,
            border_width: 1,
            class: xproto::WindowClass::INPUT_OUTPUT,
            visual: 0,
            value_list: std::borrow::Cow::Owned(
                xproto::CreateWindowAux::new()
                    .background_pixel(n as u32)
                    .event_mask(xproto::EventMask::EXPOSURE)
                    .colormap(b),
            ),
        }
        .serialize()
        .0
        .concat(),
        1 => xproto::MapWindowRequest { window: a }
            .serialize()
            .0
            .concat(),
        2 => xproto::ChangePropertyRequest {
            mode: xproto::PropMode::REPLACE,
            window: a,
            property: atom,
            type_: u32::from(xproto::AtomEnum::ATOM),
            format: 32,
            data_len: 2,
            data: std::borrow::Cow::Owned([atom.to_le_bytes(), 4u32.to_le_bytes()].concat()),
        }
        .serialize()
        .0
        .concat(),
        3 => xproto::PolyFillRectangleRequest {
            drawable: a,
            gc: b,
            rectangles: std::borrow::Cow::Owned(vec![
                xproto::Rectangle {
                    x: 1,
                    y: 2,
                    width: n,
                    height: 4
                };
                (n % 5) as usize
            ]),
        }
        .serialize()
        .0
        .concat(),
        4 => xproto::CopyAreaRequest {
            src_drawable: a,
            dst_drawable: b,
            gc: a,
            src_x: 0,
            src_y: 0,
            dst_x: 1,
            dst_y: 1,
            width: n,
            height: n,
        }
        .serialize()
        .0
        .concat(),
        5 => xproto::GetPropertyRequest {
            delete: false,
            window: a,
            property: atom,
            type_: 0,
            long_offset: 0,
            long_length: 100,
        }
        .serialize()
        .0
        .concat(),
        6 => xproto::ChangeGCRequest {
            gc: a,
            value_list: std::borrow::Cow::Owned(
                xproto::ChangeGCAux::new()
                    .foreground(n as u32)
                    .tile(b)
                    .font(a),
            ),
        }
        .serialize()
        .0
        .concat(),
        _ => xproto::ConfigureWindowRequest {
            window: a,
            value_list: std::borrow::Cow::Owned(
                xproto::ConfigureWindowAux::new()
                    .x(n as i32)
                    .sibling(b)
                    .stack_mode(xproto::StackMode::ABOVE),
            ),
        }
        .serialize()
        .0
        .concat(),
    }
}

fn maps(pairs: &[(u32, u32)], atoms: &[(u32, u32)], app_base: u32, srv_base: u32) -> Maps {
    let mut xids = XidMap::new(app_base, MASK, srv_base, MASK);
    for (a, s) in pairs {
        xids.insert(*a, *s);
    }
    let mut am = AtomMap::new();
    for (a, s) in atoms {
        am.insert(*a, *s);
    }
    Maps {
        xids,
        atoms: am,
        visuals: HashMap::new(),
        exts: ExtMap::default(),
        named: HashMap::new(),
        devices: Default::default(),
    }
}

fn arb_request() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u8>(),
        0u32..64,
        0u32..64,
        0u32..4,
        1u16..40,
        any::<bool>(),
    )
        .prop_map(|(k, a, b, atom, n, foreign)| {
            let a = APP_BASE | (a + 1);
            let b = if foreign {
                0x0040_0000 | (b + 1)
            } else {
                APP_BASE | (b + 1)
            };
            request(k, a, b, 300 + atom, n)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Feeding a stream whole or in random pieces gives the same bytes to the server.
    #[test]
    fn random_splits_frame_identically(reqs in prop::collection::vec(arb_request(), 1..40), cuts in prop::collection::vec(any::<usize>(), 0..20)) {
        let stream: Vec<u8> = reqs.concat();
        let run = |pieces: Vec<&[u8]>| {
            let mut e = Engine::hijacked(ByteOrder::Little, 0x1fff_0001);
            e.server_output(0).unwrap().clear(); // the sentinel
            for p in pieces {
                e.app_input(p).unwrap();
            }
            std::mem::take(e.server_output(0).unwrap())
        };
        let whole = run(vec![&stream]);
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        points.sort_unstable();
        let mut pieces = Vec::new();
        let mut last = 0;
        for p in points {
            pieces.push(&stream[last..p]);
            last = p;
        }
        pieces.push(&stream[last..]);
        prop_assert_eq!(run(pieces), whole.clone());
        prop_assert_eq!(whole, stream);
    }

    /// A → B and back with the inverse maps is the identity, and A → B changes every app ID.
    #[test]
    fn translation_round_trips(reqs in prop::collection::vec(arb_request(), 1..30)) {
        let atoms = [(300, 410), (301, 411), (302, 412), (303, 413)];
        let mut fwd = maps(&[(0x1e7, 0x2e7)], &atoms, APP_BASE, SRV_BASE);
        let mut out = Vec::new();
        for r in &reqs {
            let mut b = r.clone();
            let t = translate::request_to_server(&mut b, ByteOrder::Little, &mut fwd).unwrap();
            prop_assert!(t.walk_error.is_none());
            out.push(b);
        }
        // Inverse: server → app pairs as seen from the other side.
        let inv_pairs: Vec<(u32, u32)> = fwd.xids.pairs().map(|(a, s)| (s, a)).collect();
        let inv_atoms: Vec<(u32, u32)> = atoms.iter().map(|(a, s)| (*s, *a)).collect();
        let mut back = maps(&inv_pairs, &inv_atoms, SRV_BASE, APP_BASE);
        for (orig, t) in reqs.iter().zip(&out) {
            let mut b = t.clone();
            translate::request_to_server(&mut b, ByteOrder::Little, &mut back).unwrap();
            prop_assert_eq!(&b, orig);
        }
        // Every app-range ID was replaced by one in the server's range.
        for (a, s) in fwd.xids.pairs() {
            if a & !MASK == APP_BASE {
                prop_assert_eq!(s & !MASK, SRV_BASE);
            }
        }
    }
}

/// A hijacked engine, synchronised, translating to a server with different IDs and atoms.
fn translating_engine() -> Engine {
    let mut e = Engine::hijacked(ByteOrder::Little, 7);
    e.server_output(0).unwrap().clear();
    let mut err = vec![0u8; 32];
    err[1] = 9;
    err[2..4].copy_from_slice(&100u16.to_le_bytes());
    err[4..8].copy_from_slice(&7u32.to_le_bytes());
    err[10] = 14;
    e.server_input(0, &err).unwrap();
    let m = maps(&[(0x1e7, 0x2e7)], &[(300, 410)], APP_BASE, SRV_BASE);
    e.activate(0, guimux::Role::Primary, Some(m)).unwrap();
    e
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Arbitrary bytes from the app or a server never panic the engine, translated or not.
    #[test]
    fn arbitrary_bytes_never_panic(app in prop::collection::vec(any::<u8>(), 0..600), server in prop::collection::vec(any::<u8>(), 0..2000), step in 1usize..64) {
        for translated in [false, true] {
            let mut e = if translated { translating_engine() } else { Engine::premeditated() };
            for c in app.chunks(step) {
                if e.app_input(c).is_err() {
                    break;
                }
            }
            for c in server.chunks(step) {
                if e.server_input(0, c).is_err() {
                    break;
                }
            }
        }
    }

    /// Well-formed server messages (any type code, valid lengths) with random contents never
    /// panic the translating engine and each reaches the app exactly once unless dropped by
    /// policy.
    #[test]
    fn random_events_translate_without_panic(msgs in prop::collection::vec((any::<u8>(), prop::collection::vec(any::<u8>(), 31)), 1..50)) {
        let mut e = translating_engine();
        let mut stream = Vec::new();
        for (code, body) in msgs {
            let code = match code & 0x7f { 0 | 1 | 35 => 12, c => c }; // events only: fixed size
            let mut m = vec![code];
            m.extend(body);
            stream.extend(m);
        }
        e.server_input(0, &stream).unwrap();
        prop_assert!(e.app_output().len() <= stream.len());
    }
}
