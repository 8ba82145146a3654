//! Byte-order aware buffer reader and writer. Every multi-byte field of the GUIEVICT protocol
//! flows through these two types, so the rest of the crate never indexes a slice directly and a
//! short or lying buffer always becomes a [`DecodeError`] naming the offset, never a panic.

use crate::DecodeError;

/// Byte order of an X connection (the first byte of the client's connection setup).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ByteOrder {
    /// `'l'`: least significant byte first.
    Lsb,
    /// `'B'`: most significant byte first.
    Msb,
}

impl ByteOrder {
    /// The byte order of the machine this code runs on.
    pub const fn native() -> Self {
        if cfg!(target_endian = "little") {
            Self::Lsb
        } else {
            Self::Msb
        }
    }

    /// The other byte order.
    pub const fn swapped(self) -> Self {
        match self {
            Self::Lsb => Self::Msb,
            Self::Msb => Self::Lsb,
        }
    }
}

/// Appends fields to a growing buffer in one byte order.
#[derive(Debug)]
pub struct Writer {
    buf: Vec<u8>,
    order: ByteOrder,
}

impl Writer {
    /// A new empty writer.
    pub fn new(order: ByteOrder) -> Self {
        Self {
            buf: Vec::new(),
            order,
        }
    }

    /// A new writer with `cap` bytes reserved.
    pub fn with_capacity(order: ByteOrder, cap: usize) -> Self {
        Self {
            buf: Vec::with_capacity(cap),
            order,
        }
    }

    /// Byte order this writer uses.
    pub fn order(&self) -> ByteOrder {
        self.order
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Append one byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Append a 16-bit value.
    pub fn u16(&mut self, v: u16) {
        match self.order {
            ByteOrder::Lsb => self.buf.extend_from_slice(&v.to_le_bytes()),
            ByteOrder::Msb => self.buf.extend_from_slice(&v.to_be_bytes()),
        }
    }

    /// Append a signed 16-bit value.
    pub fn i16(&mut self, v: i16) {
        self.u16(v as u16);
    }

    /// Append a 32-bit value.
    pub fn u32(&mut self, v: u32) {
        match self.order {
            ByteOrder::Lsb => self.buf.extend_from_slice(&v.to_le_bytes()),
            ByteOrder::Msb => self.buf.extend_from_slice(&v.to_be_bytes()),
        }
    }

    /// Append a signed 32-bit value.
    pub fn i32(&mut self, v: i32) {
        self.u32(v as u32);
    }

    /// Append raw bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Append `n` zero bytes.
    pub fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }

    /// Pad with zeros to a multiple of 4 bytes.
    pub fn pad4(&mut self) {
        let n = pad4(self.buf.len());
        self.zeros(n);
    }

    /// Overwrite a 32-bit value at `offset` (which must already have been written).
    pub fn patch_u32(&mut self, offset: usize, v: u32) {
        let b = match self.order {
            ByteOrder::Lsb => v.to_le_bytes(),
            ByteOrder::Msb => v.to_be_bytes(),
        };
        if let Some(dst) = self.buf.get_mut(offset..offset + 4) {
            dst.copy_from_slice(&b);
        }
    }

    /// Drop everything after the first `len` bytes (undo a partial write).
    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    /// The bytes written.
    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }
}

/// Bytes needed to pad `len` to a multiple of 4.
pub const fn pad4(len: usize) -> usize {
    (4 - (len % 4)) % 4
}

/// Reads fields from a buffer in one byte order; every read is bounds-checked.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` in the whole message, for error reports.
    base: usize,
    order: ByteOrder,
}

impl<'a> Reader<'a> {
    /// Read `buf` in byte order `order`; `base` is the offset of `buf` in the whole message.
    pub fn new(buf: &'a [u8], order: ByteOrder, base: usize) -> Self {
        Self {
            buf,
            pos: 0,
            base,
            order,
        }
    }

    /// Byte order of this reader.
    pub fn order(&self) -> ByteOrder {
        self.order
    }

    /// Offset of the next byte in the whole message.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                offset: self.offset(),
                needed: n,
                available: self.remaining(),
                what,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Read one byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    /// Read a 16-bit value.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, what)?;
        let a = [b[0], b[1]];
        Ok(match self.order {
            ByteOrder::Lsb => u16::from_le_bytes(a),
            ByteOrder::Msb => u16::from_be_bytes(a),
        })
    }

    /// Read a signed 16-bit value.
    pub fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        Ok(self.u16(what)? as i16)
    }

    /// Read a 32-bit value.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        let a = [b[0], b[1], b[2], b[3]];
        Ok(match self.order {
            ByteOrder::Lsb => u32::from_le_bytes(a),
            ByteOrder::Msb => u32::from_be_bytes(a),
        })
    }

    /// Read a signed 32-bit value.
    pub fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        Ok(self.u32(what)? as i32)
    }

    /// Read `n` raw bytes.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        self.take(n, what)
    }

    /// Skip `n` bytes.
    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        self.take(n, what).map(|_| ())
    }

    /// Skip padding to the next multiple of 4 of the whole-message offset.
    pub fn pad4(&mut self, what: &'static str) -> Result<(), DecodeError> {
        self.skip(pad4(self.offset()), what)
    }

    /// Fail unless `count` items of at least `min_size` bytes each can still fit; keeps a lying
    /// count from causing a huge allocation.
    pub fn check_count(
        &self,
        count: usize,
        min_size: usize,
        what: &'static str,
    ) -> Result<(), DecodeError> {
        let need = count.saturating_mul(min_size);
        if need > self.remaining() {
            return Err(DecodeError::CountTooLarge {
                offset: self.offset(),
                count,
                available: self.remaining(),
                what,
            });
        }
        Ok(())
    }

    /// A reader over the next `n` bytes; this reader skips past them.
    pub fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader<'a>, DecodeError> {
        let base = self.offset();
        let order = self.order;
        let b = self.take(n, what)?;
        Ok(Reader::new(b, order, base))
    }

    /// Fail if bytes are left over.
    pub fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        if self.remaining() != 0 {
            return Err(DecodeError::TrailingBytes {
                offset: self.offset(),
                extra: self.remaining(),
                what,
            });
        }
        Ok(())
    }
}
