//! Periodic work: pings and timeouts, and the counts other shards need for LUSERS.

use std::time::{Duration, Instant};

use super::connection::close_later;
use super::delivery::to_conn;
use super::outbox::{Conn, Outbox};
use crate::local::shard::ShardState;
use crate::proto::Line;

/// Called on every runtime tick; does its per-second work when a second has passed.
pub fn on_tick(st: &mut ShardState, out: &mut dyn Outbox, now: Instant) {
    let mut ping = Vec::new();
    let mut expired: Vec<(Conn, String)> = Vec::new();
    for (conn, c) in st.clients.iter() {
        if c.closing {
            continue;
        }
        let class = &st.cfg.classes[c.class];
        if !c.registered {
            if now.duration_since(c.connected_at) >= class.connection_timeout {
                expired.push((*conn, "Registration timed out".into()));
            }
            continue;
        }
        match c.ping_sent {
            None if now.duration_since(c.last_active) >= class.ping_frequency => ping.push(*conn),
            Some(sent) if now.duration_since(sent) >= class.ping_frequency => {
                let secs = now.duration_since(c.last_active).as_secs();
                expired.push((*conn, format!("Ping timeout: {secs} seconds")));
            }
            _ => {}
        }
    }
    if !ping.is_empty() {
        let line = Line::new().verb("PING").trailing(&st.cfg.server.name).finish();
        // A server link is pinged with our SID (TS6 names servers by ID).
        let link_line = Line::new().verb("PING").trailing(&st.cfg.server.sid).finish();
        for conn in ping {
            let Some(c) = st.clients.get_mut(&conn) else { continue };
            c.ping_sent = Some(now);
            if c.kind == crate::local::kind::Kind::Server {
                super::link::write(st, out, conn, &link_line);
            } else {
                to_conn(st, out, conn, &line);
            }
        }
    }
    for (conn, why) in expired {
        close_later(st, conn, why);
    }
    super::link::dial::on_tick(st, out, now);
    super::admission::prune(st, now);
    let unix = out.unix_ms() / 1000;
    super::connection::lookups_overdue(st, out, now, unix);
    super::sasl::expire(st, out, now, unix);
    expire_bans(st, unix);
    super::channel::stall::check(st, now);
    // Once a minute: history older than max_age goes, from logs nobody writes to as well.
    if unix.is_multiple_of(60) {
        let oldest = super::history::oldest(st, out.unix_ms());
        st.history.sweep(oldest);
    }
}

/// Temporary K-lines and D-lines lapse (every shard drops them by the same clock; the main
/// thread leaves them out of the file when it next writes it and when it loads it).
fn expire_bans(st: &mut ShardState, unix: u64) {
    let first = st.me == 0;
    st.bans.retain(|b| {
        let live = b.live(unix);
        if !live && first {
            log::info!("Ban expired: {}-line for [{}]", b.kind.letter(), b.mask);
        }
        live
    });
}

/// How often the per-second checks run.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
