//! What a protocol field means to guimux. The generated walkers (`crate::generated`) visit every
//! field of a message whose value is specific to one X server and hand it to a [`Rewriter`],
//! which may replace it in place. This module is the contract between the generator's output and
//! the engine.

/// The meaning of a server-specific value found in a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Any resource ID (xcb types WINDOW, PIXMAP, DRAWABLE, GCONTEXT, FONT, FONTABLE, CURSOR,
    /// COLORMAP, and extension XID types such as PICTURE, GLYPHSET, REGION, …).
    /// The payload names the xcb type, e.g. `"WINDOW"`, `"render:PICTURE"`.
    Xid(&'static str),
    /// An ATOM.
    Atom,
    /// A VISUALID.
    Visual,
    /// A KEYCODE (8 bit) or KEYCODE32.
    Keycode,
    /// A TIMESTAMP.
    Timestamp,
    /// An input device ID: XInput 2 `DeviceId` (16 bit) and the one-byte device IDs of
    /// XInput 1.x. 0 (AllDevices) and 1 (AllMasterDevices) are the same on every server.
    Device,
    /// A one-byte XInput 1.x device ID in an event whose bit 7 says "more events follow": only
    /// the low 7 bits name the device, bit 7 must be kept.
    DeviceMore,
}

/// Receives each server-specific field of a message and returns the value to store in its place.
///
/// `value` is already decoded in the message's byte order; the walker writes the returned value
/// back with the same width and byte order. For a one-byte field (KEYCODE) only the low 8 bits
/// of the result are stored.
pub trait Rewriter {
    /// Rewrite one field value.
    fn rewrite(&mut self, kind: Kind, value: u32) -> u32;
}

/// A rewriter that changes nothing and records what it saw; for tests and for census.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Every field visited, in order: (kind, value).
    pub seen: Vec<(Kind, u32)>,
}

impl Rewriter for Recorder {
    fn rewrite(&mut self, kind: Kind, value: u32) -> u32 {
        self.seen.push((kind, value));
        value
    }
}

/// Why a message could not be walked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WalkError {
    /// The message is shorter than its layout requires.
    #[error("{what}: message too short: need {need} bytes, have {have}")]
    Truncated {
        /// Message name, e.g. `"xproto:CreateWindow"`.
        what: &'static str,
        /// Bytes the layout needs.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// The generator could not express this message (e.g. a union it cannot discriminate); the
    /// engine applies its failure policy.
    #[error("{what}: layout not supported by the generated tables")]
    Unsupported {
        /// Message name.
        what: &'static str,
    },
    /// Opcode / event code / reply not described by xcb-proto.
    #[error("unknown {family} {code} of extension {ext}")]
    Unknown {
        /// `"request"`, `"reply"`, `"event"`, `"error"`.
        family: &'static str,
        /// Extension name as in xcb-proto's `header` (`"xproto"` for core).
        ext: &'static str,
        /// Opcode or code.
        code: u8,
    },
}

/// Byte order of the connection, fixed by the first byte of the setup request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteOrder {
    /// 'l' (0x6c): least significant byte first.
    Little,
    /// 'B' (0x42): most significant byte first.
    Big,
}

impl ByteOrder {
    /// Read a u16 at `off`.
    pub fn u16(self, b: &[u8], off: usize) -> u16 {
        let a = [b[off], b[off + 1]];
        match self {
            ByteOrder::Little => u16::from_le_bytes(a),
            ByteOrder::Big => u16::from_be_bytes(a),
        }
    }
    /// Read a u32 at `off`.
    pub fn u32(self, b: &[u8], off: usize) -> u32 {
        let a = [b[off], b[off + 1], b[off + 2], b[off + 3]];
        match self {
            ByteOrder::Little => u32::from_le_bytes(a),
            ByteOrder::Big => u32::from_be_bytes(a),
        }
    }
    /// Write a u16 at `off`.
    pub fn put_u16(self, b: &mut [u8], off: usize, v: u16) {
        let a = match self {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        };
        b[off..off + 2].copy_from_slice(&a);
    }
    /// Write a u32 at `off`.
    pub fn put_u32(self, b: &mut [u8], off: usize, v: u32) {
        let a = match self {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        };
        b[off..off + 4].copy_from_slice(&a);
    }
}
