//! Robustness: no byte sequence makes a generated walker panic; malformed input is an `Err`.
//! A deterministic sweep covers every (extension, opcode/code, family, byte order) with
//! buffers shaped to reach deep into layouts (small counts, plausible lengths), and proptest
//! adds fully random buffers.
mod common;
#[path = "../../src/fields.rs"]
#[allow(dead_code)]
mod fields;
#[path = "../../src/generated/mod.rs"]
#[allow(dead_code)]
mod generated;

use fields::ByteOrder;
use proptest::prelude::*;

fn walk_all(ext: usize, code: u8, buf: &[u8], order: ByteOrder) {
    let mut rw = common::Map::new(common::x);
    let _ = generated::walk_request(ext, code, &mut buf.to_vec(), order, &mut rw);
    let _ = generated::walk_reply(ext, code, &mut buf.to_vec(), order, &mut rw);
    let _ = generated::walk_event(ext, code, &mut buf.to_vec(), order, &mut rw);
    let _ = generated::walk_generic_event(ext, u16::from(code), &mut buf.to_vec(), order, &mut rw);
    let _ = generated::error_value_kind(ext, code);
    let _ = generated::request_name(ext, code);
}

/// xorshift: deterministic pseudo-random bytes.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn sweep_every_message_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for ext in 0..generated::EXTENSIONS.len() + 1 {
        for code in 0..=255u8 {
            for order in [ByteOrder::Little, ByteOrder::Big] {
                for len in [0usize, 1, 4, 7, 8, 31, 32, 33, 40, 64, 100, 256] {
                    // Small byte values keep list counts small, so walkers get past them.
                    for max in [1u64, 4, 256] {
                        let buf: Vec<u8> = (0..len).map(|_| (rng.next() % max) as u8).collect();
                        walk_all(ext, code, &buf, order);
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]
    #[test]
    fn random_bytes_never_panic(
        ext in 0usize..40,
        code in any::<u8>(),
        big in any::<bool>(),
        buf in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let order = if big { ByteOrder::Big } else { ByteOrder::Little };
        walk_all(ext, code, &buf, order);
    }
}
