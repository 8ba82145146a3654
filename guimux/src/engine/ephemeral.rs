//! Pixmaps a lean guard never needs. Toolkits paint through short-lived pixmaps: GTK3 (cairo)
//! makes a pixmap and a picture on it for each repaint, draws into it, composites it into the
//! window and frees both — often within one batch of the app's bytes. A guard gets the
//! composite into the window as NoOperation already (see `promote.rs`), so the drawing into
//! the pixmap is work nobody will ever see. In: for each lean replica, the requests of the
//! batch now being dispatched (where each starts in the replica's output, and what it does in
//! the app's view). Out: the requests of every pixmap made and freed within the batch —
//! CreatePixmap, the pictures made and freed on it, their attribute changes, the drawing into
//! them, FreePixmap — replaced in that output by NoOperation (the numbering stays), unless
//! some other request of the batch mentions the pixmap or one of its pictures (read as a
//! source, a GC's tile, a picture's clip mask …: a word of its bytes equals the ID), in which
//! case nothing of it is touched.

use super::*;

/// What one app request does, as far as eliding short-lived pixmaps needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Touch {
    /// Anything else.
    Other,
    /// CreatePixmap of this ID.
    CreatePixmap(u32),
    /// FreePixmap of this ID.
    FreePixmap(u32),
    /// RENDER CreatePicture: (picture, drawable).
    CreatePicture(u32, u32),
    /// RENDER FreePicture.
    FreePicture(u32),
    /// A request that only changes this picture's attributes (ChangePicture,
    /// SetPictureClipRectangles, SetPictureTransform, SetPictureFilter).
    PictureAttr(u32),
    /// A request that only draws into this drawable or picture (no reply).
    DrawInto(u32),
}

/// Classify app request `req` (app view); `render` is RENDER's app-view major.
pub(super) fn touch(req: &[u8], order: ByteOrder, render: Option<u8>) -> Touch {
    let big = if req.len() >= 4 && order.u16(req, 2) == 0 {
        4
    } else {
        0
    };
    let at = |off: usize| -> Option<u32> {
        let o = off + big;
        (req.len() >= o + 4).then(|| order.u32(req, o))
    };
    let t = match req[0] {
        53 => at(4).map(Touch::CreatePixmap),
        54 => at(4).map(Touch::FreePixmap),
        61 | 64..=72 | 74..=77 => at(4).map(Touch::DrawInto),
        62 | 63 => at(8).map(Touch::DrawInto),
        m if Some(m) == render => match req[1] {
            4 => at(4).zip(at(8)).map(|(p, d)| Touch::CreatePicture(p, d)),
            5 | 6 | 28 | 30 => at(4).map(Touch::PictureAttr),
            7 => at(4).map(Touch::FreePicture),
            8 => at(16).map(Touch::DrawInto),
            10..=13 | 23..=25 => at(12).map(Touch::DrawInto),
            26 => at(8).map(Touch::DrawInto),
            _ => None,
        },
        _ => None,
    };
    t.unwrap_or(Touch::Other)
}

/// One request of a batch sent to a lean replica: where its bytes start in the replica's
/// output, and what it does.
pub(super) type Entry = (usize, Touch);

/// The requests of `entries` (a batch; `out[entries[0].0..]` holds their bytes, each up to
/// the next one's start) to replace by NoOperation; `to_server` maps an app-view ID to the
/// replica's. Returns the byte ranges.
pub(super) fn elidable(
    entries: &[Entry],
    out: &[u8],
    order: ByteOrder,
    to_server: &mut dyn FnMut(u32) -> u32,
) -> Vec<(usize, usize)> {
    let end_of = |i: usize| entries.get(i + 1).map_or(out.len(), |e| e.0);
    // Pixmaps made and freed within the batch, with the pictures made (and freed) on them.
    let mut families: Vec<Vec<u32>> = Vec::new();
    for (i, (_, t)) in entries.iter().enumerate() {
        let Touch::CreatePixmap(p) = *t else { continue };
        let freed = entries[i..].iter().any(|(_, t)| *t == Touch::FreePixmap(p));
        if !freed {
            continue;
        }
        let mut fam = vec![p];
        let mut whole = true;
        for (_, t) in &entries[i..] {
            if let Touch::CreatePicture(pic, d) = *t {
                if d == p {
                    whole &= entries.iter().any(|(_, t)| *t == Touch::FreePicture(pic));
                    fam.push(pic);
                }
            }
        }
        if whole {
            families.push(fam);
        }
    }
    let mut ranges = Vec::new();
    for fam in families {
        let ids: Vec<u32> = fam.iter().map(|&x| to_server(x)).collect();
        let mine = |t: &Touch| match *t {
            Touch::CreatePixmap(x) | Touch::FreePixmap(x) => x == fam[0],
            Touch::CreatePicture(x, _)
            | Touch::FreePicture(x)
            | Touch::PictureAttr(x)
            | Touch::DrawInto(x) => fam.contains(&x),
            Touch::Other => false,
        };
        let mut own = Vec::new();
        let mut mentioned = false;
        for (i, (start, t)) in entries.iter().enumerate() {
            let (start, end) = (*start, end_of(i));
            if mine(t) {
                own.push((start, end));
            } else if out[start..end]
                .chunks_exact(4)
                .skip(1)
                .any(|w| ids.contains(&order.u32(w, 0)))
            {
                mentioned = true;
                break;
            }
        }
        if !mentioned {
            ranges.extend(own);
        }
    }
    ranges.sort_unstable();
    ranges.dedup();
    ranges
}

/// Rewrite `out` with each of `ranges` (sorted, disjoint) replaced by one NoOperation.
pub(super) fn replace_with_noops(out: &mut Vec<u8>, ranges: &[(usize, usize)], order: ByteOrder) {
    if ranges.is_empty() {
        return;
    }
    let mut noop = [127u8, 0, 0, 0];
    order.put_u16(&mut noop, 2, 1);
    let mut new = Vec::with_capacity(out.len());
    let mut at = 0;
    for &(s, e) in ranges {
        new.extend_from_slice(&out[at..s]);
        new.extend_from_slice(&noop);
        at = e;
    }
    new.extend_from_slice(&out[at..]);
    *out = new;
}

impl Engine {
    /// Start recording the batch of app requests now being dispatched, for every lean replica
    /// that shares the app's memory (a converting one also refreshes mirrored pixmaps inside a
    /// request's bytes: left alone).
    pub(super) fn begin_lean_batch(&mut self) {
        for srv in self.servers.iter_mut().flatten() {
            srv.batch = (srv.lean && srv.shm.is_none() && srv.maps.is_some()).then(Vec::new);
        }
    }

    /// The batch is dispatched: short-lived pixmaps in it become NoOperation on lean replicas.
    pub(super) fn end_lean_batch(&mut self) {
        let order = self.order;
        for srv in self.servers.iter_mut().flatten() {
            let Some(entries) = srv.batch.take() else {
                continue;
            };
            if !entries
                .iter()
                .any(|(_, t)| matches!(t, Touch::CreatePixmap(_)))
            {
                continue;
            }
            let Some(maps) = srv.maps.as_mut() else {
                continue;
            };
            let ranges = elidable(&entries, &srv.out, order, &mut |id| maps.xids.to_server(id));
            self.stats.elided += ranges.len() as u64;
            replace_with_noops(&mut srv.out, &ranges, order);
        }
    }
}
