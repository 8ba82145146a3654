//! SYNC. Capture: the value of each of the client's counters and whether each of its fences is
//! triggered, into `Session::counters` / `Session::fences`. Regeneration: SyncCreateCounter and
//! SyncCreateFence with those values, into the [`Sink`].

use super::{ids_of_type, require_ext, type_names, Sink};
use crate::capture::{CaptureError, ResourceList};
use crate::model::*;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::cookie::Cookie;
use x11rb::protocol::sync::{self, ConnectionExt as _};

/// Counters and fences asked about: (ID, query).
pub(super) struct SyncCookies<'c, C: RequestConnection> {
    counters: Vec<(u32, Cookie<'c, C, sync::QueryCounterReply>)>,
    fences: Vec<(u32, Cookie<'c, C, sync::QueryFenceReply>)>,
}

/// Ask for each counter's value and each fence's state (none without SYNC).
pub(super) fn ask_counters_and_fences<'c, C: Connection>(
    conn: &'c C,
    list: &ResourceList,
    have_sync: bool,
) -> Result<SyncCookies<'c, C>, CaptureError> {
    let (counter_ids, fence_ids) = if have_sync {
        (
            ids_of_type(list, type_names::COUNTER),
            ids_of_type(list, type_names::FENCE),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let counters: Vec<_> = counter_ids
        .iter()
        .map(|&c| conn.sync_query_counter(c).map(|k| (c, k)))
        .collect::<Result<_, _>>()?;
    let fences: Vec<_> = fence_ids
        .iter()
        .map(|&f| conn.sync_query_fence(f).map(|k| (f, k)))
        .collect::<Result<_, _>>()?;
    Ok(SyncCookies { counters, fences })
}

/// The answers to [`ask_counters_and_fences`] into the session.
pub(super) fn read_counters_and_fences<C: RequestConnection>(
    s: &mut Session,
    asked: SyncCookies<'_, C>,
) {
    for (id, c) in asked.counters {
        let value = match c.reply() {
            Ok(r) => Some((i64::from(r.counter_value.hi) << 32) | i64::from(r.counter_value.lo)),
            Err(e) => {
                s.unknown.push(format!("sync counter {id:#x}: value ({e})"));
                None
            }
        };
        s.counters.push(Counter { id, value });
    }
    for (id, c) in asked.fences {
        let triggered = match c.reply() {
            Ok(r) => Some(r.triggered),
            Err(e) => {
                s.unknown.push(format!("sync fence {id:#x}: state ({e})"));
                None
            }
        };
        s.fences.push(Fence { id, triggered });
    }
}

/// The client's counters and fences; refused (`Unsupported`) when it has some and the target
/// has no SYNC.
pub(super) fn regen_counters_and_fences<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    sink: &mut Sink<'c, C>,
) -> Result<(), crate::RegenError> {
    require_ext(
        conn,
        sync::X11_EXTENSION_NAME,
        !t.counters.is_empty() || !t.fences.is_empty(),
    )?;
    for c in &t.counters {
        let v = c.value.unwrap_or_else(|| {
            sink.warnings.push(format!(
                "sync counter {:#x}: value unknown; starts at 0",
                c.id
            ));
            0
        });
        sink.hard.push((
            "SyncCreateCounter",
            c.id,
            conn.sync_create_counter(
                c.id,
                sync::Int64 {
                    hi: (v >> 32) as i32,
                    lo: v as u32,
                },
            )?,
        ));
    }
    for f in &t.fences {
        sink.hard.push((
            "SyncCreateFence",
            f.id,
            conn.sync_create_fence(t.setup.root, f.id, f.triggered.unwrap_or(false))?,
        ));
    }
    Ok(())
}
