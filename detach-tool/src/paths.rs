//! Where guievict's two shared objects live. A path flows in from an environment override or
//! from the location of the running binary, and an absolute path flows out.
use std::path::PathBuf;

/// Environment variable that overrides the extension library's path.
pub const XEXT_ENV: &str = "GUIEVICT_XEXT";
/// Environment variable that overrides the hijack library's path.
pub const HIJACK_ENV: &str = "GUIEVICT_HIJACK";

/// File name of the X server extension built by `cargo build`.
pub const XEXT_FILE: &str = "libguievict_xext.so";
/// File name of the hijack library built by `cargo build`.
pub const HIJACK_FILE: &str = "libguievict_hijack.so";

/// Locate a library: the override variable if set, else next to the running binary.
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
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow::anyhow!("binary path {} has no parent", exe.display()))?;
    let candidate = dir.join(file);
    anyhow::ensure!(
        candidate.is_file(),
        "{file} not found next to {} (build with `cargo build --release --workspace`, or set {env_var})",
        exe.display()
    );
    Ok(std::fs::canonicalize(candidate)?)
}
