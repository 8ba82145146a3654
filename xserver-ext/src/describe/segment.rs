//! MIT-SHM segment records (`ShmDescRec` as Debian builds it, with fd passing): a raw
//! resource value flows in, a checked [`ShmDesc`] (address, size, System V ID, writability)
//! or nothing flows out.

/// The record MIT-SHM keeps per attached segment: `ShmDescRec` of xorg-server's shmint.h, as
/// built with `SHM_FD_PASSING` (Debian's servers; the installed header does not say, so the
/// layout is declared here). [`shm_desc`] checks the fields it follows before trusting them.
#[repr(C)]
struct ShmDescRec {
    next: *mut ShmDescRec,
    shmid: std::ffi::c_int,
    refcnt: std::ffi::c_int,
    addr: *mut std::ffi::c_char,
    writable: std::ffi::c_int,
    size: std::ffi::c_ulong,
    is_fd: std::ffi::c_int,
}

/// What a segment record says, once checked.
pub(super) struct ShmDesc {
    pub(super) shmid: Option<u32>,
    pub(super) addr: usize,
    pub(super) size: usize,
    pub(super) writable: bool,
}

/// Read a ShmSeg resource's `ShmDescRec`; `None` when it does not look like one (booleans not
/// 0/1, no reference, no memory, a System V segment without an ID, 4 GiB or more).
///
/// # Safety
/// `value` must be the value of a live `ShmSeg` resource.
pub(super) unsafe fn shm_desc(value: *mut std::ffi::c_void) -> Option<ShmDesc> {
    if value.is_null() {
        return None;
    }
    // SAFETY: the resource value is the malloc'ed ShmDescRec (caller).
    let d = unsafe { &*(value as *const ShmDescRec) };
    if !(0..=1).contains(&d.is_fd)
        || !(0..=1).contains(&d.writable)
        || d.refcnt < 1
        || d.addr.is_null()
        || d.size == 0
        || u32::try_from(d.size).is_err()
        || (d.is_fd == 0 && d.shmid < 0)
    {
        return None;
    }
    Some(ShmDesc {
        shmid: (d.is_fd == 0).then_some(d.shmid as u32),
        addr: d.addr as usize,
        size: d.size as usize,
        writable: d.writable == 1,
    })
}
