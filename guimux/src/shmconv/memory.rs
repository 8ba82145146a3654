//! The application's segment memory as guimux sees it: a trait the hosting process implements
//! (attach, create, detach, read and write bytes of a segment by its app-view ShmSeg ID), so
//! that guimux itself does no I/O and no unsafe memory access.

use std::os::fd::OwnedFd;

/// Access to the shared memory behind the application's segments, keyed by the app-view ShmSeg
/// ID. Implemented by the process that hosts the application (the hijack library).
pub trait SegmentMemory: Send + std::fmt::Debug {
    /// ShmAttach: the application attached System V segment `shmid` as `seg`.
    fn attach_sysv(&mut self, seg: u32, shmid: u32, read_only: bool) -> Result<(), String>;
    /// ShmAttachFd: the application passed this descriptor for `seg`.
    fn attach_fd(&mut self, seg: u32, fd: OwnedFd, read_only: bool) -> Result<(), String>;
    /// ShmCreateSegment: create `size` bytes of shared memory as `seg`; returns a descriptor of
    /// it for the application.
    fn create(&mut self, seg: u32, size: u32, read_only: bool) -> Result<OwnedFd, String>;
    /// ShmDetach.
    fn detach(&mut self, seg: u32);
    /// Size in bytes of `seg`, if known.
    fn len(&self, seg: u32) -> Option<usize>;
    /// Whether `seg` was attached read-only.
    fn read_only(&self, seg: u32) -> bool;
    /// Copy `out.len()` bytes from `seg` at `offset`; false if unknown or out of bounds.
    fn read(&self, seg: u32, offset: usize, out: &mut [u8]) -> bool;
    /// Copy `data` into `seg` at `offset`; false if unknown, read-only or out of bounds.
    fn write(&mut self, seg: u32, offset: usize, data: &[u8]) -> bool;
    /// Every known segment (for moving the application back to a server that shares memory).
    fn segments(&self) -> Vec<SegmentInfo>;
}

/// What the memory provider knows about one segment.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SegmentInfo {
    /// App-view ShmSeg ID.
    pub seg: u32,
    /// System V ID, for System V segments.
    pub shmid: Option<u32>,
    /// For file-backed segments: a mapping of it in this process (start, length).
    pub mapping: Option<(u64, u64)>,
    /// Attached read-only.
    pub read_only: bool,
}
