//! Byte-exact and round-trip tests of the GUIEVICT wire format; hostile input never panics.

use super::*;
use proptest::prelude::*;

fn sample_resources() -> Vec<Resource> {
    let r = |id, kind: &str, t, detail| Resource {
        id,
        kind: ResourceKind(kind.into()),
        server_type: t,
        detail,
    };
    vec![
        r(
            0x0040_0001,
            kinds::WINDOW,
            1,
            Detail::Window(WindowExtra {
                background: BgKind::Pixmap(0x0040_0002),
                border: BorderKind::Pixel(0x00ab_cdef),
                cursor: 0x0040_0005,
            }),
        ),
        r(
            0x0040_0002,
            kinds::PIXMAP,
            2,
            Detail::Pixmap(PixmapInfo {
                depth: 24,
                bits_per_pixel: 32,
                width: 17,
                height: 3,
            }),
        ),
        r(
            0x0040_0003,
            kinds::GC,
            3,
            Detail::Gc(GcValues {
                depth: 24,
                function: 6,
                plane_mask: 0x00ff_00ff,
                foreground: 0x1234_5678,
                background: 7,
                line_width: 3,
                line_style: 2,
                cap_style: 3,
                join_style: 1,
                fill_style: 3,
                fill_rule: 1,
                tile: Tile::Pixmap(0x0040_0002),
                stipple: 0x0040_0009,
                ts_x_origin: -5,
                ts_y_origin: 9,
                font: 0x0040_0004,
                subwindow_mode: 1,
                graphics_exposures: false,
                clip_x_origin: 11,
                clip_y_origin: -12,
                clip: Clip::Rectangles(vec![Rectangle {
                    x: 1,
                    y: 2,
                    width: 3,
                    height: 4,
                }]),
                dash_offset: 2,
                dashes: vec![1, 2, 3],
                arc_mode: 0,
            }),
        ),
        r(
            0x0040_0004,
            kinds::FONT,
            4,
            Detail::Font(FontInfo {
                name: "-misc-fixed-medium-r-normal--13-120-75-75-c-70-iso8859-1 \u{e9}".into(),
                from_property: true,
            }),
        ),
        r(
            0x0040_0005,
            kinds::CURSOR,
            5,
            Detail::Cursor(CursorImage {
                width: 33,
                height: 2,
                x_hot: 1,
                y_hot: 0,
                fore_rgb: [1, 2, 3],
                back_rgb: [0xffff, 0, 0x8000],
                name: 77,
                image: CursorBits::Bitmap {
                    source: vec![0xa5; 16],
                    mask: vec![0xff; 16],
                },
            }),
        ),
        r(
            0x0040_0006,
            kinds::CURSOR,
            5,
            Detail::Cursor(CursorImage {
                width: 2,
                height: 1,
                x_hot: 1,
                y_hot: 0,
                fore_rgb: [0; 3],
                back_rgb: [0; 3],
                name: 0,
                image: CursorBits::Argb(vec![0x8000_00ff, 0xffff_ffff]),
            }),
        ),
        r(
            0x0040_0007,
            kinds::COLORMAP,
            6,
            Detail::Colormap(ColormapInfo {
                visual: 0x21,
                class: 5,
                cells: vec![ColorCell {
                    pixel: 0x10000,
                    red: 0xffff,
                    green: 0,
                    blue: 0,
                    flags: 1,
                    writable: true,
                }],
            }),
        ),
        r(
            0x0040_0008,
            kinds::PICTURE,
            7,
            Detail::Picture(PictureInfo {
                format: 0x24,
                source: PictureSource::Drawable(0x0040_0002),
                repeat: 3,
                filter: "convolution".into(),
                filter_params: vec![0x30000, 0x10000, 1, 2, 3],
                transform: Some([0x10000, 0, 5, 0, 0x20000, 0, 0, 0, 0x10000]),
                clip: Clip::Rectangles(vec![Rectangle {
                    x: -1,
                    y: -2,
                    width: 30,
                    height: 40,
                }]),
                clip_x_origin: 3,
                clip_y_origin: 4,
                alpha_map: 0x0040_000a,
                alpha_x_origin: -7,
                alpha_y_origin: 8,
                component_alpha: true,
                subwindow_mode: 1,
                poly_edge: 1,
                poly_mode: 1,
                graphics_exposures: false,
                orphan: Some(OrphanDrawable {
                    width: 1,
                    height: 1,
                    depth: 32,
                    bits_per_pixel: 32,
                    image: vec![0x10, 0x20, 0x30, 0xff],
                }),
            }),
        ),
        r(
            0x0040_000a,
            kinds::PICTURE,
            7,
            Detail::Picture(PictureInfo {
                format: 0,
                source: PictureSource::Gradient(GradientInfo {
                    kind: GradientKind::Radial,
                    params: vec![1, 2, 3, 4, 5, 6],
                    stops: vec![
                        GradientStop {
                            offset: 0,
                            color: [1, 2, 3, 4],
                        },
                        GradientStop {
                            offset: 0x10000,
                            color: [5, 6, 7, 8],
                        },
                    ],
                }),
                repeat: 0,
                filter: String::new(),
                filter_params: vec![],
                transform: None,
                clip: Clip::None,
                clip_x_origin: 0,
                clip_y_origin: 0,
                alpha_map: 0,
                alpha_x_origin: 0,
                alpha_y_origin: 0,
                component_alpha: false,
                subwindow_mode: 0,
                poly_edge: 0,
                poly_mode: 0,
                graphics_exposures: true,
                orphan: None,
            }),
        ),
        r(
            0x0040_000b,
            kinds::GLYPHSET,
            8,
            Detail::GlyphSet(GlyphSetInfo {
                format: 0x25,
                depth: 8,
                glyphs: vec![Glyph {
                    id: 65,
                    width: 3,
                    height: 2,
                    x: -1,
                    y: 9,
                    x_off: 7,
                    y_off: 0,
                    image: vec![1, 2, 3, 0, 4, 5, 6, 0],
                }],
            }),
        ),
        r(0x4040_000c, "PASSIVEGRAB", 40, Detail::Other),
        r(
            0x4040_000f,
            kinds::PASSIVE_GRAB,
            11,
            Detail::PassiveGrab(PassiveGrabInfo {
                window: 0x525,
                modifiers: 0x8000,
                detail: 39,
                device: 3,
                level: 1,
                event_type: 2,
                keyboard_mode: 1,
                detail_mask: Some(vec![0x55; 32]),
                ..Default::default()
            }),
        ),
        r(
            0x4040_000d,
            kinds::XFIXES_SELECTION_CLIENT,
            41,
            Detail::SelectionInput(SelectionInputInfo {
                window: 0x0000_0525,
                selection: 0x1f3,
                event_mask: 7,
            }),
        ),
        r(
            0x4040_000e,
            kinds::XKB_CLIENT,
            42,
            Detail::XkbInterest(XkbInterestInfo {
                device: 3,
                device_name: "Virtual core keyboard".into(),
                state: 0x3fff,
                names: 0x3fff,
                access_x: 0x7f,
                ext_dev: 0x1f,
                controls: 0xf800_3fff,
                indicator_state: 0xffff_ffff,
                indicator_map: 1,
                compat_map: 3,
                bell: 1,
                action_message: 1,
                auto_ctrls: 0x200,
                auto_ctrl_values: 0x200,
            }),
        ),
        r(
            0x0040_000f,
            kinds::DAMAGE,
            43,
            Detail::Damage(DamageInfo {
                drawable: 0x0000_0526,
                level: 2,
            }),
        ),
        r(
            0x0040_0010,
            kinds::SHM_SEG,
            44,
            Detail::ShmSegment(ShmSegmentInfo {
                shmid: Some(32789),
                size: 0x10_0000,
                read_only: false,
            }),
        ),
        r(
            0x0040_0011,
            kinds::SHM_SEG,
            44,
            Detail::ShmSegment(ShmSegmentInfo {
                shmid: None,
                size: 4096,
                read_only: true,
            }),
        ),
        r(
            0x0040_0012,
            kinds::PIXMAP,
            2,
            Detail::ShmPixmap(ShmPixmapInfo {
                pixmap: PixmapInfo {
                    depth: 24,
                    bits_per_pixel: 32,
                    width: 16,
                    height: 8,
                },
                segment: 0x0040_0010,
                offset: 4096,
            }),
        ),
        r(
            0x0040_0013,
            kinds::GLX_DRAWABLE,
            45,
            Detail::GlxDrawable(GlxDrawableInfo {
                drawable: 0x0040_0001,
            }),
        ),
        r(
            0x0040_0014,
            kinds::PRESENT_EVENT,
            46,
            Detail::PresentEvent(PresentEventInfo {
                window: 0x0040_0001,
                event_mask: 2,
            }),
        ),
    ]
}

fn sample_reply() -> GetResourcesReply {
    GetResourcesReply {
        sequence: 0x1234,
        more: true,
        next_id: 0x0040_0100,
        next_type: 3,
        total: 99,
        xkb: XkbClientState {
            map_notify: 0xff,
            new_keyboard_notify: 7,
            flags: XkbClientState::INITIALISED,
        },
        active_grabs: ACTIVE_GRAB_POINTER | ACTIVE_GRAB_POINTER_IMPLICIT,
        resources: Resources {
            resources: sample_resources(),
        },
    }
}

#[test]
fn query_version_request_bytes() {
    let req = QueryVersionRequest {
        client_major: 1,
        client_minor: 2,
    };
    assert_eq!(
        encode_query_version(140, &req, ByteOrder::Lsb),
        [140, 0, 2, 0, 1, 0, 2, 0]
    );
    assert_eq!(
        encode_query_version(140, &req, ByteOrder::Msb),
        [140, 0, 0, 2, 0, 1, 0, 2]
    );
    for o in [ByteOrder::Lsb, ByteOrder::Msb] {
        let b = encode_query_version(140, &req, o);
        assert_eq!(decode_request(&b, o), Ok(Request::QueryVersion(req)));
    }
}

#[test]
fn query_own_version_request_bytes() {
    let [maj_lo, maj_hi] = MAJOR_VERSION.to_le_bytes();
    let [min_lo, min_hi] = MINOR_VERSION.to_le_bytes();
    assert_eq!(
        encode_query_own_version(140, ByteOrder::Lsb),
        [140, 0, 2, 0, maj_lo, maj_hi, min_lo, min_hi]
    );
    assert_eq!(
        encode_query_own_version(140, ByteOrder::Msb),
        [140, 0, 0, 2, maj_hi, maj_lo, min_hi, min_lo]
    );
    for o in [ByteOrder::Lsb, ByteOrder::Msb] {
        let b = encode_query_own_version(140, o);
        assert_eq!(
            decode_request(&b, o),
            Ok(Request::QueryVersion(QueryVersionRequest {
                client_major: MAJOR_VERSION,
                client_minor: MINOR_VERSION,
            }))
        );
    }
}

#[test]
fn get_resources_request_bytes() {
    let req = GetResourcesRequest {
        start_id: 0x0102_0304,
        start_type: 5,
        max_bytes: 0x1000,
        flags: 3,
    };
    assert_eq!(
        encode_get_resources(141, &req, ByteOrder::Lsb),
        [141, 1, 5, 0, 4, 3, 2, 1, 5, 0, 0, 0, 0, 0x10, 0, 0, 3, 0, 0, 0]
    );
    assert_eq!(
        encode_get_resources(141, &req, ByteOrder::Msb),
        [141, 1, 0, 5, 1, 2, 3, 4, 0, 0, 0, 5, 0, 0, 0x10, 0, 0, 0, 0, 3]
    );
    let b = encode_get_resources(141, &req, ByteOrder::Msb);
    assert_eq!(
        decode_request(&b, ByteOrder::Msb),
        Ok(Request::GetResources(req))
    );
}

#[test]
fn select_client_events_request_bytes() {
    let b = encode_select_client_events(141, CLIENT_EVENTS_ALL, ByteOrder::Lsb);
    assert_eq!(b, [141, 2, 2, 0, 3, 0, 0, 0]);
    assert_eq!(
        decode_request(&b, ByteOrder::Lsb),
        Ok(Request::SelectClientEvents(3))
    );
    let b = encode_select_client_events(141, 0, ByteOrder::Msb);
    assert_eq!(
        decode_request(&b, ByteOrder::Msb),
        Ok(Request::SelectClientEvents(0))
    );
    let b = encode_select_client_events(141, 4, ByteOrder::Lsb);
    assert_eq!(
        decode_request(&b, ByteOrder::Lsb),
        Err(RequestError::BadValue {
            what: "mask",
            value: 4
        })
    );
    assert!(matches!(
        decode_request(&[141, 2, 1, 0], ByteOrder::Lsb),
        Err(RequestError::BadLength(_))
    ));
}

#[test]
fn client_notify_round_trips_both_orders() {
    for order in [ByteOrder::Lsb, ByteOrder::Msb] {
        for state in [CLIENT_EVENT_STARTED, CLIENT_EVENT_GONE] {
            let ev = ClientNotify {
                sequence: 0x1234,
                state,
                client: 0x0060_0000,
            };
            let b = encode_client_notify(90, &ev, order);
            assert_eq!(b.len(), 32);
            assert_eq!(decode_client_notify(&b, 90, order), Ok(ev));
            // Sent with SendEvent: the high bit of the code is set.
            let mut sent = b.clone();
            sent[0] |= 0x80;
            assert_eq!(decode_client_notify(&sent, 90, order), Ok(ev));
            assert!(decode_client_notify(&b, 91, order).is_err());
            assert!(decode_client_notify(&b[..31], 90, order).is_err());
        }
    }
    let mut b = encode_client_notify(
        90,
        &ClientNotify {
            sequence: 1,
            state: 1,
            client: 2,
        },
        ByteOrder::Lsb,
    );
    b[1] = 7;
    assert!(decode_client_notify(&b, 90, ByteOrder::Lsb).is_err());
}

#[test]
fn bad_requests_are_classified() {
    assert_eq!(
        decode_request(&[1, 9, 1, 0], ByteOrder::Lsb),
        Err(RequestError::BadMinor(9))
    );
    assert!(matches!(
        decode_request(&[1, 0, 1, 0], ByteOrder::Lsb),
        Err(RequestError::BadLength(_))
    ));
    assert!(matches!(
        decode_request(
            &[1, 1, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ByteOrder::Lsb
        ),
        Err(RequestError::BadLength(_))
    ));
    let req = GetResourcesRequest {
        flags: 0x800,
        ..GetResourcesRequest::first()
    };
    let b = encode_get_resources(1, &req, ByteOrder::Lsb);
    assert_eq!(
        decode_request(&b, ByteOrder::Lsb),
        Err(RequestError::BadValue {
            what: "flags",
            value: 0x800
        })
    );
}

#[test]
fn query_version_reply_bytes() {
    let rep = QueryVersionReply {
        sequence: 7,
        major: 1,
        minor: 0,
        server_release: 12_101_007,
    };
    let b = encode_query_version_reply(&rep, ByteOrder::Lsb);
    assert_eq!(b.len(), 32);
    assert_eq!(&b[..12], &[1, 0, 7, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
    assert_eq!(&b[12..16], &12_101_007u32.to_le_bytes());
    assert_eq!(decode_query_version_reply(&b, ByteOrder::Lsb), Ok(rep));
    let b = encode_query_version_reply(&rep, ByteOrder::Msb);
    assert_eq!(decode_query_version_reply(&b, ByteOrder::Msb), Ok(rep));
}

#[test]
fn window_record_bytes() {
    let res = &sample_resources()[0];
    let mut w = Writer::new(ByteOrder::Lsb);
    encode_resource(&mut w, res);
    let b = w.into_inner();
    #[rustfmt::skip]
    let expect: Vec<u8> = vec![
        0x01, 0x00, 0x40, 0x00, // id
        1, 0, 0, 0,             // server type
        6, 0, 1, 0,             // name len, detail kind, pad
        16, 0, 0, 0,            // detail len
        b'W', b'I', b'N', b'D', b'O', b'W', 0, 0,
        3, 0, 0, 0,             // bg pixmap, border pixel
        0x02, 0x00, 0x40, 0x00,
        0xef, 0xcd, 0xab, 0x00,
        0x05, 0x00, 0x40, 0x00,
    ];
    assert_eq!(b, expect);
}

#[test]
fn reply_round_trips_both_orders() {
    let rep = sample_reply();
    for o in [ByteOrder::Lsb, ByteOrder::Msb] {
        let b = encode_get_resources_reply(&rep, o);
        assert_eq!(b.len() % 4, 0);
        assert_eq!(decode_get_resources_reply(&b, o), Ok(rep.clone()));
        // The header says what the buffer holds.
        let words = match o {
            ByteOrder::Lsb => u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            ByteOrder::Msb => u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        };
        assert_eq!(words as usize * 4 + 32, b.len());
    }
    let json = serde_json::to_string(&rep).unwrap();
    let back: GetResourcesReply = serde_json::from_str(&json).unwrap();
    assert_eq!(back, rep);
}

#[test]
fn every_truncation_is_an_error() {
    let b = encode_get_resources_reply(&sample_reply(), ByteOrder::Lsb);
    for n in 0..b.len() {
        assert!(
            decode_get_resources_reply(&b[..n], ByteOrder::Lsb).is_err(),
            "prefix {n}"
        );
    }
}

#[test]
fn huge_count_is_rejected_without_allocating() {
    let mut b = encode_get_resources_reply(
        &GetResourcesReply {
            resources: Resources::default(),
            ..sample_reply()
        },
        ByteOrder::Lsb,
    );
    b[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        decode_get_resources_reply(&b, ByteOrder::Lsb),
        Err(DecodeError::CountTooLarge { offset: 32, .. })
    ));
}

#[test]
fn paging_helper() {
    let first = GetResourcesRequest::first();
    let rep = sample_reply();
    let next = first.next_after(&rep).unwrap();
    assert_eq!((next.start_id, next.start_type), (0x0040_0100, 3));
    assert!(first
        .next_after(&GetResourcesReply { more: false, ..rep })
        .is_none());
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), msb in any::<bool>()) {
        let o = if msb { ByteOrder::Msb } else { ByteOrder::Lsb };
        let _ = decode_get_resources_reply(&bytes, o);
        let _ = decode_query_version_reply(&bytes, o);
        let _ = decode_request(&bytes, o);
    }

    #[test]
    fn mutated_replies_never_panic(idx in 0usize..4096, val in any::<u8>(), msb in any::<bool>()) {
        let o = if msb { ByteOrder::Msb } else { ByteOrder::Lsb };
        let mut b = encode_get_resources_reply(&sample_reply(), o);
        let i = idx % b.len();
        b[i] = val;
        if let Ok(rep) = decode_get_resources_reply(&b, o) {
            // Whatever decodes must survive a re-encode unchanged (padding bytes are ignored).
            let again = encode_get_resources_reply(&rep, o);
            prop_assert_eq!(decode_get_resources_reply(&again, o), Ok(rep));
        }
    }
}

#[test]
fn selection_input_record_bytes() {
    let res = Resource {
        id: 0x4040_0001,
        kind: ResourceKind(kinds::XFIXES_SELECTION_CLIENT.into()),
        server_type: 0x21,
        detail: Detail::SelectionInput(SelectionInputInfo {
            window: 0x0102_0304,
            selection: 0x45,
            event_mask: 5,
        }),
    };
    let mut w = Writer::new(ByteOrder::Lsb);
    encode_resource(&mut w, &res);
    let b = w.into_inner();
    let name = kinds::XFIXES_SELECTION_CLIENT.as_bytes();
    assert_eq!(&b[0..8], &[1, 0, 0x40, 0x40, 0x21, 0, 0, 0]);
    assert_eq!(&b[8..16], &[name.len() as u8, 0, 9, 0, 12, 0, 0, 0]);
    let at = 16 + name.len() + pad4(name.len());
    assert_eq!(&b[at..], &[4, 3, 2, 1, 0x45, 0, 0, 0, 5, 0, 0, 0]);
}

#[test]
fn version_1_1_flags() {
    assert_eq!(FLAGS_V1_0, 7);
    assert_eq!(FLAGS_V1_1, 15);
    // A request with every defined flag decodes; bit 10 is still undefined.
    let req = GetResourcesRequest::first();
    let b = encode_get_resources(1, &req, ByteOrder::Lsb);
    assert_eq!(
        decode_request(&b, ByteOrder::Lsb),
        Ok(Request::GetResources(req))
    );
    let bad = GetResourcesRequest {
        flags: 0x800,
        ..req
    };
    let b = encode_get_resources(1, &bad, ByteOrder::Lsb);
    assert!(matches!(
        decode_request(&b, ByteOrder::Lsb),
        Err(RequestError::BadValue { value: 0x800, .. })
    ));
}

#[test]
fn versions_1_2_to_1_8_flags() {
    assert_eq!(MINOR_VERSION, 8);
    assert_eq!(FLAG_XKB_SELECTIONS, 0x10);
    assert_eq!(FLAGS_V1_2, 31);
    assert_eq!(FLAG_PASSIVE_GRABS, 0x20);
    assert_eq!(FLAGS_V1_3, 63);
    assert_eq!(FLAG_DAMAGE, 0x40);
    assert_eq!(FLAGS_V1_4, 127);
    assert_eq!(FLAG_SHM, 0x80);
    assert_eq!(FLAGS_V1_6, 255);
    assert_eq!(FLAG_GLX_DRAWABLES, 0x100);
    assert_eq!(FLAG_PRESENT_EVENTS, 0x200);
    assert_eq!(FLAGS_V1_7, 1023);
    assert_eq!(FLAG_ORPHAN_DRAWABLES, 0x400);
    assert_eq!(FLAGS_ALL, 2047);
    assert_eq!(flags_for_minor(0), FLAGS_V1_0);
    assert_eq!(flags_for_minor(1), FLAGS_V1_1);
    assert_eq!(flags_for_minor(2), FLAGS_V1_2);
    assert_eq!(flags_for_minor(3), FLAGS_V1_3);
    assert_eq!(flags_for_minor(4), FLAGS_V1_4);
    assert_eq!(flags_for_minor(5), FLAGS_V1_6);
    // 1.6 added a request, no flag.
    assert_eq!(flags_for_minor(6), FLAGS_V1_6);
    assert_eq!(flags_for_minor(7), FLAGS_V1_7);
    // 1.8 added a request (GetActiveGrabs) and a flag (orphan drawables).
    assert_eq!(flags_for_minor(8), FLAGS_ALL);
    assert_eq!(
        decode_request(
            &encode_get_active_grabs(140, ByteOrder::Msb),
            ByteOrder::Msb
        ),
        Ok(Request::GetActiveGrabs)
    );
    let mut long = encode_get_active_grabs(140, ByteOrder::Lsb);
    long[2] = 2;
    long.extend_from_slice(&[0; 4]);
    assert!(matches!(
        decode_request(&long, ByteOrder::Lsb),
        Err(RequestError::BadLength(_))
    ));
    let req = GetResourcesRequest::first();
    assert_eq!(req.flags, FLAGS_ALL);
}

#[test]
fn glx_drawable_record_bytes() {
    let res = Resource {
        id: 0x0040_0004,
        kind: ResourceKind(kinds::GLX_DRAWABLE.into()),
        server_type: 0x30,
        detail: Detail::GlxDrawable(GlxDrawableInfo {
            drawable: 0x0040_0002,
        }),
    };
    let mut w = Writer::new(ByteOrder::Msb);
    encode_resource(&mut w, &res);
    let b = w.into_inner();
    let name = kinds::GLX_DRAWABLE.as_bytes();
    assert_eq!(&b[8..16], &[0, name.len() as u8, 15, 0, 0, 0, 0, 4]);
    let at = 16 + name.len() + pad4(name.len());
    assert_eq!(&b[at..], &[0, 0x40, 0, 2]);
    let mut r = Reader::new(&b, ByteOrder::Msb, 0);
    assert_eq!(decode_resource(&mut r).unwrap(), res);
}

#[test]
fn damage_record_bytes() {
    let res = Resource {
        id: 0x0040_0002,
        kind: ResourceKind(kinds::DAMAGE.into()),
        server_type: 0x21,
        detail: Detail::Damage(DamageInfo {
            drawable: 0x0102_0304,
            level: 1,
        }),
    };
    let mut w = Writer::new(ByteOrder::Msb);
    encode_resource(&mut w, &res);
    let b = w.into_inner();
    let name = kinds::DAMAGE.as_bytes();
    assert_eq!(&b[8..16], &[0, name.len() as u8, 12, 0, 0, 0, 0, 8]);
    let at = 16 + name.len() + pad4(name.len());
    assert_eq!(&b[at..], &[1, 2, 3, 4, 1, 0, 0, 0]);
    // A level beyond NonEmpty is refused by the decoder.
    let mut bad = b.clone();
    bad[at + 4] = 4;
    let mut r = Reader::new(&bad, ByteOrder::Msb, 0);
    assert!(decode_resource(&mut r).is_err());
}

#[test]
fn passive_grab_record_bytes() {
    let mut mods = vec![0xffu8; 32];
    mods[0] = 0xfe; // AnyModifier except "no modifier" (UngrabKey with modifiers 0)
    let grab = PassiveGrabInfo {
        window: 0x0040_0001,
        confine_to: 0x0040_0002,
        cursor: 0x0040_0003,
        event_mask: 0x0000_000c,
        modifiers: 0x8000,
        detail: 3,
        device: 2,
        level: 1,
        event_type: 4,
        owner_events: true,
        pointer_mode: 1,
        keyboard_mode: 0,
        modifier_mask: Some(mods.clone()),
        detail_mask: None,
    };
    assert!(grab.is_core_button() && !grab.is_core_key());
    let res = Resource {
        id: 0x4040_0005,
        kind: ResourceKind(kinds::PASSIVE_GRAB.into()),
        server_type: 0x0b,
        detail: Detail::PassiveGrab(grab.clone()),
    };
    let mut w = Writer::new(ByteOrder::Msb);
    encode_resource(&mut w, &res);
    let b = w.into_inner();
    let name = kinds::PASSIVE_GRAB.as_bytes();
    assert_eq!(&b[8..16], &[0, name.len() as u8, 11, 0, 0, 0, 0, 60]);
    let at = 16 + name.len() + pad4(name.len());
    assert_eq!(
        &b[at..at + 28],
        &[
            0, 0x40, 0, 1, 0, 0x40, 0, 2, 0, 0x40, 0, 3, 0, 0, 0, 0x0c, 0, 0, 0x80, 0, 0, 3, 0, 2,
            1, 4, 0b0_1011, 0
        ]
    );
    assert_eq!(&b[at + 28..], &mods[..]);
    let reply = GetResourcesReply {
        sequence: 1,
        more: false,
        next_id: 0,
        next_type: 0,
        total: 1,
        xkb: XkbClientState::default(),
        active_grabs: 0,
        resources: Resources {
            resources: vec![res],
        },
    };
    for o in [ByteOrder::Lsb, ByteOrder::Msb] {
        let bytes = encode_get_resources_reply(&reply, o);
        assert_eq!(decode_get_resources_reply(&bytes, o).unwrap(), reply);
    }
    // Undefined flag bits are refused.
    let mut bad = encode_get_resources_reply(&reply, ByteOrder::Msb);
    bad[32 + at + 26] |= 0x80;
    assert!(decode_get_resources_reply(&bad, ByteOrder::Msb).is_err());
}

#[test]
fn xkb_interest_record_bytes() {
    let res = Resource {
        id: 0x4040_0002,
        kind: ResourceKind(kinds::XKB_CLIENT.into()),
        server_type: 0x1e,
        detail: Detail::XkbInterest(XkbInterestInfo {
            device: 3,
            device_name: "kbd".into(),
            state: 0x0102,
            names: 0x0304,
            access_x: 0x0506,
            ext_dev: 0x0708,
            controls: 0x0a0b_0c0d,
            indicator_state: 0x1112_1314,
            indicator_map: 0x2122_2324,
            compat_map: 0x31,
            bell: 0x32,
            action_message: 0x33,
            auto_ctrls: 0x4142_4344,
            auto_ctrl_values: 0x5152_5354,
        }),
    };
    let mut w = Writer::new(ByteOrder::Msb);
    encode_resource(&mut w, &res);
    let b = w.into_inner();
    let name = kinds::XKB_CLIENT.as_bytes();
    assert_eq!(&b[0..8], &[0x40, 0x40, 0, 2, 0, 0, 0, 0x1e]);
    assert_eq!(&b[8..16], &[0, name.len() as u8, 10, 0, 0, 0, 0, 40]);
    let at = 16 + name.len() + pad4(name.len());
    assert_eq!(
        &b[at..],
        &[
            0, 3, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 0x0b, 0x0c, 0x0d, 0x11, 0x12, 0x13, 0x14,
            0x21, 0x22, 0x23, 0x24, 0x31, 0x32, 0x33, 0, 0x41, 0x42, 0x43, 0x44, 0x51, 0x52, 0x53,
            0x54, b'k', b'b', b'd', 0
        ]
    );
    let reply = GetResourcesReply {
        sequence: 1,
        more: false,
        next_id: 0,
        next_type: 0,
        total: 1,
        xkb: XkbClientState::default(),
        active_grabs: 0,
        resources: Resources {
            resources: vec![res],
        },
    };
    for o in [ByteOrder::Lsb, ByteOrder::Msb] {
        let bytes = encode_get_resources_reply(&reply, o);
        assert_eq!(decode_get_resources_reply(&bytes, o).unwrap(), reply);
    }
}

#[test]
fn xkb_client_state_in_the_reply_header() {
    let reply = GetResourcesReply {
        sequence: 7,
        more: false,
        next_id: 0,
        next_type: 0,
        total: 0,
        xkb: XkbClientState {
            map_notify: 0x00ff,
            new_keyboard_notify: 0x0007,
            flags: XkbClientState::INITIALISED | XkbClientState::ANCIENT,
        },
        active_grabs: ACTIVE_GRAB_KEYBOARD,
        resources: Resources::default(),
    };
    let b = encode_get_resources_reply(&reply, ByteOrder::Lsb);
    assert_eq!(b.len(), 32);
    assert_eq!(&b[24..32], &[0xff, 0, 7, 0, 3, 2, 0, 0]);
    // Undefined active-grab bits are refused.
    let mut bad = b.clone();
    bad[29] = 8;
    assert!(decode_get_resources_reply(&bad, ByteOrder::Lsb).is_err());
    assert_eq!(
        decode_get_resources_reply(&b, ByteOrder::Lsb).unwrap(),
        reply
    );
    // A 1.1 server's zero padding decodes as "no XKB state".
    let mut old = b.clone();
    old[24..32].fill(0);
    assert_eq!(
        decode_get_resources_reply(&old, ByteOrder::Lsb)
            .unwrap()
            .xkb,
        XkbClientState::default()
    );
}

#[test]
fn shm_record_bytes() {
    let res = Resource {
        id: 0x0040_0002,
        kind: ResourceKind(kinds::SHM_SEG.into()),
        server_type: 0x22,
        detail: Detail::ShmSegment(ShmSegmentInfo {
            shmid: None,
            size: 0x0102_0304,
            read_only: true,
        }),
    };
    let mut w = Writer::new(ByteOrder::Msb);
    encode_resource(&mut w, &res);
    let b = w.into_inner();
    let name = kinds::SHM_SEG.as_bytes();
    assert_eq!(&b[8..16], &[0, name.len() as u8, 13, 0, 0, 0, 0, 12]);
    let at = 16 + name.len() + pad4(name.len());
    assert_eq!(&b[at..], &[255, 255, 255, 255, 1, 2, 3, 4, 3, 0, 0, 0]);
    // A descriptor flag that disagrees with the shmid is refused.
    let mut bad = b.clone();
    bad[at + 8] = 1;
    let mut r = Reader::new(&bad, ByteOrder::Msb, 0);
    assert!(decode_resource(&mut r).is_err());
    let pm = Resource {
        id: 0x0040_0003,
        kind: ResourceKind(kinds::PIXMAP.into()),
        server_type: 2,
        detail: Detail::ShmPixmap(ShmPixmapInfo {
            pixmap: PixmapInfo {
                depth: 24,
                bits_per_pixel: 32,
                width: 0x0102,
                height: 3,
            },
            segment: 0x0040_0002,
            offset: 0x10,
        }),
    };
    let mut w = Writer::new(ByteOrder::Msb);
    encode_resource(&mut w, &pm);
    let b = w.into_inner();
    let at = 16 + 6 + pad4(6);
    assert_eq!(b[10], 14);
    assert_eq!(
        &b[at..],
        &[24, 32, 0, 0, 1, 2, 0, 3, 0, 0x40, 0, 2, 0, 0, 0, 0x10]
    );
}
