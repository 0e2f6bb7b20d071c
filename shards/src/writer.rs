//! The shard's writer: once per turn, after the handlers have queued their output, it writes
//! every plain connection that got output (`Io::dirty`) with a direct non-blocking `send`,
//! instead of waking each connection's task to do it. A channel message to a thousand members
//! wakes one task, not a thousand: per delivery that saves the task's wake, poll and drop and
//! the re-arming of its read (~700 instructions, callgrind). Writes still coalesce: everything
//! queued for a connection during the turn leaves in one `send`.
//!
//! What the writer cannot finish it hands to the connection's task, which owns the slow paths:
//! a socket that is full (the task's write arms the wait for it to drain), an error (the task
//! reports it), a drain the handler waits for (`on_drained`), a close.

use std::rc::Rc;
use std::task::Poll;

use crate::runtime::Handler;
use crate::shard::Shard;

pub(crate) async fn writer<H: Handler>(shard: Rc<Shard<H>>) {
    let notify = shard.state.borrow().io.writer_notify.clone();
    loop {
        notify.wait().await;
        // A reply leaves only after the mesh messages its command produced have left (see
        // `poll_connection`): wait for the mesh flusher, as the connection tasks do.
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
        write_all(&shard);
    }
}

fn write_all<H: Handler>(shard: &Shard<H>) {
    let mut st = shard.state.borrow_mut();
    let io = &mut st.io;
    let dirty = std::mem::take(&mut io.dirty);
    for &id in &dirty {
        let Some(slot) = io.conns.get(id) else { continue };
        slot.dirty = false;
        let Some(fd) = slot.fd else {
            slot.wake();
            continue;
        };
        let mut handed_over = false;
        while slot.queued() > 0 {
            let pending = &slot.out[slot.sent..];
            // SAFETY: a non-blocking send from a buffer we own, on a socket the connection's
            // task keeps open while its slot lives (the slot's fd is cleared before it closes).
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
    // Keep the list's allocation for the next turn.
    let mut dirty = dirty;
    dirty.clear();
    if io.dirty.is_empty() {
        io.dirty = dirty;
    }
}
