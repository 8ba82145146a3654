//! Pixel conversion between visuals of different depth: TrueColor pixel values and ZPixmap
//! images flow in in the source format and out in the target format (e.g. 24-bit → 16-bit when
//! a session moves to a `-screen 0 WxHx16` server). Pure functions.

use crate::model::Image;

/// A TrueColor pixel layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PixelLayout {
    /// Red mask.
    pub red: u32,
    /// Green mask.
    pub green: u32,
    /// Blue mask.
    pub blue: u32,
}

fn channel(p: u32, mask: u32) -> (u32, u32) {
    if mask == 0 {
        return (0, 0);
    }
    let shift = mask.trailing_zeros();
    let bits = (mask >> shift).count_ones();
    ((p & mask) >> shift, bits)
}

fn scale(v: u32, from: u32, to: u32) -> u32 {
    if from == 0 || to == 0 {
        return 0;
    }
    let from_max = (1u64 << from) - 1;
    let to_max = (1u64 << to) - 1;
    ((u64::from(v) * to_max + from_max / 2) / from_max) as u32
}

fn put(v: u32, mask: u32) -> u32 {
    if mask == 0 {
        return 0;
    }
    (v << mask.trailing_zeros()) & mask
}

impl PixelLayout {
    /// Convert one pixel value from `self` to `to`, rounding each channel.
    pub fn convert(&self, p: u32, to: &PixelLayout) -> u32 {
        let mut out = 0;
        for (fm, tm) in [
            (self.red, to.red),
            (self.green, to.green),
            (self.blue, to.blue),
        ] {
            let (v, bits) = channel(p, fm);
            out |= put(
                scale(v, bits, (tm >> tm.trailing_zeros().min(31)).count_ones()),
                tm,
            );
        }
        out
    }
}

fn get_pixel(data: &[u8], off: usize, bpp: u8) -> u32 {
    match bpp {
        32 => u32::from_le_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]]),
        24 => u32::from_le_bytes([data[off], data[off + 1], data[off + 2], 0]),
        16 => u32::from(u16::from_le_bytes([data[off], data[off + 1]])),
        8 => u32::from(data[off]),
        _ => 0,
    }
}

fn set_pixel(data: &mut [u8], off: usize, bpp: u8, v: u32) {
    let b = v.to_le_bytes();
    match bpp {
        32 => data[off..off + 4].copy_from_slice(&b),
        24 => data[off..off + 3].copy_from_slice(&b[..3]),
        16 => data[off..off + 2].copy_from_slice(&b[..2]),
        8 => data[off] = b[0],
        _ => {}
    }
}

/// Convert a ZPixmap image to another depth / bits-per-pixel / pad, mapping each pixel with
/// `from.convert(_, to)`. Only byte-aligned formats (8/16/24/32 bpp) are converted; `None`
/// otherwise or when the data is shorter than the geometry says.
pub fn convert_image(
    img: &Image,
    from: &PixelLayout,
    to: &PixelLayout,
    depth: u8,
    bpp: u8,
    pad: u8,
) -> Option<Image> {
    if ![8, 16, 24, 32].contains(&img.bits_per_pixel) || ![8, 16, 24, 32].contains(&bpp) {
        return None;
    }
    let (w, h) = (usize::from(img.width), usize::from(img.height));
    let sst = img.stride();
    if img.data.len() < sst * h {
        return None;
    }
    let out_img = Image {
        depth,
        bits_per_pixel: bpp,
        scanline_pad: pad,
        width: img.width,
        height: img.height,
        data: Vec::new(),
    };
    let dst = out_img.stride();
    let mut data = vec![0u8; dst * h];
    let (sb, db) = (usize::from(img.bits_per_pixel / 8), usize::from(bpp / 8));
    // Cache of the last pixel: images are mostly runs of one colour.
    let mut last = (u32::MAX, 0u32);
    for y in 0..h {
        for x in 0..w {
            let p = get_pixel(&img.data, y * sst + x * sb, img.bits_per_pixel);
            if p != last.0 {
                last = (p, from.convert(p, to));
            }
            set_pixel(&mut data, y * dst + x * db, bpp, last.1);
        }
    }
    Some(Image { data, ..out_img })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RGB888: PixelLayout = PixelLayout {
        red: 0xff0000,
        green: 0xff00,
        blue: 0xff,
    };
    const RGB565: PixelLayout = PixelLayout {
        red: 0xf800,
        green: 0x7e0,
        blue: 0x1f,
    };

    #[test]
    fn pixels() {
        assert_eq!(RGB888.convert(0xffffff, &RGB565), 0xffff);
        assert_eq!(RGB888.convert(0xff0000, &RGB565), 0xf800);
        assert_eq!(RGB888.convert(0x00ff00, &RGB565), 0x07e0);
        assert_eq!(RGB565.convert(0x001f, &RGB888), 0xff);
        assert_eq!(RGB888.convert(0x123456, &RGB888), 0x123456);
    }

    #[test]
    fn image() {
        let img = Image {
            depth: 24,
            bits_per_pixel: 32,
            scanline_pad: 32,
            width: 3,
            height: 2,
            data: [0xff0000u32, 0xff00, 0xff, 0, 0xffffff, 0xff0000]
                .iter()
                .flat_map(|p| p.to_le_bytes())
                .collect(),
        };
        let out = convert_image(&img, &RGB888, &RGB565, 16, 16, 32).unwrap();
        assert_eq!(out.stride(), 8);
        assert_eq!(&out.data[..6], &[0x00, 0xf8, 0xe0, 0x07, 0x1f, 0x00]);
        assert_eq!(&out.data[8..14], &[0, 0, 0xff, 0xff, 0x00, 0xf8]);
    }
}
