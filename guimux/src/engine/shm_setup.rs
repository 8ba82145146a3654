//! Setting up MIT-SHM conversion: who gives guimux the memory behind the app's segments,
//! which servers convert, the app's image layout, and the descriptors that travel with the
//! app's bytes (ShmAttachFd in, ShmCreateSegment's reply out). The conversion itself is in
//! `crate::shmconv`, driven from the app and server sides.

use super::*;

impl Engine {
    /// Give guimux access to the memory behind the app's MIT-SHM segments (the hosting
    /// process's; see [`shmconv`]). Needed before any server converts MIT-SHM.
    pub fn set_segment_memory(&mut self, mem: Box<dyn SegmentMemory>) {
        self.shm = Some(ShmState {
            mem,
            app_fds: VecDeque::new(),
            fds_to_app: Vec::new(),
            created: HashMap::new(),
            pixmaps: HashMap::new(),
        });
    }

    /// Pixmaps the app made with ShmCreatePixmap that a converting server holds as plain
    /// pixmaps mirroring their segment (app IDs), e.g. to make them shared again on a server
    /// that shares memory.
    pub fn converted_shm_pixmaps(&self) -> Vec<(u32, shmconv::PixmapSrc)> {
        let mut v: Vec<_> = self
            .shm
            .as_ref()
            .map(|s| s.pixmaps.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default();
        v.sort_by_key(|x| x.0);
        v
    }

    /// The segment memory, e.g. to register segments captured before a move.
    pub fn segment_memory(&mut self) -> Option<&mut (dyn SegmentMemory + 'static)> {
        self.shm.as_mut().map(|s| s.mem.as_mut())
    }

    /// Convert the app's MIT-SHM requests to core requests for server `s` (`Some`), or send
    /// them as they are (`None`). Fails without segment memory.
    pub fn set_shm_conversion(
        &mut self,
        s: ServerId,
        target: Option<ShmTarget>,
    ) -> Result<(), EngineError> {
        if target.is_some() && self.shm.is_none() {
            return Err(EngineError::NoSegmentMemory);
        }
        let srv = self
            .servers
            .get_mut(s)
            .and_then(|x| x.as_mut())
            .ok_or(EngineError::NoServer(s))?;
        srv.shm = target;
        Ok(())
    }

    /// Remember the image layout of the app's original server (first capture only).
    pub fn remember_app_image_formats(&mut self, f: ImageFormats) {
        self.app_formats.get_or_insert(f);
    }

    /// The image layout of the app's original server, once known.
    pub fn app_image_formats(&self) -> Option<ImageFormats> {
        self.app_formats.clone()
    }

    /// Whether some server (primary or replica) gets MIT-SHM converted: the app's
    /// descriptors must then reach guimux too (see [`Engine::push_app_fds`]).
    pub fn any_converts_shm(&self) -> bool {
        self.shm_major().is_some()
    }

    /// Descriptors the app sent while some server converts MIT-SHM (guimux's alone when the
    /// primary converts; copies when only a replica does): an ShmAttachFd takes the oldest.
    pub fn push_app_fds(&mut self, fds: Vec<OwnedFd>) {
        if let Some(st) = self.shm.as_mut() {
            st.app_fds.extend(fds);
            // Descriptors no request claimed (an extension guimux does not convert) must not
            // pile up.
            while st.app_fds.len() > 64 {
                st.app_fds.pop_front();
            }
        }
    }

    /// Descriptors to send to the app with the bytes now in [`Engine::app_output`].
    pub fn take_fds_for_app(&mut self) -> Vec<OwnedFd> {
        self.shm
            .as_mut()
            .map(|s| std::mem::take(&mut s.fds_to_app))
            .unwrap_or_default()
    }
}
