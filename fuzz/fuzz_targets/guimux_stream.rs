//! Fuzz both of guimux's parsers: arbitrary bytes as the app's request stream and as a server's
//! message stream, fed in arbitrary pieces, to a hijacked-mode and a premeditated engine, with
//! and without translation maps. Nothing may panic; errors are fine.
#![no_main]
use guimux::fields::ByteOrder;
use guimux::Engine;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let split = data[0] as usize % data.len();
    let (app, server) = data[1..].split_at(split.min(data.len() - 1));
    for premeditated in [false, true] {
        let mut e = if premeditated {
            Engine::premeditated()
        } else {
            Engine::hijacked(ByteOrder::Little, 0x1fe0_0001)
        };
        for chunk in app.chunks(7) {
            if e.app_input(chunk).is_err() {
                break;
            }
        }
        for chunk in server.chunks(13) {
            if e.server_input(0, chunk).is_err() {
                break;
            }
        }
    }
});
