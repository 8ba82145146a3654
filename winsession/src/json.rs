//! JSON and text views of a session for people and scripts: a [`Session`] flows in, a
//! `serde_json::Value` (stable field names that scripts rely on) or a short human summary flows
//! out. Image bytes are summarised by size, never dumped.

use crate::model::*;
use serde_json::{json, Value};

fn hex(v: u32) -> String {
    format!("{v:#x}")
}

/// The session as one JSON object with top-level arrays `windows`, `pixmaps`, `gcs`, `fonts`,
/// `cursors`, `colormaps`, `pictures`, `glyphsets`, `selections`, `atoms`, plus `header`,
/// `focus`, `unknown` and `other_resources`.
pub fn to_json(s: &Session) -> Value {
    let atom = |a: u32| {
        s.atom_name(a)
            .map(str::to_string)
            .unwrap_or_else(|| a.to_string())
    };
    let windows: Vec<Value> = s
        .windows
        .iter()
        .map(|w| {
            let props: Vec<Value> = w
                .properties
                .iter()
                .map(|p| {
                    let mut v = json!({
                        "name": atom(p.name),
                        "type": atom(p.type_),
                        "format": p.format,
                        "bytes": p.data.len(),
                    });
                    if p.format == 8 && p.data.len() <= 4096 {
                        v["text"] = json!(String::from_utf8_lossy(&p.data));
                    } else if p.format == 32 && p.data.len() <= 4096 {
                        v["items"] = json!(p.items32());
                    }
                    v
                })
                .collect();
            json!({
                "id": w.id,
                "parent": w.parent,
                "x": w.x,
                "y": w.y,
                "width": w.width,
                "height": w.height,
                "border_width": w.border_width,
                "depth": w.depth,
                "class": if w.class == 2 { "InputOnly" } else { "InputOutput" },
                "visual": w.visual,
                "mapped": w.mapped(),
                "map_state": w.map_state,
                "override_redirect": w.override_redirect,
                "event_mask": w.event_mask,
                "colormap": w.colormap,
                "background": w.background.map(|b| format!("{b:?}")),
                "border": w.border.map(|b| format!("{b:?}")),
                "cursor": w.cursor,
                "properties": props,
            })
        })
        .collect();
    let pixmaps: Vec<Value> = s
        .pixmaps
        .iter()
        .map(|p| {
            json!({
                "id": p.id, "depth": p.depth, "width": p.width, "height": p.height,
                "contents_bytes": p.contents.as_ref().map(|i| i.data.len()),
            })
        })
        .collect();
    let gcs: Vec<Value> = s
        .gcs
        .iter()
        .map(|g| {
            let v = g.values.as_ref();
            json!({
                "id": g.id,
                "depth": g.depth,
                "known": v.is_some(),
                "foreground": v.map(|v| v.foreground),
                "background": v.map(|v| v.background),
                "function": v.map(|v| v.function),
                "line_width": v.map(|v| v.line_width),
                "line_style": v.map(|v| v.line_style),
                "fill_style": v.map(|v| v.fill_style),
                "font": v.map(|v| v.font),
                "plane_mask": v.map(|v| v.plane_mask),
            })
        })
        .collect();
    let fonts: Vec<Value> = s
        .fonts
        .iter()
        .map(|f| {
            json!({
                "id": f.id,
                "name": f.open_name(),
                "opened_as": f.name,
                "xlfd": f.xlfd,
                "ascent": f.metrics.font_ascent,
                "descent": f.metrics.font_descent,
                "max_width": f.metrics.max_bounds.character_width,
            })
        })
        .collect();
    let cursors: Vec<Value> = s
        .cursors
        .iter()
        .map(|c| {
            json!({
                "id": c.id, "width": c.width, "height": c.height, "x_hot": c.x_hot, "y_hot": c.y_hot,
                "kind": match (&c.image, &c.glyph) {
                    (Some(CursorImage::Argb(_)), _) => "argb",
                    (Some(CursorImage::Core { .. }), _) => "core",
                    (None, Some(_)) => "glyph",
                    (None, None) => "unknown",
                },
                "glyph": c.glyph.as_ref().map(|g| json!({"font": g.font, "char": g.source_char})),
                "name": c.name,
            })
        })
        .collect();
    let colormaps: Vec<Value> = s
        .colormaps
        .iter()
        .map(|c| json!({"id": c.id, "visual": c.visual, "alloc_all": c.alloc_all, "cells": c.cells.len()}))
        .collect();
    let pictures: Vec<Value> = s
        .pictures
        .iter()
        .map(|p| json!({"id": p.id, "drawable": p.drawable, "fill": p.fill.as_ref().map(|f| match f { Fill::Solid(_) => "solid", Fill::Gradient { .. } => "gradient" }), "format": p.format, "known": p.known}))
        .collect();
    let glyphsets: Vec<Value> = s
        .glyphsets
        .iter()
        .map(
            |g| json!({"id": g.id, "format": g.format, "glyphs": g.glyphs.len(), "known": g.known}),
        )
        .collect();
    let selections: Vec<Value> = s
        .selections
        .iter()
        .map(|x| json!({"name": atom(x.name), "owner": x.owner}))
        .collect();
    json!({
        "header": {
            "app_name": s.header.app_name,
            "pid": s.header.pid,
            "time_unix": s.header.time_unix,
            "source_display": s.header.source_display,
            "producer": s.header.producer,
        },
        "setup": {
            "root": s.setup.root,
            "root_depth": s.setup.root_depth,
            "root_visual": s.setup.root_visual,
            "resource_id_base": hex(s.setup.resource_id_base),
            "resource_id_mask": hex(s.setup.resource_id_mask),
            "vendor": s.setup.vendor,
        },
        "windows": windows,
        "pixmaps": pixmaps,
        "gcs": gcs,
        "fonts": fonts,
        "cursors": cursors,
        "colormaps": colormaps,
        "pictures": pictures,
        "glyphsets": glyphsets,
        "regions": s.regions.iter().map(|r| json!({"id": r.id, "rects": r.rects.as_ref().map(Vec::len)})).collect::<Vec<_>>(),
        "damages": s.damages.iter().map(|d| json!({"id": d.id, "drawable": d.drawable, "level": d.level, "level_known": d.level_known})).collect::<Vec<_>>(),
        "counters": s.counters.iter().map(|c| json!({"id": c.id, "value": c.value})).collect::<Vec<_>>(),
        "fences": s.fences.iter().map(|f| json!({"id": f.id, "triggered": f.triggered})).collect::<Vec<_>>(),
        "shm_segments": s.shm_segments.iter().map(|g| json!({"id": g.id, "shmid": g.shmid})).collect::<Vec<_>>(),
        "xi_selections": s.xi_selections.iter().map(|x| json!({"window": x.window, "masks": x.masks})).collect::<Vec<_>>(),
        "xi_devices": s.xi_devices.iter().map(|d| json!({"id": d.id, "use": d.use_, "name": d.name})).collect::<Vec<_>>(),
        "selection_inputs": s.selection_inputs.iter().map(|x| json!({"window": x.window, "selection": atom(x.selection), "event_mask": x.event_mask})).collect::<Vec<_>>(),
        "xkb": s.xkb.as_ref().map(|x| json!({
            "flags": x.flags,
            "selections": x.selections.as_ref().map(|v| json!({
                "map_notify": v.map_notify,
                "new_keyboard_notify": v.new_keyboard_notify,
                "devices": v.devices.iter().map(|d| json!({"device": d.device, "name": d.device_name, "state": d.state, "controls": d.controls, "indicator_state": d.indicator_state, "indicator_map": d.indicator_map, "names": d.names, "compat_map": d.compat_map, "bell": d.bell, "action_message": d.action_message, "access_x": d.access_x, "ext_dev": d.ext_dev})).collect::<Vec<_>>(),
            })),
        })),
        "freed_drawables": s.freed_drawables.iter().map(|d| json!({"picture": d.picture, "width": d.image.width, "height": d.image.height, "depth": d.image.depth})).collect::<Vec<_>>(),
        "active_grabs": s.active_grabs.iter().map(|g| json!({"device": if g.keyboard { "keyboard" } else { "pointer" }, "xi2": g.xi2, "window": g.window, "owner_events": g.owner_events, "pointer_mode": g.pointer_mode, "keyboard_mode": g.keyboard_mode, "confine_to": g.confine_to, "cursor": g.cursor, "event_mask": g.event_mask, "xi2_mask": g.xi2_mask, "sync_state": g.sync_state, "paired_sync_state": g.paired_sync_state})).collect::<Vec<_>>(),
        "passive_grabs": s.passive_grabs.iter().map(|g| json!({"window": g.window, "button": g.button, "detail": g.detail, "modifiers": g.modifiers, "owner_events": g.owner_events, "event_mask": g.event_mask, "pointer_mode": g.pointer_mode, "keyboard_mode": g.keyboard_mode, "confine_to": g.confine_to, "cursor": g.cursor, "modifier_exceptions": g.modifier_mask.is_some(), "detail_exceptions": g.detail_mask.is_some()})).collect::<Vec<_>>(),
        "dbe_buffers": s.dbe_buffers.iter().map(|b| json!({"id": b.id, "window": b.window, "swap_action": b.swap_action, "contents": b.contents.as_ref().map(|i| i.data.len())})).collect::<Vec<_>>(),
        "glx": json!({
            "contexts": s.glx.contexts.iter().map(|c| json!({"id": c.id, "screen": c.screen, "fbconfig": c.fbconfig, "render_type": c.render_type, "share": c.share})).collect::<Vec<_>>(),
            "windows": s.glx.windows.iter().map(|w| json!({"id": w.id, "window": w.window, "fbconfig": w.fbconfig, "event_mask": w.event_mask})).collect::<Vec<_>>(),
            "pbuffers": s.glx_pbuffers.iter().map(|p| json!({"id": p.id, "fbconfig": p.fbconfig, "width": p.width, "height": p.height, "preserved": p.preserved, "event_mask": p.event_mask, "contents": p.contents.as_ref().map(|i| i.data.len())})).collect::<Vec<_>>(),
            "fbconfigs": s.glx.fbconfigs.iter().map(|f| json!({"screen": f.screen, "id": f.id, "attributes": f.attribs.len()})).collect::<Vec<_>>(),
        }),
        "present_events": s.present_events.iter().map(|e| json!({"id": e.id, "window": e.window, "event_mask": e.event_mask})).collect::<Vec<_>>(),
        "dangling_refs": s.dangling_refs,
        "root_event_mask": s.root_event_mask,
        "client_versions": s.client_versions.iter().map(|v| json!({"extension": v.extension, "major": v.major, "minor": v.minor, "known": v.known})).collect::<Vec<_>>(),
        "selections": selections,
        "focus": s.focus.as_ref().map(|f| json!({"window": f.window, "revert_to": f.revert_to})),
        "atoms": s.atoms.values().collect::<Vec<_>>(),
        "other_resources": s.other_resources.iter().map(|o| json!({"id": o.id, "type": o.type_name})).collect::<Vec<_>>(),
        "unknown": s.unknown,
    })
}

/// A short human summary (several lines).
pub fn summary(s: &Session) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let h = &s.header;
    let _ = writeln!(
        o,
        "session of {:?} (pid {}) from display {:?}, captured at {} by {}",
        h.app_name,
        h.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
        h.source_display,
        h.time_unix,
        h.producer
    );
    let img: usize = s
        .pixmaps
        .iter()
        .filter_map(|p| p.contents.as_ref())
        .map(|i| i.data.len())
        .sum();
    let _ = writeln!(
        o,
        "{} windows, {} pixmaps ({} bytes of contents), {} GCs, {} fonts, {} cursors, {} colormaps, {} pictures, {} glyph sets, {} atoms",
        s.windows.len(),
        s.pixmaps.len(),
        img,
        s.gcs.len(),
        s.fonts.len(),
        s.cursors.len(),
        s.colormaps.len(),
        s.pictures.len(),
        s.glyphsets.len(),
        s.atoms.len()
    );
    for w in s.windows.iter().filter(|w| w.parent == s.setup.root) {
        let name = w
            .properties
            .iter()
            .find(|p| s.atom_name(p.name) == Some("WM_NAME"))
            .map(|p| String::from_utf8_lossy(&p.data).into_owned())
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "  top-level {:#x} {}x{}+{}+{} {} {:?}",
            w.id,
            w.width,
            w.height,
            w.x,
            w.y,
            if w.mapped() { "mapped" } else { "unmapped" },
            name
        );
    }
    for f in &s.fonts {
        let _ = writeln!(o, "  font {:#x} {}", f.id, f.open_name().unwrap_or("?"));
    }
    if !s.passive_grabs.is_empty() || !s.dbe_buffers.is_empty() {
        let keys = s.passive_grabs.iter().filter(|g| !g.button).count();
        let _ = writeln!(
            o,
            "{} passive grab(s) ({} key, {} button), {} DBE back buffer(s)",
            s.passive_grabs.len(),
            keys,
            s.passive_grabs.len() - keys,
            s.dbe_buffers.len()
        );
    }
    for g in &s.active_grabs {
        let _ = writeln!(
            o,
            "active {} grab on {:#x}{}",
            if g.keyboard { "keyboard" } else { "pointer" },
            g.window,
            if g.xi2 { " (XInput 2)" } else { "" }
        );
    }
    if !s.glx.contexts.is_empty() || !s.glx.windows.is_empty() {
        let _ = writeln!(
            o,
            "{} GLX context(s) (direct rendering), {} GLX window(s), {} pbuffer(s)",
            s.glx.contexts.len(),
            s.glx.windows.len(),
            s.glx_pbuffers.len()
        );
    }
    if !s.unknown.is_empty() {
        let _ = writeln!(o, "{} unknown item(s):", s.unknown.len());
        for u in s.unknown.iter().take(20) {
            let _ = writeln!(o, "  {u}");
        }
        if s.unknown.len() > 20 {
            let _ = writeln!(o, "  … {} more (see --json)", s.unknown.len() - 20);
        }
    }
    o
}
