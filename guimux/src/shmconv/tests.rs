//! Unit tests of `shmconv`: application MIT-SHM requests built byte by byte go through
//! `convert` and `reply` against segments held as plain vectors ([`VecMem`], also used by the
//! engine's tests), and the core requests, replies and segment bytes that come out are checked.

use super::codes::{BAD_VALUE, PUT_IMAGE};
use super::layout::Z_PIXMAP;
use super::request::header;
use super::*;
use crate::fields::ByteOrder;
use std::collections::HashMap;
use std::os::fd::OwnedFd;

/// Segments as plain vectors (also used by the engine's tests).
#[derive(Debug, Default)]
pub(crate) struct VecMem(pub(crate) HashMap<u32, Vec<u8>>);

impl SegmentMemory for VecMem {
    fn attach_sysv(&mut self, _: u32, _: u32, _: bool) -> Result<(), String> {
        Err("not in unit tests".into())
    }
    fn attach_fd(&mut self, _: u32, _: OwnedFd, _: bool) -> Result<(), String> {
        Err("not in unit tests".into())
    }
    fn create(&mut self, _: u32, _: u32, _: bool) -> Result<OwnedFd, String> {
        Err("not in unit tests".into())
    }
    fn detach(&mut self, seg: u32) {
        self.0.remove(&seg);
    }
    fn len(&self, seg: u32) -> Option<usize> {
        self.0.get(&seg).map(Vec::len)
    }
    fn read_only(&self, _: u32) -> bool {
        false
    }
    fn read(&self, seg: u32, offset: usize, out: &mut [u8]) -> bool {
        match self
            .0
            .get(&seg)
            .and_then(|v| v.get(offset..offset + out.len()))
        {
            Some(b) => {
                out.copy_from_slice(b);
                true
            }
            None => false,
        }
    }
    fn write(&mut self, seg: u32, offset: usize, data: &[u8]) -> bool {
        match self
            .0
            .get_mut(&seg)
            .and_then(|v| v.get_mut(offset..offset + data.len()))
        {
            Some(b) => {
                b.copy_from_slice(data);
                true
            }
            None => false,
        }
    }
    fn segments(&self) -> Vec<SegmentInfo> {
        Vec::new()
    }
}

fn formats() -> ImageFormats {
    ImageFormats {
        bitmap_pad: 32,
        formats: vec![(1, 1, 32), (24, 32, 32)],
    }
}

fn ctx<'a>(f: &'a ImageFormats) -> Ctx<'a> {
    Ctx {
        order: ByteOrder::Little,
        major: 130,
        first_event: 65,
        first_error: 128,
        app: f,
        server: f,
        owner: (1000, 1000),
    }
}

#[allow(clippy::too_many_arguments)]
fn shm_put(
    tw: u16,
    th: u16,
    sx: u16,
    sy: u16,
    w: u16,
    h: u16,
    send_event: bool,
    seg: u32,
    offset: u32,
) -> Vec<u8> {
    let o = ByteOrder::Little;
    let mut r = header(o, 130, minor::PUT_IMAGE, 40);
    o.put_u32(&mut r, 4, 0x0020_0001); // drawable
    o.put_u32(&mut r, 8, 0x0020_0002); // gc
    for (i, v) in [tw, th, sx, sy, w, h, 5, 6].iter().enumerate() {
        o.put_u16(&mut r, 12 + 2 * i, *v);
    }
    r[28] = 24;
    r[29] = Z_PIXMAP;
    r[30] = u8::from(send_event);
    o.put_u32(&mut r, 32, seg);
    o.put_u32(&mut r, 36, offset);
    r
}

#[test]
fn put_image_reads_the_sub_rectangle_and_completes() {
    let f = formats();
    let mut mem = VecMem::default();
    // 4×3 image, pixel value = y * 16 + x, at offset 8.
    let mut seg = vec![0u8; 8 + 4 * 3 * 4];
    for y in 0..3u32 {
        for x in 0..4u32 {
            let at = 8 + ((y * 4 + x) * 4) as usize;
            seg[at..at + 4].copy_from_slice(&(y * 16 + x).to_le_bytes());
        }
    }
    mem.0.insert(7, seg);
    let mut ids = |id: u32| id + 0x100_0000;
    let outs = convert(
        &ctx(&f),
        &shm_put(4, 3, 1, 1, 2, 2, true, 7, 8),
        &mem,
        &mut ids,
        9,
    );
    assert_eq!(outs.len(), 2, "{outs:?}");
    let Out::Request { bytes, conv: None } = &outs[0] else {
        panic!("{outs:?}")
    };
    let o = ByteOrder::Little;
    assert_eq!((bytes[0], bytes[1]), (PUT_IMAGE, Z_PIXMAP));
    assert_eq!(o.u32(bytes, 4), 0x0120_0001, "drawable in server values");
    assert_eq!(o.u32(bytes, 8), 0x0120_0002, "gc in server values");
    assert_eq!((o.u16(bytes, 12), o.u16(bytes, 14)), (2, 2));
    assert_eq!((o.u16(bytes, 16), o.u16(bytes, 18)), (5, 6));
    let px: Vec<u32> = bytes[24..]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(px, vec![0x11, 0x12, 0x21, 0x22]);
    let Out::Request {
        conv: Some(Conv::Completion(ev)),
        ..
    } = &outs[1]
    else {
        panic!("{outs:?}")
    };
    assert_eq!(ev[0], 65);
    assert_eq!(o.u32(&ev[..], 4), 0x0020_0001, "the app's own drawable ID");
    assert_eq!((o.u16(&ev[..], 8), ev[10]), (3, 130));
    assert_eq!((o.u32(&ev[..], 12), o.u32(&ev[..], 16)), (7, 8));
}

#[test]
fn large_images_are_split_into_bands_and_bad_input_is_an_error() {
    let f = formats();
    let mut mem = VecMem::default();
    mem.0.insert(1, vec![0u8; 1000 * 200 * 4]);
    let mut ids = |id: u32| id;
    let outs = convert(
        &ctx(&f),
        &shm_put(1000, 200, 0, 0, 1000, 200, false, 1, 0),
        &mem,
        &mut ids,
        9,
    );
    assert!(outs.len() >= 4, "800 KB must take several requests");
    let mut rows = 0;
    for o in &outs {
        let Out::Request { bytes, .. } = o else {
            panic!("{o:?}")
        };
        assert!(bytes.len() <= MAX_REQUEST_BYTES);
        assert_eq!(ByteOrder::Little.u16(bytes, 2) as usize * 4, bytes.len());
        rows += ByteOrder::Little.u16(bytes, 14);
    }
    assert_eq!(rows, 200);
    // Unknown segment: BadShmSeg (the app's first error).
    let outs = convert(
        &ctx(&f),
        &shm_put(10, 10, 0, 0, 10, 10, false, 2, 0),
        &mem,
        &mut ids,
        9,
    );
    assert_eq!(
        outs,
        vec![Out::Error {
            code: 128,
            value: 2
        }]
    );
    // Past the end of the segment: BadValue.
    let outs = convert(
        &ctx(&f),
        &shm_put(1000, 200, 0, 0, 10, 10, false, 1, 4),
        &mem,
        &mut ids,
        9,
    );
    assert!(
        matches!(
            outs[..],
            [Out::Error {
                code: BAD_VALUE,
                ..
            }]
        ),
        "{outs:?}"
    );
    // A truncated request is an error, never a panic.
    let outs = convert(
        &ctx(&f),
        &shm_put(10, 10, 0, 0, 10, 10, false, 1, 0)[..20],
        &mem,
        &mut ids,
        9,
    );
    assert!(matches!(outs[..], [Out::Error { .. }]));
}

#[test]
fn get_image_reply_lands_in_the_segment() {
    let f = formats();
    let mut mem = VecMem::default();
    mem.0.insert(3, vec![0u8; 64]);
    let o = ByteOrder::Little;
    let conv = Conv::GetImage {
        seg: 3,
        offset: 16,
        format: Z_PIXMAP,
        width: 2,
        height: 2,
    };
    let mut msg = vec![0u8; 32 + 16];
    msg[0] = 1;
    msg[1] = 24;
    o.put_u32(&mut msg, 4, 4);
    o.put_u32(&mut msg, 8, 0x21);
    for (i, b) in msg[32..].iter_mut().enumerate() {
        *b = i as u8 + 1;
    }
    let out = reply_of(&f, &conv, &msg, &mut mem);
    assert_eq!((out[0], out[1]), (1, 24));
    assert_eq!(o.u32(&out, 8), 0x21);
    assert_eq!(o.u32(&out, 12), 16, "size");
    assert_eq!(&mem.0[&3][16..32], &msg[32..]);
    assert_eq!(&mem.0[&3][..16], &[0u8; 16]);
    // Does not fit: an error for the app, memory untouched.
    let conv = Conv::GetImage {
        seg: 3,
        offset: 60,
        format: Z_PIXMAP,
        width: 2,
        height: 2,
    };
    assert!(reply(&ctx(&f), &conv, &msg, &mut mem).is_err());
}

fn reply_of(f: &ImageFormats, conv: &Conv, msg: &[u8], mem: &mut VecMem) -> [u8; 32] {
    reply(&ctx(f), conv, msg, mem).expect("reply")
}

proptest::proptest! {
    /// Any bytes after an MIT-SHM major opcode: a conversion or an error, never a panic;
    /// every request emitted is well formed and within the core limit.
    #[test]
    fn arbitrary_requests_never_panic(
        minor in 0u8..10,
        body in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        seg_len in 0usize..4096,
    ) {
        let f = formats();
        let mut mem = VecMem::default();
        mem.0.insert(1, vec![0u8; seg_len]);
        let mut req = vec![130u8, minor];
        req.extend_from_slice(&body);
        if req.len() < 4 {
            req.resize(4, 0);
        }
        let mut ids = |id: u32| id;
        for o in convert(&ctx(&f), &req, &mem, &mut ids, 9) {
            if let Out::Request { bytes, .. } = o {
                proptest::prop_assert!(bytes.len() <= MAX_REQUEST_BYTES);
                proptest::prop_assert_eq!(
                    ByteOrder::Little.u16(&bytes, 2) as usize * 4,
                    bytes.len()
                );
            }
        }
        let _ = effect(&req, ByteOrder::Little);
    }

    /// Any GetImage reply bytes: a reply or an error for the app, never a panic.
    #[test]
    fn arbitrary_get_image_replies_never_panic(
        data in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
        w in 0u16..40, h in 0u16..40, format in 0u8..4, offset in 0u32..5000,
    ) {
        let f = formats();
        let mut mem = VecMem::default();
        mem.0.insert(1, vec![0u8; 4096]);
        let conv = Conv::GetImage { seg: 1, offset, format, width: w, height: h };
        let _ = reply(&ctx(&f), &conv, &data, &mut mem);
    }
}

#[test]
fn effects_parse_and_query_version_is_answered() {
    let o = ByteOrder::Little;
    let mut r = header(o, 130, minor::ATTACH, 16);
    o.put_u32(&mut r, 4, 5);
    o.put_u32(&mut r, 8, 77);
    assert_eq!(
        effect(&r, o),
        Some(Effect::AttachSysv {
            seg: 5,
            shmid: 77,
            read_only: false
        })
    );
    assert_eq!(effect(&r[..10], o), None);
    let f = formats();
    let out = reply_of(
        &f,
        &Conv::QueryVersion { uid: 1, gid: 2 },
        &[0u8; 32],
        &mut VecMem::default(),
    );
    assert_eq!(
        (out[0], out[1], o.u16(&out, 8), o.u16(&out, 10)),
        (1, 0, 1, 2)
    );
}
