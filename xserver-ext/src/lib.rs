//! The GUIEVICT X server extension. Requests from X clients arrive through the server's dispatch
//! table (`dispatch`), are decoded by `guievict-ext-proto`, and the requesting client's own
//! resources are read out of the server's structures (`describe`) and sent back as a reply in
//! the client's byte order. Three ways in: an ELF constructor when preloaded into Xvfb/Xephyr,
//! `guievictModuleData` when loaded as an Xorg module, and (both) the per-generation init
//! function that `LoadExtensionList` makes the server call.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod clients;
mod describe;
mod dispatch;
mod ffi;
mod fonts;
mod server;

use std::sync::atomic::{AtomicBool, Ordering};

/// Set once the extension has been handed to `LoadExtensionList` (constructor or module setup,
/// whichever comes first).
static REGISTERED: AtomicBool = AtomicBool::new(false);

/// ELF constructor: runs when the .so is loaded (LD_PRELOAD or Xorg's module loader).
extern "C" fn constructor() {
    let _ = std::panic::catch_unwind(|| {
        if !server::is_x_server() {
            return; // Not an X server: do nothing at all.
        }
        // Children (sh, xkbcomp) must not inherit the preload: they lack the dix symbols.
        server::clear_ld_preload();
        register();
    });
}

#[used]
#[link_section = ".init_array"]
static CONSTRUCTOR: extern "C" fn() = constructor;

/// Check the server version, resolve the server's symbols and register the extension.
fn register() {
    if REGISTERED.swap(true, Ordering::SeqCst) {
        return;
    }
    match server::init() {
        Ok(()) => server::register_extension(),
        Err(e) => eprintln!("GUIEVICT: extension not loaded: {e}"),
    }
}

/// Xorg module setup (`Load "guievict"`). Returns non-NULL on success, as the loader expects.
///
/// # Safety
/// Called by the Xorg loader with valid (possibly NULL) out-pointers.
#[no_mangle]
pub unsafe extern "C" fn guievict_module_setup(
    _module: *mut std::ffi::c_void,
    _opts: *mut std::ffi::c_void,
    errmaj: *mut std::ffi::c_int,
    _errmin: *mut std::ffi::c_int,
) -> *mut std::ffi::c_void {
    let ok = std::panic::catch_unwind(|| {
        register();
        server::api().is_some()
    })
    .unwrap_or(false);
    if ok {
        std::ptr::dangling_mut::<std::ffi::c_void>()
    } else {
        if !errmaj.is_null() {
            // SAFETY: the loader passes a valid int pointer (checked non-NULL above).
            unsafe { *errmaj = 9 }; // LDR_MODSPECIFIC
        }
        std::ptr::null_mut()
    }
}

/// `XF86ModuleData` wrapper that may live in a `static` (it holds raw pointers to statics).
#[repr(transparent)]
pub struct ModuleData(ffi::XF86ModuleData);
// SAFETY: the data is immutable after load and only read by the Xorg loader.
unsafe impl Sync for ModuleData {}

/// `XF86ModuleVersionInfo` wrapper for a `static`.
#[repr(transparent)]
pub struct VersionInfo(ffi::XF86ModuleVersionInfo);
// SAFETY: immutable, only read by the Xorg loader.
unsafe impl Sync for VersionInfo {}

static VERSION_INFO: VersionInfo = VersionInfo(ffi::XF86ModuleVersionInfo {
    modname: c"guievict".as_ptr(),
    vendor: c"guievict project".as_ptr(),
    _modinfo1_: ffi::MODINFOSTRING1,
    _modinfo2_: ffi::MODINFOSTRING2,
    xf86version: ffi::XORG_VERSION_CURRENT,
    majorversion: 1,
    minorversion: 0,
    patchlevel: 0,
    abiclass: ffi::ABI_CLASS_EXTENSION.as_ptr() as *const std::ffi::c_char,
    abiversion: ffi::ABI_EXTENSION_VERSION,
    moduleclass: ffi::MOD_CLASS_EXTENSION.as_ptr() as *const std::ffi::c_char,
    checksum: [0; 4],
});

/// The Xorg module loader's setup hook: registers the extension.
///
/// # Safety
/// Called by the Xorg loader with its own module arguments (unused here).
unsafe extern "C" fn module_setup_trampoline(
    module: *mut std::ffi::c_void,
    opts: *mut std::ffi::c_void,
    errmaj: *mut std::ffi::c_int,
    errmin: *mut std::ffi::c_int,
) -> *mut std::ffi::c_void {
    // SAFETY: forwarded unchanged from the loader.
    unsafe { guievict_module_setup(module, opts, errmaj, errmin) }
}

/// The Xorg module data symbol (`<name>ModuleData`).
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static guievictModuleData: ModuleData = ModuleData(ffi::XF86ModuleData {
    vers: &VERSION_INFO.0 as *const _ as *mut _,
    setup: Some(module_setup_trampoline),
    teardown: None,
});
