//! The handler's window onto the runtime: queue output for a connection, close it, open one,
//! send a message to another shard. Nothing here blocks or performs I/O itself; the connection
//! tasks, the connector and the mesh flusher do that once the handler returns.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::conn::{ConnId, Table, Traffic};
use crate::mesh::{BatchPolicy, Batcher};
use crate::notify::Notify;
use crate::outbound::Connect;
use crate::{Envelope, ShardId};

/// Counters the runtime keeps per shard.
#[derive(Clone, Debug, Default)]
pub struct IoStats {
    pub accepted: u64,
    pub refused_full: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub mesh_msgs_out: u64,
    pub mesh_batches_out: u64,
    pub mesh_msgs_in: u64,
    /// Mesh batches other shards have handed to this shard's queues and it has not yet handled
    /// (updated every tick).
    pub mesh_batches_waiting: u64,
    /// Records (`\n`-terminated) queued for connections.
    pub records_out: u64,
    /// Sends refused because the connection was gone or closing.
    pub dropped_sends: u64,
    /// TLS handshakes that failed or timed out.
    pub handshake_failures: u64,
    /// WebSocket upgrades that failed, timed out or were refused (403).
    pub upgrade_failures: u64,
    /// Connections asleep now: quiet, without a task, their socket in the shard's epoll.
    pub asleep: u64,
    /// Lateness of the last periodic tick: how long the loop was busy past the tick's deadline.
    pub tick_lateness: Duration,
}

pub struct Io<M: Envelope> {
    shard: ShardId,
    cores: usize,
    pub(crate) now: Instant,
    pub(crate) conns: Table,
    pub(crate) mesh: Batcher<M>,
    pub(crate) loopback: VecDeque<M>,
    pub(crate) loopback_notify: Rc<Notify>,
    /// Messages to itself for a later turn ([`Io::later`]).
    pub(crate) later: VecDeque<M>,
    pub(crate) later_notify: Rc<Notify>,
    /// Plain connections with output queued this turn, for the shard's writer (writer.rs).
    pub(crate) dirty: Vec<ConnId>,
    pub(crate) writer_notify: Rc<Notify>,
    pub(crate) stats: IoStats,
    pub(crate) close_grace: Duration,
    pub(crate) stop_requested: bool,
    /// Work to run on a blocking thread; each result comes back through `Handler::on_mesh`.
    pub(crate) jobs: Vec<Box<dyn FnOnce() -> M + Send>>,
    pub(crate) jobs_notify: Rc<Notify>,
    /// Connections asked for with [`Io::connect`], not yet started.
    pub(crate) connects: Vec<Connect>,
    pub(crate) connects_notify: Rc<Notify>,
    /// Messages for the main thread (`Runtime::requests`).
    pub(crate) to_main: Option<crossbeam_channel::Sender<(ShardId, Box<dyn std::any::Any + Send>)>>,
}

impl<M: Envelope> Io<M> {
    pub(crate) fn new(shard: ShardId, cores: usize, policy: BatchPolicy, close_grace: Duration) -> Self {
        Io {
            shard,
            cores,
            now: Instant::now(),
            conns: Table::default(),
            mesh: Batcher::new(cores, policy),
            loopback: VecDeque::new(),
            loopback_notify: Rc::new(Notify::default()),
            later: VecDeque::new(),
            later_notify: Rc::new(Notify::default()),
            dirty: Vec::new(),
            writer_notify: Rc::new(Notify::default()),
            stats: IoStats::default(),
            close_grace,
            stop_requested: false,
            jobs: Vec::new(),
            jobs_notify: Rc::new(Notify::default()),
            connects: Vec::new(),
            connects_notify: Rc::new(Notify::default()),
            to_main: None,
        }
    }

    /// This shard's index.
    pub fn shard(&self) -> ShardId {
        self.shard
    }

    /// Number of shards in the process.
    pub fn cores(&self) -> usize {
        self.cores
    }

    /// The time the runtime read before calling the handler (one clock read per event).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Queues bytes for a connection; they are written when its task next runs (after the
    /// current handler call returns), coalesced with everything else queued meanwhile.
    /// Returns the bytes now waiting, or `None` if the connection is gone or closing.
    pub fn send(&mut self, conn: ConnId, bytes: &[u8]) -> Option<usize> {
        let records = memchr::memchr_iter(b'\n', bytes).count() as u64;
        self.send_records(conn, bytes, records)
    }

    /// [`Io::send`] for bytes the caller knows hold `records` records (`\n`-terminated): the
    /// same line fanned out to many connections is not scanned once per connection.
    pub fn send_records(&mut self, conn: ConnId, bytes: &[u8], records: u64) -> Option<usize> {
        let Some(slot) = self.conns.get(conn).filter(|s| s.closing.is_none()) else {
            self.stats.dropped_sends += 1;
            return None;
        };
        let was_empty = slot.queued() == 0;
        slot.moved.bytes_out += bytes.len() as u64;
        slot.moved.records_out += records;
        self.stats.records_out += records;
        slot.out.extend_from_slice(bytes);
        if was_empty {
            Self::schedule_write(slot, conn, &mut self.dirty, &self.writer_notify);
        }
        Some(slot.queued())
    }

    /// Output just queued for an idle connection: a plain one whose task is parked goes on the
    /// writer's list (one task writes every such connection once per turn, without waking
    /// each one's task); a TLS one, or one not yet serving, has its task woken. A connection
    /// whose task is running now (its waker is out) flushes it itself before it parks.
    fn schedule_write(slot: &mut crate::conn::Slot, conn: ConnId, dirty: &mut Vec<ConnId>, writer: &Notify) {
        match slot.fd {
            Some(_) if slot.waker.is_some() => {
                if !slot.dirty {
                    slot.dirty = true;
                    dirty.push(conn);
                    writer.notify();
                }
            }
            _ => slot.wake(),
        }
    }

    /// Puts the connection first in line for this turn's writes (what it will have queued by
    /// then leaves before the output of connections written to after this call): a requester's
    /// reply, built after a fan-out to a thousand members, leaves before their copies.
    pub fn write_first(&mut self, conn: ConnId) {
        if let Some(slot) = self.conns.get(conn) {
            Self::schedule_write(slot, conn, &mut self.dirty, &self.writer_notify);
        }
    }

    /// Bytes queued and not yet accepted by the kernel.
    pub fn queued(&mut self, conn: ConnId) -> usize {
        self.conns.get(conn).map_or(0, |s| s.queued())
    }

    /// Asks for one `Handler::on_drained` call once at most `below` bytes wait in the
    /// connection's queue: a long reply is built a piece at a time, as the client reads it.
    /// The call comes from the connection's task on a later turn, never from this one.
    pub fn when_drained(&mut self, conn: ConnId, below: usize) {
        if let Some(slot) = self.conns.get(conn).filter(|s| s.closing.is_none()) {
            slot.drain_below = Some(below);
            slot.wake();
        }
    }

    /// What a connection has moved so far, and what waits in its queue.
    pub fn traffic(&mut self, conn: ConnId) -> Option<Traffic> {
        let slot = self.conns.get(conn)?;
        let m = slot.moved;
        Some(Traffic {
            bytes_in: m.bytes_in,
            bytes_out: m.bytes_out,
            records_out: m.records_out,
            queued: slot.queued() as u64,
        })
    }

    /// Whether the connection exists and is not closing.
    pub fn is_open(&mut self, conn: ConnId) -> bool {
        self.conns.get(conn).is_some_and(|s| s.closing.is_none())
    }

    /// Ends a connection after what is queued has been written (bounded by the close grace).
    /// The handler is not called back for connections it closes itself.
    pub fn close(&mut self, conn: ConnId) {
        let deadline = self.now + self.close_grace;
        if let Some(slot) = self.conns.get(conn) {
            if slot.closing.is_none() {
                slot.closing = Some(deadline);
                slot.wake();
            }
        }
    }

    /// Stops (or resumes) reading a connection: while its input waits, the kernel's buffer and
    /// then the peer's TCP window hold what it sends next.
    pub fn pause_reading(&mut self, conn: ConnId, paused: bool) {
        if let Some(slot) = self.conns.get(conn) {
            if slot.paused != paused {
                slot.paused = paused;
                if !paused {
                    slot.wake();
                }
            }
        }
    }

    /// Ends a connection at once, discarding what is queued (e.g. a peer that stopped reading).
    pub fn abort(&mut self, conn: ConnId) {
        if let Some(slot) = self.conns.get(conn) {
            slot.out = Vec::new();
            slot.sent = 0;
            slot.closing = Some(self.now);
            slot.wake();
        }
    }

    /// Opens a plain TCP connection to `addr` from this shard, giving up after `timeout`. The id
    /// comes back at once; the outcome reaches `Handler::on_connected` on a later turn (an
    /// error if the process is full, as for accepted connections). From then on the
    /// connection is served like an accepted one (`on_data`, `on_disconnect`, `send`, `close`).
    /// Until then `Io` already treats it as open: output queued is written once connected, and
    /// `close` or `abort` gives up the attempt without a call back.
    pub fn connect(&mut self, addr: SocketAddr, timeout: Duration) -> ConnId {
        let conn = self.conns.insert();
        self.connects.push(Connect { conn, addr, timeout, tls: None });
        self.connects_notify.notify();
        conn
    }

    /// [`Io::connect`], then a TLS handshake as the client, with `config` (its certificate
    /// verifier decides whom to trust) asking for `server_name` (SNI). `Handler::on_connected`
    /// is called once the handshake is done, or with its error (it gets `timeout` too, after
    /// the connect).
    pub fn connect_tls(
        &mut self,
        addr: SocketAddr,
        timeout: Duration,
        config: Arc<rustls::ClientConfig>,
        server_name: rustls::pki_types::ServerName<'static>,
    ) -> ConnId {
        let conn = self.conns.insert();
        self.connects.push(Connect { conn, addr, timeout, tls: Some((config, server_name)) });
        self.connects_notify.notify();
        conn
    }

    /// Sends a message to a shard (this one included). Messages to one destination arrive in
    /// the order they were sent.
    pub fn mesh(&mut self, to: ShardId, msg: M) {
        if to == self.shard {
            self.loopback.push_back(msg);
            self.loopback_notify.notify();
        } else {
            self.mesh.push(to, msg);
        }
    }

    /// A message to this shard's own handler for a later turn: after every other task that is
    /// ready has run (the connections' writes, the mesh batches out), so that a long piece of
    /// work done in parts lets what each part produced leave before the next part starts.
    pub fn later(&mut self, msg: M) {
        self.later.push_back(msg);
        self.later_notify.notify();
    }

    /// Messages waiting to leave for `to` (the mesh queue depth this side of the SPSC queue).
    pub fn mesh_depth(&self, to: ShardId) -> usize {
        if to == self.shard {
            self.loopback.len()
        } else {
            self.mesh.depth[to]
        }
    }

    /// Live connections on this shard.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    pub fn conn_ids(&self) -> Vec<ConnId> {
        self.conns.ids()
    }

    pub fn stats(&self) -> IoStats {
        let mut s = self.stats.clone();
        s.mesh_msgs_out = self.mesh.sent_msgs;
        s.mesh_batches_out = self.mesh.sent_batches;
        s
    }

    /// Runs `job` on a blocking thread (slow work: password hashes, name lookups, file writes)
    /// and hands its result to this shard's `Handler::on_mesh`, as if this shard had sent it.
    pub fn blocking(&mut self, job: impl FnOnce() -> M + Send + 'static) {
        self.jobs.push(Box::new(job));
        self.jobs_notify.notify();
    }

    /// Sends a message to the main thread (see [`crate::Runtime::requests`]).
    pub fn to_main(&mut self, msg: Box<dyn std::any::Any + Send>) {
        if let Some(tx) = &self.to_main {
            let _ = tx.send((self.shard, msg));
        }
    }

    /// Asks the runtime to stop this process (every shard), as a signal would.
    pub fn request_stop(&mut self) {
        self.stop_requested = true;
    }
}
