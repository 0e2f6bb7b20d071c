//! The TLS handshake of an accepted connection, raced against the handler closing it and a
//! deadline.

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

/// Time a TLS client gets to finish its handshake, counted from accept (trickled bytes do not
/// extend it).
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a handshake ended, when it did not complete.
enum Unfinished {
    /// The handler closed the connection (refused it, or the shard is stopping).
    Closed,
    Failed(std::io::Error),
}

/// The TLS handshake of a connection the handler already knows, ended early if the handler
/// closes it or `deadline` passes. `None` when the connection is over.
pub(crate) async fn handshake<H: Handler>(
    shard: &Shard<H>,
    id: ConnId,
    tcp: TcpStream,
    cfg: Arc<rustls::ServerConfig>,
    deadline: Instant,
) -> Option<Stream> {
    let fd = tcp.as_raw_fd();
    let peer = tcp.peer_addr().map_or_else(|_| "?".to_string(), |a| a.to_string());
    // Checked first, so a refused connection costs no handshake work.
    let closed = async {
        futures_lite::future::poll_fn(|cx| poll_closed(shard, id, cx)).await;
        Err(Unfinished::Closed)
    };
    let timeout = async {
        glommio::timer::Timer::new(deadline.saturating_duration_since(Instant::now())).await;
        Err(Unfinished::Failed(std::io::Error::new(std::io::ErrorKind::TimedOut, "handshake timed out")))
    };
    let accept = async {
        let accepting = futures_rustls::TlsAcceptor::from(cfg).accept(tcp);
        futures_lite::pin!(accepting);
        // Each step of a handshake is the shard's work (see nudge.rs).
        let steps = std::future::poll_fn(|cx| {
            shard.activity.worked();
            accepting.as_mut().poll(cx)
        });
        steps.await.map_err(Unfinished::Failed)
    };
    // Kept until the end: the socket must stay open for `linger_close`.
    let running = futures_lite::future::or(closed, futures_lite::future::or(timeout, accept));
    futures_lite::pin!(running);
    let outcome = running.as_mut().await;
    let mut st = shard.state.borrow_mut();
    let st = &mut *st;
    match outcome {
        Ok(s) => {
            if let Some(der) = s.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                st.io.now = Instant::now();
                st.handler.on_client_cert(&mut st.io, id, der.as_ref());
            }
            return Some(Stream::Tls(Box::new(s)));
        }
        // Nothing can be said before a handshake (the handler's ERROR line is dropped): the
        // client sees the connection end, cleanly, as `linger_close` ends it.
        Err(Unfinished::Closed) => linger_close(fd, &mut st.scratch),
        Err(Unfinished::Failed(e)) => {
            log::debug!("TLS handshake with {peer} failed: {e}");
            st.io.stats.handshake_failures += 1;
            st.io.now = Instant::now();
            st.handler.on_disconnect(&mut st.io, id, Disconnect::Io(e));
        }
    }
    None
}
