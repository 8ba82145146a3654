//! GLX of direct-rendering clients (Mesa's software renderer on Xvfb, GTK4, SDL2, mpv's GL
//! output). Such a client keeps its GL state in its own libGL and draws with core or MIT-SHM
//! `PutImage` into its windows; the server holds only placeholders: a context per
//! `glXCreateContext` (screen, FBConfig, render type, share list) and a GLX drawable per
//! `glXCreateWindow` (filed under the GLX ID and the window's ID). The capture half reads them
//! with `QueryContext`, `IsDirect` and `GetDrawableAttributes` (pipelined), learns which window
//! each GLX window stands for from the GUIEVICT extension (1.7) or, without it, from a unique
//! match of the attributes, and records the FBConfigs named as the source server lists them.
//! Regenerate (after the windows) checks each FBConfig against the target's list (the same
//! ID with the same attributes, else an equal configuration under another ID, which guimux
//! then translates), then creates the same contexts and GLX windows. An indirect context
//! (its GL state lives in the server), a GLX pixmap or a pbuffer is not carried: it stays in
//! the session's unknown list, so a move is refused.
//!
//! A pbuffer (`glXCreatePbuffer`; Qt makes one for its offscreen surfaces) is backed by a
//! server pixmap filed under the pbuffer's own ID: the capture takes that pixmap, contents
//! and all, out of the session's pixmaps into [`Session::glx_pbuffers`]; regenerate makes the
//! pbuffer (the server makes its pixmap again), and the caller uploads the contents into it.

use crate::capture::{CaptureError, ResourceList};
use crate::ext::ExtState;
use crate::model::{GlxContext, GlxFbConfig, GlxPbuffer, GlxWindow, Session};
use guievict_ext_proto as proto;
use std::collections::{HashMap, HashSet};
use x11rb::connection::Connection;
use x11rb::cookie::Cookie;
use x11rb::protocol::glx::{self, ConnectionExt as _};

/// `GLX_SHARE_CONTEXT_EXT`.
const SHARE_CONTEXT: u32 = 0x800a;
/// `GLX_SCREEN`.
const SCREEN: u32 = 0x800c;
/// `GLX_FBCONFIG_ID`.
const FBCONFIG_ID: u32 = 0x8013;
/// `GLX_RENDER_TYPE` (of a context).
const RENDER_TYPE: u32 = 0x8011;
/// `GLX_VISUAL_ID`: differs between servers with the visual numbering, compared through the
/// visual map instead.
const VISUAL_ID: u32 = 0x800b;
/// `GLX_DRAWABLE_TYPE` of a drawable (and of an FBConfig, where it is a mask).
const DRAWABLE_TYPE: u32 = 0x8010;
/// `GLX_EVENT_MASK` of a drawable.
const EVENT_MASK: u32 = 0x801f;
/// `GLX_WINDOW_BIT`: the drawable type of a `glXCreateWindow` drawable.
const WINDOW_BIT: u32 = 1;
/// `GLX_PBUFFER_BIT`: the drawable type of a `glXCreatePbuffer` drawable.
const PBUFFER_BIT: u32 = 4;
/// `GLX_WIDTH` / `GLX_HEIGHT` of a drawable.
const WIDTH: u32 = 0x801d;
const HEIGHT: u32 = 0x801e;
/// `GLX_PRESERVED_CONTENTS`.
const PRESERVED_CONTENTS: u32 = 0x801b;
/// `GLX_PBUFFER_WIDTH` / `GLX_PBUFFER_HEIGHT` (CreatePbuffer attributes).
const PBUFFER_WIDTH: u32 = 0x8041;
const PBUFFER_HEIGHT: u32 = 0x8040;
/// `GLX_RGBA_TYPE`.
const RGBA_TYPE: u32 = 0x8014;

fn pairs(flat: &[u32]) -> Vec<(u32, u32)> {
    flat.chunks_exact(2).map(|c| (c[0], c[1])).collect()
}

fn attr(list: &[(u32, u32)], a: u32) -> Option<u32> {
    list.iter().find(|(k, _)| *k == a).map(|(_, v)| *v)
}

/// The configurations of one `GetFBConfigs` reply, each as (attribute, value) pairs.
fn fbconfigs_of(screen: u32, r: &glx::GetFBConfigsReply) -> Vec<GlxFbConfig> {
    let per = (r.num_properties as usize) * 2;
    if per == 0 {
        return Vec::new();
    }
    r.property_list
        .chunks_exact(per)
        .filter_map(|c| {
            let attribs = pairs(c);
            Some(GlxFbConfig {
                screen,
                id: attr(&attribs, FBCONFIG_ID)?,
                attribs,
            })
        })
        .collect()
}

/// Capture the client's GLX contexts and windows (windows must be in `s` already).
pub(crate) fn capture(
    conn: &impl Connection,
    s: &mut Session,
    list: &ResourceList,
    ext: Option<&ExtState>,
) -> Result<(), CaptureError> {
    let of_type = |t: &str| -> Vec<u32> {
        let mut v = crate::extensions::ids_of_type(list, t);
        v.sort_unstable();
        v.dedup();
        v
    };
    let contexts = of_type(proto::kinds::GLX_CONTEXT);
    let drawables = of_type(proto::kinds::GLX_DRAWABLE);
    if contexts.is_empty() && drawables.is_empty() {
        return Ok(());
    }
    if conn
        .extension_information(glx::X11_EXTENSION_NAME)?
        .is_none()
    {
        return Ok(()); // reported as unknown resources
    }
    let windows: HashSet<u32> = s.windows.iter().map(|w| w.id).collect();
    let partner: HashMap<u32, u32> = crate::ext::described(ext, |d| match d {
        proto::Detail::GlxDrawable(x) => Some(x.drawable),
        _ => None,
    });
    // Everything asked at once; answers collected below.
    type Ask<'c, C, R> = Vec<(u32, Cookie<'c, C, R>)>;
    let ctx_q: Ask<'_, _, glx::QueryContextReply> = contexts
        .iter()
        .map(|&id| conn.glx_query_context(id).map(|c| (id, c)))
        .collect::<Result<_, _>>()?;
    let direct_q: Ask<'_, _, glx::IsDirectReply> = contexts
        .iter()
        .map(|&id| conn.glx_is_direct(id).map(|c| (id, c)))
        .collect::<Result<_, _>>()?;
    let draw_q: Ask<'_, _, glx::GetDrawableAttributesReply> = drawables
        .iter()
        .map(|&id| conn.glx_get_drawable_attributes(id).map(|c| (id, c)))
        .collect::<Result<_, _>>()?;

    let mut carried: HashSet<u32> = HashSet::new();
    let mut screens: HashSet<u32> = HashSet::new();
    let mut found_contexts = Vec::new();
    for ((id, q), (_, d)) in ctx_q.into_iter().zip(direct_q) {
        let (q, d) = (q.reply(), d.reply());
        match (q, d) {
            (Ok(q), Ok(d)) if d.is_direct => {
                let a = pairs(&q.attribs);
                let c = GlxContext {
                    id,
                    screen: attr(&a, SCREEN).unwrap_or(0),
                    fbconfig: attr(&a, FBCONFIG_ID).unwrap_or(0),
                    render_type: attr(&a, RENDER_TYPE).unwrap_or(RGBA_TYPE),
                    share: attr(&a, SHARE_CONTEXT).unwrap_or(0),
                };
                screens.insert(c.screen);
                found_contexts.push(c);
            }
            (Ok(_), Ok(_)) => s.unknown.push(format!(
                "GLXContext {id:#x}: an indirect rendering context (its GL state lives in the \
                 X server, which cannot hand it over); not recreated"
            )),
            (Err(e), _) | (_, Err(e)) => s.unknown.push(format!(
                "GLXContext {id:#x}: cannot be read ({e}); not recreated"
            )),
        }
    }
    // Attributes of every GLX drawable entry: the GLX IDs and the windows' own entries.
    let mut attrs: Vec<(u32, Vec<(u32, u32)>)> = Vec::new();
    for (id, c) in draw_q {
        match c.reply() {
            Ok(r) => attrs.push((id, pairs(&r.attribs))),
            Err(e) => s.unknown.push(format!(
                "GLXDrawable {id:#x}: cannot be read ({e}); not recreated"
            )),
        }
    }
    let mut found_windows = Vec::new();
    let mut found_pbuffers: Vec<GlxPbuffer> = Vec::new();
    for (id, a) in &attrs {
        if windows.contains(id) {
            continue; // the window's own entry: recreated with the GLX ID's
        }
        let kind = attr(a, DRAWABLE_TYPE).unwrap_or(0);
        if kind == PBUFFER_BIT {
            // Its backing pixmap (same ID) was captured as a pixmap: it goes with the pbuffer.
            let contents = s
                .pixmaps
                .iter()
                .position(|p| p.id == *id)
                .and_then(|i| s.pixmaps.remove(i).contents);
            screens.insert(attr(a, SCREEN).unwrap_or(0));
            found_pbuffers.push(GlxPbuffer {
                id: *id,
                screen: attr(a, SCREEN).unwrap_or(0),
                fbconfig: attr(a, FBCONFIG_ID).unwrap_or(0),
                width: attr(a, WIDTH).unwrap_or(1).clamp(1, 65535) as u16,
                height: attr(a, HEIGHT).unwrap_or(1).clamp(1, 65535) as u16,
                preserved: attr(a, PRESERVED_CONTENTS).unwrap_or(0) != 0,
                event_mask: attr(a, EVENT_MASK).unwrap_or(0),
                contents,
            });
            continue;
        }
        if kind != WINDOW_BIT {
            let what = if kind == 2 {
                "a GLX pixmap"
            } else {
                "a GLX drawable of an unknown type"
            };
            s.unknown.push(format!(
                "GLXDrawable {id:#x}: {what} (not modelled); not recreated"
            ));
            continue;
        }
        let window = match partner.get(id) {
            Some(&w) if w != 0 => Some(w),
            Some(_) => None,
            // Without the extension: the one window entry with the same attributes.
            None => {
                let same: Vec<u32> = attrs
                    .iter()
                    .filter(|(w, b)| windows.contains(w) && b == a)
                    .map(|(w, _)| *w)
                    .collect();
                (same.len() == 1).then(|| same[0])
            }
        };
        let Some(window) = window.filter(|w| windows.contains(w)) else {
            s.unknown.push(format!(
                "GLXDrawable {id:#x}: the window it draws to is not known (not one of the \
                 application's, or ambiguous without the GUIEVICT extension); not recreated"
            ));
            continue;
        };
        screens.insert(attr(a, SCREEN).unwrap_or(0));
        found_windows.push(GlxWindow {
            id: *id,
            window,
            fbconfig: attr(a, FBCONFIG_ID).unwrap_or(0),
            event_mask: attr(a, EVENT_MASK).unwrap_or(0),
        });
    }
    // The FBConfigs named, as the source lists them.
    let used: HashSet<u32> = found_contexts
        .iter()
        .map(|c| c.fbconfig)
        .chain(found_windows.iter().map(|w| w.fbconfig))
        .chain(found_pbuffers.iter().map(|p| p.fbconfig))
        .collect();
    let mut screens: Vec<u32> = screens.into_iter().collect();
    screens.sort_unstable();
    let cfg_q = screens
        .iter()
        .map(|&sc| conn.glx_get_fb_configs(sc).map(|c| (sc, c)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut fbconfigs = Vec::new();
    for (sc, c) in cfg_q {
        match c.reply() {
            Ok(r) => fbconfigs.extend(
                fbconfigs_of(sc, &r)
                    .into_iter()
                    .filter(|f| used.contains(&f.id)),
            ),
            Err(e) => s.unknown.push(format!(
                "GLX FBConfigs of screen {sc}: cannot be read ({e}); contexts not recreated"
            )),
        }
    }
    let listed: HashSet<u32> = fbconfigs.iter().map(|f| f.id).collect();
    let keep = |what: &str, id: u32, cfg: u32, s: &mut Session| {
        if listed.contains(&cfg) {
            true
        } else {
            s.unknown.push(format!(
                "{what} {id:#x}: FBConfig {cfg:#x} is not listed by the server; not recreated"
            ));
            false
        }
    };
    found_contexts.retain(|c| keep("GLXContext", c.id, c.fbconfig, s));
    found_windows.retain(|w| keep("GLXDrawable", w.id, w.fbconfig, s));
    found_pbuffers.retain(|p| keep("GLX pbuffer", p.id, p.fbconfig, s));
    // A context sharing with one that is not carried cannot be made alike.
    let ids: HashSet<u32> = found_contexts.iter().map(|c| c.id).collect();
    let (ok, lost): (Vec<_>, Vec<_>) = found_contexts
        .into_iter()
        .partition(|c| c.share == 0 || ids.contains(&c.share));
    for c in lost {
        s.unknown.push(format!(
            "GLXContext {:#x}: shares with context {:#x}, which is not carried; not recreated",
            c.id, c.share
        ));
    }
    s.glx.contexts = share_order(ok);
    s.glx.windows = found_windows;
    s.glx.fbconfigs = fbconfigs;
    carried.extend(s.glx.contexts.iter().map(|c| c.id));
    carried.extend(s.glx.windows.iter().map(|w| w.id));
    carried.extend(found_pbuffers.iter().map(|p| p.id));
    s.glx_pbuffers = found_pbuffers;
    // A window's own entry goes with its GLX window; one without (the server made it for a
    // plain window a direct client named) is made again on demand. GLX IDs that are not
    // carried stay, and are reported.
    s.other_resources.retain(|o| match o.type_name.as_str() {
        proto::kinds::GLX_CONTEXT | proto::kinds::GLX_SERVER_ID => !carried.contains(&o.id),
        proto::kinds::GLX_DRAWABLE => !(carried.contains(&o.id) || windows.contains(&o.id)),
        _ => true,
    });
    Ok(())
}

/// Contexts with each shared-with context before those that share with it.
fn share_order(mut rest: Vec<GlxContext>) -> Vec<GlxContext> {
    let mut out: Vec<GlxContext> = Vec::with_capacity(rest.len());
    while !rest.is_empty() {
        let before = rest.len();
        let placed: HashSet<u32> = out.iter().map(|c| c.id).collect();
        let (now, later): (Vec<_>, Vec<_>) = rest
            .into_iter()
            .partition(|c| c.share == 0 || placed.contains(&c.share));
        out.extend(now);
        rest = later;
        if rest.len() == before {
            // A cycle cannot happen (a share list names an existing context); keep the rest.
            out.append(&mut rest);
        }
    }
    out
}

/// The target's FBConfigs, asked early in a regeneration (answer read when the contexts are
/// made, with no round trip of its own).
pub(crate) struct Asked<'c, C: Connection> {
    cookies: Vec<(u32, Cookie<'c, C, glx::GetFBConfigsReply>)>,
}

/// Ask the target for its FBConfigs when the session has GLX state (`None`: nothing to ask,
/// or no GLX on the target).
pub(crate) fn ask<'c, C: Connection>(
    conn: &'c C,
    s: &Session,
    screen: u32,
) -> Result<Option<Asked<'c, C>>, x11rb::errors::ConnectionError> {
    if s.glx.contexts.is_empty() && s.glx.windows.is_empty() && s.glx_pbuffers.is_empty() {
        return Ok(None);
    }
    if conn
        .extension_information(glx::X11_EXTENSION_NAME)?
        .is_none()
    {
        return Ok(None);
    }
    Ok(Some(Asked {
        cookies: vec![(screen, conn.glx_get_fb_configs(screen)?)],
    }))
}

/// Source FBConfig ID → target FBConfig ID for every configuration the session names: the same
/// ID when its attributes (but the visual's number) are equal there, else the first target
/// configuration equal in every attribute but ID and visual. Configurations with no equal on
/// the target are missing from the map.
pub fn map_fbconfigs(source: &[GlxFbConfig], target: &[GlxFbConfig]) -> HashMap<u32, u32> {
    let key = |f: &GlxFbConfig| -> Vec<(u32, u32)> {
        let mut a: Vec<(u32, u32)> = f
            .attribs
            .iter()
            .copied()
            .filter(|(k, _)| *k != FBCONFIG_ID && *k != VISUAL_ID)
            .collect();
        a.sort_unstable();
        a
    };
    let mut out = HashMap::new();
    for f in source {
        let k = key(f);
        let same_id = target.iter().find(|t| t.id == f.id && key(t) == k);
        if let Some(t) = same_id.or_else(|| target.iter().find(|t| key(t) == k)) {
            out.insert(f.id, t.id);
        }
    }
    out
}

/// What regenerating the GLX state produced: the requests to check, the FBConfig IDs that
/// differ on the target (for guimux's ID map) and the warnings.
pub(crate) struct Regen<'c, C: Connection> {
    pub checks: Vec<(&'static str, u32, x11rb::cookie::VoidCookie<'c, C>)>,
    pub fbconfig_map: Vec<(u32, u32)>,
    pub warnings: Vec<String>,
    /// Pbuffers made whose backing pixmap gets the captured contents (by pbuffer ID).
    pub uploads: Vec<u32>,
}

/// Create the contexts, GLX windows and pbuffers of `t` (IDs already the target's) on
/// `screen`. The pbuffers whose contents the caller then uploads are in [`Regen::uploads`].
pub(crate) fn regenerate<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    asked: Option<Asked<'c, C>>,
    screen: u32,
) -> Result<Regen<'c, C>, x11rb::errors::ReplyOrIdError> {
    let mut out = Regen {
        checks: Vec::new(),
        fbconfig_map: Vec::new(),
        warnings: Vec::new(),
        uploads: Vec::new(),
    };
    let n = t.glx.contexts.len() + t.glx.windows.len() + t.glx_pbuffers.len();
    if n == 0 {
        return Ok(out);
    }
    let Some(asked) = asked else {
        out.warnings.push(format!(
            "the target has no GLX extension: {} GLX context(s) and window(s) not recreated",
            n
        ));
        return Ok(out);
    };
    let mut target = Vec::new();
    for (sc, c) in asked.cookies {
        match c.reply() {
            Ok(r) => target.extend(fbconfigs_of(sc, &r)),
            Err(e) => out.warnings.push(format!(
                "GLX FBConfigs of the target's screen {sc}: {e}; GLX state not recreated"
            )),
        }
    }
    let map = map_fbconfigs(&t.glx.fbconfigs, &target);
    for (&a, &b) in &map {
        if a != b {
            out.fbconfig_map.push((a, b));
        }
    }
    for c in &t.glx.contexts {
        let Some(&cfg) = map.get(&c.fbconfig) else {
            out.warnings.push(format!(
                "GLXContext {:#x}: the target has no FBConfig equal to {:#x}; not recreated",
                c.id, c.fbconfig
            ));
            continue;
        };
        out.checks.push((
            "glXCreateNewContext",
            c.id,
            conn.glx_create_new_context(c.id, cfg, screen, c.render_type, c.share, true)?,
        ));
    }
    for w in &t.glx.windows {
        let Some(&cfg) = map.get(&w.fbconfig) else {
            out.warnings.push(format!(
                "GLX window {:#x}: the target has no FBConfig equal to {:#x}; not recreated",
                w.id, w.fbconfig
            ));
            continue;
        };
        out.checks.push((
            "glXCreateWindow",
            w.id,
            conn.glx_create_window(screen, cfg, w.window, w.id, &[])?,
        ));
        if w.event_mask != 0 {
            out.checks.push((
                "glXSelectEvent",
                w.id,
                conn.glx_change_drawable_attributes(w.id, &[EVENT_MASK, w.event_mask])?,
            ));
        }
    }
    for p in &t.glx_pbuffers {
        let Some(&cfg) = map.get(&p.fbconfig) else {
            out.warnings.push(format!(
                "GLX pbuffer {:#x}: the target has no FBConfig equal to {:#x}; not recreated",
                p.id, p.fbconfig
            ));
            continue;
        };
        let attribs = [
            PBUFFER_WIDTH,
            u32::from(p.width),
            PBUFFER_HEIGHT,
            u32::from(p.height),
            PRESERVED_CONTENTS,
            u32::from(p.preserved),
        ];
        out.checks.push((
            "glXCreatePbuffer",
            p.id,
            conn.glx_create_pbuffer(screen, cfg, p.id, &attribs)?,
        ));
        if p.event_mask != 0 {
            out.checks.push((
                "glXSelectEvent",
                p.id,
                conn.glx_change_drawable_attributes(p.id, &[EVENT_MASK, p.event_mask])?,
            ));
        }
        if p.contents.is_some() {
            out.uploads.push(p.id);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(id: u32, visual: u32, red: u32) -> GlxFbConfig {
        GlxFbConfig {
            screen: 0,
            id,
            attribs: vec![(FBCONFIG_ID, id), (VISUAL_ID, visual), (0x8, red)],
        }
    }

    #[test]
    fn fbconfigs_map_by_id_then_by_attributes() {
        let src = [cfg(0x124, 0x3b7, 8), cfg(0x125, 0x3b8, 5), cfg(0x126, 0, 4)];
        // Same ID and attributes (another visual number): kept; 0x125 moved to 0x130 on the
        // target; 0x126 has no equal.
        let dst = [
            cfg(0x124, 0x400, 8),
            cfg(0x125, 0x401, 6),
            cfg(0x130, 0x402, 5),
        ];
        let m = map_fbconfigs(&src, &dst);
        assert_eq!(m.get(&0x124), Some(&0x124));
        assert_eq!(m.get(&0x125), Some(&0x130));
        assert_eq!(m.get(&0x126), None);
    }

    #[test]
    fn shared_contexts_come_first() {
        let c = |id, share| GlxContext {
            id,
            screen: 0,
            fbconfig: 1,
            render_type: RGBA_TYPE,
            share,
        };
        let out = share_order(vec![c(3, 2), c(2, 1), c(1, 0), c(4, 0)]);
        let ids: Vec<u32> = out.iter().map(|c| c.id).collect();
        assert_eq!(ids, vec![1, 4, 2, 3]);
    }

    #[test]
    fn reply_lists_split_into_configs() {
        let r = glx::GetFBConfigsReply {
            sequence: 1,
            num_fb_configs: 2,
            num_properties: 2,
            property_list: vec![FBCONFIG_ID, 0x21, 0x8, 8, FBCONFIG_ID, 0x22, 0x8, 5],
        };
        let v = fbconfigs_of(0, &r);
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].id, 0x22);
        assert_eq!(v[1].attribs, vec![(FBCONFIG_ID, 0x22), (0x8, 5)]);
    }
}
