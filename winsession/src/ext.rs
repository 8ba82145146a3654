//! GUIEVICT extension client: asks the server, on the application's own connection, for every
//! resource the client owns and the state the core protocol cannot read (GC values, cursor images,
//! window background/border/cursor, font names, colormap cells, RENDER pictures and glyph sets,
//! XFIXES selection inputs and XKEYBOARD event selections — the last two read by `extensions`), and
//! folds that state into a captured [`Session`]. Request and reply bytes are made and parsed by
//! `guievict-ext-proto`; this module only moves them. Absent extension → `None`, and capture
//! falls back to X-Resource.

use crate::capture::{CaptureError, ResourceList};
use crate::model::{self, Session};
use guievict_ext_proto as proto;
use std::collections::{HashMap, HashSet};
use std::io::IoSlice;
use x11rb::connection::Connection;
use x11rb::errors::ParseError;
use x11rb::x11_utils::TryParse;

/// What the extension told us.
#[derive(Clone, Debug, Default)]
pub struct ExtState {
    /// Resource IDs by kind.
    pub list: ResourceList,
    /// Every resource with its detail.
    pub resources: Vec<proto::Resource>,
    /// The client's own XKEYBOARD state (GUIEVICT ≥ 1.2; `None` from older servers).
    pub xkb: Option<proto::XkbClientState>,
    /// Active grabs the client held on the core devices (GUIEVICT ≥ 1.3; `None` from older
    /// servers): `proto::ACTIVE_GRAB_*` bits.
    pub active_grabs: Option<u8>,
    /// Those active grabs in full (GUIEVICT ≥ 1.8, `GetActiveGrabs`; `None` from older
    /// servers).
    pub active_grab_records: Option<Vec<proto::ActiveGrab>>,
}

impl ExtState {
    /// Colormap facts: (visual, alloc_all) for the capture's colormap pass.
    pub fn colormap(
        &self,
        id: u32,
        entries_of: impl Fn(u32) -> u16,
    ) -> Option<(u32, bool, Vec<model::ColorCell>)> {
        self.resources.iter().find_map(|r| match &r.detail {
            proto::Detail::Colormap(c) if r.id == id => {
                let writable_all = !c.cells.is_empty()
                    && c.cells.iter().all(|x| x.writable)
                    && c.cells.len() >= usize::from(entries_of(c.visual));
                let cells = c
                    .cells
                    .iter()
                    .map(|x| model::ColorCell {
                        pixel: x.pixel,
                        rgb: [x.red, x.green, x.blue],
                        flags: x.flags,
                    })
                    .collect();
                Some((c.visual, writable_all, cells))
            }
            _ => None,
        })
    }
}

/// A reply kept as raw bytes (decoded by `guievict-ext-proto`).
struct RawReply(Vec<u8>);

impl TryParse for RawReply {
    fn try_parse(value: &[u8]) -> Result<(Self, &[u8]), ParseError> {
        Ok((RawReply(value.to_vec()), &[]))
    }
}

fn bad_reply(what: &str, e: proto::DecodeError) -> CaptureError {
    CaptureError::Reply {
        what: format!("GUIEVICT {what}: {e}"),
        source: x11rb::errors::ReplyError::ConnectionError(
            x11rb::errors::ConnectionError::ParseError(ParseError::InvalidExpression),
        ),
    }
}

/// Query the extension, if the server has it and `client` is this connection's own client (the
/// extension answers for the requesting client only).
pub fn query(conn: &impl Connection, client: u32) -> Result<Option<ExtState>, CaptureError> {
    match ask(conn, client)? {
        Some(a) => a.collect(),
        None => Ok(None),
    }
}

/// The extension's QueryVersion and first GetResources page, sent and not yet waited for
/// ([`ask`]); [`Asked::collect`] reads them (and asks further pages).
pub struct Asked<'c, C: Connection> {
    conn: &'c C,
    major_opcode: u8,
    req: proto::GetResourcesRequest,
    version: x11rb::cookie::Cookie<'c, C, RawReply>,
    first: x11rb::cookie::Cookie<'c, C, RawReply>,
    grabs: x11rb::cookie::Cookie<'c, C, RawReply>,
}

/// Send the extension's QueryVersion and first GetResources page without waiting (so that
/// they share a round trip with whatever else goes out before the first answer is needed);
/// `None` when the server lacks the extension or `client` is not this connection's own.
pub fn ask<C: Connection>(conn: &C, client: u32) -> Result<Option<Asked<'_, C>>, CaptureError> {
    let setup = conn.setup();
    if client & !setup.resource_id_mask != setup.resource_id_base {
        return Ok(None);
    }
    let Some(info) = conn.extension_information(proto::EXTENSION_NAME)? else {
        return Ok(None);
    };
    let order = proto::ByteOrder::native();
    let qv = proto::encode_query_own_version(info.major_opcode, order);
    let req = proto::GetResourcesRequest {
        max_bytes: proto::MAX_MAX_BYTES,
        ..proto::GetResourcesRequest::first()
    };
    // QueryVersion and the first page go out together, the page with every flag this crate
    // knows. An older server (1.0, 1.1) refuses the flags it does not know with BadValue: then
    // that page is dropped and asked again with its version's flags (one more round trip, old
    // servers only).
    let version = conn.send_request_with_reply::<RawReply>(&[IoSlice::new(&qv)], Vec::new())?;
    let first = proto::encode_get_resources(info.major_opcode, &req, order);
    let first = conn.send_request_with_reply::<RawReply>(&[IoSlice::new(&first)], Vec::new())?;
    // GetActiveGrabs (1.8) goes along too; a 1.7 server answers BadRequest, consumed unseen.
    let grabs = proto::encode_get_active_grabs(info.major_opcode, order);
    let grabs = conn.send_request_with_reply::<RawReply>(&[IoSlice::new(&grabs)], Vec::new())?;
    Ok(Some(Asked {
        conn,
        major_opcode: info.major_opcode,
        req,
        version,
        first,
        grabs,
    }))
}

impl<C: Connection> Asked<'_, C> {
    /// Wait for the answers of [`ask`]: every resource of the client with its detail (`None`
    /// from a server speaking another major version of the protocol).
    pub fn collect(self) -> Result<Option<ExtState>, CaptureError> {
        let Asked {
            conn,
            major_opcode,
            mut req,
            version,
            first: mut cookie,
            grabs,
        } = self;
        let order = proto::ByteOrder::native();
        let v = version.reply().map_err(|source| CaptureError::Reply {
            what: "GUIEVICT QueryVersion".into(),
            source,
        })?;
        let v = proto::decode_query_version_reply(&v.0, order)
            .map_err(|e| bad_reply("QueryVersion", e))?;
        if v.major != proto::MAJOR_VERSION {
            tracing::warn!(
                "GUIEVICT server version {}.{} not supported; using X-Resource",
                v.major,
                v.minor
            );
            return Ok(None);
        }
        let server_flags = proto::flags_for_minor(v.minor);
        if req.flags & !server_flags != 0 {
            // The refused page's error is consumed here, not reported.
            let _ = cookie.reply();
            req.flags &= server_flags;
            let bytes = proto::encode_get_resources(major_opcode, &req, order);
            cookie =
                conn.send_request_with_reply::<RawReply>(&[IoSlice::new(&bytes)], Vec::new())?;
        }
        // A server that refuses flags of the version it claims (a development build between
        // two releases of the protocol) is asked again with each older version's flags.
        let mut minor = v.minor;
        let mut first = cookie.reply();
        while let Err(x11rb::errors::ReplyError::X11Error(e)) = &first {
            if e.error_kind != x11rb::protocol::ErrorKind::Value || minor == 0 {
                break;
            }
            minor -= 1;
            let older = req.flags & proto::flags_for_minor(minor);
            if older == req.flags {
                continue;
            }
            tracing::debug!(
                "GUIEVICT refused flags {:#x}; asking with those of 1.{minor}",
                req.flags
            );
            req.flags = older;
            let bytes = proto::encode_get_resources(major_opcode, &req, order);
            first = conn
                .send_request_with_reply::<RawReply>(&[IoSlice::new(&bytes)], Vec::new())?
                .reply();
        }
        let active_grab_records = if v.minor >= 8 {
            let raw = grabs.reply().map_err(|source| CaptureError::Reply {
                what: "GUIEVICT GetActiveGrabs".into(),
                source,
            })?;
            Some(
                proto::decode_get_active_grabs_reply(&raw.0, order)
                    .map_err(|e| bad_reply("GetActiveGrabs", e))?
                    .grabs,
            )
        } else {
            // A 1.7 server's BadRequest, consumed here.
            let _ = grabs.reply();
            None
        };
        let mut st = collect_pages(conn, major_opcode, req, first)?;
        st.active_grab_records = active_grab_records;
        Ok(Some(st))
    }
}

fn collect_pages<C: Connection>(
    conn: &C,
    major_opcode: u8,
    mut req: proto::GetResourcesRequest,
    first: Result<RawReply, x11rb::errors::ReplyError>,
) -> Result<ExtState, CaptureError> {
    let order = proto::ByteOrder::native();
    let mut all = proto::Resources::default();
    let mut xkb = None;
    let mut active_grabs = None;
    let mut answer = first;
    loop {
        let raw = answer.map_err(|source| CaptureError::Reply {
            what: "GUIEVICT GetResources".into(),
            source,
        })?;
        let page = proto::decode_get_resources_reply(&raw.0, order)
            .map_err(|e| bad_reply("GetResources", e))?;
        let next = req.next_after(&page);
        if req.flags & proto::FLAG_XKB_SELECTIONS != 0 {
            xkb = Some(page.xkb);
        }
        if req.flags & proto::FLAG_PASSIVE_GRABS != 0 {
            active_grabs = Some(page.active_grabs);
        }
        all.extend(page.resources);
        match next {
            Some(n) => {
                req = n;
                let bytes = proto::encode_get_resources(major_opcode, &req, order);
                answer = conn
                    .send_request_with_reply::<RawReply>(&[IoSlice::new(&bytes)], Vec::new())?
                    .reply();
            }
            None => break,
        }
    }
    let mut list = ResourceList::default();
    for r in &all.resources {
        let v = match r.kind.as_str() {
            proto::kinds::WINDOW => &mut list.windows,
            proto::kinds::PIXMAP => &mut list.pixmaps,
            proto::kinds::GC => &mut list.gcs,
            proto::kinds::FONT => &mut list.fonts,
            proto::kinds::CURSOR => &mut list.cursors,
            proto::kinds::COLORMAP => &mut list.colormaps,
            proto::kinds::PICTURE => &mut list.pictures,
            proto::kinds::GLYPHSET => &mut list.glyphsets,
            other => {
                list.other.push((r.id, other.to_string()));
                continue;
            }
        };
        v.push(r.id);
    }
    for v in [
        &mut list.windows,
        &mut list.pixmaps,
        &mut list.gcs,
        &mut list.fonts,
        &mut list.cursors,
        &mut list.colormaps,
        &mut list.pictures,
        &mut list.glyphsets,
    ] {
        v.sort_unstable();
        v.dedup();
    }
    Ok(ExtState {
        list,
        resources: all.resources,
        xkb,
        active_grabs,
        active_grab_records: None,
    })
}

fn clip(c: &proto::Clip) -> model::Clip {
    match c {
        proto::Clip::None => model::Clip::None,
        proto::Clip::Rectangles(r) => model::Clip::Rectangles {
            ordering: 3, // YXBanded, as the server reports them
            rects: r.iter().map(|r| (r.x, r.y, r.width, r.height)).collect(),
        },
    }
}

/// Per resource ID, what `pick` takes from the extension's description of the resource (empty
/// without the extension).
pub(crate) fn described<T>(
    ext: Option<&ExtState>,
    pick: impl Fn(&proto::Detail) -> Option<T>,
) -> HashMap<u32, T> {
    ext.map(|st| {
        st.resources
            .iter()
            .filter_map(|r| pick(&r.detail).map(|x| (r.id, x)))
            .collect()
    })
    .unwrap_or_default()
}

/// Fold extension state into the session. References to resources the client does not own
/// (the server's default font and stipple) become 0, "the default".
pub fn apply(s: &mut Session, st: &ExtState) {
    let owned: HashSet<u32> = st.resources.iter().map(|r| r.id).collect();
    let own = |id: u32| if owned.contains(&id) { id } else { 0 };
    let by_id: HashMap<(u32, &str), &proto::Detail> = st
        .resources
        .iter()
        .map(|r| ((r.id, r.kind.as_str()), &r.detail))
        .collect();
    for w in &mut s.windows {
        if let Some(proto::Detail::Window(x)) = by_id.get(&(w.id, proto::kinds::WINDOW)) {
            if w.class == 1 {
                w.background = Some(match x.background {
                    proto::BgKind::None => model::Background::None,
                    proto::BgKind::ParentRelative => model::Background::ParentRelative,
                    proto::BgKind::Pixel(p) => model::Background::Pixel(p),
                    proto::BgKind::Pixmap(p) => model::Background::Pixmap(p),
                });
                w.border = Some(match x.border {
                    proto::BorderKind::Pixel(p) => model::Border::Pixel(p),
                    proto::BorderKind::Pixmap(p) => model::Border::Pixmap(p),
                });
            }
            w.cursor = Some(own(x.cursor));
        }
    }
    let (base, mask) = (s.setup.resource_id_base, s.setup.resource_id_mask);
    for g in &mut s.gcs {
        if let Some(proto::Detail::Gc(v)) = by_id.get(&(g.id, proto::kinds::GC)) {
            g.depth = v.depth;
            let font = own(v.font);
            if font == 0 && v.font != 0 && v.font & !mask == base {
                s.unknown.push(format!(
                    "gc {:#x}: font {:#x} (closed by the application)",
                    g.id, v.font
                ));
            }
            g.values = Some(model::GcValues {
                function: v.function,
                plane_mask: v.plane_mask,
                foreground: v.foreground,
                background: v.background,
                line_width: v.line_width,
                line_style: v.line_style,
                cap_style: v.cap_style,
                join_style: v.join_style,
                fill_style: v.fill_style,
                fill_rule: v.fill_rule,
                tile: match v.tile {
                    proto::Tile::Pixmap(p) => own(p),
                    proto::Tile::Pixel(_) => 0,
                },
                stipple: own(v.stipple),
                ts_x: v.ts_x_origin,
                ts_y: v.ts_y_origin,
                font,
                subwindow_mode: v.subwindow_mode,
                graphics_exposures: v.graphics_exposures,
                clip_x: v.clip_x_origin,
                clip_y: v.clip_y_origin,
                clip: clip(&v.clip),
                dash_offset: v.dash_offset,
                dashes: v.dashes.clone(),
                arc_mode: v.arc_mode,
            });
        }
    }
    for f in &mut s.fonts {
        if let Some(proto::Detail::Font(x)) = by_id.get(&(f.id, proto::kinds::FONT)) {
            if !x.from_property {
                f.name = Some(x.name.clone());
            } else if f.xlfd.is_none() {
                f.xlfd = Some(x.name.clone());
            }
        }
    }
    for c in &mut s.cursors {
        if let Some(proto::Detail::Cursor(x)) = by_id.get(&(c.id, proto::kinds::CURSOR)) {
            c.width = x.width;
            c.height = x.height;
            c.x_hot = x.x_hot;
            c.y_hot = x.y_hot;
            c.image = match &x.image {
                proto::CursorBits::None => None,
                proto::CursorBits::Bitmap { source, mask } => Some(model::CursorImage::Core {
                    source: source.clone(),
                    mask: mask.clone(),
                    fore: x.fore_rgb,
                    back: x.back_rgb,
                }),
                proto::CursorBits::Argb(p) => Some(model::CursorImage::Argb(p.clone())),
            };
            if c.image.is_some() {
                // The image is the truth; a glyph hint would only duplicate it.
                c.glyph = None;
            }
        }
    }
    for p in &mut s.pictures {
        if let Some(proto::Detail::Picture(x)) = by_id.get(&(p.id, proto::kinds::PICTURE)) {
            let (drawable, fill) = match &x.source {
                proto::PictureSource::Drawable(d) => (*d, None),
                proto::PictureSource::SolidFill(c) => (0, Some(model::Fill::Solid(*c))),
                proto::PictureSource::Gradient(g) => (
                    0,
                    Some(model::Fill::Gradient {
                        kind: match g.kind {
                            proto::GradientKind::Linear => model::GradientKind::Linear,
                            proto::GradientKind::Radial => model::GradientKind::Radial,
                            proto::GradientKind::Conical => model::GradientKind::Conical,
                        },
                        params: g.params.clone(),
                        stops: g.stops.iter().map(|s| (s.offset, s.color)).collect(),
                    }),
                ),
            };
            *p = model::Picture {
                id: p.id,
                drawable,
                fill,
                format: x.format,
                repeat: x.repeat,
                filter: x.filter.clone(),
                filter_params: x.filter_params.clone(),
                transform: x.transform,
                alpha_map: own(x.alpha_map),
                alpha_x: x.alpha_x_origin,
                alpha_y: x.alpha_y_origin,
                clip: clip(&x.clip),
                clip_x: x.clip_x_origin,
                clip_y: x.clip_y_origin,
                component_alpha: x.component_alpha,
                subwindow_mode: x.subwindow_mode,
                poly_edge: x.poly_edge,
                poly_mode: x.poly_mode,
                graphics_exposures: x.graphics_exposures,
                known: true,
            };
            if let Some(o) = x.orphan.as_ref().filter(|o| !o.image.is_empty()) {
                s.freed_drawables.push(model::FreedDrawable {
                    picture: p.id,
                    image: model::Image {
                        depth: o.depth,
                        bits_per_pixel: o.bits_per_pixel,
                        scanline_pad: 32,
                        width: o.width,
                        height: o.height,
                        data: o.image.clone(),
                    },
                });
            }
            if x.alpha_map != 0 && p.alpha_map == 0 {
                s.unknown.push(format!(
                    "picture {:#x}: alpha map {:#x} is not the application's",
                    p.id, x.alpha_map
                ));
            }
        }
    }
    for g in &mut s.glyphsets {
        if let Some(proto::Detail::GlyphSet(x)) = by_id.get(&(g.id, proto::kinds::GLYPHSET)) {
            g.format = x.format;
            g.glyphs = x
                .glyphs
                .iter()
                .map(|y| model::Glyph {
                    id: y.id,
                    width: y.width,
                    height: y.height,
                    x: y.x,
                    y: y.y,
                    x_off: y.x_off,
                    y_off: y.y_off,
                    image: y.image.clone(),
                })
                .collect();
            g.known = true;
        }
    }
}
