//! SHAPE. Capture: each window's bounding, clip and input regions (left out where they are the
//! window's full box) and whether the application selected shape events on it, into
//! `Window::shape`. Regeneration: ShapeRectangles and ShapeSelectInput on the freshly created
//! windows, before they are mapped, into the [`Sink`].

use super::{rects, xrects, Sink};
use crate::capture::CaptureError;
use crate::model::*;
use std::collections::HashMap;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::cookie::Cookie;
use x11rb::protocol::shape::{self, ConnectionExt as _};
use x11rb::protocol::xproto;

/// The questions asked about one window.
pub(super) struct WinShapeCookies<'c, C: RequestConnection> {
    window: u32,
    bounding: Cookie<'c, C, shape::GetRectanglesReply>,
    clip: Cookie<'c, C, shape::GetRectanglesReply>,
    input: Cookie<'c, C, shape::GetRectanglesReply>,
    selected: Cookie<'c, C, shape::InputSelectedReply>,
}

/// Ask about every window's shape (`None` without SHAPE); [`read_shapes`] takes the answers.
pub(super) fn ask_shapes<'c, C: Connection>(
    conn: &'c C,
    windows: &[u32],
    have_shape: bool,
) -> Result<Option<Vec<WinShapeCookies<'c, C>>>, CaptureError> {
    if !have_shape {
        return Ok(None);
    }
    let mut shape_cookies = Vec::new();
    for &w in windows {
        shape_cookies.push(WinShapeCookies {
            window: w,
            bounding: conn.shape_get_rectangles(w, shape::SK::BOUNDING)?,
            clip: conn.shape_get_rectangles(w, shape::SK::CLIP)?,
            input: conn.shape_get_rectangles(w, shape::SK::INPUT)?,
            selected: conn.shape_input_selected(w)?,
        });
    }
    Ok(Some(shape_cookies))
}

/// The answers to [`ask_shapes`] into each window's `shape` (left `None` without SHAPE).
pub(super) fn read_shapes<C: RequestConnection>(
    s: &mut Session,
    asked: Option<Vec<WinShapeCookies<'_, C>>>,
) {
    let Some(shape_cookies) = asked else {
        return;
    };
    let geometry: HashMap<u32, (u16, u16, u16)> = s
        .windows
        .iter()
        .map(|w| (w.id, (w.width, w.height, w.border_width)))
        .collect();
    let mut shapes: HashMap<u32, WindowShape> = HashMap::new();
    for c in shape_cookies {
        let (w, h, bw) = geometry.get(&c.window).copied().unwrap_or_default();
        // An unshaped window reports its full box for bounding and input. The X server reports
        // that box as width + border (not + 2 × border), so accept both spellings of it.
        let b = bw as i16;
        let defaults_bounding = [
            (
                -b,
                -b,
                w.saturating_add(bw.saturating_mul(2)),
                h.saturating_add(bw.saturating_mul(2)),
            ),
            (-b, -b, w.saturating_add(bw), h.saturating_add(bw)),
        ];
        let defaults_clip = [(0, 0, w, h), (0, 0, w, h)];
        let region = |r: Result<shape::GetRectanglesReply, _>,
                      defaults: [(i16, i16, u16, u16); 2]| {
            r.ok().and_then(|r: shape::GetRectanglesReply| {
                let rs = rects(&r.rectangles);
                (!defaults.iter().any(|d| rs == [*d])).then(|| ShapeRects {
                    ordering: u8::from(r.ordering),
                    rects: rs,
                })
            })
        };
        let shape = WindowShape {
            bounding: region(c.bounding.reply(), defaults_bounding),
            clip: region(c.clip.reply(), defaults_clip),
            input: region(c.input.reply(), defaults_bounding),
            events: c.selected.reply().map(|r| r.enabled).unwrap_or(false),
        };
        shapes.insert(c.window, shape);
    }
    for w in &mut s.windows {
        w.shape = Some(shapes.remove(&w.id).unwrap_or_default());
    }
}

/// The app's own shape-event selection is each window's `shape.events` (ShapeInputSelected
/// asks for this client only); other clients' selections on its windows are theirs to make
/// again on the new server: their records leave `other_resources`.
pub(super) fn forget_own_selections(s: &mut Session) {
    let windows: std::collections::HashSet<u32> = s.windows.iter().map(|w| w.id).collect();
    s.other_resources
        .retain(|o| !(o.type_name == super::type_names::SHAPE_EVENT && windows.contains(&o.id)));
}

/// Shapes of freshly created windows (before they are mapped).
pub(crate) fn regen_shapes<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    sink: &mut Sink<'c, C>,
) -> Result<(), crate::RegenError> {
    if !t
        .windows
        .iter()
        .any(|w| w.shape.as_ref().is_some_and(|s| !s.is_default()))
    {
        return Ok(());
    }
    if conn
        .extension_information(shape::X11_EXTENSION_NAME)?
        .is_none()
    {
        sink.warnings
            .push("the target has no SHAPE extension: windows lose their shapes".into());
        return Ok(());
    }
    for w in &t.windows {
        let Some(s) = &w.shape else { continue };
        for (kind, r) in [
            (shape::SK::BOUNDING, &s.bounding),
            (shape::SK::CLIP, &s.clip),
            (shape::SK::INPUT, &s.input),
        ] {
            if let Some(r) = r {
                sink.hard.push((
                    "ShapeRectangles",
                    w.id,
                    conn.shape_rectangles(
                        shape::SO::SET,
                        kind,
                        xproto::ClipOrdering::from(r.ordering),
                        w.id,
                        0,
                        0,
                        &xrects(&r.rects),
                    )?,
                ));
            }
        }
        if s.events {
            sink.hard.push((
                "ShapeSelectInput",
                w.id,
                conn.shape_select_input(w.id, true)?,
            ));
        }
    }
    Ok(())
}
