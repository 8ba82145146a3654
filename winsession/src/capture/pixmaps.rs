//! Pixmaps: their geometry flows out in round 2 and back as [`Pixmap`]s without contents;
//! their images flow out in round 3 as GetImage in bands of at most [`IMAGE_CHUNK`] bytes and
//! back as little-endian [`Image`]s (when the options ask for contents).

use super::{reply, swap_pixels, CaptureError, CaptureOptions, ResourceList};
use crate::model::*;
use x11rb::connection::Connection;
use x11rb::cookie::Cookie;
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// Largest GetImage reply asked for at once.
const IMAGE_CHUNK: usize = 32 << 20;

/// Round 3's image bands: pixmap index, bits per pixel, scanline pad, cookie.
pub(super) type ImageAsks<'c, C> = Vec<(usize, u8, u8, Cookie<'c, C, xproto::GetImageReply>)>;

/// Round 2: every listed pixmap's geometry.
pub(super) fn ask_geometry<'c, C: Connection>(
    conn: &'c C,
    list: &ResourceList,
) -> Result<Vec<Cookie<'c, C, xproto::GetGeometryReply>>, CaptureError> {
    Ok(list
        .pixmaps
        .iter()
        .map(|&p| conn.get_geometry(p))
        .collect::<Result<_, _>>()?)
}

/// Round 2's answers: the pixmaps, contents not yet known.
pub(super) fn read_geometry<C: Connection>(
    list: &ResourceList,
    pc: Vec<Cookie<'_, C, xproto::GetGeometryReply>>,
) -> Result<Vec<Pixmap>, CaptureError> {
    let mut pixmaps = Vec::with_capacity(list.pixmaps.len());
    for (&id, c) in list.pixmaps.iter().zip(pc) {
        let g = reply(c, || format!("GetGeometry(pixmap {id:#x})"))?;
        pixmaps.push(Pixmap {
            id,
            depth: g.depth,
            width: g.width,
            height: g.height,
            contents: None,
        });
    }
    Ok(pixmaps)
}

/// Round 3: the pixmaps' images, in bands.
pub(super) fn ask_images<'c, C: Connection>(
    conn: &'c C,
    setup: &SetupFacts,
    opts: &CaptureOptions,
    pixmaps: &[Pixmap],
) -> Result<ImageAsks<'c, C>, CaptureError> {
    let mut image_cookies = Vec::new();
    if opts.with_pixmap_contents {
        for (i, p) in pixmaps.iter().enumerate() {
            if p.width == 0 || p.height == 0 {
                continue;
            }
            let bpp = setup.bpp(p.depth).unwrap_or(32);
            let pad = setup
                .pixmap_formats
                .iter()
                .find(|f| f.depth == p.depth)
                .map(|f| f.scanline_pad)
                .unwrap_or(32);
            let st = stride(p.width, bpp, pad).max(1);
            let rows = (IMAGE_CHUNK / st).clamp(1, usize::from(p.height)) as u16;
            let mut y = 0u16;
            while y < p.height {
                let h = rows.min(p.height - y);
                image_cookies.push((
                    i,
                    bpp,
                    pad,
                    conn.get_image(
                        xproto::ImageFormat::Z_PIXMAP,
                        p.id,
                        0,
                        y as i16,
                        p.width,
                        h,
                        !0,
                    )?,
                ));
                y += h;
            }
        }
    }
    Ok(image_cookies)
}

/// Round 3's answers: the images into the pixmaps' contents.
pub(super) fn read_images<C: Connection>(
    setup: &SetupFacts,
    pixmaps: &mut [Pixmap],
    image_cookies: ImageAsks<'_, C>,
) -> Result<(), CaptureError> {
    for (i, bpp, pad, c) in image_cookies {
        let p = &mut pixmaps[i];
        let r = reply(c, || format!("GetImage(pixmap {:#x})", p.id))?;
        let mut data = r.data;
        if setup.image_byte_order == 1 {
            swap_pixels(&mut data, bpp);
        }
        match &mut p.contents {
            Some(img) => img.data.extend_from_slice(&data),
            None => {
                p.contents = Some(Image {
                    depth: p.depth,
                    bits_per_pixel: bpp,
                    scanline_pad: pad,
                    width: p.width,
                    height: p.height,
                    data,
                })
            }
        }
    }
    Ok(())
}
