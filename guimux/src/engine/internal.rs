//! guimux's own internal client (an x11rb connection used to capture and regenerate the
//! session on a server the app also talks to). In: its requests; out: the same requests,
//! numbered among the app's in that server's sequence, and its replies routed back to it
//! (see the server side), invisible to the app.

use super::*;

impl Engine {
    /// Start multiplexing an internal client onto server `s`. Its requests are numbered from 1
    /// (as a fresh x11rb connection created with `for_connected_stream` expects).
    pub fn start_internal(&mut self, s: ServerId) -> Result<(), EngineError> {
        if self.servers.get(s).and_then(|x| x.as_ref()).is_none() {
            return Err(EngineError::NoServer(s));
        }
        self.internal = Some(Internal {
            server: s,
            inbuf: Vec::new(),
            out: Vec::new(),
            seq: 0,
            last_sent: 0,
        });
        Ok(())
    }

    /// Whether the internal client has requests its server has not yet processed (no message
    /// numbered at or after its last request has come back).
    pub fn internal_outstanding(&self) -> bool {
        let Some(int) = self.internal.as_ref() else {
            return false;
        };
        self.servers
            .get(int.server)
            .and_then(|x| x.as_ref())
            .is_some_and(|srv| int.last_sent > srv.seen)
    }

    /// Stop the internal client (its unfinished request bytes are discarded).
    pub fn stop_internal(&mut self) {
        self.internal = None;
    }

    /// Feed bytes from the internal client.
    pub fn internal_input(&mut self, data: &[u8]) -> Result<(), EngineError> {
        let Some(server) = self.internal.as_ref().map(|i| i.server) else {
            return Ok(());
        };
        let app_before = self.app_seq_done_on(server);
        let mut pos = 0;
        let order = self.order;
        let Some(int) = self.internal.as_mut() else {
            return Ok(());
        };
        int.inbuf.extend_from_slice(data);
        let Some(srv) = self.servers.get_mut(int.server).and_then(|s| s.as_mut()) else {
            return Err(EngineError::NoServer(int.server));
        };
        while let Some((len, _)) = framing::request_len(&int.inbuf[pos..], order, 0)
            .map_err(EngineError::InternalFraming)?
        {
            int.seq += 1;
            srv.push_request(Origin::Internal, int.seq, app_before);
            int.last_sent = srv.sent;
            srv.out.extend_from_slice(&int.inbuf[pos..pos + len]);
            pos += len;
        }
        int.inbuf.drain(..pos);
        Ok(())
    }

    /// App-view seq to report in events caused while internal requests run on `s`: every app
    /// request sent before them is processed by then.
    pub(super) fn app_seq_done_on(&self, s: ServerId) -> u64 {
        self.servers
            .get(s)
            .and_then(|x| x.as_ref())
            .map(|x| x.app_done.max(x.app_sent))
            .unwrap_or(0)
            .max(self.app_done_global())
    }

    pub(super) fn app_done_global(&self) -> u64 {
        self.primary
            .and_then(|p| self.servers.get(p))
            .and_then(|x| x.as_ref())
            .map(|x| x.app_done)
            .unwrap_or(self.detached_app_done)
    }
}
