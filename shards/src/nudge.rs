//! A liveness guard for glommio 0.9's executor: it can park in `io_uring_enter` while a task
//! queue is still runnable (its `run_task_queues` reads "preempted before running anything" as
//! "nothing to run"; fixed upstream in glommio/glommio#53, not in a release we use). When every
//! timer of the shard has already fired and no I/O is due, nothing wakes it again: seen here as
//! a shard that never finished starting, or never stopped, on a busy machine.
//!
//! Two guards:
//! - Running shards: each runs a task that only lends its waker out, and one plain thread wakes
//!   every shard's task every [`NUDGE_EVERY`]. A wake from another thread writes the executor's
//!   eventfd, so a wrongly parked executor wakes, re-evaluates, and runs its queues. The cost is
//!   one cross-thread wake per shard per period; a working shard never notices.
//! - Starting shards, before any task of theirs ran (so no waker exists): `Runtime::start`
//!   signals a late shard's thread if it sleeps in `io_cqring_wait` ([`signal_parked`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

pub(crate) const NUDGE_EVERY: Duration = Duration::from_millis(50);

/// One shard's slot: the waker its nudge task lent out (None before the task first ran, and
/// after the shard ended).
#[derive(Default)]
pub(crate) struct Slot(Mutex<Option<Waker>>);

impl Slot {
    pub(crate) fn clear(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn wake(&self) {
        if let Some(w) = self.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            w.wake_by_ref();
        }
    }
}

/// The task a shard runs: stores its waker each time it is woken, and never completes.
pub(crate) struct Lend(pub(crate) Arc<Slot>);

impl Future for Lend {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut slot = self.0 .0.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref() {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// The thread that wakes every shard each period until `done` is set.
pub(crate) fn start(slots: Vec<Arc<Slot>>, done: Arc<AtomicBool>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("shard-nudge".into()).spawn(move || {
        while !done.load(Ordering::Relaxed) {
            std::thread::sleep(NUDGE_EVERY);
            for s in &slots {
                s.wake();
            }
        }
    })
}

/// The signal that interrupts a parked executor during start (a no-op handler is installed for
/// it; `io_uring_enter` then returns `EINTR`, which glommio treats as a wake-up).
fn wake_signal() -> libc::c_int {
    libc::SIGRTMIN() + 3
}

extern "C" fn ignore(_: libc::c_int) {}

/// Installs the no-op handler for [`wake_signal`], without `SA_RESTART` so that a parked
/// `io_uring_enter` returns.
pub(crate) fn install_wake_signal() {
    // SAFETY: a handler that does nothing is async-signal-safe; the struct is zeroed, then
    // filled as sigaction(2) asks.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = ignore as extern "C" fn(libc::c_int) as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        libc::sigaction(wake_signal(), &sa, std::ptr::null_mut());
    }
}

/// Before a shard's first task has run, the only way to reach a wrongly parked executor is a
/// signal: its thread (named `shard-N-...` by glommio, the one sleeping in `io_cqring_wait`;
/// its blocking-pool threads share the name but wait on futexes) gets [`wake_signal`].
/// Returns how many threads were signalled.
pub(crate) fn signal_parked(shard: usize) -> usize {
    let prefix = format!("shard-{shard}-");
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    let mut n = 0;
    for t in tasks.flatten() {
        let path = t.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !comm.starts_with(&prefix) || comm.trim_end().ends_with("boot") {
            continue;
        }
        let wchan = std::fs::read_to_string(path.join("wchan")).unwrap_or_default();
        if wchan.trim() != "io_cqring_wait" {
            continue;
        }
        let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<libc::pid_t>().ok()) else { continue };
        // SAFETY: tgkill to a thread of this process, with a signal whose handler does nothing.
        unsafe {
            libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, wake_signal());
        }
        n += 1;
    }
    n
}
