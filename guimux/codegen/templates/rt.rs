//! Runtime helpers of the generated walkers: bounds-checked reads and in-place rewrites of
//! message fields. Message bytes flow through these; every access checks the buffer length and
//! reports `WalkError::Truncated` instead of panicking. (Copied verbatim by guimux-codegen from
//! guimux/codegen/templates/rt.rs.)

use crate::fields::{ByteOrder, Kind, Rewriter, WalkError};

/// Fail unless `m` holds `need` bytes.
#[inline]
fn need(m: &[u8], need: usize, w: &'static str) -> Result<(), WalkError> {
    if m.len() < need {
        Err(WalkError::Truncated {
            what: w,
            need,
            have: m.len(),
        })
    } else {
        Ok(())
    }
}

/// The BIG-REQUESTS shift of a request: 4 when its 16-bit length field is 0 (the real length
/// then occupies bytes 4..8 and every later field moves by 4), else 0.
#[inline]
pub(super) fn big(m: &[u8], o: ByteOrder, w: &'static str) -> Result<usize, WalkError> {
    need(m, 4, w)?;
    if o.u16(m, 2) == 0 {
        need(m, 8, w)?;
        Ok(4)
    } else {
        Ok(0)
    }
}

/// Read an unsigned field of `size` bytes (1, 2, 4; 8 reads the first word) at `p`.
#[inline]
pub(super) fn rd(m: &[u8], p: usize, size: usize, o: ByteOrder, w: &'static str) -> Result<u32, WalkError> {
    need(m, p.saturating_add(size), w)?;
    Ok(match size {
        1 => u32::from(m[p]),
        2 => u32::from(o.u16(m, p)),
        _ => o.u32(m, p),
    })
}

/// Hand the field of `size` bytes at `p` to the rewriter and store what it returns.
#[inline]
pub(super) fn vis(
    m: &mut [u8],
    p: usize,
    size: usize,
    k: Kind,
    o: ByteOrder,
    rw: &mut dyn Rewriter,
    w: &'static str,
) -> Result<(), WalkError> {
    let v = rd(m, p, size, o, w)?;
    let n = rw.rewrite(k, v);
    match size {
        1 => m[p] = n as u8,
        2 => o.put_u16(m, p, n as u16),
        _ => o.put_u32(m, p, n),
    }
    Ok(())
}

/// Integer division of a length expression; division by zero is a malformed message.
#[inline]
pub(super) fn div(a: u32, b: u32, w: &'static str) -> Result<u32, WalkError> {
    a.checked_div(b).ok_or(WalkError::Truncated {
        what: w,
        need: usize::MAX,
        have: 0,
    })
}

/// Validate a list count: `n` elements of at least `min` bytes must fit in the rest of `m`.
#[inline]
pub(super) fn cnt(m: &[u8], p: usize, n: u32, min: usize, w: &'static str) -> Result<usize, WalkError> {
    let n = n as usize;
    let end = p.saturating_add(n.saturating_mul(min));
    need(m, end, w)?;
    Ok(n)
}

/// Round `p` up to a multiple of `a` (a power of two), counted from the message start.
#[inline]
pub(super) fn align(p: usize, a: usize) -> usize {
    p.saturating_add(a - 1) & !(a - 1)
}
