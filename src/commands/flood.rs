//! Flood control by fake lag, as Ergo and InspIRCd do it: every command costs a token; a client
//! holds at most its class's `flood_burst` tokens and earns `flood_rate` a second. A command
//! with no token left waits in the client's queue (nothing is dropped) and runs when one is
//! earned; the client is told once per episode. Input piling up past `recvq` meanwhile ends
//! the connection with `Excess Flood` (see `connection::data`). Exempt classes skip all this.

use std::time::Instant;

use super::connection::resume;
use super::delivery::to_conn;
use super::outbox::{Conn, Outbox};
use crate::local::shard::ShardState;
use crate::proto::Line;

/// Takes a token for one command of `conn`; false when the command must wait.
pub fn take(st: &mut ShardState, conn: Conn, now: Instant) -> bool {
    let Some(c) = st.clients.get_mut(&conn) else { return true };
    let k = &st.cfg.classes[c.class];
    // A server link carries a whole network's traffic: never held back.
    if k.exempt || c.kind == crate::local::kind::Kind::Server {
        return true;
    }
    let burst = k.flood_burst as f32;
    let earned = now.saturating_duration_since(c.refilled).as_secs_f32() * k.flood_rate as f32;
    c.tokens = (c.tokens + earned).min(burst);
    c.refilled = now;
    if c.tokens >= 1.0 {
        c.tokens -= 1.0;
        return true;
    }
    if !c.throttled {
        c.throttled = true;
        st.lagged.push(conn);
    }
    false
}

/// Extra tokens for a command that cost more than a line (a long WHO reply). The debt is paid
/// in fake lag before the client's next command, and is at most `flood_burst` deep.
pub fn charge(st: &mut ShardState, conn: Conn, tokens: u32) {
    let Some(c) = st.clients.get_mut(&conn) else { return };
    let k = &st.cfg.classes[c.class];
    if k.exempt || tokens == 0 {
        return;
    }
    let floor = -(k.flood_burst as f32);
    c.tokens = (c.tokens.min(k.flood_burst as f32) - tokens as f32).max(floor);
}

/// Tells a client, once per episode, that its commands are being held.
pub fn warn(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn) {
    let Some(c) = st.clients.get_mut(&conn) else { return };
    if c.lag_told {
        return;
    }
    c.lag_told = true;
    let rate = st.cfg.classes[c.class].flood_rate;
    let text = format!("*** You are sending commands too fast: they now run at {rate} a second (flood control)");
    let line = Line::new().source(&st.cfg.server.name).verb("NOTICE").param(c.target()).trailing(&text).finish();
    to_conn(st, out, conn, &line);
}

/// Each tick: clients whose commands were held run what they have earned since.
pub fn on_tick(st: &mut ShardState, out: &mut dyn Outbox, now: Instant, unix: u64) {
    if st.lagged.is_empty() {
        return;
    }
    for conn in std::mem::take(&mut st.lagged) {
        let Some(c) = st.clients.get_mut(&conn) else { continue };
        c.throttled = false;
        resume(st, out, conn, now, unix);
        if let Some(c) = st.clients.get_mut(&conn) {
            if !c.throttled && c.rare().queue.is_empty() {
                c.lag_told = false;
            }
        }
    }
}
