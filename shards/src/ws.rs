//! WebSocket connections (RFC 6455) of a listener with `websocket`: the HTTP upgrade, after the
//! TLS handshake for `wss://`, and then the framing, so that the handler sees the same bytes
//! as from a TCP client. Each message the client sends reaches `Handler::on_data` as one line
//! (a trailing CR/LF dropped, CRLF added; either message type is taken); each line queued
//! with `Io::send` leaves as one message, of the type the handshake chose (text messages carry
//! invalid UTF-8 as U+FFFD). Pings, pongs and the closing handshake are tungstenite's.
//!
//! Such a connection never sleeps and is never written by the shard's writer: its bytes must
//! go through the framing, and tungstenite's state lives in its task, as rustls' does.

use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use async_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
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
    // this is one of many mostly idle ones. Its read buffer is allocated at once and kept: 1 KiB
    // holds the usual line, a longer message is read in 1 KiB pieces (4 KiB cost 3 KB more per
    // connection, measured). Its write buffer gathers a turn's frames for one write (and keeps
    // the capacity of its largest turn, up to about this size).
    c.read_buffer_size = 1024;
    c.write_buffer_size = 16 * 1024;
    c.max_message_size = Some(MAX_MESSAGE);
    c.max_frame_size = Some(MAX_MESSAGE);
    c
}

/// What runs under the WebSocket framing: the TCP or TLS stream, with a budget of bytes for
/// the upgrade request (lifted once the handshake is done).
pub(crate) struct Under {
    stream: Stream,
    budget: usize,
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
    inner: WebSocketStream<Under>,
    binary: bool,
    /// The part of a message (with its CRLF) that did not fit the reader's buffer.
    rest: Vec<u8>,
    at: usize,
    /// An error met after some input was handed over, for the next read.
    error: Option<io::Error>,
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
    let under = Under { stream, budget: MAX_REQUEST };
    let mut inner =
        async_tungstenite::accept_hdr_async_with_config(under, callback, Some(config())).await.map_err(io_error)?;
    inner.get_mut().budget = usize::MAX;
    Ok(Ws { inner, binary: binary.get(), rest: Vec::new(), at: 0, error: None })
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
        self.inner.get_ref().stream.fd()
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
            let msg = match Pin::new(&mut self.inner).poll_next(cx) {
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
            match Pin::new(&mut self.inner).poll_ready(cx) {
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
            if let Err(e) = Pin::new(&mut self.inner).start_send(msg) {
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
        Pin::new(&mut self.inner).poll_flush(cx).map_err(io_error)
    }

    /// Best effort, never waits: a close frame (1000, normal), then TLS' close_notify.
    pub(crate) fn start_close(&mut self, cx: &mut Context<'_>) {
        let mut inner = Pin::new(&mut self.inner);
        if let Poll::Ready(Ok(())) = inner.as_mut().poll_ready(cx) {
            let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
            let _ = inner.as_mut().start_send(Message::Close(Some(frame)));
        }
        let _ = inner.as_mut().poll_flush(cx);
        self.inner.get_mut().stream.start_close(cx);
    }
}

#[cfg(test)]
mod tests {
    use super::trim_eol;

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
