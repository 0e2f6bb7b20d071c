//! Starting the shards, and the tasks each shard runs: accept loops, one task per connection
//! (reads into a shared scratch buffer, writes its queue once per turn), the mesh flusher and
//! receivers, and the periodic tick that also carries control messages and stop.

use std::cell::RefCell;
use std::fmt;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use glommio::channels::shared_channel::{self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender};
use glommio::net::{TcpListener, TcpStream};
use glommio::{LocalExecutorBuilder, Placement};

use crate::conn::{ConnId, ConnInfo, Disconnect};
use crate::io::Io;
use crate::listener::bind_group;
use crate::mesh::BatchPolicy;
use crate::stream::Stream;
use crate::{Envelope, ShardId};

/// The service run on every shard. Called synchronously from the shard's tasks; never
/// re-entered. Create it inside the shard (it need not be `Send`).
pub trait Handler: 'static {
    type Msg: Envelope;
    type Control: Send + 'static;
    /// A connection was accepted on this shard.
    fn on_accept(&mut self, io: &mut Io<Self::Msg>, conn: ConnId, info: ConnInfo);
    /// Bytes arrived (any framing is the handler's business).
    fn on_data(&mut self, io: &mut Io<Self::Msg>, conn: ConnId, data: &[u8]);
    /// The peer closed the connection or an I/O error ended it.
    fn on_disconnect(&mut self, io: &mut Io<Self::Msg>, conn: ConnId, why: Disconnect);
    /// A message from another shard (or this one) arrived.
    fn on_mesh(&mut self, io: &mut Io<Self::Msg>, from: ShardId, msg: Self::Msg);
    /// Called every `RuntimeConfig::tick`.
    fn on_tick(&mut self, io: &mut Io<Self::Msg>);
    /// The connection's queue drained as asked with [`Io::when_drained`].
    fn on_drained(&mut self, io: &mut Io<Self::Msg>, conn: ConnId) {
        let _ = (io, conn);
    }
    /// A control message from the main thread (config reloads, statistics requests...).
    fn on_control(&mut self, io: &mut Io<Self::Msg>, ctl: Self::Control);
    /// The process is stopping: say goodbye and close connections; the runtime then waits up
    /// to `stop_grace` for their output to drain.
    fn on_stop(&mut self, io: &mut Io<Self::Msg>);
}

/// A listening address; `tag` comes back in [`ConnInfo`] (e.g. an index into the config).
#[derive(Clone, Debug)]
pub struct ListenSpec {
    pub addr: SocketAddr,
    pub tag: u32,
    /// TLS for this listener (replaceable later with [`Runtime::set_tls`]).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    pub cores: usize,
    pub listeners: Vec<ListenSpec>,
    /// Slots of each SPSC queue (each slot carries one batch).
    pub mesh_capacity: usize,
    pub batch: BatchPolicy,
    pub tick: Duration,
    pub preempt_timer: Duration,
    pub spin_before_park: Option<Duration>,
    /// How long a closing connection may take to drain its output.
    pub close_grace: Duration,
    /// How long a stopping shard waits for its connections to drain.
    pub stop_grace: Duration,
    /// Connections the whole process may hold; beyond it a new one gets `full_message` and a close.
    pub capacity: usize,
    pub full_message: Vec<u8>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cores: 1,
            listeners: Vec::new(),
            mesh_capacity: 1024,
            batch: BatchPolicy::default(),
            tick: Duration::from_millis(100),
            preempt_timer: Duration::from_millis(2),
            spin_before_park: None,
            close_grace: Duration::from_secs(5),
            stop_grace: Duration::from_secs(3),
            capacity: usize::MAX,
            full_message: b"ERROR :Server is full\r\n".to_vec(),
        }
    }
}

#[derive(Debug)]
pub enum StartError {
    Cpus { asked: usize, online: usize },
    Bind { addr: SocketAddr, err: std::io::Error },
    Shard { shard: ShardId, err: String },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Cpus { asked, online } => {
                write!(f, "--cores {asked} asks for more cores than the {online} this process may use")
            }
            StartError::Bind { addr, err } => write!(f, "cannot listen on {addr}: {err}"),
            StartError::Shard { shard, err } => write!(f, "shard {shard} failed to start: {err}"),
        }
    }
}

impl std::error::Error for StartError {}

#[derive(Debug)]
pub struct RuntimeError(pub String);

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

enum Ctl<C> {
    User(C),
    /// New TLS settings for the listener at this index.
    Tls(usize, Option<Arc<rustls::ServerConfig>>),
    Stop,
}

/// The running shards, as seen from the main thread.
pub struct Runtime<C: Send + 'static> {
    controls: Vec<Sender<Ctl<C>>>,
    threads: Vec<JoinHandle<()>>,
    bound: Vec<SocketAddr>,
    cpus: Vec<usize>,
    stop_wanted: Arc<AtomicBool>,
    open: Arc<AtomicUsize>,
    requests: Receiver<(ShardId, Box<dyn std::any::Any + Send>)>,
    /// The nudge thread and its stop flag (see nudge.rs).
    nudger: Option<(JoinHandle<()>, Arc<AtomicBool>)>,
}

/// Sends control messages to the shards from any thread; cloneable.
pub struct Controller<C: Send + 'static> {
    controls: Vec<Sender<Ctl<C>>>,
}

impl<C: Send + 'static> Clone for Controller<C> {
    fn clone(&self) -> Self {
        Controller { controls: self.controls.clone() }
    }
}

impl<C: Send + 'static> Controller<C> {
    pub fn cores(&self) -> usize {
        self.controls.len()
    }

    /// Hands a control message to one shard (it runs at the shard's next tick); false once
    /// the shard is gone.
    pub fn control(&self, shard: ShardId, c: C) -> bool {
        self.controls.get(shard).is_some_and(|t| t.send(Ctl::User(c)).is_ok())
    }
}

/// The CPUs this process may run on, in order.
pub fn allowed_cpus() -> Vec<usize> {
    core_affinity::get_core_ids()
        .map(|v| v.into_iter().map(|c| c.id).collect())
        .unwrap_or_else(|| (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect())
}

impl<C: Send + 'static> Runtime<C> {
    /// Binds every listener, starts one pinned executor per core, and returns once every
    /// shard is serving (or with the first error). The factory makes each shard's handler
    /// inside its thread, told the addresses actually bound.
    pub fn start<H, F>(cfg: RuntimeConfig, factory: F) -> Result<Self, StartError>
    where
        H: Handler<Control = C>,
        F: Fn(ShardId, &[SocketAddr]) -> H + Send + Sync + 'static,
    {
        let cpus = allowed_cpus();
        let n = cfg.cores.max(1);
        if n > cpus.len() {
            return Err(StartError::Cpus { asked: n, online: cpus.len() });
        }
        let cpus: Vec<usize> = cpus.into_iter().take(n).collect();

        // Listening sockets, bound here so that every shard's socket exists (in shard order,
        // which the steering program relies on) before any connection arrives.
        let mut per_shard_fds: Vec<Vec<(RawFd, u32)>> = vec![Vec::new(); n];
        let tls: Vec<Option<Arc<rustls::ServerConfig>>> = cfg.listeners.iter().map(|l| l.tls.clone()).collect();
        let mut bound = Vec::new();
        for spec in &cfg.listeners {
            let (fds, addr) = bind_group(spec.addr, n).map_err(|err| StartError::Bind { addr: spec.addr, err })?;
            for (i, fd) in fds.into_iter().enumerate() {
                per_shard_fds[i].push((fd, spec.tag));
            }
            bound.push(addr);
        }

        // The mesh: one bounded SPSC channel per ordered pair of shards.
        type Batch<M> = Vec<M>;
        let mut tx: Vec<Vec<Option<SharedSender<Batch<H::Msg>>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        let mut rx: Vec<Vec<Option<SharedReceiver<Batch<H::Msg>>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        for from in 0..n {
            for to in 0..n {
                if from != to {
                    let (s, r) = shared_channel::new_bounded(cfg.mesh_capacity.max(2));
                    tx[from][to] = Some(s);
                    rx[to][from] = Some(r);
                }
            }
        }

        let factory = Arc::new(factory);
        let stop_wanted = Arc::new(AtomicBool::new(false));
        let (req_tx, req_rx) = crossbeam_channel::unbounded();
        let open = Arc::new(AtomicUsize::new(0));
        let pushed: Arc<Vec<AtomicU64>> = Arc::new((0..n * n).map(|_| AtomicU64::new(0)).collect());
        let phases: Vec<Arc<AtomicU8>> = (0..n).map(|_| Arc::new(AtomicU8::new(0))).collect();
        let nudges: Vec<Arc<crate::nudge::Slot>> = (0..n).map(|_| Arc::default()).collect();
        crate::nudge::install_wake_signal();
        let nudge_done = Arc::new(AtomicBool::new(false));
        let nudger = crate::nudge::start(nudges.clone(), nudge_done.clone())
            .map_err(|e| StartError::Shard { shard: 0, err: format!("starting the nudge thread: {e}") })?;
        let (ready_tx, ready_rx) = crossbeam_channel::unbounded::<Result<ShardId, String>>();
        let mut controls = Vec::new();
        let mut threads = Vec::new();
        let mut rx_iter = rx.into_iter();
        for (i, (tx_row, fds)) in tx.into_iter().zip(per_shard_fds).enumerate() {
            let rx_row = rx_iter.next().expect("one receiver row per shard");
            let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
            controls.push(ctl_tx);
            let ctx = ShardBoot {
                id: i,
                cores: n,
                cfg: cfg.clone(),
                fds,
                tls: tls.clone(),
                bound: bound.clone(),
                tx_row,
                rx_row,
                ctl_rx,
                stop_wanted: stop_wanted.clone(),
                open: open.clone(),
                to_main: req_tx.clone(),
                pushed: pushed.clone(),
                phase: phases[i].clone(),
                nudge: nudges[i].clone(),
            };
            let factory = factory.clone();
            let ready = ready_tx.clone();
            let mut builder = LocalExecutorBuilder::new(Placement::Fixed(cpus[i]))
                .name(&format!("shard-{i}"))
                // A network server does no DMA file I/O; the 10 MiB default would also exceed
                // common memlock limits.
                .io_memory(64 * 1024)
                .preempt_timer(cfg.preempt_timer)
                // Blocking jobs (password hashes, lookups) float over every CPU rather than
                // sit on the shard's own; a few threads keep one slow job from holding up the
                // next.
                .blocking_thread_pool_placement(glommio::PoolPlacement::Unbound(4));
            if let Some(spin) = cfg.spin_before_park {
                builder = builder.spin_before_park(spin);
            }
            let handle = std::thread::Builder::new()
                .name(format!("shard-{i}-boot"))
                .spawn(move || {
                    let ready2 = ready.clone();
                    let res = builder.spawn(move || async move { shard_main(ctx, &*factory, ready2).await });
                    match res {
                        Ok(h) => {
                            if let Err(e) = h.join() {
                                let _ = ready.send(Err(format!("{e}")));
                            }
                        }
                        Err(e) => {
                            let _ = ready.send(Err(format!("{e}")));
                        }
                    }
                })
                .expect("spawn a thread");
            threads.push(handle);
        }
        drop(ready_tx);
        let began = std::time::Instant::now();
        let mut warned = false;
        let mut ready = 0;
        while ready < n {
            match ready_rx.recv_timeout(crate::nudge::NUDGE_EVERY) {
                Ok(Ok(_)) => ready += 1,
                Ok(Err(err)) => {
                    for c in &controls {
                        let _ = c.send(Ctl::Stop);
                    }
                    nudge_done.store(true, Ordering::Relaxed);
                    return Err(StartError::Shard { shard: 0, err });
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    // A shard still starting after a while may be parked with work to do
                    // (nudge.rs): interrupt it.
                    if began.elapsed() >= START_NUDGE {
                        for (i, p) in phases.iter().enumerate() {
                            if (p.load(Ordering::Acquire) as usize) < PHASES.len() - 1 {
                                let woken = crate::nudge::signal_parked(i);
                                if woken > 0 {
                                    log::debug!("Shard {i}: parked during start, woken");
                                }
                            }
                        }
                    }
                    let late: Vec<(usize, &str)> = phases
                        .iter()
                        .enumerate()
                        .map(|(i, p)| (i, PHASES[(p.load(Ordering::Acquire) as usize).min(PHASES.len() - 1)]))
                        .filter(|(_, p)| *p != "ready")
                        .collect();
                    if !warned && began.elapsed() >= START_WARN {
                        warned = true;
                        for (i, p) in &late {
                            log::warn!("Shard {i} not ready after {} s: still {p}", START_WARN.as_secs());
                        }
                    }
                    if began.elapsed() >= START_LIMIT {
                        for c in &controls {
                            let _ = c.send(Ctl::Stop);
                        }
                        let (shard, p) = late.first().copied().unwrap_or((0, "?"));
                        let err = format!("not ready after {} s: still {p}", START_LIMIT.as_secs());
                        nudge_done.store(true, Ordering::Relaxed);
                        return Err(StartError::Shard { shard, err });
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    nudge_done.store(true, Ordering::Relaxed);
                    return Err(StartError::Shard { shard: 0, err: "exited during start".into() });
                }
            }
        }
        Ok(Runtime {
            controls,
            threads,
            bound,
            cpus,
            stop_wanted,
            open,
            requests: req_rx,
            nudger: Some((nudger, nudge_done)),
        })
    }

    /// The addresses actually bound, in listener order (a port of 0 resolved).
    pub fn bound(&self) -> &[SocketAddr] {
        &self.bound
    }

    /// The CPU each shard is pinned to.
    pub fn cpus(&self) -> &[usize] {
        &self.cpus
    }

    pub fn cores(&self) -> usize {
        self.controls.len()
    }

    /// Hands a control message to one shard (it runs at the shard's next tick).
    pub fn control(&self, shard: ShardId, c: C) -> bool {
        self.controls.get(shard).is_some_and(|t| t.send(Ctl::User(c)).is_ok())
    }

    /// A handle that sends control messages from another thread (a metrics endpoint).
    pub fn controller(&self) -> Controller<C> {
        Controller { controls: self.controls.clone() }
    }

    /// Messages shards sent with [`Io::to_main`], without waiting.
    pub fn requests(&self) -> Vec<(ShardId, Box<dyn std::any::Any + Send>)> {
        self.requests.try_iter().collect()
    }

    /// True once a shard asked for the process to stop (see [`Io::request_stop`]).
    pub fn stop_wanted(&self) -> bool {
        self.stop_wanted.load(Ordering::Relaxed)
    }

    /// Whether every shard thread has ended.
    pub fn finished(&self) -> bool {
        self.threads.iter().all(|t| t.is_finished())
    }

    /// Connections open across the process.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Replaces the TLS settings of the listener at `index` on every shard: new connections
    /// use them, established ones keep theirs (a certificate reload drops nobody).
    pub fn set_tls(&self, index: usize, tls: Option<Arc<rustls::ServerConfig>>) {
        for c in &self.controls {
            let _ = c.send(Ctl::Tls(index, tls.clone()));
        }
    }

    /// Asks every shard to stop: each says goodbye to its connections, drains, and exits.
    pub fn stop(&self) {
        for c in &self.controls {
            let _ = c.send(Ctl::Stop);
        }
    }

    /// Waits for every shard thread to end.
    pub fn wait(mut self) -> Result<(), RuntimeError> {
        let mut failed = Vec::new();
        for (i, t) in std::mem::take(&mut self.threads).into_iter().enumerate() {
            if t.join().is_err() {
                failed.push(i);
            }
        }
        if let Some((t, done)) = self.nudger.take() {
            done.store(true, Ordering::Relaxed);
            let _ = t.join();
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(RuntimeError(format!("shard(s) {failed:?} panicked")))
        }
    }
}

struct ShardBoot<M: Envelope, C> {
    id: ShardId,
    cores: usize,
    cfg: RuntimeConfig,
    fds: Vec<(RawFd, u32)>,
    tls: Vec<Option<Arc<rustls::ServerConfig>>>,
    /// The addresses the listeners got (a port of 0 resolved).
    bound: Vec<SocketAddr>,
    tx_row: Vec<Option<SharedSender<Vec<M>>>>,
    rx_row: Vec<Option<SharedReceiver<Vec<M>>>>,
    ctl_rx: Receiver<Ctl<C>>,
    stop_wanted: Arc<AtomicBool>,
    open: Arc<AtomicUsize>,
    to_main: Sender<(ShardId, Box<dyn std::any::Any + Send>)>,
    pushed: Arc<Vec<AtomicU64>>,
    /// How far this shard's start has come (`PHASES`), for a start that takes too long.
    phase: Arc<AtomicU8>,
    nudge: Arc<crate::nudge::Slot>,
}

/// The steps of a shard's start, in order (the index is stored in `ShardBoot::phase`).
const PHASES: [&str; 6] = [
    "creating its executor",
    "building its handler",
    "connecting its mesh senders",
    "connecting its mesh receivers",
    "starting its listeners",
    "ready",
];
/// A start slower than this is logged with the phase each late shard is in; one slower than
/// `START_LIMIT` fails.
const START_WARN: Duration = Duration::from_secs(5);
/// A shard not ready after this long is woken if it is parked (see nudge.rs).
const START_NUDGE: Duration = Duration::from_millis(200);
const START_LIMIT: Duration = Duration::from_secs(60);

/// Everything a shard's tasks share. Borrowed only synchronously, never across an await.
struct Shard<H: Handler> {
    state: RefCell<State<H>>,
    /// Mesh batches handed to each SPSC queue: `pushed[from * cores + to]`, across shards.
    pushed: Arc<Vec<AtomicU64>>,
    /// Each listener's current TLS settings (`None`: plain text).
    tls: RefCell<Vec<Option<Arc<rustls::ServerConfig>>>>,
    cfg: RuntimeConfig,
    open: Arc<AtomicUsize>,
}

struct State<H: Handler> {
    handler: H,
    io: Io<H::Msg>,
    /// One read buffer for every connection of the shard: an idle connection owns none.
    scratch: Box<[u8]>,
    /// Connections asked to close, checked each tick against their drain deadline.
    closing: Vec<ConnId>,
    /// Mesh batches taken from each peer's queue and handled (compared with `pushed`).
    popped: Vec<u64>,
    /// Connections waiting to read until the mesh messages already sent here are handled.
    mesh_readers: Vec<Waker>,
    /// Connections waiting to write until this shard's pending mesh messages have left.
    mesh_writers: Vec<Waker>,
}

const SCRATCH: usize = 16 * 1024;
/// Reads per wake-up before a connection yields to others.
const READS_PER_POLL: usize = 8;

async fn shard_main<H, F>(boot: ShardBoot<H::Msg, H::Control>, factory: &F, ready: Sender<Result<ShardId, String>>)
where
    H: Handler,
    F: Fn(ShardId, &[SocketAddr]) -> H,
{
    let ShardBoot {
        id,
        cores,
        cfg,
        fds,
        tls,
        bound,
        tx_row,
        rx_row,
        ctl_rx,
        stop_wanted,
        open,
        to_main,
        pushed,
        phase,
        nudge,
    } = boot;
    let step = |p: u8| phase.store(p, Ordering::Release);
    step(1);
    // First of all: the task that lets the nudge thread wake this executor (see nudge.rs).
    let lend = glommio::spawn_local(crate::nudge::Lend(nudge.clone()));
    let mut io = Io::new(id, cores, cfg.batch.clone(), cfg.close_grace);
    io.to_main = Some(to_main);
    let handler = factory(id, &bound);
    let shard = Rc::new(Shard {
        tls: RefCell::new(tls),
        state: RefCell::new(State {
            handler,
            io,
            scratch: vec![0u8; SCRATCH].into_boxed_slice(),
            closing: Vec::new(),
            popped: vec![0; cores],
            mesh_readers: Vec::new(),
            mesh_writers: Vec::new(),
        }),
        pushed,
        cfg: cfg.clone(),
        open,
    });

    // Mesh endpoints. Each side's connect waits for the other's, so all of them are started
    // before any is awaited. glommio re-checks a pending connect only when its reactor makes a
    // pass, and nothing wakes a parked reactor when the peer connects: with both shards parked
    // the start hung (seen under load). A 1 ms ticker keeps the reactor passing until done.
    let connecting = Rc::new(std::cell::Cell::new(true));
    let ticker = {
        let connecting = connecting.clone();
        glommio::spawn_local(async move {
            while connecting.get() {
                glommio::timer::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    step(2);
    let send_ends: Vec<_> = tx_row.into_iter().map(|s| s.map(|s| glommio::spawn_local(s.connect()))).collect();
    let recv_ends: Vec<_> = rx_row.into_iter().map(|r| r.map(|r| glommio::spawn_local(r.connect()))).collect();
    let mut senders: Vec<Option<ConnectedSender<Vec<H::Msg>>>> = Vec::with_capacity(cores);
    for s in send_ends {
        senders.push(match s {
            Some(t) => Some(t.await),
            None => None,
        });
    }
    step(3);
    let mut tasks = Vec::new();
    for (peer, r) in recv_ends.into_iter().enumerate() {
        if let Some(t) = r {
            let r = t.await;
            tasks.push(glommio::spawn_local(mesh_receiver(shard.clone(), peer, r)));
        }
    }
    step(4);
    connecting.set(false);
    ticker.await;
    tasks.push(glommio::spawn_local(mesh_flusher(shard.clone(), senders)));
    tasks.push(glommio::spawn_local(loopback(shard.clone())));
    tasks.push(glommio::spawn_local(blocking_jobs(shard.clone())));

    let mut accepts = Vec::new();
    for (index, (fd, tag)) in fds.into_iter().enumerate() {
        // SAFETY: the fd is a listening socket made for this shard and owned by no one else.
        let l = unsafe { TcpListener::from_raw_fd(fd) };
        accepts.push(glommio::spawn_local(accept_loop(shard.clone(), l, index, tag)));
    }
    step(5);
    let _ = ready.send(Ok(id));
    drop(ready);

    // The tick: timers, control messages, stop.
    let mut next = Instant::now() + cfg.tick;
    'run: loop {
        let wait = next.saturating_duration_since(Instant::now());
        glommio::timer::sleep(wait).await;
        let now = Instant::now();
        let late = now.saturating_duration_since(next);
        next = now + cfg.tick;
        loop {
            match ctl_rx.try_recv() {
                Ok(Ctl::Stop) => break 'run,
                Ok(Ctl::Tls(index, tls)) => {
                    if let Some(slot) = shard.tls.borrow_mut().get_mut(index) {
                        *slot = tls;
                        log::info!("Shard {id}: listener {index} uses the new TLS settings");
                    }
                }
                Ok(Ctl::User(c)) => {
                    let mut st = shard.state.borrow_mut();
                    let st = &mut *st;
                    st.io.now = now;
                    st.handler.on_control(&mut st.io, c);
                }
                Err(crossbeam_channel::TryRecvError::Empty) => break,
                Err(crossbeam_channel::TryRecvError::Disconnected) => break 'run,
            }
        }
        let mut st = shard.state.borrow_mut();
        let st = &mut *st;
        st.io.now = now;
        st.io.stats.tick_lateness = late;
        st.io.stats.mesh_batches_waiting = (0..cores)
            .filter(|&from| from != id)
            .map(|from| shard.pushed[from * cores + id].load(Ordering::Acquire).saturating_sub(st.popped[from]))
            .sum();
        st.handler.on_tick(&mut st.io);
        expire_closing(st, now);
        if st.io.stop_requested {
            st.io.stop_requested = false;
            stop_wanted.store(true, Ordering::Relaxed);
        }
    }

    // Stop: no new connections, goodbye to the others, then wait for their output to drain.
    drop(accepts);
    {
        let mut st = shard.state.borrow_mut();
        let st = &mut *st;
        st.io.now = Instant::now();
        st.handler.on_stop(&mut st.io);
    }
    let deadline = Instant::now() + cfg.stop_grace;
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
    drop(tasks);
    nudge.clear();
    drop(lend);
}

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

async fn accept_loop<H: Handler>(shard: Rc<Shard<H>>, listener: TcpListener, index: usize, tag: u32) {
    let local = listener.local_addr().ok();
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE/ENFILE and the like: back off instead of spinning.
                log::warn!("accept on {local:?}: {e}");
                glommio::timer::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let fd = stream.as_raw_fd();
        let n = shard.open.fetch_add(1, Ordering::Relaxed) + 1;
        if n > shard.cfg.capacity {
            shard.open.fetch_sub(1, Ordering::Relaxed);
            // SAFETY: a non-blocking send on a socket we own; failure is irrelevant here.
            unsafe {
                libc::send(
                    fd,
                    shard.cfg.full_message.as_ptr() as *const _,
                    shard.cfg.full_message.len(),
                    libc::MSG_DONTWAIT,
                );
                libc::shutdown(fd, libc::SHUT_WR);
            }
            shard.state.borrow_mut().io.stats.refused_full += 1;
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
        let info = ConnInfo { peer, local: local_addr, listener_tag: tag, tls: tls.is_some() };
        glommio::spawn_local(connection(shard.clone(), stream, tls, info)).detach();
    }
}

/// Time a TLS client gets to finish its handshake, counted from accept (trickled bytes do not
/// extend it).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn connection<H: Handler>(
    shard: Rc<Shard<H>>,
    tcp: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    info: ConnInfo,
) {
    // The handler hears of a TLS connection before its handshake: admission (bans, limits,
    // throttle) and the counts it keeps then cover connections that are still handshaking.
    let id = {
        let mut st = shard.state.borrow_mut();
        let st = &mut *st;
        st.io.now = Instant::now();
        let id = st.io.conns.insert();
        st.handler.on_accept(&mut st.io, id, info);
        id
    };
    // One `Stream` local, and the handshake's own values inside its arm: every local kept
    // across an await sizes every connection's task (a second `Option<Stream>` and the
    // deadline and peer address held for the whole connection cost ~90 bytes a connection,
    // measured with connection-stress).
    let mut stream = match tls {
        None => Stream::Plain(tcp),
        // Boxed: held inline, the handshake's state (a rustls connection) would size every
        // connection's task, plain ones included — 1.5 KB more per connection, measured.
        Some(cfg) => {
            let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
            match Box::pin(handshake(&shard, id, tcp, cfg, deadline)).await {
                Some(s) => s,
                None => return ended(&shard, id),
            }
        }
    };
    futures_lite::future::poll_fn(|cx| poll_connection(&shard, cx, &mut stream, id)).await;
    ended(&shard, id);
}

/// A connection's task is over: its slot and its place in the capacity count are freed.
fn ended<H: Handler>(shard: &Shard<H>, id: ConnId) {
    let mut st = shard.state.borrow_mut();
    st.io.conns.remove(id);
    shard.open.fetch_sub(1, Ordering::Relaxed);
}

/// How a handshake ended, when it did not complete.
enum Unfinished {
    /// The handler closed the connection (refused it, or the shard is stopping).
    Closed,
    Failed(std::io::Error),
}

/// The TLS handshake of a connection the handler already knows, ended early if the handler
/// closes it or `deadline` passes. `None` when the connection is over.
async fn handshake<H: Handler>(
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
    let accept = async { futures_rustls::TlsAcceptor::from(cfg).accept(tcp).await.map_err(Unfinished::Failed) };
    // Kept until the end: the socket must stay open for `linger_close`.
    let running = futures_lite::future::or(closed, futures_lite::future::or(timeout, accept));
    futures_lite::pin!(running);
    let outcome = running.as_mut().await;
    let mut st = shard.state.borrow_mut();
    let st = &mut *st;
    match outcome {
        Ok(s) => return Some(Stream::Tls(Box::new(s))),
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

/// Ready once the handler closed connection `id` (or it is gone).
fn poll_closed<H: Handler>(shard: &Shard<H>, id: ConnId, cx: &mut Context<'_>) -> Poll<()> {
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

fn poll_connection<H: Handler>(shard: &Shard<H>, cx: &mut Context<'_>, stream: &mut Stream, id: ConnId) -> Poll<()> {
    let mut guard = shard.state.borrow_mut();
    let State { handler, io, scratch, closing, popped, mesh_readers, mesh_writers } = &mut *guard;
    let pushed = &shard.pushed;
    io.now = Instant::now();
    // Take the waker out while we run: output queued for this connection during its own
    // poll is flushed by the loop below and need not schedule another poll.
    match io.conns.get(id) {
        Some(slot) => slot.waker = None,
        None => return Poll::Ready(()),
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
                    break Poll::Ready(());
                }
                Flush::Done | Flush::Blocked => {}
            }
        }
        let Some(slot) = io.conns.get(id) else {
            break Poll::Ready(());
        };
        if let Some(deadline) = slot.closing {
            if slot.queued() == 0 || io.now >= deadline {
                stream.start_close(cx);
                linger_close(stream.fd(), scratch);
                break Poll::Ready(());
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
                break Poll::Ready(());
            }
            Poll::Ready(Ok(n)) => {
                reads += 1;
                io.stats.bytes_in += n as u64;
                if let Some(slot) = io.conns.get(id) {
                    slot.moved.bytes_in += n as u64;
                }
                handler.on_data(io, id, &scratch[..n]);
                // A reply started by this input continues on a later poll.
                piece_done = true;
            }
            Poll::Ready(Err(e)) => {
                handler.on_disconnect(io, id, Disconnect::Io(e));
                break Poll::Ready(());
            }
            Poll::Pending => break Poll::Pending,
        }
    };
    if result.is_pending() {
        if let Some(slot) = io.conns.get(id) {
            slot.waker = Some(cx.waker().clone());
        }
    }
    result
}

/// Before the fd is closed: discard unread input (closing with unread data sends a reset, which
/// can destroy the goodbye line in the peer's buffer) and send our FIN after the last byte.
fn linger_close(fd: RawFd, scratch: &mut [u8]) {
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

async fn mesh_receiver<H: Handler>(shard: Rc<Shard<H>>, peer: ShardId, rx: ConnectedReceiver<Vec<H::Msg>>) {
    while let Some(batch) = rx.recv().await {
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

async fn loopback<H: Handler>(shard: Rc<Shard<H>>) {
    let notify = shard.state.borrow().io.loopback_notify.clone();
    loop {
        notify.wait().await;
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

/// Runs the jobs handlers gave to [`Io::blocking`] on glommio's blocking pool; each result
/// comes back to the handler as a message from this shard.
async fn blocking_jobs<H: Handler>(shard: Rc<Shard<H>>) {
    let notify = shard.state.borrow().io.jobs_notify.clone();
    loop {
        notify.wait().await;
        let jobs = std::mem::take(&mut shard.state.borrow_mut().io.jobs);
        for job in jobs {
            let shard = shard.clone();
            glommio::spawn_local(async move {
                let msg = glommio::executor().spawn_blocking(job).await;
                let mut st = shard.state.borrow_mut();
                let st = &mut *st;
                st.io.now = Instant::now();
                let me = st.io.shard();
                st.handler.on_mesh(&mut st.io, me, msg);
            })
            .detach();
        }
    }
}

async fn mesh_flusher<H: Handler>(shard: Rc<Shard<H>>, senders: Vec<Option<ConnectedSender<Vec<H::Msg>>>>) {
    let notify = shard.state.borrow().io.mesh.notify.clone();
    let delay = shard.cfg.batch.max_delay;
    let (me, cores) = {
        let st = shard.state.borrow();
        (st.io.shard(), st.io.cores())
    };
    loop {
        notify.wait().await;
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
