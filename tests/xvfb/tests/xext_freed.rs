//! GUIEVICT 1.8 orphan drawables on a real server: a picture whose pixmap the client freed
//! keeps it alive; with `FLAG_ORPHAN_DRAWABLES` its record carries the pixmap's size, depth
//! and exact pixels (how Tk's and Xft's pictures move exactly), without the flag — or for a
//! pixmap that still has its ID — nothing more than before. What flows through: the client's
//! PutImage pixels in, the GetResources picture records out (decoded by `guievict-ext-proto`).

mod xext_common;

use anyhow::{anyhow, Result};
use guievict_ext_proto as proto;
use x11rb::connection::Connection;
use x11rb::protocol::render::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use xext_common::*;
use xvfb_harness::{with_timeout, Xvfb};

fn picture_info(all: &proto::Resources, id: u32) -> proto::PictureInfo {
    match &all
        .get(id, proto::kinds::PICTURE)
        .expect("picture listed")
        .detail
    {
        proto::Detail::Picture(p) => p.clone(),
        other => panic!("not a picture record: {other:?}"),
    }
}

#[test]
fn xext_freed_pixmap_behind_a_picture_comes_with_its_pixels() {
    with_timeout(60, || -> Result<()> {
        let x = Xvfb::start()?;
        let c = x.connect()?;
        let root = c.setup().roots[0].root;
        let formats = c.render_query_pict_formats()?.reply()?;
        let format = formats
            .formats
            .iter()
            .find(|f| f.depth == 24 && f.type_ == render::PictType::DIRECT)
            .map(|f| f.id)
            .ok_or_else(|| anyhow!("no depth-24 format"))?;
        let make = |pixels: &[u8]| -> Result<(u32, u32)> {
            let pm = c.generate_id()?;
            c.create_pixmap(24, pm, root, 2, 1)?;
            let gc = c.generate_id()?;
            c.create_gc(gc, pm, &xproto::CreateGCAux::new())?;
            c.put_image(
                xproto::ImageFormat::Z_PIXMAP,
                pm,
                gc,
                2,
                1,
                0,
                0,
                0,
                24,
                pixels,
            )?;
            c.free_gc(gc)?;
            let pic = c.generate_id()?;
            c.render_create_picture(
                pic,
                pm,
                format,
                &render::CreatePictureAux::new().repeat(render::Repeat::NORMAL),
            )?;
            Ok((pm, pic))
        };
        let pixels = [0x11, 0x22, 0x33, 0x00, 0x44, 0x55, 0x66, 0x00];
        let (freed_pm, freed_pic) = make(&pixels)?;
        c.free_pixmap(freed_pm)?;
        let (_live_pm, live_pic) = make(&pixels)?;
        c.get_input_focus()?.reply()?;

        let (all, _) = get_all(&c, 0)?;
        let p = picture_info(&all, freed_pic);
        assert_eq!(p.source, proto::PictureSource::Drawable(freed_pm));
        let o = p.orphan.expect("the freed pixmap is described");
        assert_eq!(
            (o.width, o.height, o.depth, o.bits_per_pixel),
            (2, 1, 24, 32)
        );
        // Depth 24 in 32-bit pixels: the padding byte is whatever the server keeps there.
        assert_eq!(
            o.image
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 4 != 3)
                .map(|(_, b)| *b)
                .collect::<Vec<_>>(),
            vec![0x11, 0x22, 0x33, 0x44, 0x55, 0x66]
        );
        assert_eq!(
            picture_info(&all, live_pic).orphan,
            None,
            "a live pixmap is no orphan"
        );

        // Without the flag, as in 1.7.
        let req = proto::GetResourcesRequest {
            flags: proto::FLAGS_V1_7,
            ..proto::GetResourcesRequest::first()
        };
        let page = get_page(&c, &req)?;
        assert!(!page.more);
        assert_eq!(picture_info(&page.resources, freed_pic).orphan, None);
        Ok(())
    })
    .unwrap();
}
