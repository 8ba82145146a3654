//! XFIXES selection inputs, XFIXES cursor names and XInput 2 device IDs through a window
//! session: a test client on server A selects selection-change notification (on its own window
//! and on the root), names a cursor and selects XI2 events per device; it captures itself (the
//! GUIEVICT extension reports the selection-input records), the session goes through the file
//! format, is regenerated on server B, and B must then deliver XFixesSelectionNotify to the new
//! connection when another client takes the selection, return the cursor's name, and hold the
//! XI2 selections on B's devices.

use anyhow::{anyhow, bail, Result};
use std::time::{Duration, Instant};
use x11rb::connection::Connection;
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xinput::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use xvfb_harness::{with_timeout, Xvfb};

/// What the test client made on A.
struct Made {
    window: u32,
    named_cursor: u32,
    plain_cursor: u32,
    clipboard: u32,
}

fn atom(conn: &RustConnection, name: &str) -> Result<u32> {
    Ok(conn.intern_atom(false, name.as_bytes())?.reply()?.atom)
}

fn build(conn: &RustConnection) -> Result<Made> {
    let screen = &conn.setup().roots[0];
    let root = screen.root;
    let r = conn.xfixes_query_version(5, 0)?.reply()?;
    assert!(r.major_version >= 2, "XFIXES {}", r.major_version);
    let v = conn.xinput_xi_query_version(2, 2)?.reply()?;
    assert_eq!(v.major_version, 2);
    let window = conn.generate_id()?;
    conn.create_window(
        screen.root_depth,
        window,
        root,
        0,
        0,
        50,
        40,
        0,
        xproto::WindowClass::INPUT_OUTPUT,
        0,
        &xproto::CreateWindowAux::new().background_pixel(screen.white_pixel),
    )?;
    conn.change_property8(
        xproto::PropMode::REPLACE,
        window,
        xproto::AtomEnum::WM_NAME,
        xproto::AtomEnum::STRING,
        b"xfixes-xi",
    )?;
    conn.map_window(window)?;
    let clipboard = atom(conn, "CLIPBOARD")?;
    // GTK-style: all three notifications on the own window for CLIPBOARD; owner changes of
    // PRIMARY relative to the root.
    conn.xfixes_select_selection_input(
        window,
        clipboard,
        xfixes::SelectionEventMask::SET_SELECTION_OWNER
            | xfixes::SelectionEventMask::SELECTION_WINDOW_DESTROY
            | xfixes::SelectionEventMask::SELECTION_CLIENT_CLOSE,
    )?;
    conn.xfixes_select_selection_input(
        root,
        u32::from(xproto::AtomEnum::PRIMARY),
        xfixes::SelectionEventMask::SET_SELECTION_OWNER,
    )?;
    // A selection input that is switched off again leaves no record.
    let secondary = u32::from(xproto::AtomEnum::SECONDARY);
    conn.xfixes_select_selection_input(
        window,
        secondary,
        xfixes::SelectionEventMask::SET_SELECTION_OWNER,
    )?;
    conn.xfixes_select_selection_input(window, secondary, 0u32.into())?;
    let font = conn.generate_id()?;
    conn.open_font(font, b"cursor")?;
    let named_cursor = conn.generate_id()?;
    conn.create_glyph_cursor(
        named_cursor,
        font,
        font,
        68,
        69,
        0,
        0,
        0,
        0xffff,
        0xffff,
        0xffff,
    )?;
    conn.xfixes_set_cursor_name(named_cursor, b"left_ptr")?;
    let plain_cursor = conn.generate_id()?;
    conn.create_glyph_cursor(
        plain_cursor,
        font,
        font,
        34,
        35,
        0,
        0,
        0,
        0xffff,
        0xffff,
        0xffff,
    )?;
    conn.close_font(font)?;
    // XI2: motion from the master pointer (device 2), key presses from every device (0).
    conn.xinput_xi_select_events(
        window,
        &[
            xinput::EventMask {
                deviceid: 2,
                mask: vec![xinput::XIEventMask::MOTION],
            },
            xinput::EventMask {
                deviceid: 0,
                mask: vec![xinput::XIEventMask::KEY_PRESS],
            },
        ],
    )?;
    conn.sync()?;
    Ok(Made {
        window,
        named_cursor,
        plain_cursor,
        clipboard,
    })
}

/// The next XFixesSelectionNotify on `conn` within `secs`.
fn selection_notify(conn: &RustConnection, secs: u64) -> Result<xfixes::SelectionNotifyEvent> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        while let Some(ev) = conn.poll_for_event()? {
            if let Event::XfixesSelectionNotify(e) = ev {
                return Ok(e);
            }
        }
        if Instant::now() > deadline {
            bail!("no XFixesSelectionNotify within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Another client takes `selection` on `display`'s server with a window of its own.
fn take_selection(other: &RustConnection, selection: u32) -> Result<u32> {
    let screen = &other.setup().roots[0];
    let w = other.generate_id()?;
    other.create_window(
        0,
        w,
        screen.root,
        0,
        0,
        1,
        1,
        0,
        xproto::WindowClass::INPUT_ONLY,
        0,
        &xproto::CreateWindowAux::new(),
    )?;
    other.set_selection_owner(w, selection, x11rb::CURRENT_TIME)?;
    other.sync()?;
    Ok(w)
}

#[test]
fn winsession_selection_inputs_cursor_names_xi_devices() {
    with_timeout(90, || -> Result<()> {
        let a = Xvfb::start()?;
        let b = Xvfb::start()?;
        // Diverge B's atoms and IDs from A's.
        let pad = b.connect()?;
        for i in 0..40 {
            atom(&pad, &format!("XFIXES_XI_PAD_{i}"))?;
        }
        let ca = a.connect()?;
        let made = build(&ca)?;

        // Baseline on A: the client does get the notification.
        let oa = a.connect()?;
        take_selection(&oa, made.clipboard)?;
        let e = selection_notify(&ca, 5)?;
        assert_eq!((e.window, e.selection), (made.window, made.clipboard));

        let sa = winsession::capture(&ca, &winsession::CaptureOptions::default())?;
        let mut got: Vec<(u32, String, u32)> = sa
            .selection_inputs
            .iter()
            .map(|x| {
                (
                    x.window,
                    sa.atom_name(x.selection).unwrap_or("?").to_string(),
                    x.event_mask,
                )
            })
            .collect();
        got.sort();
        let root_a = ca.setup().roots[0].root;
        let mut want = vec![
            (made.window, "CLIPBOARD".to_string(), 7),
            (root_a, "PRIMARY".to_string(), 1),
        ];
        want.sort();
        assert_eq!(got, want, "selection inputs captured");
        let name_of = |id: u32| {
            sa.cursors
                .iter()
                .find(|c| c.id == id)
                .map(|c| c.name.clone())
        };
        assert_eq!(
            name_of(made.named_cursor),
            Some(Some("left_ptr".to_string()))
        );
        assert_eq!(name_of(made.plain_cursor), Some(None));
        assert!(
            sa.xi_devices
                .iter()
                .any(|d| d.id == 2 && d.use_ == 1 && d.name == "Virtual core pointer"),
            "{:?}",
            sa.xi_devices
        );
        assert!(
            !sa.unknown.iter().any(|u| u.contains("selection input")),
            "{:?}",
            sa.unknown
        );

        // Through the file format.
        let sa = winsession::from_bytes(&winsession::to_bytes(&sa)?)?;

        let cb = b.connect()?;
        let regen = winsession::regenerate(&cb, &sa, &winsession::RegenOptions::default())?;
        assert!(regen.warnings.is_empty(), "{:?}", regen.warnings);
        let wb = *regen
            .xid_map
            .get(&made.window)
            .ok_or_else(|| anyhow!("window not mapped"))?;
        assert_eq!(regen.xi_device_map.get(&2), Some(&2));
        assert_eq!(regen.xi_device_map.get(&0), Some(&0));

        // B delivers the notifications to the new connection, in B's numbers.
        let clipboard_b = atom(&cb, "CLIPBOARD")?;
        assert_ne!(
            clipboard_b, made.clipboard,
            "atoms should differ between A and B"
        );
        let ob = b.connect()?;
        let owner = take_selection(&ob, clipboard_b)?;
        let e = selection_notify(&cb, 5)?;
        assert_eq!(e.subtype, xfixes::SelectionEvent::SET_SELECTION_OWNER);
        assert_eq!((e.window, e.selection, e.owner), (wb, clipboard_b, owner));
        let primary = u32::from(xproto::AtomEnum::PRIMARY);
        take_selection(&ob, primary)?;
        let e = selection_notify(&cb, 5)?;
        assert_eq!((e.window, e.selection), (cb.setup().roots[0].root, primary));
        // Destroying the owner window: the CLIPBOARD selection input has that bit too.
        ob.destroy_window(owner)?;
        ob.sync()?;
        let e = selection_notify(&cb, 5)?;
        assert_eq!(
            (e.subtype, e.selection),
            (
                xfixes::SelectionEvent::SELECTION_WINDOW_DESTROY,
                clipboard_b
            )
        );

        // The cursor's name on B.
        let cn = cb
            .xfixes_get_cursor_name(regen.xid_map[&made.named_cursor])?
            .reply()?;
        assert_eq!(cn.name, b"left_ptr");
        let cn = cb
            .xfixes_get_cursor_name(regen.xid_map[&made.plain_cursor])?
            .reply()?;
        assert_eq!(cn.atom, 0);

        // XI2 selections on B's devices.
        let sel = cb.xinput_xi_get_selected_events(wb)?.reply()?;
        let mut devs: Vec<u16> = sel.masks.iter().map(|m| m.deviceid).collect();
        devs.sort_unstable();
        assert_eq!(devs, [0, 2]);

        // Captured again on B: the same selection inputs in B's numbers.
        let sb = winsession::capture(&cb, &winsession::CaptureOptions::default())?;
        assert_eq!(
            sb.canonical().selection_inputs,
            sa.canonical().selection_inputs
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn winsession_selection_inputs_without_extension_are_reported() {
    with_timeout(60, || -> Result<()> {
        let a = Xvfb::start()?;
        let ca = a.connect()?;
        let made = build(&ca)?;
        let s = winsession::capture(
            &ca,
            &winsession::CaptureOptions {
                use_extension: false,
                ..Default::default()
            },
        )?;
        assert!(s.selection_inputs.is_empty());
        assert!(
            s.unknown
                .iter()
                .any(|u| u.starts_with("2 XFIXES selection input(s)")),
            "{:?}",
            s.unknown
        );
        // Cursor names need no extension.
        let named = s.cursors.iter().find(|c| c.id == made.named_cursor);
        assert_eq!(named.and_then(|c| c.name.as_deref()), Some("left_ptr"));
        Ok(())
    })
    .unwrap();
}

#[test]
fn winsession_capture_from_a_protocol_1_0_server() {
    with_timeout(60, || -> Result<()> {
        // The server's extension behaves as GUIEVICT 1.0: capture drops the refused page and asks
        // again with the 1.0 flags; everything but the selection inputs is still described.
        let a = Xvfb::start_with(xvfb_harness::XvfbOptions {
            env: vec![("GUIEVICT_XEXT_PROTOCOL_MINOR".into(), "0".into())],
            ..Default::default()
        })?;
        let ca = a.connect()?;
        let made = build(&ca)?;
        let s = winsession::capture(&ca, &winsession::CaptureOptions::default())?;
        assert!(s.selection_inputs.is_empty());
        assert!(
            s.unknown.iter().any(|u| u
                .starts_with("2 XFIXES selection input(s) (XFixesSelectSelectionInput): the GUIEVICT extension could not describe them")),
            "{:?}",
            s.unknown
        );
        let named = s
            .cursors
            .iter()
            .find(|c| c.id == made.named_cursor)
            .ok_or_else(|| anyhow!("cursor missing"))?;
        assert!(named.image.is_some(), "cursor image from the extension");
        assert_eq!(named.name.as_deref(), Some("left_ptr"));
        assert!(
            s.windows.iter().all(|w| w.background.is_some()),
            "window details from the extension"
        );
        Ok(())
    })
    .unwrap();
}

/// Add a master device pair named `name` (XIChangeHierarchy AddMaster): the server makes
/// "<name> pointer", "<name> keyboard" and their XTEST slaves, with the next free device IDs.
fn add_master(conn: &RustConnection, name: &str) -> Result<()> {
    let n = name.len();
    let change = xinput::HierarchyChange {
        len: ((8 + n.div_ceil(4) * 4) / 4) as u16,
        data: xinput::HierarchyChangeData::AddMaster(xinput::HierarchyChangeDataAddMaster {
            send_core: true,
            enable: true,
            name: name.as_bytes().to_vec(),
        }),
    };
    conn.xinput_xi_change_hierarchy(&[change])?.check()?;
    Ok(())
}

fn device_id(conn: &RustConnection, name: &str) -> Result<u16> {
    let r = conn.xinput_xi_query_device(0u16)?.reply()?;
    r.infos
        .iter()
        .find(|d| d.name == name.as_bytes())
        .map(|d| d.deviceid)
        .ok_or_else(|| anyhow!("no device {name:?}"))
}

#[test]
fn winsession_xi_device_ids_differ_between_servers() {
    with_timeout(60, || -> Result<()> {
        let a = Xvfb::start()?;
        let b = Xvfb::start()?;
        let (admin_a, admin_b) = (a.connect()?, b.connect()?);
        for c in [&admin_a, &admin_b] {
            c.xinput_xi_query_version(2, 2)?.reply()?;
        }
        // A: "Second" then "OnlyA"; B: "Filler" first, so "Second" gets other IDs there.
        add_master(&admin_a, "Second")?;
        add_master(&admin_a, "OnlyA")?;
        add_master(&admin_b, "Filler")?;
        add_master(&admin_b, "Second")?;
        let second_a = device_id(&admin_a, "Second pointer")?;
        let second_b = device_id(&admin_b, "Second pointer")?;
        assert_ne!(second_a, second_b, "the test needs differing IDs");
        let only_a_slave = device_id(&admin_a, "OnlyA XTEST pointer")?;
        let xvfb_mouse = device_id(&admin_a, "Xvfb mouse")?;

        let ca = a.connect()?;
        let made = build(&ca)?;
        ca.xinput_xi_select_events(
            made.window,
            &[
                xinput::EventMask {
                    deviceid: second_a,
                    mask: vec![xinput::XIEventMask::BUTTON_PRESS],
                },
                xinput::EventMask {
                    deviceid: only_a_slave,
                    mask: vec![xinput::XIEventMask::MOTION],
                },
                xinput::EventMask {
                    deviceid: xvfb_mouse,
                    mask: vec![xinput::XIEventMask::BUTTON_RELEASE],
                },
            ],
        )?;
        ca.sync()?;
        let sa = winsession::capture(&ca, &winsession::CaptureOptions::default())?;
        let cb = b.connect()?;
        let regen = winsession::regenerate(&cb, &sa, &winsession::RegenOptions::default())?;
        eprintln!("device map {:?}", regen.xi_device_map);
        eprintln!("warnings {:#?}", regen.warnings);
        assert_eq!(regen.xi_device_map.get(&second_a), Some(&second_b));
        assert_eq!(regen.xi_device_map.get(&xvfb_mouse), Some(&xvfb_mouse));
        assert_eq!(regen.xi_device_map.get(&0), Some(&0));
        assert_eq!(regen.xi_device_map.get(&1), Some(&1));
        assert!(!regen.xi_device_map.contains_key(&only_a_slave));
        assert_eq!(regen.warnings.len(), 1, "{:?}", regen.warnings);
        assert!(
            regen.warnings[0].contains("OnlyA XTEST pointer")
                && regen.warnings[0].contains("dropped"),
            "{:?}",
            regen.warnings
        );
        let wb = regen.xid_map[&made.window];
        let sel = cb.xinput_xi_get_selected_events(wb)?.reply()?;
        let mut got: Vec<(u16, u32)> = sel
            .masks
            .iter()
            .map(|m| (m.deviceid, m.mask.first().map_or(0, |&x| u32::from(x))))
            .collect();
        got.sort_unstable();
        let mut want = vec![
            (0, u32::from(xinput::XIEventMask::KEY_PRESS)),
            (2, u32::from(xinput::XIEventMask::MOTION)),
            (second_b, u32::from(xinput::XIEventMask::BUTTON_PRESS)),
            (xvfb_mouse, u32::from(xinput::XIEventMask::BUTTON_RELEASE)),
        ];
        want.sort_unstable();
        assert_eq!(got, want);
        Ok(())
    })
    .unwrap();
}
