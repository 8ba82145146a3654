//! The application's MIT-SHM segments as guimux sees them from inside the application's
//! process: ShmSeg IDs flow in with a System V shmid, a descriptor the app passed, or a size to
//! create; guimux's own mappings of the same memory come out, through which MIT-SHM requests
//! are converted for servers that cannot share memory (see `guimux::shmconv`). Mappings are
//! guimux's own (`shmat`, `mmap`), so they outlive whatever the application unmaps, and they
//! are released on ShmDetach or when the connection ends.
//!
//! Pixels are copied in and out by the kernel (`process_vm_readv`/`process_vm_writev` on this
//! very process), never by loads and stores through the mapping: the application writes the
//! same memory concurrently (a plain copy would be a data race), and a descriptor-backed
//! segment can be shrunk by the application (`ftruncate`), where touching the mapping beyond
//! the new end raises SIGBUS inside the application; the kernel copy fails with EFAULT
//! instead, and the request is treated as one on a bad segment.

use guimux::shmconv::{SegmentInfo, SegmentMemory};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

#[derive(Debug)]
enum Backing {
    /// `shmat` of this shmid.
    Sysv(u32),
    /// `mmap` of a descriptor.
    Mapped,
}

#[derive(Debug)]
struct Seg {
    addr: usize,
    len: usize,
    read_only: bool,
    backing: Backing,
}

/// Segments of the application's connection, mapped into this (the application's) process.
#[derive(Debug, Default)]
pub struct ProcessSegments {
    segs: HashMap<u32, Seg>,
}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| usize::try_from(p).ok())
        .unwrap_or(4096)
}

fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

impl ProcessSegments {
    fn unmap(seg: &Seg) {
        match seg.backing {
            // SAFETY: `addr` was returned by our own shmat and is detached once (the entry is
            // removed from the table by every caller).
            Backing::Sysv(_) => unsafe {
                libc::shmdt(seg.addr as *const libc::c_void);
            },
            // SAFETY: `addr`/`len` describe a mapping made by our own mmap, unmapped once.
            Backing::Mapped => unsafe {
                libc::munmap(seg.addr as *mut libc::c_void, seg.len);
            },
        }
    }

    fn insert(&mut self, id: u32, seg: Seg) {
        if let Some(old) = self.segs.insert(id, seg) {
            Self::unmap(&old);
        }
    }

    fn map_fd(fd: &OwnedFd, read_only: bool) -> Result<(usize, usize, bool), String> {
        let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(|e| format!("fstat: {e}"))?;
        let len = usize::try_from(st.st_size).map_err(|_| "negative size".to_string())?;
        if len == 0 {
            return Err("the descriptor has size 0".into());
        }
        let mut ro = read_only;
        loop {
            let prot = libc::PROT_READ | if ro { 0 } else { libc::PROT_WRITE };
            // SAFETY: a fresh shared mapping chosen by the kernel; nothing else refers to it.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    prot,
                    libc::MAP_SHARED,
                    fd.as_raw_fd(),
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                return Ok((p as usize, len, ro));
            }
            if ro {
                return Err(os_err("mmap"));
            }
            ro = true; // a descriptor opened read-only: map it read-only
        }
    }

    fn check(&self, seg: u32, offset: usize, n: usize) -> Option<&Seg> {
        let s = self.segs.get(&seg)?;
        (offset.checked_add(n)? <= s.len).then_some(s)
    }
}

/// Copy `out.len()` bytes at address `from` of this process into `out` by the kernel: EFAULT
/// (false) where the memory cannot be read — no SIGBUS, no racing loads.
fn kernel_read(from: usize, out: &mut [u8]) -> bool {
    use nix::sys::uio::{process_vm_readv, RemoteIoVec};
    let want = out.len();
    if want == 0 {
        return true;
    }
    let remote = [RemoteIoVec {
        base: from,
        len: want,
    }];
    let mut local = [std::io::IoSliceMut::new(out)];
    process_vm_readv(nix::unistd::Pid::this(), &mut local, &remote) == Ok(want)
}

/// Copy `data` to address `to` of this process by the kernel (see [`kernel_read`]).
fn kernel_write(to: usize, data: &[u8]) -> bool {
    use nix::sys::uio::{process_vm_writev, RemoteIoVec};
    if data.is_empty() {
        return true;
    }
    let remote = [RemoteIoVec {
        base: to,
        len: data.len(),
    }];
    let local = [std::io::IoSlice::new(data)];
    process_vm_writev(nix::unistd::Pid::this(), &local, &remote) == Ok(data.len())
}

impl Drop for ProcessSegments {
    fn drop(&mut self) {
        for (_, s) in self.segs.drain() {
            Self::unmap(&s);
        }
    }
}

impl SegmentMemory for ProcessSegments {
    fn attach_sysv(&mut self, seg: u32, shmid: u32, read_only: bool) -> Result<(), String> {
        let id = shmid as libc::c_int;
        // SAFETY: shmid_ds is plain data; IPC_STAT fills it.
        let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
        // SAFETY: `ds` is a valid, writable shmid_ds.
        if unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) } != 0 {
            return Err(os_err(&format!("shmctl(IPC_STAT, {shmid})")));
        }
        let len = ds.shm_segsz;
        let mut ro = read_only;
        loop {
            let flags = if ro { libc::SHM_RDONLY } else { 0 };
            // SAFETY: attaching at a kernel-chosen address creates a new mapping only.
            let p = unsafe { libc::shmat(id, std::ptr::null(), flags) };
            if p as isize != -1 {
                self.insert(
                    seg,
                    Seg {
                        addr: p as usize,
                        len,
                        read_only: ro,
                        backing: Backing::Sysv(shmid),
                    },
                );
                return Ok(());
            }
            if ro {
                return Err(os_err(&format!("shmat({shmid})")));
            }
            ro = true;
        }
    }

    fn attach_fd(&mut self, seg: u32, fd: OwnedFd, read_only: bool) -> Result<(), String> {
        let (addr, len, ro) = Self::map_fd(&fd, read_only)?;
        self.insert(
            seg,
            Seg {
                addr,
                len,
                read_only: ro,
                backing: Backing::Mapped,
            },
        );
        Ok(())
    }

    fn create(&mut self, seg: u32, size: u32, read_only: bool) -> Result<OwnedFd, String> {
        if size == 0 {
            return Err("ShmCreateSegment of size 0".into());
        }
        // SAFETY: memfd_create with a static NUL-terminated name.
        let raw = unsafe { libc::memfd_create(c"guievict-shm".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(os_err("memfd_create"));
        }
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        nix::unistd::ftruncate(&fd, i64::from(size)).map_err(|e| format!("ftruncate: {e}"))?;
        let (addr, len, _) = Self::map_fd(&fd, false)?;
        self.insert(
            seg,
            Seg {
                addr,
                len,
                read_only,
                backing: Backing::Mapped,
            },
        );
        Ok(fd)
    }

    fn detach(&mut self, seg: u32) {
        if let Some(s) = self.segs.remove(&seg) {
            Self::unmap(&s);
        }
    }

    fn len(&self, seg: u32) -> Option<usize> {
        self.segs.get(&seg).map(|s| s.len)
    }

    fn read_only(&self, seg: u32) -> bool {
        self.segs.get(&seg).is_some_and(|s| s.read_only)
    }

    fn read(&self, seg: u32, offset: usize, out: &mut [u8]) -> bool {
        let Some(s) = self.check(seg, offset, out.len()) else {
            return false;
        };
        kernel_read(s.addr + offset, out)
    }

    fn write(&mut self, seg: u32, offset: usize, data: &[u8]) -> bool {
        let Some(s) = self.check(seg, offset, data.len()) else {
            return false;
        };
        if s.read_only {
            return false;
        }
        kernel_write(s.addr + offset, data)
    }

    fn segments(&self) -> Vec<SegmentInfo> {
        let mut v: Vec<SegmentInfo> = self
            .segs
            .iter()
            .map(|(id, s)| SegmentInfo {
                seg: *id,
                shmid: match s.backing {
                    Backing::Sysv(i) => Some(i),
                    Backing::Mapped => None,
                },
                // As /proc/self/maps shows it: whole pages.
                mapping: matches!(s.backing, Backing::Mapped)
                    .then_some((s.addr as u64, s.len.next_multiple_of(page_size()) as u64)),
                read_only: s.read_only,
            })
            .collect();
        v.sort_by_key(|s| s.seg);
        v
    }
}

/// Pixels of the probe in [`can_share_memory`].
const PROBE: u16 = 64;

/// Whether the server behind `conn` can read shared memory of this process: a fresh System V
/// segment holding a pattern is attached there, the server copies it into a scratch pixmap
/// (ShmPutImage) and the pixels read back (GetImage) must be the pattern. A server of another
/// host or another IPC namespace fails here — it may even find a different segment under the
/// same shmid, which the pattern catches. `Err`: the probe itself could not run.
pub fn can_share_memory(
    conn: &impl x11rb::connection::Connection,
    setup: &x11rb::protocol::xproto::Setup,
) -> Result<bool, String> {
    use x11rb::protocol::shm::ConnectionExt as _;
    use x11rb::protocol::xproto::{ConnectionExt as _, CreateGCAux, ImageFormat};
    let Some(depth) = setup
        .pixmap_formats
        .iter()
        .filter(|f| f.bits_per_pixel == 32)
        .map(|f| f.depth)
        .max()
    else {
        return Err("the server has no 32-bit pixmap format".into());
    };
    let keep = if depth >= 32 {
        u32::MAX
    } else {
        (1u32 << depth) - 1
    };
    let len = usize::from(PROBE) * 4;
    // SAFETY: a private segment for this probe only.
    let id = unsafe { libc::shmget(libc::IPC_PRIVATE, len, libc::IPC_CREAT | 0o600) };
    if id < 0 {
        return Err(os_err("shmget"));
    }
    let mut mem = ProcessSegments::default();
    let attached = mem.attach_sysv(0, id as u32, false);
    // SAFETY: marks the segment for removal; attachments keep it alive until detached.
    unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    attached?;
    // A pattern no other segment is likely to hold.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u32)
        .unwrap_or(0x5eed)
        ^ std::process::id();
    let pattern: Vec<u32> = (0..u32::from(PROBE))
        .map(|i| {
            seed.wrapping_mul(2_654_435_761)
                .wrapping_add(i.wrapping_mul(40_503))
                & keep
        })
        .collect();
    let bytes: Vec<u8> = pattern.iter().flat_map(|p| p.to_ne_bytes()).collect();
    if !mem.write(0, 0, &bytes) {
        return Err("writing the probe segment".into());
    }
    let x = |e: &dyn std::fmt::Display| e.to_string();
    let (seg, pm, gc) = (
        conn.generate_id().map_err(|e| x(&e))?,
        conn.generate_id().map_err(|e| x(&e))?,
        conn.generate_id().map_err(|e| x(&e))?,
    );
    let root = setup.roots.first().map(|r| r.root).unwrap_or(0);
    conn.create_pixmap(depth, pm, root, PROBE, 1)
        .map_err(|e| x(&e))?;
    conn.create_gc(gc, pm, &CreateGCAux::new().graphics_exposures(0))
        .map_err(|e| x(&e))?;
    let read = (|| -> Result<Option<Vec<u32>>, String> {
        if conn
            .shm_attach(seg, id as u32, true)
            .map_err(|e| x(&e))?
            .check()
            .is_err()
        {
            return Ok(None); // no such segment there, or no access
        }
        let put = conn
            .shm_put_image(
                pm,
                gc,
                PROBE,
                1,
                0,
                0,
                PROBE,
                1,
                0,
                0,
                depth,
                u8::from(ImageFormat::Z_PIXMAP),
                false,
                seg,
                0,
            )
            .map_err(|e| x(&e))?
            .check();
        let got = match put {
            Ok(()) => conn
                .get_image(ImageFormat::Z_PIXMAP, pm, 0, 0, PROBE, 1, !0)
                .map_err(|e| x(&e))?
                .reply()
                .ok()
                .map(|r| {
                    r.data
                        .chunks_exact(4)
                        .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) & keep)
                        .collect()
                }),
            Err(_) => None,
        };
        let _ = conn.shm_detach(seg);
        Ok(got)
    })();
    let _ = conn.free_gc(gc);
    let _ = conn.free_pixmap(pm);
    let _ = conn.flush();
    Ok(read?.as_deref() == Some(&pattern[..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_segment_reads_back_and_bounds_hold() {
        let mut m = ProcessSegments::default();
        let fd = m.create(7, 4096, false).expect("create");
        assert_eq!(m.len(7), Some(4096));
        assert!(m.write(7, 100, b"hello"));
        let mut b = [0u8; 5];
        assert!(m.read(7, 100, &mut b));
        assert_eq!(&b, b"hello");
        assert!(!m.read(7, 4094, &mut b), "out of bounds read refused");
        assert!(!m.write(7, 4092, b"hello"), "out of bounds write refused");
        // The application's descriptor names the same memory.
        let mut m2 = ProcessSegments::default();
        m2.attach_fd(1, fd, true).expect("attach fd");
        assert!(m2.read(1, 100, &mut b));
        assert_eq!(&b, b"hello");
        assert!(m2.read_only(1));
        assert!(!m2.write(1, 0, b"x"));
        m.detach(7);
        assert_eq!(m.len(7), None);
        assert_eq!(m2.segments().len(), 1);
    }

    #[test]
    fn a_segment_the_application_shrinks_fails_reads_instead_of_raising_sigbus() {
        let mut m = ProcessSegments::default();
        let fd = m.create(9, 3 * 4096, false).expect("create");
        assert!(m.write(9, 2 * 4096 + 10, b"tail"));
        // The application truncates its descriptor to one page: the mapping's last two pages
        // now lie beyond the file's end (a load there is SIGBUS).
        nix::unistd::ftruncate(&fd, 4096).expect("ftruncate");
        let mut b = [0u8; 4];
        assert!(!m.read(9, 2 * 4096 + 10, &mut b), "read beyond the new end");
        assert!(
            !m.write(9, 2 * 4096 + 10, b"more"),
            "write beyond the new end"
        );
        assert!(m.write(9, 10, b"head") && m.read(9, 10, &mut b));
        assert_eq!(&b, b"head", "the page still backed works");
    }

    #[test]
    fn sysv_segment_attaches_by_shmid() {
        // SAFETY: a private segment for this test only.
        let id = unsafe { libc::shmget(libc::IPC_PRIVATE, 8192, libc::IPC_CREAT | 0o600) };
        assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
        let mut m = ProcessSegments::default();
        let r = m.attach_sysv(3, id as u32, false);
        // SAFETY: mark for removal; our attachment keeps it alive until detached.
        unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
        r.expect("attach");
        assert_eq!(m.len(3), Some(8192));
        assert!(m.write(3, 8000, &[1, 2, 3]));
        let mut b = [0u8; 3];
        assert!(m.read(3, 8000, &mut b));
        assert_eq!(b, [1, 2, 3]);
        assert!(m.attach_sysv(4, 0x7fff_fff0, false).is_err());
        assert_eq!(m.segments()[0].shmid, Some(id as u32));
    }
}
