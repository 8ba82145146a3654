//! Symbol addresses in a target's mapped ELF objects. The object's file (opened through
//! `/proc/<pid>/root`, so containers and chroots resolve correctly) flows in with its lowest
//! mapping; out come run-time addresses of dynamic symbols and address ranges of functions.

use super::procfs::Mapping;
use super::InjectError;
use goblin::elf::{program_header::PT_LOAD, Elf};
use std::path::Path;

/// A parsed ELF object with its load bias in the target.
#[derive(Debug)]
pub struct Object {
    bytes: Vec<u8>,
    bias: u64,
    path: String,
}

impl Object {
    /// Read `file` (a path valid here) and compute its bias from its offset-0 mapping.
    pub fn load(file: &Path, mapping: &Mapping) -> Result<Object, InjectError> {
        let bytes = std::fs::read(file).map_err(|e| InjectError::Elf {
            path: file.display().to_string(),
            message: e.to_string(),
        })?;
        let elf = Elf::parse(&bytes).map_err(|e| InjectError::Elf {
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
        Elf::parse(&self.bytes).map_err(|e| InjectError::Elf {
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
    let bytes = std::fs::read(file).map_err(|e| InjectError::Elf {
        path: file.display().to_string(),
        message: e.to_string(),
    })?;
    let elf = Elf::parse(&bytes).map_err(|e| InjectError::Elf {
        path: file.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(elf.interpreter.is_some())
}
