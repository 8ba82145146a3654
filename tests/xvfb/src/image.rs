//! Screenshots as plain RGB images. Raw ZPixmap bytes from GetImage flow in; comparable RGB
//! buffers, PNG files and diff images flow out.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::ImageOrder;

/// An RGB image, 3 bytes per pixel, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// RGB bytes.
    pub rgb: Vec<u8>,
}

impl Image {
    /// Whether every pixel has the same colour (a window not drawn yet).
    pub fn is_uniform(&self) -> bool {
        self.rgb
            .chunks(3)
            .all(|p| p == &self.rgb[..3.min(self.rgb.len())])
    }

    /// Decode GetImage ZPixmap data of the given depth using the server's pixmap formats.
    /// Supports depth 24/32 (8-8-8) and 16 (5-6-5) TrueColor.
    pub fn from_zpixmap(
        conn: &impl Connection,
        depth: u8,
        width: u32,
        height: u32,
        data: &[u8],
    ) -> Result<Self> {
        let setup = conn.setup();
        let fmt = setup
            .pixmap_formats
            .iter()
            .find(|f| f.depth == depth)
            .with_context(|| format!("server has no pixmap format for depth {depth}"))?;
        let bpp = fmt.bits_per_pixel as usize;
        let pad = fmt.scanline_pad as usize;
        let stride = (width as usize * bpp).div_ceil(pad) * pad / 8;
        let little = setup.image_byte_order == ImageOrder::LSB_FIRST;
        if data.len() < stride * height as usize {
            bail!(
                "image data too short: {} < {}",
                data.len(),
                stride * height as usize
            );
        }
        let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
        for y in 0..height as usize {
            let row = &data[y * stride..];
            for x in 0..width as usize {
                match bpp {
                    32 => {
                        let p = &row[x * 4..x * 4 + 4];
                        let v = if little {
                            u32::from_le_bytes([p[0], p[1], p[2], p[3]])
                        } else {
                            u32::from_be_bytes([p[0], p[1], p[2], p[3]])
                        };
                        rgb.extend_from_slice(&[(v >> 16) as u8, (v >> 8) as u8, v as u8]);
                    }
                    16 => {
                        let p = &row[x * 2..x * 2 + 2];
                        let v = if little {
                            u16::from_le_bytes([p[0], p[1]])
                        } else {
                            u16::from_be_bytes([p[0], p[1]])
                        };
                        let r = ((v >> 11) & 0x1f) as u8;
                        let g = ((v >> 5) & 0x3f) as u8;
                        let b = (v & 0x1f) as u8;
                        rgb.extend_from_slice(&[r << 3 | r >> 2, g << 2 | g >> 4, b << 3 | b >> 2]);
                    }
                    other => bail!("unsupported bits per pixel {other}"),
                }
            }
        }
        Ok(Self { width, height, rgb })
    }

    /// Write as PNG.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        let f =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut enc = png::Encoder::new(std::io::BufWriter::new(f), self.width, self.height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&self.rgb)?;
        Ok(())
    }

    /// Pixel at (x, y).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

/// Result of comparing two screenshots.
#[derive(Clone, Debug)]
pub struct Comparison {
    /// Fraction of equal pixels, 0.0..=1.0 (0.0 when sizes differ).
    pub equal_fraction: f64,
    /// Number of differing pixels.
    pub differing: usize,
    /// Where the PNGs were written when the images differ.
    pub artifacts: Option<PathBuf>,
    /// Fraction of equal pixels among "ink" pixels: those that differ from the first image's
    /// dominant (background) colour in either image. Catches a window that came back blank,
    /// which the plain fraction hides when the drawing covers little of the window.
    pub ink_equal_fraction: f64,
}

impl Comparison {
    /// Whether every pixel is equal.
    pub fn identical(&self) -> bool {
        self.differing == 0 && self.equal_fraction == 1.0
    }
}

/// The bar of "the same picture": 99% of pixels and 95% of ink pixels equal.
pub fn passes(equal_fraction: f64, ink_equal_fraction: f64) -> bool {
    equal_fraction >= 0.99 && ink_equal_fraction >= 0.95
}

/// Whether `b` is the same picture as `a` by [`passes`], without writing any PNG (for polling).
pub fn same_picture(a: &Image, b: &Image) -> bool {
    if a.width != b.width || a.height != b.height {
        return false;
    }
    let differing = a
        .rgb
        .chunks(3)
        .zip(b.rgb.chunks(3))
        .filter(|(x, y)| x != y)
        .count();
    let total = (a.width as usize * a.height as usize).max(1);
    passes(1.0 - differing as f64 / total as f64, ink_equal(a, b))
}

/// The fraction of pixels whose every channel differs by at most `levels` between `a` and `b`
/// (0 when their sizes differ): GL rendering in software (llvmpipe) may round a tile one level
/// differently between two identical draws.
pub fn fraction_within(a: &Image, b: &Image, levels: u8) -> f64 {
    if (a.width, a.height) != (b.width, b.height) {
        return 0.0;
    }
    let near = a
        .rgb
        .chunks_exact(3)
        .zip(b.rgb.chunks_exact(3))
        .filter(|(p, q)| {
            p.iter()
                .zip(q.iter())
                .all(|(x, y)| x.abs_diff(*y) <= levels)
        })
        .count();
    near as f64 / (a.rgb.len() / 3).max(1) as f64
}

/// Compare two images pixel by pixel. When they differ, writes `<name>-a.png`, `<name>-b.png`
/// and `<name>-diff.png` (differing pixels red) under `target/test-artifacts/`.
pub fn compare(a: &Image, b: &Image, name: &str) -> Comparison {
    let ink_equal_fraction = ink_equal(a, b);
    let (equal_fraction, differing, diff) = if a.width != b.width || a.height != b.height {
        (0.0, usize::MAX, None)
    } else {
        let mut diff = Vec::with_capacity(a.rgb.len());
        let mut differing = 0usize;
        for (pa, pb) in a.rgb.chunks(3).zip(b.rgb.chunks(3)) {
            if pa == pb {
                diff.extend_from_slice(&[pa[0] / 3, pa[1] / 3, pa[2] / 3]);
            } else {
                differing += 1;
                diff.extend_from_slice(&[255, 0, 0]);
            }
        }
        let total = (a.width as usize * a.height as usize).max(1);
        (
            1.0 - differing as f64 / total as f64,
            differing,
            Some(Image {
                width: a.width,
                height: a.height,
                rgb: diff,
            }),
        )
    };
    let artifacts = if differing != 0 {
        let dir = crate::artifacts_dir();
        let _ = a.save_png(&dir.join(format!("{name}-a.png")));
        let _ = b.save_png(&dir.join(format!("{name}-b.png")));
        if let Some(d) = diff {
            let _ = d.save_png(&dir.join(format!("{name}-diff.png")));
        }
        Some(dir)
    } else {
        None
    };
    Comparison {
        equal_fraction,
        differing,
        artifacts,
        ink_equal_fraction,
    }
}

/// See [`Comparison::ink_equal_fraction`].
fn ink_equal(a: &Image, b: &Image) -> f64 {
    if a.width != b.width || a.height != b.height {
        return 0.0;
    }
    let mut counts = std::collections::HashMap::new();
    for p in a.rgb.chunks(3) {
        *counts.entry([p[0], p[1], p[2]]).or_insert(0usize) += 1;
    }
    let Some(bg) = counts.into_iter().max_by_key(|(_, n)| *n).map(|(c, _)| c) else {
        return 1.0;
    };
    let (mut ink, mut same) = (0usize, 0usize);
    for (pa, pb) in a.rgb.chunks(3).zip(b.rgb.chunks(3)) {
        if pa != bg || pb != bg {
            ink += 1;
            if pa == pb {
                same += 1;
            }
        }
    }
    if ink == 0 {
        1.0
    } else {
        same as f64 / ink as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(w: u32, h: u32, fill: u8) -> Image {
        Image {
            width: w,
            height: h,
            rgb: vec![fill; (w * h * 3) as usize],
        }
    }

    #[test]
    fn blank_result_fails_the_ink_measure() {
        let mut a = img(100, 100, 255);
        for i in 0..50 {
            a.rgb[i * 3] = 0; // 50 ink pixels = 0.5% of the image
        }
        let blank = img(100, 100, 255);
        let c = compare(&a, &blank, "unit-blank");
        assert!(c.equal_fraction >= 0.99);
        assert_eq!(c.ink_equal_fraction, 0.0);
    }

    #[test]
    fn one_pixel_change_is_detected() {
        let a = img(10, 10, 7);
        let mut b = a.clone();
        b.rgb[3 * 55 + 1] ^= 1;
        let c = compare(&a, &b, "unit-one-pixel");
        assert_eq!(c.differing, 1);
        assert!(!c.identical());
        assert!((c.equal_fraction - 0.99).abs() < 1e-9);
        let dir = c.artifacts.expect("artifacts written");
        assert!(dir.join("unit-one-pixel-diff.png").exists());
    }

    #[test]
    fn equal_images_compare_identical() {
        let a = img(4, 3, 1);
        assert!(compare(&a, &a.clone(), "unit-equal").identical());
    }

    #[test]
    fn size_mismatch_is_total_difference() {
        let c = compare(&img(4, 3, 1), &img(3, 4, 1), "unit-size");
        assert_eq!(c.equal_fraction, 0.0);
    }
}
