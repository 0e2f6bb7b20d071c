//! The task of one connection: an accepted one's start (`on_accept`, a TLS handshake, a
//! WebSocket upgrade), then the
//! poll accepted and outbound connections share: it reads into the shard's scratch buffer,
//! writes the connection's queue once per turn (after the shard's pending mesh messages have
//! left), and closes it — or, for a quiet plain connection, ends and leaves it asleep
//! (sleep.rs), to be served by a new task when it wakes.

use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use glommio::net::TcpStream;

use crate::conn::{ConnId, ConnInfo, Disconnect};
use crate::handshake::{self, HANDSHAKE_TIMEOUT};
use crate::io::Io;
use crate::runtime::Handler;
use crate::shard::{Shard, State};
use crate::stream::Stream;
use crate::Envelope;

/// Reads per wake-up before a connection yields to others.
const READS_PER_POLL: usize = 8;

/// The task of an accepted connection, from the handler's `on_accept` (and a TLS handshake,
/// then a WebSocket upgrade, when its listener has them) to its end.
pub(crate) async fn connection<H: Handler>(
    shard: Rc<Shard<H>>,
    tcp: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    info: ConnInfo,
) {
    // One `Stream` local, and the handshakes' values in this block or inside them: every
    // local kept across the `serve` await sizes every connection's task (a second
    // `Option<Stream>` and the deadline and peer address held for the whole connection cost
    // ~90 bytes a connection, measured with connection-stress).
    let (stream, id) = {
        // The handler hears of a TLS or WebSocket connection before its handshakes: admission
        // (bans, limits, throttle) and the counts it keeps then cover connections that are
        // still handshaking.
        let websocket = info.websocket();
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        let id = {
            let mut st = shard.state.borrow_mut();
            let st = &mut *st;
            st.io.now = Instant::now();
            let id = st.io.conns.insert();
            if let Some(slot) = st.io.conns.get(id) {
                // TLS and WebSocket state lives in the task: such connections never sleep. A
                // quiet WebSocket one sheds tungstenite's state instead (ws.rs), at the same time.
                slot.sleeper = (tls.is_none() || websocket) && shard.sleepers.is_some();
            }
            st.handler.on_accept(&mut st.io, id, info);
            id
        };
        let stream = match tls {
            None => Stream::Plain(tcp),
            // Boxed: held inline, the handshake's state (a rustls connection) would size every
            // connection's task, plain ones included — 1.5 KB more per connection, measured.
            Some(cfg) => match Box::pin(handshake::tls(&shard, id, tcp, cfg, deadline)).await {
                Some(s) => s,
                None => return ended(&shard, id),
            },
        };
        if !websocket {
            (stream, id)
        } else {
            match Box::pin(handshake::websocket(&shard, id, stream, deadline)).await {
                Some(s) => (s, id),
                None => return ended(&shard, id),
            }
        }
    };
    serve(shard, stream, id).await;
}

/// How a connection's poll ended.
pub(crate) enum End {
    /// The connection is over (closed by either side, or failed).
    Closed,
    /// A quiet plain connection: its task ends and the connection sleeps (sleep.rs).
    Sleep,
}

/// Serves an accepted connection, from its first poll or from waking up, until it closes or
/// goes to sleep.
pub(crate) async fn serve<H: Handler>(shard: Rc<Shard<H>>, mut stream: Stream, id: ConnId) {
    loop {
        match futures_lite::future::poll_fn(|cx| poll_connection(&shard, cx, &mut stream, id)).await {
            End::Closed => return ended(&shard, id),
            End::Sleep => {
                let Stream::Plain(tcp) = stream else { return ended(&shard, id) };
                match crate::sleep::sleep(&shard, id, tcp) {
                    Ok(()) => return,
                    // It could not sleep (no descriptor to spare): served as before.
                    Err(tcp) => stream = Stream::Plain(tcp),
                }
            }
        }
    }
}

/// Takes a place in the process's connection count (`RuntimeConfig::capacity`); false, and
/// none taken, when the process is full.
pub(crate) fn take_place<H: Handler>(shard: &Shard<H>) -> bool {
    let n = shard.open.fetch_add(1, Ordering::Relaxed) + 1;
    if n > shard.cfg.capacity {
        shard.open.fetch_sub(1, Ordering::Relaxed);
        return false;
    }
    true
}

/// A connection's task is over: its slot and its place in the capacity count are freed.
pub(crate) fn ended<H: Handler>(shard: &Shard<H>, id: ConnId) {
    let mut st = shard.state.borrow_mut();
    st.io.conns.remove(id);
    shard.open.fetch_sub(1, Ordering::Relaxed);
}

/// Ready once the handler closed connection `id` (or it is gone).
pub(crate) fn poll_closed<H: Handler>(shard: &Shard<H>, id: ConnId, cx: &mut Context<'_>) -> Poll<()> {
    match shard.state.borrow_mut().io.conns.get(id) {
        Some(slot) if slot.closing.is_none() => {
            slot.waker = Some(cx.waker().clone());
            Poll::Pending
        }
        _ => Poll::Ready(()),
    }
}

enum Flush {
    Done,
    Blocked,
    Failed(std::io::Error),
}

fn flush<M: Envelope>(io: &mut Io<M>, stream: &mut Stream, id: ConnId, cx: &mut Context<'_>) -> Flush {
    loop {
        let Some(slot) = io.conns.get(id) else {
            return Flush::Done;
        };
        if slot.queued() == 0 {
            return match stream.poll_flush(cx) {
                Poll::Ready(Ok(())) => Flush::Done,
                Poll::Ready(Err(e)) => Flush::Failed(e),
                Poll::Pending => Flush::Blocked,
            };
        }
        match stream.poll_write(cx, &slot.out[slot.sent..]) {
            Poll::Ready(Ok(0)) => return Flush::Failed(std::io::ErrorKind::WriteZero.into()),
            Poll::Ready(Ok(n)) => {
                slot.consumed(n);
                io.stats.bytes_out += n as u64;
            }
            Poll::Ready(Err(e)) => return Flush::Failed(e),
            Poll::Pending => return Flush::Blocked,
        }
    }
}

pub(crate) fn poll_connection<H: Handler>(
    shard: &Shard<H>,
    cx: &mut Context<'_>,
    stream: &mut Stream,
    id: ConnId,
) -> Poll<End> {
    shard.activity.worked();
    let mut guard = shard.state.borrow_mut();
    let State { handler, io, scratch, closing, popped, mesh_readers, mesh_writers, .. } = &mut *guard;
    let pushed = &shard.pushed;
    io.now = Instant::now();
    // Take the waker out while we run: output queued for this connection during its own
    // poll is flushed by the loop below and need not schedule another poll.
    match io.conns.get(id) {
        Some(slot) => {
            slot.waker = None;
            // A plain socket is written by the shard's writer while this task is parked.
            if slot.fd.is_none() {
                if let Stream::Plain(tcp) = stream {
                    slot.fd = Some(std::os::fd::AsRawFd::as_raw_fd(tcp));
                }
            }
        }
        None => return Poll::Ready(End::Closed),
    }
    let mut reads = 0;
    let mut piece_done = false;
    let mut waiting_for_mesh = false;
    let me = io.shard();
    let cores = io.cores();
    let result = loop {
        // Causal order across shards: a reply leaves only after the mesh messages its command
        // produced have been handed to the other shards' queues, so whoever hears of the reply
        // and acts on another shard finds those messages there first (see `mesh_pending_here`).
        if !io.mesh.is_empty() {
            if !waiting_for_mesh && io.conns.get(id).is_some_and(|s| s.queued() > 0) {
                waiting_for_mesh = true;
                mesh_writers.push(cx.waker().clone());
            }
        } else {
            match flush(io, stream, id, cx) {
                Flush::Failed(e) => {
                    let was_closing = io.conns.get(id).is_some_and(|s| s.closing.is_some());
                    if !was_closing {
                        handler.on_disconnect(io, id, Disconnect::Io(e));
                    }
                    break Poll::Ready(End::Closed);
                }
                Flush::Done | Flush::Blocked => {}
            }
        }
        let Some(slot) = io.conns.get(id) else {
            break Poll::Ready(End::Closed);
        };
        if let Some(deadline) = slot.closing {
            if slot.queued() == 0 || io.now >= deadline {
                stream.start_close(cx);
                linger_close(stream.fd(), scratch);
                break Poll::Ready(End::Closed);
            }
            if !slot.watched {
                slot.watched = true;
                closing.push(id);
            }
            break Poll::Pending;
        }
        // A reply built in pieces: one piece per poll, so the other tasks run between pieces.
        if slot.drain_below.is_some_and(|b| slot.queued() <= b) {
            if piece_done {
                cx.waker().wake_by_ref();
                break Poll::Pending;
            }
            piece_done = true;
            slot.drain_below = None;
            handler.on_drained(io, id);
            continue;
        }
        if reads >= READS_PER_POLL {
            cx.waker().wake_by_ref();
            break Poll::Pending;
        }
        // ...and input is read only once the mesh messages other shards have already sent here
        // are handled: what a client says after hearing of an event on another shard is never
        // processed before that event.
        if (0..cores).any(|from| from != me && pushed[from * cores + me].load(Ordering::Acquire) > popped[from]) {
            mesh_readers.push(cx.waker().clone());
            break Poll::Pending;
        }
        if slot.paused {
            break Poll::Pending;
        }
        match stream.poll_read(cx, scratch) {
            Poll::Ready(Ok(0)) => {
                handler.on_disconnect(io, id, Disconnect::PeerClosed);
                break Poll::Ready(End::Closed);
            }
            Poll::Ready(Ok(n)) => {
                reads += 1;
                io.stats.bytes_in += n as u64;
                if let Some(slot) = io.conns.get(id) {
                    slot.moved.bytes_in += n as u64;
                    slot.quiet = 0;
                }
                handler.on_data(io, id, &scratch[..n]);
                // A reply started by this input continues on a later poll.
                piece_done = true;
            }
            Poll::Ready(Err(e)) => {
                handler.on_disconnect(io, id, Disconnect::Io(e));
                break Poll::Ready(End::Closed);
            }
            // Quiet for a while, and nothing in hand: sleep (the scan in `Table::scan_quiet`
            // woke it for this).
            Poll::Pending
                if slot.sleeper
                    && shard.cfg.quiet_scans().is_some_and(|q| slot.quiet >= q)
                    && slot.queued() == 0
                    && slot.drain_below.is_none() =>
            {
                match stream {
                    // Stays awake, its read pending, without tungstenite's buffers.
                    Stream::Ws(ws) => {
                        ws.shed(cx);
                        break Poll::Pending;
                    }
                    _ => break Poll::Ready(End::Sleep),
                }
            }
            Poll::Pending => break Poll::Pending,
        }
    };
    if result.is_pending() {
        if let Some(slot) = io.conns.get(id) {
            slot.waker = Some(cx.waker().clone());
            slot.shed = matches!(stream, Stream::Ws(ws) if ws.is_shed());
        }
    }
    result
}

/// Before the fd is closed: discard unread input (closing with unread data sends a reset, which
/// can destroy the goodbye line in the peer's buffer) and send our FIN after the last byte.
pub(crate) fn linger_close(fd: RawFd, scratch: &mut [u8]) {
    for _ in 0..16 {
        // SAFETY: non-blocking reads into a buffer we own.
        let n = unsafe { libc::recv(fd, scratch.as_mut_ptr() as *mut _, scratch.len(), libc::MSG_DONTWAIT) };
        if n <= 0 {
            break;
        }
    }
    // SAFETY: shutting down the write side of a socket we own.
    unsafe {
        libc::shutdown(fd, libc::SHUT_WR);
    }
}
