//! Pixmaps with their contents: the translated session's pixmaps flow out as CreatePixmap (or
//! ShmCreatePixmap on an attached segment whose layout the target shares) and their images as
//! PutImage in bands that fit the target's maximum request — converted when the depth or
//! format differs, sent as one fill when the image has one colour. The upload helpers here
//! serve the cursors and the DOUBLE-BUFFER back buffers too.

use super::visuals::Numbers;
use super::{depth_layout, Regen, RegenError};
use crate::convert::{convert_image, PixelLayout};
use crate::model::*;
use x11rb::connection::Connection;
use x11rb::protocol::shm::ConnectionExt as _;
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// Create the pixmaps of `t` (target numbers) with their contents; `attached` lists the
/// MIT-SHM segments attached on the target.
pub(super) fn create<C: Connection>(
    cx: &mut Regen<'_, C>,
    t: &Session,
    nums: &Numbers,
    attached: &[u32],
) -> Result<(), RegenError> {
    let conn = cx.conn;
    let src = &cx.session.setup;
    let root = cx.target.root;
    for p in &t.pixmaps {
        let depth = nums.depth(p.depth);
        // A shared pixmap stays shared where the segment is attached and the server lays the
        // pixels out as the source did: its pixels are the application's memory, no upload.
        let shared = t.shm_pixmaps.iter().find(|x| x.id == p.id).filter(|x| {
            attached.contains(&x.segment)
                && depth == p.depth
                && cx.target.bpp(depth) == src.bpp(p.depth)
                && scanline_pad(&cx.target, depth) == scanline_pad(src, p.depth)
        });
        if let Some(x) = shared {
            cx.pend.push(
                "ShmCreatePixmap",
                p.id,
                conn.shm_create_pixmap(
                    p.id,
                    root,
                    p.width.max(1),
                    p.height.max(1),
                    depth,
                    x.segment,
                    x.offset,
                )?,
            );
            cx.out.stats.shm_pixmaps += 1;
            continue;
        }
        if t.shm_pixmaps.iter().any(|x| x.id == p.id) && !attached.is_empty() {
            cx.warn(format!(
                "pixmap {:#x}: made with ShmCreatePixmap, recreated as a copy (its segment is not attached here or the pixel layout differs)",
                p.id
            ));
        }
        cx.pend.push(
            "CreatePixmap",
            p.id,
            conn.create_pixmap(depth, p.id, root, p.width.max(1), p.height.max(1))?,
        );
        let Some(img) = &p.contents else { continue };
        let bpp = cx.target.bpp(depth).unwrap_or(img.bits_per_pixel);
        let pad = cx
            .target
            .pixmap_formats
            .iter()
            .find(|f| f.depth == depth)
            .map(|f| f.scanline_pad)
            .unwrap_or(32);
        let converted;
        let img = if depth != img.depth || bpp != img.bits_per_pixel || pad != img.scanline_pad {
            let (a, b) = nums.convert(src, &cx.target, p.depth).unwrap_or((
                depth_layout(src, p.depth).unwrap_or(PixelLayout {
                    red: 0,
                    green: 0,
                    blue: 0,
                }),
                depth_layout(&cx.target, depth).unwrap_or(PixelLayout {
                    red: 0,
                    green: 0,
                    blue: 0,
                }),
            ));
            match convert_image(img, &a, &b, depth, bpp, pad) {
                Some(c) => {
                    converted = c;
                    &converted
                }
                None => {
                    cx.warn(format!(
                        "pixmap {:#x}: cannot convert {}-bpp contents to {bpp} bpp; left blank",
                        p.id, img.bits_per_pixel
                    ));
                    continue;
                }
            }
        } else {
            img
        };
        let gc = match cx.scratch.gcs.get(&depth) {
            Some(&g) => g,
            None => {
                let g = conn.generate_id()?;
                cx.pend.push(
                    "CreateGC(scratch)",
                    g,
                    conn.create_gc(g, p.id, &xproto::CreateGCAux::new().graphics_exposures(0))?,
                );
                cx.scratch.gcs.insert(depth, g);
                g
            }
        };
        put_image_chunked(cx, p.id, gc, img)?;
        cx.out.stats.pixmap_bytes += img.data.len() as u64;
    }
    Ok(())
}

/// Scanline pad of `depth`'s image format on a server (32 when it has none).
fn scanline_pad(s: &SetupFacts, depth: u8) -> u8 {
    s.pixmap_formats
        .iter()
        .find(|f| f.depth == depth)
        .map(|f| f.scanline_pad)
        .unwrap_or(32)
}

/// The pixel value of an image whose every pixel has the same value (8, 16 or 32 bits per
/// pixel, little-endian data as captured; bits above the depth ignored).
fn uniform_pixel(img: &Image) -> Option<u32> {
    let bytes = match img.bits_per_pixel {
        8 => 1,
        16 => 2,
        32 => 4,
        _ => return None,
    };
    let (w, h) = (usize::from(img.width), usize::from(img.height));
    if w == 0 || h == 0 || img.depth == 0 {
        return None;
    }
    let mask = if img.depth >= 32 {
        u32::MAX
    } else {
        (1u32 << img.depth) - 1
    };
    let stride = img.stride();
    let value = |px: &[u8]| {
        let mut b = [0u8; 4];
        b[..bytes].copy_from_slice(px);
        u32::from_le_bytes(b) & mask
    };
    let first = value(img.data.get(..bytes)?);
    for y in 0..h {
        let row = img.data.get(y * stride..y * stride + w * bytes)?;
        if !row.chunks_exact(bytes).all(|px| value(px) == first) {
            return None;
        }
    }
    Some(first)
}

/// PutImage in row bands that fit the server's maximum request length (a fill when the image
/// has one colour).
pub(super) fn put_image_chunked<C: Connection>(
    cx: &mut Regen<'_, C>,
    drawable: u32,
    gc: u32,
    img: &Image,
) -> Result<(), RegenError> {
    let (conn, target, max_req) = (cx.conn, &cx.target, cx.max_req);
    let pend = &mut cx.pend;
    // A picture of one colour goes as a fill: a few bytes instead of the whole image (issue
    // 15: bytes matter on a link).
    if let Some(pixel) = uniform_pixel(img) {
        pend.push(
            "ChangeGC(fill)",
            drawable,
            conn.change_gc(gc, &xproto::ChangeGCAux::new().foreground(pixel))?,
        );
        pend.push(
            "PolyFillRectangle(uniform image)",
            drawable,
            conn.poly_fill_rectangle(
                drawable,
                gc,
                &[xproto::Rectangle {
                    x: 0,
                    y: 0,
                    width: img.width,
                    height: img.height,
                }],
            )?,
        );
        return Ok(());
    }
    let stride = img.stride().max(1);
    let rows = ((max_req.saturating_sub(64)) / stride).clamp(1, usize::from(img.height.max(1)));
    let mut y = 0usize;
    let h = usize::from(img.height);
    while y < h {
        let n = rows.min(h - y);
        let Some(band) = img.data.get(y * stride..(y + n) * stride) else {
            break;
        };
        let band = if target.image_byte_order == 1 {
            let mut b = band.to_vec();
            crate::capture::swap_pixels(&mut b, img.bits_per_pixel);
            std::borrow::Cow::Owned(b)
        } else {
            std::borrow::Cow::Borrowed(band)
        };
        pend.push(
            "PutImage",
            drawable,
            conn.put_image(
                xproto::ImageFormat::Z_PIXMAP,
                drawable,
                gc,
                img.width,
                n as u16,
                0,
                y as i16,
                0,
                img.depth,
                &band,
            )?,
        );
        y += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(depth: u8, bpp: u8, width: u16, height: u16, data: Vec<u8>) -> Image {
        Image {
            depth,
            bits_per_pixel: bpp,
            scanline_pad: 32,
            width,
            height,
            data,
        }
    }

    #[test]
    fn uniform_images_are_told_by_their_pixels_not_their_padding() {
        // 3×2 at 32 bpp, depth 24: the unused top byte differs, the pixels do not.
        let mut d = Vec::new();
        for i in 0..6u8 {
            d.extend_from_slice(&[0x11, 0x22, 0x33, i]);
        }
        assert_eq!(uniform_pixel(&img(24, 32, 3, 2, d.clone())), Some(0x332211));
        d[4 * 4] = 0x12;
        assert_eq!(uniform_pixel(&img(24, 32, 3, 2, d)), None);
        // 8 bpp rows padded to 4 bytes: the padding may hold anything.
        let d = vec![7, 7, 7, 0xff, 7, 7, 7, 0x00];
        assert_eq!(uniform_pixel(&img(8, 8, 3, 2, d)), Some(7));
        // 1 bpp is not judged (sent as an image).
        assert_eq!(uniform_pixel(&img(1, 1, 8, 1, vec![0, 0, 0, 0])), None);
        // An image shorter than its geometry is not uniform.
        assert_eq!(uniform_pixel(&img(24, 32, 3, 2, vec![0; 8])), None);
    }
}
