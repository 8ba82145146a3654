//! What `/proc/<pid>` says about a target: its memory map (file-backed mappings with their
//! load addresses), threads, owner, and which of its descriptors are X connections. Text from
//! procfs flows in; typed records flow out. No ptrace here.

use super::InjectError;
use std::path::{Path, PathBuf};

/// One line of `/proc/<pid>/maps`.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// Start address.
    pub start: u64,
    /// End address (exclusive).
    pub end: u64,
    /// File offset.
    pub offset: u64,
    /// Path (empty for anonymous mappings; `[stack]` and the like for special ones).
    pub path: String,
}

/// Parse `/proc/<pid>/maps`.
pub fn maps(pid: i32) -> Result<Vec<Mapping>, InjectError> {
    let path = format!("/proc/{pid}/maps");
    let text = std::fs::read_to_string(&path).map_err(|e| InjectError::from_proc(pid, &path, e))?;
    Ok(parse_maps(&text))
}

/// Parse the text of a maps file.
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.splitn(6, ' ');
        let (Some(range), Some(_perms), Some(offset), Some(_dev), Some(_ino)) =
            (it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            continue;
        };
        let path = it.next().unwrap_or("").trim_start().to_string();
        let Some((s, e)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end), Ok(offset)) = (
            u64::from_str_radix(s, 16),
            u64::from_str_radix(e, 16),
            u64::from_str_radix(offset, 16),
        ) else {
            continue;
        };
        out.push(Mapping {
            start,
            end,
            offset,
            path,
        });
    }
    out
}

/// The lowest mapping at file offset 0 of the first file whose name satisfies `pred`.
pub fn find_object(maps: &[Mapping], pred: impl Fn(&str) -> bool) -> Option<&Mapping> {
    maps.iter()
        .filter(|m| m.offset == 0 && m.path.starts_with('/') && pred(&m.path))
        .min_by_key(|m| m.start)
}

/// File name part of a mapping path.
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A path inside the target's root directory as seen from here.
pub fn in_root(pid: i32, path: &str) -> PathBuf {
    Path::new(&format!("/proc/{pid}/root")).join(path.trim_start_matches('/'))
}

/// Thread ids of the target.
pub fn threads(pid: i32) -> Result<Vec<i32>, InjectError> {
    let path = format!("/proc/{pid}/task");
    let rd = std::fs::read_dir(&path).map_err(|e| InjectError::from_proc(pid, &path, e))?;
    let mut tids: Vec<i32> = rd
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    Ok(tids)
}

/// Real uid of the target (first field of `Uid:` in status).
pub fn owner_uid(pid: i32) -> Result<u32, InjectError> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| InjectError::from_proc(pid, &path, e))?;
    text.lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .ok_or_else(|| InjectError::Proc {
            pid,
            path: path.clone(),
            message: "no Uid line".into(),
        })
}

/// Whether the process is a zombie or exiting (`State: Z`/`X`).
pub fn is_exiting(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_none_or(|c| c == 'Z' || c == 'X'),
        Err(_) => true,
    }
}

/// `exit_group` on x86_64: a thread blocked in it (held at a tracer's exit stop, say) is taking
/// the whole process with it.
const NR_EXIT_GROUP: i64 = 231;

/// Whether the process is gone, a zombie, or on its way out: a thread of it is inside
/// `exit_group`, or the kernel's PF_EXITING flag (0x4, field 9 of `/proc/PID/stat`) is set
/// before the state turns to Z.
pub fn is_leaving(pid: i32) -> bool {
    if is_exiting(pid) {
        return true;
    }
    if threads(pid)
        .unwrap_or_default()
        .into_iter()
        .any(|t| current_syscall(pid, t) == Some(NR_EXIT_GROUP))
    {
        return true;
    }
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let (_, rest) = s.rsplit_once(") ")?;
            // After the command: state(3) ppid pgrp session tty_nr tpgid flags(9).
            rest.split_whitespace().nth(6)?.parse::<u64>().ok()
        })
        .is_none_or(|flags| flags & 0x4 != 0)
}

/// The syscall number a blocked thread is in, from `/proc/<pid>/task/<tid>/syscall`
/// (None when it is running or not in a syscall).
pub fn current_syscall(pid: i32, tid: i32) -> Option<i64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).ok()?;
    let first = s.split_whitespace().next()?;
    first.parse::<i64>().ok().filter(|n| *n >= 0)
}

/// Descriptor numbers of the target that are sockets.
pub fn socket_fds(pid: i32) -> Result<Vec<i32>, InjectError> {
    let path = format!("/proc/{pid}/fd");
    let rd = std::fs::read_dir(&path).map_err(|e| InjectError::from_proc(pid, &path, e))?;
    let mut out = Vec::new();
    for e in rd.flatten() {
        let Some(fd) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(t) = std::fs::read_link(e.path()) {
            if t.to_string_lossy().starts_with("socket:") {
                out.push(fd);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_maps_lines() {
        let t = "7f00-7f10 r--p 00000000 08:01 123   /usr/lib/x86_64-linux-gnu/libc.so.6\n\
                 7f10-7f20 r-xp 00010000 08:01 123   /usr/lib/x86_64-linux-gnu/libc.so.6\n\
                 7ffd-7ffe rw-p 00000000 00:00 0     [stack]\n\
                 8000-9000 rw-p 00000000 00:00 0\n";
        let m = parse_maps(t);
        assert_eq!(m.len(), 4);
        assert_eq!(m[1].offset, 0x10000);
        assert_eq!(m[3].path, "");
        let libc = find_object(&m, |p| file_name(p) == "libc.so.6").unwrap();
        assert_eq!(libc.start, 0x7f00);
    }

    #[test]
    fn reads_own_process() {
        let pid = std::process::id() as i32;
        assert!(threads(pid).unwrap().contains(&pid));
        assert_eq!(owner_uid(pid).unwrap(), nix::unistd::getuid().as_raw());
        assert!(!is_exiting(pid));
        assert!(!maps(pid).unwrap().is_empty());
    }
}
