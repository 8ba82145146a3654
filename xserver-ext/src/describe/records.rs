//! Extension records whose layouts no installed header declares (XFIXES selection input,
//! DAMAGE objects, Present event selections): declared here for the server releases checked, and every field validated
//! before it is trusted, so a layout mismatch yields `Detail::Other`, never a wrong answer.

use super::ctx::Ctx;
use crate::ffi;
use crate::server::Item;
use guievict_ext_proto as proto;
use proto::*;

/// The record `XFixesSelectSelectionInput` keeps per (client, selection, window): xfixes/select.c
/// `SelectionEventRec` of xorg-server 21.1.x (21.1.7 checked; it is private to that file, so no
/// installed header declares it). Later servers (master, 2024) replaced `selection` with a
/// `Selection *`; the release check at load time keeps this layout to the servers it matches,
/// and [`selection_input`] validates every field it follows before trusting it.
#[repr(C)]
struct SelectionEventRec {
    next: *mut SelectionEventRec,
    selection: ffi::Atom,
    event_mask: u32,
    p_client: ffi::ClientPtr,
    p_window: ffi::WindowPtr,
    client_resource: ffi::XID,
}

/// Whether looking `id` up as a resource of type `rtype` finds the very object at `ptr`: a
/// record's pointer to a window or drawable is live by the server's invariants, and is still
/// cross-checked before it is trusted.
pub(super) fn is_resource(
    ctx: &Ctx<'_>,
    id: ffi::XID,
    rtype: ffi::RESTYPE,
    ptr: *const std::ffi::c_void,
) -> bool {
    let mut found: *mut std::ffi::c_void = std::ptr::null_mut();
    // SAFETY: serverClient is a server global (a pointer to the server's own client); the
    // lookup only reads the resource tables.
    let rc = unsafe {
        let server_client = *ctx.api.f.serverClient;
        (ctx.api.f.dixLookupResourceByType)(
            &mut found,
            id,
            rtype,
            server_client,
            ffi::DixGetAttrAccess,
        )
    };
    rc == 0 && std::ptr::eq(found.cast_const(), ptr)
}

/// XFIXES selection event mask bits (SetSelectionOwner | SelectionWindowDestroy |
/// SelectionClientClose).
const SELECTION_ALL_EVENTS: u32 = 7;

/// One selection-input record of the requesting client, or `Other` when the record does not
/// look like one (a layout mismatch must never produce a wrong answer or a wild read beyond
/// the record's own fields and a window lookup by ID).
///
/// # Safety
/// `it.value` must be the value of a live `XFixesSelectionClient` resource.
pub(super) unsafe fn selection_input(ctx: &Ctx<'_>, it: &Item) -> Detail {
    // SAFETY: the resource value is the malloc'ed SelectionEventRec (caller).
    let e = unsafe { &*(it.value as *const SelectionEventRec) };
    if e.client_resource != it.id
        || e.p_client != ctx.client
        || e.p_window.is_null()
        || e.event_mask & !SELECTION_ALL_EVENTS != 0
        || e.selection == 0
    {
        return Detail::Other;
    }
    // The window pointer is live by the server's invariant: the record is freed together with
    // its window (SelectionFreeWindow). It is still cross-checked: looking its ID up must find
    // the very same window, else the record is not reported.
    // SAFETY: p_window was checked non-NULL and is live while the record exists (above).
    let wid = unsafe { (*e.p_window).drawable.id };
    if !is_resource(
        ctx,
        wid,
        ffi::RT_WINDOW,
        e.p_window as *const std::ffi::c_void,
    ) {
        return Detail::Other;
    }
    Detail::SelectionInput(SelectionInputInfo {
        window: wid,
        selection: e.selection,
        event_mask: e.event_mask,
    })
}

/// The record `DamageCreate` keeps per DAMAGE object: damageext/damageextint.h `DamageExtRec`
/// of xorg-server (the same since 1.x; 21.1.7 checked). The header is not installed, so it is
/// declared here; [`damage`] validates every field it follows before trusting it.
#[repr(C)]
struct DamageExtRec {
    p_damage: *mut std::ffi::c_void,
    p_drawable: ffi::DrawablePtr,
    /// `DamageReportLevel`, a C enum (int).
    level: std::ffi::c_int,
    p_client: ffi::ClientPtr,
    id: ffi::XID,
    drawable: ffi::XID,
}

/// `DRAWABLE_WINDOW` / `DRAWABLE_PIXMAP` of pixmap.h (DrawableRec.type).
const DRAWABLE_WINDOW: u8 = 0;
pub(super) const DRAWABLE_PIXMAP: u8 = 1;

/// One DAMAGE object of the requesting client: the drawable it watches and its report level,
/// or `Other` when the record does not look like one.
///
/// # Safety
/// `it.value` must be the value of a live `DamageExt` resource.
pub(super) unsafe fn damage(ctx: &Ctx<'_>, it: &Item) -> Detail {
    // SAFETY: the resource value is the malloc'ed DamageExtRec (caller).
    let e = unsafe { &*(it.value as *const DamageExtRec) };
    if e.id != it.id || e.p_client != ctx.client || e.p_drawable.is_null() {
        return Detail::Other;
    }
    let Ok(level @ 0..=3) = u8::try_from(e.level) else {
        return Detail::Other;
    };
    // The drawable pointer is live by the server's invariant (the object is freed with its
    // drawable). It is still cross-checked: looking the ID up as a window or pixmap must find
    // the very same drawable.
    // SAFETY: p_drawable was checked non-NULL and is live while the object exists (above).
    let (id, kind) = unsafe { ((*e.p_drawable).id, (*e.p_drawable).type_) };
    let rtype = match kind {
        DRAWABLE_WINDOW => ffi::RT_WINDOW,
        DRAWABLE_PIXMAP => ffi::RT_PIXMAP,
        _ => return Detail::Other,
    };
    if id != e.drawable {
        return Detail::Other;
    }
    if !is_resource(ctx, id, rtype, e.p_drawable as *const std::ffi::c_void) {
        return Detail::Other;
    }
    Detail::Damage(DamageInfo {
        drawable: id,
        level,
    })
}

/// The record `PresentSelectInput` keeps per (client, window): present/present_priv.h
/// `present_event_rec` of xorg-server (the same from 1.15 to master; 21.1.7 checked). The
/// header is not installed, so it is declared here; [`present_event`] validates every field it
/// follows before trusting it.
#[repr(C)]
struct PresentEventRec {
    next: *mut PresentEventRec,
    client: ffi::ClientPtr,
    window: ffi::WindowPtr,
    id: ffi::XID,
    mask: std::ffi::c_int,
}

/// Present event mask bits a client can select (ConfigureNotify, CompleteNotify, IdleNotify,
/// and SubredrawNotify of later protocol versions).
const PRESENT_ALL_EVENTS: u32 = 0xf;

/// One Present event selection of the requesting client: its window and mask, or `Other` when
/// the record does not look like one.
///
/// # Safety
/// `it.value` must be the value of a live `PresentEvent` resource.
pub(super) unsafe fn present_event(ctx: &Ctx<'_>, it: &Item) -> Detail {
    // SAFETY: the resource value is the malloc'ed present_event_rec (caller).
    let e = unsafe { &*(it.value as *const PresentEventRec) };
    let Ok(mask) = u32::try_from(e.mask) else {
        return Detail::Other;
    };
    if e.id != it.id
        || e.client != ctx.client
        || e.window.is_null()
        || mask & !PRESENT_ALL_EVENTS != 0
    {
        return Detail::Other;
    }
    // The window pointer is live by the server's invariant (the record is freed with its
    // window). It is still cross-checked: looking its ID up must find the very same window.
    // SAFETY: window was checked non-NULL and is live while the record exists (above).
    let wid = unsafe { (*e.window).drawable.id };
    if !is_resource(
        ctx,
        wid,
        ffi::RT_WINDOW,
        e.window as *const std::ffi::c_void,
    ) {
        return Detail::Other;
    }
    Detail::PresentEvent(PresentEventInfo {
        window: wid,
        event_mask: mask,
    })
}
