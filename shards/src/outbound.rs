//! Outbound connections (for server links): the shard opens the TCP connections its handler
//! asks for with [`Io::connect`](crate::Io::connect) (or TLS over one, with
//! [`Io::connect_tls`](crate::Io::connect_tls)), tells the handler how each attempt went, and
//! serves an established one like an accepted one.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use glommio::net::TcpStream;

use crate::conn::{ConnId, ConnInfo, Origin};
use crate::conn_task::{ended, poll_closed, poll_connection, take_place};
use crate::runtime::Handler;
use crate::shard::Shard;
use crate::stream::Stream;

/// A connection asked for: its slot exists already, under this id.
pub(crate) struct Connect {
    pub(crate) conn: ConnId,
    pub(crate) addr: SocketAddr,
    pub(crate) timeout: Duration,
    /// TLS over the connection (the client side), and the name the server is asked for.
    pub(crate) tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

/// Starts each connection asked for on its own task.
pub(crate) async fn connector<H: Handler>(shard: Rc<Shard<H>>) {
    let notify = shard.state.borrow().io.connects_notify.clone();
    loop {
        notify.wait().await;
        shard.activity.worked();
        let asked = std::mem::take(&mut shard.state.borrow_mut().io.connects);
        for ask in asked {
            glommio::spawn_local(outbound(shard.clone(), ask)).detach();
        }
    }
}

/// The task of an outbound connection: a place in the capacity count, the connect (and the
/// TLS handshake), the handler's `on_connected`, then the same poll as an accepted connection.
async fn outbound<H: Handler>(shard: Rc<Shard<H>>, ask: Connect) {
    let id = ask.conn;
    if !take_place(&shard) {
        report(&shard, id, Err(io::Error::other("connection capacity reached")));
        shard.state.borrow_mut().io.conns.remove(id);
        return;
    }
    let connect = async { TcpStream::connect_timeout(ask.addr, ask.timeout).await.map_err(io::Error::from) };
    let tcp = match unless_closed(&shard, id, connect).await {
        Some(Ok(tcp)) => tcp,
        Some(Err(e)) => {
            report(&shard, id, Err(e));
            return ended(&shard, id);
        }
        None => return ended(&shard, id),
    };
    let _ = tcp.set_nodelay(true);
    let info = match (tcp.peer_addr(), tcp.local_addr()) {
        (Ok(peer), Ok(local)) => ConnInfo { peer, local, origin: Origin::Outbound },
        (Err(e), _) | (_, Err(e)) => {
            report(&shard, id, Err(e.into()));
            return ended(&shard, id);
        }
    };
    let mut stream = match ask.tls {
        None => Stream::Plain(tcp),
        // Boxed, as an accepted connection's handshake is: its state would size the task.
        Some((cfg, name)) => match Box::pin(handshake(&shard, id, tcp, cfg, name, ask.timeout)).await {
            Some(Ok(s)) => Stream::TlsClient(Box::new(s)),
            Some(Err(e)) => {
                shard.state.borrow_mut().io.stats.handshake_failures += 1;
                report(&shard, id, Err(e));
                return ended(&shard, id);
            }
            None => return ended(&shard, id),
        },
    };
    report(&shard, id, Ok(info));
    // Outbound connections never sleep (`Slot::sleeper` stays false): the poll ends when closed.
    futures_lite::future::poll_fn(|cx| poll_connection(&shard, cx, &mut stream, id)).await;
    ended(&shard, id);
}

/// The client side of a TLS handshake, given up after `timeout`. `None` if the handler closes
/// the connection first.
async fn handshake<H: Handler>(
    shard: &Shard<H>,
    id: ConnId,
    tcp: TcpStream,
    cfg: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
    timeout: Duration,
) -> Option<io::Result<futures_rustls::client::TlsStream<TcpStream>>> {
    let timer = async {
        glommio::timer::Timer::new(timeout).await;
        Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))
    };
    let connect = futures_rustls::TlsConnector::from(cfg).connect(name, tcp);
    unless_closed(shard, id, futures_lite::future::or(timer, connect)).await
}

/// `work`, given up if the handler closes the connection first (`None`).
async fn unless_closed<H: Handler, T>(shard: &Shard<H>, id: ConnId, work: impl Future<Output = T>) -> Option<T> {
    // Polled first: a connection closed while its connect completes ends without a word.
    let closed = async {
        futures_lite::future::poll_fn(|cx| poll_closed(shard, id, cx)).await;
        None
    };
    futures_lite::future::or(closed, async { Some(work.await) }).await
}

/// Tells the handler how the attempt went, unless it has closed the connection meanwhile.
fn report<H: Handler>(shard: &Shard<H>, id: ConnId, result: io::Result<ConnInfo>) {
    shard.activity.worked();
    let mut st = shard.state.borrow_mut();
    let st = &mut *st;
    if st.io.is_open(id) {
        st.io.now = Instant::now();
        st.handler.on_connected(&mut st.io, id, result);
    }
}
