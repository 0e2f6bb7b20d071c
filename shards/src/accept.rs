//! A listener's accept loop: each new connection is counted against the process capacity
//! (refused with the "full" message beyond it) and gets its own task.

use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use glommio::net::TcpListener;

use crate::conn::{ConnInfo, Origin};
use crate::conn_task::{connection, take_place};
use crate::runtime::Handler;
use crate::shard::Shard;

/// Accepts on one of this shard's listening sockets (`index` in the config) until dropped.
pub(crate) async fn accept_loop<H: Handler>(shard: Rc<Shard<H>>, listener: TcpListener, index: usize, tag: u32) {
    let local = listener.local_addr().ok();
    loop {
        let stream = listener.accept().await;
        shard.activity.worked();
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                // EMFILE/ENFILE and the like: back off instead of spinning.
                log::warn!("accept on {local:?}: {e}");
                glommio::timer::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if !take_place(&shard) {
            refuse_full(&shard, stream.as_raw_fd());
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (peer, local_addr) = match (stream.peer_addr(), stream.local_addr()) {
            (Ok(p), Ok(l)) => (p, l),
            _ => {
                shard.open.fetch_sub(1, Ordering::Relaxed);
                continue;
            }
        };
        shard.state.borrow_mut().io.stats.accepted += 1;
        let tls = shard.tls.borrow().get(index).cloned().flatten();
        let info = ConnInfo {
            peer,
            local: local_addr,
            origin: Origin::Inbound {
                listener: index as u16,
                tls: tls.is_some(),
                websocket: shard.cfg.listeners.get(index).is_some_and(|l| l.websocket),
                tag,
            },
        };
        glommio::spawn_local(connection(shard.clone(), stream, tls, info)).detach();
    }
}

/// Beyond the capacity: the "full" message, then our FIN; the socket closes when dropped.
fn refuse_full<H: Handler>(shard: &Shard<H>, fd: RawFd) {
    // SAFETY: a non-blocking send on a socket we own; failure is irrelevant here.
    unsafe {
        libc::send(fd, shard.cfg.full_message.as_ptr() as *const _, shard.cfg.full_message.len(), libc::MSG_DONTWAIT);
        libc::shutdown(fd, libc::SHUT_WR);
    }
    shard.state.borrow_mut().io.stats.refused_full += 1;
}
