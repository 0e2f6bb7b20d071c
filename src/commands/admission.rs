//! Who may connect: D-lines, connections per IP and per address block, and the per-IP
//! connection throttle. The counts are kept on every shard: each tells the others when one of
//! its connections opens or closes, so a limit holds whichever shard the kernel picked. Two
//! shards admitting from one address in the same instant can overshoot a limit by at most one
//! connection per other shard; the next one is refused everywhere.

use std::net::IpAddr;
use std::time::Instant;

use super::delivery::broadcast;
use super::envelope::Env;
use super::oper::bans::dline_for;
use super::outbox::Outbox;
use crate::commands::envelope::Control;
use crate::local::shard::ShardState;
use crate::state::bans::block_of;

/// Why a new connection from `ip` in `class` is refused, if it is.
pub fn refusal(st: &mut ShardState, ip: IpAddr, class: usize, now: Instant, unix: u64) -> Option<String> {
    if let Some(b) = dline_for(st, ip, unix) {
        return Some(format!("D-lined: {}", b.reason));
    }
    let k = &st.cfg.classes[class];
    if k.exempt {
        return None;
    }
    if k.max_per_ip > 0 && st.ip_counts.get(&ip).copied().unwrap_or(0) as usize >= k.max_per_ip {
        return Some("Too many connections from your IP".into());
    }
    let block = block_key(st, ip);
    if k.max_per_cidr > 0 && st.block_counts.get(&block).copied().unwrap_or(0) as usize >= k.max_per_cidr {
        return Some("Too many connections from your subnet".into());
    }
    if k.throttle_count > 0 {
        let window = k.throttle_window;
        if let Some(q) = st.recent.get_mut(&ip) {
            while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
                q.pop_front();
            }
            if q.len() >= k.throttle_count {
                return Some("Connection throttled: reconnecting too fast".into());
            }
        }
    }
    None
}

/// A connection from `ip` opened on this shard: counted here and on every other shard.
pub fn opened(st: &mut ShardState, out: &mut dyn Outbox, ip: IpAddr, now: Instant) {
    count(st, ip, true, now);
    broadcast(st, out, || Env::Control(Control::IpEvent { ip, up: true }));
}

/// A connection from `ip` of this shard closed.
pub fn closed(st: &mut ShardState, out: &mut dyn Outbox, ip: IpAddr, now: Instant) {
    count(st, ip, false, now);
    broadcast(st, out, || Env::Control(Control::IpEvent { ip, up: false }));
}

/// Counts one connection from `ip` opening or closing (on any shard).
pub fn count(st: &mut ShardState, ip: IpAddr, up: bool, now: Instant) {
    let block = block_key(st, ip);
    if up {
        *st.ip_counts.entry(ip).or_default() += 1;
        *st.block_counts.entry(block).or_default() += 1;
        st.recent.entry(ip).or_default().push_back(now);
    } else {
        dec(&mut st.ip_counts, ip);
        dec(&mut st.block_counts, block);
    }
}

/// The address block `ip` counts in: its class's prefix lengths (every shard reads the same
/// config, so every shard computes the same key).
fn block_key(st: &ShardState, ip: IpAddr) -> (IpAddr, u8) {
    let class = st.cfg.class_for(&crate::local::client::display_ip_addr(ip)).unwrap_or(0);
    let k = &st.cfg.classes[class.min(st.cfg.classes.len() - 1)];
    block_of(ip, k.cidr_v4, k.cidr_v6)
}

/// Recounts the blocks from the per-IP counts (after a reload changed the prefix lengths).
pub fn recount_blocks(st: &mut ShardState) {
    let ips: Vec<(IpAddr, u32)> = st.ip_counts.iter().map(|(ip, n)| (*ip, *n)).collect();
    st.block_counts.clear();
    for (ip, n) in ips {
        let b = block_key(st, ip);
        *st.block_counts.entry(b).or_default() += n;
    }
}

fn dec<K: std::hash::Hash + Eq>(map: &mut ahash::AHashMap<K, u32>, k: K) {
    if let Some(n) = map.get_mut(&k) {
        *n -= 1;
        if *n == 0 {
            map.remove(&k);
        }
    }
}

/// Forgets throttle history older than every class's window (called once a second).
pub fn prune(st: &mut ShardState, now: Instant) {
    let window = st.cfg.classes.iter().map(|k| k.throttle_window).max().unwrap_or_default();
    st.recent.retain(|_, q| {
        while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
            q.pop_front();
        }
        !q.is_empty()
    });
}
