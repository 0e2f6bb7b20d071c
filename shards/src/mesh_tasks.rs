//! The shard's mesh tasks: a receiver per peer shard, the flusher that hands this shard's
//! batches to the SPSC queues, and the loopback for messages a shard sends itself.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};

use crate::runtime::Handler;
use crate::shard::Shard;
use crate::ShardId;

/// Hands each batch from `peer` to the handler, then lets waiting readers go on.
pub(crate) async fn mesh_receiver<H: Handler>(shard: Rc<Shard<H>>, peer: ShardId, rx: ConnectedReceiver<Vec<H::Msg>>) {
    while let Some(batch) = rx.recv().await {
        shard.activity.worked();
        {
            let mut st = shard.state.borrow_mut();
            let st = &mut *st;
            st.io.now = Instant::now();
            st.io.stats.mesh_msgs_in += batch.len() as u64;
            for m in batch {
                st.handler.on_mesh(&mut st.io, peer, m);
            }
            st.popped[peer] += 1;
            for w in st.mesh_readers.drain(..) {
                w.wake();
            }
        }
        glommio::yield_if_needed().await;
    }
}

/// Messages this shard sent itself, handed to the handler in order.
pub(crate) async fn loopback<H: Handler>(shard: Rc<Shard<H>>) {
    let notify = shard.state.borrow().io.loopback_notify.clone();
    loop {
        notify.wait().await;
        shard.activity.worked();
        loop {
            let mut st = shard.state.borrow_mut();
            let st = &mut *st;
            let Some(m) = st.io.loopback.pop_front() else {
                break;
            };
            st.io.now = Instant::now();
            let me = st.io.shard();
            st.handler.on_mesh(&mut st.io, me, m);
        }
    }
}

/// Messages this shard sent itself for a later turn ([`crate::Io::later`]): the task first
/// yields, so every other ready task (writers, the mesh flusher, receivers) runs before them.
pub(crate) async fn later<H: Handler>(shard: Rc<Shard<H>>) {
    let notify = shard.state.borrow().io.later_notify.clone();
    loop {
        notify.wait().await;
        futures_lite::future::yield_now().await;
        shard.activity.worked();
        let batch = std::mem::take(&mut shard.state.borrow_mut().io.later);
        for m in batch {
            let mut st = shard.state.borrow_mut();
            let st = &mut *st;
            st.io.now = Instant::now();
            let me = st.io.shard();
            st.handler.on_mesh(&mut st.io, me, m);
        }
    }
}

/// Hands the batches gathered during a turn to the SPSC queues, then lets waiting writers go on.
pub(crate) async fn mesh_flusher<H: Handler>(shard: Rc<Shard<H>>, senders: Vec<Option<ConnectedSender<Vec<H::Msg>>>>) {
    let notify = shard.state.borrow().io.mesh.notify.clone();
    let delay = shard.cfg.batch.max_delay;
    let (me, cores) = {
        let st = shard.state.borrow();
        (st.io.shard(), st.io.cores())
    };
    loop {
        notify.wait().await;
        shard.activity.worked();
        if !delay.is_zero() && !shard.state.borrow().io.mesh.has_full_batch() {
            glommio::timer::sleep(delay).await;
        }
        for (to, s) in senders.iter().enumerate() {
            let Some(s) = s else { continue };
            loop {
                let batch = shard.state.borrow_mut().io.mesh.take(to);
                let Some(batch) = batch else { break };
                // A full queue parks this task only; the shard keeps serving meanwhile.
                match s.send(batch).await {
                    Ok(()) => {
                        shard.pushed[me * cores + to].fetch_add(1, Ordering::Release);
                    }
                    Err(e) => log::debug!("mesh to shard {to}: {e}"),
                }
            }
        }
        let mut st = shard.state.borrow_mut();
        if st.io.mesh.is_empty() {
            for w in st.mesh_writers.drain(..) {
                w.wake();
            }
        }
    }
}
