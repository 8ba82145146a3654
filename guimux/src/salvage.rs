//! Salvage after an engine failure. When handling a message panics (a bug in guimux), the
//! caller (hijack's loop) must not lose the application's connection. If the engine is still
//! on the connection's original server with identity maps — no replica, nothing held, no
//! internal client, no MIT-SHM conversion — nothing needs translating except sequence numbers,
//! so the engine's buffers are handed over to a [`PassThrough`]: app bytes flow to the server
//! unchanged, server messages flow to the app with their sequence number shifted by the
//! constant the engine had established (its sentinel and any internal requests). Bytes the
//! failed call had not consumed are recovered from [`InputMark`]s taken before the call, so a
//! request or message that was only partly received is neither lost nor duplicated.
//! Like the engine, this is pure: bytes in, bytes out.

use crate::engine::ServerId;
use crate::fields::ByteOrder;
use crate::framing;

/// Where the engine's buffer for one input side stood before a call (see
/// [`Engine::input_mark`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InputMark {
    /// Bytes buffered (an incomplete message) before the call.
    pub partial: usize,
    /// Bytes consumed as whole messages since the engine started.
    pub framed: u64,
}

/// Which input the failed call was handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Bytes from the application.
    App,
    /// Bytes from server `ServerId`.
    Server(ServerId),
}

/// The call that failed, as the caller saw it.
#[derive(Clone, Copy, Debug)]
pub struct FailedCall<'a> {
    /// Which input.
    pub side: Side,
    /// The engine's mark for that side, taken just before the call.
    pub mark: InputMark,
    /// The bytes passed to the call.
    pub data: &'a [u8],
    /// Whether the engine had been entered (false: the failure came before the call).
    pub entered: bool,
}

/// A connection relayed without the engine: requests unchanged, server messages with their
/// sequence numbers shifted by a constant.
#[derive(Debug)]
pub struct PassThrough {
    order: ByteOrder,
    /// `server_seq - app_seq` (mod 2^16).
    delta: u16,
    server: ServerId,
    server_in: Vec<u8>,
    pub(crate) app_out: Vec<u8>,
    pub(crate) server_out: Vec<u8>,
    /// Bytes relayed each way since the salvage.
    pub bytes_from_app: u64,
    /// Bytes relayed from the server since the salvage.
    pub bytes_from_server: u64,
}

impl PassThrough {
    /// A pass-through with `delta = server_seq - app_seq` (16 bit), for tests and salvage.
    pub fn new(order: ByteOrder, server: ServerId, delta: u16) -> Self {
        Self {
            order,
            delta,
            server,
            server_in: Vec::new(),
            app_out: Vec::new(),
            server_out: Vec::new(),
            bytes_from_app: 0,
            bytes_from_server: 0,
        }
    }

    /// The server this connection is relayed to.
    pub fn server(&self) -> ServerId {
        self.server
    }

    /// Bytes the application wrote: they go to the server unchanged.
    pub fn app_input(&mut self, data: &[u8]) {
        self.bytes_from_app += data.len() as u64;
        self.server_out.extend_from_slice(data);
    }

    /// Bytes from the server: whole messages go to the app, renumbered.
    pub fn server_input(&mut self, data: &[u8]) {
        self.bytes_from_server += data.len() as u64;
        self.server_in.extend_from_slice(data);
        let mut pos = 0;
        while let Some(len) = framing::server_message_len(&self.server_in[pos..], self.order) {
            let msg = &mut self.server_in[pos..pos + len];
            // KeymapNotify (11) carries no sequence number.
            if msg[0] & 0x7f != 11 {
                let seq = self.order.u16(msg, 2).wrapping_sub(self.delta);
                self.order.put_u16(msg, 2, seq);
            }
            self.app_out.extend_from_slice(msg);
            pos += len;
        }
        self.server_in.drain(..pos);
    }

    /// Bytes waiting for the app; the caller drains what it wrote.
    pub fn app_output(&mut self) -> &mut Vec<u8> {
        &mut self.app_out
    }

    /// Bytes waiting for the server; the caller drains what it wrote.
    pub fn server_output(&mut self) -> &mut Vec<u8> {
        &mut self.server_out
    }
}

/// The bytes of a failed call the engine had not consumed: `buffer` is what the engine still
/// holds for that side now.
pub(crate) fn leftover(call: &FailedCall<'_>, buffer: &[u8], framed_now: u64) -> (Vec<u8>, usize) {
    let d = call.data;
    if !call.entered {
        // Untouched: its buffer plus the new bytes.
        let mut v = buffer.to_vec();
        v.extend_from_slice(d);
        return (v, 0);
    }
    if buffer.len() == call.mark.partial + d.len() {
        // Appended but not yet taken for framing: all of it is still there.
        return (buffer.to_vec(), 0);
    }
    // Taken for framing (the buffer is gone with the panic): everything past what was framed
    // is recovered from `data`; an older partial message not completed by it is lost.
    let consumed = framed_now.saturating_sub(call.mark.framed) as usize;
    let remaining = (call.mark.partial + d.len()).saturating_sub(consumed);
    if remaining <= d.len() {
        let mut v = buffer.to_vec();
        v.extend_from_slice(&d[d.len() - remaining..]);
        (v, 0)
    } else {
        let mut v = buffer.to_vec();
        v.extend_from_slice(d);
        (v, remaining - d.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u16) -> Vec<u8> {
        let mut e = vec![0u8; 32];
        e[0] = 12; // Expose
        e[2..4].copy_from_slice(&seq.to_le_bytes());
        e
    }

    #[test]
    fn renumbers_split_messages() {
        let mut pt = PassThrough::new(ByteOrder::Little, 0, 1);
        let mut reply = vec![0u8; 40];
        reply[0] = 1;
        reply[2..4].copy_from_slice(&10u16.to_le_bytes());
        reply[4..8].copy_from_slice(&2u32.to_le_bytes());
        let mut stream = event(0);
        stream.extend(&reply);
        let mut keymap = vec![0u8; 32];
        keymap[0] = 11;
        keymap[2] = 0xab;
        stream.extend(&keymap);
        for chunk in stream.chunks(7) {
            pt.server_input(chunk);
        }
        let out = pt.app_output().clone();
        assert_eq!(out.len(), stream.len());
        assert_eq!(u16::from_le_bytes([out[2], out[3]]), 0xffff);
        assert_eq!(u16::from_le_bytes([out[34], out[35]]), 9);
        assert_eq!(out[74], 0xab, "KeymapNotify untouched");
        pt.app_input(&[1, 2, 3]);
        assert_eq!(pt.server_output(), &vec![1, 2, 3]);
    }

    #[test]
    fn leftover_cases() {
        let d = [9u8; 10];
        let mark = InputMark {
            partial: 3,
            framed: 100,
        };
        let call = |entered| FailedCall {
            side: Side::App,
            mark,
            data: &d,
            entered,
        };
        // Not entered: old buffer + data.
        assert_eq!(leftover(&call(false), &[1, 2, 3], 100).0.len(), 13);
        // Appended, not taken.
        assert_eq!(leftover(&call(true), &[0; 13], 100).0.len(), 13);
        // Taken, 8 bytes framed: 5 remain, all from data.
        assert_eq!(leftover(&call(true), &[], 108), (vec![9; 5], 0));
        // Taken, nothing framed: the old 3 bytes are lost.
        assert_eq!(leftover(&call(true), &[], 100), (vec![9; 10], 3));
    }
}
