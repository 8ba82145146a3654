//! Benchmarks of the window session (numbers go to docs/benchmarks-winsession.md): capture time
//! of an xterm-sized session, pixmap-content throughput of capture and regenerate, and the file
//! size. Thresholds are asserted in release builds (`cargo test --release`); debug builds print.

mod winsession_scenario;

use std::time::{Duration, Instant};
use winsession_scenario as scen;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::wrapper::ConnectionExt as _;
use xvfb_harness::{with_timeout, Xvfb};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn winsession_bench() {
    with_timeout(300, || {
        let release = !cfg!(debug_assertions);
        let a = Xvfb::start().expect("Xvfb A");
        let b = Xvfb::start().expect("Xvfb B");

        // 1. Capture of an xterm-sized session (6 windows, 3 pixmaps, 4 GCs, 2 fonts, a cursor,
        //    a colormap, 12 properties; xterm has fewer windows and similar counts otherwise).
        let ca = a.connect().expect("connect");
        let (ids, _) = scen::build(&ca, scen::XLFD).expect("scenario");
        scen::draw(&ca, &ids).expect("draw");
        let opts = winsession::CaptureOptions::default();
        let mut times = Vec::new();
        let mut s = None;
        for _ in 0..30 {
            let t = Instant::now();
            s = Some(winsession::capture(&ca, &opts).expect("capture"));
            times.push(t.elapsed());
        }
        let s = s.expect("one capture");
        let cap = median(times);
        let file = winsession::to_bytes(&s).expect("encode");
        let pixbytes: usize = s
            .pixmaps
            .iter()
            .filter_map(|p| p.contents.as_ref())
            .map(|i| i.data.len())
            .sum();
        eprintln!(
            "BENCH capture_xterm_sized_ms {:.3} (windows {}, gcs {}, pixmap bytes {})",
            cap.as_secs_f64() * 1e3,
            s.windows.len(),
            s.gcs.len(),
            pixbytes
        );
        eprintln!("BENCH file_size_bytes {}", file.len());
        let keep = xvfb_harness::artifacts_dir().join("winsession-xterm-sized.gws");
        winsession::write_file(&keep, &s).expect("write artifact");
        assert!(
            file.len() <= 100 * 1024,
            "session file {} bytes > 100 KB",
            file.len()
        );
        if release {
            assert!(cap <= Duration::from_millis(10), "capture took {cap:?}");
        }

        // 2. Pixmap contents: one 2048x2048 depth-24 pixmap (16 MiB) with non-trivial pixels.
        let cp = a.connect().expect("connect");
        let root = cp.setup().roots[0].root;
        let depth = cp.setup().roots[0].root_depth;
        let pm = cp.generate_id().expect("id");
        cp.create_pixmap(depth, pm, root, 2048, 2048)
            .expect("pixmap");
        let gc = cp.generate_id().expect("id");
        cp.create_gc(gc, pm, &xproto::CreateGCAux::new())
            .expect("gc");
        for i in 0..64u32 {
            cp.change_gc(
                gc,
                &xproto::ChangeGCAux::new().foreground(i.wrapping_mul(0x0103_0507)),
            )
            .expect("change gc");
            cp.poly_fill_rectangle(
                pm,
                gc,
                &[xproto::Rectangle {
                    x: (i * 32) as i16,
                    y: 0,
                    width: 32,
                    height: 2048,
                }],
            )
            .expect("fill");
        }
        cp.free_gc(gc).expect("free");
        cp.sync().expect("sync");
        let mut times = Vec::new();
        let mut big = None;
        for _ in 0..5 {
            let t = Instant::now();
            big = Some(winsession::capture(&cp, &opts).expect("capture big"));
            times.push(t.elapsed());
        }
        let big = big.expect("capture");
        let bytes: usize = big
            .pixmaps
            .iter()
            .filter_map(|p| p.contents.as_ref())
            .map(|i| i.data.len())
            .sum();
        let cap_rate = bytes as f64 / median(times).as_secs_f64() / 1e6;
        let mut times = Vec::new();
        for _ in 0..5 {
            let cb = b.connect().expect("connect B");
            let t = Instant::now();
            winsession::regenerate(&cb, &big, &winsession::RegenOptions::default())
                .expect("regenerate");
            times.push(t.elapsed());
        }
        let regen_rate = bytes as f64 / median(times).as_secs_f64() / 1e6;
        eprintln!("BENCH pixmap_capture_MBps {cap_rate:.0} ({bytes} bytes)");
        eprintln!("BENCH pixmap_regenerate_MBps {regen_rate:.0}");
        let t = Instant::now();
        let enc = winsession::to_bytes(&big).expect("encode big");
        eprintln!(
            "BENCH file_encode_16MiB_ms {:.1} (compressed to {} bytes)",
            t.elapsed().as_secs_f64() * 1e3,
            enc.len()
        );
        if release {
            // A floor against pathological regressions (a request per pixel row), not a
            // benchmark: the 500 MB/s goal is measured by scripts/bench.sh on a quiet machine;
            // here two test threads share two cores (380 MB/s seen under load).
            assert!(cap_rate >= 100.0, "pixmap capture {cap_rate:.0} MB/s");
            assert!(
                regen_rate >= 100.0,
                "pixmap regenerate {regen_rate:.0} MB/s"
            );
        }
    });
}
