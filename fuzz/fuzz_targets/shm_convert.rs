//! Fuzz guimux's MIT-SHM conversion: an engine whose primary server cannot share memory gets
//! arbitrary app bytes behind an MIT-SHM major opcode (so every minor request is converted
//! against a small segment table) and arbitrary server bytes back. Nothing may panic, and the
//! segment memory is only touched in bounds (the table checks and would refuse otherwise).
#![no_main]
use guimux::engine::ShmTarget;
use guimux::fields::ByteOrder;
use guimux::maps::{AtomMap, ExtEntry, ExtMap, ExtPlace, XidMap};
use guimux::shmconv::{ImageFormats, SegmentInfo, SegmentMemory};
use guimux::{Engine, Maps, Role};
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use std::os::fd::OwnedFd;

#[derive(Debug, Default)]
struct Mem(HashMap<u32, Vec<u8>>);

impl SegmentMemory for Mem {
    fn attach_sysv(&mut self, seg: u32, shmid: u32, _: bool) -> Result<(), String> {
        self.0.insert(seg, vec![0; (shmid % 70_000) as usize]);
        Ok(())
    }
    fn attach_fd(&mut self, _: u32, _: OwnedFd, _: bool) -> Result<(), String> {
        Err("no descriptors here".into())
    }
    fn create(&mut self, _: u32, _: u32, _: bool) -> Result<OwnedFd, String> {
        Err("no descriptors here".into())
    }
    fn detach(&mut self, seg: u32) {
        self.0.remove(&seg);
    }
    fn len(&self, seg: u32) -> Option<usize> {
        self.0.get(&seg).map(Vec::len)
    }
    fn read_only(&self, _: u32) -> bool {
        false
    }
    fn read(&self, seg: u32, offset: usize, out: &mut [u8]) -> bool {
        match self.0.get(&seg).and_then(|v| v.get(offset..offset.checked_add(out.len())?)) {
            Some(b) => {
                out.copy_from_slice(b);
                true
            }
            None => false,
        }
    }
    fn write(&mut self, seg: u32, offset: usize, data: &[u8]) -> bool {
        match self
            .0
            .get_mut(&seg)
            .and_then(|v| v.get_mut(offset..offset.checked_add(data.len())?))
        {
            Some(b) => {
                b.copy_from_slice(data);
                true
            }
            None => false,
        }
    }
    fn segments(&self) -> Vec<SegmentInfo> {
        Vec::new()
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let split = data[0] as usize % data.len();
    let (app, server) = data[1..].split_at(split.min(data.len() - 1));
    let mut e = Engine::hijacked(ByteOrder::Little, 7);
    // Synchronise: the sentinel's error.
    let mut err = [0u8; 32];
    err[1] = 9;
    err[4..8].copy_from_slice(&7u32.to_le_bytes());
    err[10] = 14;
    if e.server_input(0, &err).is_err() {
        return;
    }
    e.pause();
    e.remove_server(0);
    let s = e.add_server();
    let mut mem = Mem::default();
    mem.0.insert(1, vec![0; 4096]);
    e.set_segment_memory(Box::new(mem));
    let f = ImageFormats {
        bitmap_pad: 32,
        formats: vec![(1, 1, 32), (8, 8, 32), (24, 32, 32)],
    };
    let _ = e.set_shm_conversion(
        s,
        Some(ShmTarget {
            app_place: (130, 65, 128),
            app: f.clone(),
            server: f,
            owner: (0, 0),
        }),
    );
    let mut exts = ExtMap::default();
    exts.entries.push(ExtEntry {
        name: "MIT-SHM".into(),
        table: guimux::tables::ext_by_xname("MIT-SHM"),
        app: Some(ExtPlace {
            major: 130,
            first_event: 65,
            first_error: 128,
        }),
        server: None,
    });
    let maps = Maps {
        xids: XidMap::new(0x20_0000, 0x1f_ffff, 0x40_0000, 0x1f_ffff),
        atoms: AtomMap::new(),
        visuals: HashMap::new(),
        exts,
        named: HashMap::new(),
        devices: Default::default(),
    };
    if e.activate(s, Role::Primary, Some(maps)).is_err() {
        return;
    }
    e.resume();
    // App bytes: requests whose major is forced to MIT-SHM's where the framing allows.
    let mut reqs = app.to_vec();
    let mut i = 0;
    while i + 4 <= reqs.len() {
        reqs[i] = 130;
        let len = (u16::from_le_bytes([reqs[i + 2], reqs[i + 3]]) as usize).max(1) * 4;
        i += len;
    }
    for chunk in reqs.chunks(11) {
        if e.app_input(chunk).is_err() {
            break;
        }
    }
    for chunk in server.chunks(13) {
        if e.server_input(s, chunk).is_err() {
            break;
        }
    }
});
