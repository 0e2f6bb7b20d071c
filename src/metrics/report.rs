//! A snapshot of one shard's figures, made on that shard and sent to whoever asked (a STATS
//! request on another shard, or the metrics endpoint).

use std::time::Duration;

use super::{Counters, Histogram, Usage};
use crate::commands::Outbox;
use crate::local::shard::ShardState;

/// One connection, for STATS l.
#[derive(Clone, Debug)]
pub struct ConnReport {
    /// `nick[user@host]`, or `*[ip]` before registration.
    pub name: String,
    pub traffic: shards::Traffic,
    pub lines_in: u64,
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
    pub io: shards::IoStats,
    /// Indexed like `commands::COMMANDS`.
    pub usage: Vec<Usage>,
    /// Connections of this shard per class (indexed like the config's classes).
    pub classes: Vec<u64>,
    pub message_latency: Histogram,
    pub broadcast_latency: [Histogram; 4],
    /// Filled only when asked for (STATS l by an operator).
    pub conns: Vec<ConnReport>,
}

impl ShardReport {
    /// This shard's figures now; `with_conns` adds one entry per connection.
    pub fn build(st: &ShardState, out: &mut dyn Outbox, with_conns: bool) -> ShardReport {
        let m = &st.metrics;
        let now = out.now();
        let opers = st
            .local
            .keys()
            .filter(|u| st.directory.get(u).is_some_and(|u| u.modes.has(crate::state::UserModes::OPER)))
            .count();
        let mut conns = Vec::new();
        if with_conns {
            let mut clients: Vec<_> = st.clients.values().collect();
            clients.sort_by_key(|c| c.connected_at);
            for c in clients {
                let Some(traffic) = out.traffic(c.conn) else { continue };
                let name = match (&c.nick, &c.user) {
                    (Some((nick, _)), Some((user, _))) if c.registered => format!("{nick}[{user}@{}]", c.ip),
                    (Some((nick, _)), _) => format!("{nick}[unknown@{}]", c.ip),
                    _ => format!("*[unknown@{}]", c.ip),
                };
                conns.push(ConnReport {
                    name,
                    traffic,
                    lines_in: c.lines_in,
                    open: now.saturating_duration_since(c.connected_at),
                });
            }
        }
        let io = out.io_stats();
        let (seq_held, seq_oldest_wait) = crate::commands::channel::stall::waiting(st, now);
        ShardReport {
            shard: st.me,
            cpu: st.cpu,
            connections: st.clients.len() as u64,
            users: st.local.len() as u64,
            unregistered: st.local_unregistered() as u64,
            opers: opers as u64,
            channels_homed: st.homes.len() as u64,
            mesh_out_waiting: out.mesh_waiting(),
            mesh_in_waiting: io.mesh_batches_waiting,
            rate_in: m.rate_in,
            rate_out: m.rate_out,
            turn_max: m.turn_max,
            seq_held,
            seq_oldest_wait,
            counters: m.c,
            io,
            usage: m.usage.clone(),
            classes: st.class_counts.iter().map(|&n| n as u64).collect(),
            message_latency: m.message_latency.clone(),
            broadcast_latency: m.broadcast_latency.clone(),
            conns,
        }
    }

    /// Connection attempts that did not become a connection: refused at admission, refused
    /// for capacity, or a failed TLS handshake.
    pub fn connection_failures(&self) -> u64 {
        self.counters.refused + self.io.refused_full + self.io.handshake_failures
    }
}
