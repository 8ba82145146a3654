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

/// Two servers of one build list the same visuals — Xvfb with GLX about 390, most of them
/// TrueColor depth 24 with the root visual's masks. Regeneration must keep a visual's ID (not
/// take the first equal visual for all of them): guimux translates a live request's visual
/// with a one-to-one map, and a window created after the move with a colormap made before it
/// must find the colormap's visual equal to its own (Firefox's CreateWindow got BadMatch).
#[test]
fn winsession_twin_servers_keep_visual_ids() {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::{self, ConnectionExt as _};
    with_timeout(60, || {
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");
        let ca = a.connect().expect("connect A");
        let screen = ca.setup().roots[0].clone();
        let root_vis = screen
            .allowed_depths
            .iter()
            .flat_map(|d| d.visuals.iter().map(move |v| (d.depth, v)))
            .find(|(_, v)| v.visual_id == screen.root_visual)
            .map(|(_, v)| *v)
            .expect("root visual listed");
        // The last depth-24 visual equal to the root visual: the first equal one is the root
        // visual itself, so the old first-match map sent this one there.
        let twin = screen
            .allowed_depths
            .iter()
            .filter(|d| d.depth == screen.root_depth)
            .flat_map(|d| d.visuals.iter())
            .rfind(|v| {
                v.visual_id != screen.root_visual
                    && v.class == root_vis.class
                    && v.red_mask == root_vis.red_mask
                    && v.green_mask == root_vis.green_mask
                    && v.blue_mask == root_vis.blue_mask
            })
            .map(|v| v.visual_id);
        let Some(twin) = twin else {
            xvfb_harness::skip("this Xvfb lists no second visual equal to the root visual");
            return;
        };
        let cmap = ca.generate_id().expect("id");
        ca.create_colormap(xproto::ColormapAlloc::NONE, cmap, screen.root, twin)
            .expect("CreateColormap");
        let win = ca.generate_id().expect("id");
        ca.create_window(
            screen.root_depth,
            win,
            screen.root,
            0,
            0,
            50,
            50,
            0,
            xproto::WindowClass::INPUT_OUTPUT,
            twin,
            &xproto::CreateWindowAux::new()
                .colormap(cmap)
                .border_pixel(0)
                .background_pixel(0),
        )
        .expect("CreateWindow");
        ca.get_input_focus()
            .expect("request")
            .reply()
            .expect("sync");
        let sa = winsession::capture(&ca, &winsession::CaptureOptions::default()).expect("capture");
        let cb = b.connect().expect("connect B");
        let regen = winsession::regenerate(&cb, &sa, &winsession::RegenOptions::default())
            .expect("regenerate on B");
        assert_eq!(
            regen.visual_map.get(&twin),
            Some(&twin),
            "visual {twin:#x} changed its ID on a twin server"
        );
        let mut targets: Vec<u32> = regen.visual_map.values().copied().collect();
        let n = targets.len();
        targets.sort_unstable();
        targets.dedup();
        assert_eq!(targets.len(), n, "the visual map is not one-to-one");
        let win_b = regen.xid_map[&win];
        let attrs = cb
            .get_window_attributes(win_b)
            .expect("request")
            .reply()
            .expect("GetWindowAttributes on B");
        assert_eq!(attrs.visual, twin, "the window has another visual on B");
        // What the app does after the move: a new window with the old colormap and its visual.
        let cmap_b = regen.xid_map[&cmap];
        let w2 = cb.generate_id().expect("id");
        cb.create_window(
            screen.root_depth,
            w2,
            cb.setup().roots[0].root,
            0,
            0,
            10,
            10,
            0,
            xproto::WindowClass::INPUT_OUTPUT,
            twin,
            &xproto::CreateWindowAux::new()
                .colormap(cmap_b)
                .border_pixel(0),
        )
        .expect("request")
        .check()
        .expect("CreateWindow with the regenerated colormap and the same visual");
    });
}
