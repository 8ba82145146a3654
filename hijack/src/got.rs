//! Patching libxcb's global offset table: the addresses of the libc functions libxcb calls on
//! its socket (`poll`, `recvmsg`, `recv`, `writev`, `sendmsg`, `close`, `shutdown`) flow in
//! from `hooks.rs`, the loaded libxcb is found with `dl_iterate_phdr`, its file is read and
//! parsed with `goblin` for the `R_X86_64_JUMP_SLOT` / `R_X86_64_GLOB_DAT` relocations naming
//! those functions, and each slot (load base + relocation offset) gets the hook's address —
//! `mprotect`ed writable around the store when the slot lies in the RELRO segment. Nothing
//! flows back but the number of slots patched. The originals are not read from the slots (a
//! lazily bound slot still points at libxcb's PLT resolver, which would overwrite the hook):
//! the hooks call libc through this library's own references (see `hooks.rs`).
//!
//! This is one of the hijack library's `unsafe` modules (see `ffi.rs`): writing into another
//! object's GOT is unsafe by nature; each block says why it holds.

use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Why libxcb could not be patched.
#[derive(Debug, thiserror::Error)]
pub enum GotError {
    /// No libxcb is loaded in the process (a static binary, or an app that speaks X another
    /// way): the connection stays relayed.
    #[error("no libxcb is loaded in this process")]
    NoLibxcb,
    /// The loaded libxcb's file could not be read (to find its relocations).
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not an ELF object goblin can parse.
    #[error("parsing {path}: {why}")]
    Parse {
        /// The file.
        path: String,
        /// goblin's message.
        why: String,
    },
    /// None of the hooked functions has a relocation in libxcb.
    #[error("{path} has no relocation for any hooked function")]
    NoSlots {
        /// The file.
        path: String,
    },
    /// `mprotect` of a RELRO page failed.
    #[error("mprotect of libxcb's RELRO page at {addr:#x}: {source}")]
    Protect {
        /// The page.
        addr: usize,
        /// Why.
        source: std::io::Error,
    },
}

/// The loaded libxcb: its path, load base and RELRO range (absolute addresses).
struct Loaded {
    path: String,
    base: usize,
    relro: Option<(usize, usize)>,
}

const PT_GNU_RELRO: u32 = 0x6474_e552;

unsafe extern "C" fn find_xcb(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut c_void,
) -> libc::c_int {
    // SAFETY: dl_iterate_phdr hands a valid info record for the duration of the callback, and
    // `data` is the `Option<Loaded>` passed by `loaded_xcb` below.
    unsafe {
        let info = &*info;
        let out = &mut *(data as *mut Option<Loaded>);
        if info.dlpi_name.is_null() {
            return 0;
        }
        let name = CStr::from_ptr(info.dlpi_name).to_string_lossy();
        let file = name.rsplit('/').next().unwrap_or("");
        if !file.starts_with("libxcb.so") {
            return 0;
        }
        let mut relro = None;
        for i in 0..info.dlpi_phnum as usize {
            let ph = &*info.dlpi_phdr.add(i);
            if ph.p_type == PT_GNU_RELRO {
                let start = info.dlpi_addr as usize + ph.p_vaddr as usize;
                relro = Some((start, start + ph.p_memsz as usize));
            }
        }
        *out = Some(Loaded {
            path: name.into_owned(),
            base: info.dlpi_addr as usize,
            relro,
        });
        1
    }
}

fn loaded_xcb() -> Option<Loaded> {
    let mut out: Option<Loaded> = None;
    // SAFETY: the callback only reads the loader's records and writes `out`, which lives
    // across the call.
    unsafe {
        libc::dl_iterate_phdr(
            Some(find_xcb),
            &mut out as *mut Option<Loaded> as *mut c_void,
        );
    }
    out
}

/// Point libxcb's GOT slots for the named functions at the given addresses. Returns how many
/// slots were patched (a function libxcb does not import is skipped).
pub fn patch_libxcb(hooks: &[(&str, usize)]) -> Result<usize, GotError> {
    let lib = loaded_xcb().ok_or(GotError::NoLibxcb)?;
    let bytes = std::fs::read(&lib.path).map_err(|source| GotError::Read {
        path: lib.path.clone(),
        source,
    })?;
    let elf = goblin::elf::Elf::parse(&bytes).map_err(|e| GotError::Parse {
        path: lib.path.clone(),
        why: e.to_string(),
    })?;
    let mut slots = Vec::new();
    for r in elf.pltrelocs.iter().chain(elf.dynrelas.iter()) {
        if r.r_type != goblin::elf::reloc::R_X86_64_JUMP_SLOT
            && r.r_type != goblin::elf::reloc::R_X86_64_GLOB_DAT
        {
            continue;
        }
        let Some(sym) = elf.dynsyms.get(r.r_sym) else {
            continue;
        };
        let Some(name) = elf.dynstrtab.get_at(sym.st_name) else {
            continue;
        };
        if let Some((_, hook)) = hooks.iter().find(|(n, _)| *n == name) {
            slots.push((lib.base + r.r_offset as usize, *hook));
        }
    }
    if slots.is_empty() {
        return Err(GotError::NoSlots { path: lib.path });
    }
    let page = 4096usize;
    for (slot, hook) in &slots {
        let in_relro = lib.relro.is_some_and(|(a, b)| *slot >= a && *slot < b);
        let pg = slot & !(page - 1);
        if in_relro {
            // SAFETY: `pg` is the page of a GOT slot of a loaded object (mapped); making it
            // writable for a moment changes no content.
            let r = unsafe {
                libc::mprotect(pg as *mut c_void, page, libc::PROT_READ | libc::PROT_WRITE)
            };
            if r != 0 {
                return Err(GotError::Protect {
                    addr: pg,
                    source: std::io::Error::last_os_error(),
                });
            }
        }
        // SAFETY: `slot` is an 8-byte aligned GOT entry of the loaded libxcb (its relocation's
        // offset from the load base), writable now; an atomic store means a libxcb thread
        // calling through it at this instant sees either the old or the new address, both
        // valid functions of the same signature.
        unsafe { AtomicUsize::from_ptr(*slot as *mut usize).store(*hook, Ordering::SeqCst) };
        if in_relro {
            // SAFETY: as above; the page goes back to read-only as RELRO left it.
            unsafe { libc::mprotect(pg as *mut c_void, page, libc::PROT_READ) };
        }
    }
    tracing::info!(path = %lib.path, slots = slots.len(), "libxcb's socket calls go through guievict's hooks");
    Ok(slots.len())
}
