//! `delay-link :M RTT_MS [N]`: a TCP display `127.0.0.1:N` (first free N from 100, or exactly N)
//! in front of the local display `:M`, every byte delivered `RTT_MS / 2` after it was read, both
//! ways (the harness's [`xvfb_harness::DelayLink`]). Prints the display name, then runs until
//! killed. For manual experiments with remote attach over a slow link.

use anyhow::{Context, Result};
use std::time::Duration;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let target = args.next().context("usage: delay-link :M RTT_MS [N]")?;
    let rtt: u64 = args
        .next()
        .context("usage: delay-link :M RTT_MS [N]")?
        .parse()
        .context("RTT_MS")?;
    let range = match args.next() {
        Some(n) => {
            let n: u16 = n.parse().context("N")?;
            n..n + 1
        }
        None => 100..1000,
    };
    let link = xvfb_harness::DelayLink::start(&target, Duration::from_millis(rtt), range)?;
    println!("{}", link.display);
    loop {
        std::thread::sleep(Duration::from_secs(5));
        let (up, down) = link.bytes();
        eprintln!(
            "delay-link {}: {up} bytes to the server, {down} back",
            link.display
        );
    }
}
