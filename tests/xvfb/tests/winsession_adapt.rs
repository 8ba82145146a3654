//! Regenerating a window session on a server that differs from the source: a font the target
//! lacks is replaced by the closest match by metrics (and reported), and a 16-bit target gets
//! converted pixels (pixmap contents, window and GC pixel values) instead of a refusal.

mod winsession_scenario;

use winsession_scenario as scen;
use xvfb_harness::{with_timeout, Xvfb, XvfbOptions};

/// A scalable Type1 font present in Debian's default font path but not in `misc`.
const TYPE1: &str = "-urw-nimbus mono l-bold-r-normal--14-*-*-*-*-*-iso8859-1";

#[test]
fn winsession_missing_font_and_16bit_target() {
    with_timeout(120, || {
        let a = Xvfb::start().expect("source Xvfb with extension");
        let b = Xvfb::start_with(XvfbOptions {
            screen: "1024x768x16".into(),
            extra_args: vec!["-fp".into(), "/usr/share/fonts/X11/misc".into()],
            ..Default::default()
        })
        .expect("16-bit target Xvfb with only misc fonts");
        let ca = a.connect().expect("connect A");
        let (ids, _) = scen::build(&ca, TYPE1).expect("scenario with a Type1 font");
        scen::draw(&ca, &ids).expect("draw");
        let sa = winsession::capture(&ca, &winsession::CaptureOptions::default()).expect("capture");
        let cb = b.connect().expect("connect B");
        let regen = winsession::regenerate(&cb, &sa, &winsession::RegenOptions::default())
            .expect("regenerate on a 16-bit server without the font");
        eprintln!("warnings: {:#?}", regen.warnings);
        // Font: substituted by a misc font, reported.
        assert_eq!(
            regen.font_substitutions.len(),
            1,
            "{:?}",
            regen.font_substitutions
        );
        let sub = &regen.font_substitutions[0];
        assert_eq!(sub.wanted, TYPE1);
        assert!(sub.used.to_ascii_lowercase().contains("-misc-"), "{sub:?}");
        assert!(regen.warnings.iter().any(|w| w.contains("closest match")));
        // Depth: converted and reported.
        assert!(regen
            .warnings
            .iter()
            .any(|w| w.contains("depth 24 becomes 16")));
        let mut map = regen.xid_map.clone();
        map.extend(regen.visual_map.iter().map(|(k, v)| (*k, *v)));
        scen::draw(&cb, &ids.translated(&map)).expect("app draws on the 16-bit server");
        let sb =
            winsession::capture(&cb, &winsession::CaptureOptions::default()).expect("recapture");
        assert_eq!(sb.windows.len(), sa.windows.len());
        assert!(
            sb.windows.iter().all(|w| w.depth == 16 || w.depth == 0),
            "all windows 16-bit"
        );
        // Pixmap contents: exactly the 24→16 conversion of the source pixels.
        let (l24, l16) = (
            winsession::convert::PixelLayout {
                red: 0xff0000,
                green: 0xff00,
                blue: 0xff,
            },
            winsession::convert::PixelLayout {
                red: 0xf800,
                green: 0x7e0,
                blue: 0x1f,
            },
        );
        let pa = sa
            .pixmaps
            .iter()
            .find(|p| p.id == ids.pix)
            .expect("pixmap on A");
        let pb = sb
            .pixmaps
            .iter()
            .find(|p| p.id == map[&ids.pix])
            .expect("pixmap on B");
        assert_eq!(pb.depth, 16);
        let ia = pa.contents.as_ref().expect("contents A");
        let ib = pb.contents.as_ref().expect("contents B");
        let want = winsession::convert::convert_image(
            ia,
            &l24,
            &l16,
            16,
            ib.bits_per_pixel,
            ib.scanline_pad,
        )
        .expect("convertible");
        assert!(want.data == ib.data, "pixmap contents converted exactly");
        // Window background pixel converted.
        let top1 = sb
            .windows
            .iter()
            .find(|w| w.id == map[&ids.top1])
            .expect("top1 on B");
        assert_eq!(
            top1.background,
            Some(winsession::Background::Pixel(l24.convert(0x33_66_99, &l16)))
        );
        // The GC that used the missing font now uses the substitute.
        let gc = sb
            .gcs
            .iter()
            .find(|g| g.id == map[&ids.gc_text])
            .expect("text GC");
        assert_eq!(
            gc.values.as_ref().map(|v| v.font),
            Some(map[&ids.font_xlfd])
        );
    });
}
