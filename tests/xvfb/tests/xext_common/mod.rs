//! Shared client helpers for the GUIEVICT extension tests: GUIEVICT requests over an x11rb
//! connection (native byte order) and over a raw socket speaking either byte order. Request
//! bytes flow out through `guievict-ext-proto` encoders; reply bytes come back and are decoded
//! by the same crate.
#![allow(dead_code)]

use anyhow::{anyhow, bail, Context, Result};
use guievict_ext_proto as proto;
use proto::ByteOrder;
use std::io::{IoSlice, Read, Write};
use std::os::unix::net::UnixStream;
use x11rb::connection::RequestConnection;
use x11rb::rust_connection::RustConnection;

/// GUIEVICT's major opcode on this connection.
pub fn major(conn: &RustConnection) -> Result<u8> {
    Ok(conn
        .extension_information(proto::EXTENSION_NAME)?
        .ok_or_else(|| anyhow!("GUIEVICT extension not present"))?
        .major_opcode)
}

/// Send raw request bytes that expect a reply; return the raw reply (or the X error).
pub fn raw_request(
    conn: &RustConnection,
    bytes: &[u8],
) -> Result<Vec<u8>, x11rb::errors::ReplyError> {
    let cookie = conn.send_request_with_reply::<x11rb::protocol::xproto::GetInputFocusReply>(
        &[IoSlice::new(bytes)],
        Vec::new(),
    )?;
    cookie.raw_reply()
}

/// QueryVersion over x11rb.
pub fn query_version(conn: &RustConnection) -> Result<proto::QueryVersionReply> {
    let req = proto::encode_query_own_version(major(conn)?, ByteOrder::native());
    let rep = raw_request(conn, &req)?;
    Ok(proto::decode_query_version_reply(
        &rep,
        ByteOrder::native(),
    )?)
}

/// One GetResources page over x11rb.
pub fn get_page(
    conn: &RustConnection,
    req: &proto::GetResourcesRequest,
) -> Result<proto::GetResourcesReply> {
    let bytes = proto::encode_get_resources(major(conn)?, req, ByteOrder::native());
    let rep = raw_request(conn, &bytes)?;
    Ok(proto::decode_get_resources_reply(
        &rep,
        ByteOrder::native(),
    )?)
}

/// All of the connection's resources (every page).
pub fn get_all(conn: &RustConnection, max_bytes: u32) -> Result<(proto::Resources, usize)> {
    let mut req = proto::GetResourcesRequest {
        max_bytes,
        ..proto::GetResourcesRequest::first()
    };
    let mut all = proto::Resources::default();
    let mut pages = 0;
    loop {
        let rep = get_page(conn, &req)?;
        pages += 1;
        let next = req.next_after(&rep);
        all.extend(rep.resources);
        match next {
            Some(n) => req = n,
            None => return Ok((all, pages)),
        }
        if pages > 100_000 {
            bail!("paging does not terminate");
        }
    }
}

/// A minimal X client on a raw socket, in either byte order (x11rb always uses the native one).
pub struct RawClient {
    sock: UnixStream,
    pub order: ByteOrder,
    pub id_base: u32,
    pub id_mask: u32,
    pub root: u32,
    pub root_depth: u8,
    pub seq: u16,
    pub major: u8,
    /// GUIEVICT's first event code.
    pub first_event: u8,
    /// Events read while waiting for replies, in order.
    pub events: Vec<Vec<u8>>,
}

/// What came back for one request.
#[derive(Debug)]
pub enum Answer {
    Reply(Vec<u8>),
    Error(u8),
    None,
}

impl RawClient {
    /// Connect to `display` (":N") without authorisation data.
    pub fn connect(display: &str, order: ByteOrder) -> Result<Self> {
        let n = display.trim_start_matches(':');
        let mut sock = UnixStream::connect(format!("/tmp/.X11-unix/X{n}"))?;
        sock.set_read_timeout(Some(std::time::Duration::from_secs(20)))?;
        let mut w = proto::Writer::new(order);
        w.u8(if order == ByteOrder::Msb { b'B' } else { b'l' });
        w.u8(0);
        w.u16(11);
        w.u16(0);
        w.u16(0);
        w.u16(0);
        w.u16(0);
        sock.write_all(&w.into_inner())?;
        let mut head = [0u8; 8];
        sock.read_exact(&mut head)?;
        if head[0] != 1 {
            bail!("connection refused (status {})", head[0]);
        }
        let mut r = proto::Reader::new(&head, order, 0);
        r.skip(6, "")?;
        let words = r.u16("setup length")? as usize;
        let mut body = vec![0u8; words * 4];
        sock.read_exact(&mut body)?;
        let mut r = proto::Reader::new(&body, order, 8);
        r.skip(4, "release")?;
        let id_base = r.u32("base")?;
        let id_mask = r.u32("mask")?;
        r.skip(4, "motion buffer")?;
        let vendor_len = r.u16("vendor len")? as usize;
        r.skip(2, "max req")?;
        let _screens = r.u8("screens")?;
        let nformats = r.u8("formats")? as usize;
        r.skip(10, "misc")?;
        r.skip(vendor_len, "vendor")?;
        r.pad4("vendor pad")?;
        r.skip(nformats * 8, "formats")?;
        let root = r.u32("root")?;
        r.skip(34, "screen")?;
        let root_depth = r.u8("root depth")?;
        let mut c = Self {
            sock,
            order,
            id_base,
            id_mask,
            root,
            root_depth,
            seq: 0,
            major: 0,
            first_event: 0,
            events: Vec::new(),
        };
        // QueryExtension "GUIEVICT".
        let name = proto::EXTENSION_NAME.as_bytes();
        let mut w = proto::Writer::new(order);
        w.u8(98);
        w.u8(0);
        w.u16((8 + name.len().div_ceil(4) * 4) as u16 / 4);
        w.u16(name.len() as u16);
        w.u16(0);
        w.bytes(name);
        w.pad4();
        match c.request(&w.into_inner(), true)? {
            Answer::Reply(rep) if rep[8] == 1 => {
                c.major = rep[9];
                c.first_event = rep[10];
            }
            other => bail!("GUIEVICT not present: {other:?}"),
        }
        Ok(c)
    }

    /// Send one request (its length field must be honest) and, if `wants_reply`, wait for the
    /// reply or error; otherwise collect an error if one arrives by the next round trip.
    pub fn request(&mut self, bytes: &[u8], wants_reply: bool) -> Result<Answer> {
        self.sock.write_all(bytes)?;
        self.seq = self.seq.wrapping_add(1);
        let my = self.seq;
        if !wants_reply {
            // GetInputFocus as a fence.
            let mut w = proto::Writer::new(self.order);
            w.u8(43);
            w.u8(0);
            w.u16(1);
            self.sock.write_all(&w.into_inner())?;
            self.seq = self.seq.wrapping_add(1);
            let fence = self.seq;
            let mut err = None;
            loop {
                let (seq, msg) = self.read_message()?;
                if msg[0] == 0 && seq == my {
                    err = Some(msg[1]);
                }
                if msg[0] == 1 && seq == fence {
                    return Ok(err.map_or(Answer::None, Answer::Error));
                }
                if msg[0] > 1 {
                    self.events.push(msg);
                }
            }
        }
        loop {
            let (seq, msg) = self.read_message()?;
            if msg[0] > 1 {
                self.events.push(msg);
                continue;
            }
            if seq != my {
                continue;
            }
            return Ok(match msg[0] {
                0 => Answer::Error(msg[1]),
                1 => Answer::Reply(msg),
                _ => continue,
            });
        }
    }

    fn read_message(&mut self) -> Result<(u16, Vec<u8>)> {
        let mut head = vec![0u8; 32];
        self.sock
            .read_exact(&mut head)
            .context("reading from server")?;
        let mut r = proto::Reader::new(&head, self.order, 0);
        r.skip(2, "")?;
        let seq = r.u16("seq")?;
        if head[0] == 1 {
            let words = r.u32("len")? as usize;
            let mut rest = vec![0u8; words * 4];
            self.sock.read_exact(&mut rest)?;
            head.extend_from_slice(&rest);
        }
        Ok((seq, head))
    }

    /// A fresh resource ID.
    pub fn id(&self, n: u32) -> u32 {
        self.id_base | (n & self.id_mask)
    }
}
