//! What the 32-bit data words of typed payloads hold, as tables: a property's type (format 32
//! data of ChangeProperty and GetProperty) or a well-known ClientMessage's type name flows in,
//! the kind of each word (atom, a resource ID of some type, a visual) flows out. Nothing here
//! rewrites anything: `translate` maps the words these tables point at.

use crate::fields::Kind;

/// Predefined atoms naming property types whose data holds server values.
pub(super) mod xa {
    pub const ATOM: u32 = 4;
    pub const BITMAP: u32 = 5;
    pub const COLORMAP: u32 = 7;
    pub const CURSOR: u32 = 8;
    pub const DRAWABLE: u32 = 17;
    pub const FONT: u32 = 18;
    pub const PIXMAP: u32 = 20;
    pub const VISUALID: u32 = 32;
    pub const WINDOW: u32 = 33;
    pub const WM_HINTS: u32 = 35;
}

/// Kind of each 32-bit item of property data of type `ty` (app-view or server atom, predefined
/// atoms are the same on both), or None when the data carries no server values.
pub(super) fn property_item_kind(ty: u32, index: usize) -> Option<Kind> {
    match ty {
        xa::ATOM => Some(Kind::Atom),
        xa::BITMAP | xa::PIXMAP => Some(Kind::Xid("PIXMAP")),
        xa::COLORMAP => Some(Kind::Xid("COLORMAP")),
        xa::CURSOR => Some(Kind::Xid("CURSOR")),
        xa::DRAWABLE => Some(Kind::Xid("DRAWABLE")),
        xa::FONT => Some(Kind::Xid("FONT")),
        xa::WINDOW => Some(Kind::Xid("WINDOW")),
        xa::VISUALID => Some(Kind::Visual),
        // WM_HINTS: flags, input, initial_state, icon_pixmap, icon_window, icon_x, icon_y,
        // icon_mask, window_group.
        xa::WM_HINTS => match index {
            3 | 7 => Some(Kind::Xid("PIXMAP")),
            4 | 8 => Some(Kind::Xid("WINDOW")),
            _ => None,
        },
        _ => None,
    }
}

/// What the 32-bit data words of a well-known ClientMessage hold (word index, kind), by the
/// message's type: the atoms and windows in them are translated like any field (a zero word
/// is "none" and stays). Others are opaque.
pub const CLIENT_MESSAGE_DATA: &[(&str, &[(usize, DataWord)])] = &[
    // ICCCM: the protocol (WM_DELETE_WINDOW, WM_TAKE_FOCUS, _NET_WM_PING …) in data[0];
    // _NET_WM_PING's window in data[2].
    (
        "WM_PROTOCOLS",
        &[(0, DataWord::Atom), (2, DataWord::Window)],
    ),
    // EWMH: action, first property, second property, source.
    ("_NET_WM_STATE", &[(1, DataWord::Atom), (2, DataWord::Atom)]),
    // ICCCM selection manager announcement: timestamp, selection, owner.
    ("MANAGER", &[(1, DataWord::Atom), (2, DataWord::Window)]),
    // XDND: the source or target window in data[0], types and actions as atoms.
    (
        "XdndEnter",
        &[
            (0, DataWord::Window),
            (2, DataWord::Atom),
            (3, DataWord::Atom),
            (4, DataWord::Atom),
        ],
    ),
    (
        "XdndPosition",
        &[(0, DataWord::Window), (4, DataWord::Atom)],
    ),
    ("XdndStatus", &[(0, DataWord::Window), (4, DataWord::Atom)]),
    ("XdndLeave", &[(0, DataWord::Window)]),
    ("XdndDrop", &[(0, DataWord::Window)]),
    (
        "XdndFinished",
        &[(0, DataWord::Window), (2, DataWord::Atom)],
    ),
];

/// A data word of a ClientMessage (see [`CLIENT_MESSAGE_DATA`]).
#[derive(Clone, Copy, Debug)]
pub enum DataWord {
    /// An atom.
    Atom,
    /// A window.
    Window,
}
