//! Fonts: round 2 asks each listed font's metrics — ListFontsWithInfo when the GUIEVICT
//! extension knows its name (the same header as QueryFont without the per-character metrics,
//! which are most of the bytes), QueryFont otherwise — and the answers flow into the session's
//! [`Font`]s, with the FONT property's atom of each kept for its XLFD name.

use super::{reply, CaptureError, CaptureOptions, ResourceList};
use crate::model::*;
use guievict_ext_proto as proto;
use x11rb::connection::Connection;
use x11rb::cookie::Cookie;
use x11rb::protocol::xproto::{self, ConnectionExt as _};

/// How a font is asked about.
pub(super) enum FontAsk<'c, C: Connection> {
    Queried(Cookie<'c, C, xproto::QueryFontReply>),
    Listed(x11rb::cookie::ListFontsWithInfoCookie<'c, C>),
}

/// Round 2: ask about every listed font.
pub(super) fn ask<'c, C: Connection>(
    conn: &'c C,
    list: &ResourceList,
    ext_state: Option<&crate::ext::ExtState>,
) -> Result<Vec<FontAsk<'c, C>>, CaptureError> {
    // A font whose name the GUIEVICT extension knows is described by ListFontsWithInfo: the
    // same header and properties as QueryFont without the per-character metrics, which are
    // most of the bytes (xterm's fonts: ~2.4 MB over a link; issue 15). QueryFont otherwise.
    let font_names = crate::ext::described(ext_state, |d| match d {
        proto::Detail::Font(x) if !x.name.is_empty() => Some(x.name.clone()),
        _ => None,
    });
    Ok(list
        .fonts
        .iter()
        .map(|&f| match font_names.get(&f) {
            Some(n) => conn
                .list_fonts_with_info(1, n.as_bytes())
                .map(FontAsk::Listed),
            None => conn.query_font(f).map(FontAsk::Queried),
        })
        .collect::<Result<_, _>>()?)
}

/// Round 2's answers into `session.fonts`; returns (index in `session.fonts`, FONT atom) for
/// the fonts that name their XLFD.
pub(super) fn read<C: Connection>(
    conn: &C,
    session: &mut Session,
    opts: &CaptureOptions,
    list: &ResourceList,
    fc: Vec<FontAsk<'_, C>>,
) -> Result<Vec<(usize, u32)>, CaptureError> {
    let mut font_atoms: Vec<(usize, u32)> = Vec::new();
    for (&id, c) in list.fonts.iter().zip(fc) {
        let q = match c {
            FontAsk::Queried(c) => reply(c, || format!("QueryFont({id:#x})"))?.into(),
            FontAsk::Listed(c) => {
                let first = c
                    .collect::<Result<Vec<_>, _>>()
                    .ok()
                    .and_then(|mut v| (!v.is_empty()).then(|| v.swap_remove(0)));
                match first {
                    Some(r) => FontHeader::from(r),
                    // The name no longer lists (the font path changed since it was opened).
                    None => reply(conn.query_font(id)?, || format!("QueryFont({id:#x})"))?.into(),
                }
            }
        };
        let ci = |c: xproto::Charinfo| CharInfo {
            left_side_bearing: c.left_side_bearing,
            right_side_bearing: c.right_side_bearing,
            character_width: c.character_width,
            ascent: c.ascent,
            descent: c.descent,
            attributes: c.attributes,
        };
        if let Some(p) = q
            .properties
            .iter()
            .find(|p| p.name == u32::from(xproto::AtomEnum::FONT))
        {
            font_atoms.push((session.fonts.len(), p.value));
        }
        session.fonts.push(Font {
            id,
            name: opts.hints.font_names.get(&id).cloned(),
            xlfd: None,
            metrics: FontMetrics {
                min_bounds: ci(q.min_bounds),
                max_bounds: ci(q.max_bounds),
                min_char_or_byte2: q.min_char_or_byte2,
                max_char_or_byte2: q.max_char_or_byte2,
                default_char: q.default_char,
                draw_direction: u32::from(q.draw_direction) as u8,
                min_byte1: q.min_byte1,
                max_byte1: q.max_byte1,
                all_chars_exist: q.all_chars_exist,
                font_ascent: q.font_ascent,
                font_descent: q.font_descent,
            },
        });
    }
    Ok(font_atoms)
}

/// What the capture keeps of a QueryFont or ListFontsWithInfo answer.
struct FontHeader {
    min_bounds: xproto::Charinfo,
    max_bounds: xproto::Charinfo,
    min_char_or_byte2: u16,
    max_char_or_byte2: u16,
    default_char: u16,
    draw_direction: xproto::FontDraw,
    min_byte1: u8,
    max_byte1: u8,
    all_chars_exist: bool,
    font_ascent: i16,
    font_descent: i16,
    properties: Vec<xproto::Fontprop>,
}

macro_rules! font_header_from {
    ($t:ty) => {
        impl From<$t> for FontHeader {
            fn from(q: $t) -> Self {
                FontHeader {
                    min_bounds: q.min_bounds,
                    max_bounds: q.max_bounds,
                    min_char_or_byte2: q.min_char_or_byte2,
                    max_char_or_byte2: q.max_char_or_byte2,
                    default_char: q.default_char,
                    draw_direction: q.draw_direction,
                    min_byte1: q.min_byte1,
                    max_byte1: q.max_byte1,
                    all_chars_exist: q.all_chars_exist,
                    font_ascent: q.font_ascent,
                    font_descent: q.font_descent,
                    properties: q.properties,
                }
            }
        }
    };
}
font_header_from!(xproto::QueryFontReply);
font_header_from!(xproto::ListFontsWithInfoReply);
