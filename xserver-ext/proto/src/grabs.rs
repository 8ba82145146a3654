//! `GetActiveGrabs` (protocol 1.8): the active grabs the requesting client holds on the core
//! pointer and keyboard, as the server keeps them (`GrabPointer`/`GrabKeyboard`, XInput 2's
//! `XIGrabDevice` on a master device), which no core or XInput request can read back. Flows
//! through here: the 4-byte request, the reply the server writes (header and one record per
//! grab), and its decoding on the client side, with every field checked.

use crate::wire::{ByteOrder, Reader, Writer};
use crate::{reply_header, request_header, DecodeError, REPLY_HEADER_LEN};

/// Minor opcode of `GetActiveGrabs` (protocol 1.8).
pub const X_GET_ACTIVE_GRABS: u8 = 3;

/// [`ActiveGrab::device`]: the core (master) pointer.
pub const GRAB_DEVICE_POINTER: u8 = 0;
/// [`ActiveGrab::device`]: the core (master) keyboard.
pub const GRAB_DEVICE_KEYBOARD: u8 = 1;

/// [`ActiveGrab::level`]: a core grab (`GrabPointer`, `GrabKeyboard`).
pub const GRAB_LEVEL_CORE: u8 = 1;
/// [`ActiveGrab::level`]: an XInput 1.x grab (`GrabDevice`).
pub const GRAB_LEVEL_XI: u8 = 2;
/// [`ActiveGrab::level`]: an XInput 2 grab (`XIGrabDevice`).
pub const GRAB_LEVEL_XI2: u8 = 3;

/// [`ActiveGrab::flags`]: owner-events.
pub const GRAB_OWNER_EVENTS: u8 = 1 << 0;
/// [`ActiveGrab::flags`]: the pointer mode is Asynchronous (else Synchronous).
pub const GRAB_POINTER_ASYNC: u8 = 1 << 1;
/// [`ActiveGrab::flags`]: the keyboard mode is Asynchronous (else Synchronous).
pub const GRAB_KEYBOARD_ASYNC: u8 = 1 << 2;
/// [`ActiveGrab::flags`]: activated by an event (the implicit grab of a button press, or a
/// passive grab that fired): it belongs to a key or button held on this server and ends with
/// its release.
pub const GRAB_ACTIVATED: u8 = 1 << 3;
/// [`ActiveGrab::flags`]: the grab shows a cursor the server cannot name by an ID.
pub const GRAB_CURSOR_UNNAMED: u8 = 1 << 4;
/// [`ActiveGrab::flags`]: an XInput 2 grab whose event mask could not be read (the server's
/// mask record did not check out); [`ActiveGrab::xi2_mask`] is empty.
pub const GRAB_MASK_UNREAD: u8 = 1 << 5;
/// [`ActiveGrab::flags`]: another grab (of another device) holds this device frozen.
pub const GRAB_FROZEN_BY_OTHER: u8 = 1 << 6;
/// Every defined [`ActiveGrab::flags`] bit.
pub const GRAB_FLAGS_ALL: u8 = (1 << 7) - 1;

/// [`ActiveGrab::sync_state`] values: the server's device freeze states (inputstr.h).
pub mod sync_state {
    /// `NOT_GRABBED`.
    pub const NOT_GRABBED: u8 = 0;
    /// `THAWED`: events flow.
    pub const THAWED: u8 = 1;
    /// `FREEZE_NEXT_EVENT`: events flow until the next one, then the device freezes
    /// (`AllowEvents(SyncPointer/SyncKeyboard)`).
    pub const FREEZE_NEXT_EVENT: u8 = 3;
    /// `FREEZE_BOTH_NEXT_EVENT` (`AllowEvents(SyncBoth)`).
    pub const FREEZE_BOTH_NEXT_EVENT: u8 = 4;
    /// `FROZEN_NO_EVENT`: frozen (a Synchronous grab not yet allowed).
    pub const FROZEN_NO_EVENT: u8 = 5;
    /// `FROZEN_WITH_EVENT`: frozen with an event held back for the client to allow.
    pub const FROZEN_WITH_EVENT: u8 = 6;
    /// `THAW_OTHERS`.
    pub const THAW_OTHERS: u8 = 7;
}

/// Longest XInput 2 event mask a record may carry (the server's is 5 bytes in 21.1).
pub const MAX_XI2_MASK: usize = 64;

/// One active grab of the requesting client (a record of the `GetActiveGrabs` reply).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ActiveGrab {
    /// [`GRAB_DEVICE_POINTER`] or [`GRAB_DEVICE_KEYBOARD`].
    pub device: u8,
    /// [`GRAB_LEVEL_CORE`], [`GRAB_LEVEL_XI`] or [`GRAB_LEVEL_XI2`].
    pub level: u8,
    /// `GRAB_*` flag bits.
    pub flags: u8,
    /// The device's freeze state ([`sync_state`]): a Synchronous grab freezes it until the
    /// client allows events.
    pub sync_state: u8,
    /// The paired core device's freeze state (the keyboard's for a pointer grab and the other
    /// way round: a grab's other mode may freeze it).
    pub paired_sync_state: u8,
    /// The server's device ID of the grabbed device (2 and 3 on Xorg/Xvfb).
    pub device_id: u16,
    /// The grab window.
    pub window: u32,
    /// The confine-to window (0 None; pointer grabs).
    pub confine_to: u32,
    /// The cursor shown during the grab (0 None; may be another client's).
    pub cursor: u32,
    /// The core/XI 1.x event mask as the server keeps it (a pointer grab's as requested; a
    /// core keyboard grab's is KeyPress | KeyRelease; 0 for XI2).
    pub event_mask: u32,
    /// The XInput 2 event mask of an XI2 grab (bit n in byte n/8), else empty.
    pub xi2_mask: Vec<u8>,
}

/// The reply to `GetActiveGrabs`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GetActiveGrabsReply {
    /// Sequence number (low 16 bits).
    pub sequence: u16,
    /// The client's active grabs (at most one per core device).
    pub grabs: Vec<ActiveGrab>,
}

/// Encode `GetActiveGrabs` (4 bytes, protocol 1.8).
pub fn encode_get_active_grabs(major_opcode: u8, order: ByteOrder) -> Vec<u8> {
    let mut w = Writer::with_capacity(order, 4);
    request_header(&mut w, major_opcode, X_GET_ACTIVE_GRABS, 1);
    w.into_inner()
}

/// Encode the reply to `GetActiveGrabs`: a 32-byte header (byte 1: the number of records)
/// and one record per grab (28 bytes, then the XI2 mask padded to 4).
pub fn encode_get_active_grabs_reply(reply: &GetActiveGrabsReply, order: ByteOrder) -> Vec<u8> {
    let (sequence, grabs) = (reply.sequence, &reply.grabs);
    let mut w = Writer::with_capacity(order, REPLY_HEADER_LEN + 32 * grabs.len());
    w.u8(1);
    w.u8(u8::try_from(grabs.len()).unwrap_or(u8::MAX));
    w.u16(sequence);
    w.u32(0);
    w.zeros(24);
    for g in grabs.iter().take(usize::from(u8::MAX)) {
        let mask = &g.xi2_mask[..g.xi2_mask.len().min(MAX_XI2_MASK)];
        w.u8(g.device);
        w.u8(g.level);
        w.u8(g.flags);
        w.u8(g.sync_state);
        w.u16(g.device_id);
        w.u16(mask.len() as u16);
        w.u32(g.window);
        w.u32(g.confine_to);
        w.u32(g.cursor);
        w.u32(g.event_mask);
        w.u8(g.paired_sync_state);
        w.zeros(3);
        w.bytes(mask);
        w.pad4();
    }
    let words = ((w.len() - REPLY_HEADER_LEN) / 4) as u32;
    w.patch_u32(4, words);
    w.into_inner()
}

/// Decode a complete `GetActiveGrabs` reply (header included).
pub fn decode_get_active_grabs_reply(
    bytes: &[u8],
    order: ByteOrder,
) -> Result<GetActiveGrabsReply, DecodeError> {
    let mut r = Reader::new(bytes, order, 0);
    let (count, sequence) = reply_header(&mut r, bytes.len())?;
    r.skip(24, "reply padding")?;
    let count = usize::from(count);
    r.check_count(count, 28, "active grabs")?;
    let mut grabs = Vec::with_capacity(count);
    for _ in 0..count {
        let at = r.offset();
        let device = r.u8("grab device")?;
        if device > GRAB_DEVICE_KEYBOARD {
            return Err(DecodeError::BadValue {
                offset: at,
                value: device.into(),
                what: "grab device",
            });
        }
        let level = r.u8("grab level")?;
        if !(GRAB_LEVEL_CORE..=GRAB_LEVEL_XI2).contains(&level) {
            return Err(DecodeError::BadValue {
                offset: at + 1,
                value: level.into(),
                what: "grab level",
            });
        }
        let flags = r.u8("grab flags")?;
        if flags & !GRAB_FLAGS_ALL != 0 {
            return Err(DecodeError::BadValue {
                offset: at + 2,
                value: flags.into(),
                what: "grab flags",
            });
        }
        let sync_state = r.u8("grab sync state")?;
        if sync_state > sync_state::THAW_OTHERS {
            return Err(DecodeError::BadValue {
                offset: at + 3,
                value: sync_state.into(),
                what: "grab sync state",
            });
        }
        let device_id = r.u16("grab device id")?;
        let mask_len = usize::from(r.u16("XI2 mask length")?);
        if mask_len > MAX_XI2_MASK || (mask_len > 0 && level != GRAB_LEVEL_XI2) {
            return Err(DecodeError::BadValue {
                offset: at + 6,
                value: mask_len as u32,
                what: "XI2 mask length",
            });
        }
        let window = r.u32("grab window")?;
        let confine_to = r.u32("confine-to window")?;
        let cursor = r.u32("grab cursor")?;
        let event_mask = r.u32("grab event mask")?;
        let paired_sync_state = r.u8("paired sync state")?;
        if paired_sync_state > sync_state::THAW_OTHERS {
            return Err(DecodeError::BadValue {
                offset: at + 24,
                value: paired_sync_state.into(),
                what: "paired sync state",
            });
        }
        r.skip(3, "grab padding")?;
        let xi2_mask = r.bytes(mask_len, "XI2 mask")?.to_vec();
        r.pad4("XI2 mask padding")?;
        grabs.push(ActiveGrab {
            device,
            level,
            flags,
            sync_state,
            paired_sync_state,
            device_id,
            window,
            confine_to,
            cursor,
            event_mask,
            xi2_mask,
        });
    }
    r.finish("GetActiveGrabs reply")?;
    Ok(GetActiveGrabsReply { sequence, grabs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> GetActiveGrabsReply {
        GetActiveGrabsReply {
            sequence: 7,
            grabs: vec![
                ActiveGrab {
                    device: GRAB_DEVICE_POINTER,
                    level: GRAB_LEVEL_CORE,
                    flags: GRAB_OWNER_EVENTS | GRAB_POINTER_ASYNC | GRAB_KEYBOARD_ASYNC,
                    sync_state: sync_state::THAWED,
                    paired_sync_state: sync_state::NOT_GRABBED,
                    device_id: 2,
                    window: 0x20_0004,
                    confine_to: 0,
                    cursor: 0x20_0009,
                    event_mask: 0x0c,
                    xi2_mask: Vec::new(),
                },
                ActiveGrab {
                    device: GRAB_DEVICE_KEYBOARD,
                    level: GRAB_LEVEL_XI2,
                    flags: GRAB_POINTER_ASYNC,
                    sync_state: sync_state::FROZEN_NO_EVENT,
                    paired_sync_state: sync_state::FREEZE_NEXT_EVENT,
                    device_id: 3,
                    window: 0x20_0004,
                    confine_to: 0,
                    cursor: 0,
                    event_mask: 0,
                    xi2_mask: vec![0xfc, 0x01, 0, 0, 0],
                },
            ],
        }
    }

    #[test]
    fn reply_round_trips_in_both_byte_orders() {
        for order in [ByteOrder::Lsb, ByteOrder::Msb] {
            let b = encode_get_active_grabs_reply(&sample(), order);
            assert_eq!(b.len(), 32 + 28 + 28 + 8);
            assert_eq!(b[1], 2);
            assert_eq!(decode_get_active_grabs_reply(&b, order).unwrap(), sample());
        }
        let empty = GetActiveGrabsReply {
            sequence: 1,
            grabs: Vec::new(),
        };
        let b = encode_get_active_grabs_reply(&empty, ByteOrder::Lsb);
        assert_eq!(b.len(), 32);
        assert_eq!(decode_get_active_grabs_reply(&b, ByteOrder::Lsb), Ok(empty));
    }

    #[test]
    fn undefined_values_are_refused() {
        let good = encode_get_active_grabs_reply(&sample(), ByteOrder::Lsb);
        for (at, v) in [(32, 2u8), (33, 0), (33, 4), (34, 0x80), (35, 8), (56, 9)] {
            let mut b = good.clone();
            b[at] = v;
            assert!(
                decode_get_active_grabs_reply(&b, ByteOrder::Lsb).is_err(),
                "byte {at} = {v} accepted"
            );
        }
        // A mask on a core grab, and a count beyond the bytes.
        let mut b = good.clone();
        b[38] = 4;
        assert!(decode_get_active_grabs_reply(&b, ByteOrder::Lsb).is_err());
        let mut b = good;
        b[1] = 9;
        assert!(decode_get_active_grabs_reply(&b, ByteOrder::Lsb).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_get_active_grabs_reply(&bytes, ByteOrder::Lsb);
            let _ = decode_get_active_grabs_reply(&bytes, ByteOrder::Msb);
        }
    }
}
