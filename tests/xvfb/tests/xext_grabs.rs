//! GUIEVICT 1.8 `GetActiveGrabs` on real servers: a client's core pointer and keyboard grabs
//! and an XInput 2 device grab come back with exactly the values the client gave (window,
//! modes, owner-events, event mask, cursor, XI2 mask) and the device's freeze state as
//! AllowEvents moves it; another client hears of none of them;
//! a server posing as 1.7 answers `BadRequest`. What flows through: raw GUIEVICT request and
//! reply bytes (made and read by `guievict-ext-proto`) on x11rb connections to Xvfb.

mod xext_common;

use anyhow::{anyhow, Result};
use guievict_ext_proto as proto;
use proto::ByteOrder;
use x11rb::connection::Connection;
use x11rb::protocol::xinput::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::rust_connection::RustConnection;
use xext_common::*;
use xvfb_harness::{with_timeout, Xvfb, XvfbOptions};

fn active_grabs(conn: &RustConnection) -> Result<Vec<proto::ActiveGrab>> {
    let req = proto::encode_get_active_grabs(major(conn)?, ByteOrder::native());
    let rep = raw_request(conn, &req)?;
    Ok(proto::decode_get_active_grabs_reply(&rep, ByteOrder::native())?.grabs)
}

/// A mapped 100×100 top-level of `conn`.
fn mapped_window(conn: &RustConnection) -> Result<u32> {
    let root = conn.setup().roots[0].root;
    let w = conn.generate_id()?;
    conn.create_window(
        0,
        w,
        root,
        0,
        0,
        100,
        100,
        0,
        xproto::WindowClass::INPUT_OUTPUT,
        0,
        &xproto::CreateWindowAux::new(),
    )?;
    conn.map_window(w)?;
    conn.get_input_focus()?.reply()?;
    Ok(w)
}

#[test]
fn xext_active_grabs_exact_and_private() {
    with_timeout(60, || -> Result<()> {
        let x = Xvfb::start()?;
        let c = x.connect()?;
        let other = x.connect()?;
        let w = mapped_window(&c)?;
        let font = c.generate_id()?;
        c.open_font(font, b"cursor")?;
        let cursor = c.generate_id()?;
        c.create_glyph_cursor(cursor, font, font, 68, 69, 0, 0, 0, 0xffff, 0xffff, 0xffff)?;
        let confine = mapped_window(&c)?;
        let mask = xproto::EventMask::BUTTON_PRESS | xproto::EventMask::POINTER_MOTION;
        let st = c
            .grab_pointer(
                true,
                w,
                mask,
                xproto::GrabMode::ASYNC,
                xproto::GrabMode::SYNC,
                confine,
                cursor,
                x11rb::CURRENT_TIME,
            )?
            .reply()?;
        anyhow::ensure!(st.status == xproto::GrabStatus::SUCCESS, "{st:?}");
        let st = c
            .grab_keyboard(
                false,
                w,
                x11rb::CURRENT_TIME,
                xproto::GrabMode::ASYNC,
                xproto::GrabMode::ASYNC,
            )?
            .reply()?;
        anyhow::ensure!(st.status == xproto::GrabStatus::SUCCESS, "{st:?}");

        let mut got = active_grabs(&c)?;
        got.sort_by_key(|g| g.device);
        let core = proto::GRAB_LEVEL_CORE;
        assert_eq!(
            got,
            vec![
                proto::ActiveGrab {
                    device: proto::GRAB_DEVICE_POINTER,
                    level: core,
                    flags: proto::GRAB_OWNER_EVENTS | proto::GRAB_POINTER_ASYNC,
                    sync_state: proto::sync_state::THAWED,
                    paired_sync_state: proto::sync_state::THAWED,
                    device_id: 2,
                    window: w,
                    confine_to: confine,
                    cursor,
                    event_mask: u32::from(mask),
                    xi2_mask: Vec::new(),
                },
                proto::ActiveGrab {
                    device: proto::GRAB_DEVICE_KEYBOARD,
                    level: core,
                    flags: proto::GRAB_POINTER_ASYNC | proto::GRAB_KEYBOARD_ASYNC,
                    sync_state: proto::sync_state::THAWED,
                    paired_sync_state: proto::sync_state::THAWED,
                    device_id: 3,
                    window: w,
                    confine_to: 0,
                    cursor: 0,
                    // The server's own mask for a keyboard grab: KeyPress | KeyRelease.
                    event_mask: 3,
                    xi2_mask: Vec::new(),
                },
            ]
        );
        // Another client hears of none of them.
        assert_eq!(active_grabs(&other)?, Vec::new());

        // A Synchronous pointer grab freezes the pointer; AllowEvents moves its state.
        c.ungrab_keyboard(x11rb::CURRENT_TIME)?;
        let grab_sync = || -> Result<()> {
            let st = c
                .grab_pointer(
                    false,
                    w,
                    mask,
                    xproto::GrabMode::SYNC,
                    xproto::GrabMode::ASYNC,
                    x11rb::NONE,
                    x11rb::NONE,
                    x11rb::CURRENT_TIME,
                )?
                .reply()?;
            anyhow::ensure!(st.status == xproto::GrabStatus::SUCCESS, "{st:?}");
            Ok(())
        };
        grab_sync()?;
        let state = |c: &RustConnection| -> Result<u8> {
            let g = active_grabs(c)?;
            Ok(g.iter()
                .find(|g| g.device == proto::GRAB_DEVICE_POINTER)
                .ok_or_else(|| anyhow!("no pointer grab"))?
                .sync_state)
        };
        assert_eq!(state(&c)?, proto::sync_state::FROZEN_NO_EVENT);
        c.allow_events(xproto::Allow::SYNC_POINTER, x11rb::CURRENT_TIME)?;
        assert_eq!(state(&c)?, proto::sync_state::FREEZE_NEXT_EVENT);
        // (AsyncPointer acts on a frozen device only: grab anew, then thaw.)
        c.ungrab_pointer(x11rb::CURRENT_TIME)?;
        grab_sync()?;
        assert_eq!(state(&c)?, proto::sync_state::FROZEN_NO_EVENT);
        c.allow_events(xproto::Allow::ASYNC_POINTER, x11rb::CURRENT_TIME)?;
        assert_eq!(state(&c)?, proto::sync_state::THAWED);

        // XInput 2: the master keyboard grabbed with a mask.
        c.ungrab_pointer(x11rb::CURRENT_TIME)?;
        let v = c.xinput_xi_query_version(2, 2)?.reply()?;
        anyhow::ensure!(v.major_version == 2, "{v:?}");
        let xi_mask = u32::from(xinput::XIEventMask::KEY_PRESS | xinput::XIEventMask::KEY_RELEASE);
        let st = c
            .xinput_xi_grab_device(
                w,
                x11rb::CURRENT_TIME,
                x11rb::NONE,
                3u16,
                xproto::GrabMode::ASYNC,
                xproto::GrabMode::SYNC,
                xinput::GrabOwner::OWNER,
                &[xi_mask],
            )?
            .reply()?;
        anyhow::ensure!(st.status == xproto::GrabStatus::SUCCESS, "{st:?}");
        let got = active_grabs(&c)?;
        assert_eq!(got.len(), 1, "{got:?}");
        let g = &got[0];
        assert_eq!(
            (g.device, g.level, g.device_id, g.window),
            (proto::GRAB_DEVICE_KEYBOARD, proto::GRAB_LEVEL_XI2, 3, w)
        );
        // The keyboard's own mode (async) is its keyboard mode; the paired pointer's is sync.
        assert_eq!(
            g.flags,
            proto::GRAB_OWNER_EVENTS | proto::GRAB_KEYBOARD_ASYNC,
            "{g:?}"
        );
        let mut want = xi_mask.to_le_bytes().to_vec();
        want.resize(g.xi2_mask.len().max(4), 0);
        assert_eq!(g.xi2_mask, want, "{g:?}");
        assert_eq!(active_grabs(&other)?, Vec::new());
        Ok(())
    })
    .unwrap();
}

#[test]
fn xext_a_1_7_server_refuses_get_active_grabs() {
    with_timeout(30, || -> Result<()> {
        let x = Xvfb::start_with(XvfbOptions {
            env: vec![("GUIEVICT_XEXT_PROTOCOL_MINOR".into(), "7".into())],
            ..XvfbOptions::default()
        })?;
        let c = x.connect()?;
        assert_eq!(query_version(&c)?.minor, 7);
        let req = proto::encode_get_active_grabs(major(&c)?, ByteOrder::native());
        match raw_request(&c, &req) {
            Err(x11rb::errors::ReplyError::X11Error(e)) => {
                assert_eq!(e.error_kind, x11rb::protocol::ErrorKind::Request, "{e:?}")
            }
            other => return Err(anyhow!("not BadRequest: {other:?}")),
        }
        Ok(())
    })
    .unwrap();
}
