//! X authority for a target display, found the way Xlib finds it, in the CLI's own
//! environment. What flows through here: a display name (`:N`, `unix:N`, `host:N`,
//! `localhost:N` as `ssh -X`/`-Y` sets it) in, the Xauthority entries of the file(s) in
//! order — `--auth FILE`, else `$XAUTHORITY` of the CLI, else `~/.Xauthority` — and out the
//! cookie whose family, address and display number match the connection libxcb would make
//! (a unix socket or a loopback TCP connection is "local" with this host's name; another host
//! is its IPv4/IPv6 address; `FamilyWild` entries match any address). The chosen cookie is
//! handed to the app, which connects with it (the app's own environment is not consulted).

use anyhow::{bail, Context, Result};
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

/// Xauthority families (Xauth.h).
const FAMILY_INTERNET: u16 = 0;
const FAMILY_LOCAL: u16 = 256;
const FAMILY_WILD: u16 = 65535;
const FAMILY_INTERNET6: u16 = 6;

/// One entry of an Xauthority file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Address family.
    pub family: u16,
    /// Address (host name for `FamilyLocal`, raw address bytes for the Internet families).
    pub address: Vec<u8>,
    /// Display number, as text.
    pub number: String,
    /// Protocol name, e.g. `MIT-MAGIC-COOKIE-1`.
    pub name: String,
    /// Cookie.
    pub data: Vec<u8>,
}

/// The cookie chosen for a display, and where it came from (for messages).
#[derive(Clone, Debug)]
pub struct Found {
    /// The entry.
    pub entry: Entry,
    /// The file it was read from.
    pub file: PathBuf,
}

/// Parse an Xauthority file's bytes.
pub fn parse(bytes: &[u8]) -> Option<Vec<Entry>> {
    let mut p = 0usize;
    let field = |p: &mut usize| -> Option<Vec<u8>> {
        let len = u16::from_be_bytes([*bytes.get(*p)?, *bytes.get(*p + 1)?]) as usize;
        let v = bytes.get(*p + 2..*p + 2 + len)?.to_vec();
        *p += 2 + len;
        Some(v)
    };
    let mut out = Vec::new();
    while p < bytes.len() {
        let family = u16::from_be_bytes([*bytes.get(p)?, *bytes.get(p + 1)?]);
        p += 2;
        let address = field(&mut p)?;
        let number = field(&mut p)?;
        let name = field(&mut p)?;
        let data = field(&mut p)?;
        out.push(Entry {
            family,
            address,
            number: String::from_utf8_lossy(&number).into_owned(),
            name: String::from_utf8_lossy(&name).into_owned(),
            data,
        });
    }
    Some(out)
}

/// This host's name, as Xlib uses it for `FamilyLocal` entries.
fn hostname() -> Vec<u8> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().as_bytes().to_vec())
        .unwrap_or_default()
}

/// An Xauthority family and address.
type Address = (u16, Vec<u8>);

/// The (family, address) pairs a connection to `display` is known by, as libxcb computes them,
/// and the display number.
fn addresses_of(display: &str) -> Result<(Vec<Address>, String)> {
    let parsed = x11rb_protocol::parse_display::parse_display(Some(display))
        .with_context(|| format!("{display:?} is not a display name"))?;
    let number = parsed.display.to_string();
    let local = (FAMILY_LOCAL, hostname());
    let host = parsed.host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host == "unix" || parsed.protocol.as_deref() == Some("unix") {
        return Ok((vec![local], number));
    }
    let mut out = Vec::new();
    // libxcb treats a TCP connection to a loopback address as local (this host's name).
    let ips: Vec<IpAddr> = (host, 0)
        .to_socket_addrs()
        .map(|a| a.map(|s| s.ip()).collect())
        .unwrap_or_default();
    if host == "localhost" || ips.iter().any(|ip| ip.is_loopback()) {
        out.push(local);
    }
    for ip in ips {
        match ip {
            IpAddr::V4(v4) => out.push((FAMILY_INTERNET, v4.octets().to_vec())),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => out.push((FAMILY_INTERNET, v4.octets().to_vec())),
                None => out.push((FAMILY_INTERNET6, v6.octets().to_vec())),
            },
        }
    }
    // An entry written under the host's own name (`xauth add host:N …`).
    out.push((FAMILY_LOCAL, host.as_bytes().to_vec()));
    Ok((out, number))
}

/// The entry of `entries` for `display` as Xlib picks it: the first whose family and address
/// match one of the connection's (or is `FamilyWild`) and whose number is the display's (or
/// empty), preferring MIT-MAGIC-COOKIE-1.
pub fn pick(entries: &[Entry], display: &str) -> Result<Option<Entry>> {
    let (addrs, number) = addresses_of(display)?;
    let fits = |e: &&Entry| {
        (e.number == number || e.number.is_empty())
            && (e.family == FAMILY_WILD
                || addrs.iter().any(|(f, a)| *f == e.family && *a == e.address))
    };
    let mut matching: Vec<&Entry> = entries.iter().filter(fits).collect();
    matching.sort_by_key(|e| e.name != "MIT-MAGIC-COOKIE-1");
    Ok(matching.first().map(|e| (*e).clone()))
}

/// The files to look in, in order: `explicit`, else `$XAUTHORITY`, else `~/.Xauthority`
/// (the latter also after a `$XAUTHORITY` without an entry for the display).
fn files(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(f) = explicit {
        return vec![f.to_path_buf()];
    }
    let mut out = Vec::new();
    if let Some(x) = std::env::var_os("XAUTHORITY").filter(|x| !x.is_empty()) {
        out.push(PathBuf::from(x));
    }
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        let f = PathBuf::from(h).join(".Xauthority");
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

/// Where [`find`] looked, for messages ("--auth F", "XAUTHORITY=F", "~/.Xauthority").
pub fn looked_in(explicit: Option<&Path>) -> String {
    let fs = files(explicit);
    if fs.is_empty() {
        return "no Xauthority file (XAUTHORITY and HOME unset)".into();
    }
    fs.iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", then ")
}

/// The cookie for `display`. With `--auth FILE` (`explicit`), that file must be readable and
/// hold an entry for the display; without, an unreadable or absent file or a missing entry
/// means "connect without" (as libxcb does), which the server may accept.
pub fn find(explicit: Option<&Path>, display: &str) -> Result<Option<Found>> {
    for file in files(explicit) {
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) if explicit.is_some() => {
                bail!("cannot read the Xauthority file {}: {e}", file.display())
            }
            Err(_) => continue,
        };
        let Some(entries) = parse(&bytes) else {
            if explicit.is_some() {
                bail!("{} is not a valid Xauthority file", file.display());
            }
            tracing::warn!("{} is not a valid Xauthority file; skipped", file.display());
            continue;
        };
        if let Some(entry) = pick(&entries, display)? {
            return Ok(Some(Found { entry, file }));
        }
        if explicit.is_some() {
            bail!(
                "{} has no entry for display {display} (families, addresses and numbers are \
                 matched as Xlib does; `xauth -f {} list` shows what it holds)",
                file.display(),
                file.display()
            );
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(entries: &[Entry]) -> Vec<u8> {
        let mut out = Vec::new();
        let put = |b: &[u8], out: &mut Vec<u8>| {
            out.extend_from_slice(&(b.len() as u16).to_be_bytes());
            out.extend_from_slice(b);
        };
        for e in entries {
            out.extend_from_slice(&e.family.to_be_bytes());
            put(&e.address, &mut out);
            put(e.number.as_bytes(), &mut out);
            put(e.name.as_bytes(), &mut out);
            put(&e.data, &mut out);
        }
        out
    }

    fn entry(family: u16, address: &[u8], number: &str, data: u8) -> Entry {
        Entry {
            family,
            address: address.to_vec(),
            number: number.into(),
            name: "MIT-MAGIC-COOKIE-1".into(),
            data: vec![data; 16],
        }
    }

    #[test]
    fn parses_what_it_wrote_and_rejects_truncation() {
        let es = vec![
            entry(FAMILY_LOCAL, b"box", "10", 1),
            entry(FAMILY_INTERNET, &[10, 0, 0, 7], "2", 2),
        ];
        let b = bytes(&es);
        assert_eq!(parse(&b).as_deref(), Some(&es[..]));
        assert_eq!(parse(&b[..b.len() - 3]), None);
    }

    #[test]
    fn picks_by_family_address_and_number_as_xlib() {
        let host = hostname();
        let es = vec![
            entry(FAMILY_LOCAL, b"some-other-host", "10", 1),
            entry(FAMILY_LOCAL, &host, "11", 2),
            entry(FAMILY_LOCAL, &host, "10", 3),
            entry(FAMILY_INTERNET, &[10, 1, 2, 3], "10", 4),
            entry(FAMILY_WILD, b"", "12", 5),
        ];
        // ssh -X: DISPLAY=localhost:10.0, entry "host/unix:10".
        assert_eq!(pick(&es, "localhost:10.0").unwrap().unwrap().data[0], 3);
        assert_eq!(pick(&es, ":10").unwrap().unwrap().data[0], 3);
        assert_eq!(pick(&es, ":11.0").unwrap().unwrap().data[0], 2);
        assert_eq!(pick(&es, "127.0.0.1:10").unwrap().unwrap().data[0], 3);
        assert_eq!(pick(&es, "10.1.2.3:10").unwrap().unwrap().data[0], 4);
        assert_eq!(pick(&es, ":12").unwrap().unwrap().data[0], 5);
        assert!(pick(&es, ":13").unwrap().is_none());
        assert!(pick(&es, "10.1.2.3:11").unwrap().is_none());
    }
}
