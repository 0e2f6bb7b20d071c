//! The glue on each shard: the runtime's events in, the IRC core called, its output handed back
//! to the runtime. Nothing IRC-specific is decided here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shards::{ConnId, ConnInfo, Disconnect, Envelope, Handler, Io, Runtime, WsAnswer, WsRequest};

use crate::commands::envelope::{ChanMsg, Ordered};
use crate::commands::{connection, inbox, link, timers, Conn, Env, Outbox};
use crate::config::Config;
use crate::local::shard::ShardState;
use crate::metrics::{IoFigures, Traffic};
use crate::proto::Line;

/// What a shard asks of the main thread: the core makes them, the main thread answers.
pub use crate::commands::outbox::ToMain;

/// Messages from the main thread to a shard.
pub enum Control {
    /// A new configuration, already validated whole; the shard says when it took it.
    Reload(Arc<Config>, Option<std::sync::mpsc::Sender<usize>>),
    /// The answer to a REHASH this shard passed on (no errors: it took effect).
    Rehashed { conn: Conn, errors: Vec<String> },
    /// The metrics endpoint wants this shard's figures.
    Report(crossbeam_channel::Sender<crate::metrics::ShardReport>),
}

/// Asks every shard for its report and waits at most `wait` for the answers (a shard answers
/// at its next tick), in shard order. A shard that does not answer in time is left out.
pub fn gather(ctl: &shards::Controller<Control>, wait: std::time::Duration) -> Vec<crate::metrics::ShardReport> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let asked = (0..ctl.cores()).filter(|&s| ctl.control(s, Control::Report(tx.clone()))).count();
    drop(tx);
    let deadline = Instant::now() + wait;
    let mut reports = Vec::with_capacity(asked);
    while reports.len() < asked {
        match rx.recv_deadline(deadline) {
            Ok(r) => reports.push(r),
            Err(_) => break,
        }
    }
    reports.sort_by_key(|r| r.shard);
    reports
}

/// What the shards asked of the main thread since the last call, with the asking shard.
pub fn requests(rt: &Runtime<Control>) -> impl Iterator<Item = (usize, ToMain)> {
    // Nothing but `Out::to_main` sends to the main thread.
    rt.requests().into_iter().filter_map(|(shard, msg)| Some((shard, *msg.downcast::<ToMain>().ok()?)))
}

/// The names of the commands the core dispatches (the Prometheus text has a counter for each).
pub fn command_names() -> Vec<&'static str> {
    crate::commands::COMMANDS.iter().map(|c| c.name).collect()
}

/// A shard's part of the history store on disk: where its changes go, and what it loads.
pub struct History {
    pub sink: crossbeam_channel::Sender<crate::commands::history::store::DbOp>,
    pub loaded: Vec<(crate::commands::history::codec::LogKey, crate::commands::history::store::Entry)>,
    pub markers: Arc<Vec<(crate::proto::Folded, crate::proto::Folded, u64)>>,
}

pub struct IrcShard {
    st: ShardState,
    last_check: Instant,
}

impl IrcShard {
    pub fn new(
        cfg: Arc<Config>,
        shard: usize,
        cores: usize,
        started_unix: u64,
        bans: Arc<crate::persist::BanStore>,
        cpu: Option<usize>,
        history: Option<History>,
    ) -> Self {
        let created = crate::clock::format_utc(started_unix);
        let mut st = ShardState::new(cfg, shard, cores, started_unix, created);
        st.bans = bans.bans();
        st.ban_store = Some(bans);
        st.cpu = cpu;
        if let Some(h) = history {
            st.history.sink = Some(h.sink);
            for (key, target, ms) in h.markers.iter() {
                st.read_markers.raise(key.clone(), target.clone(), *ms);
            }
            crate::commands::history::record::load(&mut st, h.loaded, crate::clock::unix_now_ms());
        }
        IrcShard { st, last_check: Instant::now() }
    }
}

/// `shards::Io` seen through the core's [`Outbox`] trait.
/// The core's outbox over the runtime's `Io`, with the wall-clock time of this turn (read once
/// per runtime event: handlers never read the clock themselves).
struct Out<'a>(&'a mut Io<Env>, u64);

impl<'a> Out<'a> {
    fn new(io: &'a mut Io<Env>) -> Out<'a> {
        Out(io, crate::clock::unix_now_ms())
    }
    fn unix(&self) -> u64 {
        self.1 / 1000
    }
}

fn conn_id(c: Conn) -> ConnId {
    ConnId::from_u64(c.0)
}

fn conn(c: ConnId) -> Conn {
    Conn(c.to_u64())
}

impl Outbox for Out<'_> {
    fn now(&self) -> Instant {
        self.0.now()
    }
    fn unix_ms(&self) -> u64 {
        self.1
    }
    fn shard(&self) -> usize {
        self.0.shard()
    }
    fn cores(&self) -> usize {
        self.0.cores()
    }
    fn send(&mut self, c: Conn, bytes: &[u8]) -> Option<usize> {
        self.0.send(conn_id(c), bytes)
    }
    fn send_lines(&mut self, c: Conn, bytes: &[u8], lines: u64) -> Option<usize> {
        self.0.send_records(conn_id(c), bytes, lines)
    }
    fn write_first(&mut self, c: Conn) {
        self.0.write_first(conn_id(c))
    }
    fn when_drained(&mut self, c: Conn, below: usize) {
        self.0.when_drained(conn_id(c), below)
    }
    fn close(&mut self, c: Conn) {
        self.0.close(conn_id(c))
    }
    fn abort(&mut self, c: Conn) {
        self.0.abort(conn_id(c))
    }
    fn to_shard(&mut self, to: usize, env: Env) {
        self.0.mesh(to, env)
    }
    fn later(&mut self, env: Env) {
        self.0.later(env)
    }
    fn connect(&mut self, addr: std::net::SocketAddr, timeout: std::time::Duration) -> Conn {
        conn(self.0.connect(addr, timeout))
    }
    fn connect_tls(
        &mut self,
        addr: std::net::SocketAddr,
        timeout: std::time::Duration,
        link: &str,
        fingerprint: crate::certpin::Fingerprint,
    ) -> Conn {
        let cfg = crate::certpin::client_config(link, fingerprint);
        conn(self.0.connect_tls(addr, timeout, cfg, crate::certpin::server_name(link, addr)))
    }
    fn request_stop(&mut self) {
        self.0.request_stop()
    }
    fn blocking(&mut self, job: Box<dyn FnOnce() -> Env + Send>) {
        self.0.blocking(job)
    }
    fn to_main(&mut self, msg: ToMain) {
        self.0.to_main(Box::new(msg))
    }
    fn io_stats(&self) -> IoFigures {
        let s = self.0.stats();
        IoFigures {
            accepted: s.accepted,
            refused_full: s.refused_full,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            mesh_msgs_out: s.mesh_msgs_out,
            mesh_msgs_in: s.mesh_msgs_in,
            mesh_batches_waiting: s.mesh_batches_waiting,
            records_out: s.records_out,
            dropped_sends: s.dropped_sends,
            handshake_failures: s.handshake_failures,
            upgrade_failures: s.upgrade_failures,
            asleep: s.asleep,
            tick_lateness: s.tick_lateness,
        }
    }
    fn mesh_waiting(&self) -> u64 {
        (0..self.0.cores()).filter(|&s| s != self.0.shard()).map(|s| self.0.mesh_depth(s) as u64).sum()
    }
    fn traffic(&mut self, c: Conn) -> Option<Traffic> {
        let t = self.0.traffic(conn_id(c))?;
        Some(Traffic { bytes_in: t.bytes_in, bytes_out: t.bytes_out, records_out: t.records_out, queued: t.queued })
    }
    fn pause_reading(&mut self, c: Conn, paused: bool) {
        self.0.pause_reading(conn_id(c), paused)
    }
}

impl Handler for IrcShard {
    type Msg = Env;
    type Control = Control;

    fn on_accept(&mut self, io: &mut Io<Env>, c: ConnId, info: ConnInfo) {
        let now = io.now();
        let mut out = Out::new(io);
        let unix = out.unix();
        connection::accept(&mut self.st, &mut out, conn(c), info.peer, info.local, info.tls(), now, unix);
        connection::finish(&mut self.st, &mut out);
    }

    /// A server link this shard dialed is open (or could not be).
    fn on_connected(&mut self, io: &mut Io<Env>, c: ConnId, result: std::io::Result<ConnInfo>) {
        let now = io.now();
        let mut out = Out::new(io);
        let unix = out.unix();
        let result = result.map(|info| info.peer).map_err(|e| e.to_string());
        link::dial::connected(&mut self.st, &mut out, conn(c), result, now, unix);
        connection::finish(&mut self.st, &mut out);
    }

    fn on_client_cert(&mut self, io: &mut Io<Env>, c: ConnId, der: &[u8]) {
        let fp = crate::certfp::of_der(der);
        if let Some(client) = self.st.clients.get_mut(&conn(c)) {
            log::debug!("Client certificate {fp} [{}] shard={}", client.addr, self.st.me);
            client.rare_mut().certfp = Some(fp.into());
        }
        let _ = io;
    }

    /// The upgrade of a WebSocket client: its Origin against `[websocket] allowed_origins`,
    /// the subprotocol by its preference (`crate::websocket`).
    fn on_websocket(&mut self, io: &mut Io<Env>, c: ConnId, req: &WsRequest<'_>) -> WsAnswer {
        use crate::websocket::{choose, origin_allowed, Framing};
        let _ = io;
        let addr = self.st.clients.get(&conn(c)).map(|cl| cl.addr.to_string()).unwrap_or_default();
        let origin = req.origin.unwrap_or("-");
        if !origin_allowed(&self.st.cfg.websocket.allowed_origins, req.origin) {
            log::info!("WebSocket refused: [{addr}] shard={} origin={origin} (not in allowed_origins)", self.st.me);
            return WsAnswer::Refuse;
        }
        let (subprotocol, framing) = choose(req.subprotocols);
        log::info!(
            "WebSocket client: [{addr}] shard={} origin={origin} subprotocol={}",
            self.st.me,
            subprotocol.unwrap_or("-")
        );
        WsAnswer::Accept { subprotocol, binary: framing == Framing::Binary }
    }

    fn on_data(&mut self, io: &mut Io<Env>, c: ConnId, data: &[u8]) {
        let now = io.now();
        let mut out = Out::new(io);
        let unix = out.unix();
        connection::data(&mut self.st, &mut out, conn(c), data, now, unix);
        connection::finish(&mut self.st, &mut out);
    }

    fn on_disconnect(&mut self, io: &mut Io<Env>, c: ConnId, why: Disconnect) {
        let mut out = Out::new(io);
        connection::disconnected(&mut self.st, &mut out, conn(c), &why.to_string());
        connection::finish(&mut self.st, &mut out);
    }

    fn on_drained(&mut self, io: &mut Io<Env>, c: ConnId) {
        let now = io.now();
        let mut out = Out::new(io);
        let unix = out.unix();
        crate::commands::query::who::drained(&mut self.st, &mut out, conn(c), now, unix);
        connection::finish(&mut self.st, &mut out);
    }

    fn on_mesh(&mut self, io: &mut Io<Env>, from: usize, msg: Env) {
        let now = io.now();
        let mut out = Out::new(io);
        let unix = out.unix();
        inbox::receive(&mut self.st, &mut out, from, msg, now, unix);
        connection::finish(&mut self.st, &mut out);
    }

    fn on_tick(&mut self, io: &mut Io<Env>) {
        let now = io.now();
        let stats = io.stats();
        self.st.metrics.tick(now, stats.records_out, stats.tick_lateness);
        if !self.st.lagged.is_empty() {
            let mut out = Out::new(io);
            let unix = out.unix();
            crate::commands::flood::on_tick(&mut self.st, &mut out, now, unix);
            connection::finish(&mut self.st, &mut out);
        }
        if now.duration_since(self.last_check) < timers::CHECK_EVERY {
            return;
        }
        self.last_check = now;
        let mut out = Out::new(io);
        timers::on_tick(&mut self.st, &mut out, now);
        connection::finish(&mut self.st, &mut out);
    }

    /// Commands held by flood control are released by every tick; connections (pings,
    /// timeouts), links to dial and changes waiting on other shards are checked every second.
    /// A shard with none of these sleeps as long as the runtime lets it.
    fn tick_within(&self) -> Option<Duration> {
        let st = &self.st;
        if !st.lagged.is_empty() {
            return Some(Duration::ZERO);
        }
        let timed = !st.clients.is_empty()
            || st.cfg.links.iter().any(|l| l.autoconnect)
            || !st.mine.is_empty()
            || st.blocked.iter().any(|q| q.since.is_some());
        timed.then_some(timers::CHECK_EVERY)
    }

    fn on_control(&mut self, _io: &mut Io<Env>, ctl: Control) {
        match ctl {
            Control::Reload(cfg, done) => {
                self.st.reload(cfg);
                if let Some(done) = done {
                    let _ = done.send(self.st.me);
                }
                crate::commands::admission::recount_blocks(&mut self.st);
                let mut out = Out::new(_io);
                crate::commands::oper::snotice::deliver(&mut self.st, &mut out, "Configuration reloaded");
            }
            Control::Report(reply) => {
                let mut out = Out::new(_io);
                let _ = reply.send(crate::commands::report::shard_report(&self.st, &mut out, false));
            }
            Control::Rehashed { conn, errors } => {
                let mut out = Out::new(_io);
                crate::commands::oper::process::rehashed(&mut self.st, &mut out, conn, errors);
                connection::finish(&mut self.st, &mut out);
            }
        }
    }

    fn on_stop(&mut self, io: &mut Io<Env>) {
        let mut out = Out::new(io);
        let conns: Vec<Conn> = self.st.clients.keys().copied().collect();
        for c in conns {
            let host = self.st.clients[&c].host.clone();
            let line =
                Line::new().verb("ERROR").trailing(&format!("Closing Link: {host} (Server shutting down)")).finish();
            out.send(c, &line);
            out.close(c);
        }
        log::info!("Shard {} stopping: {} connections closed", self.st.me, self.st.clients.len());
    }
}

/// What a message weighs in a mesh batch (the runtime seals a batch by weight).
impl Envelope for Env {
    fn weight(&self) -> usize {
        match self {
            Env::Ordered(
                Ordered::UserNick { line, .. }
                | Ordered::ToUser { line, .. }
                | Ordered::ChanMsg(ChanMsg { line, .. })
                | Ordered::Invite { line, .. },
            ) => line.len() + 64,
            Env::Ordered(Ordered::Chan(_)) => 256,
            Env::Ordered(Ordered::UserIntro { .. }) => 160,
            _ => 32,
        }
    }
}
