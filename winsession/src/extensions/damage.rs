//! DAMAGE. Capture: for each of the client's DAMAGE objects the drawable it watches and its
//! report level — as the GUIEVICT extension (≥ 1.3) describes them, else found by probing on
//! the application's connection (the level then defaults) — into `Session::damages`.
//! Regeneration: DamageCreate for each object whose drawable is known, into the [`Sink`].

use super::{ids_of_type, require_ext, type_names, Sink};
use crate::capture::{CaptureError, ResourceList};
use crate::model::*;
use x11rb::connection::Connection;
use x11rb::protocol::damage::{self, ConnectionExt as _};
use x11rb::protocol::xc_misc::ConnectionExt as _;
use x11rb::protocol::xfixes::ConnectionExt as _;
use x11rb::protocol::xproto;

/// Report level DAMAGE objects get when the capture cannot tell: NonEmpty, what xeyes and
/// Present-style back buffers use.
pub const DEFAULT_DAMAGE_LEVEL: u8 = 3;

/// Most candidate drawables tried per DAMAGE object.
const MAX_DAMAGE_CANDIDATES: usize = 256;

/// The client's DAMAGE objects (none without DAMAGE): described ones as the extension says,
/// the others probed ([`probe_damage`]). True when probes were sent (requests that change
/// server state, not followed by a wait).
pub(super) fn capture_damages(
    conn: &impl Connection,
    s: &mut Session,
    list: &ResourceList,
    ext: Option<&crate::ext::ExtState>,
    have_damage: bool,
    have_xfixes: bool,
) -> Result<bool, CaptureError> {
    let damage_ids = if have_damage {
        ids_of_type(list, type_names::DAMAGE)
    } else {
        Vec::new()
    };
    // The GUIEVICT extension (≥ 1.3) says exactly what each DAMAGE object watches and how it
    // reports; only the objects it could not describe are probed.
    let described = crate::ext::described(ext, |d| match d {
        guievict_ext_proto::Detail::Damage(d) => Some(*d),
        _ => None,
    });
    let mut probed = Vec::new();
    for &id in &damage_ids {
        match described.get(&id) {
            Some(d) => s.damages.push(Damage {
                id,
                drawable: d.drawable,
                level: d.level,
                level_known: true,
            }),
            None => probed.push(id),
        }
    }
    if !probed.is_empty() {
        probe_damage(conn, s, &probed, have_xfixes)?;
    }
    Ok(!probed.is_empty())
}

/// Find the drawable each DAMAGE object watches. The protocol cannot read it back, so probe:
/// take the object's pending damage out (kept in a region), add damage to one candidate drawable,
/// and see whether the object picked it up; then give the pending damage back. Candidates are
/// tried nearest ID first (clients create a damage object right after its drawable). Adding
/// damage never changes pixels; at worst other watchers of a candidate see extra damage, which
/// DAMAGE allows (over-reporting is always safe). The report level cannot be probed: it becomes
/// [`DEFAULT_DAMAGE_LEVEL`] with a note in [`Session::unknown`].
fn probe_damage(
    conn: &impl Connection,
    s: &mut Session,
    ids: &[u32],
    have_xfixes: bool,
) -> Result<(), CaptureError> {
    let unknown_all = |s: &mut Session, why: &str| {
        for &id in ids {
            s.unknown.push(format!("damage {id:#x}: drawable ({why})"));
            s.damages.push(Damage {
                id,
                drawable: 0,
                level: DEFAULT_DAMAGE_LEVEL,
                level_known: false,
            });
        }
    };
    if !have_xfixes {
        unknown_all(s, "XFIXES is absent, so damage cannot be probed");
        return Ok(());
    }
    // DamageAdd needs DAMAGE 1.1 negotiated by the client; raising 1.0 to 1.1 changes nothing
    // else. Regions need XFIXES ≥ 2, which a client holding damage objects negotiated already.
    if let Err(e) = conn.damage_query_version(1, 1)?.reply() {
        unknown_all(s, &format!("DAMAGE QueryVersion failed: {e}"));
        return Ok(());
    }
    let mut candidates: Vec<(u32, bool)> = s
        .pixmaps
        .iter()
        .filter(|p| p.width > 0 && p.height > 0)
        .map(|p| (p.id, false))
        .chain(
            s.windows
                .iter()
                .filter(|w| w.mapped())
                .map(|w| (w.id, true)),
        )
        .collect();
    candidates.sort_unstable();
    let full = [xproto::Rectangle {
        x: -32768,
        y: -32768,
        width: u16::MAX,
        height: u16::MAX,
    }];
    // This connection is the application's: temporary IDs must be free IDs of its range.
    let free = conn
        .xc_misc_get_xid_list(3)?
        .reply()
        .map_err(|source| CaptureError::Reply {
            what: "XC-MISC GetXIDList".into(),
            source,
        })?
        .ids;
    let [everything, probe, saved] = free[..] else {
        unknown_all(s, "the client has no free resource IDs for probing");
        return Ok(());
    };
    conn.xfixes_create_region(everything, &full)?;
    conn.xfixes_create_region(probe, &[])?;
    conn.xfixes_create_region(saved, &[])?;
    for &id in ids {
        conn.damage_subtract(id, 0u32, saved)?;
        // Nearest ID first, lower IDs before higher at equal distance.
        let mut order = candidates.clone();
        order.sort_by_key(|&(c, _)| (c.abs_diff(id), c > id));
        let mut found = None;
        for &(c, _) in order.iter().take(MAX_DAMAGE_CANDIDATES) {
            conn.damage_add(c, everything)?;
            conn.damage_subtract(id, 0u32, probe)?;
            let r = conn.xfixes_fetch_region(probe)?.reply();
            match r {
                Ok(r) if !r.rectangles.is_empty() => {
                    found = Some(c);
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    s.unknown
                        .push(format!("damage {id:#x}: probing failed ({e})"));
                    break;
                }
            }
        }
        if let Some(d) = found {
            conn.damage_add(d, saved)?;
        } else {
            s.unknown.push(format!(
                "damage {id:#x}: drawable not found among the client's drawables; not recreated"
            ));
        }
        s.unknown.push(format!(
            "damage {id:#x}: report level cannot be read back; regenerated as NonEmpty"
        ));
        s.damages.push(Damage {
            id,
            drawable: found.unwrap_or(0),
            level: DEFAULT_DAMAGE_LEVEL,
            level_known: false,
        });
    }
    conn.xfixes_destroy_region(everything)?;
    conn.xfixes_destroy_region(probe)?;
    conn.xfixes_destroy_region(saved)?;
    Ok(())
}

/// The client's DAMAGE objects; refused (`Unsupported`) when it has some and the target has no
/// DAMAGE.
pub(super) fn regen_damages<'c, C: Connection>(
    conn: &'c C,
    t: &Session,
    sink: &mut Sink<'c, C>,
) -> Result<(), crate::RegenError> {
    require_ext(conn, damage::X11_EXTENSION_NAME, !t.damages.is_empty())?;
    for d in &t.damages {
        if d.drawable == 0 {
            sink.warnings.push(format!(
                "damage {:#x}: drawable unknown; not recreated (the application's requests on it will fail)",
                d.id
            ));
            continue;
        }
        if !d.level_known {
            sink.warnings.push(format!(
                "damage {:#x}: report level unknown; recreated as NonEmpty",
                d.id
            ));
        }
        sink.hard.push((
            "DamageCreate",
            d.id,
            conn.damage_create(d.id, d.drawable, damage::ReportLevel::from(d.level))?,
        ));
    }
    Ok(())
}
