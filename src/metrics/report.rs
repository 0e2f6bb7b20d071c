//! A snapshot of one shard's figures, made on that shard and sent to whoever asked (a STATS
//! request on another shard, or the metrics endpoint).

use std::time::Duration;

use super::{Counters, Histogram, Usage};

/// One connection, for STATS l.
#[derive(Clone, Debug)]
pub struct ConnReport {
    /// `nick[user@host]`, or `*[ip]` before registration.
    pub name: String,
    pub traffic: super::Traffic,
    pub lines_in: u64,
    pub open: Duration,
}

/// One server link of a shard, for STATS l.
#[derive(Clone, Debug)]
pub struct LinkReport {
    /// The peer's server name (or the block's, before its SERVER is accepted).
    pub name: String,
    /// The peer's address, shown to operators.
    pub ip: String,
    /// Registered: part of the network.
    pub up: bool,
    /// `up, synced in N ms`, `up, bursting`, or how far the handshake got.
    pub state: String,
    pub caps: String,
    pub traffic: super::Traffic,
    pub lines_in: u64,
    pub lines_out: u64,
    pub open: Duration,
}

#[derive(Clone, Debug, Default)]
pub struct ShardReport {
    pub shard: usize,
    pub cpu: Option<usize>,
    pub connections: u64,
    pub users: u64,
    pub unregistered: u64,
    pub opers: u64,
    /// Channels whose home is this shard (their sum over shards is the channel count).
    pub channels_homed: u64,
    /// Mesh messages waiting to leave, and batches other shards sent that wait to be handled.
    pub mesh_out_waiting: u64,
    pub mesh_in_waiting: u64,
    pub rate_in: u64,
    pub rate_out: u64,
    pub turn_max: Duration,
    /// Sequenced channel changes held for their turn now, and the longest wait among them.
    pub seq_held: u64,
    pub seq_oldest_wait: Duration,
    pub counters: Counters,
    pub io: super::IoFigures,
    /// Indexed like `commands::COMMANDS`.
    pub usage: Vec<Usage>,
    /// Connections of this shard per class (indexed like the config's classes).
    pub classes: Vec<u64>,
    pub message_latency: Histogram,
    pub broadcast_latency: [Histogram; 4],
    /// Filled only when asked for (STATS l by an operator); server links are in `links`.
    pub conns: Vec<ConnReport>,
    /// The shard's server links (registering or up).
    pub links: Vec<LinkReport>,
    /// Servers of the network other than this one, in the shard's copy of the network map.
    pub servers: u64,
    /// From a link's opening to the end of its peer's burst, for the links of this shard.
    pub burst_time: Histogram,
    /// From a message's arrival to its write on a server link of this shard.
    pub link_latency: Histogram,
}

impl ShardReport {
    /// Connection attempts that did not become a connection: refused at admission, refused
    /// for capacity, a failed TLS handshake or WebSocket upgrade.
    pub fn connection_failures(&self) -> u64 {
        self.counters.refused + self.io.refused_full + self.io.handshake_failures + self.io.upgrade_failures
    }
}
