//! The running X server as seen from inside: symbol resolution (dlsym on the server process),
//! the version check against the headers we were built with, and extension registration. All
//! server entry points the other modules use flow through [`api`].

use crate::ffi;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

/// Why the extension refuses to load.
#[derive(Debug)]
pub enum InitError {
    /// A server symbol is missing.
    Symbols(String),
    /// The running server's release differs from the headers' (or cannot be read).
    Version {
        /// What the headers say.
        built: u32,
        /// What the server says (None: unknown).
        running: Option<u32>,
    },
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InitError::Symbols(s) => write!(f, "server symbols missing: {s}"),
            InitError::Version { built, running } => write!(
                f,
                "built against X server release {built}, running server is {}",
                running.map_or("unknown".to_string(), |r| r.to_string())
            ),
        }
    }
}

/// Resolved server entry points and globals.
pub struct Api {
    /// Functions and globals from bindgen's dynamic loader.
    pub f: ffi::ServerFns,
    /// Release the running server reports.
    pub release: u32,
}

// SAFETY: the X server dispatches requests on one thread; these pointers are only used there.
unsafe impl Send for Api {}
// SAFETY: as above.
unsafe impl Sync for Api {}

static API: OnceLock<Api> = OnceLock::new();

/// The resolved server API, if [`init`] succeeded.
pub fn api() -> Option<&'static Api> {
    API.get()
}

fn dlsym(name: &CStr) -> *mut c_void {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name has no preconditions.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) }
}

/// Whether this process is an X server (has the dix symbols we need).
pub fn is_x_server() -> bool {
    !dlsym(c"LoadExtensionList").is_null() && !dlsym(c"AddExtension").is_null()
}

/// Remove `LD_PRELOAD` so the server's children don't load this library.
pub fn clear_ld_preload() {
    // SAFETY: runs in the constructor before the server starts threads.
    unsafe { libc::unsetenv(c"LD_PRELOAD".as_ptr()) };
}

/// The running server's VENDOR_RELEASE: `xorgGetVersion()` in Xorg; in Xvfb/Xephyr the value
/// `SetVendorRelease` stores to (decoded from its two x86-64 instructions).
fn running_release() -> Option<u32> {
    let get = dlsym(c"xorgGetVersion");
    if !get.is_null() {
        // SAFETY: xorgGetVersion is `CARD32 xorgGetVersion(void)` in every Xorg.
        let f: unsafe extern "C" fn() -> u32 = unsafe { std::mem::transmute(get) };
        // SAFETY: no arguments, no preconditions.
        return Some(unsafe { f() });
    }
    #[cfg(target_arch = "x86_64")]
    {
        let set = dlsym(c"SetVendorRelease") as *const u8;
        if set.is_null() {
            return None;
        }
        // SAFETY: `set` points at the function's code, which is at least 7 bytes long when it
        // is the expected `mov %edi, disp32(%rip); ret`; we check the opcode bytes first and
        // read only those 7 bytes.
        let code = unsafe { std::slice::from_raw_parts(set, 7) };
        if code[0] != 0x89 || code[1] != 0x3d || code[6] != 0xc3 {
            return None;
        }
        let disp = i32::from_le_bytes([code[2], code[3], code[4], code[5]]);
        let addr = (set as isize + 6 + disp as isize) as *const i32;
        // SAFETY: addr is the RIP-relative target of the store in SetVendorRelease, i.e. the
        // server's `int VendorRelease` global, statically initialised.
        let v = unsafe { addr.read() };
        u32::try_from(v).ok()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// Check the version and resolve all server symbols.
pub fn init() -> Result<(), InitError> {
    if API.get().is_some() {
        return Ok(());
    }
    // Test seam: pretend to have been built against another release, to exercise the refusal
    // below on a server that matches (there is no second server version on a test machine).
    let built = std::env::var("GUIEVICT_XEXT_ASSUME_BUILT_RELEASE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ffi::XORG_VERSION_CURRENT);
    let running = running_release();
    if running != Some(built) {
        return Err(InitError::Version { built, running });
    }
    let this = libloading::os::unix::Library::this();
    // SAFETY: the symbols are looked up in the running X server, whose version equals the
    // headers bindgen generated these signatures from (checked above).
    let f = unsafe { ffi::ServerFns::from_library(this) }
        .map_err(|e| InitError::Symbols(e.to_string()))?;
    let _ = API.set(Api { f, release: built });
    Ok(())
}

static EXTENSIONS: [ExtList; 1] = [ExtList(ffi::ExtensionModule {
    initFunc: Some(extension_init),
    name: c"GUIEVICT".as_ptr(),
    disablePtr: std::ptr::null_mut(),
})];

#[repr(transparent)]
struct ExtList(ffi::ExtensionModule);
// SAFETY: immutable static read by the server.
unsafe impl Sync for ExtList {}

/// Hand the extension to `LoadExtensionList`, which makes the server call `extension_init`
/// on every server generation.
pub fn register_extension() {
    let Some(api) = api() else { return };
    // SAFETY: EXTENSIONS is a static array of one valid ExtensionModule with static strings.
    unsafe { (api.f.LoadExtensionList)(&EXTENSIONS[0].0, 1, 0) };
}

/// Per-generation init, called by the server's InitExtensions.
///
/// # Safety
/// Called by the server on its main thread while it initialises extensions.
unsafe extern "C" fn extension_init() {
    let _ = std::panic::catch_unwind(|| {
        let Some(api) = api() else { return };
        crate::fonts::install(api);
        // SAFETY: AddExtension with a static name and our handlers; the server owns the entry.
        let ext = unsafe {
            (api.f.AddExtension)(
                c"GUIEVICT".as_ptr(),
                guievict_ext_proto::NUM_EVENTS.into(),
                0,
                Some(crate::dispatch::proc_guievict),
                Some(crate::dispatch::proc_guievict),
                None,
                Some(crate::dispatch::minor_opcode),
            )
        };
        if ext.is_null() {
            eprintln!("GUIEVICT: AddExtension failed");
            return;
        }
        // SAFETY: AddExtension returned a live entry the server owns for this generation.
        let event_base = unsafe { (*ext).eventBase };
        crate::clients::install(api, event_base as u8);
    });
}

/// The type name the server registered for `rtype`.
pub fn type_name(api: &Api, rtype: ffi::RESTYPE) -> String {
    // SAFETY: LookupResourceName returns a static string (or "<unknown>") for any type.
    let p: *const c_char = unsafe { (api.f.LookupResourceName)(rtype) };
    if p.is_null() {
        return format!("TYPE{}", rtype & 0x1fff_ffff);
    }
    // SAFETY: non-NULL, NUL-terminated string owned by the server.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Name of an atom, if it exists.
pub fn atom_name(api: &Api, atom: ffi::Atom) -> Option<String> {
    // SAFETY: NameForAtom returns NULL or a server-owned NUL-terminated string.
    let p = unsafe { (api.f.NameForAtom)(atom) };
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL, NUL-terminated.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// An existing atom by name (never creates one).
pub fn find_atom(api: &Api, name: &str) -> ffi::Atom {
    // SAFETY: MakeAtom reads `len` bytes; makeit=FALSE so nothing is created.
    unsafe { (api.f.MakeAtom)(name.as_ptr() as *const c_char, name.len() as _, 0) }
}

/// Return code type of request handlers.
pub type Status = c_int;

/// One entry of the client's resource table.
#[derive(Clone, Copy)]
pub struct Item {
    /// XID.
    pub id: u32,
    /// Server type (with its class bits).
    pub rtype: ffi::RESTYPE,
    /// The resource's value pointer.
    pub value: *mut c_void,
}

/// `FindAllClientResources` callback: appends one resource to the `Vec<Item>` in `data`.
///
/// # Safety
/// `data` must be the `&mut Vec<Item>` given to `FindAllClientResources` by [`client_items`].
unsafe extern "C" fn collect(
    value: *mut c_void,
    id: ffi::XID,
    rtype: ffi::RESTYPE,
    data: *mut c_void,
) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: `data` is the &mut Vec<Item> passed to FindAllClientResources below.
        let items = unsafe { &mut *(data as *mut Vec<Item>) };
        items.push(Item { id, rtype, value });
    });
}

/// Every resource the client owns, ascending by (id, type).
///
/// # Safety
/// `client` must be a live client.
pub unsafe fn client_items(api: &Api, client: ffi::ClientPtr) -> Vec<Item> {
    let mut items: Vec<Item> = Vec::new();
    // SAFETY: FindAllClientResources walks only this client's table and calls `collect`
    // synchronously with our Vec as cdata.
    unsafe {
        (api.f.FindAllClientResources)(client, Some(collect), &mut items as *mut _ as *mut c_void)
    };
    items.sort_unstable_by_key(|i| (i.id, i.rtype));
    items
}
