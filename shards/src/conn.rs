//! Connection identities and the per-shard connection table (slots with generations, so a stale
//! id never reaches a newer connection that reused the slot).

use std::fmt;
use std::net::SocketAddr;
use std::task::Waker;
use std::time::Instant;

/// A connection of this shard. Only meaningful on the shard that accepted or opened it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    idx: u32,
    gen: u32,
}

impl ConnId {
    /// A number unique among this shard's live connections (for logs and maps).
    pub fn index(self) -> u32 {
        self.idx
    }

    /// The id as one number (for services that keep their own handle type).
    pub fn to_u64(self) -> u64 {
        (self.gen as u64) << 32 | self.idx as u64
    }

    pub fn from_u64(v: u64) -> ConnId {
        ConnId { idx: v as u32, gen: (v >> 32) as u32 }
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}.{}", self.idx, self.gen)
    }
}

/// What the runtime knows about a new connection.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// Who opened it: a client of one of our listeners, or this shard.
    pub origin: Origin,
}

impl ConnInfo {
    /// The connection is TLS. The handler hears of it before the handshake (to admit or refuse
    /// it); output queued meanwhile is written once the handshake is done, and a connection the
    /// handler closes before then ends without a word.
    pub fn tls(&self) -> bool {
        matches!(self.origin, Origin::Inbound { tls: true, .. })
    }

    /// The connection came to a WebSocket listener: the handler hears of it before the upgrade
    /// (and is asked about it then: `Handler::on_websocket`), as it does of a TLS one.
    pub fn websocket(&self) -> bool {
        matches!(self.origin, Origin::Inbound { websocket: true, .. })
    }
}

/// Which side opened a connection. Once open, both kinds are served alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Accepted on the listener at `listener` in [`crate::RuntimeConfig::listeners`], whose
    /// `tag` it carries (see [`crate::ListenSpec`]), with TLS and WebSocket when that listener
    /// has them.
    /// Eight bytes: every connection's task holds its `ConnInfo` for its whole life (16 bytes
    /// here cost ~25 bytes a connection, measured with connection-stress).
    Inbound { listener: u16, tls: bool, websocket: bool, tag: u32 },
    /// Opened by this shard, asked with [`crate::Io::connect`]; plain TCP.
    Outbound,
}

/// Why the runtime ended a connection (handler-initiated closes are not reported back).
#[derive(Debug)]
pub enum Disconnect {
    /// The peer closed its side.
    PeerClosed,
    /// A read or write failed.
    Io(std::io::Error),
}

impl fmt::Display for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disconnect::PeerClosed => f.write_str("Connection closed"),
            Disconnect::Io(e) => match e.kind() {
                std::io::ErrorKind::ConnectionReset => f.write_str("Connection reset by peer"),
                std::io::ErrorKind::BrokenPipe => f.write_str("Broken pipe"),
                std::io::ErrorKind::TimedOut => f.write_str("Connection timed out"),
                _ => write!(f, "Read error: {e}"),
            },
        }
    }
}

/// Output side of one connection, owned by the shard.
pub(crate) struct Slot {
    pub(crate) gen: u32,
    pub(crate) live: bool,
    /// Bytes queued for the socket; `out[sent..]` is still to write.
    pub(crate) out: Vec<u8>,
    pub(crate) sent: usize,
    pub(crate) waker: Option<Waker>,
    /// Set once the handler (or the runtime) decided to close: flush, then end, by this time.
    pub(crate) closing: Option<Instant>,
    /// The handler asked not to read this connection for now (its input waits): the socket's
    /// own buffer fills and TCP pushes back on the sender, instead of the server buffering.
    pub(crate) paused: bool,
    /// On the shard's list of closing connections whose deadline the tick watches (a flag,
    /// not a search of the list: closing thousands at once stays linear).
    pub(crate) watched: bool,
    pub(crate) moved: Moved,
    /// The handler wants `on_drained` once at most this many bytes wait (`Io::when_drained`).
    pub(crate) drain_below: Option<usize>,
    /// A plain TCP connection's socket, once its task serves it: the shard's writer sends its
    /// output directly (see writer.rs). `None` for TLS, whose task writes through rustls.
    pub(crate) fd: Option<std::os::fd::RawFd>,
    /// On the writer's list for this turn.
    pub(crate) dirty: bool,
    /// May sleep without a task once quiet (a plain accepted connection; see sleep.rs), or
    /// shed its framing state (a WebSocket one; see ws.rs).
    pub(crate) sleeper: bool,
    /// A WebSocket connection that shed its framing state: a quiet scan has nothing to wake
    /// it for until it reads or writes again.
    pub(crate) shed: bool,
    /// Sleeps: its socket waits in the shard's epoll and `waker` wakes it.
    pub(crate) asleep: bool,
    /// Scans since its last input (`Table::scan_quiet`).
    pub(crate) quiet: u8,
}

/// What a connection moved so far; [`Traffic`] adds what waits in its queue.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Moved {
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) records_out: u64,
}

/// What one connection has moved so far (STATS l). Records are counted by their `\n`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub bytes_in: u64,
    /// Bytes queued for the connection (written, or still in its queue).
    pub bytes_out: u64,
    pub records_out: u64,
    /// Bytes queued and not yet accepted by the kernel.
    pub queued: u64,
}

/// Output buffers above this capacity are released once drained, so that an idle connection
/// does not keep the memory of its largest burst.
const KEEP_CAPACITY: usize = 512;

impl Slot {
    pub(crate) fn queued(&self) -> usize {
        self.out.len() - self.sent
    }

    pub(crate) fn consumed(&mut self, n: usize) {
        self.sent += n;
        if self.sent == self.out.len() {
            self.sent = 0;
            if self.out.capacity() > KEEP_CAPACITY {
                self.out = Vec::new();
            } else {
                self.out.clear();
            }
        }
    }

    pub(crate) fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// The connection table: slot reuse with a generation counter.
#[derive(Default)]
pub(crate) struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
}

impl Table {
    pub(crate) fn insert(&mut self) -> ConnId {
        self.live += 1;
        if let Some(idx) = self.free.pop() {
            let s = &mut self.slots[idx as usize];
            s.gen = s.gen.wrapping_add(1);
            s.live = true;
            s.closing = None;
            s.paused = false;
            s.watched = false;
            s.sent = 0;
            s.out.clear();
            s.moved = Moved::default();
            s.drain_below = None;
            s.fd = None;
            s.dirty = false;
            s.sleeper = false;
            s.shed = false;
            s.asleep = false;
            s.quiet = 0;
            return ConnId { idx, gen: s.gen };
        }
        let idx = self.slots.len() as u32;
        self.slots.push(Slot {
            gen: 0,
            live: true,
            out: Vec::new(),
            sent: 0,
            waker: None,
            closing: None,
            paused: false,
            watched: false,
            moved: Moved::default(),
            drain_below: None,
            fd: None,
            dirty: false,
            sleeper: false,
            shed: false,
            asleep: false,
            quiet: 0,
        });
        ConnId { idx, gen: 0 }
    }

    pub(crate) fn get(&mut self, id: ConnId) -> Option<&mut Slot> {
        match self.slots.get_mut(id.idx as usize) {
            Some(s) if s.live && s.gen == id.gen => Some(s),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, id: ConnId) {
        if let Some(s) = self.get(id) {
            s.live = false;
            s.waker = None;
            s.out = Vec::new();
            s.sent = 0;
            s.drain_below = None;
            s.fd = None;
            self.free.push(id.idx);
            self.live -= 1;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Counts a quiet scan for every awake connection that may sleep and has nothing in hand
    /// (no output waiting, no close, no drain, not paused); wakes the task of each that has been
    /// quiet `scans` times, which then goes to sleep (see sleep.rs). Called about once a second.
    pub(crate) fn scan_quiet(&mut self, scans: u8) {
        for s in &mut self.slots {
            if !s.live || !s.sleeper || s.asleep || s.shed {
                continue;
            }
            if s.closing.is_some() || s.paused || s.drain_below.is_some() || s.queued() > 0 {
                s.quiet = 0;
                continue;
            }
            s.quiet = s.quiet.saturating_add(1);
            if s.quiet >= scans {
                s.wake();
            }
        }
    }

    pub(crate) fn ids(&self) -> Vec<ConnId> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.live)
            .map(|(i, s)| ConnId { idx: i as u32, gen: s.gen })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_ids_do_not_reach_a_reused_slot() {
        let mut t = Table::default();
        let a = t.insert();
        t.remove(a);
        let b = t.insert();
        assert_eq!(a.index(), b.index());
        assert!(t.get(a).is_none());
        assert!(t.get(b).is_some());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn drained_buffers_release_large_capacity() {
        let mut t = Table::default();
        let a = t.insert();
        let s = t.get(a).unwrap();
        s.out.extend_from_slice(&[b'x'; 4096]);
        s.consumed(4000);
        assert_eq!(s.queued(), 96);
        s.consumed(96);
        assert_eq!(s.queued(), 0);
        assert_eq!(s.out.capacity(), 0);
    }
}

#[cfg(test)]
mod size {
    /// A connection's task keeps its `ConnInfo` (two addresses and the origin) for its life.
    #[test]
    fn conn_info_is_no_larger_than_two_addresses_and_eight_bytes() {
        assert_eq!(std::mem::size_of::<super::Origin>(), 8);
        assert!(std::mem::size_of::<super::ConnInfo>() <= 2 * std::mem::size_of::<std::net::SocketAddr>() + 8);
    }
}
