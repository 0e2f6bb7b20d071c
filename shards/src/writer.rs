//! The shard's writer: once per turn, after the handlers have queued their output, it writes
//! every plain connection that got output (`Io::dirty`) with a direct non-blocking `send`,
//! instead of waking each connection's task to do it. A channel message to a thousand members
//! wakes one task, not a thousand: per delivery that saves the task's wake, poll and drop and
//! the re-arming of its read (~700 instructions, callgrind). Writes still coalesce: everything
//! queued for a connection during the turn leaves in one `send`.
//!
//! What the writer cannot finish it hands to the connection's task, which owns the slow paths:
//! a socket that is full (the task's write arms the wait for it to drain), an error (the task
//! reports it), a drain the handler waits for (`on_drained`), a close. A sleeping connection
//! (sleep.rs) is written the same way; handing it over wakes it, with a new task.

use std::rc::Rc;
use std::task::Poll;

use crate::conn::ConnId;
use crate::runtime::Handler;
use crate::shard::Shard;

/// Connections written between two checks for preemption: a turn with thousands to write
/// lets the reactor take new input in between, as the connections' own tasks did.
const PER_SLICE: usize = 64;

pub(crate) async fn writer<H: Handler>(shard: Rc<Shard<H>>) {
    let notify = shard.state.borrow().io.writer_notify.clone();
    let mut pending: Vec<ConnId> = Vec::new();
    let mut done = 0;
    loop {
        if done == pending.len() {
            pending.clear();
            done = 0;
            notify.wait().await;
        }
        // A reply leaves only after the mesh messages its command produced have left (see
        // `poll_connection`): wait for the mesh flusher, as the connection tasks do. Checked
        // again after every yield, since other tasks ran meanwhile.
        std::future::poll_fn(|cx| {
            let mut st = shard.state.borrow_mut();
            if st.io.mesh.is_empty() {
                Poll::Ready(())
            } else {
                st.mesh_writers.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        shard.activity.worked();
        if done == pending.len() {
            std::mem::swap(&mut pending, &mut shard.state.borrow_mut().io.dirty);
            done = 0;
        }
        let end = (done + PER_SLICE).min(pending.len());
        write_some(&shard, &pending[done..end]);
        done = end;
        if done < pending.len() {
            glommio::yield_if_needed().await;
        }
    }
}

fn write_some<H: Handler>(shard: &Shard<H>, conns: &[ConnId]) {
    let mut st = shard.state.borrow_mut();
    let io = &mut st.io;
    for &id in conns {
        let Some(slot) = io.conns.get(id) else { continue };
        slot.dirty = false;
        let Some(fd) = slot.fd else {
            slot.wake();
            continue;
        };
        let mut handed_over = false;
        while slot.queued() > 0 {
            let pending = &slot.out[slot.sent..];
            // SAFETY: a non-blocking send from a buffer we own, on a socket that stays open
            // while its slot lives: the connection's task owns it, or, while the connection
            // sleeps, the slot itself (sleep.rs); the slot's fd is cleared before it closes.
            // The raw system call: libc's `send` is a cancellation point, whose bookkeeping
            // costs ~30 instructions a delivery (callgrind), for threads nobody cancels.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_sendto,
                    fd,
                    pending.as_ptr(),
                    pending.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    std::ptr::null::<libc::sockaddr>(),
                    0,
                )
            };
            if n <= 0 {
                // Full (EAGAIN), interrupted or failed: the task's own write sorts it out.
                handed_over = true;
                break;
            }
            slot.consumed(n as usize);
            io.stats.bytes_out += n as u64;
        }
        let drained = slot.drain_below.is_some_and(|b| slot.queued() <= b);
        if handed_over || drained || slot.closing.is_some() {
            slot.wake();
        }
    }
}
