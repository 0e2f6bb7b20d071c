//! The handshakes of an accepted connection — TLS, then the WebSocket upgrade on a
//! `websocket` listener — each raced against the handler closing it and one deadline.

use std::future::Future;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::net::TcpStream;

use crate::conn::{ConnId, Disconnect};
use crate::conn_task::{linger_close, poll_closed};
use crate::runtime::Handler;
use crate::shard::Shard;
use crate::stream::Stream;

/// Time a TLS or WebSocket client gets to finish its handshakes, counted from accept (trickled
/// bytes do not extend it).
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a handshake ended, when it did not complete.
enum Unfinished {
    /// The handler closed the connection (refused it, or the shard is stopping).
    Closed,
    Failed(std::io::Error),
}

/// Runs `work` until it ends, the handler closes connection `id`, or `deadline` passes.
async fn bounded<H: Handler, T>(
    shard: &Shard<H>,
    id: ConnId,
    deadline: Instant,
    work: impl Future<Output = std::io::Result<T>>,
) -> Result<T, Unfinished> {
    // Checked first, so a refused connection costs no handshake work.
    let closed = async {
        futures_lite::future::poll_fn(|cx| poll_closed(shard, id, cx)).await;
        Err(Unfinished::Closed)
    };
    let timeout = async {
        glommio::timer::Timer::new(deadline.saturating_duration_since(Instant::now())).await;
        Err(Unfinished::Failed(std::io::Error::new(std::io::ErrorKind::TimedOut, "handshake timed out")))
    };
    let work = async {
        futures_lite::pin!(work);
        // Each step of a handshake is the shard's work (see nudge.rs).
        let steps = std::future::poll_fn(|cx| {
            shard.activity.worked();
            work.as_mut().poll(cx)
        });
        steps.await.map_err(Unfinished::Failed)
    };
    futures_lite::future::or(closed, futures_lite::future::or(timeout, work)).await
}

/// A handshake that did not complete: the connection is over.
fn unfinished<H: Handler>(shard: &Shard<H>, id: ConnId, fd: i32, websocket: bool, peer: &str, e: Unfinished) {
    let mut st = shard.state.borrow_mut();
    let st = &mut *st;
    match e {
        // Nothing can be said before a handshake (the handler's ERROR line is dropped): the
        // client sees the connection end, cleanly, as `linger_close` ends it.
        Unfinished::Closed => linger_close(fd, &mut st.scratch),
        Unfinished::Failed(e) => {
            if websocket {
                log::debug!("WebSocket upgrade of {peer} failed: {e}");
                st.io.stats.upgrade_failures += 1;
            } else {
                log::debug!("TLS handshake with {peer} failed: {e}");
                st.io.stats.handshake_failures += 1;
            }
            // What was written (a 403) reaches the client before our FIN.
            linger_close(fd, &mut st.scratch);
            st.io.now = Instant::now();
            st.handler.on_disconnect(&mut st.io, id, Disconnect::Io(e));
        }
    }
}

/// The TLS handshake of a connection the handler already knows, ended early if the handler
/// closes it or `deadline` passes. `None` when the connection is over.
pub(crate) async fn tls<H: Handler>(
    shard: &Shard<H>,
    id: ConnId,
    tcp: TcpStream,
    cfg: Arc<rustls::ServerConfig>,
    deadline: Instant,
) -> Option<Stream> {
    let fd = tcp.as_raw_fd();
    let peer = tcp.peer_addr().map_or_else(|_| "?".to_string(), |a| a.to_string());
    // Kept until the end: the socket must stay open for `linger_close`.
    let accepting = futures_rustls::TlsAcceptor::from(cfg).accept(tcp);
    futures_lite::pin!(accepting);
    match bounded(shard, id, deadline, accepting.as_mut()).await {
        Ok(s) => {
            if let Some(der) = s.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                let mut st = shard.state.borrow_mut();
                let st = &mut *st;
                st.io.now = Instant::now();
                st.handler.on_client_cert(&mut st.io, id, der.as_ref());
            }
            Some(Stream::Tls(Box::new(s)))
        }
        Err(e) => {
            unfinished(shard, id, fd, false, &peer, e);
            None
        }
    }
}

/// The WebSocket upgrade (after TLS, if any): the handler decides on the request
/// (`Handler::on_websocket`); refused, the client gets HTTP 403 and the connection ends.
pub(crate) async fn websocket<H: Handler>(
    shard: &Shard<H>,
    id: ConnId,
    stream: Stream,
    deadline: Instant,
) -> Option<Stream> {
    let fd = stream.fd();
    let peer = stream.peer();
    let answer = |req: &crate::ws::WsRequest<'_>| {
        let mut st = shard.state.borrow_mut();
        let st = &mut *st;
        st.io.now = Instant::now();
        st.handler.on_websocket(&mut st.io, id, req)
    };
    // Kept until the end: the socket must stay open for `linger_close`.
    let upgrading = crate::ws::accept(stream, answer);
    futures_lite::pin!(upgrading);
    match bounded(shard, id, deadline, upgrading.as_mut()).await {
        Ok(ws) => Some(Stream::Ws(Box::new(ws))),
        Err(e) => {
            unfinished(shard, id, fd, true, &peer, e);
            None
        }
    }
}
