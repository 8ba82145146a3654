//! Unit tests of the engine, byte by byte.

use super::*;

fn req_noop() -> Vec<u8> {
    vec![127, 0, 1, 0]
}
fn req_get_input_focus() -> Vec<u8> {
    vec![43, 0, 1, 0]
}
fn reply(seq: u16) -> Vec<u8> {
    let mut r = vec![0u8; 32];
    r[0] = 1;
    r[2..4].copy_from_slice(&seq.to_le_bytes());
    r
}
fn event(code: u8, seq: u16) -> Vec<u8> {
    let mut r = vec![0u8; 32];
    r[0] = code;
    r[2..4].copy_from_slice(&seq.to_le_bytes());
    r
}

#[test]
fn hijack_sentinel_sync_and_seq_offset() {
    let mut e = Engine::hijacked(ByteOrder::Little, 0x1fe0_1234);
    // Sentinel goes first.
    let out = std::mem::take(e.server_output(0).unwrap());
    assert_eq!(out[0], 14);
    // The app sends a round trip after the interposition.
    e.app_input(&req_get_input_focus()).unwrap();
    let out = std::mem::take(e.server_output(0).unwrap());
    assert_eq!(out, req_get_input_focus());
    // Server: tail of an old reply (half a message), an event, then the sentinel error
    // (seq 500), then the reply to the app's request (seq 501).
    let mut stream = vec![7u8; 10];
    stream.extend(event(12, 499));
    stream.extend(sentinel_error(500, 0x1fe0_1234));
    stream.extend(reply(501));
    // Feed in two pieces, split inside the sentinel.
    e.server_input(0, &stream[..50]).unwrap();
    e.server_input(0, &stream[50..]).unwrap();
    let to_app = std::mem::take(e.app_output());
    assert_eq!(to_app.len(), 10 + 32 + 32);
    assert_eq!(&to_app[..10], &[7u8; 10]);
    // The reply carries the app's own numbering: 501 - 1 (the sentinel is invisible).
    assert_eq!(u16::from_le_bytes([to_app[44], to_app[45]]), 500);
    assert!(e.synced());
}

#[test]
fn internal_requests_are_invisible_to_the_app() {
    let mut e = Engine::hijacked(ByteOrder::Little, 7);
    e.server_output(0).unwrap().clear();
    e.server_input(0, &sentinel_error(100, 7)).unwrap();
    // App request: app seq 100 (server 101).
    e.app_input(&req_noop()).unwrap();
    e.pause();
    e.start_internal(0).unwrap();
    // Internal client: two requests (server 102, 103), numbered 1 and 2 for it.
    e.internal_input(&req_get_input_focus()).unwrap();
    e.internal_input(&req_get_input_focus()).unwrap();
    // App keeps writing while paused: queued.
    e.app_input(&req_get_input_focus()).unwrap();
    assert_eq!(e.queued_bytes(), 4);
    e.server_output(0).unwrap().clear();
    let mut s = event(12, 102);
    s.extend(reply(102));
    s.extend(reply(103));
    e.server_input(0, &s).unwrap();
    let int_out = std::mem::take(e.internal_output().unwrap());
    assert_eq!(int_out.len(), 64);
    assert_eq!(u16::from_le_bytes([int_out[2], int_out[3]]), 1);
    assert_eq!(u16::from_le_bytes([int_out[34], int_out[35]]), 2);
    let app = std::mem::take(e.app_output());
    assert_eq!(app.len(), 32, "only the event reaches the app");
    assert_eq!(u16::from_le_bytes([app[2], app[3]]), 100);
    e.stop_internal();
    e.resume();
    // The queued request goes out as server 104 and is app seq 101.
    assert_eq!(
        std::mem::take(e.server_output(0).unwrap()),
        req_get_input_focus()
    );
    e.server_input(0, &reply(104)).unwrap();
    let app = std::mem::take(e.app_output());
    assert_eq!(u16::from_le_bytes([app[2], app[3]]), 101);
}

/// The X error a server answers the hijack sentinel (GetGeometry on `id`) with, `seq`.
fn sentinel_error(seq: u16, id: u32) -> Vec<u8> {
    let mut err = vec![0u8; 32];
    err[1] = 9;
    err[2..4].copy_from_slice(&seq.to_le_bytes());
    err[4..8].copy_from_slice(&id.to_le_bytes());
    err[10] = 14;
    err
}

/// A hijacked engine moved to server 1, which converts MIT-SHM (app's MIT-SHM: major 130,
/// first event 65, first error 128), with segment 0x200010 of 64 bytes. The app's next
/// request is app seq 100; server 1 numbers from 1.
fn converting_engine() -> Engine {
    let mut e = Engine::hijacked(ByteOrder::Little, 7);
    e.server_input(0, &sentinel_error(100, 7)).unwrap();
    e.pause();
    e.remove_server(0);
    let s = e.add_server();
    let mut mem = crate::shmconv::tests::VecMem::default();
    mem.0.insert(0x20_0010, (0..64).collect());
    e.set_segment_memory(Box::new(mem));
    let formats = ImageFormats {
        bitmap_pad: 32,
        formats: vec![(24, 32, 32)],
    };
    e.set_shm_conversion(
        s,
        Some(ShmTarget {
            app_place: (130, 65, 128),
            app: formats.clone(),
            server: formats,
            owner: (0, 0),
        }),
    )
    .unwrap();
    let mut exts = crate::maps::ExtMap::default();
    exts.entries.push(crate::maps::ExtEntry {
        name: "MIT-SHM".into(),
        table: tables::ext_by_xname("MIT-SHM"),
        app: Some(crate::maps::ExtPlace {
            major: 130,
            first_event: 65,
            first_error: 128,
        }),
        server: None,
    });
    let maps = Maps {
        xids: crate::maps::XidMap::new(0x20_0000, 0x1f_ffff, 0x40_0000, 0x1f_ffff),
        atoms: crate::maps::AtomMap::new(),
        visuals: HashMap::new(),
        exts,
        named: HashMap::new(),
        devices: Default::default(),
    };
    e.activate(s, Role::Primary, Some(maps)).unwrap();
    e.resume();
    e
}

#[test]
fn foreign_ids_of_another_connection_are_translated_both_ways() {
    let mut e = converting_engine();
    // The other connection's window: 0x60_0005 in the app's view, 0x80_0007 on server 1.
    assert_eq!(e.add_foreign_xids(1, &[(0x60_0005, 0x80_0007)]), 1);
    // Own range and known pairs are left alone.
    assert_eq!(
        e.add_foreign_xids(1, &[(0x20_0001, 0x80_0008), (0x60_0005, 0x80_0009)]),
        0
    );
    let m = e.maps_of(1).unwrap().clone();
    assert_eq!(m.xids.lookup(0x60_0005), Some(0x80_0007));
    // A MapWindow of the foreign window goes out with the new server's ID.
    let mut r = vec![8u8, 0, 2, 0];
    r.extend_from_slice(&0x60_0005u32.to_le_bytes());
    e.app_input(&r).unwrap();
    let out = std::mem::take(e.server_output(1).unwrap());
    assert_eq!(&out[4..8], &0x80_0007u32.to_le_bytes());
}

#[test]
fn regeneration_echoes_are_not_delivered_but_exposures_are() {
    let mut e = Engine::hijacked(ByteOrder::Little, 7);
    e.server_input(0, &sentinel_error(100, 7)).unwrap();
    e.pause();
    e.remove_server(0);
    e.app_output().clear();
    let s = e.add_server();
    // What regenerating a mapped top-level makes the server say, then a SendEvent'd
    // ConfigureNotify from another client (a window manager's synthetic one).
    let mut evs = Vec::new();
    for code in [19u8, 22, 12, 28, 15, 22 | 0x80] {
        evs.extend(event(code, 3));
    }
    e.server_input(s, &evs).unwrap();
    assert!(
        e.app_output().is_empty(),
        "events of a pending server leaked"
    );
    e.activate(s, Role::Primary, None).unwrap();
    let got: Vec<u8> = e.app_output().chunks(32).map(|c| c[0]).collect();
    assert_eq!(got, vec![12, 15, 22 | 0x80]);
    assert_eq!(e.stats().dropped_events, 3);
}

#[test]
fn converted_shm_put_image_completes_in_sequence() {
    let mut e = converting_engine();
    // ShmPutImage of a 2×2 image at offset 16, send_event, then a NoOperation.
    let mut r = vec![0u8; 40];
    r[0] = 130;
    r[1] = 3;
    r[2] = 10;
    r[4..8].copy_from_slice(&0x20_0001u32.to_le_bytes());
    r[8..12].copy_from_slice(&0x20_0002u32.to_le_bytes());
    for (i, v) in [2u16, 2, 0, 0, 2, 2, 0, 0].iter().enumerate() {
        r[12 + 2 * i..14 + 2 * i].copy_from_slice(&v.to_le_bytes());
    }
    r[28] = 24;
    r[29] = 2;
    r[30] = 1;
    r[32..36].copy_from_slice(&0x20_0010u32.to_le_bytes());
    r[36..40].copy_from_slice(&16u32.to_le_bytes());
    e.app_input(&r).unwrap();
    e.app_input(&req_noop()).unwrap();
    let out = std::mem::take(e.server_output(1).unwrap());
    // PutImage (24 + 16 bytes), GetInputFocus, NoOperation.
    assert_eq!(out.len(), 40 + 4 + 4, "{out:?}");
    assert_eq!((out[0], out[1]), (72, 2));
    assert_eq!(&out[24..40], &(16u8..32).collect::<Vec<_>>()[..]);
    assert_eq!(out[40], 43);
    assert_eq!(out[44], 127);
    // An event the server sent before it processed the GetInputFocus, then the reply.
    let mut s = event(12, 1);
    s.extend(reply(2));
    e.server_input(1, &s).unwrap();
    let app = std::mem::take(e.app_output());
    assert_eq!(app.len(), 64);
    assert_eq!(app[32], 65, "ShmCompletion in the app's event code");
    assert_eq!(u16::from_le_bytes([app[34], app[35]]), 100);
    assert_eq!(
        u32::from_le_bytes(app[36..40].try_into().unwrap()),
        0x20_0001
    );
    assert_eq!(
        u32::from_le_bytes(app[44..48].try_into().unwrap()),
        0x20_0010
    );
    assert!(
        u16::from_le_bytes([app[2], app[3]]) <= 101,
        "in sequence order"
    );
}

#[test]
fn converted_shm_get_image_writes_the_segment_and_errors_name_the_app_request() {
    let mut e = converting_engine();
    // ShmGetImage 2×1 ZPixmap into offset 40.
    let mut r = vec![0u8; 32];
    r[0] = 130;
    r[1] = 4;
    r[2] = 8;
    r[4..8].copy_from_slice(&0x20_0001u32.to_le_bytes());
    r[12..14].copy_from_slice(&2u16.to_le_bytes());
    r[14..16].copy_from_slice(&1u16.to_le_bytes());
    r[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    r[20] = 2;
    r[24..28].copy_from_slice(&0x20_0010u32.to_le_bytes());
    r[28..32].copy_from_slice(&40u32.to_le_bytes());
    e.app_input(&r).unwrap();
    let out = std::mem::take(e.server_output(1).unwrap());
    assert_eq!((out[0], out.len()), (73, 20));
    assert_eq!(
        u32::from_le_bytes(out[4..8].try_into().unwrap()),
        0x40_0000 | 0x10_0000
    );
    let mut rep = vec![0u8; 40];
    rep[0] = 1;
    rep[1] = 24;
    rep[2..4].copy_from_slice(&1u16.to_le_bytes());
    rep[4..8].copy_from_slice(&2u32.to_le_bytes());
    rep[32..40].copy_from_slice(&[9, 9, 9, 9, 8, 8, 8, 8]);
    e.server_input(1, &rep).unwrap();
    let app = std::mem::take(e.app_output());
    assert_eq!(app.len(), 32, "an ShmGetImage reply, no data");
    assert_eq!((app[0], app[1]), (1, 24));
    assert_eq!(u16::from_le_bytes([app[2], app[3]]), 100);
    assert_eq!(u32::from_le_bytes(app[12..16].try_into().unwrap()), 8);
    let mut got = [0u8; 8];
    assert!(e.segment_memory().unwrap().read(0x20_0010, 40, &mut got));
    assert_eq!(
        got,
        [9, 9, 9, 9, 8, 8, 8, 8],
        "the pixels are in the app's segment"
    );
    // A second ShmGetImage whose GetImage fails: the error names ShmGetImage.
    e.app_input(&r).unwrap();
    e.server_output(1).unwrap().clear();
    let mut err = vec![0u8; 32];
    err[1] = 9; // BadDrawable
    err[2..4].copy_from_slice(&2u16.to_le_bytes());
    err[10] = 73;
    e.server_input(1, &err).unwrap();
    let app = std::mem::take(e.app_output());
    assert_eq!((app[0], app[1], app[10]), (0, 9, 130));
    assert_eq!(u16::from_le_bytes([app[8], app[9]]), 4);
    assert_eq!(u16::from_le_bytes([app[2], app[3]]), 101);
    // Unknown segment: BadShmSeg at once, in order.
    r[24..28].copy_from_slice(&0x20_0099u32.to_le_bytes());
    e.app_input(&r).unwrap();
    let out = std::mem::take(e.server_output(1).unwrap());
    assert_eq!(out[0], 14, "a request that fails stands in");
    let mut err = vec![0u8; 32];
    err[1] = 9;
    err[2..4].copy_from_slice(&3u16.to_le_bytes());
    err[10] = 14;
    e.server_input(1, &err).unwrap();
    let app = std::mem::take(e.app_output());
    assert_eq!((app[1], app[10]), (128, 130), "BadShmSeg for ShmGetImage");
    assert_eq!(u32::from_le_bytes(app[4..8].try_into().unwrap()), 0x20_0099);
}

#[test]
fn premeditated_setup_passes_and_numbers_from_one() {
    let mut e = Engine::premeditated();
    let mut setup = vec![b'l', 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    setup.extend(req_get_input_focus());
    e.app_input(&setup).unwrap();
    assert_eq!(e.server_output(0).unwrap().len(), 16);
    let mut sr = vec![1u8, 0, 11, 0, 0, 0, 1, 0, 0, 0, 0, 0];
    sr.extend(reply(1));
    e.server_input(0, &sr).unwrap();
    let app = std::mem::take(e.app_output());
    assert_eq!(app.len(), 12 + 32);
    assert_eq!(u16::from_le_bytes([app[14], app[15]]), 1);
}

#[test]
fn garbage_from_app_is_an_error_not_a_panic() {
    let mut e = Engine::premeditated();
    assert!(e.app_input(b"Xjunk").is_err());
    let mut e = Engine::hijacked(ByteOrder::Little, 1);
    // length 0 + big length 1: invalid.
    assert!(e.app_input(&[1, 0, 0, 0, 1, 0, 0, 0]).is_err());
}

#[test]
fn a_replica_promoted_after_the_primary_died_answers_what_was_in_flight_once() {
    let mut e = Engine::hijacked(ByteOrder::Little, 7);
    e.server_output(0).unwrap().clear();
    e.server_input(0, &sentinel_error(100, 7)).unwrap();
    // A replica (server 1, numbering from 1) sees every app request from now on.
    let r = e.add_server();
    e.activate(r, Role::Replica { view_only: true }, None)
        .unwrap();
    // Three round trips: app seq 100, 101, 102 (primary 101..103, replica 1..3).
    for _ in 0..3 {
        e.app_input(&req_get_input_focus()).unwrap();
    }
    // The replica is ahead: it answered all three; the primary the first two, then died.
    e.server_input(r, &[reply(1), reply(2), reply(3)].concat())
        .unwrap();
    assert!(e.app_output().is_empty(), "a replica's replies leaked");
    e.server_input(0, &[reply(101), reply(102)].concat())
        .unwrap();
    let app = std::mem::take(e.app_output());
    assert_eq!(app.len(), 64);
    assert_eq!(u16::from_le_bytes([app[34], app[35]]), 101);
    assert_eq!(e.replicas(), vec![(r, Role::Replica { view_only: true })]);
    assert_eq!(e.promote(0, r).unwrap(), 1);
    assert_eq!(e.primary(), Some(r));
    let app = std::mem::take(e.app_output());
    let seqs: Vec<u16> = app
        .chunks(32)
        .map(|m| u16::from_le_bytes([m[2], m[3]]))
        .collect();
    assert_eq!(seqs, vec![102], "each request answered once, in order");
    // An event the replica made before the request the primary had processed is dropped;
    // a keypress after reaches the app (also from a view-only replica, now the primary).
    e.server_input(r, &event(12, 1)).unwrap();
    assert!(e.app_output().is_empty());
    e.server_input(r, &event(2, 3)).unwrap();
    let app = std::mem::take(e.app_output());
    assert_eq!(app[0], 2);
    assert_eq!(u16::from_le_bytes([app[2], app[3]]), 102);
    // The next request goes to the new primary only, its reply reaches the app.
    e.app_input(&req_get_input_focus()).unwrap();
    assert_eq!(e.server_output(r).unwrap().len(), 4 * 4);
    e.server_input(r, &reply(4)).unwrap();
    let app = std::mem::take(e.app_output());
    assert_eq!(u16::from_le_bytes([app[2], app[3]]), 103);
}

#[test]
fn a_slow_replica_promoted_does_not_repeat_answers_the_app_has() {
    let mut e = Engine::hijacked(ByteOrder::Little, 7);
    e.server_output(0).unwrap().clear();
    e.server_input(0, &sentinel_error(100, 7)).unwrap();
    let r = e.add_server();
    e.activate(r, Role::Replica { view_only: false }, None)
        .unwrap();
    e.app_input(&req_get_input_focus()).unwrap();
    e.app_input(&req_get_input_focus()).unwrap();
    // The primary answered both, the replica none yet; then the primary died.
    e.server_input(0, &[reply(101), reply(102)].concat())
        .unwrap();
    e.app_output().clear();
    assert_eq!(e.promote(0, r).unwrap(), 0);
    e.server_input(r, &[reply(1), reply(2)].concat()).unwrap();
    assert!(
        e.app_output().is_empty(),
        "answers repeated after promotion"
    );
}

#[test]
fn an_idle_replica_promoted_numbers_what_follows_as_the_app_counts() {
    let mut e = Engine::hijacked(ByteOrder::Little, 7);
    e.server_output(0).unwrap().clear();
    e.server_input(0, &sentinel_error(100, 7)).unwrap();
    e.app_input(&req_get_input_focus()).unwrap();
    e.server_input(0, &reply(101)).unwrap();
    e.app_output().clear();
    // The replica is made after the app's last request: it never saw one.
    let r = e.add_server();
    e.activate(r, Role::Replica { view_only: true }, None)
        .unwrap();
    e.promote(0, r).unwrap();
    // guievict's own event (as after a move) and the replica's events carry the app's last
    // sequence number (100), never 0: Xlib aborts on a number it has not reached.
    let mut ev = [0u8; 32];
    ev[0] = 12;
    e.inject_event(ev);
    let app = std::mem::take(e.app_output());
    assert_eq!(u16::from_le_bytes([app[2], app[3]]), 100);
    // Detached from it (a move): a new primary's events continue from there too.
    e.remove_server(r);
    let n = e.add_server();
    e.activate(n, Role::Primary, None).unwrap();
    e.inject_event(ev);
    let app = std::mem::take(e.app_output());
    assert_eq!(u16::from_le_bytes([app[2], app[3]]), 100);
}

#[test]
fn a_lean_replica_gets_drawing_into_windows_as_no_operation() {
    let mut e = Engine::hijacked(ByteOrder::Little, 7);
    e.server_output(0).unwrap().clear();
    e.server_input(0, &sentinel_error(100, 7)).unwrap();
    let r = e.add_server();
    e.activate(r, Role::Replica { view_only: true }, None)
        .unwrap();
    e.set_lean(r, [0x200001], []).unwrap();
    // PolyFillRectangle (70) into window 0x200001, then into pixmap 0x200002.
    let fill = |d: u32| {
        let mut q = vec![70, 0, 5, 0];
        q.extend_from_slice(&d.to_le_bytes());
        q.extend_from_slice(&0x200003u32.to_le_bytes());
        q.extend_from_slice(&[0, 0, 0, 0, 10, 0, 10, 0]);
        q
    };
    e.app_input(&fill(0x200001)).unwrap();
    assert_eq!(e.server_output(0).unwrap().len(), 20, "the primary draws");
    assert_eq!(
        std::mem::take(e.server_output(r).unwrap()),
        vec![127, 0, 1, 0],
        "the lean replica gets NoOperation"
    );
    e.app_input(&fill(0x200002)).unwrap();
    assert_eq!(
        std::mem::take(e.server_output(r).unwrap()),
        fill(0x200002),
        "drawing into a pixmap is state: kept"
    );
    // A window made later is known too; once promoted, the replica draws everything.
    let mut cw = vec![1, 24, 8, 0];
    cw.extend_from_slice(&0x200004u32.to_le_bytes());
    cw.extend_from_slice(&[0; 24]);
    e.app_input(&cw).unwrap();
    e.server_output(r).unwrap().clear();
    e.app_input(&fill(0x200004)).unwrap();
    assert_eq!(e.server_output(r).unwrap().len(), 4);
    e.server_output(r).unwrap().clear();
    e.promote(0, r).unwrap();
    e.app_input(&fill(0x200004)).unwrap();
    assert_eq!(e.server_output(r).unwrap().len(), 20);
}

#[test]
fn a_lean_replica_is_asked_pure_queries_only_when_promoted_and_the_app_hears_in_order() {
    let mut e = Engine::hijacked(ByteOrder::Little, 7);
    e.server_output(0).unwrap().clear();
    e.server_input(0, &sentinel_error(100, 7)).unwrap();
    let r = e.add_server();
    e.activate(r, Role::Replica { view_only: true }, None)
        .unwrap();
    e.set_lean(r, [0x200001], []).unwrap();
    // App seq 100: GetInputFocus (pure: NoOperation on the guard); 101: InternAtom (state:
    // the guard gets it and answers); 102: GetInputFocus again.
    let mut intern = vec![16, 0, 3, 0, 1, 0, 0, 0];
    intern.extend_from_slice(b"A\0\0\0");
    e.app_input(&req_get_input_focus()).unwrap();
    e.app_input(&intern).unwrap();
    e.app_input(&req_get_input_focus()).unwrap();
    let guard_out = std::mem::take(e.server_output(r).unwrap());
    assert_eq!(
        &guard_out[..4],
        &[127, 0, 1, 0],
        "a pure query reaches the guard as NoOperation"
    );
    assert_eq!(&guard_out[4..16], &intern[..]);
    assert_eq!(&guard_out[16..], &[127, 0, 1, 0]);
    // The guard answers InternAtom (its seq 2); the primary answers nothing and dies.
    e.server_input(r, &reply(2)).unwrap();
    assert!(e.app_output().is_empty());
    assert_eq!(e.promote(0, r).unwrap(), 1);
    assert!(
        e.app_output().is_empty(),
        "the InternAtom reply (101) must wait for the answer to 100"
    );
    // The promoted guard is asked the two open questions (its seqs 4 and 5).
    let asked = std::mem::take(e.server_output(r).unwrap());
    assert_eq!(
        asked,
        [req_get_input_focus(), req_get_input_focus()].concat()
    );
    // An event the guard makes meanwhile carries a number the app has reached.
    e.server_input(r, &[reply(4), event(12, 4)].concat())
        .unwrap();
    assert!(e.app_output().is_empty(), "102 is still open");
    e.server_input(r, &reply(5)).unwrap();
    let app = std::mem::take(e.app_output());
    let got: Vec<(u8, u16)> = app
        .chunks(32)
        .map(|m| (m[0], u16::from_le_bytes([m[2], m[3]])))
        .collect();
    assert_eq!(got, vec![(1, 100), (1, 101), (1, 102), (12, 102)]);
    // Afterwards messages flow at once, numbered on.
    e.app_input(&req_get_input_focus()).unwrap();
    e.server_input(r, &reply(6)).unwrap();
    let app = std::mem::take(e.app_output());
    assert_eq!((app[0], u16::from_le_bytes([app[2], app[3]])), (1, 103));
}

/// A lean guard made from an engine whose replica has identity maps (so RENDER's place and
/// the ID range are known).
fn engine_with_lean_guard(render: u8) -> (Engine, ServerId) {
    use crate::maps::{AtomMap, DeviceMap, ExtEntry, ExtMap, ExtPlace, XidMap};
    // Identity IDs, so that what reaches the guard compares with what the app sent.
    let mut e = Engine::hijacked(ByteOrder::Little, 7);
    e.server_output(0).unwrap().clear();
    e.server_input(0, &sentinel_error(100, 7)).unwrap();
    let r = e.add_server();
    let place = ExtPlace {
        major: render,
        first_event: 0,
        first_error: 140,
    };
    let maps = Maps {
        xids: XidMap::new(0x20_0000, 0x1f_ffff, 0x20_0000, 0x1f_ffff),
        atoms: AtomMap::new(),
        visuals: Default::default(),
        exts: ExtMap {
            entries: vec![ExtEntry {
                name: "RENDER".into(),
                table: tables::ext_by_xname("RENDER"),
                app: Some(place),
                server: Some(place),
            }],
        },
        named: Default::default(),
        devices: DeviceMap::default(),
    };
    e.activate(r, Role::Replica { view_only: true }, Some(maps))
        .unwrap();
    e.set_lean(r, [0x200001], []).unwrap();
    e.server_output(r).unwrap().clear();
    (e, r)
}

fn words(head: [u8; 2], ws: &[u32]) -> Vec<u8> {
    let mut q = vec![head[0], head[1], 0, 0];
    for w in ws {
        q.extend_from_slice(&w.to_le_bytes());
    }
    let n = (q.len() / 4) as u16;
    q[2..4].copy_from_slice(&n.to_le_bytes());
    q
}

#[test]
fn a_pixmap_made_drawn_and_freed_in_one_batch_reaches_a_guard_as_no_operations() {
    let (mut e, r) = engine_with_lean_guard(139);
    // GTK's repaint: pixmap, picture on it, fill, composite into the window's picture, free.
    let frame = |pix: u32, pic: u32| {
        [
            words([53, 24], &[pix, 0x200001, 0x0010_0010]), // CreatePixmap
            words([139, 4], &[pic, pix, 0x25, 0]),          // CreatePicture
            words([139, 26], &[3, pic, 0, 0, 0x0010_0010]), // FillRectangles
            words([139, 7], &[pic]),                        // FreePicture
            words([54, 0], &[pix]),                         // FreePixmap
        ]
        .concat()
    };
    e.app_input(&frame(0x200010, 0x200011)).unwrap();
    assert_eq!(
        std::mem::take(e.server_output(r).unwrap()),
        [127u8, 0, 1, 0].repeat(5),
        "nothing of a pixmap nobody sees reaches the guard"
    );
    assert_eq!(
        e.server_output(0).unwrap().len(),
        frame(0x200010, 0x200011).len()
    );
    assert_eq!(e.stats().elided, 5);
    // Copied into a pixmap that stays, the short-lived one is read: all of it goes.
    let mut keep = frame(0x200020, 0x200021);
    let free_at = keep.len() - 8;
    let copy = words([62, 0], &[0x200020, 0x200030, 0x200040, 0, 0, 0x0010_0010]);
    keep.splice(free_at..free_at, copy);
    e.server_output(0).unwrap().clear();
    e.app_input(&keep).unwrap();
    // (The guard numbers new IDs its own way: compare the requests, not the IDs.)
    let heads = |b: &[u8]| -> Vec<(u8, u8, u16)> {
        let mut v = Vec::new();
        let mut at = 0;
        while at + 4 <= b.len() {
            let n = u16::from_le_bytes([b[at + 2], b[at + 3]]);
            v.push((b[at], b[at + 1], n));
            at += 4 * usize::from(n.max(1));
        }
        v
    };
    assert_eq!(
        heads(&std::mem::take(e.server_output(r).unwrap())),
        heads(&keep)
    );
    // Split over two batches (freed in the next one), it is sent in full too.
    let f = frame(0x200050, 0x200051);
    e.app_input(&f[..f.len() - 8]).unwrap();
    e.app_input(&f[f.len() - 8..]).unwrap();
    assert_eq!(
        heads(&std::mem::take(e.server_output(r).unwrap())),
        heads(&f)
    );
}

#[test]
fn events_of_a_target_connected_before_the_detach_do_not_go_back() {
    // A move that hands the target to the loop (pending) while the source is still the
    // primary: the internal client's requests on it start a segment before the detach.
    let mut e = Engine::hijacked(ByteOrder::Little, 7);
    e.server_output(0).unwrap().clear();
    e.server_input(0, &sentinel_error(100, 7)).unwrap();
    // Three requests without answers (app seq 100..=102): processed, but nothing says so.
    for _ in 0..3 {
        e.app_input(&req_noop()).unwrap();
    }
    e.pause();
    let t = e.add_server();
    e.start_internal(t).unwrap();
    e.internal_input(&req_get_input_focus()).unwrap();
    e.server_input(t, &reply(1)).unwrap();
    e.remove_server(0);
    e.internal_input(&req_get_input_focus()).unwrap();
    // The regeneration's echo held while pending, then an event of the same segment after.
    e.server_input(t, &event(12, 2)).unwrap();
    e.app_output().clear();
    e.activate(t, Role::Primary, None).unwrap();
    let held = std::mem::take(e.app_output());
    assert_eq!(u16::from_le_bytes([held[2], held[3]]), 102);
    e.internal_input(&req_get_input_focus()).unwrap();
    e.server_input(t, &event(28, 3)).unwrap();
    let app = std::mem::take(e.app_output());
    assert_eq!(app.len(), 32);
    assert_eq!(
        u16::from_le_bytes([app[2], app[3]]),
        102,
        "an event numbered behind what the app already got"
    );
}
