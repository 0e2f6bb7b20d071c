//! A liveness guard for glommio 0.9's executor: it can park in `io_uring_enter` while a task
//! queue is still runnable (its `run_task_queues` reads "preempted before running anything" as
//! "nothing to run"; fixed upstream in glommio/glommio#53, not in a release we use). When every
//! timer of the shard has already fired and no I/O is due, nothing wakes it again: seen here as
//! a shard that never finished starting, or never stopped, on a busy machine.
//!
//! Two guards:
//! - Running shards: each runs a task that only lends its waker out, and one plain thread wakes
//!   the task of every *working* shard every [`NUDGE_EVERY`]. A wake from another thread writes
//!   the executor's eventfd, so a wrongly parked executor wakes, re-evaluates, and runs its
//!   queues. A shard is nudged only while it works: the wrong park needs a preemption, which
//!   needs tasks that ran past the preempt timer, and every such run is the shard's work
//!   ([`Activity::worked`]). Once a whole period passes without work the shard marks itself
//!   idle and is left alone (an idle shard is not woken 20 times a second); its next work
//!   clears the mark and unparks the nudge thread, which sleeps while every shard is idle.
//! - Starting shards, before any task of theirs ran (so no waker exists): `Runtime::start`
//!   signals a late shard's thread if it sleeps in `io_cqring_wait` ([`signal_parked`]).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::thread::Thread;
use std::time::Duration;

pub(crate) const NUDGE_EVERY: Duration = Duration::from_millis(50);

/// One shard's slot, shared with the nudge thread and the main thread.
#[derive(Default)]
pub(crate) struct Slot {
    /// The waker its nudge task lent out (None before the task first ran, and after the shard
    /// ended).
    waker: Mutex<Option<Waker>>,
    /// Set by the shard when a nudge found no work done since the one before: not nudged then.
    idle: AtomicBool,
    /// The tick task's waker and whether it was kicked: a control message or the shard's
    /// return to work wakes the tick before its deadline.
    tick: Mutex<Option<Waker>>,
    kicked: AtomicBool,
    /// The nudge thread, unparked when a shard stops being idle.
    nudger: OnceLock<Thread>,
    /// Set once the main thread serves (`Runtime::serving`): until then the shard keeps its fast
    /// tick, which under valgrind is what lets the main thread run at all (see `run_ticks`).
    pub(crate) serving: AtomicBool,
}

impl Slot {
    pub(crate) fn clear(&self) {
        *self.waker.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn wake(&self) {
        if let Some(w) = self.waker.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            w.wake_by_ref();
        }
    }

    /// Wakes the shard's tick task now (from any thread).
    pub(crate) fn kick_tick(&self) {
        self.kicked.store(true, Ordering::Release);
        if let Some(w) = self.tick.lock().unwrap_or_else(|e| e.into_inner()).take() {
            w.wake();
        }
    }

    /// Ready once [`Slot::kick_tick`] was called since the last time it was.
    pub(crate) fn poll_kicked(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.kicked.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        *self.tick.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        // A kick between the check and the store found no waker: look again.
        if self.kicked.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// What a shard's tasks record of their work: the nudge task and the tick read it.
pub(crate) struct Activity {
    /// Runs of real work (a connection polled, a mesh batch, an accept, ...).
    work: Cell<u64>,
    pub(crate) slot: Arc<Slot>,
}

impl Activity {
    pub(crate) fn new(slot: Arc<Slot>) -> Self {
        Activity { work: Cell::new(0), slot }
    }

    /// Called by every task that does the shard's work, each time it runs.
    #[inline]
    pub(crate) fn worked(&self) {
        self.work.set(self.work.get() + 1);
        if self.slot.idle.load(Ordering::Relaxed) {
            self.busy_again();
        }
    }

    #[cold]
    fn busy_again(&self) {
        self.slot.idle.store(false, Ordering::Relaxed);
        if let Some(t) = self.slot.nudger.get() {
            t.unpark();
        }
        self.slot.kick_tick();
    }

    pub(crate) fn work(&self) -> u64 {
        self.work.get()
    }
}

/// The task a shard runs: stores its waker each time it is woken, marks the shard idle when
/// no work was done since its last wake, and never completes.
pub(crate) struct Lend {
    activity: Rc<Activity>,
    seen: u64,
}

impl Lend {
    pub(crate) fn new(activity: Rc<Activity>) -> Self {
        Lend { seen: activity.work(), activity }
    }
}

impl Future for Lend {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let work = self.activity.work();
        if work == self.seen {
            self.activity.slot.idle.store(true, Ordering::Relaxed);
        }
        self.seen = work;
        let mut slot = self.activity.slot.waker.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref() {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// The thread that wakes every working shard each period until `done` is set (then unpark
/// it); it sleeps while every shard is idle.
pub(crate) fn start(slots: Vec<Arc<Slot>>, done: Arc<AtomicBool>) -> std::io::Result<std::thread::JoinHandle<()>> {
    let for_thread = slots.clone();
    let handle = std::thread::Builder::new().name("shard-nudge".into()).spawn(move || {
        let slots = for_thread;
        while !done.load(Ordering::Relaxed) {
            if slots.iter().all(|s| s.idle.load(Ordering::Relaxed)) {
                std::thread::park();
                continue;
            }
            std::thread::sleep(NUDGE_EVERY);
            for s in slots.iter().filter(|s| !s.idle.load(Ordering::Relaxed)) {
                s.wake();
            }
        }
    })?;
    for s in &slots {
        let _ = s.nudger.set(handle.thread().clone());
    }
    Ok(handle)
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
