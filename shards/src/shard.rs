//! One shard's life, by stage: build its handler and state, connect its mesh, start its standing
//! tasks and listeners, report ready, run the tick (timers, control messages) until told to
//! stop, then say goodbye and let its connections drain.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use glommio::channels::shared_channel::ConnectedSender;
use glommio::net::TcpListener;
use glommio::Task;

use crate::accept::accept_loop;
use crate::conn::ConnId;
use crate::io::Io;
use crate::jobs::blocking_jobs;
use crate::mesh_tasks::{later, loopback, mesh_flusher, mesh_receiver};
use crate::nudge::{Activity, Lend};
use crate::outbound::connector;
use crate::runtime::{Ctl, Handler, RuntimeConfig};
use crate::start::MeshRow;
use crate::{Envelope, ShardId};

/// What a shard's thread is handed to start it.
pub(crate) struct ShardBoot<M: Envelope, C> {
    pub(crate) id: ShardId,
    pub(crate) cores: usize,
    pub(crate) cfg: RuntimeConfig,
    pub(crate) fds: Vec<(RawFd, u32)>,
    pub(crate) tls: Vec<Option<Arc<rustls::ServerConfig>>>,
    /// The addresses the listeners got (a port of 0 resolved).
    pub(crate) bound: Vec<SocketAddr>,
    pub(crate) mesh: MeshRow<M>,
    pub(crate) ctl_rx: Receiver<Ctl<C>>,
    pub(crate) stop_wanted: Arc<AtomicBool>,
    pub(crate) open: Arc<AtomicUsize>,
    pub(crate) to_main: Sender<(ShardId, Box<dyn std::any::Any + Send>)>,
    pub(crate) pushed: Arc<Vec<AtomicU64>>,
    /// How far this shard's start has come (`PHASES`), for a start that takes too long.
    pub(crate) phase: Arc<AtomicU8>,
    pub(crate) nudge: Arc<crate::nudge::Slot>,
}

/// The steps of a shard's start, in order (the index is stored in `ShardBoot::phase`).
pub(crate) const PHASES: [&str; 6] = [
    "creating its executor",
    "building its handler",
    "connecting its mesh senders",
    "connecting its mesh receivers",
    "starting its listeners",
    "ready",
];

/// Everything a shard's tasks share. Borrowed only synchronously, never across an await.
pub(crate) struct Shard<H: Handler> {
    pub(crate) state: RefCell<State<H>>,
    /// Mesh batches handed to each SPSC queue: `pushed[from * cores + to]`, across shards.
    pub(crate) pushed: Arc<Vec<AtomicU64>>,
    /// Each listener's current TLS settings (`None`: plain text).
    pub(crate) tls: RefCell<Vec<Option<Arc<rustls::ServerConfig>>>>,
    pub(crate) cfg: RuntimeConfig,
    pub(crate) open: Arc<AtomicUsize>,
    /// The shard's work, recorded for the nudge guard and the tick's pace (see nudge.rs).
    pub(crate) activity: Rc<Activity>,
    /// Where quiet connections sleep (sleep.rs); `None` if its epoll or thread could not be made.
    pub(crate) sleepers: Option<crate::sleep::Sleepers>,
}

pub(crate) struct State<H: Handler> {
    pub(crate) handler: H,
    pub(crate) io: Io<H::Msg>,
    /// One read buffer for every connection of the shard: an idle connection owns none.
    pub(crate) scratch: Box<[u8]>,
    /// Connections asked to close, checked each tick against their drain deadline.
    pub(crate) closing: Vec<ConnId>,
    /// Mesh batches taken from each peer's queue and handled (compared with `pushed`).
    pub(crate) popped: Vec<u64>,
    /// Connections waiting to read until the mesh messages already sent here are handled.
    pub(crate) mesh_readers: Vec<Waker>,
    /// Connections waiting to write until this shard's pending mesh messages have left.
    pub(crate) mesh_writers: Vec<Waker>,
    /// When the tick next counts quiet connections (`Table::scan_quiet`).
    next_scan: Instant,
}

const SCRATCH: usize = 16 * 1024;

/// A shard's whole life on its executor; `ready` hears once it serves.
pub(crate) async fn shard_main<H, F>(
    boot: ShardBoot<H::Msg, H::Control>,
    factory: &F,
    ready: Sender<Result<ShardId, String>>,
) where
    H: Handler,
    F: Fn(ShardId, &[SocketAddr]) -> H,
{
    let ShardBoot { id, cores, cfg, fds, tls, bound, mesh, ctl_rx, stop_wanted, open, to_main, pushed, phase, nudge } =
        boot;
    step(&phase, 1);
    // First of all: the task that lets the nudge thread wake this executor (see nudge.rs).
    let activity = Rc::new(Activity::new(nudge.clone()));
    let lend = glommio::spawn_local(Lend::new(activity.clone()));
    let mut io = Io::new(id, cores, cfg.batch.clone(), cfg.close_grace);
    io.to_main = Some(to_main);
    let handler = factory(id, &bound);
    let sleepers = match cfg.sleep_after {
        Some(_) => crate::sleep::Sleepers::new(id)
            .map_err(|e| log::warn!("Shard {id}: quiet connections keep their task (no epoll: {e})"))
            .ok(),
        None => None,
    };
    let shard = Rc::new(Shard {
        tls: RefCell::new(tls),
        state: RefCell::new(State::new(handler, io)),
        pushed,
        cfg,
        open,
        activity,
        sleepers,
    });

    let (senders, mut tasks) = connect_mesh(&shard, mesh, &phase).await;
    tasks.push(glommio::spawn_local(mesh_flusher(shard.clone(), senders)));
    tasks.push(glommio::spawn_local(loopback(shard.clone())));
    tasks.push(glommio::spawn_local(later(shard.clone())));
    tasks.push(glommio::spawn_local(blocking_jobs(shard.clone())));
    tasks.push(glommio::spawn_local(connector(shard.clone())));
    tasks.push(glommio::spawn_local(crate::writer::writer(shard.clone())));
    tasks.push(glommio::spawn_local(crate::sleep::waker_task(shard.clone())));
    let accepts = start_listeners(&shard, fds);
    step(&phase, 5);
    // Starting was work: the shard is nudged and ticks fast until it has been idle a while.
    shard.activity.worked();
    let _ = ready.send(Ok(id));
    drop(ready);

    run_ticks(&shard, &ctl_rx, &stop_wanted).await;
    stop(&shard, accepts).await;
    drop(tasks);
    nudge.clear();
    drop(lend);
}

/// Records how far the shard's start has come (`PHASES`).
fn step(phase: &AtomicU8, p: u8) {
    phase.store(p, Ordering::Release);
}

impl<H: Handler> State<H> {
    fn new(handler: H, io: Io<H::Msg>) -> Self {
        let cores = io.cores();
        State {
            handler,
            io,
            scratch: vec![0u8; SCRATCH].into_boxed_slice(),
            closing: Vec::new(),
            popped: vec![0; cores],
            mesh_readers: Vec::new(),
            mesh_writers: Vec::new(),
            next_scan: Instant::now(),
        }
    }
}

/// Connects this shard's mesh ends. Returns the senders (for the flusher) and a running
/// receiver task per peer.
async fn connect_mesh<H: Handler>(
    shard: &Rc<Shard<H>>,
    mesh: MeshRow<H::Msg>,
    phase: &AtomicU8,
) -> (Vec<Option<ConnectedSender<Vec<H::Msg>>>>, Vec<Task<()>>) {
    // Each side's connect waits for the other's, so all of them are started before any is
    // awaited. glommio re-checks a pending connect only when its reactor makes a pass, and
    // nothing wakes a parked reactor when the peer connects: with both shards parked the start
    // hung (seen under load). A 1 ms ticker keeps the reactor passing until done.
    let connecting = Rc::new(Cell::new(true));
    let ticker = {
        let connecting = connecting.clone();
        glommio::spawn_local(async move {
            while connecting.get() {
                glommio::timer::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    step(phase, 2);
    let send_ends: Vec<_> = mesh.tx.into_iter().map(|s| s.map(|s| glommio::spawn_local(s.connect()))).collect();
    let recv_ends: Vec<_> = mesh.rx.into_iter().map(|r| r.map(|r| glommio::spawn_local(r.connect()))).collect();
    let mut senders = Vec::with_capacity(send_ends.len());
    for s in send_ends {
        senders.push(match s {
            Some(t) => Some(t.await),
            None => None,
        });
    }
    step(phase, 3);
    let mut receivers = Vec::new();
    for (peer, r) in recv_ends.into_iter().enumerate() {
        if let Some(t) = r {
            let r = t.await;
            receivers.push(glommio::spawn_local(mesh_receiver(shard.clone(), peer, r)));
        }
    }
    step(phase, 4);
    connecting.set(false);
    ticker.await;
    (senders, receivers)
}

/// An accept loop on each of this shard's listening sockets.
fn start_listeners<H: Handler>(shard: &Rc<Shard<H>>, fds: Vec<(RawFd, u32)>) -> Vec<Task<()>> {
    let mut accepts = Vec::new();
    for (index, (fd, tag)) in fds.into_iter().enumerate() {
        // SAFETY: the fd is a listening socket made for this shard and owned by no one else.
        let l = unsafe { TcpListener::from_raw_fd(fd) };
        accepts.push(glommio::spawn_local(accept_loop(shard.clone(), l, index, tag)));
    }
    accepts
}

/// The tick: timers, control messages, stop. Returns once the shard is told to stop. It ticks
/// every `tick` while the shard works; once a tick found no work, as often as the handler's
/// timed work asks (`Handler::tick_within`, at most every `idle_tick`): every glommio wake-up
/// costs ~25,000 instructions, so an idle shard must not wake ten times a second. Control
/// messages and the shard's return to work kick it before its deadline.
async fn run_ticks<H: Handler>(shard: &Shard<H>, ctl_rx: &Receiver<Ctl<H::Control>>, stop_wanted: &AtomicBool) {
    let slot = shard.activity.slot.clone();
    let mut next = Instant::now() + shard.cfg.tick;
    let mut seen = shard.activity.work();
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        futures_lite::future::or(glommio::timer::sleep(wait), std::future::poll_fn(|cx| slot.poll_kicked(cx))).await;
        let now = Instant::now();
        if !take_controls(shard, ctl_rx, now) {
            return;
        }
        if now < next {
            // Kicked: back to the fast pace if the shard works again.
            if shard.activity.work() != seen {
                next = next.min(now + shard.cfg.tick);
            }
            continue;
        }
        let late = now.saturating_duration_since(next);
        let idle_within = tick(shard, now, late, stop_wanted);
        let busy = shard.activity.work() != seen || !slot.serving.load(Ordering::Relaxed);
        seen = shard.activity.work();
        let (fast, slow) = (shard.cfg.tick, shard.cfg.idle_tick);
        next = now + if busy { fast } else { idle_within.map_or(slow, |d| d.clamp(fast, slow)) };
        // Lets the process's other threads run under valgrind, which holds its one lock through
        // io_uring_enter (it does not know the call blocks): without this an idle shard starves
        // the main and signal threads for a minute. Natively one cheap call per tick. (Under
        // valgrind an idle shard still lets them run only every `idle_tick`: a signal is acted
        // on once the shard next wakes, e.g. for a new connection.)
        std::thread::yield_now();
    }
}

/// Handles the control messages waiting. False once the shard is to stop (told to, or the
/// main thread is gone).
fn take_controls<H: Handler>(shard: &Shard<H>, ctl_rx: &Receiver<Ctl<H::Control>>, now: Instant) -> bool {
    loop {
        match ctl_rx.try_recv() {
            Ok(Ctl::Stop) => return false,
            Ok(Ctl::Tls(index, tls)) => {
                if let Some(slot) = shard.tls.borrow_mut().get_mut(index) {
                    *slot = tls;
                    let id = shard.state.borrow().io.shard();
                    log::info!("Shard {id}: listener {index} uses the new TLS settings");
                }
            }
            Ok(Ctl::User(c)) => {
                let mut st = shard.state.borrow_mut();
                let st = &mut *st;
                st.io.now = now;
                st.handler.on_control(&mut st.io, c);
            }
            Err(crossbeam_channel::TryRecvError::Empty) => return true,
            Err(crossbeam_channel::TryRecvError::Disconnected) => return false,
        }
    }
}

/// One periodic tick: the figures it refreshes, the handler's `on_tick`, closing connections
/// past their deadline, and a stop the handler asked for. Returns how soon an idle shard must
/// tick again (`Handler::tick_within`; at once while connections wait to close).
fn tick<H: Handler>(shard: &Shard<H>, now: Instant, late: Duration, stop_wanted: &AtomicBool) -> Option<Duration> {
    let mut st = shard.state.borrow_mut();
    let st = &mut *st;
    let (id, cores) = (st.io.shard(), st.io.cores());
    st.io.now = now;
    st.io.stats.tick_lateness = late;
    st.io.stats.mesh_batches_waiting = (0..cores)
        .filter(|&from| from != id)
        .map(|from| shard.pushed[from * cores + id].load(Ordering::Acquire).saturating_sub(st.popped[from]))
        .sum();
    let records = st.io.stats.records_out;
    st.handler.on_tick(&mut st.io);
    let made_work = st.io.stats.records_out != records || !st.io.mesh.is_empty() || !st.io.loopback.is_empty();
    if made_work {
        // Work the tick started counts as the shard's (nudged while it runs; see nudge.rs).
        shard.activity.worked();
    }
    expire_closing(st, now);
    if let (Some(_), Some(scans)) = (&shard.sleepers, shard.cfg.quiet_scans()) {
        if now >= st.next_scan {
            st.next_scan = now + Duration::from_secs(1);
            st.io.conns.scan_quiet(scans);
        }
    }
    if st.io.stop_requested {
        st.io.stop_requested = false;
        stop_wanted.store(true, Ordering::Relaxed);
        // The main thread waits on its requests: wake it.
        st.io.to_main(Box::new(Stopping));
    }
    if st.closing.is_empty() {
        st.handler.tick_within()
    } else {
        Some(Duration::ZERO)
    }
}

/// Sent to the main thread when a shard asks the process to stop (it only wakes it).
pub(crate) struct Stopping;

/// Stop: no new connections, goodbye to the others, then wait for their output to drain.
async fn stop<H: Handler>(shard: &Shard<H>, accepts: Vec<Task<()>>) {
    drop(accepts);
    {
        let mut st = shard.state.borrow_mut();
        let st = &mut *st;
        st.io.now = Instant::now();
        st.handler.on_stop(&mut st.io);
    }
    let deadline = Instant::now() + shard.cfg.stop_grace;
    loop {
        let now = Instant::now();
        {
            let mut st = shard.state.borrow_mut();
            if st.io.connections() == 0 || now >= deadline {
                break;
            }
            expire_closing(&mut st, now);
        }
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    // Let the last mesh batches leave before the tasks are dropped.
    glommio::timer::sleep(Duration::from_millis(5)).await;
}

/// Wakes the closing connections whose drain deadline has passed (their task then ends them).
fn expire_closing<H: Handler>(st: &mut State<H>, now: Instant) {
    let io = &mut st.io;
    st.closing.retain(|&id| match io.conns.get(id) {
        Some(slot) => {
            if slot.closing.is_some_and(|d| now >= d) {
                slot.wake();
            }
            true
        }
        None => false,
    });
}
