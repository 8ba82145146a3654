//! Message boundaries. Raw bytes of either direction flow in; the length of the next complete
//! message (or "need more bytes") flows out. Handles the connection setup handshake, the
//! BIG-REQUESTS length-0 form, replies with their length field, 32-byte events and errors, and
//! XGE GenericEvents. Pure functions over buffers.

use crate::fields::ByteOrder;

/// Why a byte stream cannot be framed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A request whose length field is zero but whose BIG-REQUESTS length is smaller than the
    /// header itself, or a length the protocol forbids.
    #[error("malformed request header at stream offset {offset}: length {length} words")]
    BadRequestLength {
        /// Byte offset of the request in the stream (as counted by the caller).
        offset: u64,
        /// The length value found.
        length: u64,
    },
    /// The first byte of the setup request is neither 'l' nor 'B'.
    #[error("setup request starts with byte {0:#04x}, expected 'l' or 'B'")]
    BadByteOrder(u8),
    /// A request larger than the limit the engine accepts.
    #[error("request of {bytes} bytes exceeds the {limit} byte limit")]
    TooLarge {
        /// Size of the request.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
}

/// Largest single request accepted (BIG-REQUESTS allows up to 16 GiB; servers cap far lower).
pub const MAX_REQUEST_BYTES: u64 = 256 * 1024 * 1024;

/// Length in bytes of the client's setup request at the start of `buf`, if complete.
pub fn setup_request_len(buf: &[u8]) -> Result<Option<(usize, ByteOrder)>, FrameError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let order = match buf[0] {
        b'l' => ByteOrder::Little,
        b'B' => ByteOrder::Big,
        other => return Err(FrameError::BadByteOrder(other)),
    };
    if buf.len() < 12 {
        return Ok(None);
    }
    let n = order.u16(buf, 6) as usize;
    let d = order.u16(buf, 8) as usize;
    let len = 12 + pad4(n) + pad4(d);
    Ok((buf.len() >= len).then_some((len, order)))
}

/// Length in bytes of the server's setup reply (Success, Failed or Authenticate) at the start of
/// `buf`, if complete.
pub fn setup_reply_len(buf: &[u8], order: ByteOrder) -> Option<usize> {
    if buf.len() < 8 {
        return None;
    }
    let len = 8 + 4 * order.u16(buf, 6) as usize;
    (buf.len() >= len).then_some(len)
}

/// Size of the next request at the start of `buf`: `Ok(Some((total_len, header_len)))` where
/// `header_len` is 4, or 8 for the BIG-REQUESTS form. `Ok(None)` when more bytes are needed.
pub fn request_len(
    buf: &[u8],
    order: ByteOrder,
    offset: u64,
) -> Result<Option<(usize, usize)>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let short = order.u16(buf, 2) as u64;
    let (words, header) = if short != 0 {
        (short, 4)
    } else {
        if buf.len() < 8 {
            return Ok(None);
        }
        let long = order.u32(buf, 4) as u64;
        if long < 2 {
            return Err(FrameError::BadRequestLength {
                offset,
                length: long,
            });
        }
        (long, 8)
    };
    let bytes = words * 4;
    if bytes > MAX_REQUEST_BYTES {
        return Err(FrameError::TooLarge {
            bytes,
            limit: MAX_REQUEST_BYTES,
        });
    }
    Ok((buf.len() as u64 >= bytes).then_some((bytes as usize, header)))
}

/// Size of the next server message (reply, event, error, GenericEvent) at the start of `buf`.
pub fn server_message_len(buf: &[u8], order: ByteOrder) -> Option<usize> {
    if buf.len() < 32 {
        return None;
    }
    let len = match buf[0] & 0x7f {
        // Reply, and XGE GenericEvent (code 35) carry a length of extra 4-byte words.
        1 | 35 => 32 + 4 * order.u32(buf, 4) as usize,
        _ => 32,
    };
    (buf.len() >= len).then_some(len)
}

/// Round up to a multiple of 4.
pub fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// Remove the BIG-REQUESTS extended length from a request so that it has the short form when it
/// fits, or the reverse; returns a request with the requested form. `header_len` is what
/// [`request_len`] returned.
pub fn normalize_request(req: &[u8], header_len: usize, order: ByteOrder) -> Vec<u8> {
    if header_len == 4 {
        return req.to_vec();
    }
    let words = req.len() / 4 - 1;
    if words <= 0xffff {
        let mut out = Vec::with_capacity(req.len() - 4);
        out.extend_from_slice(&req[..2]);
        let mut l = [0u8; 2];
        order.put_u16(&mut l, 0, words as u16);
        out.extend_from_slice(&l);
        out.extend_from_slice(&req[8..]);
        out
    } else {
        req.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_big_requests() {
        // NoOperation: opcode 127, length 1.
        let noop = [127u8, 0, 1, 0];
        assert_eq!(request_len(&noop, ByteOrder::Little, 0), Ok(Some((4, 4))));
        assert_eq!(request_len(&noop[..3], ByteOrder::Little, 0), Ok(None));
        // BIG form: length 0, then 3 words total.
        let big = [127u8, 0, 0, 0, 3, 0, 0, 0, 9, 9, 9, 9];
        assert_eq!(request_len(&big, ByteOrder::Little, 0), Ok(Some((12, 8))));
        assert_eq!(request_len(&big[..11], ByteOrder::Little, 0), Ok(None));
        let bad = [127u8, 0, 0, 0, 1, 0, 0, 0];
        assert!(request_len(&bad, ByteOrder::Little, 7).is_err());
        let be = [127u8, 0, 0, 1];
        assert_eq!(request_len(&be, ByteOrder::Big, 0), Ok(Some((4, 4))));
    }

    #[test]
    fn server_messages() {
        let mut reply = vec![0u8; 40];
        reply[0] = 1;
        reply[4] = 2;
        assert_eq!(server_message_len(&reply, ByteOrder::Little), Some(40));
        assert_eq!(server_message_len(&reply[..39], ByteOrder::Little), None);
        let mut ev = vec![0u8; 32];
        ev[0] = 12;
        assert_eq!(server_message_len(&ev, ByteOrder::Little), Some(32));
        let mut ge = vec![0u8; 36];
        ge[0] = 35;
        ge[7] = 1;
        assert_eq!(server_message_len(&ge, ByteOrder::Big), Some(36));
    }

    #[test]
    fn setup_request() {
        let mut s = vec![b'l', 0, 11, 0, 0, 0, 18, 0, 16, 0, 0, 0];
        s.extend_from_slice(&[0; 20]);
        s.extend_from_slice(&[0; 16]);
        assert_eq!(setup_request_len(&s,), Ok(Some((48, ByteOrder::Little))));
        assert_eq!(setup_request_len(&s[..47]), Ok(None));
        assert!(setup_request_len(b"x").is_err());
    }

    #[test]
    fn normalize_big_to_short() {
        let big = [127u8, 0, 0, 0, 3, 0, 0, 0, 9, 9, 9, 9];
        assert_eq!(
            normalize_request(&big, 8, ByteOrder::Little),
            vec![127, 0, 2, 0, 9, 9, 9, 9]
        );
    }
}
