//! Screenshots of a test's windows and the waits around them: a window's pixels as an RGB
//! [`Image`], a picture that stopped changing, and the comparisons tests make after a move
//! (equal pictures, or the expected one coming back once the app repainted). What flows
//! through: GetImage replies in, images and assertion failures (with their PNGs) out.

use crate::connect;
use crate::image::{self, compare, Image};
use anyhow::Result;
use std::time::{Duration, Instant};
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat};

/// How long a window's picture must stay unchanged to count as drawn.
pub const QUIET: Duration = Duration::from_millis(250);

/// Grab the contents of `window` (its inside, without border) as an RGB image. Works for
/// 24/32-bit TrueColor and 16-bit visuals.
pub fn screenshot(display: &str, window: u32) -> Result<Image> {
    let conn = connect(display)?;
    let geom = conn.get_geometry(window)?.reply()?;
    let img = conn
        .get_image(
            ImageFormat::Z_PIXMAP,
            window,
            0,
            0,
            geom.width,
            geom.height,
            !0,
        )?
        .reply()?;
    Image::from_zpixmap(
        &conn,
        img.depth,
        geom.width.into(),
        geom.height.into(),
        &img.data,
    )
}

/// Assert that two screenshots show the same picture: at least 99% of all pixels and 95% of
/// the "ink" pixels equal (see [`Comparison::ink_equal_fraction`]); on failure the PNGs and the
/// diff are in the artifacts directory.
pub fn assert_same_picture(before: &Image, after: &Image, what: &str) {
    let c = compare(before, after, what);
    assert!(
        image::passes(c.equal_fraction, c.ink_equal_fraction),
        "{what}: {:.4} of pixels equal, {:.4} of ink (artifacts: {:?})",
        c.equal_fraction,
        c.ink_equal_fraction,
        c.artifacts
    );
}

/// A screenshot of `window` once the app has finished drawing it: the picture is not blank
/// (some pixel differs from the window's dominant colour — an app's first frame is rarely one
/// colour) and has not changed for [`QUIET`]. Up to 20 s; then the last picture, with a warning.
/// For the reference picture of an app before an operation.
pub fn settled_screenshot(display: &str, window: u32) -> Result<Image> {
    settled_screenshot_for(display, window, QUIET)
}

/// [`settled_screenshot`] with another quiet time (an app whose drawing comes in bursts from a
/// helper process, like gv's ghostscript).
pub fn settled_screenshot_for(display: &str, window: u32, quiet: Duration) -> Result<Image> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = screenshot(display, window)?;
    let mut since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(40));
        let now = screenshot(display, window)?;
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet && !last.is_uniform() {
            return Ok(last);
        }
        if Instant::now() > deadline {
            eprintln!("settled_screenshot: {display} window {window:#x} kept changing or stayed blank for 20 s");
            return Ok(last);
        }
    }
}

/// Wait until `window` on `display` shows `expected` again (the criteria of
/// [`assert_same_picture`]), up to 20 s; then fail with the last comparison's figures and its
/// PNGs. After a move or attach the app repaints on Expose: this waits for exactly that, as
/// long as it takes and no longer. Returns the matching picture.
pub fn assert_picture_returns(expected: &Image, display: &str, window: u32, what: &str) -> Image {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let shot = match screenshot(display, window) {
            Ok(s) => s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(40));
                continue;
            }
            Err(e) => panic!("{what}: screenshot of {window:#x} on {display}: {e:#}"),
        };
        if image::same_picture(expected, &shot) {
            return shot;
        }
        if Instant::now() > deadline {
            assert_same_picture(expected, &shot, what);
            return shot;
        }
        std::thread::sleep(Duration::from_millis(40));
    }
}
