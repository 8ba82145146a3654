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
