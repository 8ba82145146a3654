//! The control protocol's framing: a message (a request, a response) flows in, a
//! length-prefixed bincode frame carrying [`PROTOCOL_VERSION`] flows out, and back. A frame
//! longer than [`MAX_FRAME`] or of another version is refused before its body is decoded. Also
//! the control socket's error type, shared by the directory and socket code.

use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Version of the control protocol; both sides must agree.
pub const PROTOCOL_VERSION: u32 = 1;
/// Largest frame accepted (bytes of bincode payload).
pub const MAX_FRAME: u32 = 16 << 20;

/// One framed message: version + body.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Frame<T> {
    pub(super) version: u32,
    pub(super) body: T,
}

/// Control-socket errors.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// I/O on the socket or its directory.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Path involved.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A frame was longer than [`MAX_FRAME`].
    #[error("frame of {len} bytes exceeds the limit of {MAX_FRAME}")]
    FrameTooLong {
        /// Announced length.
        len: u32,
    },
    /// A frame did not decode.
    #[error("undecodable frame: {0}")]
    Decode(#[from] bincode::Error),
    /// The peer speaks another protocol version.
    #[error("protocol version {theirs} (we speak {PROTOCOL_VERSION})")]
    Version {
        /// Their version.
        theirs: u32,
    },
    /// The control directory is not safe to use.
    #[error("control directory {path} is not usable: {why}")]
    UnsafeDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

pub(super) fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> ControlError + 'a {
    move |source| ControlError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Write one frame.
pub fn write_frame<T: Serialize>(w: &mut impl Write, body: &T) -> Result<(), ControlError> {
    let payload = bincode::serialize(&Frame {
        version: PROTOCOL_VERSION,
        body,
    })?;
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    if len > MAX_FRAME {
        return Err(ControlError::FrameTooLong { len });
    }
    let mut buf = Vec::with_capacity(4 + payload.len());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&payload);
    w.write_all(&buf)
        .map_err(io_err("writing frame to", Path::new("control socket")))
}

/// Read one frame.
pub fn read_frame<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> Result<T, ControlError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)
        .map_err(io_err("reading frame from", Path::new("control socket")))?;
    let len = u32::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(ControlError::FrameTooLong { len });
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)
        .map_err(io_err("reading frame from", Path::new("control socket")))?;
    // The version comes first in the encoding: check it before decoding the body.
    let version: u32 = bincode::deserialize(&payload)?;
    if version != PROTOCOL_VERSION {
        return Err(ControlError::Version { theirs: version });
    }
    let frame: Frame<T> = bincode::deserialize(&payload)?;
    Ok(frame.body)
}
