//! A connection's byte stream: plain TCP, or TLS (rustls) over it, as the server side (an
//! accepted connection) or the client side (an outbound one), or a WebSocket over either
//! (ws.rs: lines in and out, framed). All are polled the same way by the connection task.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::io::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;

pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<futures_rustls::server::TlsStream<TcpStream>>),
    TlsClient(Box<futures_rustls::client::TlsStream<TcpStream>>),
    Ws(Box<crate::ws::Ws>),
}

impl Stream {
    pub(crate) fn fd(&self) -> RawFd {
        match self {
            Stream::Plain(s) => s.as_raw_fd(),
            Stream::Tls(s) => s.get_ref().0.as_raw_fd(),
            Stream::TlsClient(s) => s.get_ref().0.as_raw_fd(),
            Stream::Ws(s) => s.fd(),
        }
    }

    /// The peer's address, for logs.
    pub(crate) fn peer(&self) -> String {
        let addr = match self {
            Stream::Plain(s) => s.peer_addr(),
            Stream::Tls(s) => s.get_ref().0.peer_addr(),
            Stream::TlsClient(s) => s.get_ref().0.peer_addr(),
            Stream::Ws(_) => return "?".to_string(),
        };
        addr.map_or_else(|_| "?".to_string(), |a| a.to_string())
    }

    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
            Stream::TlsClient(s) => Pin::new(&mut **s).poll_read(cx, buf),
            Stream::Ws(s) => s.poll_read(cx, buf),
        }
    }

    pub(crate) fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
            Stream::TlsClient(s) => Pin::new(&mut **s).poll_write(cx, buf),
            Stream::Ws(s) => s.poll_write(cx, buf),
        }
    }

    /// TLS keeps encrypted records until flushed, a WebSocket its frames; plain TCP has nothing
    /// to flush.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Plain(_) => Poll::Ready(Ok(())),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
            Stream::TlsClient(s) => Pin::new(&mut **s).poll_flush(cx),
            Stream::Ws(s) => s.poll_flush(cx),
        }
    }

    /// Best effort, never waits: a WebSocket close frame, a TLS close_notify, before the
    /// socket closes.
    pub(crate) fn start_close(&mut self, cx: &mut Context<'_>) {
        match self {
            Stream::Plain(_) => {}
            Stream::Tls(s) => {
                s.get_mut().1.send_close_notify();
                let _ = Pin::new(&mut **s).poll_flush(cx);
            }
            Stream::TlsClient(s) => {
                s.get_mut().1.send_close_notify();
                let _ = Pin::new(&mut **s).poll_flush(cx);
            }
            Stream::Ws(s) => s.start_close(cx),
        }
    }
}
