//! Per-kind resource state ("detail") of a `GetResources` record: the typed structs clients
//! work with and their byte encoding. The server encodes a detail once per resource; clients
//! decode it from the record's detail bytes, which bound every read.

use crate::wire::{Reader, Writer};
use crate::DecodeError;
use serde::{Deserialize, Serialize};

/// The state of one resource that the core protocol cannot return.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Detail {
    /// Only ID and type name are known (XFixes regions, Damage, Sync, passive grabs, …).
    Other,
    /// Core window.
    Window(WindowExtra),
    /// Core pixmap.
    Pixmap(PixmapInfo),
    /// Core graphics context.
    Gc(GcValues),
    /// Core font.
    Font(FontInfo),
    /// Core cursor.
    Cursor(CursorImage),
    /// Core colormap.
    Colormap(ColormapInfo),
    /// RENDER picture.
    Picture(PictureInfo),
    /// RENDER glyph set.
    GlyphSet(GlyphSetInfo),
    /// XFIXES selection input (protocol 1.1, only with `FLAG_SELECTION_INPUTS`).
    SelectionInput(SelectionInputInfo),
    /// XKEYBOARD event selections of the client on one keyboard device (protocol 1.2, only
    /// with `FLAG_XKB_SELECTIONS`).
    XkbInterest(XkbInterestInfo),
    /// One passive grab of the client (protocol 1.3, only with `FLAG_PASSIVE_GRABS`).
    PassiveGrab(PassiveGrabInfo),
    /// DAMAGE object: the drawable it watches and its report level (protocol 1.4, only with
    /// `FLAG_DAMAGE`).
    Damage(DamageInfo),
    /// MIT-SHM segment (protocol 1.5, only with `FLAG_SHM`).
    ShmSegment(ShmSegmentInfo),
    /// A pixmap whose pixels are an MIT-SHM segment's memory (ShmCreatePixmap; protocol 1.5,
    /// only with `FLAG_SHM`; other pixmaps stay [`Detail::Pixmap`]).
    ShmPixmap(ShmPixmapInfo),
    /// A GLX drawable: the X drawable it draws to (protocol 1.7, only with
    /// `FLAG_GLX_DRAWABLES`).
    GlxDrawable(GlxDrawableInfo),
    /// A Present event selection: window and mask (protocol 1.7, only with
    /// `FLAG_PRESENT_EVENTS`).
    PresentEvent(PresentEventInfo),
}

/// One `PresentSelectInput` of the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresentEventInfo {
    /// The window whose events are selected.
    pub window: u32,
    /// Present event mask (ConfigureNotify 1, CompleteNotify 2, IdleNotify 4).
    pub event_mask: u32,
}

/// The X drawable behind a GLX drawable ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlxDrawableInfo {
    /// The window or pixmap of the client that the GLX drawable draws to (the resource ID
    /// itself for the entry filed under the window's or pixmap's own ID); 0 when it is not one
    /// of the client's resources.
    pub drawable: u32,
}

/// An MIT-SHM segment of the client, as the server holds it (`ShmDescRec`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShmSegmentInfo {
    /// System V shared memory ID; `None` for descriptor-backed segments (ShmAttachFd,
    /// ShmCreateSegment).
    pub shmid: Option<u32>,
    /// Size in bytes the server mapped.
    pub size: u32,
    /// Attached read-only.
    pub read_only: bool,
}

/// A pixmap made with ShmCreatePixmap: its geometry and where its pixels live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShmPixmapInfo {
    /// Geometry, as for any pixmap.
    pub pixmap: PixmapInfo,
    /// The client's segment (ShmSeg ID) holding the pixels.
    pub segment: u32,
    /// Byte offset of the first pixel in the segment.
    pub offset: u32,
}

/// One passive grab (`GrabKey`, `GrabButton`, or an XInput passive grab): the server's
/// `GrabRec` on the grab window's passive-grab list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassiveGrabInfo {
    /// Grab window (any client's, often the root or the application's own).
    pub window: u32,
    /// Window the pointer is confined to while the grab is active (0: None).
    pub confine_to: u32,
    /// Cursor shown while the grab is active (0: None).
    pub cursor: u32,
    /// Core/XI1 event mask of the grab (button grabs: the pointer events asked for).
    pub event_mask: u32,
    /// Modifiers (AnyModifier 0x8000 for core grabs; XI2: 1 << 31).
    pub modifiers: u32,
    /// Key code or button (0: AnyKey / AnyButton).
    pub detail: u16,
    /// Device the grab is on (the core keyboard or pointer for core grabs).
    pub device: u16,
    /// 1 core, 2 XInput 1.x, 3 XInput 2 (the server's `enum InputLevel`).
    pub level: u8,
    /// Event type that activates the grab (core: KeyPress 2, ButtonPress 4).
    pub event_type: u8,
    /// `owner_events` of the grab request.
    pub owner_events: bool,
    /// Pointer mode (0 Synchronous, 1 Asynchronous).
    pub pointer_mode: u8,
    /// Keyboard mode (0 Synchronous, 1 Asynchronous).
    pub keyboard_mode: u8,
    /// For an AnyModifier grab later narrowed by `UngrabKey`/`UngrabButton` with specific
    /// modifiers: the 256-bit set of modifier combinations still grabbed (bit n of byte n/8).
    pub modifier_mask: Option<Vec<u8>>,
    /// For an AnyKey/AnyButton grab narrowed the same way: the 256-bit set of keys/buttons
    /// still grabbed.
    pub detail_mask: Option<Vec<u8>>,
}

impl PassiveGrabInfo {
    /// Level of core-protocol grabs.
    pub const CORE: u8 = 1;
    /// Core `KeyPress`: a `GrabKey` grab.
    pub const KEY_PRESS: u8 = 2;
    /// Core `ButtonPress`: a `GrabButton` grab.
    pub const BUTTON_PRESS: u8 = 4;
    /// Length of an exception mask in bytes.
    pub const MASK_BYTES: usize = 32;

    /// A core `GrabKey` grab.
    pub fn is_core_key(&self) -> bool {
        self.level == Self::CORE && self.event_type == Self::KEY_PRESS
    }

    /// A core `GrabButton` grab.
    pub fn is_core_button(&self) -> bool {
        self.level == Self::CORE && self.event_type == Self::BUTTON_PRESS
    }
}

/// A DAMAGE object of the client (`DamageCreate`): what the protocol cannot read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DamageInfo {
    /// The drawable it watches (any client's window or pixmap).
    pub drawable: u32,
    /// Report level: 0 RawRectangles, 1 DeltaRectangles, 2 BoundingBox, 3 NonEmpty.
    pub level: u8,
}

/// The XKEYBOARD events a client selected (`XkbSelectEvents`) on one device: the server's
/// per-(client, device) interest record. Each mask is the event's detail mask as
/// `XkbSelectEvents` takes it (0: not selected). `MapNotify` and `NewKeyboardNotify` are
/// client-wide in the server and travel in the reply header ([`crate::XkbClientState`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XkbInterestInfo {
    /// Device ID the selection was made on (the core keyboard when the client named
    /// `XkbUseCoreKbd`).
    pub device: u16,
    /// The device's name (e.g. "Virtual core keyboard"), to find it on another server.
    pub device_name: String,
    /// StateNotify details.
    pub state: u16,
    /// NamesNotify details.
    pub names: u16,
    /// AccessXNotify details.
    pub access_x: u16,
    /// ExtensionDeviceNotify details.
    pub ext_dev: u16,
    /// ControlsNotify details.
    pub controls: u32,
    /// IndicatorStateNotify details.
    pub indicator_state: u32,
    /// IndicatorMapNotify details.
    pub indicator_map: u32,
    /// CompatMapNotify details.
    pub compat_map: u8,
    /// BellNotify details.
    pub bell: u8,
    /// ActionMessage details.
    pub action_message: u8,
    /// Auto-reset controls (`XkbPerClientFlags` on this device).
    pub auto_ctrls: u32,
    /// Auto-reset control values.
    pub auto_ctrl_values: u32,
}

/// One `XFixesSelectSelectionInput` the client made that is still in effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectionInputInfo {
    /// Window the events are reported relative to (any client's, often the root).
    pub window: u32,
    /// Selection atom.
    pub selection: u32,
    /// XFIXES selection event mask (SetSelectionOwner 1, SelectionWindowDestroy 2,
    /// SelectionClientClose 4).
    pub event_mask: u32,
}

/// Window background.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BgKind {
    /// `None`.
    None,
    /// `ParentRelative`.
    ParentRelative,
    /// A background pixel.
    Pixel(u32),
    /// A background pixmap (its ID; it may belong to another client or be freed already).
    Pixmap(u32),
}

/// Window border.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BorderKind {
    /// A border pixel.
    Pixel(u32),
    /// A border pixmap (its ID).
    Pixmap(u32),
}

/// Window attributes GetWindowAttributes does not return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowExtra {
    /// Background.
    pub background: BgKind,
    /// Border.
    pub border: BorderKind,
    /// Cursor ID set on this window (0: none, inherits the parent's).
    pub cursor: u32,
}

/// Pixmap geometry (contents come via core `GetImage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PixmapInfo {
    /// Depth.
    pub depth: u8,
    /// Bits per pixel of the server's image format for that depth.
    pub bits_per_pixel: u8,
    /// Width.
    pub width: u16,
    /// Height.
    pub height: u16,
}

/// A rectangle (clip lists).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rectangle {
    /// Left.
    pub x: i16,
    /// Top.
    pub y: i16,
    /// Width.
    pub width: u16,
    /// Height.
    pub height: u16,
}

/// A GC's tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tile {
    /// No tile pixmap was set: the protocol default (filled with the foreground); the server's
    /// internal pixel value is given for reference.
    Pixel(u32),
    /// Tile pixmap ID.
    Pixmap(u32),
}

/// A clip (GC or picture). The X server converts a clip-mask bitmap into a region when it is
/// set, so a clip pixmap is reported as the equivalent rectangles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Clip {
    /// No clip.
    None,
    /// Clip rectangles relative to the clip origin, in YX-banded order.
    Rectangles(Vec<Rectangle>),
}

/// Every component of a GC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcValues {
    /// Depth of the GC.
    pub depth: u8,
    /// `function` (GXcopy = 3, …).
    pub function: u8,
    /// `plane-mask`.
    pub plane_mask: u32,
    /// `foreground`.
    pub foreground: u32,
    /// `background`.
    pub background: u32,
    /// `line-width`.
    pub line_width: u16,
    /// `line-style`.
    pub line_style: u8,
    /// `cap-style`.
    pub cap_style: u8,
    /// `join-style`.
    pub join_style: u8,
    /// `fill-style`.
    pub fill_style: u8,
    /// `fill-rule`.
    pub fill_rule: u8,
    /// `tile`.
    pub tile: Tile,
    /// `stipple` pixmap ID (0: the server's default stipple).
    pub stipple: u32,
    /// `tile-stipple-x-origin`.
    pub ts_x_origin: i16,
    /// `tile-stipple-y-origin`.
    pub ts_y_origin: i16,
    /// `font` ID (0: the server's default font).
    pub font: u32,
    /// `subwindow-mode`.
    pub subwindow_mode: u8,
    /// `graphics-exposures`.
    pub graphics_exposures: bool,
    /// `clip-x-origin`.
    pub clip_x_origin: i16,
    /// `clip-y-origin`.
    pub clip_y_origin: i16,
    /// `clip-mask` / SetClipRectangles.
    pub clip: Clip,
    /// `dash-offset`.
    pub dash_offset: u16,
    /// The dash list as the server stores it: SetDashes' list, doubled when its length is odd
    /// (protocol-equivalent), or the `dashes` component twice.
    pub dashes: Vec<u8>,
    /// `arc-mode`.
    pub arc_mode: u8,
}

/// A font and the name it was opened with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FontInfo {
    /// Name given to OpenFont (e.g. `"fixed"`), or the `FONT` property's XLFD when
    /// `from_property` (font opened before the extension could watch, or by another path).
    /// Bytes are Latin-1.
    pub name: String,
    /// Whether `name` comes from the `FONT` property instead of the OpenFont request.
    pub from_property: bool,
}

/// A cursor's image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CursorBits {
    /// Images were not requested (no `FLAG_CURSOR_IMAGES`).
    None,
    /// Core cursor: source and mask bitmaps, each `height` rows of
    /// `((width + 31) / 32) * 4` bytes, bit 0 of each byte the leftmost pixel (LSBFirst).
    Bitmap {
        /// Source bitmap.
        source: Vec<u8>,
        /// Mask bitmap.
        mask: Vec<u8>,
    },
    /// RENDER ARGB cursor: `width * height` premultiplied ARGB32 pixels, row by row.
    Argb(Vec<u32>),
}

/// A cursor's full state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorImage {
    /// Width.
    pub width: u16,
    /// Height.
    pub height: u16,
    /// Hotspot x.
    pub x_hot: u16,
    /// Hotspot y.
    pub y_hot: u16,
    /// Foreground RGB (16 bits per channel).
    pub fore_rgb: [u16; 3],
    /// Background RGB.
    pub back_rgb: [u16; 3],
    /// Name atom set with XFixesSetCursorName (0: none).
    pub name: u32,
    /// Image.
    pub image: CursorBits,
}

/// A colour cell the client allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColorCell {
    /// Pixel value (for DirectColor, the channel index shifted into its field).
    pub pixel: u32,
    /// Red.
    pub red: u16,
    /// Green.
    pub green: u16,
    /// Blue.
    pub blue: u16,
    /// Which channels this cell defines: DoRed 1, DoGreen 2, DoBlue 4.
    pub flags: u8,
    /// Read-write (AllocColorCells/Planes) rather than shared read-only.
    pub writable: bool,
}

/// A colormap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColormapInfo {
    /// Visual ID.
    pub visual: u32,
    /// Visual class (StaticGray 0 … DirectColor 5).
    pub class: u8,
    /// Cells this client allocated (empty unless `FLAG_COLORMAP_CELLS`; always empty for
    /// TrueColor/StaticColor/StaticGray, where nothing is allocated).
    pub cells: Vec<ColorCell>,
}

/// Gradient kind of a RENDER source picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GradientKind {
    /// CreateLinearGradient: params p1.x p1.y p2.x p2.y.
    Linear,
    /// CreateRadialGradient: params inner.x inner.y outer.x outer.y inner_radius outer_radius.
    Radial,
    /// CreateConicalGradient: params center.x center.y angle.
    Conical,
}

/// A gradient stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradientStop {
    /// Offset, 16.16 fixed.
    pub offset: i32,
    /// RGBA, 16 bits per channel.
    pub color: [u16; 4],
}

/// A RENDER gradient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradientInfo {
    /// Kind.
    pub kind: GradientKind,
    /// Kind-specific 16.16 fixed parameters (see [`GradientKind`]).
    pub params: Vec<i32>,
    /// Stops.
    pub stops: Vec<GradientStop>,
}

/// What a picture draws from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PictureSource {
    /// CreatePicture on this drawable.
    Drawable(u32),
    /// CreateSolidFill with this RGBA colour.
    SolidFill([u16; 4]),
    /// A gradient.
    Gradient(GradientInfo),
}

/// The drawable of a picture whose application already freed it (protocol 1.8, with
/// `FLAG_ORPHAN_DRAWABLES`): a pixmap the picture keeps alive though no ID names it any more
/// (Xft's solid-colour pictures on 1×1 pixmaps), with its pixels when they are small enough.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanDrawable {
    /// Width.
    pub width: u16,
    /// Height.
    pub height: u16,
    /// Depth.
    pub depth: u8,
    /// Bits per pixel.
    pub bits_per_pixel: u8,
    /// ZPixmap pixels, rows padded to 4 bytes, pixels in the client's byte order; empty when
    /// the drawable is larger than [`MAX_ORPHAN_IMAGE`].
    pub image: Vec<u8>,
}

/// Largest orphan drawable image the server sends (bytes).
pub const MAX_ORPHAN_IMAGE: usize = 64 << 10;

/// A RENDER picture's attributes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PictureInfo {
    /// PICTFORMAT ID (0 for source-only pictures).
    pub format: u32,
    /// Source.
    pub source: PictureSource,
    /// Repeat (None 0, Normal 1, Pad 2, Reflect 3).
    pub repeat: u8,
    /// Filter name (e.g. `"nearest"`, `"bilinear"`, `"convolution"`).
    pub filter: String,
    /// Filter parameters, 16.16 fixed.
    pub filter_params: Vec<i32>,
    /// Transform matrix, row-major 16.16 fixed (None: identity / never set).
    pub transform: Option<[i32; 9]>,
    /// Clip region (relative to the clip origin).
    pub clip: Clip,
    /// Clip x origin.
    pub clip_x_origin: i16,
    /// Clip y origin.
    pub clip_y_origin: i16,
    /// Alpha map picture ID (0: none).
    pub alpha_map: u32,
    /// Alpha x origin.
    pub alpha_x_origin: i16,
    /// Alpha y origin.
    pub alpha_y_origin: i16,
    /// Component alpha.
    pub component_alpha: bool,
    /// Subwindow mode.
    pub subwindow_mode: u8,
    /// Poly edge (Sharp 0, Smooth 1).
    pub poly_edge: u8,
    /// Poly mode (Precise 0, Imprecise 1).
    pub poly_mode: u8,
    /// Graphics exposures.
    pub graphics_exposures: bool,
    /// The freed drawable behind a drawable picture (1.8, `FLAG_ORPHAN_DRAWABLES`).
    #[serde(default)]
    pub orphan: Option<OrphanDrawable>,
}

/// One glyph of a glyph set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Glyph {
    /// Glyph ID.
    pub id: u32,
    /// Width.
    pub width: u16,
    /// Height.
    pub height: u16,
    /// x (origin offset, as in RENDER GLYPHINFO).
    pub x: i16,
    /// y.
    pub y: i16,
    /// x advance.
    pub x_off: i16,
    /// y advance.
    pub y_off: i16,
    /// Image in the layout AddGlyphs takes for the set's format: `height` rows padded to 4
    /// bytes; depth 1 LSBFirst; depth 32 pixels in the reply's byte order. Empty unless
    /// `FLAG_GLYPH_IMAGES`.
    pub image: Vec<u8>,
}

/// A RENDER glyph set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlyphSetInfo {
    /// PICTFORMAT ID.
    pub format: u32,
    /// Depth of the format.
    pub depth: u8,
    /// Every glyph, ascending by ID.
    pub glyphs: Vec<Glyph>,
}

// ---------------------------------------------------------------------------------------------

fn latin1_encode(w: &mut Writer, s: &str) -> usize {
    let bytes: Vec<u8> = s
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .take(u16::MAX as usize)
        .collect();
    w.bytes(&bytes);
    bytes.len()
}

fn latin1_len(s: &str) -> u16 {
    s.chars().count().min(u16::MAX as usize) as u16
}

fn latin1_decode(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

fn encode_rects(w: &mut Writer, rects: &[Rectangle]) {
    for r in rects {
        w.i16(r.x);
        w.i16(r.y);
        w.u16(r.width);
        w.u16(r.height);
    }
}

fn decode_rects(r: &mut Reader<'_>, n: usize) -> Result<Vec<Rectangle>, DecodeError> {
    r.check_count(n, 8, "clip rectangles")?;
    (0..n)
        .map(|_| {
            Ok(Rectangle {
                x: r.i16("rectangle x")?,
                y: r.i16("rectangle y")?,
                width: r.u16("rectangle width")?,
                height: r.u16("rectangle height")?,
            })
        })
        .collect()
}

fn clip_parts(c: &Clip) -> (u8, &[Rectangle]) {
    match c {
        Clip::None => (0, &[]),
        Clip::Rectangles(v) => (1, v.as_slice()),
    }
}

fn clip_from(kind: u8, off: usize, rects: Vec<Rectangle>) -> Result<Clip, DecodeError> {
    match kind {
        0 if rects.is_empty() => Ok(Clip::None),
        1 => Ok(Clip::Rectangles(rects)),
        _ => Err(DecodeError::BadValue {
            offset: off,
            value: kind.into(),
            what: "clip kind",
        }),
    }
}

fn bool_from(v: u8, off: usize, what: &'static str) -> Result<bool, DecodeError> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::BadValue {
            offset: off,
            value: v.into(),
            what,
        }),
    }
}

/// Bytes per row of a 1-bit cursor bitmap of this width.
pub const fn bitmap_stride(width: u16) -> usize {
    (width as usize).div_ceil(32) * 4
}

impl Detail {
    /// Wire code of this detail kind.
    pub fn code(&self) -> u8 {
        match self {
            Detail::Other => 0,
            Detail::Window(_) => 1,
            Detail::Pixmap(_) => 2,
            Detail::Gc(_) => 3,
            Detail::Font(_) => 4,
            Detail::Cursor(_) => 5,
            Detail::Colormap(_) => 6,
            Detail::Picture(_) => 7,
            Detail::GlyphSet(_) => 8,
            Detail::SelectionInput(_) => 9,
            Detail::XkbInterest(_) => 10,
            Detail::PassiveGrab(_) => 11,
            Detail::Damage(_) => 12,
            Detail::ShmSegment(_) => 13,
            Detail::ShmPixmap(_) => 14,
            Detail::GlxDrawable(_) => 15,
            Detail::PresentEvent(_) => 16,
        }
    }

    /// Append the detail bytes (caller pads to 4).
    pub fn encode(&self, w: &mut Writer) {
        match self {
            Detail::Other => {}
            Detail::PassiveGrab(x) => {
                w.u32(x.window);
                w.u32(x.confine_to);
                w.u32(x.cursor);
                w.u32(x.event_mask);
                w.u32(x.modifiers);
                w.u16(x.detail);
                w.u16(x.device);
                w.u8(x.level);
                w.u8(x.event_type);
                let mut flags = 0u8;
                if x.owner_events {
                    flags |= 1;
                }
                if x.pointer_mode != 0 {
                    flags |= 2;
                }
                if x.keyboard_mode != 0 {
                    flags |= 4;
                }
                if x.modifier_mask.is_some() {
                    flags |= 8;
                }
                if x.detail_mask.is_some() {
                    flags |= 16;
                }
                w.u8(flags);
                w.u8(0);
                for m in [&x.modifier_mask, &x.detail_mask].into_iter().flatten() {
                    let mut b = [0u8; PassiveGrabInfo::MASK_BYTES];
                    for (o, i) in b.iter_mut().zip(m.iter()) {
                        *o = *i;
                    }
                    w.bytes(&b);
                }
            }
            Detail::ShmSegment(x) => {
                w.u32(x.shmid.unwrap_or(u32::MAX));
                w.u32(x.size);
                w.u8(u8::from(x.read_only) | (u8::from(x.shmid.is_none()) << 1));
                w.u8(0);
                w.u16(0);
            }
            Detail::ShmPixmap(x) => {
                w.u8(x.pixmap.depth);
                w.u8(x.pixmap.bits_per_pixel);
                w.u16(0);
                w.u16(x.pixmap.width);
                w.u16(x.pixmap.height);
                w.u32(x.segment);
                w.u32(x.offset);
            }
            Detail::GlxDrawable(x) => w.u32(x.drawable),
            Detail::PresentEvent(x) => {
                w.u32(x.window);
                w.u32(x.event_mask);
            }
            Detail::Damage(x) => {
                w.u32(x.drawable);
                w.u8(x.level);
                w.u8(0);
                w.u16(0);
            }
            Detail::SelectionInput(x) => {
                w.u32(x.window);
                w.u32(x.selection);
                w.u32(x.event_mask);
            }
            Detail::XkbInterest(x) => {
                w.u16(x.device);
                w.u16(latin1_len(&x.device_name));
                w.u16(x.state);
                w.u16(x.names);
                w.u16(x.access_x);
                w.u16(x.ext_dev);
                w.u32(x.controls);
                w.u32(x.indicator_state);
                w.u32(x.indicator_map);
                w.u8(x.compat_map);
                w.u8(x.bell);
                w.u8(x.action_message);
                w.u8(0);
                w.u32(x.auto_ctrls);
                w.u32(x.auto_ctrl_values);
                latin1_encode(w, &x.device_name);
            }
            Detail::Window(x) => {
                let (bk, bv) = match x.background {
                    BgKind::None => (0, 0),
                    BgKind::ParentRelative => (1, 0),
                    BgKind::Pixel(p) => (2, p),
                    BgKind::Pixmap(p) => (3, p),
                };
                let (ok, ov) = match x.border {
                    BorderKind::Pixel(p) => (0, p),
                    BorderKind::Pixmap(p) => (1, p),
                };
                w.u8(bk);
                w.u8(ok);
                w.u16(0);
                w.u32(bv);
                w.u32(ov);
                w.u32(x.cursor);
            }
            Detail::Pixmap(p) => {
                w.u8(p.depth);
                w.u8(p.bits_per_pixel);
                w.u16(0);
                w.u16(p.width);
                w.u16(p.height);
            }
            Detail::Gc(g) => {
                let (tk, tv) = match g.tile {
                    Tile::Pixel(p) => (0, p),
                    Tile::Pixmap(p) => (1, p),
                };
                let (ck, rects) = clip_parts(&g.clip);
                let dashes = &g.dashes[..g.dashes.len().min(u16::MAX as usize)];
                w.u8(g.function);
                w.u8(g.line_style);
                w.u8(g.cap_style);
                w.u8(g.join_style);
                w.u8(g.fill_style);
                w.u8(g.fill_rule);
                w.u8(g.subwindow_mode);
                w.u8(g.arc_mode);
                w.u8(u8::from(g.graphics_exposures));
                w.u8(tk);
                w.u8(g.depth);
                w.u8(ck);
                w.u32(g.plane_mask);
                w.u32(g.foreground);
                w.u32(g.background);
                w.u16(g.line_width);
                w.u16(g.dash_offset);
                w.u32(tv);
                w.u32(g.stipple);
                w.u32(g.font);
                w.i16(g.ts_x_origin);
                w.i16(g.ts_y_origin);
                w.i16(g.clip_x_origin);
                w.i16(g.clip_y_origin);
                w.u32(rects.len() as u32);
                w.u16(dashes.len() as u16);
                w.u16(0);
                encode_rects(w, rects);
                w.bytes(dashes);
            }
            Detail::Font(f) => {
                w.u16(latin1_len(&f.name));
                w.u8(u8::from(f.from_property));
                w.u8(0);
                latin1_encode(w, &f.name);
            }
            Detail::Cursor(c) => {
                w.u16(c.width);
                w.u16(c.height);
                w.u16(c.x_hot);
                w.u16(c.y_hot);
                for v in c.fore_rgb.iter().chain(c.back_rgb.iter()) {
                    w.u16(*v);
                }
                w.u32(c.name);
                match &c.image {
                    CursorBits::None => {
                        w.u8(0);
                        w.zeros(3);
                        w.u32(0);
                    }
                    CursorBits::Bitmap { source, mask } => {
                        w.u8(1);
                        w.zeros(3);
                        w.u32((source.len() + mask.len()) as u32);
                        w.bytes(source);
                        w.bytes(mask);
                    }
                    CursorBits::Argb(px) => {
                        w.u8(2);
                        w.zeros(3);
                        w.u32((px.len() * 4) as u32);
                        for p in px {
                            w.u32(*p);
                        }
                    }
                }
            }
            Detail::Colormap(c) => {
                w.u32(c.visual);
                w.u8(c.class);
                w.zeros(3);
                w.u32(c.cells.len() as u32);
                for cell in &c.cells {
                    w.u32(cell.pixel);
                    w.u16(cell.red);
                    w.u16(cell.green);
                    w.u16(cell.blue);
                    w.u8(cell.flags);
                    w.u8(u8::from(cell.writable));
                }
            }
            Detail::Picture(p) => encode_picture(w, p),
            Detail::GlyphSet(g) => {
                w.u32(g.format);
                w.u8(g.depth);
                w.zeros(3);
                w.u32(g.glyphs.len() as u32);
                for gl in &g.glyphs {
                    w.u32(gl.id);
                    w.u16(gl.width);
                    w.u16(gl.height);
                    w.i16(gl.x);
                    w.i16(gl.y);
                    w.i16(gl.x_off);
                    w.i16(gl.y_off);
                    w.u32(gl.image.len() as u32);
                    w.bytes(&gl.image);
                    w.pad4();
                }
            }
        }
    }

    /// Decode detail bytes of kind `code` (`code_off` is the offset of the code, for errors).
    pub fn decode(code: u8, code_off: usize, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let d = match code {
            0 => Detail::Other,
            1 => {
                let off = r.offset();
                let bk = r.u8("background kind")?;
                let ok = r.u8("border kind")?;
                r.skip(2, "window padding")?;
                let bv = r.u32("background value")?;
                let ov = r.u32("border value")?;
                let cursor = r.u32("window cursor")?;
                let background = match bk {
                    0 => BgKind::None,
                    1 => BgKind::ParentRelative,
                    2 => BgKind::Pixel(bv),
                    3 => BgKind::Pixmap(bv),
                    v => {
                        return Err(DecodeError::BadValue {
                            offset: off,
                            value: v.into(),
                            what: "background kind",
                        })
                    }
                };
                let border = match ok {
                    0 => BorderKind::Pixel(ov),
                    1 => BorderKind::Pixmap(ov),
                    v => {
                        return Err(DecodeError::BadValue {
                            offset: off + 1,
                            value: v.into(),
                            what: "border kind",
                        })
                    }
                };
                Detail::Window(WindowExtra {
                    background,
                    border,
                    cursor,
                })
            }
            2 => {
                let depth = r.u8("pixmap depth")?;
                let bits_per_pixel = r.u8("pixmap bits per pixel")?;
                r.skip(2, "pixmap padding")?;
                Detail::Pixmap(PixmapInfo {
                    depth,
                    bits_per_pixel,
                    width: r.u16("pixmap width")?,
                    height: r.u16("pixmap height")?,
                })
            }
            3 => Detail::Gc(decode_gc(r)?),
            4 => {
                let n = r.u16("font name length")? as usize;
                let off = r.offset();
                let from_property = bool_from(r.u8("font from_property")?, off, "from_property")?;
                r.skip(1, "font padding")?;
                let name = latin1_decode(r.bytes(n, "font name")?);
                Detail::Font(FontInfo {
                    name,
                    from_property,
                })
            }
            5 => Detail::Cursor(decode_cursor(r)?),
            6 => {
                let visual = r.u32("colormap visual")?;
                let class = r.u8("colormap class")?;
                r.skip(3, "colormap padding")?;
                let n = r.u32("colormap cell count")? as usize;
                r.check_count(n, 12, "colormap cells")?;
                let mut cells = Vec::with_capacity(n);
                for _ in 0..n {
                    let pixel = r.u32("cell pixel")?;
                    let red = r.u16("cell red")?;
                    let green = r.u16("cell green")?;
                    let blue = r.u16("cell blue")?;
                    let flags = r.u8("cell flags")?;
                    let off = r.offset();
                    let writable = bool_from(r.u8("cell writable")?, off, "cell writable")?;
                    cells.push(ColorCell {
                        pixel,
                        red,
                        green,
                        blue,
                        flags,
                        writable,
                    });
                }
                Detail::Colormap(ColormapInfo {
                    visual,
                    class,
                    cells,
                })
            }
            7 => Detail::Picture(decode_picture(r)?),
            8 => {
                let format = r.u32("glyph set format")?;
                let depth = r.u8("glyph set depth")?;
                r.skip(3, "glyph set padding")?;
                let n = r.u32("glyph count")? as usize;
                r.check_count(n, 20, "glyphs")?;
                let mut glyphs = Vec::with_capacity(n);
                for _ in 0..n {
                    let id = r.u32("glyph id")?;
                    let width = r.u16("glyph width")?;
                    let height = r.u16("glyph height")?;
                    let x = r.i16("glyph x")?;
                    let y = r.i16("glyph y")?;
                    let x_off = r.i16("glyph x_off")?;
                    let y_off = r.i16("glyph y_off")?;
                    let len = r.u32("glyph image length")? as usize;
                    let image = r.bytes(len, "glyph image")?.to_vec();
                    r.pad4("glyph image padding")?;
                    glyphs.push(Glyph {
                        id,
                        width,
                        height,
                        x,
                        y,
                        x_off,
                        y_off,
                        image,
                    });
                }
                Detail::GlyphSet(GlyphSetInfo {
                    format,
                    depth,
                    glyphs,
                })
            }
            9 => Detail::SelectionInput(SelectionInputInfo {
                window: r.u32("selection input window")?,
                selection: r.u32("selection input atom")?,
                event_mask: r.u32("selection input event mask")?,
            }),
            10 => {
                let device = r.u16("xkb device")?;
                let n = r.u16("xkb device name length")? as usize;
                let state = r.u16("xkb state details")?;
                let names = r.u16("xkb names details")?;
                let access_x = r.u16("xkb accessx details")?;
                let ext_dev = r.u16("xkb extension device details")?;
                let controls = r.u32("xkb controls details")?;
                let indicator_state = r.u32("xkb indicator state details")?;
                let indicator_map = r.u32("xkb indicator map details")?;
                let compat_map = r.u8("xkb compat map details")?;
                let bell = r.u8("xkb bell details")?;
                let action_message = r.u8("xkb action message details")?;
                r.skip(1, "xkb padding")?;
                let auto_ctrls = r.u32("xkb auto-reset controls")?;
                let auto_ctrl_values = r.u32("xkb auto-reset values")?;
                let device_name = latin1_decode(r.bytes(n, "xkb device name")?);
                Detail::XkbInterest(XkbInterestInfo {
                    device,
                    device_name,
                    state,
                    names,
                    access_x,
                    ext_dev,
                    controls,
                    indicator_state,
                    indicator_map,
                    compat_map,
                    bell,
                    action_message,
                    auto_ctrls,
                    auto_ctrl_values,
                })
            }
            11 => {
                let window = r.u32("grab window")?;
                let confine_to = r.u32("grab confine-to")?;
                let cursor = r.u32("grab cursor")?;
                let event_mask = r.u32("grab event mask")?;
                let modifiers = r.u32("grab modifiers")?;
                let detail = r.u16("grab detail")?;
                let device = r.u16("grab device")?;
                let level = r.u8("grab level")?;
                let event_type = r.u8("grab event type")?;
                let flags_off = r.offset();
                let flags = r.u8("grab flags")?;
                if flags & !31 != 0 {
                    return Err(DecodeError::BadValue {
                        offset: flags_off,
                        value: flags.into(),
                        what: "grab flags",
                    });
                }
                r.skip(1, "grab padding")?;
                let mut mask = |bit: u8, what| -> Result<Option<Vec<u8>>, DecodeError> {
                    Ok(if flags & bit != 0 {
                        Some(r.bytes(PassiveGrabInfo::MASK_BYTES, what)?.to_vec())
                    } else {
                        None
                    })
                };
                let modifier_mask = mask(8, "grab modifier mask")?;
                let detail_mask = mask(16, "grab detail mask")?;
                Detail::PassiveGrab(PassiveGrabInfo {
                    window,
                    confine_to,
                    cursor,
                    event_mask,
                    modifiers,
                    detail,
                    device,
                    level,
                    event_type,
                    owner_events: flags & 1 != 0,
                    pointer_mode: (flags >> 1) & 1,
                    keyboard_mode: (flags >> 2) & 1,
                    modifier_mask,
                    detail_mask,
                })
            }
            12 => {
                let drawable = r.u32("damage drawable")?;
                let level = r.u8("damage report level")?;
                r.skip(3, "damage padding")?;
                if level > 3 {
                    return Err(DecodeError::BadValue {
                        offset: code_off,
                        value: level.into(),
                        what: "damage report level",
                    });
                }
                Detail::Damage(DamageInfo { drawable, level })
            }
            13 => {
                let raw = r.u32("shm segment shmid")?;
                let size = r.u32("shm segment size")?;
                let flags_off = r.offset();
                let flags = r.u8("shm segment flags")?;
                r.skip(3, "shm segment padding")?;
                if flags > 3 || ((flags & 2 != 0) != (raw == u32::MAX)) {
                    return Err(DecodeError::BadValue {
                        offset: flags_off,
                        value: flags.into(),
                        what: "shm segment flags",
                    });
                }
                Detail::ShmSegment(ShmSegmentInfo {
                    shmid: (flags & 2 == 0).then_some(raw),
                    size,
                    read_only: flags & 1 != 0,
                })
            }
            14 => {
                let depth = r.u8("shm pixmap depth")?;
                let bits_per_pixel = r.u8("shm pixmap bpp")?;
                r.skip(2, "shm pixmap padding")?;
                let width = r.u16("shm pixmap width")?;
                let height = r.u16("shm pixmap height")?;
                let segment = r.u32("shm pixmap segment")?;
                let offset = r.u32("shm pixmap offset")?;
                Detail::ShmPixmap(ShmPixmapInfo {
                    pixmap: PixmapInfo {
                        depth,
                        bits_per_pixel,
                        width,
                        height,
                    },
                    segment,
                    offset,
                })
            }
            15 => Detail::GlxDrawable(GlxDrawableInfo {
                drawable: r.u32("glx drawable's drawable")?,
            }),
            16 => Detail::PresentEvent(PresentEventInfo {
                window: r.u32("present event window")?,
                event_mask: r.u32("present event mask")?,
            }),
            v => {
                return Err(DecodeError::BadValue {
                    offset: code_off,
                    value: v.into(),
                    what: "detail kind",
                })
            }
        };
        r.pad4("detail padding")?;
        r.finish("resource detail")?;
        Ok(d)
    }
}

fn decode_gc(r: &mut Reader<'_>) -> Result<GcValues, DecodeError> {
    let function = r.u8("gc function")?;
    let line_style = r.u8("gc line_style")?;
    let cap_style = r.u8("gc cap_style")?;
    let join_style = r.u8("gc join_style")?;
    let fill_style = r.u8("gc fill_style")?;
    let fill_rule = r.u8("gc fill_rule")?;
    let subwindow_mode = r.u8("gc subwindow_mode")?;
    let arc_mode = r.u8("gc arc_mode")?;
    let off = r.offset();
    let graphics_exposures = bool_from(r.u8("gc graphics_exposures")?, off, "graphics_exposures")?;
    let tk_off = r.offset();
    let tk = r.u8("gc tile kind")?;
    let depth = r.u8("gc depth")?;
    let ck_off = r.offset();
    let ck = r.u8("gc clip kind")?;
    let plane_mask = r.u32("gc plane_mask")?;
    let foreground = r.u32("gc foreground")?;
    let background = r.u32("gc background")?;
    let line_width = r.u16("gc line_width")?;
    let dash_offset = r.u16("gc dash_offset")?;
    let tv = r.u32("gc tile")?;
    let stipple = r.u32("gc stipple")?;
    let font = r.u32("gc font")?;
    let ts_x_origin = r.i16("gc ts_x_origin")?;
    let ts_y_origin = r.i16("gc ts_y_origin")?;
    let clip_x_origin = r.i16("gc clip_x_origin")?;
    let clip_y_origin = r.i16("gc clip_y_origin")?;
    let n_rects = r.u32("gc clip rectangle count")? as usize;
    let n_dashes = r.u16("gc dash count")? as usize;
    r.skip(2, "gc padding")?;
    let rects = decode_rects(r, n_rects)?;
    let dashes = r.bytes(n_dashes, "gc dashes")?.to_vec();
    let tile = match tk {
        0 => Tile::Pixel(tv),
        1 => Tile::Pixmap(tv),
        v => {
            return Err(DecodeError::BadValue {
                offset: tk_off,
                value: v.into(),
                what: "gc tile kind",
            })
        }
    };
    Ok(GcValues {
        depth,
        function,
        plane_mask,
        foreground,
        background,
        line_width,
        line_style,
        cap_style,
        join_style,
        fill_style,
        fill_rule,
        tile,
        stipple,
        ts_x_origin,
        ts_y_origin,
        font,
        subwindow_mode,
        graphics_exposures,
        clip_x_origin,
        clip_y_origin,
        clip: clip_from(ck, ck_off, rects)?,
        dash_offset,
        dashes,
        arc_mode,
    })
}

fn decode_cursor(r: &mut Reader<'_>) -> Result<CursorImage, DecodeError> {
    let width = r.u16("cursor width")?;
    let height = r.u16("cursor height")?;
    let x_hot = r.u16("cursor x_hot")?;
    let y_hot = r.u16("cursor y_hot")?;
    let mut rgb = [0u16; 6];
    for v in &mut rgb {
        *v = r.u16("cursor colour")?;
    }
    let name = r.u32("cursor name atom")?;
    let kind_off = r.offset();
    let kind = r.u8("cursor image kind")?;
    r.skip(3, "cursor padding")?;
    let len_off = r.offset();
    let len = r.u32("cursor image length")? as usize;
    let data = r.bytes(len, "cursor image")?;
    let bad_len = |expected: usize| DecodeError::LengthMismatch {
        offset: len_off,
        declared: len,
        actual: expected,
    };
    let image = match kind {
        0 if len == 0 => CursorBits::None,
        0 => return Err(bad_len(0)),
        1 => {
            let plane = bitmap_stride(width) * usize::from(height);
            if len != plane * 2 {
                return Err(bad_len(plane * 2));
            }
            CursorBits::Bitmap {
                source: data[..plane].to_vec(),
                mask: data[plane..].to_vec(),
            }
        }
        2 => {
            let px = usize::from(width) * usize::from(height);
            if len != px * 4 {
                return Err(bad_len(px * 4));
            }
            let mut sub = Reader::new(data, r_order(r), len_off + 4);
            let mut v = Vec::with_capacity(px);
            for _ in 0..px {
                v.push(sub.u32("ARGB pixel")?);
            }
            CursorBits::Argb(v)
        }
        v => {
            return Err(DecodeError::BadValue {
                offset: kind_off,
                value: v.into(),
                what: "cursor image kind",
            })
        }
    };
    Ok(CursorImage {
        width,
        height,
        x_hot,
        y_hot,
        fore_rgb: [rgb[0], rgb[1], rgb[2]],
        back_rgb: [rgb[3], rgb[4], rgb[5]],
        name,
        image,
    })
}

fn r_order(r: &Reader<'_>) -> crate::ByteOrder {
    r.order()
}

fn encode_picture(w: &mut Writer, p: &PictureInfo) {
    let (sk, drawable, solid, grad) = match &p.source {
        PictureSource::Drawable(d) => (0u8, *d, [0u16; 4], None),
        PictureSource::SolidFill(c) => (1, 0, *c, None),
        PictureSource::Gradient(g) => (
            match g.kind {
                GradientKind::Linear => 2,
                GradientKind::Radial => 3,
                GradientKind::Conical => 4,
            },
            0,
            [0; 4],
            Some(g),
        ),
    };
    let (ck, rects) = clip_parts(&p.clip);
    let params: &[i32] = grad.map_or(&[], |g| g.params.as_slice());
    let stops: &[GradientStop] = grad.map_or(&[], |g| g.stops.as_slice());
    let params = &params[..params.len().min(u16::MAX as usize)];
    let stops = &stops[..stops.len().min(u16::MAX as usize)];
    let fparams = &p.filter_params[..p.filter_params.len().min(u16::MAX as usize)];
    w.u32(p.format);
    w.u8(sk);
    w.u8(p.repeat);
    w.u8(u8::from(p.component_alpha));
    w.u8(p.subwindow_mode);
    w.u8(p.poly_edge);
    w.u8(p.poly_mode);
    w.u8(u8::from(p.transform.is_some()));
    w.u8(ck);
    w.u32(drawable);
    w.u32(p.alpha_map);
    w.i16(p.alpha_x_origin);
    w.i16(p.alpha_y_origin);
    w.i16(p.clip_x_origin);
    w.i16(p.clip_y_origin);
    w.u16(latin1_len(&p.filter));
    w.u16(fparams.len() as u16);
    w.u32(rects.len() as u32);
    w.u16(params.len() as u16);
    w.u16(stops.len() as u16);
    w.u8(u8::from(p.graphics_exposures));
    w.u8(u8::from(p.orphan.is_some()));
    w.zeros(2);
    for c in solid {
        w.u16(c);
    }
    for v in p.transform.unwrap_or([0; 9]) {
        w.i32(v);
    }
    latin1_encode(w, &p.filter);
    w.pad4();
    for v in fparams {
        w.i32(*v);
    }
    encode_rects(w, rects);
    for v in params {
        w.i32(*v);
    }
    for s in stops {
        w.i32(s.offset);
        for c in s.color {
            w.u16(c);
        }
    }
    if let Some(o) = &p.orphan {
        let image = &o.image[..o.image.len().min(MAX_ORPHAN_IMAGE)];
        w.u16(o.width);
        w.u16(o.height);
        w.u8(o.depth);
        w.u8(o.bits_per_pixel);
        w.zeros(2);
        w.u32(image.len() as u32);
        w.bytes(image);
        w.pad4();
    }
}

fn decode_picture(r: &mut Reader<'_>) -> Result<PictureInfo, DecodeError> {
    let format = r.u32("picture format")?;
    let sk_off = r.offset();
    let sk = r.u8("picture source kind")?;
    let repeat = r.u8("picture repeat")?;
    let off = r.offset();
    let component_alpha = bool_from(r.u8("picture component_alpha")?, off, "component_alpha")?;
    let subwindow_mode = r.u8("picture subwindow_mode")?;
    let poly_edge = r.u8("picture poly_edge")?;
    let poly_mode = r.u8("picture poly_mode")?;
    let off = r.offset();
    let has_transform = bool_from(r.u8("picture has_transform")?, off, "has_transform")?;
    let ck_off = r.offset();
    let ck = r.u8("picture clip kind")?;
    let drawable = r.u32("picture drawable")?;
    let alpha_map = r.u32("picture alpha_map")?;
    let alpha_x_origin = r.i16("picture alpha_x_origin")?;
    let alpha_y_origin = r.i16("picture alpha_y_origin")?;
    let clip_x_origin = r.i16("picture clip_x_origin")?;
    let clip_y_origin = r.i16("picture clip_y_origin")?;
    let filter_len = r.u16("picture filter name length")? as usize;
    let n_fparams = r.u16("picture filter parameter count")? as usize;
    let n_rects = r.u32("picture clip rectangle count")? as usize;
    let n_params = r.u16("gradient parameter count")? as usize;
    let n_stops = r.u16("gradient stop count")? as usize;
    let off = r.offset();
    let graphics_exposures = bool_from(
        r.u8("picture graphics_exposures")?,
        off,
        "graphics_exposures",
    )?;
    let off = r.offset();
    let has_orphan = bool_from(r.u8("picture orphan drawable follows")?, off, "orphan flag")?;
    r.skip(2, "picture padding")?;
    let mut solid = [0u16; 4];
    for c in &mut solid {
        *c = r.u16("solid fill colour")?;
    }
    let mut t = [0i32; 9];
    for v in &mut t {
        *v = r.i32("transform")?;
    }
    let filter = latin1_decode(r.bytes(filter_len, "filter name")?);
    r.pad4("filter name padding")?;
    r.check_count(n_fparams, 4, "filter parameters")?;
    let filter_params = (0..n_fparams)
        .map(|_| r.i32("filter parameter"))
        .collect::<Result<Vec<_>, _>>()?;
    let rects = decode_rects(r, n_rects)?;
    r.check_count(n_params, 4, "gradient parameters")?;
    let params = (0..n_params)
        .map(|_| r.i32("gradient parameter"))
        .collect::<Result<Vec<_>, _>>()?;
    r.check_count(n_stops, 12, "gradient stops")?;
    let mut stops = Vec::with_capacity(n_stops);
    for _ in 0..n_stops {
        let offset = r.i32("stop offset")?;
        let mut color = [0u16; 4];
        for c in &mut color {
            *c = r.u16("stop colour")?;
        }
        stops.push(GradientStop { offset, color });
    }
    let orphan = if has_orphan {
        let width = r.u16("orphan width")?;
        let height = r.u16("orphan height")?;
        let depth = r.u8("orphan depth")?;
        let bits_per_pixel = r.u8("orphan bits per pixel")?;
        r.skip(2, "orphan padding")?;
        let off = r.offset();
        let len = r.u32("orphan image length")? as usize;
        if len > MAX_ORPHAN_IMAGE {
            return Err(DecodeError::BadValue {
                offset: off,
                value: len as u32,
                what: "orphan image length",
            });
        }
        let image = r.bytes(len, "orphan image")?.to_vec();
        r.pad4("orphan image padding")?;
        Some(OrphanDrawable {
            width,
            height,
            depth,
            bits_per_pixel,
            image,
        })
    } else {
        None
    };
    let grad = |kind| {
        PictureSource::Gradient(GradientInfo {
            kind,
            params: params.clone(),
            stops: stops.clone(),
        })
    };
    let source = match sk {
        0 => PictureSource::Drawable(drawable),
        1 => PictureSource::SolidFill(solid),
        2 => grad(GradientKind::Linear),
        3 => grad(GradientKind::Radial),
        4 => grad(GradientKind::Conical),
        v => {
            return Err(DecodeError::BadValue {
                offset: sk_off,
                value: v.into(),
                what: "picture source kind",
            })
        }
    };
    Ok(PictureInfo {
        format,
        source,
        repeat,
        filter,
        filter_params,
        transform: has_transform.then_some(t),
        clip: clip_from(ck, ck_off, rects)?,
        clip_x_origin,
        clip_y_origin,
        alpha_map,
        alpha_x_origin,
        alpha_y_origin,
        component_alpha,
        subwindow_mode,
        poly_edge,
        poly_mode,
        graphics_exposures,
        orphan,
    })
}
