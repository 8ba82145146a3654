//! An internal client as the capture sees it: requests and replies flow through to the wrapped
//! x11rb connection unchanged; only two answers are the wrapper's own. Its setup carries the
//! app's resource-ID range once the view has learned it ([`Viewed::fix_setup`]; until then the
//! server's), so that the view and the capture share one internal client and their first
//! requests one round trip (issue 15). Extension placements known from an earlier connection to
//! the same server ([`Viewed::known`]) are answered without a QueryExtension round trip.

use std::collections::HashMap;
use std::io::IoSlice;
use std::sync::OnceLock;
use x11rb::connection::{Connection, DiscardMode, RequestConnection, RequestKind};
use x11rb::cookie::{Cookie, CookieWithFds, VoidCookie};
use x11rb::errors::{ConnectionError, ParseError, ReplyOrIdError};
use x11rb::protocol::xproto::Setup;
use x11rb::protocol::Event;
use x11rb::utils::RawFdContainer;
use x11rb::x11_utils::{ExtInfoProvider, ExtensionInformation, TryParse, TryParseFd, X11Error};
use x11rb_protocol::{RawEventAndSeqNumber, SequenceNumber};

/// Extension placements of one server by name; `None`: the server does not have it.
pub type KnownExtensions = HashMap<String, Option<ExtensionInformation>>;

/// A connection `C` with its own setup and, optionally, extension placements known in advance.
pub struct Viewed<'c, C> {
    inner: &'c C,
    initial: Setup,
    fixed: OnceLock<Setup>,
    known: Option<KnownExtensions>,
}

impl<'c, C: Connection> Viewed<'c, C> {
    /// `inner` with `setup` (until [`Viewed::fix_setup`]) and the placements `known` (names
    /// not in it are asked of the server).
    pub fn new(inner: &'c C, setup: Setup, known: Option<KnownExtensions>) -> Self {
        Self {
            inner,
            initial: setup,
            fixed: OnceLock::new(),
            known,
        }
    }

    /// From now on the setup is `setup` (once; later calls change nothing).
    pub fn fix_setup(&self, setup: Setup) {
        let _ = self.fixed.set(setup);
    }

    fn known_info(&self, name: &str) -> Option<Option<ExtensionInformation>> {
        self.known.as_ref()?.get(name).copied()
    }
}

/// Known placements as x11rb's error parser asks for them.
struct Provider<'a>(&'a KnownExtensions);

impl Provider<'_> {
    fn present(&self) -> impl Iterator<Item = (&str, ExtensionInformation)> {
        self.0
            .iter()
            .filter_map(|(n, i)| i.map(|i| (n.as_str(), i)))
    }
}

impl ExtInfoProvider for Provider<'_> {
    fn get_from_major_opcode(&self, major_opcode: u8) -> Option<(&str, ExtensionInformation)> {
        self.present().find(|(_, i)| i.major_opcode == major_opcode)
    }

    fn get_from_event_code(&self, event_code: u8) -> Option<(&str, ExtensionInformation)> {
        self.present()
            .filter(|(_, i)| i.first_event <= event_code)
            .max_by_key(|(_, i)| i.first_event)
    }

    fn get_from_error_code(&self, error_code: u8) -> Option<(&str, ExtensionInformation)> {
        self.present()
            .filter(|(_, i)| i.first_error <= error_code)
            .max_by_key(|(_, i)| i.first_error)
    }
}

/// The sequence number of a cookie of the inner connection, which then stays the caller's (its
/// reply is not discarded).
macro_rules! take_seq {
    ($c:expr) => {{
        let c = $c;
        let seq = c.sequence_number();
        // The cookie holds a reference and a number; forgetting it only skips its Drop, which
        // would discard the reply the wrapper's cookie now stands for.
        std::mem::forget(c);
        seq
    }};
}

impl<C: Connection> RequestConnection for Viewed<'_, C> {
    type Buf = C::Buf;

    fn send_request_with_reply<R>(
        &self,
        bufs: &[IoSlice<'_>],
        fds: Vec<RawFdContainer>,
    ) -> Result<Cookie<'_, Self, R>, ConnectionError>
    where
        R: TryParse,
    {
        let seq = take_seq!(self.inner.send_request_with_reply::<R>(bufs, fds)?);
        Ok(Cookie::new(self, seq))
    }

    fn send_request_with_reply_with_fds<R>(
        &self,
        bufs: &[IoSlice<'_>],
        fds: Vec<RawFdContainer>,
    ) -> Result<CookieWithFds<'_, Self, R>, ConnectionError>
    where
        R: TryParseFd,
    {
        let seq = take_seq!(self
            .inner
            .send_request_with_reply_with_fds::<R>(bufs, fds)?);
        Ok(CookieWithFds::new(self, seq))
    }

    fn send_request_without_reply(
        &self,
        bufs: &[IoSlice<'_>],
        fds: Vec<RawFdContainer>,
    ) -> Result<VoidCookie<'_, Self>, ConnectionError> {
        let seq = take_seq!(self.inner.send_request_without_reply(bufs, fds)?);
        Ok(VoidCookie::new(self, seq))
    }

    fn discard_reply(&self, sequence: SequenceNumber, kind: RequestKind, mode: DiscardMode) {
        self.inner.discard_reply(sequence, kind, mode)
    }

    fn prefetch_extension_information(
        &self,
        extension_name: &'static str,
    ) -> Result<(), ConnectionError> {
        match self.known_info(extension_name) {
            Some(_) => Ok(()),
            None => self.inner.prefetch_extension_information(extension_name),
        }
    }

    fn extension_information(
        &self,
        extension_name: &'static str,
    ) -> Result<Option<ExtensionInformation>, ConnectionError> {
        match self.known_info(extension_name) {
            Some(info) => Ok(info),
            None => self.inner.extension_information(extension_name),
        }
    }

    fn wait_for_reply_or_raw_error(
        &self,
        sequence: SequenceNumber,
    ) -> Result<x11rb::connection::ReplyOrError<Self::Buf>, ConnectionError> {
        self.inner.wait_for_reply_or_raw_error(sequence)
    }

    fn wait_for_reply(
        &self,
        sequence: SequenceNumber,
    ) -> Result<Option<Self::Buf>, ConnectionError> {
        self.inner.wait_for_reply(sequence)
    }

    fn wait_for_reply_with_fds_raw(
        &self,
        sequence: SequenceNumber,
    ) -> Result<
        x11rb::connection::ReplyOrError<x11rb::connection::BufWithFds<Self::Buf>, Self::Buf>,
        ConnectionError,
    > {
        self.inner.wait_for_reply_with_fds_raw(sequence)
    }

    fn check_for_raw_error(
        &self,
        sequence: SequenceNumber,
    ) -> Result<Option<Self::Buf>, ConnectionError> {
        self.inner.check_for_raw_error(sequence)
    }

    fn prefetch_maximum_request_bytes(&self) {
        self.inner.prefetch_maximum_request_bytes()
    }

    fn maximum_request_bytes(&self) -> usize {
        self.inner.maximum_request_bytes()
    }

    fn parse_error(&self, error: &[u8]) -> Result<X11Error, ParseError> {
        // The inner connection never asked for the known extensions: their errors are named
        // from the known placements, as the inner connection would name them had it asked.
        match &self.known {
            Some(k) => X11Error::try_parse(error, &Provider(k)),
            None => self.inner.parse_error(error),
        }
    }

    fn parse_event(&self, event: &[u8]) -> Result<Event, ParseError> {
        self.inner.parse_event(event)
    }
}

impl<C: Connection> Connection for Viewed<'_, C> {
    fn wait_for_raw_event_with_sequence(
        &self,
    ) -> Result<RawEventAndSeqNumber<Self::Buf>, ConnectionError> {
        self.inner.wait_for_raw_event_with_sequence()
    }

    fn poll_for_raw_event_with_sequence(
        &self,
    ) -> Result<Option<RawEventAndSeqNumber<Self::Buf>>, ConnectionError> {
        self.inner.poll_for_raw_event_with_sequence()
    }

    fn flush(&self) -> Result<(), ConnectionError> {
        self.inner.flush()
    }

    fn setup(&self) -> &Setup {
        self.fixed.get().unwrap_or(&self.initial)
    }

    fn generate_id(&self) -> Result<u32, ReplyOrIdError> {
        self.inner.generate_id()
    }
}
