//! winsession: the window session model. Captured resource state flows in from an X connection,
//! out to a `.gws` file, and back out to another X server as requests that recreate it.
//!
//! - [`capture`] reads one client's resources on its own connection (pipelined); [`extensions`]
//!   adds the extension state (RENDER formats, SHAPE, XFIXES regions, DAMAGE, SYNC, XInput 2
//!   selections, XKB per-client state, extension versions), [`shm`] the MIT-SHM segments,
//!   [`grabs`] the passive key/button grabs and [`dbe`] the DOUBLE-BUFFER back buffers.
//! - [`write_file`] / [`read_file`] (and [`to_bytes`] / [`from_bytes`]) store sessions.
//! - [`regenerate`] recreates a session on another server (RENDER pictures and glyph sets too)
//!   and returns the ID/atom maps, PICTFORMAT pairs included.
//! - [`to_json`] gives the script-facing JSON summary used by `guievict show --json`.
#![forbid(unsafe_code)]

pub mod active_grabs;
pub(crate) mod blob;
pub mod capture;
pub mod convert;
pub mod dbe;
pub mod ext;
pub mod extensions;
pub mod file;
pub mod glx;
pub mod grabs;
pub mod json;
pub mod model;
pub mod present;
pub mod regenerate;
pub mod remap;
pub mod shm;

pub use capture::{capture, CaptureError, CaptureOptions, Hints};
pub use file::{
    from_bytes, header_from_bytes, read_file, to_bytes, write_file, FileError, FORMAT_VERSION,
};
pub use json::{summary, to_json};
pub use model::*;
pub use regenerate::{
    regenerate, FontSubstitution, RegenError, RegenOptions, RegenStats, Regenerated,
};

/// Every X extension name capture and regenerate may ask about (and the app-side code of
/// guievict around them), plus the rest of what an X.Org server offers (so that the placement
/// of every extension a server lists is known after one round trip): [`prefetch_extensions`]
/// asks for them all at once.
pub const EXTENSIONS_OF_INTEREST: &[&str] = &[
    "BIG-REQUESTS",
    "Composite",
    "DAMAGE",
    "DOUBLE-BUFFER",
    "DPMS",
    "DRI2",
    "DRI3",
    "GLX",
    "GUIEVICT",
    "Generic Event Extension",
    "MIT-SCREEN-SAVER",
    "MIT-SHM",
    "Present",
    "RANDR",
    "RECORD",
    "RENDER",
    "SECURITY",
    "SHAPE",
    "SYNC",
    "X-Resource",
    "XC-MISC",
    "XFIXES",
    "XFree86-DGA",
    "XFree86-VidModeExtension",
    "XINERAMA",
    "XInputExtension",
    "XKEYBOARD",
    "XTEST",
    "XVideo",
];

/// Send QueryExtension for every name of [`EXTENSIONS_OF_INTEREST`] without waiting: the
/// first later `extension_information` waits once for all of them (one round trip instead of
/// one per extension, which on a slow link is what a capture or regenerate costs).
pub fn prefetch_extensions(conn: &impl x11rb::connection::RequestConnection) {
    for n in EXTENSIONS_OF_INTEREST {
        // A failure to send shows again, with context, where the answer is needed.
        let _ = conn.prefetch_extension_information(n);
    }
}
