//! The stages of `Runtime::start`, in order: pick the CPUs, bind the listeners, make the mesh
//! and the shared counters, start the nudge thread, spawn one pinned executor per shard, wait
//! until every shard is ready.

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use glommio::channels::shared_channel::{self, SharedReceiver, SharedSender};
use glommio::{LocalExecutorBuilder, Placement};

use crate::listener::bind_group;
use crate::runtime::{allowed_cpus, Ctl, Handler, ListenSpec, RuntimeConfig, StartError};
use crate::shard::{shard_main, ShardBoot, PHASES};
use crate::{Envelope, ShardId};

/// A start slower than this is logged with the phase each late shard is in; one slower than
/// `START_LIMIT` fails.
const START_WARN: Duration = Duration::from_secs(5);
/// A shard not ready after this long is woken if it is parked (see nudge.rs).
const START_NUDGE: Duration = Duration::from_millis(200);
const START_LIMIT: Duration = Duration::from_secs(60);

/// The first `cores` CPUs this process may run on, one per shard.
pub(crate) fn pick_cpus(cores: usize) -> Result<Vec<usize>, StartError> {
    let cpus = allowed_cpus();
    let n = cores.max(1);
    if n > cpus.len() {
        return Err(StartError::Cpus { asked: n, online: cpus.len() });
    }
    Ok(cpus.into_iter().take(n).collect())
}

/// Each shard's listening fds (with their tags), and the addresses bound in listener order.
pub(crate) type Listeners = (Vec<Vec<(RawFd, u32)>>, Vec<SocketAddr>);

/// Listening sockets, bound here so that every shard's socket exists (in shard order, which the
/// steering program relies on) before any connection arrives.
pub(crate) fn bind_listeners(specs: &[ListenSpec], n: usize) -> Result<Listeners, StartError> {
    let mut per_shard_fds: Vec<Vec<(RawFd, u32)>> = vec![Vec::new(); n];
    let mut bound = Vec::new();
    for spec in specs {
        let (fds, addr) = bind_group(spec.addr, n).map_err(|err| StartError::Bind { addr: spec.addr, err })?;
        for (i, fd) in fds.into_iter().enumerate() {
            per_shard_fds[i].push((fd, spec.tag));
        }
        bound.push(addr);
    }
    Ok((per_shard_fds, bound))
}

/// One shard's ends of the mesh: a sender to each other shard, a receiver from each (`None` for
/// itself).
pub(crate) struct MeshRow<M: Send> {
    pub(crate) tx: Vec<Option<SharedSender<Vec<M>>>>,
    pub(crate) rx: Vec<Option<SharedReceiver<Vec<M>>>>,
}

/// The mesh: one bounded SPSC channel per ordered pair of shards. Row `i` holds shard `i`'s ends.
pub(crate) fn make_mesh<M: Envelope>(n: usize, capacity: usize) -> Vec<MeshRow<M>> {
    let mut rows: Vec<MeshRow<M>> =
        (0..n).map(|_| MeshRow { tx: (0..n).map(|_| None).collect(), rx: (0..n).map(|_| None).collect() }).collect();
    for from in 0..n {
        for to in 0..n {
            if from != to {
                let (s, r) = shared_channel::new_bounded(capacity.max(2));
                rows[from].tx[to] = Some(s);
                rows[to].rx[from] = Some(r);
            }
        }
    }
    rows
}

/// The nudge thread (see nudge.rs) and what the shards and the main thread keep of it.
pub(crate) struct Nudger {
    /// One slot per shard, where its nudge task lends its waker.
    pub(crate) slots: Vec<Arc<crate::nudge::Slot>>,
    pub(crate) thread: JoinHandle<()>,
    /// Set to end the thread.
    pub(crate) done: Arc<AtomicBool>,
}

pub(crate) fn start_nudger(n: usize) -> Result<Nudger, StartError> {
    let slots: Vec<Arc<crate::nudge::Slot>> = (0..n).map(|_| Arc::default()).collect();
    crate::nudge::install_wake_signal();
    let done = Arc::new(AtomicBool::new(false));
    let thread = crate::nudge::start(slots.clone(), done.clone())
        .map_err(|e| StartError::Shard { shard: 0, err: format!("starting the nudge thread: {e}") })?;
    Ok(Nudger { slots, thread, done })
}

/// What the shards share with each other and with the main thread.
pub(crate) struct Shared {
    pub(crate) stop_wanted: Arc<AtomicBool>,
    /// Connections open across the process (`RuntimeConfig::capacity`).
    pub(crate) open: Arc<AtomicUsize>,
    pub(crate) to_main: Sender<(ShardId, Box<dyn std::any::Any + Send>)>,
    /// Mesh batches handed to each SPSC queue: `pushed[from * cores + to]`.
    pub(crate) pushed: Arc<Vec<AtomicU64>>,
    /// How far each shard's start has come (`PHASES`).
    pub(crate) phases: Vec<Arc<AtomicU8>>,
}

impl Shared {
    pub(crate) fn new(n: usize, to_main: Sender<(ShardId, Box<dyn std::any::Any + Send>)>) -> Self {
        Shared {
            stop_wanted: Arc::new(AtomicBool::new(false)),
            open: Arc::new(AtomicUsize::new(0)),
            to_main,
            pushed: Arc::new((0..n * n).map(|_| AtomicU64::new(0)).collect()),
            phases: (0..n).map(|_| Arc::new(AtomicU8::new(0))).collect(),
        }
    }
}

/// What the earlier stages made, one entry per shard (the addresses bound are for all).
pub(crate) struct Made<'a, M: Send> {
    pub(crate) cpus: &'a [usize],
    pub(crate) fds: Vec<Vec<(RawFd, u32)>>,
    pub(crate) bound: &'a [SocketAddr],
    pub(crate) mesh: Vec<MeshRow<M>>,
}

/// The shards just spawned, not yet ready.
pub(crate) struct Spawned<C> {
    pub(crate) controls: Vec<Sender<Ctl<C>>>,
    pub(crate) threads: Vec<JoinHandle<()>>,
    /// Where each shard reports ready, or the error that ended it (see [`wait_ready`]).
    pub(crate) ready: Receiver<Result<ShardId, String>>,
}

/// Spawns every shard.
pub(crate) fn spawn_shards<H, F>(
    cfg: &RuntimeConfig,
    made: Made<'_, H::Msg>,
    shared: &Shared,
    nudges: &[Arc<crate::nudge::Slot>],
    factory: F,
) -> Spawned<H::Control>
where
    H: Handler,
    F: Fn(ShardId, &[SocketAddr]) -> H + Send + Sync + 'static,
{
    let n = made.cpus.len();
    let factory = Arc::new(factory);
    let tls: Vec<Option<Arc<rustls::ServerConfig>>> = cfg.listeners.iter().map(|l| l.tls.clone()).collect();
    let (ready_tx, ready_rx) = crossbeam_channel::unbounded::<Result<ShardId, String>>();
    let mut controls = Vec::new();
    let mut threads = Vec::new();
    for (i, (mesh, fds)) in made.mesh.into_iter().zip(made.fds).enumerate() {
        let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
        controls.push(ctl_tx);
        let boot = ShardBoot {
            id: i,
            cores: n,
            cfg: cfg.clone(),
            fds,
            tls: tls.clone(),
            bound: made.bound.to_vec(),
            mesh,
            ctl_rx,
            stop_wanted: shared.stop_wanted.clone(),
            open: shared.open.clone(),
            to_main: shared.to_main.clone(),
            pushed: shared.pushed.clone(),
            phase: shared.phases[i].clone(),
            nudge: nudges[i].clone(),
        };
        threads.push(spawn_shard(boot, made.cpus[i], cfg, factory.clone(), ready_tx.clone()));
    }
    Spawned { controls, threads, ready: ready_rx }
}

/// Starts a shard's thread, which builds its pinned executor and runs `shard_main` on it. The
/// shard reports on `ready` once serving, or the error that ended it.
fn spawn_shard<H, F>(
    boot: ShardBoot<H::Msg, H::Control>,
    cpu: usize,
    cfg: &RuntimeConfig,
    factory: Arc<F>,
    ready: Sender<Result<ShardId, String>>,
) -> JoinHandle<()>
where
    H: Handler,
    F: Fn(ShardId, &[SocketAddr]) -> H + Send + Sync + 'static,
{
    let i = boot.id;
    let mut builder = LocalExecutorBuilder::new(Placement::Fixed(cpu))
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
    std::thread::Builder::new()
        .name(format!("shard-{i}-boot"))
        .spawn(move || {
            let ready2 = ready.clone();
            let res = builder.spawn(move || async move { shard_main(boot, &*factory, ready2).await });
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
        .expect("spawn a thread")
}

/// Waits until all `n` shards report ready. On a shard's error or a start past `START_LIMIT`
/// every shard is told to stop.
pub(crate) fn wait_ready<C>(
    ready: &Receiver<Result<ShardId, String>>,
    n: usize,
    phases: &[Arc<AtomicU8>],
    controls: &[Sender<Ctl<C>>],
) -> Result<(), StartError> {
    let stop_all = || {
        for c in controls {
            let _ = c.send(Ctl::Stop);
        }
    };
    let began = std::time::Instant::now();
    let mut warned = false;
    let mut done = 0;
    while done < n {
        match ready.recv_timeout(crate::nudge::NUDGE_EVERY) {
            Ok(Ok(_)) => done += 1,
            Ok(Err(err)) => {
                stop_all();
                return Err(StartError::Shard { shard: 0, err });
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                // A shard still starting after a while may be parked with work to do
                // (nudge.rs): interrupt it.
                if began.elapsed() >= START_NUDGE {
                    nudge_parked(phases);
                }
                let late = late_shards(phases);
                if !warned && began.elapsed() >= START_WARN {
                    warned = true;
                    for (i, p) in &late {
                        log::warn!("Shard {i} not ready after {} s: still {p}", START_WARN.as_secs());
                    }
                }
                if began.elapsed() >= START_LIMIT {
                    stop_all();
                    let (shard, p) = late.first().copied().unwrap_or((0, "?"));
                    let err = format!("not ready after {} s: still {p}", START_LIMIT.as_secs());
                    return Err(StartError::Shard { shard, err });
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                return Err(StartError::Shard { shard: 0, err: "exited during start".into() });
            }
        }
    }
    Ok(())
}

/// Signals every shard not yet ready whose thread is parked.
fn nudge_parked(phases: &[Arc<AtomicU8>]) {
    for (i, p) in phases.iter().enumerate() {
        if (p.load(Ordering::Acquire) as usize) < PHASES.len() - 1 {
            let woken = crate::nudge::signal_parked(i);
            if woken > 0 {
                log::debug!("Shard {i}: parked during start, woken");
            }
        }
    }
}

/// The shards not ready yet, with the phase each is in.
fn late_shards(phases: &[Arc<AtomicU8>]) -> Vec<(usize, &'static str)> {
    phases
        .iter()
        .enumerate()
        .map(|(i, p)| (i, PHASES[(p.load(Ordering::Acquire) as usize).min(PHASES.len() - 1)]))
        .filter(|(_, p)| *p != "ready")
        .collect()
}
