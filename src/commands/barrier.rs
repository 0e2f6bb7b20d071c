//! The client barrier: a client's own view of a change it just sent to every shard (its JOIN,
//! NICK, MODE, AWAY, its welcome) goes out only once every other shard applied the change —
//! from then on, whatever the client does next, or tells anyone out of band, finds every shard
//! up to date. Its input waits meanwhile (`Wait::Barrier`). Channel changes and user changes
//! use this one barrier; the acknowledgements come back as `Answer::Applied`.

use std::time::Instant;

use super::delivery::reply;
use super::outbox::{Conn, Outbox};
use crate::local::client::{Barrier, Wait};
use crate::local::shard::ShardState;

/// Holds `held` for the client until every other shard acknowledged the change just sent out.
/// Returns it instead when there is nothing to wait for (one shard, or a client that is
/// leaving): the caller sends it at once.
#[must_use = "send what comes back"]
pub fn hold(st: &mut ShardState, conn: Conn, held: Vec<u8>) -> Option<Vec<u8>> {
    let remaining = st.cores - 1;
    let c = st.clients.get_mut(&conn)?;
    if remaining == 0 || c.rare().departing.is_some() {
        return Some(held);
    }
    c.wait = Some(Wait::Barrier(Box::new(Barrier { remaining, held, later: Vec::new() })));
    None
}

/// One shard applied a change this client made (or its departure: the ERROR line goes out
/// once every shard applied it).
pub fn on_applied(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, now: Instant, unix: u64) {
    if let Some((remaining, _)) = st.farewells.get_mut(&conn) {
        *remaining -= 1;
        if *remaining == 0 {
            let (_, line) = st.farewells.remove(&conn).expect("present");
            out.send(conn, &line);
            out.close(conn);
        }
        return;
    }
    let Some(c) = st.clients.get_mut(&conn) else { return };
    let Some(Wait::Barrier(b)) = &mut c.wait else { return };
    b.remaining -= 1;
    if b.remaining > 0 {
        return;
    }
    let (held, later) = (std::mem::take(&mut b.held), std::mem::take(&mut b.later));
    c.wait = Some(Wait::Chan);
    reply(st, out, conn, &held);
    if !later.is_empty() {
        super::delivery::to_conn(st, out, conn, &later);
    }
    super::channel::continue_client(st, out, conn, now, unix);
}
