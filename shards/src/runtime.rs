//! The runtime's public face: the [`Handler`] a service implements, the configuration, and
//! [`Runtime`], the running shards as the main thread sees them. How they start is in
//! `start.rs`; what each shard runs is in `shard.rs` and the task files beside it.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::conn::{ConnId, ConnInfo, Disconnect};
use crate::io::Io;
use crate::mesh::BatchPolicy;
use crate::nudge::Slot;
use crate::ws::{WsAnswer, WsRequest};
use crate::{start, Envelope, ShardId};

/// The service run on every shard. Called synchronously from the shard's tasks; never
/// re-entered. Create it inside the shard (it need not be `Send`).
pub trait Handler: 'static {
    type Msg: Envelope;
    type Control: Send + 'static;
    /// A connection was accepted on this shard.
    fn on_accept(&mut self, io: &mut Io<Self::Msg>, conn: ConnId, info: ConnInfo);
    /// A connection asked for with [`Io::connect`] is established (then it is served like an
    /// accepted one), or could not be: the error, after which `conn` is gone.
    fn on_connected(&mut self, io: &mut Io<Self::Msg>, conn: ConnId, result: std::io::Result<ConnInfo>) {
        let _ = (io, conn, result);
    }
    /// A TLS client presented a certificate (its DER) in the handshake, which just completed;
    /// called before any of its data.
    fn on_client_cert(&mut self, io: &mut Io<Self::Msg>, conn: ConnId, der: &[u8]) {
        let _ = (io, conn, der);
    }
    /// A client of a `websocket` listener asks to upgrade (after its TLS handshake, on a TLS
    /// listener): accept it, with the subprotocol and message type chosen, or refuse it (HTTP
    /// 403). Until the answer the client is only an accepted connection; a refused one ends as
    /// a failed TLS handshake does (`on_disconnect`). By default: accepted, no subprotocol named,
    /// text messages.
    fn on_websocket(&mut self, io: &mut Io<Self::Msg>, conn: ConnId, request: &WsRequest<'_>) -> WsAnswer {
        let _ = (io, conn, request);
        WsAnswer::Accept { subprotocol: None, binary: false }
    }
    /// Bytes arrived (any framing is the handler's business; a WebSocket client's messages
    /// arrive as lines, see [`WsRequest`]).
    fn on_data(&mut self, io: &mut Io<Self::Msg>, conn: ConnId, data: &[u8]);
    /// The peer closed the connection or an I/O error ended it.
    fn on_disconnect(&mut self, io: &mut Io<Self::Msg>, conn: ConnId, why: Disconnect);
    /// A message from another shard (or this one) arrived.
    fn on_mesh(&mut self, io: &mut Io<Self::Msg>, from: ShardId, msg: Self::Msg);
    /// Called every `RuntimeConfig::tick` while the shard works; once it is idle, as often as
    /// [`Handler::tick_within`] asks.
    fn on_tick(&mut self, io: &mut Io<Self::Msg>);
    /// The longest an idle shard may go without a tick, for work only a tick starts (timeouts,
    /// held input released over time); `None`: nothing timed, `RuntimeConfig::idle_tick`.
    fn tick_within(&self) -> Option<Duration> {
        None
    }
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
    /// Its clients speak WebSocket (after TLS, with `tls`): the runtime does the upgrade (asking
    /// [`Handler::on_websocket`]) and the framing; the handler sees lines.
    pub websocket: bool,
}

#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    pub cores: usize,
    pub listeners: Vec<ListenSpec>,
    /// Slots of each SPSC queue (each slot carries one batch).
    pub mesh_capacity: usize,
    pub batch: BatchPolicy,
    pub tick: Duration,
    /// The longest a shard that did no work since its last tick sleeps before the next.
    pub idle_tick: Duration,
    pub preempt_timer: Duration,
    pub spin_before_park: Option<Duration>,
    /// How long a closing connection may take to drain its output.
    pub close_grace: Duration,
    /// How long a stopping shard waits for its connections to drain.
    pub stop_grace: Duration,
    /// Connections the whole process may hold; beyond it a new one gets `full_message` and a close.
    pub capacity: usize,
    pub full_message: Vec<u8>,
    /// A plain accepted connection that sends nothing this long sleeps without a task
    /// (sleep.rs); `None`: never. Counted in the tick's one-a-second scans.
    pub sleep_after: Option<Duration>,
}

impl RuntimeConfig {
    /// The scans without input after which a connection sleeps (`sleep_after`, at least one).
    pub(crate) fn quiet_scans(&self) -> Option<u8> {
        self.sleep_after.map(|d| d.as_secs().clamp(1, u8::MAX as u64) as u8)
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cores: 1,
            listeners: Vec::new(),
            mesh_capacity: 1024,
            batch: BatchPolicy::default(),
            tick: Duration::from_millis(100),
            idle_tick: Duration::from_secs(10),
            preempt_timer: Duration::from_millis(2),
            spin_before_park: None,
            close_grace: Duration::from_secs(5),
            stop_grace: Duration::from_secs(3),
            capacity: usize::MAX,
            full_message: b"ERROR :Server is full\r\n".to_vec(),
            sleep_after: Some(Duration::from_secs(15)),
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

pub(crate) enum Ctl<C> {
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
    /// Each shard's nudge slot: a control message kicks the shard's tick through it.
    slots: Vec<Arc<Slot>>,
}

/// Sends control messages to the shards from any thread; cloneable.
pub struct Controller<C: Send + 'static> {
    controls: Vec<Sender<Ctl<C>>>,
    slots: Vec<Arc<Slot>>,
}

impl<C: Send + 'static> Clone for Controller<C> {
    fn clone(&self) -> Self {
        Controller { controls: self.controls.clone(), slots: self.slots.clone() }
    }
}

/// Hands `ctl` to shard `shard` and wakes its tick task, which takes control messages.
fn send_control<C>(controls: &[Sender<Ctl<C>>], slots: &[Arc<Slot>], shard: ShardId, ctl: Ctl<C>) -> bool {
    let sent = controls.get(shard).is_some_and(|t| t.send(ctl).is_ok());
    if sent {
        slots[shard].kick_tick();
    }
    sent
}

impl<C: Send + 'static> Controller<C> {
    pub fn cores(&self) -> usize {
        self.controls.len()
    }

    /// Hands a control message to one shard (its tick task runs it at once); false once the
    /// shard is gone.
    pub fn control(&self, shard: ShardId, c: C) -> bool {
        send_control(&self.controls, &self.slots, shard, Ctl::User(c))
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
        let cpus = start::pick_cpus(cfg.cores)?;
        let n = cpus.len();
        let (fds, bound) = start::bind_listeners(&cfg.listeners, n)?;
        let mesh = start::make_mesh::<H::Msg>(n, cfg.mesh_capacity);
        let (req_tx, requests) = crossbeam_channel::unbounded();
        let shared = start::Shared::new(n, req_tx);
        let nudger = start::start_nudger(n)?;
        let made = start::Made { cpus: &cpus, fds, bound: &bound, mesh };
        let start::Spawned { controls, threads, ready } =
            start::spawn_shards(&cfg, made, &shared, &nudger.slots, factory);
        if let Err(e) = start::wait_ready(&ready, n, &shared.phases, &controls) {
            nudger.done.store(true, Ordering::Relaxed);
            nudger.thread.thread().unpark();
            return Err(e);
        }
        Ok(Runtime {
            controls,
            threads,
            bound,
            cpus,
            stop_wanted: shared.stop_wanted,
            open: shared.open,
            requests,
            nudger: Some((nudger.thread, nudger.done)),
            slots: nudger.slots,
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

    /// Hands a control message to one shard (its tick task runs it at once).
    pub fn control(&self, shard: ShardId, c: C) -> bool {
        send_control(&self.controls, &self.slots, shard, Ctl::User(c))
    }

    /// A handle that sends control messages from another thread (a metrics endpoint).
    pub fn controller(&self) -> Controller<C> {
        Controller { controls: self.controls.clone(), slots: self.slots.clone() }
    }

    /// Messages shards sent with [`Io::to_main`], without waiting.
    pub fn requests(&self) -> Vec<(ShardId, Box<dyn std::any::Any + Send>)> {
        self.requests.try_iter().collect()
    }

    /// Tells the shards the main thread has started and waits on its requests: until then they
    /// keep their fast tick even when idle.
    pub fn serving(&self) {
        for s in &self.slots {
            s.serving.store(true, Ordering::Relaxed);
        }
    }

    /// The receiver of those messages, for a main thread that waits on it (with
    /// `crossbeam_channel::select!`). A shard asking the process to stop sends one too.
    pub fn requests_receiver(&self) -> &Receiver<(ShardId, Box<dyn std::any::Any + Send>)> {
        &self.requests
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
        for shard in 0..self.controls.len() {
            send_control(&self.controls, &self.slots, shard, Ctl::Tls(index, tls.clone()));
        }
    }

    /// Asks every shard to stop: each says goodbye to its connections, drains, and exits.
    pub fn stop(&self) {
        for shard in 0..self.controls.len() {
            send_control(&self.controls, &self.slots, shard, Ctl::Stop);
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
            t.thread().unpark();
            let _ = t.join();
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(RuntimeError(format!("shard(s) {failed:?} panicked")))
        }
    }
}
