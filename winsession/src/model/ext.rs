//! The model's records of extension state (the session's fields after the core resources):
//! GLX contexts, windows and pbuffers, Present event selections, passive grabs, DOUBLE-BUFFER
//! back buffers, RENDER picture formats, pictures and glyph sets, SHAPE rectangles, XFIXES
//! regions and selection inputs, DAMAGE, XInput 2 selections and devices, XKEYBOARD state,
//! MIT-SHM segments and pixmaps, SYNC counters and fences, selections, the focus, and the
//! resources the model does not describe. Plain serde data, as the rest of `model`; the
//! field order of each struct is part of the session file's format.

use super::*;
use serde::{Deserialize, Serialize};

/// One `glXCreatePbuffer` drawable. The server backs it with a pixmap filed under the same ID;
/// that pixmap is carried here (not in `pixmaps`), and regenerate makes the pbuffer, then
/// uploads the contents into it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlxPbuffer {
    /// Pbuffer ID (the client's; also its backing pixmap's).
    pub id: u32,
    /// Screen number.
    pub screen: u32,
    /// FBConfig ID on the source server.
    pub fbconfig: u32,
    /// Width.
    pub width: u16,
    /// Height.
    pub height: u16,
    /// GLX_PRESERVED_CONTENTS.
    pub preserved: bool,
    /// GLX event mask.
    pub event_mask: u32,
    /// The backing pixmap's contents, when read.
    pub contents: Option<Image>,
}

/// One `PresentSelectInput`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresentSelection {
    /// The client's event ID.
    pub id: u32,
    /// The window.
    pub window: u32,
    /// Present event mask (ConfigureNotify 1, CompleteNotify 2, IdleNotify 4).
    pub event_mask: u32,
}

/// The server side of a direct-rendering GLX client: its contexts (placeholders: the GL state
/// lives in the client's libGL) and its `glXCreateWindow` drawables, with the frame-buffer
/// configurations they name as the source server listed them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlxState {
    /// Direct rendering contexts, a shared context before the contexts that share with it.
    pub contexts: Vec<GlxContext>,
    /// GLX windows.
    pub windows: Vec<GlxWindow>,
    /// The source server's description of every FBConfig the contexts and windows name.
    pub fbconfigs: Vec<GlxFbConfig>,
}

/// One direct GLX rendering context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlxContext {
    /// Context ID (the client's).
    pub id: u32,
    /// Screen number.
    pub screen: u32,
    /// FBConfig ID on the source server.
    pub fbconfig: u32,
    /// GLX_RENDER_TYPE (GLX_RGBA_TYPE 0x8014, GLX_COLOR_INDEX_TYPE 0x8015).
    pub render_type: u32,
    /// The context it shares display lists with (0: none).
    pub share: u32,
}

/// One `glXCreateWindow` drawable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlxWindow {
    /// GLX drawable ID (the client's).
    pub id: u32,
    /// The X window it draws to.
    pub window: u32,
    /// FBConfig ID on the source server.
    pub fbconfig: u32,
    /// GLX event mask (`glXSelectEvent`).
    pub event_mask: u32,
}

/// An FBConfig as `GetFBConfigs` lists it: (attribute, value) pairs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlxFbConfig {
    /// Screen number.
    pub screen: u32,
    /// FBConfig ID (GLX_FBCONFIG_ID).
    pub id: u32,
    /// Every (attribute, value) pair the server listed.
    pub attribs: Vec<(u32, u32)>,
}

/// One core passive grab.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassiveGrab {
    /// Grab window (one of the client's windows, or the root).
    pub window: u32,
    /// `GrabButton` (true) or `GrabKey` (false).
    pub button: bool,
    /// Key code or button (0: AnyKey / AnyButton).
    pub detail: u8,
    /// Modifiers (0x8000: AnyModifier).
    pub modifiers: u16,
    /// owner_events.
    pub owner_events: bool,
    /// Pointer event mask (button grabs).
    pub event_mask: u16,
    /// Pointer mode (0 Synchronous, 1 Asynchronous).
    pub pointer_mode: u8,
    /// Keyboard mode (0 Synchronous, 1 Asynchronous).
    pub keyboard_mode: u8,
    /// Confine-to window (button grabs; 0 None).
    pub confine_to: u32,
    /// Cursor while active (button grabs; 0 None).
    pub cursor: u32,
    /// For an AnyModifier grab narrowed by later ungrabs: the modifier combinations still
    /// grabbed (256 bits, bit n of byte n/8).
    pub modifier_mask: Option<Vec<u8>>,
    /// For an AnyKey/AnyButton grab narrowed the same way: the keys/buttons still grabbed.
    pub detail_mask: Option<Vec<u8>>,
}

/// The pixmap behind a picture whose application already freed it (the picture keeps it
/// alive; Xft's solid-colour pictures on 1×1 pixmaps): its pixels, read by the GUIEVICT
/// extension (≥ 1.8), so that regenerate puts the picture on an equal pixmap (format 9).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreedDrawable {
    /// The picture.
    pub picture: u32,
    /// The pixmap's size, depth and pixels.
    pub image: Image,
}

/// An active grab the client held at capture on the core pointer or keyboard (`GrabPointer` /
/// `GrabKeyboard`, or XInput 2's `XIGrabDevice` on a master device): made again on the target
/// after the windows are mapped, so the app goes on holding it (format 9; read by the GUIEVICT
/// extension ≥ 1.8). A grab that a held key or button activated is not carried (it ends with
/// a release on the old server); capture refuses it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveGrab {
    /// The keyboard's (true) or the pointer's (false).
    pub keyboard: bool,
    /// XInput 2's `XIGrabDevice` (true) or the core `GrabPointer`/`GrabKeyboard` (false).
    pub xi2: bool,
    /// Grab window (one of the client's windows, or the root).
    pub window: u32,
    /// owner_events.
    pub owner_events: bool,
    /// Pointer mode (0 Synchronous, 1 Asynchronous).
    pub pointer_mode: u8,
    /// Keyboard mode (0 Synchronous, 1 Asynchronous).
    pub keyboard_mode: u8,
    /// Confine-to window (pointer grabs; 0 None).
    pub confine_to: u32,
    /// Cursor during the grab (pointer grabs; 0 None).
    pub cursor: u32,
    /// Core pointer event mask (core pointer grabs).
    pub event_mask: u16,
    /// XInput 2 event mask (XI2 grabs; bit n of byte n/8).
    pub xi2_mask: Vec<u8>,
    /// The grabbed device's freeze state at capture (`guievict_ext_proto::sync_state`): a
    /// Synchronous grab freezes it when made, so regenerate allows events as the app had.
    pub sync_state: u8,
    /// The paired core device's freeze state at capture.
    pub paired_sync_state: u8,
}

/// One DOUBLE-BUFFER back-buffer name (`DbeAllocateBackBufferName`). Several names may share
/// one window's back buffer; the contents are stored with the first of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbeBuffer {
    /// The back-buffer name (a drawable ID).
    pub id: u32,
    /// The window it belongs to.
    pub window: u32,
    /// Swap-action hint given at allocation (0 Undefined … 3 Copied; unknown → 0).
    pub swap_action: u8,
    /// Back-buffer contents (window-sized, the window's depth), when captured.
    pub contents: Option<Image>,
}

/// A RENDER picture format (QueryPictFormats), used to find the same format on another server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PictFormat {
    /// PICTFORMAT ID (server-allocated).
    pub id: u32,
    /// 0 Indexed, 1 Direct.
    pub type_: u8,
    /// Depth.
    pub depth: u8,
    /// Direct format: red shift, red mask, green shift, green mask, blue shift, blue mask,
    /// alpha shift, alpha mask.
    pub direct: [u16; 8],
    /// Colormap of an indexed format (0 for direct formats).
    pub colormap: u32,
}

/// Kind of a RENDER gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GradientKind {
    /// CreateLinearGradient: params p1.x p1.y p2.x p2.y.
    Linear,
    /// CreateRadialGradient: params inner.x inner.y outer.x outer.y inner_radius outer_radius.
    Radial,
    /// CreateConicalGradient: params center.x center.y angle.
    Conical,
}

/// What a source-only RENDER picture (no drawable) draws.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fill {
    /// CreateSolidFill with this RGBA colour.
    Solid([u16; 4]),
    /// A gradient: kind-specific 16.16 fixed parameters and (offset 16.16, RGBA) stops.
    Gradient {
        /// Kind.
        kind: GradientKind,
        /// Parameters (see [`GradientKind`]).
        params: Vec<i32>,
        /// Stops: offset (16.16 fixed) and RGBA.
        stops: Vec<(i32, [u16; 4])>,
    },
}

/// A RENDER picture with every attribute ChangePicture / SetPictureFilter /
/// SetPictureTransform / SetPictureClipRectangles can set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Picture {
    /// Picture ID.
    pub id: u32,
    /// Drawable it was made on (0 for source pictures or unknown).
    pub drawable: u32,
    /// Source-only pictures: what they draw (`None` for drawable pictures).
    pub fill: Option<Fill>,
    /// PictFormat ID (source server; 0 for source-only pictures).
    pub format: u32,
    /// Repeat mode (None 0, Normal 1, Pad 2, Reflect 3).
    pub repeat: u8,
    /// Filter name ("" = the server's default, nearest).
    pub filter: String,
    /// Filter parameters, 16.16 fixed.
    pub filter_params: Vec<i32>,
    /// Transform, row-major 16.16 fixed (`None` = identity).
    pub transform: Option<[i32; 9]>,
    /// Alpha map picture (0 = none).
    pub alpha_map: u32,
    /// Alpha map origin.
    pub alpha_x: i16,
    /// Alpha map origin.
    pub alpha_y: i16,
    /// Clip (a clip pixmap is stored as the rectangles the server made of it).
    pub clip: Clip,
    /// Clip origin.
    pub clip_x: i16,
    /// Clip origin.
    pub clip_y: i16,
    /// Component alpha.
    pub component_alpha: bool,
    /// Subwindow mode (0 ClipByChildren, 1 IncludeInferiors).
    pub subwindow_mode: u8,
    /// Poly edge (0 Sharp, 1 Smooth).
    pub poly_edge: u8,
    /// Poly mode (0 Precise, 1 Imprecise).
    pub poly_mode: u8,
    /// Graphics exposures.
    pub graphics_exposures: bool,
    /// Whether the attributes above are known.
    pub known: bool,
}

impl Picture {
    /// A picture whose attributes are unknown.
    pub fn unknown(id: u32) -> Self {
        Self {
            id,
            drawable: 0,
            fill: None,
            format: 0,
            repeat: 0,
            filter: String::new(),
            filter_params: Vec::new(),
            transform: None,
            alpha_map: 0,
            alpha_x: 0,
            alpha_y: 0,
            clip: Clip::None,
            clip_x: 0,
            clip_y: 0,
            component_alpha: false,
            subwindow_mode: 0,
            poly_edge: 1,
            poly_mode: 0,
            graphics_exposures: true,
            known: false,
        }
    }
}

/// A list of rectangles (x, y, width, height).
pub type Rects = Vec<(i16, i16, u16, u16)>;

/// One SHAPE region of a window, as GetRectangles returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShapeRects {
    /// Ordering (0 Unsorted … 3 YXBanded).
    pub ordering: u8,
    /// Rectangles, relative to the window origin.
    pub rects: Rects,
}

/// SHAPE state of a window: each region is `None` when it is the default (unshaped).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowShape {
    /// Bounding region.
    pub bounding: Option<ShapeRects>,
    /// Clip region.
    pub clip: Option<ShapeRects>,
    /// Input region.
    pub input: Option<ShapeRects>,
    /// Whether this client selected ShapeNotify events on the window.
    pub events: bool,
}

impl WindowShape {
    /// Whether nothing differs from an unshaped window.
    pub fn is_default(&self) -> bool {
        self.bounding.is_none() && self.clip.is_none() && self.input.is_none() && !self.events
    }
}

/// An XFIXES region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    /// Region ID.
    pub id: u32,
    /// Rectangles (YX-banded, as FetchRegion returns them); `None` = unknown.
    pub rects: Option<Rects>,
}

/// A DAMAGE object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Damage {
    /// Damage ID.
    pub id: u32,
    /// Drawable it watches (0 = unknown).
    pub drawable: u32,
    /// Report level (0 RawRectangles, 1 DeltaRectangles, 2 BoundingBox, 3 NonEmpty).
    pub level: u8,
    /// Whether the level is known (else it is a default, see [`Session::unknown`]).
    pub level_known: bool,
}

/// XInput 2 event masks one client selected on one window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct XiSelection {
    /// Window (may be the root).
    pub window: u32,
    /// (device ID, mask words) pairs.
    pub masks: Vec<(u16, Vec<u32>)>,
}

/// One XInput 2 device of a server (XIQueryDevice), enough to find "the same" device on
/// another server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct XiDevice {
    /// Device ID (server-allocated; 0 AllDevices and 1 AllMasterDevices are never devices).
    pub id: u16,
    /// Use: 1 MasterPointer, 2 MasterKeyboard, 3 SlavePointer, 4 SlaveKeyboard,
    /// 5 FloatingSlave.
    pub use_: u8,
    /// Device name (e.g. "Virtual core pointer").
    pub name: String,
}

/// One `XFixesSelectSelectionInput` of the client that is in effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectionInput {
    /// Window the events are reported relative to (the client's own, or the root).
    pub window: u32,
    /// Selection atom.
    pub selection: u32,
    /// Event mask: SetSelectionOwner 1, SelectionWindowDestroy 2, SelectionClientClose 4.
    pub event_mask: u32,
}

/// A per-client extension version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientVersion {
    /// Extension name.
    pub extension: String,
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
    /// Whether the version is what the client negotiated (else a default regeneration picks).
    pub known: bool,
}

/// XKEYBOARD state of one client: per-client flags and, when the capture server could say
/// (GUIEVICT ≥ 1.2), its event selections. Without them regeneration selects what GTK and Qt
/// select (NewKeyboard, Map and State notify).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XkbClient {
    /// Per-client flags (DetectableAutoRepeat 1, GrabsUseXKBState 2, AutoReset 4, …).
    pub flags: u32,
    /// Auto-reset controls.
    pub auto_ctrls: u32,
    /// Auto-reset control values.
    pub auto_ctrls_values: u32,
    /// The client's event selections (`XkbSelectEvents`); `None`: unknown (no GUIEVICT 1.2 on
    /// the capture server).
    pub selections: Option<XkbSelections>,
}

/// Everything a client selected with `XkbSelectEvents`. Each value is the event's detail mask
/// (0: not selected).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XkbSelections {
    /// MapNotify details (the server keeps them per client, for every keyboard).
    pub map_notify: u16,
    /// NewKeyboardNotify details (per client).
    pub new_keyboard_notify: u16,
    /// Per-device selections of the other events.
    pub devices: Vec<XkbDeviceSelection>,
}

/// The XKB events a client selected on one keyboard device.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XkbDeviceSelection {
    /// Device ID on the capture server.
    pub device: u16,
    /// Device name ("Virtual core keyboard" for the core keyboard): regeneration finds the
    /// device by name (IDs are server-allocated).
    pub device_name: String,
    /// StateNotify details.
    pub state: u16,
    /// ControlsNotify details.
    pub controls: u32,
    /// IndicatorStateNotify details.
    pub indicator_state: u32,
    /// IndicatorMapNotify details.
    pub indicator_map: u32,
    /// NamesNotify details.
    pub names: u16,
    /// CompatMapNotify details.
    pub compat_map: u8,
    /// BellNotify details.
    pub bell: u8,
    /// ActionMessage details.
    pub action_message: u8,
    /// AccessXNotify details.
    pub access_x: u16,
    /// ExtensionDeviceNotify details.
    pub ext_dev: u16,
}

/// An MIT-SHM segment attached by the client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShmSegment {
    /// ShmSeg ID.
    pub id: u32,
    /// System V shared memory ID (ShmAttach); `None` = unknown or not System V.
    pub shmid: Option<u32>,
    /// For fd-passed segments (ShmCreateSegment / ShmAttachFd, e.g. Qt5's memfds): the
    /// mapping in the application's address space (start, length) that holds the segment;
    /// regeneration passes a descriptor of it (`/proc/self/map_files`) with ShmAttachFd.
    pub mapping: Option<(u64, u64)>,
}

/// A pixmap made with ShmCreatePixmap: its pixels are the memory of one of the client's
/// segments, shared between the application and the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShmPixmap {
    /// Pixmap ID (also listed in [`Session::pixmaps`]).
    pub id: u32,
    /// ShmSeg ID of the segment holding the pixels.
    pub segment: u32,
    /// Byte offset of the first pixel in the segment.
    pub offset: u32,
}

/// A SYNC counter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    /// Counter ID.
    pub id: u32,
    /// Value; `None` = unknown.
    pub value: Option<i64>,
}

/// A SYNC fence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    /// Fence ID.
    pub id: u32,
    /// Whether it is triggered; `None` = unknown.
    pub triggered: Option<bool>,
}

/// A glyph in a glyph set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Glyph {
    /// Glyph ID.
    pub id: u32,
    /// Width.
    pub width: u16,
    /// Height.
    pub height: u16,
    /// Origin.
    pub x: i16,
    /// Origin.
    pub y: i16,
    /// Advance.
    pub x_off: i16,
    /// Advance.
    pub y_off: i16,
    /// Image bytes in the set's format, rows padded to 4 bytes.
    #[serde(with = "crate::blob")]
    pub image: Vec<u8>,
}

/// A RENDER glyph set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlyphSet {
    /// GlyphSet ID.
    pub id: u32,
    /// PictFormat ID (source server).
    pub format: u32,
    /// Glyphs; empty with `known == false` when unknown.
    pub glyphs: Vec<Glyph>,
    /// Whether the glyphs are known.
    pub known: bool,
}

/// A selection owned by one of the client's windows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// Selection atom.
    pub name: u32,
    /// Owner window.
    pub owner: u32,
}

/// Input focus on one of the client's windows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Focus {
    /// Focus window.
    pub window: u32,
    /// Revert-to (0 None, 1 PointerRoot, 2 Parent).
    pub revert_to: u8,
}

/// A resource of a kind the model does not describe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherResource {
    /// Resource ID.
    pub id: u32,
    /// Its type name (from X-Resource or the extension).
    pub type_name: String,
}
