//! Where guievict's two shared objects live. A path flows in from an environment override, from
//! the location of the running binary (the build tree, or an installed or unpacked tree:
//! `<prefix>/bin/guievict` with `<prefix>/lib/<multiarch>/guievict/…`), or from the system's
//! library directories, and an absolute path flows out — or an error listing every place looked.
use std::path::{Path, PathBuf};

/// Environment variable that overrides the extension library's path.
pub const XEXT_ENV: &str = "GUIEVICT_XEXT";
/// Environment variable that overrides the hijack library's path.
pub const HIJACK_ENV: &str = "GUIEVICT_HIJACK";

/// File name of the X server extension built by `cargo build`.
pub const XEXT_FILE: &str = "libguievict_xext.so";
/// File name of the hijack library built by `cargo build`.
pub const HIJACK_FILE: &str = "libguievict_hijack.so";
/// File name of the extension as an Xorg module (`Load "guievict"`).
pub const XORG_MODULE_FILE: &str = "libguievict.so";
/// Where Debian's Xorg looks for extension modules.
pub const XORG_MODULE_DIR: &str = "/usr/lib/xorg/modules/extensions";

/// The Debian multiarch triple of this build (`x86_64-linux-gnu`).
pub fn multiarch() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "x86_64-linux-gnu"
    } else if cfg!(target_arch = "aarch64") {
        "aarch64-linux-gnu"
    } else if cfg!(target_arch = "x86") {
        "i386-linux-gnu"
    } else {
        "unknown-linux-gnu"
    }
}

/// The library directory of an install prefix: `<prefix>/lib/<multiarch>/guievict`.
pub fn lib_dir(prefix: &Path) -> PathBuf {
    prefix.join("lib").join(multiarch()).join("guievict")
}

/// Every place `file` is looked for, in order (the override variable aside): next to the
/// binary (a build tree), the binary's prefix (`../lib/<multiarch>/guievict`,
/// `../lib/guievict`: an installed, unpacked or `cargo install`ed tree), then the system's
/// directories.
pub fn candidates(file: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        out.push(dir.join(file));
        if let Some(prefix) = dir.parent() {
            out.push(lib_dir(prefix).join(file));
            out.push(prefix.join("lib/guievict").join(file));
        }
    }
    for prefix in ["/usr", "/usr/local"] {
        out.push(lib_dir(Path::new(prefix)).join(file));
        out.push(Path::new(prefix).join("lib/guievict").join(file));
    }
    out.dedup();
    out
}

/// Locate a library: the override variable if set, else the first of [`candidates`] present.
pub fn find_library(env_var: &str, file: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os(env_var) {
        let p = PathBuf::from(p);
        anyhow::ensure!(
            p.is_file(),
            "{env_var}={} does not name a file",
            p.display()
        );
        return Ok(std::fs::canonicalize(&p)?);
    }
    let tried = candidates(file);
    match tried.iter().find(|p| p.is_file()) {
        Some(p) => Ok(std::fs::canonicalize(p)?),
        None => anyhow::bail!(
            "{file} not found; looked in {}. Install the guievict package (scripts/build-deb.sh \
             builds it), build the tree with `cargo build --release --workspace`, or set {env_var}",
            tried
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
