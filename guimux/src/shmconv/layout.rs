//! Image layout arithmetic: a server's (or the application's) image formats and an image's
//! format, depth and width flow in, the bytes per row and the number of planes flow out. The
//! application computed its segment layout with one server's formats; the target may pad rows
//! otherwise, so both sides of the conversion re-lay rows with this.

/// Image layout parameters of one server (from its setup), or of the server the application
/// computed its segment layout for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageFormats {
    /// bitmap-format-scanline-pad (XY formats), in bits.
    pub bitmap_pad: u8,
    /// Pixmap formats: (depth, bits per pixel, scanline pad in bits).
    pub formats: Vec<(u8, u8, u8)>,
}

impl ImageFormats {
    pub(super) fn z(&self, depth: u8) -> Option<(u8, u8)> {
        self.formats
            .iter()
            .find(|f| f.0 == depth)
            .map(|f| (f.1, f.2))
    }
}

pub(super) fn pad_bits(bits: usize, pad: u8) -> usize {
    let p = usize::from(pad.max(8));
    bits.div_ceil(p) * p / 8
}

/// Image format codes.
pub(super) const XY_BITMAP: u8 = 0;
pub(super) const XY_PIXMAP: u8 = 1;
pub(super) const Z_PIXMAP: u8 = 2;

/// Bytes per row and rows per plane layout of an image of `width` pixels, `depth`, `format`.
/// Returns (bytes per row, planes).
pub(super) fn layout(
    f: &ImageFormats,
    format: u8,
    depth: u8,
    width: usize,
) -> Option<(usize, usize)> {
    match format {
        Z_PIXMAP => {
            let (bpp, pad) = f.z(depth)?;
            Some((pad_bits(width * usize::from(bpp), pad), 1))
        }
        XY_BITMAP => Some((pad_bits(width, f.bitmap_pad), 1)),
        XY_PIXMAP => Some((pad_bits(width, f.bitmap_pad), usize::from(depth))),
        _ => None,
    }
}
