//! GetResources latency on a real Xvfb: a client shaped like a real xterm (same resource counts
//! per type, taken from X-Resource on a running xterm) and a client with 10,000 resources.
//! Prints medians (results go to docs/benchmarks-xext.md) and checks the targets
//! (< 2 ms and < 50 ms).

mod xext_common;

use anyhow::Result;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use x11rb::connection::Connection;
use x11rb::protocol::res::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::rust_connection::RustConnection;
use xext_common::*;
use xvfb_harness::{with_timeout, App, Xvfb};

/// The targets hold for an optimised extension; a debug build gets 5x slack.
fn limit(ms: u64) -> Duration {
    let release = xvfb_harness::ext_path()
        .to_string_lossy()
        .contains("/release/");
    eprintln!("extension: {}", xvfb_harness::ext_path().display());
    Duration::from_millis(if release { ms } else { ms * 5 })
}

fn time_get_all(conn: &RustConnection, rounds: usize) -> Result<(Duration, Duration, usize)> {
    let mut t = Vec::with_capacity(rounds);
    let mut n = 0;
    for _ in 0..rounds {
        let start = Instant::now();
        let (all, _) = get_all(conn, 0)?;
        t.push(start.elapsed());
        n = all.resources.len();
    }
    t.sort();
    Ok((t[t.len() / 2], t[t.len() - 1], n))
}

/// Create `n` resources of kind `kind` on `conn`.
fn create(conn: &RustConnection, kind: &str, n: usize, font: u32) -> Result<()> {
    let screen = &conn.setup().roots[0];
    let root = screen.root;
    for i in 0..n {
        let id = conn.generate_id()?;
        match kind {
            "WINDOW" => {
                conn.create_window(
                    0,
                    id,
                    root,
                    0,
                    0,
                    10 + (i % 7) as u16,
                    10,
                    0,
                    xproto::WindowClass::INPUT_OUTPUT,
                    0,
                    &xproto::CreateWindowAux::new().background_pixel(i as u32),
                )?;
            }
            "PIXMAP" => {
                conn.create_pixmap(screen.root_depth, id, root, 8, 8)?;
            }
            "GC" => {
                conn.create_gc(id, root, &xproto::CreateGCAux::new().foreground(i as u32))?;
            }
            "FONT" => {
                conn.open_font(id, b"fixed")?;
            }
            "CURSOR" => {
                conn.create_glyph_cursor(id, font, font, 68, 69, 0, 0, 0, 0xffff, 0xffff, 0xffff)?;
            }
            "COLORMAP" => {
                conn.create_colormap(xproto::ColormapAlloc::NONE, id, root, screen.root_visual)?;
            }
            _ => {}
        }
    }
    Ok(())
}

#[test]
fn xext_bench_get_resources() {
    with_timeout(300, || -> Result<()> {
        let x = Xvfb::start()?;
        // Resource census of a real xterm through X-Resource.
        let app = App::spawn(&x.display, &["xterm"])?;
        let conn = x.connect()?;
        let counts = conn.res_query_client_resources(app.window)?.reply()?;
        let mut census: HashMap<String, usize> = HashMap::new();
        for t in &counts.types {
            let name = conn.get_atom_name(t.resource_type)?.reply()?.name;
            census.insert(
                String::from_utf8_lossy(&name).into_owned(),
                t.count as usize,
            );
        }
        let _ = res::X11_EXTENSION_NAME;
        eprintln!("xterm census: {census:?}");

        let bench = x.connect()?;
        let cursor_font = bench.generate_id()?;
        bench.open_font(cursor_font, b"cursor")?;
        for (kind, n) in &census {
            create(&bench, kind, *n, cursor_font)?;
        }
        bench.get_input_focus()?.reply()?;
        let (med, max, n) = time_get_all(&bench, 50)?;
        eprintln!("BENCH xterm-sized: {n} resources, median {med:?}, max {max:?}");
        assert!(med < limit(2), "xterm-sized median {med:?}");

        let big = x.connect()?;
        let cf = big.generate_id()?;
        big.open_font(cf, b"cursor")?;
        create(&big, "PIXMAP", 4000, cf)?;
        create(&big, "GC", 3000, cf)?;
        create(&big, "WINDOW", 2000, cf)?;
        create(&big, "CURSOR", 999, cf)?;
        big.get_input_focus()?.reply()?;
        let (med, max, n) = time_get_all(&big, 20)?;
        eprintln!("BENCH 10k: {n} resources, median {med:?}, max {max:?}");
        assert!(n >= 10_000);
        assert!(med < limit(50), "10k median {med:?}");
        drop(app);
        Ok(())
    })
    .unwrap();
}
