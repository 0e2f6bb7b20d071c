//! A shard's figures as a [`ShardReport`] (the metrics' plain data), built here by the core
//! that owns the state, for STATS and the metrics endpoint: `metrics/` knows nothing of it.

use crate::commands::Outbox;
use crate::local::link::Phase;
use crate::local::shard::ShardState;
use crate::metrics::{ConnReport, LinkReport, ShardReport};

/// This shard's figures now; `with_conns` adds one entry per connection.
pub fn shard_report(st: &ShardState, out: &mut dyn Outbox, with_conns: bool) -> ShardReport {
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
            if st.links.contains_key(&c.conn) {
                continue;
            }
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
    let links = links(st, out, now);
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
        links,
        servers: st.servers.len() as u64,
        burst_time: m.burst_time.clone(),
        link_latency: m.link_latency.clone(),
    }
}

/// This shard's server links, oldest first.
fn links(st: &ShardState, out: &mut dyn Outbox, now: std::time::Instant) -> Vec<LinkReport> {
    let mut links: Vec<_> = st.links.iter().collect();
    links.sort_by_key(|(_, l)| l.opened);
    let mut found = Vec::with_capacity(links.len());
    for (&conn, l) in links {
        let Some(c) = st.clients.get(&conn) else { continue };
        let traffic = out.traffic(conn).unwrap_or_default();
        let block = l.block.and_then(|b| st.cfg.links.get(b)).map(|b| b.name.as_str());
        let name = l
            .peer
            .as_ref()
            .map(|p| p.1.to_string())
            .or_else(|| block.map(str::to_string))
            .unwrap_or_else(|| "*".into());
        let state = match (l.phase, l.synced) {
            (Phase::Up, Some(at)) => format!("up, synced in {} ms", at.saturating_duration_since(l.opened).as_millis()),
            (Phase::Up, None) => "up, bursting".to_string(),
            (Phase::Claiming, _) => "registering".to_string(),
            (Phase::Registering, _) => "handshake (inbound)".to_string(),
            (Phase::Connecting, _) => "handshake (outbound)".to_string(),
        };
        found.push(LinkReport {
            name,
            ip: crate::local::client::display_ip(c.addr),
            up: l.is_up(),
            state,
            caps: l.caps.join(" "),
            traffic,
            lines_in: c.lines_in,
            lines_out: l.lines_out,
            open: now.saturating_duration_since(l.opened),
        });
    }
    found
}
