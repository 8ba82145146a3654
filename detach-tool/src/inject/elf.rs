//! Symbol addresses in a target's mapped ELF objects. The object's file (opened through
//! `/proc/<pid>/root`, so containers and chroots resolve correctly) flows in with its lowest
//! mapping; out come run-time addresses of dynamic symbols and address ranges of functions.

use super::procfs::Mapping;
use super::InjectError;
use goblin::elf::{program_header::PT_LOAD, Elf};
use std::path::Path;

/// A read-only private mapping of a whole file (ELF files can be tens of MB with debug info;
/// parsing touches only the pages it needs).
pub struct FileMap {
    ptr: std::ptr::NonNull<std::ffi::c_void>,
    len: usize,
}

impl std::fmt::Debug for FileMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileMap({} bytes)", self.len)
    }
}

impl FileMap {
    /// Map `file` read-only.
    pub fn open(file: &Path) -> std::io::Result<FileMap> {
        let f = std::fs::File::open(file)?;
        let len = f.metadata()?.len() as usize;
        let Some(nz) = std::num::NonZeroUsize::new(len) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "empty file",
            ));
        };
        // SAFETY: a fresh private read-only mapping of a file we opened; it is only read
        // through `bytes()` while `self` lives and unmapped once in Drop. (A concurrent
        // truncation of the file could fault; library files are replaced, not truncated.)
        let ptr = unsafe {
            nix::sys::mman::mmap(
                None,
                nz,
                nix::sys::mman::ProtFlags::PROT_READ,
                nix::sys::mman::MapFlags::MAP_PRIVATE,
                &f,
                0,
            )
        }
        .map_err(std::io::Error::from)?;
        Ok(FileMap { ptr, len })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>(), self.len) }
    }
}

impl Drop for FileMap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `open`, which nothing borrows any more.
        let _ = unsafe { nix::sys::mman::munmap(self.ptr, self.len) };
    }
}

/// A parsed ELF object with its load bias in the target.
#[derive(Debug)]
pub struct Object {
    bytes: FileMap,
    bias: u64,
    path: String,
}

impl Object {
    /// Read `file` (a path valid here) and compute its bias from its offset-0 mapping.
    pub fn load(file: &Path, mapping: &Mapping) -> Result<Object, InjectError> {
        let bytes = FileMap::open(file).map_err(|e| InjectError::Elf {
            path: file.display().to_string(),
            message: e.to_string(),
        })?;
        let elf = Elf::parse(bytes.bytes()).map_err(|e| InjectError::Elf {
            path: file.display().to_string(),
            message: e.to_string(),
        })?;
        let first_load = elf
            .program_headers
            .iter()
            .filter(|p| p.p_type == PT_LOAD)
            .map(|p| p.p_vaddr & !(p.p_align.max(1) - 1))
            .min()
            .unwrap_or(0);
        let bias = mapping.start.wrapping_sub(first_load);
        Ok(Object {
            bytes,
            bias,
            path: file.display().to_string(),
        })
    }

    fn elf(&self) -> Result<Elf<'_>, InjectError> {
        Elf::parse(self.bytes.bytes()).map_err(|e| InjectError::Elf {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }

    /// Run-time address of the defined dynamic symbol `name` (any version).
    pub fn symbol(&self, name: &str) -> Result<Option<u64>, InjectError> {
        let elf = self.elf()?;
        for sym in elf.dynsyms.iter() {
            if sym.st_value == 0 || sym.st_shndx == 0 {
                continue;
            }
            if elf.dynstrtab.get_at(sym.st_name) == Some(name) {
                return Ok(Some(self.bias.wrapping_add(sym.st_value)));
            }
        }
        Ok(None)
    }

    /// Run-time `[start, end)` ranges of the defined functions named in `names` (dynamic and,
    /// when present, static symbol tables).
    pub fn function_ranges(&self, names: &[&str]) -> Result<Vec<(u64, u64, String)>, InjectError> {
        let elf = self.elf()?;
        let mut out = Vec::new();
        let tables = [(&elf.dynsyms, &elf.dynstrtab), (&elf.syms, &elf.strtab)];
        for (syms, strs) in tables {
            for sym in syms.iter() {
                if !sym.is_function() || sym.st_value == 0 || sym.st_size == 0 {
                    continue;
                }
                let Some(n) = strs.get_at(sym.st_name) else {
                    continue;
                };
                if names.contains(&n) {
                    let start = self.bias.wrapping_add(sym.st_value);
                    if !out.iter().any(|(s, _, _)| *s == start) {
                        out.push((start, start + sym.st_size, n.to_string()));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Whether the executable at `file` is dynamically linked (has a `PT_INTERP`).
pub fn has_interpreter(file: &Path) -> Result<bool, InjectError> {
    let map = FileMap::open(file).map_err(|e| InjectError::Elf {
        path: file.display().to_string(),
        message: e.to_string(),
    })?;
    let elf = Elf::parse(map.bytes()).map_err(|e| InjectError::Elf {
        path: file.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(elf.interpreter.is_some())
}
