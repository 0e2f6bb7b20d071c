//! What the IRC core needs from the runtime, as a trait: the core is written and unit-tested
//! against this; the glue implements it over the runtime's `Io`.

use std::time::Instant;

use super::envelope::Env;
pub use crate::local::conn::Conn;
use crate::metrics::{IoFigures, Traffic};

/// Requests from a shard to the main thread (which owns the config file).
pub enum ToMain {
    /// Re-read the config; answer `conn` on that shard.
    Rehash { conn: Conn },
    /// Stop, then start again with the same command line.
    Restart,
}

pub trait Outbox {
    fn now(&self) -> Instant;
    /// Wall-clock time of this turn, in milliseconds since the epoch (server-time, msgids).
    fn unix_ms(&self) -> u64;
    fn shard(&self) -> usize;
    fn cores(&self) -> usize;
    /// Queues bytes; returns what is now queued for the connection (None if it is gone).
    fn send(&mut self, conn: Conn, bytes: &[u8]) -> Option<usize>;
    /// `send` for bytes known to hold `lines` lines (fan-out of one line: no rescan per member).
    fn send_lines(&mut self, conn: Conn, bytes: &[u8], lines: u64) -> Option<usize> {
        let _ = lines;
        self.send(conn, bytes)
    }
    /// The connection's output leaves before that of connections written to after this call
    /// (its task is scheduled first): the requester of a change fanned out to many members.
    fn write_first(&mut self, conn: Conn) {
        let _ = conn;
    }
    /// Asks for `commands::query::who::drained` (through the runtime's `on_drained`) once at
    /// most `below` bytes wait in the connection's queue, on a later loop turn.
    fn when_drained(&mut self, conn: Conn, below: usize);
    /// Closes after the queued output is written.
    fn close(&mut self, conn: Conn);
    /// Closes at once, discarding queued output (a client that stopped reading).
    fn abort(&mut self, conn: Conn);
    fn to_shard(&mut self, to: usize, env: Env);
    /// A message to this shard itself, handled in a later turn, once what this one wrote has
    /// gone out: long work done in parts (a netsplit's departures).
    fn later(&mut self, env: Env);
    /// Opens a connection to another server from this shard (a server link), giving up after
    /// `timeout`; the outcome comes back through the glue (`link::handshake::opened`, or a
    /// failed dial).
    fn connect(&mut self, addr: std::net::SocketAddr, timeout: std::time::Duration) -> Conn;
    /// `connect`, then TLS as the client to the link `link`, accepting only the certificate
    /// whose SHA-256 is `fingerprint`; the outcome comes back once the handshake is done.
    fn connect_tls(
        &mut self,
        addr: std::net::SocketAddr,
        timeout: std::time::Duration,
        link: &str,
        fingerprint: crate::certpin::Fingerprint,
    ) -> Conn;
    /// Asks the process to stop (DIE).
    fn request_stop(&mut self);
    /// Runs slow work on a blocking thread; its result comes back as a message from this shard.
    fn blocking(&mut self, job: Box<dyn FnOnce() -> Env + Send>);
    /// A request for the main thread (config and ban files).
    fn to_main(&mut self, msg: ToMain);
    /// The runtime's counters for this shard (bytes, records, mesh).
    fn io_stats(&self) -> IoFigures;
    /// Mesh messages waiting to leave this shard.
    fn mesh_waiting(&self) -> u64;
    /// What a connection has moved so far.
    fn traffic(&mut self, conn: Conn) -> Option<Traffic>;
    /// Stops or resumes reading a connection (TCP back-pressure while its input waits).
    /// Without a socket (tests, benchmarks) there is nothing to hold back.
    fn pause_reading(&mut self, conn: Conn, paused: bool) {
        let _ = (conn, paused);
    }
}

/// An [`Outbox`] that keeps what the core produced, for unit tests and benchmarks: bytes per
/// connection, closes, and mesh messages (which the caller delivers with
/// `commands::inbox::receive` to play the other shards).
pub struct Recorder {
    pub shard: usize,
    pub cores: usize,
    pub now: Instant,
    pub unix_ms: u64,
    /// Keep the bytes per connection (tests) or only count them (benchmarks).
    pub keep: bool,
    pub bytes: u64,
    pub out: ahash::AHashMap<Conn, Vec<u8>>,
    pub closed: Vec<Conn>,
    pub mesh: Vec<(usize, Env)>,
    pub stop: bool,
    pub main: Vec<ToMain>,
    /// Connections that asked to hear when their queue drains (a recorder's always is).
    pub drains: Vec<Conn>,
    /// Connections asked for with `connect`, and where to.
    pub connects: Vec<(Conn, std::net::SocketAddr)>,
    /// Those of `connects` asked for over TLS, with the fingerprint pinned.
    pub tls_connects: Vec<(Conn, crate::certpin::Fingerprint)>,
}

impl Recorder {
    pub fn new(shard: usize, cores: usize, keep: bool) -> Recorder {
        Recorder {
            shard,
            cores,
            now: Instant::now(),
            unix_ms: crate::clock::unix_now_ms(),
            keep,
            bytes: 0,
            out: Default::default(),
            closed: Vec::new(),
            mesh: Vec::new(),
            stop: false,
            main: Vec::new(),
            drains: Vec::new(),
            connects: Vec::new(),
            tls_connects: Vec::new(),
        }
    }

    /// Everything sent to `conn` so far, as text.
    pub fn text(&self, conn: Conn) -> String {
        self.out.get(&conn).map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default()
    }
}

impl Outbox for Recorder {
    fn now(&self) -> Instant {
        self.now
    }
    fn unix_ms(&self) -> u64 {
        self.unix_ms
    }
    fn shard(&self) -> usize {
        self.shard
    }
    fn cores(&self) -> usize {
        self.cores
    }
    fn send(&mut self, conn: Conn, bytes: &[u8]) -> Option<usize> {
        if self.closed.contains(&conn) {
            return None;
        }
        self.bytes += bytes.len() as u64;
        if self.keep {
            let v = self.out.entry(conn).or_default();
            v.extend_from_slice(bytes);
            Some(v.len())
        } else {
            Some(0)
        }
    }
    fn when_drained(&mut self, conn: Conn, _below: usize) {
        self.drains.push(conn);
    }
    fn close(&mut self, conn: Conn) {
        self.closed.push(conn);
    }
    fn abort(&mut self, conn: Conn) {
        self.closed.push(conn);
    }
    fn to_shard(&mut self, to: usize, env: Env) {
        self.mesh.push((to, env));
    }
    fn later(&mut self, env: Env) {
        self.mesh.push((self.shard, env));
    }
    fn connect(&mut self, addr: std::net::SocketAddr, _timeout: std::time::Duration) -> Conn {
        // Numbered from the top, clear of the connections tests make.
        let conn = Conn(u64::MAX - self.connects.len() as u64);
        self.connects.push((conn, addr));
        conn
    }
    fn connect_tls(
        &mut self,
        addr: std::net::SocketAddr,
        timeout: std::time::Duration,
        _link: &str,
        fingerprint: crate::certpin::Fingerprint,
    ) -> Conn {
        let conn = self.connect(addr, timeout);
        self.tls_connects.push((conn, fingerprint));
        conn
    }
    fn request_stop(&mut self) {
        self.stop = true;
    }
    fn blocking(&mut self, job: Box<dyn FnOnce() -> Env + Send>) {
        // Tests and benchmarks run the job at once and deliver its result like the runtime.
        let env = job();
        self.mesh.push((self.shard, env));
    }
    fn to_main(&mut self, msg: ToMain) {
        self.main.push(msg);
    }
    fn io_stats(&self) -> IoFigures {
        IoFigures { bytes_out: self.bytes, ..Default::default() }
    }
    fn mesh_waiting(&self) -> u64 {
        0
    }
    fn traffic(&mut self, conn: Conn) -> Option<Traffic> {
        let n = self.out.get(&conn).map_or(0, |v| v.len() as u64);
        (!self.closed.contains(&conn)).then_some(Traffic { bytes_out: n, ..Default::default() })
    }
}
