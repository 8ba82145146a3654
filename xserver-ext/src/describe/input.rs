//! Input state of a client: XKB per-client flags and event selections, passive grabs (keys and
//! buttons with their modifier/detail masks), whether the client holds active grabs and, for
//! `GetActiveGrabs` (1.8), those grabs in full. Device and window pointers are checked against
//! the server's own lists before they are followed.

use super::ctx::Ctx;
use crate::ffi;
use crate::server::{Api, Item};
use guievict_ext_proto as proto;
use proto::*;

/// `_XkbClientInitialized` / `_XkbClientIsAncient` of xkbsrv.h (ClientRec.xkbClientFlags).
const XKB_CLIENT_INITIALISED: u8 = 1 << 7;
const XKB_CLIENT_IS_ANCIENT: u8 = 1 << 6;

/// The client-wide XKEYBOARD state of the requesting client (ClientRec fields that
/// `XkbUseExtension` and `XkbSelectEvents` set: MapNotify and NewKeyboardNotify details are kept
/// per client, not per device).
///
/// # Safety
/// `client` must be live.
pub unsafe fn xkb_client_state(client: ffi::ClientPtr) -> XkbClientState {
    // SAFETY: live client (caller).
    let c = unsafe { &*client };
    let mut flags = 0;
    if c.xkbClientFlags & XKB_CLIENT_INITIALISED != 0 {
        flags |= XkbClientState::INITIALISED;
    }
    if c.xkbClientFlags & XKB_CLIENT_IS_ANCIENT != 0 {
        flags |= XkbClientState::ANCIENT;
    }
    XkbClientState {
        map_notify: c.mapNotifyMask,
        new_keyboard_notify: c.newKeyboardNotifyMask,
        flags,
    }
}

/// Longest device or interest list walked (a server has a few dozen devices; a corrupt list
/// must not loop forever).
const MAX_LIST_WALK: usize = 4096;

/// Whether `dev` is one of the server's devices (on or off), found by walking `inputInfo`'s
/// lists: a resource value is only followed when it is a device the server knows.
///
/// # Safety
/// Must run on the server's dispatch thread (the device lists are not locked).
unsafe fn known_device(api: &Api, dev: ffi::DeviceIntPtr) -> bool {
    // SAFETY: inputInfo is a server global; its lists link live devices.
    unsafe {
        let info = &*api.f.inputInfo;
        for mut d in [info.devices, info.off_devices] {
            let mut n = 0;
            while !d.is_null() && n < MAX_LIST_WALK {
                if d == dev {
                    return true;
                }
                d = (*d).next;
                n += 1;
            }
        }
    }
    false
}

/// One XKEYBOARD interest record of the requesting client: the resource's value is the device
/// (`ProcXkbSelectEvents` adds `AddResource(id, RT_XKBCLIENT, dev)`), and the device's
/// `xkb_interest` list holds the record whose client and resource ID are ours. `Other` when
/// the device is unknown or no such record is on its list.
///
/// # Safety
/// `it.value` must be the value of a live `XkbClient` resource of the requesting client.
pub(super) unsafe fn xkb_interest(ctx: &Ctx<'_>, it: &Item) -> Detail {
    let dev = it.value as ffi::DeviceIntPtr;
    // SAFETY: dispatch thread (caller).
    if !unsafe { known_device(ctx.api, dev) } {
        return Detail::Other;
    }
    // SAFETY: dev is a live device (checked above); its interest list holds live records.
    unsafe {
        let d = &*dev;
        let mut i = d.xkb_interest;
        let mut n = 0;
        while !i.is_null() && n < MAX_LIST_WALK {
            let rec = &*i;
            if rec.client == ctx.client && rec.resource == it.id {
                let device_name = if d.name.is_null() {
                    String::new()
                } else {
                    std::ffi::CStr::from_ptr(d.name)
                        .to_string_lossy()
                        .into_owned()
                };
                return Detail::XkbInterest(XkbInterestInfo {
                    device: u16::try_from(d.id).unwrap_or(0),
                    device_name,
                    state: rec.stateNotifyMask,
                    names: rec.namesNotifyMask,
                    access_x: rec.accessXNotifyMask,
                    ext_dev: rec.extDevNotifyMask,
                    controls: rec.ctrlsNotifyMask,
                    indicator_state: rec.iStateNotifyMask,
                    indicator_map: rec.iMapNotifyMask,
                    compat_map: rec.compatNotifyMask,
                    bell: rec.bellNotifyMask,
                    action_message: rec.actionMessageMask,
                    auto_ctrls: rec.autoCtrls,
                    auto_ctrl_values: rec.autoCtrlValues,
                });
            }
            i = rec.next;
            n += 1;
        }
    }
    Detail::Other
}

/// Whether looking `id` up as a window finds exactly `w` (a pointer is only followed when the
/// server's own table agrees that it is a live window).
///
/// # Safety
/// Must run on the server's dispatch thread; `w` is only compared, never dereferenced.
unsafe fn window_checks_out(api: &Api, id: u32, w: ffi::WindowPtr) -> bool {
    let mut found: *mut std::ffi::c_void = std::ptr::null_mut();
    // SAFETY: serverClient is a server global; the lookup only reads the resource tables.
    let rc = unsafe {
        let server_client = *api.f.serverClient;
        (api.f.dixLookupResourceByType)(
            &mut found,
            id,
            ffi::RT_WINDOW,
            server_client,
            ffi::DixGetAttrAccess,
        )
    };
    rc == 0 && found == w as *mut std::ffi::c_void
}

/// `MasksPerDetailMask` of dix/grabs.c: a grab's exception mask is 8 `Mask` words (256 bits).
const MASKS_PER_DETAIL_MASK: usize = 8;

/// A grab's `DetailRec.pMask` (the keys/buttons or modifier combinations an Any grab still
/// covers after partial ungrabs) as 32 bytes, bit n in byte n/8 (LSB first); `None` when the
/// grab has no exceptions.
///
/// # Safety
/// `m` must be NULL or point to a live mask of [`MASKS_PER_DETAIL_MASK`] words.
unsafe fn detail_mask(m: *const ffi::Mask) -> Option<Vec<u8>> {
    if m.is_null() {
        return None;
    }
    // SAFETY: the server allocates exactly MasksPerDetailMask words (caller).
    let words = unsafe { std::slice::from_raw_parts(m, MASKS_PER_DETAIL_MASK) };
    Some(words.iter().flat_map(|w| w.to_le_bytes()).collect())
}

/// One passive grab of the requesting client: the resource's value is the `GrabRec`
/// (`AddPassiveGrabToList` adds `AddResource(grab->resource, RT_PASSIVEGRAB, grab)` with a
/// `FakeClientID` of the grabbing client). Reported only if it checks out: the record's resource
/// ID is the one it is filed under, its device is one the server knows, and its grab window (and
/// confine-to window) are the live windows their IDs name; otherwise `Other`.
///
/// # Safety
/// `it.value` must be the value of a live `PASSIVE GRAB` resource of the requesting client.
pub(super) unsafe fn passive_grab(ctx: &Ctx<'_>, it: &Item) -> Detail {
    // SAFETY: the resource value is the grab record (caller).
    let g = unsafe { &*(it.value as *const ffi::_GrabRec) };
    if g.resource != it.id || g.window.is_null() {
        return Detail::Other;
    }
    // SAFETY: dispatch thread (caller).
    if g.device.is_null() || !unsafe { known_device(ctx.api, g.device) } {
        return Detail::Other;
    }
    // SAFETY: the window pointer is held by the grab while it is on the window's list; it is
    // cross-checked against the server's resource table before its ID is trusted.
    let window = unsafe { (*g.window).drawable.id };
    // SAFETY: dispatch thread.
    if !unsafe { window_checks_out(ctx.api, window, g.window) } {
        return Detail::Other;
    }
    let confine_to = if g.confineTo.is_null() {
        0
    } else {
        // SAFETY: as for the grab window.
        let id = unsafe { (*g.confineTo).drawable.id };
        // SAFETY: dispatch thread.
        if !unsafe { window_checks_out(ctx.api, id, g.confineTo) } {
            return Detail::Other;
        }
        id
    };
    let cursor = if g.cursor.is_null() {
        0
    } else {
        // SAFETY: the grab holds a reference on its cursor (CreateGrab: RefCursor).
        unsafe { (*g.cursor).id }
    };
    // SAFETY: known device (checked above).
    let device = u16::try_from(unsafe { (*g.device).id }).unwrap_or(0);
    Detail::PassiveGrab(PassiveGrabInfo {
        window,
        confine_to,
        cursor,
        event_mask: g.eventMask,
        modifiers: g.modifiersDetail.exact,
        detail: u16::try_from(g.detail.exact).unwrap_or(u16::MAX),
        device,
        level: g.grabtype as u8,
        event_type: g.type_,
        owner_events: g.ownerEvents() != 0,
        pointer_mode: g.pointerMode() as u8,
        keyboard_mode: g.keyboardMode() as u8,
        // SAFETY: pMask is NULL or the MasksPerDetailMask words DeleteDetailFromMask made.
        modifier_mask: unsafe { detail_mask(g.modifiersDetail.pMask) },
        // SAFETY: as above.
        detail_mask: unsafe { detail_mask(g.detail.pMask) },
    })
}

/// `RESOURCE_AND_CLIENT_COUNT` of resource.h: client bits and resource bits share 29 bits.
const RESOURCE_AND_CLIENT_COUNT: u32 = 29;

/// Whether `id` carries the client bits of `client` (`CLIENT_BITS(id) == clientAsMask`).
///
/// # Safety
/// `client` must be live.
unsafe fn owned_by(api: &Api, id: ffi::XID, client: ffi::ClientPtr) -> bool {
    // SAFETY: a server function without preconditions.
    let bits = unsafe { (api.f.ResourceClientBits)() };
    if bits == 0 || bits >= RESOURCE_AND_CLIENT_COUNT {
        return false;
    }
    let mask = ((1u32 << bits) - 1) << (RESOURCE_AND_CLIENT_COUNT - bits);
    // SAFETY: live client (caller).
    let own = unsafe { (*client).clientAsMask };
    id & mask == own & mask
}

/// The active grabs the client holds on the core pointer and keyboard (reply header byte 29).
///
/// # Safety
/// `client` must be live; must run on the server's dispatch thread.
pub unsafe fn active_grabs(api: &Api, client: ffi::ClientPtr) -> u8 {
    let mut out = 0;
    // SAFETY: inputInfo is a server global; its core devices and their grab records are live
    // on the dispatch thread.
    unsafe {
        let info = &*api.f.inputInfo;
        for (dev, bit) in [
            (info.pointer, ACTIVE_GRAB_POINTER),
            (info.keyboard, ACTIVE_GRAB_KEYBOARD),
        ] {
            if dev.is_null() {
                continue;
            }
            let g = &(*dev).deviceGrab;
            if g.grab.is_null() || !owned_by(api, (*g.grab).resource, client) {
                continue;
            }
            out |= bit;
            if bit == ACTIVE_GRAB_POINTER && (g.implicitGrab != 0 || g.fromPassiveGrab != 0) {
                out |= ACTIVE_GRAB_POINTER_IMPLICIT;
            }
        }
    }
    out
}

/// The server's `struct _XI2Mask` (include/inpututils.h, not an installed header): one event
/// mask per device ID. Declared here and checked before use: the counts must be the server's
/// [`XI2_MASK_COUNT`] and [`XI2_MASK_SIZE`].
#[repr(C)]
struct Xi2Mask {
    masks: *mut *mut u8,
    nmasks: usize,
    mask_size: usize,
}

/// `EMASKSIZE` of inputstr.h (`MAXDEVICES + 2`): the number of masks in an `XI2Mask`.
const XI2_MASK_COUNT: usize = 256 + 2;
/// `XI2MASKSIZE` of inputstr.h for XInput 2.4 (`(XI_GestureSwipeEnd >> 3) + 1`).
const XI2_MASK_SIZE: usize = (32 >> 3) + 1;

/// The XInput 2 event mask an XI2 grab selected for its device (`ProcXIGrabDevice` stores it
/// under the device's ID), or `None` when the mask record does not check out.
///
/// # Safety
/// `m` must be NULL or the live `xi2mask` of a live grab.
unsafe fn xi2_grab_mask(m: *const Xi2Mask, device_id: usize) -> Option<Vec<u8>> {
    if m.is_null() {
        return None;
    }
    // SAFETY: the grab's xi2mask (caller); its fields are checked before they are followed.
    unsafe {
        let m = &*m;
        if m.masks.is_null()
            || m.nmasks != XI2_MASK_COUNT
            || m.mask_size != XI2_MASK_SIZE
            || device_id >= m.nmasks
        {
            return None;
        }
        let row = *m.masks.add(device_id);
        if row.is_null() {
            return None;
        }
        Some(std::slice::from_raw_parts(row, m.mask_size).to_vec())
    }
}

/// The active grabs the requesting client holds on the core (master) pointer and keyboard,
/// in full, for `GetActiveGrabs` (protocol 1.8). A grab whose window does not check out
/// against the server's resource table is left out (the client then sees only byte 29 of
/// `GetResources` and refuses to carry it).
///
/// # Safety
/// `client` must be live; must run on the server's dispatch thread.
pub unsafe fn active_grab_records(api: &Api, client: ffi::ClientPtr) -> Vec<ActiveGrab> {
    let mut out = Vec::new();
    // SAFETY: inputInfo is a server global; its core devices and their grab records are live
    // on the dispatch thread; every window pointer is cross-checked before its ID is trusted.
    unsafe {
        let info = &*api.f.inputInfo;
        let state_of = |d: ffi::DeviceIntPtr| -> u8 {
            if d.is_null() {
                return 0;
            }
            u8::try_from((*d).deviceGrab.sync.state)
                .ok()
                .filter(|&s| s <= sync_state::THAW_OTHERS)
                .unwrap_or(sync_state::FROZEN_WITH_EVENT)
        };
        for (dev, device, paired) in [
            (info.pointer, GRAB_DEVICE_POINTER, info.keyboard),
            (info.keyboard, GRAB_DEVICE_KEYBOARD, info.pointer),
        ] {
            if dev.is_null() {
                continue;
            }
            let gi = &(*dev).deviceGrab;
            let gp = gi.grab;
            if gp.is_null() || !owned_by(api, (*gp).resource, client) {
                continue;
            }
            let g = &*gp;
            if g.window.is_null() {
                continue;
            }
            let window = (*g.window).drawable.id;
            if !window_checks_out(api, window, g.window) {
                continue;
            }
            let confine_to = if g.confineTo.is_null() {
                0
            } else {
                let id = (*g.confineTo).drawable.id;
                if !window_checks_out(api, id, g.confineTo) {
                    continue;
                }
                id
            };
            let mut flags = 0;
            if g.ownerEvents() != 0 {
                flags |= GRAB_OWNER_EVENTS;
            }
            // GrabModeAsync = 1.
            if g.pointerMode() == 1 {
                flags |= GRAB_POINTER_ASYNC;
            }
            if g.keyboardMode() == 1 {
                flags |= GRAB_KEYBOARD_ASYNC;
            }
            if gi.implicitGrab != 0 || gi.fromPassiveGrab != 0 {
                flags |= GRAB_ACTIVATED;
            }
            if !gi.sync.other.is_null() {
                flags |= GRAB_FROZEN_BY_OTHER;
            }
            let cursor = if g.cursor.is_null() {
                0
            } else {
                // SAFETY: the grab holds a reference on its cursor.
                let id = (*g.cursor).id;
                if id == 0 {
                    flags |= GRAB_CURSOR_UNNAMED;
                }
                id
            };
            let device_id = u16::try_from((*dev).id).unwrap_or(0);
            let level = g.grabtype as u8;
            let xi2_mask = if level == GRAB_LEVEL_XI2 {
                match xi2_grab_mask(g.xi2mask as *const Xi2Mask, usize::from(device_id)) {
                    Some(m) => m,
                    None => {
                        flags |= GRAB_MASK_UNREAD;
                        Vec::new()
                    }
                }
            } else {
                Vec::new()
            };
            out.push(ActiveGrab {
                device,
                level,
                flags,
                // An unknown value is reported as the one state that is never carried.
                sync_state: state_of(dev),
                paired_sync_state: state_of(paired),
                device_id,
                window,
                confine_to,
                cursor,
                event_mask: if level == GRAB_LEVEL_XI2 {
                    0
                } else {
                    g.eventMask
                },
                xi2_mask,
            });
        }
    }
    out
}
