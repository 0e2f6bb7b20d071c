//! Outgoing links: each `[[links]]` block with an `address` and `autoconnect` is tried by one
//! shard (the owner of its folded name), again after a failure with a wait that doubles from
//! `reconnect_min` up to `reconnect_max`, until the link is up.

use std::time::{Duration, Instant};

use crate::commands::outbox::Outbox;
use crate::local::link::Dial;
use crate::local::shard::ShardState;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The shard that dials block `block`.
pub fn dialer(st: &ShardState, block: usize) -> usize {
    st.cm.fold(&st.cfg.links[block].name).owner(st.cores)
}

/// Whether a link to the block's server is up (on any shard) or being made on this shard.
pub fn linked(st: &ShardState, block: usize) -> bool {
    let name = &st.cfg.links[block].name;
    st.links.values().any(|l| l.block == Some(block)) || st.servers.by_name(name).is_some()
}

/// Every tick: blocks due for an attempt are dialed.
pub fn on_tick(st: &mut ShardState, out: &mut dyn Outbox, now: Instant) {
    for block in 0..st.cfg.links.len() {
        let l = &st.cfg.links[block];
        let Some(addr) = l.address.filter(|_| l.autoconnect) else { continue };
        if dialer(st, block) != st.me || linked(st, block) {
            continue;
        }
        let due = st.dials.get(&block).is_none_or(|d| d.conn.is_none() && now >= d.next);
        if due {
            connect(st, out, block, addr, now);
        }
    }
}

/// Opens a connection for block `block` (autoconnect, or an operator's CONNECT).
pub fn connect(st: &mut ShardState, out: &mut dyn Outbox, block: usize, addr: std::net::SocketAddr, now: Instant) {
    let l = &st.cfg.links[block];
    let conn = if l.tls {
        // The config requires a fingerprint with tls; without one nothing would match.
        out.connect_tls(addr, CONNECT_TIMEOUT, &l.name, l.fingerprint.unwrap_or_default())
    } else {
        out.connect(addr, CONNECT_TIMEOUT)
    };
    let d = st.dials.entry(block).or_insert(Dial { conn: None, next: now, backoff: Duration::ZERO });
    d.conn = Some(conn);
    let tls = if st.cfg.links[block].tls { " tls" } else { "" };
    log::info!("Link connecting: {} [{addr}] shard={}{tls}", st.cfg.links[block].name, st.me);
}

/// The block of an outgoing connection, if `conn` is one this shard is dialing.
pub fn block_of(st: &ShardState, conn: crate::commands::outbox::Conn) -> Option<usize> {
    st.dials.iter().find(|(_, d)| d.conn == Some(conn)).map(|(b, _)| *b)
}

/// An attempt (or a link it made) ended: the next waits, longer each time in a row.
pub fn failed(st: &mut ShardState, block: usize, now: Instant) {
    let Some(l) = st.cfg.links.get(block) else { return };
    let (min, max) = (l.reconnect_min, l.reconnect_max);
    if let Some(d) = st.dials.get_mut(&block) {
        d.conn = None;
        d.backoff = if d.backoff.is_zero() { min } else { (d.backoff * 2).min(max) };
        d.next = now + d.backoff;
        log::info!("Link {}: next attempt in {} s", l.name, d.backoff.as_secs());
    }
}

/// The glue's word on a connection this shard dialed: open (the handshake starts), or failed.
pub fn connected(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    conn: crate::commands::outbox::Conn,
    result: Result<std::net::SocketAddr, String>,
    now: Instant,
    unix: u64,
) {
    let Some(block) = block_of(st, conn) else {
        // Not one of ours (the block went in a REHASH): nothing to serve it as.
        if result.is_ok() {
            out.close(conn);
        }
        return;
    };
    match result {
        Ok(peer) => super::handshake::opened(st, out, conn, block, peer, now, unix),
        Err(e) => {
            log::warn!("Link {}: connection failed: {e}", st.cfg.links[block].name);
            let text = format!("Link with {} failed: {e}", st.cfg.links[block].name);
            crate::commands::oper::snotice::snotice(st, out, &text);
            failed(st, block, now);
        }
    }
}
