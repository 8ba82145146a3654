//! Shared test scaffolding. Each test file compiles the checked-in generated tables
//! (guimux/src/generated) together with guimux's field contract (guimux/src/fields.rs) at its
//! crate root, so the tables are tested exactly as checked in, independently of the rest of
//! guimux.
#![allow(dead_code)]

use crate::fields::{Kind, Rewriter};
use crate::generated;

/// A rewriter that records every visit and replaces each value with `f(value)`.
pub struct Map {
    pub seen: Vec<(Kind, u32)>,
    pub f: fn(u32) -> u32,
}

impl Map {
    pub fn new(f: fn(u32) -> u32) -> Self {
        Map {
            seen: Vec::new(),
            f,
        }
    }
    pub fn ident() -> Self {
        Map::new(|v| v)
    }
}

impl Rewriter for Map {
    fn rewrite(&mut self, kind: Kind, value: u32) -> u32 {
        self.seen.push((kind, value));
        (self.f)(value)
    }
}

/// Concatenate x11rb-protocol's piecewise request buffers.
pub fn cat(parts: &[std::borrow::Cow<'_, [u8]>]) -> Vec<u8> {
    parts.iter().flat_map(|c| c.iter().copied()).collect()
}

/// Index of an extension by header.
pub fn ext(header: &str) -> usize {
    generated::EXTENSIONS
        .iter()
        .position(|e| e.header == header)
        .expect("extension in tables")
}

/// The test mapping: flips bits in every byte of a value, so a field at a wrong offset or of a
/// wrong width shows up in the byte comparison. It is its own inverse.
pub fn x(v: u32) -> u32 {
    v ^ 0x0101_0111
}

/// What `x` does to a one-byte field (KEYCODE): only the low byte is stored.
pub fn xk(v: u8) -> u8 {
    v ^ 0x11
}

/// What `x` does to a two-byte field (XInput DeviceId): only the low 16 bits are stored.
pub fn xd(v: u16) -> u16 {
    x(u32::from(v)) as u16
}

/// Which walker a check uses.
#[derive(Clone, Copy, Debug)]
pub enum Family {
    Request,
    Reply,
    Event,
    Generic,
}

/// Walk `before` with the `x` mapping and assert that exactly `expect` was visited (in order)
/// and that the result equals `after`; then walk `after` again and get `before` back.
pub fn check(
    fam: Family,
    ext: usize,
    code: u16,
    order: crate::fields::ByteOrder,
    before: &[u8],
    after: &[u8],
    expect: &[(Kind, u32)],
) {
    let walk = |m: &mut [u8], rw: &mut Map| match fam {
        Family::Request => generated::walk_request(ext, code as u8, m, order, rw),
        Family::Reply => generated::walk_reply(ext, code as u8, m, order, rw),
        Family::Event => generated::walk_event(ext, code as u8, m, order, rw),
        Family::Generic => generated::walk_generic_event(ext, code, m, order, rw),
    };
    let mut m = before.to_vec();
    let mut rw = Map::new(x);
    walk(&mut m, &mut rw).expect("walk");
    assert_eq!(rw.seen, expect, "visited fields of {fam:?} {ext}/{code}");
    assert_eq!(m, after, "rewritten bytes of {fam:?} {ext}/{code}");
    let mut back = Map::new(x);
    walk(&mut m, &mut back).expect("walk back");
    assert_eq!(m, before, "round trip of {fam:?} {ext}/{code}");
}
