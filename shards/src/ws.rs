//! WebSocket connections (RFC 6455) of a listener with `websocket`: the HTTP upgrade, after the
//! TLS handshake for `wss://`, and then the framing, so that the handler sees the same bytes
//! as from a TCP client. Each message the client sends reaches `Handler::on_data` as one line
//! (a trailing CR/LF dropped, CRLF added; either message type is taken); each line queued
//! with `Io::send` leaves as one message, of the type the handshake chose (text messages carry
//! invalid UTF-8 as U+FFFD). Pings, pongs and the closing handshake are tungstenite's.
//!
//! Such a connection never sleeps and is never written by the shard's writer: its bytes must
//! go through the framing, and tungstenite's state lives in its task, as rustls' does. A quiet
//! one sheds that state instead ([`Ws::shed`]): tungstenite keeps the capacity of its largest
//! read and write (the registration burst, a long message) for as long as the connection
//! lives, so once nothing is in flight it is dropped whole and made afresh at the next byte in
//! or out. [`Frames`] follows the frame boundaries of what was read, to know when that is.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use async_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use async_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use async_tungstenite::tungstenite::protocol::frame::FrameHeader;
use async_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use async_tungstenite::tungstenite::{Error as WsError, Message};
use async_tungstenite::WebSocketStream;
use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_lite::Stream as _;
use futures_sink::Sink;

use crate::stream::Stream;

/// A client's upgrade request, as the handler sees it.
#[derive(Debug)]
pub struct WsRequest<'a> {
    /// The `Origin` header (a browser always sends one), if any.
    pub origin: Option<&'a str>,
    /// The subprotocols the client offers (`Sec-WebSocket-Protocol`), its preferred first.
    pub subprotocols: &'a [&'a str],
}

/// The handler's answer to an upgrade request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsAnswer {
    /// Accepted, naming `subprotocol` in the answer (or none), exchanging binary messages or
    /// text ones.
    Accept { subprotocol: Option<&'static str>, binary: bool },
    /// Refused with HTTP 403 Forbidden.
    Refuse,
}

/// The longest HTTP upgrade request taken (headers included): browsers send 1–2 KiB; more
/// ends the connection instead of growing tungstenite's buffer for the whole deadline.
const MAX_REQUEST: usize = 16 * 1024;

/// The longest message taken. Up to it, a message longer than a line reaches the handler's
/// framer, which answers it as it answers an overlong TCP line; tungstenite holds a message
/// whole, so a longer one ends the connection.
const MAX_MESSAGE: usize = 64 * 1024;

fn config() -> WebSocketConfig {
    let mut c = WebSocketConfig::default();
    // tungstenite's defaults (128 KiB buffers, 64 MiB messages) are for a few busy sockets;
    // this is one of many mostly idle ones. Its read buffer is allocated at once and kept (until
    // a quiet connection sheds it, `Ws::shed`): 1 KiB holds the usual line, a longer message is
    // read in 1 KiB pieces (4 KiB cost 3 KB more per connection, measured). Its write buffer
    // gathers a turn's frames for one write (and keeps the capacity of its largest turn, up to
    // about this size, until shed).
    c.read_buffer_size = 1024;
    c.write_buffer_size = 16 * 1024;
    c.max_message_size = Some(MAX_MESSAGE);
    c.max_frame_size = Some(MAX_MESSAGE);
    c
}

/// What runs under the WebSocket framing: the TCP or TLS stream, with a budget of bytes for
/// the upgrade request (lifted once the handshake is done), and once upgraded the frame
/// boundaries of what it has read.
pub(crate) struct Under {
    stream: Stream,
    budget: usize,
    frames: Option<Frames>,
}

/// The longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
const MAX_HEADER: usize = 14;

/// Where the bytes read so far stand in the client's frames (RFC 6455 section 5.2), read with
/// tungstenite's own header parser: enough to tell when tungstenite holds nothing of a message
/// yet to come, without a copy (a header split between two reads keeps its first bytes here).
#[derive(Default)]
struct Frames {
    /// The start of a header not yet whole.
    head: [u8; MAX_HEADER],
    head_len: u8,
    /// Payload bytes of the current frame still to come.
    left: u64,
    /// The last data frame was not final: a fragmented message is being received.
    fragmented: bool,
    /// A close frame, or a header tungstenite refuses: the connection ends, never clean again.
    over: bool,
}

impl Frames {
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.over {
            if self.left > 0 {
                let k = (self.left.min(data.len() as u64)) as usize;
                self.left -= k as u64;
                data = &data[k..];
                continue;
            }
            let had = self.head_len as usize;
            let k = (self.head.len() - had).min(data.len());
            self.head[had..had + k].copy_from_slice(&data[..k]);
            let mut cursor = io::Cursor::new(&self.head[..had + k]);
            match FrameHeader::parse(&mut cursor) {
                Ok(Some((header, len))) => {
                    let used = cursor.position() as usize - had;
                    data = &data[used..];
                    self.head_len = 0;
                    self.left = len;
                    match header.opcode {
                        OpCode::Data(Data::Text | Data::Binary | Data::Continue) => self.fragmented = !header.is_final,
                        OpCode::Control(Control::Ping | Control::Pong) => {}
                        _ => self.over = true,
                    }
                }
                Ok(None) => {
                    self.head_len = (had + k) as u8;
                    data = &data[k..];
                }
                Err(_) => self.over = true,
            }
        }
    }

    /// Every byte read belongs to a whole frame, and no message is half received.
    fn clean(&self) -> bool {
        !self.over && self.left == 0 && self.head_len == 0 && !self.fragmented
    }
}

impl AsyncRead for Under {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if me.budget == 0 {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, "WebSocket upgrade request too long")));
        }
        let max = buf.len().min(me.budget);
        let n = std::task::ready!(me.stream.poll_read(cx, &mut buf[..max]))?;
        me.budget -= n;
        if let Some(frames) = &mut me.frames {
            frames.feed(&buf[..n]);
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Under {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().stream.poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stream.poll_flush(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stream.poll_flush(cx)
    }
}

/// An upgraded connection: tungstenite's state, the message type chosen, and what the last
/// read could not hand over.
pub(crate) struct Ws {
    framing: Framing,
    binary: bool,
    /// The part of a message (with its CRLF) that did not fit the reader's buffer.
    rest: Vec<u8>,
    at: usize,
    /// An error met after some input was handed over, for the next read.
    error: Option<io::Error>,
}

enum Framing {
    /// tungstenite's state: its codec with its read and write buffers, its wakers (boxed, so
    /// that a shed connection does not keep its room).
    Live(Box<WebSocketStream<Under>>),
    /// Shed while quiet: only the stream under it.
    Shed(Under),
    /// Only while one becomes the other.
    Moving,
}

/// A fresh tungstenite over `under`, `part` read already. async-tungstenite has no handshake
/// to run here and is ready at the first poll.
fn resume(under: Under, part: Vec<u8>, cx: &mut Context<'_>) -> Box<WebSocketStream<Under>> {
    let start = WebSocketStream::from_partially_read(under, part, Role::Server, Some(config()));
    futures_lite::pin!(start);
    match start.poll(cx) {
        Poll::Ready(ws) => Box::new(ws),
        Poll::Pending => unreachable!("async-tungstenite's handshake-less start is ready at once"),
    }
}

/// The upgrade handshake on `stream` (TCP, or TLS already established): `answer` decides on
/// the request. Refused, the client gets 403 and the error is `Err`.
pub(crate) async fn accept(stream: Stream, answer: impl FnOnce(&WsRequest<'_>) -> WsAnswer + Unpin) -> io::Result<Ws> {
    let binary = Cell::new(false);
    // The signature is tungstenite's `Callback`.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        let origin = req.headers().get("origin").and_then(|v| v.to_str().ok());
        let offered: Vec<&str> = req
            .headers()
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        match answer(&WsRequest { origin, subprotocols: &offered }) {
            WsAnswer::Accept { subprotocol, binary: b } => {
                if let Some(p) = subprotocol {
                    resp.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static(p));
                }
                binary.set(b);
                Ok(resp)
            }
            WsAnswer::Refuse => {
                let mut refusal = ErrorResponse::new(Some("Origin not allowed\n".to_string()));
                *refusal.status_mut() = StatusCode::FORBIDDEN;
                Err(refusal)
            }
        }
    };
    let under = Under { stream, budget: MAX_REQUEST, frames: None };
    let mut inner =
        async_tungstenite::accept_hdr_async_with_config(under, callback, Some(config())).await.map_err(io_error)?;
    // tungstenite refuses a request followed by anything (`JunkAfterRequest`): the frames
    // start at the next byte read.
    let under = inner.get_mut();
    under.budget = usize::MAX;
    under.frames = Some(Frames::default());
    Ok(Ws { framing: Framing::Live(Box::new(inner)), binary: binary.get(), rest: Vec::new(), at: 0, error: None })
}

fn io_error(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        e => io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
    }
}

/// A line without its end (`\n`, `\r\n`, or stray CRs before it).
fn trim_eol(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\r' | b'\n') {
        end -= 1;
    }
    &line[..end]
}

impl Ws {
    pub(crate) fn fd(&self) -> RawFd {
        self.under().stream.fd()
    }

    fn under(&self) -> &Under {
        match &self.framing {
            Framing::Live(ws) => ws.get_ref(),
            Framing::Shed(under) => under,
            Framing::Moving => unreachable!("a Ws is never seen moving"),
        }
    }

    /// tungstenite, made afresh if it was shed (with `part`, bytes read meanwhile).
    fn live(&mut self, part: Vec<u8>, cx: &mut Context<'_>) -> Pin<&mut WebSocketStream<Under>> {
        if let Framing::Shed(_) = self.framing {
            let Framing::Shed(under) = std::mem::replace(&mut self.framing, Framing::Moving) else { unreachable!() };
            self.framing = Framing::Live(resume(under, part, cx));
        }
        match &mut self.framing {
            Framing::Live(ws) => Pin::new(&mut **ws),
            _ => unreachable!("just made live"),
        }
    }

    /// Whether tungstenite's state is shed now.
    pub(crate) fn is_shed(&self) -> bool {
        matches!(self.framing, Framing::Shed(_))
    }

    /// For a quiet connection, after a read found nothing: drops tungstenite's state (its
    /// buffers at the size of their largest use, its wakers) if nothing is in flight — no part
    /// of a frame or of a fragmented message read, nothing left to write (a pong included),
    /// the connection not closing. The next byte in or out makes it afresh.
    pub(crate) fn shed(&mut self, cx: &mut Context<'_>) {
        let Framing::Live(ws) = &mut self.framing else { return };
        if !ws.get_ref().frames.as_ref().is_some_and(Frames::clean) {
            return;
        }
        if !matches!(Pin::new(&mut **ws).poll_flush(cx), Poll::Ready(Ok(()))) {
            return;
        }
        let Framing::Live(ws) = std::mem::replace(&mut self.framing, Framing::Moving) else { unreachable!() };
        self.framing = Framing::Shed(ws.into_inner());
    }

    /// Whole messages, each as a line with CRLF, as many as fit; `Ok(0)` once the connection is
    /// over (the client's close, after tungstenite answered it).
    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut n = 0;
        loop {
            if self.at < self.rest.len() {
                let k = (self.rest.len() - self.at).min(buf.len() - n);
                buf[n..n + k].copy_from_slice(&self.rest[self.at..self.at + k]);
                n += k;
                self.at += k;
                if self.at == self.rest.len() {
                    self.rest = Vec::new();
                    self.at = 0;
                }
            }
            if n == buf.len() {
                return Poll::Ready(Ok(n));
            }
            if self.error.is_some() {
                return Poll::Ready(if n > 0 { Ok(n) } else { Err(self.error.take().unwrap()) });
            }
            let part = match &mut self.framing {
                // Shed: wait on the socket itself; what comes goes to a fresh tungstenite (an end
                // of stream too, so that it is reported as before).
                Framing::Shed(under) => match Pin::new(under).poll_read(cx, &mut buf[n..]) {
                    Poll::Pending if n > 0 => return Poll::Ready(Ok(n)),
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) if n > 0 => {
                        self.error = Some(e);
                        return Poll::Ready(Ok(n));
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Ready(Ok(k)) => buf[n..n + k].to_vec(),
                },
                _ => Vec::new(),
            };
            let msg = match self.live(part, cx).poll_next(cx) {
                Poll::Pending if n > 0 => return Poll::Ready(Ok(n)),
                Poll::Pending => return Poll::Pending,
                // Fused: asked again, it says the same (so `Ok(0)` comes next time).
                Poll::Ready(None) => return Poll::Ready(Ok(n)),
                Poll::Ready(Some(Err(e))) => {
                    self.error = Some(io_error(e));
                    continue;
                }
                Poll::Ready(Some(Ok(m))) => m,
            };
            let line = match &msg {
                Message::Text(t) => trim_eol(t.as_bytes()),
                Message::Binary(b) => trim_eol(b),
                // Pings are answered and a close is answered, by tungstenite, on the next read.
                _ => continue,
            };
            if line.is_empty() {
                continue;
            }
            if line.len() + 2 <= buf.len() - n {
                buf[n..n + line.len()].copy_from_slice(line);
                buf[n + line.len()..n + line.len() + 2].copy_from_slice(b"\r\n");
                n += line.len() + 2;
            } else {
                let mut rest = Vec::with_capacity(line.len() + 2);
                rest.extend_from_slice(line);
                rest.extend_from_slice(b"\r\n");
                self.rest = rest;
            }
        }
    }

    /// Takes whole lines from `buf`, each as one message (a final piece without `\n` as one
    /// too); the count taken, or `Pending` while tungstenite cannot take more.
    pub(crate) fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut used = 0;
        while used < buf.len() {
            match self.live(Vec::new(), cx).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(io_error(e))),
                Poll::Pending => break,
            }
            let rest = &buf[used..];
            let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
            used += end;
            let line = trim_eol(&rest[..end]);
            if line.is_empty() {
                continue;
            }
            let msg = if self.binary {
                Message::binary(line.to_vec())
            } else {
                Message::text(String::from_utf8_lossy(line).into_owned())
            };
            if let Err(e) = self.live(Vec::new(), cx).start_send(msg) {
                return Poll::Ready(Err(io_error(e)));
            }
        }
        if used == 0 {
            Poll::Pending
        } else {
            Poll::Ready(Ok(used))
        }
    }

    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.framing {
            Framing::Live(ws) => Pin::new(&mut **ws).poll_flush(cx).map_err(io_error),
            // Nothing written since it was shed.
            _ => Poll::Ready(Ok(())),
        }
    }

    /// Best effort, never waits: a close frame (1000, normal), then TLS' close_notify.
    pub(crate) fn start_close(&mut self, cx: &mut Context<'_>) {
        let mut inner = self.live(Vec::new(), cx);
        if let Poll::Ready(Ok(())) = inner.as_mut().poll_ready(cx) {
            let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
            let _ = inner.as_mut().start_send(Message::Close(Some(frame)));
        }
        let _ = inner.as_mut().poll_flush(cx);
        inner.get_mut().get_mut().stream.start_close(cx);
    }
}

#[cfg(test)]
mod tests {
    use super::{trim_eol, Frames};
    use async_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use async_tungstenite::tungstenite::protocol::frame::Frame;

    fn wire(payload: &[u8], opcode: OpCode, is_final: bool) -> Vec<u8> {
        masked(Frame::message(payload.to_vec(), opcode, is_final))
    }

    fn masked(mut frame: Frame) -> Vec<u8> {
        frame.header_mut().mask = Some([1, 2, 3, 4]);
        let mut out = Vec::new();
        frame.format(&mut out).unwrap();
        out
    }

    const TEXT: OpCode = OpCode::Data(Data::Text);

    #[test]
    fn frames_are_clean_only_between_whole_messages() {
        // Short, 16-bit and 64-bit lengths, fed a byte at a time and whole.
        for len in [0, 5, 125, 126, 300, 65_535, 70_000] {
            let bytes = wire(&vec![b'x'; len], TEXT, true);
            let mut f = Frames::default();
            for (i, b) in bytes.iter().enumerate() {
                assert!(i == 0 || !f.clean(), "clean inside a frame of {len} at {i}");
                f.feed(std::slice::from_ref(b));
            }
            assert!(f.clean(), "a whole frame of {len}");
            let mut g = Frames::default();
            g.feed(&bytes);
            assert!(g.clean());
        }
        // Several frames in one read, the last cut.
        let mut bytes = wire(b"PING a", TEXT, true);
        bytes.extend(wire(b"PING b", TEXT, true));
        let cut = bytes.len() - 3;
        let mut f = Frames::default();
        f.feed(&bytes[..cut]);
        assert!(!f.clean());
        f.feed(&bytes[cut..]);
        assert!(f.clean());
    }

    #[test]
    fn a_fragmented_message_is_unfinished_until_its_final_frame() {
        let mut f = Frames::default();
        f.feed(&wire(b"PING :a", TEXT, false));
        assert!(!f.clean());
        // Control frames in between do not finish it.
        f.feed(&masked(Frame::ping(b"p".to_vec())));
        assert!(!f.clean());
        f.feed(&wire(b"b", OpCode::Data(Data::Continue), false));
        assert!(!f.clean());
        f.feed(&wire(b"c", OpCode::Data(Data::Continue), true));
        assert!(f.clean());
        f.feed(&masked(Frame::pong(b"p".to_vec())));
        assert!(f.clean());
    }

    #[test]
    fn a_close_frame_is_never_clean_again() {
        let mut f = Frames::default();
        f.feed(&masked(Frame::close(None)));
        assert!(!f.clean());
        f.feed(&wire(b"PING x", TEXT, true));
        assert!(!f.clean());
    }

    #[test]
    fn line_ends_are_dropped_and_nothing_else() {
        assert_eq!(trim_eol(b"PING x\r\n"), b"PING x");
        assert_eq!(trim_eol(b"PING x\n"), b"PING x");
        assert_eq!(trim_eol(b"PING x"), b"PING x");
        assert_eq!(trim_eol(b"PING x\r\r\n"), b"PING x");
        assert_eq!(trim_eol(b"\r\n"), b"");
        assert_eq!(trim_eol(b"a\rb"), b"a\rb");
    }
}
