//! The window-session model: plain serde data describing every resource one X client owns.
//! Capture fills it from a live connection, the file module stores it, regenerate turns it back
//! into requests. Resource IDs and atoms are the *source server's* numbers; `crate::remap`
//! rewrites them (for comparison and translation).
//!
//! Conventions: `Option::None` on a state field means "unknown" (the extension was absent and no
//! hint was given) and is also listed in [`Session::unknown`]; it is never silently filled in.
//! Multi-byte property data and image data are stored little-endian.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Who/when/where of a capture.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Application name (WM_CLASS instance, or what the caller says).
    pub app_name: String,
    /// Process ID of the application, if known.
    pub pid: Option<u32>,
    /// Capture time, seconds since the Unix epoch.
    pub time_unix: u64,
    /// Display the session was captured from (e.g. `":1"`).
    pub source_display: String,
    /// Program that wrote it (`winsession <version>`).
    pub producer: String,
}

/// A whole window session.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Capture metadata.
    pub header: Header,
    /// Facts about the source server the application relied on.
    pub setup: SetupFacts,
    /// Name of every atom referenced anywhere in the session (source atom number → name).
    pub atoms: BTreeMap<u32, String>,
    /// Windows, parents before children, siblings bottom-to-top (stacking order).
    pub windows: Vec<Window>,
    /// Pixmaps, by ID.
    pub pixmaps: Vec<Pixmap>,
    /// Graphics contexts, by ID.
    pub gcs: Vec<Gc>,
    /// Fonts, by ID.
    pub fonts: Vec<Font>,
    /// Cursors, by ID.
    pub cursors: Vec<Cursor>,
    /// Colormaps the client created, by ID.
    pub colormaps: Vec<Colormap>,
    /// RENDER pictures, by ID.
    pub pictures: Vec<Picture>,
    /// RENDER glyph sets, by ID.
    pub glyphsets: Vec<GlyphSet>,
    /// XFIXES regions, by ID.
    pub regions: Vec<Region>,
    /// DAMAGE objects, by ID.
    pub damages: Vec<Damage>,
    /// SYNC counters, by ID.
    pub counters: Vec<Counter>,
    /// SYNC fences, by ID.
    pub fences: Vec<Fence>,
    /// MIT-SHM segments the client attached, by ID.
    pub shm_segments: Vec<ShmSegment>,
    /// XKEYBOARD per-client state, when the client initialised XKB (`None`: it did not, or the
    /// server has no XKB).
    pub xkb: Option<XkbClient>,
    /// XInput 2 event selections of this client (on its windows and on the root).
    pub xi_selections: Vec<XiSelection>,
    /// The source server's XInput 2 devices (ID, use, name), recorded when the client has XI2
    /// selections: device IDs are server-allocated, so regeneration maps them by (use, name).
    pub xi_devices: Vec<XiDevice>,
    /// XFIXES selection inputs (`XFixesSelectSelectionInput`) of this client; empty when none
    /// or unknown (without the GUIEVICT extension they cannot be read back: see `unknown`).
    pub selection_inputs: Vec<SelectionInput>,
    /// Core event mask this client selected on the root window.
    pub root_event_mask: u32,
    /// Extension versions the client negotiated (or that regeneration must negotiate for it:
    /// many extensions refuse requests from clients that did not ask for a version first).
    pub client_versions: Vec<ClientVersion>,
    /// Selections owned by one of the client's windows.
    pub selections: Vec<Selection>,
    /// Input focus, when it is on one of the client's windows.
    pub focus: Option<Focus>,
    /// Resources of kinds the model does not (yet) describe: reported, not recreated.
    pub other_resources: Vec<OtherResource>,
    /// Human-readable list of state that could not be captured (e.g. "gc 0x400003: values
    /// (GUIEVICT extension absent)").
    pub unknown: Vec<String>,
    /// Core passive grabs (`GrabKey`, `GrabButton`) of this client, on its own windows and on
    /// the root (format 5; read by the GUIEVICT extension ≥ 1.3, empty without it).
    /// New fields stay at the end of `Session`: a format-4 body plus the encoding of the empty
    /// new fields is a valid format-5 body (see `file`).
    pub passive_grabs: Vec<PassiveGrab>,
    /// DOUBLE-BUFFER back buffers of this client's windows (format 5).
    pub dbe_buffers: Vec<DbeBuffer>,
    /// Pixmaps whose pixels are a segment's memory (ShmCreatePixmap), by pixmap ID; each is
    /// also in `pixmaps` (format 6; read by the GUIEVICT extension ≥ 1.5 or recorded by guimux).
    pub shm_pixmaps: Vec<ShmPixmap>,
    /// GLX rendering contexts and GLX windows of a direct-rendering client (format 7; see
    /// `glx`).
    pub glx: GlxState,
    /// References (property data such as WM_HINTS' window group) to IDs that named nothing on
    /// the source server: copied as they are, which carries them exactly (format 7).
    pub dangling_refs: Vec<u32>,
    /// Present event selections (`PresentSelectInput`) of this client (format 7; read by the
    /// GUIEVICT extension ≥ 1.7).
    pub present_events: Vec<PresentSelection>,
    /// GLX pbuffers of a direct-rendering client, with their contents (format 8; see `glx`).
    pub glx_pbuffers: Vec<GlxPbuffer>,
    /// Active pointer and keyboard grabs the client held (format 9; read by the GUIEVICT
    /// extension ≥ 1.8).
    pub active_grabs: Vec<ActiveGrab>,
    /// Freed pixmaps that pictures keep alive, with their pixels (format 9).
    pub freed_drawables: Vec<FreedDrawable>,
}

/// A visual of the source screen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visual {
    /// Visual ID.
    pub id: u32,
    /// Depth of the visual.
    pub depth: u8,
    /// Visual class (0 StaticGray … 5 DirectColor).
    pub class: u8,
    /// Bits per RGB value.
    pub bits_per_rgb: u8,
    /// Colormap entries.
    pub colormap_entries: u16,
    /// Red mask.
    pub red_mask: u32,
    /// Green mask.
    pub green_mask: u32,
    /// Blue mask.
    pub blue_mask: u32,
}

/// One ZPixmap format of the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PixmapFormat {
    /// Depth.
    pub depth: u8,
    /// Bits per pixel in ZPixmap images.
    pub bits_per_pixel: u8,
    /// Scanline pad in bits.
    pub scanline_pad: u8,
}

/// Server facts the application depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupFacts {
    /// Root window of the screen the app uses.
    pub root: u32,
    /// Root visual.
    pub root_visual: u32,
    /// Root depth.
    pub root_depth: u8,
    /// Default colormap.
    pub default_colormap: u32,
    /// White pixel.
    pub white_pixel: u32,
    /// Black pixel.
    pub black_pixel: u32,
    /// Screen size in pixels.
    pub width: u16,
    /// Screen size in pixels.
    pub height: u16,
    /// Client resource ID base.
    pub resource_id_base: u32,
    /// Client resource ID mask.
    pub resource_id_mask: u32,
    /// Image byte order (0 LSB first, 1 MSB first).
    pub image_byte_order: u8,
    /// ZPixmap formats.
    pub pixmap_formats: Vec<PixmapFormat>,
    /// Visuals of the screen.
    pub visuals: Vec<Visual>,
    /// RENDER picture formats of the server (empty when it has no RENDER).
    pub pict_formats: Vec<PictFormat>,
    /// Vendor string.
    pub vendor: String,
    /// Release number.
    pub release: u32,
}

impl SetupFacts {
    /// Bits per pixel for a depth, if the server has that format.
    pub fn bpp(&self, depth: u8) -> Option<u8> {
        self.pixmap_formats
            .iter()
            .find(|f| f.depth == depth)
            .map(|f| f.bits_per_pixel)
    }

    /// The visual with this ID.
    pub fn visual(&self, id: u32) -> Option<&Visual> {
        self.visuals.iter().find(|v| v.id == id)
    }
}

/// Window background.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Background {
    /// No background (contents left as they are).
    None,
    /// ParentRelative.
    ParentRelative,
    /// A solid pixel.
    Pixel(u32),
    /// A tiled pixmap.
    Pixmap(u32),
}

/// Window border.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Border {
    /// CopyFromParent.
    CopyFromParent,
    /// A solid pixel.
    Pixel(u32),
    /// A tiled pixmap.
    Pixmap(u32),
}

/// A window property.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Property {
    /// Property name (atom).
    pub name: u32,
    /// Type (atom).
    pub type_: u32,
    /// Format: 8, 16 or 32.
    pub format: u8,
    /// Data; 16- and 32-bit items little-endian.
    pub data: Vec<u8>,
}

impl Property {
    /// The data as 32-bit items (empty unless format is 32).
    pub fn items32(&self) -> Vec<u32> {
        if self.format != 32 {
            return Vec::new();
        }
        self.data
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    /// Replace the data with 32-bit items.
    pub fn set_items32(&mut self, items: &[u32]) {
        self.data = items.iter().flat_map(|v| v.to_le_bytes()).collect();
    }
}

/// One window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Window ID.
    pub id: u32,
    /// Parent window (the root for top-levels).
    pub parent: u32,
    /// 1 InputOutput, 2 InputOnly.
    pub class: u16,
    /// Depth (0 for InputOnly).
    pub depth: u8,
    /// Visual ID.
    pub visual: u32,
    /// Geometry relative to the parent.
    pub x: i16,
    /// Geometry relative to the parent.
    pub y: i16,
    /// Inside width.
    pub width: u16,
    /// Inside height.
    pub height: u16,
    /// Border width.
    pub border_width: u16,
    /// Bit gravity.
    pub bit_gravity: u8,
    /// Window gravity.
    pub win_gravity: u8,
    /// Backing store (0 NotUseful, 1 WhenMapped, 2 Always).
    pub backing_store: u8,
    /// Backing planes.
    pub backing_planes: u32,
    /// Backing pixel.
    pub backing_pixel: u32,
    /// Save-under.
    pub save_under: bool,
    /// Override-redirect.
    pub override_redirect: bool,
    /// Colormap (0 = None).
    pub colormap: u32,
    /// The event mask *this client* selected on the window.
    pub event_mask: u32,
    /// Union of all clients' event masks (informational).
    pub all_event_masks: u32,
    /// Do-not-propagate mask.
    pub do_not_propagate_mask: u16,
    /// Map state: 0 Unmapped, 1 Unviewable, 2 Viewable.
    pub map_state: u8,
    /// Background; `None` = unknown.
    pub background: Option<Background>,
    /// Border; `None` = unknown.
    pub border: Option<Border>,
    /// Cursor (0 = None); `None` = unknown.
    pub cursor: Option<u32>,
    /// Properties, sorted by name atom.
    pub properties: Vec<Property>,
    /// SHAPE state; `None` = unknown (the server had no SHAPE extension at capture).
    pub shape: Option<WindowShape>,
}

impl Window {
    /// Whether the window was mapped (MapWindow was done on it).
    pub fn mapped(&self) -> bool {
        self.map_state != 0
    }
}

/// A ZPixmap image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Depth.
    pub depth: u8,
    /// Bits per pixel.
    pub bits_per_pixel: u8,
    /// Scanline pad (bits).
    pub scanline_pad: u8,
    /// Width.
    pub width: u16,
    /// Height.
    pub height: u16,
    /// Pixel data, rows padded to `scanline_pad`, little-endian pixels.
    #[serde(with = "crate::blob")]
    pub data: Vec<u8>,
}

impl Image {
    /// Bytes per row.
    pub fn stride(&self) -> usize {
        stride(self.width, self.bits_per_pixel, self.scanline_pad)
    }
}

/// Bytes per row of a ZPixmap image.
pub fn stride(width: u16, bpp: u8, pad: u8) -> usize {
    let bits = usize::from(width) * usize::from(bpp);
    let pad = usize::from(pad.max(8));
    bits.div_ceil(pad) * pad / 8
}

/// One pixmap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pixmap {
    /// Pixmap ID.
    pub id: u32,
    /// Depth.
    pub depth: u8,
    /// Width.
    pub width: u16,
    /// Height.
    pub height: u16,
    /// Contents, when captured.
    pub contents: Option<Image>,
}

/// A GC clip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Clip {
    /// No clipping.
    None,
    /// A bitmap.
    Pixmap(u32),
    /// A list of rectangles (x, y, w, h) with an ordering (0 Unsorted … 3 YXBanded).
    Rectangles {
        /// Ordering hint.
        ordering: u8,
        /// Rectangles.
        rects: Vec<(i16, i16, u16, u16)>,
    },
}

/// Every value of a GC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcValues {
    /// Raster function (3 = Copy).
    pub function: u8,
    /// Plane mask.
    pub plane_mask: u32,
    /// Foreground pixel.
    pub foreground: u32,
    /// Background pixel.
    pub background: u32,
    /// Line width.
    pub line_width: u16,
    /// Line style.
    pub line_style: u8,
    /// Cap style.
    pub cap_style: u8,
    /// Join style.
    pub join_style: u8,
    /// Fill style.
    pub fill_style: u8,
    /// Fill rule.
    pub fill_rule: u8,
    /// Tile pixmap (0 = the server's default tile).
    pub tile: u32,
    /// Stipple pixmap (0 = default).
    pub stipple: u32,
    /// Tile/stipple origin.
    pub ts_x: i16,
    /// Tile/stipple origin.
    pub ts_y: i16,
    /// Font (0 = the server's default font).
    pub font: u32,
    /// Subwindow mode.
    pub subwindow_mode: u8,
    /// Graphics exposures.
    pub graphics_exposures: bool,
    /// Clip origin.
    pub clip_x: i16,
    /// Clip origin.
    pub clip_y: i16,
    /// Clip.
    pub clip: Clip,
    /// Dash offset.
    pub dash_offset: u16,
    /// Dash list.
    pub dashes: Vec<u8>,
    /// Arc mode.
    pub arc_mode: u8,
}

impl Default for GcValues {
    /// The protocol's defaults for a fresh GC (foreground 0, background 1, …).
    fn default() -> Self {
        Self {
            function: 3,
            plane_mask: !0,
            foreground: 0,
            background: 1,
            line_width: 0,
            line_style: 0,
            cap_style: 1,
            join_style: 0,
            fill_style: 0,
            fill_rule: 0,
            tile: 0,
            stipple: 0,
            ts_x: 0,
            ts_y: 0,
            font: 0,
            subwindow_mode: 0,
            graphics_exposures: true,
            clip_x: 0,
            clip_y: 0,
            clip: Clip::None,
            dash_offset: 0,
            dashes: vec![4, 4],
            arc_mode: 1,
        }
    }
}

/// One graphics context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gc {
    /// GC ID.
    pub id: u32,
    /// Depth of the drawables it works on (0 = unknown).
    pub depth: u8,
    /// Values; `None` = unknown.
    pub values: Option<GcValues>,
}

/// Metrics of one character (or a font's min/max bounds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CharInfo {
    /// Left side bearing.
    pub left_side_bearing: i16,
    /// Right side bearing.
    pub right_side_bearing: i16,
    /// Advance width.
    pub character_width: i16,
    /// Ascent.
    pub ascent: i16,
    /// Descent.
    pub descent: i16,
    /// Attributes.
    pub attributes: u16,
}

/// Font metrics (from QueryFont), used to pick the closest font on a server that lacks it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FontMetrics {
    /// Minimum bounds.
    pub min_bounds: CharInfo,
    /// Maximum bounds.
    pub max_bounds: CharInfo,
    /// First character.
    pub min_char_or_byte2: u16,
    /// Last character.
    pub max_char_or_byte2: u16,
    /// Default character.
    pub default_char: u16,
    /// Draw direction.
    pub draw_direction: u8,
    /// First row.
    pub min_byte1: u8,
    /// Last row.
    pub max_byte1: u8,
    /// All characters exist.
    pub all_chars_exist: bool,
    /// Font ascent.
    pub font_ascent: i16,
    /// Font descent.
    pub font_descent: i16,
}

/// One font.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Font {
    /// Font ID.
    pub id: u32,
    /// The name the application opened it with, if known (extension or hint).
    pub name: Option<String>,
    /// The font's full XLFD (its `FONT` property), if it has one.
    pub xlfd: Option<String>,
    /// Metrics.
    pub metrics: FontMetrics,
}

impl Font {
    /// The name to open it by: the opened name, else the XLFD.
    pub fn open_name(&self) -> Option<&str> {
        self.name.as_deref().or(self.xlfd.as_deref())
    }
}

/// A cursor's picture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CursorImage {
    /// Two-colour cursor: 1-bit source and mask, rows padded to 32 bits, LSB-first bits.
    Core {
        /// Source bitmap.
        source: Vec<u8>,
        /// Mask bitmap.
        mask: Vec<u8>,
        /// Foreground RGB (16 bits each).
        fore: [u16; 3],
        /// Background RGB.
        back: [u16; 3],
    },
    /// ARGB cursor: premultiplied 0xAARRGGBB, row-major.
    Argb(Vec<u32>),
}

/// How the cursor was made, when that is known (lets regenerate use the same request).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlyphSource {
    /// Font name (usually `cursor`).
    pub font: String,
    /// Source character.
    pub source_char: u16,
    /// Mask font name.
    pub mask_font: String,
    /// Mask character.
    pub mask_char: u16,
    /// Foreground RGB.
    pub fore: [u16; 3],
    /// Background RGB.
    pub back: [u16; 3],
}

/// One cursor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Cursor ID.
    pub id: u32,
    /// Width (0 = unknown).
    pub width: u16,
    /// Height.
    pub height: u16,
    /// Hotspot.
    pub x_hot: u16,
    /// Hotspot.
    pub y_hot: u16,
    /// Picture; `None` = unknown.
    pub image: Option<CursorImage>,
    /// Glyph origin, if known.
    pub glyph: Option<GlyphSource>,
    /// Name given with `XFixesSetCursorName` (Xcursor themes name their cursors), `None` when
    /// the cursor has none.
    pub name: Option<String>,
}

/// One colormap cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColorCell {
    /// Pixel value.
    pub pixel: u32,
    /// RGB.
    pub rgb: [u16; 3],
    /// Channels the cell defines: DoRed 1, DoGreen 2, DoBlue 4 (7 for whole cells; DirectColor
    /// colormaps report one entry per channel).
    pub flags: u8,
}

/// One colormap the client created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Colormap {
    /// Colormap ID.
    pub id: u32,
    /// Visual; `0` = unknown.
    pub visual: u32,
    /// Created with AllocAll (every cell writable); `None` = unknown.
    pub alloc_all: Option<bool>,
    /// Cell contents that matter (all cells when alloc_all).
    pub cells: Vec<ColorCell>,
}

mod ext;
pub use ext::*;
