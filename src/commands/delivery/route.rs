//! Routing: a line for a user, or for a channel's members, wherever they are. Every decision
//! reads the user's [`Location`] (through [`route`]); the same functions serve the shard where
//! a message starts and the shard it is sent to, so a delivery is written once.

use std::time::Instant;

use super::to_conn_shared;
use super::to_conns_shared;
use crate::commands::envelope::{ChanMsg, Env, Ordered};
use crate::commands::link;
use crate::commands::outbox::{Conn, Outbox};
use crate::commands::outgoing::Shared;
use crate::local::shard::ShardState;
use crate::proto::Folded;
use crate::state::channel::Status;
use crate::state::servers::Sid;
use crate::state::{Location, Uid};

/// Where a line for a user goes from this shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Its connection, here.
    Here(Conn),
    /// The shard that delivers to it (its connection's, or its server link's).
    Shard(usize),
    /// The server link this shard holds.
    Link,
    /// Nowhere: it left (its departure is on its way) or was never known.
    Gone,
}

pub fn route(st: &ShardState, uid: Uid) -> Route {
    if let Some(&conn) = st.local.get(&uid) {
        return Route::Here(conn);
    }
    match st.directory.get(&uid).map(|u| u.location) {
        Some(at) if at.shard() != st.me => Route::Shard(at.shard()),
        Some(Location::Link(_)) => Route::Link,
        // One of ours without a connection: it is closing.
        Some(Location::Local(_)) | None => Route::Gone,
    }
}

/// A line for a user wherever it is; `at`: when the message reached the server.
pub fn to_user(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, line: &Shared, need: u64, at: Instant) {
    match route(st, uid) {
        Route::Here(conn) => {
            to_conn_shared(st, out, conn, line, need);
            st.metrics.message_latency.observe(at.elapsed());
        }
        Route::Shard(s) => out.to_shard(s, Env::Ordered(Ordered::ToUser { uid, line: line.clone(), need, at })),
        Route::Link => crate::commands::link::relay::message(st, out, uid, line, at),
        Route::Gone => {}
    }
}

/// An INVITE for a user wherever it is: the invitation is remembered where the user is.
pub fn to_invitee(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, chan: &Folded, line: &Shared) {
    match route(st, uid) {
        Route::Here(conn) => {
            if let Some(c) = st.clients.get_mut(&conn) {
                if !c.rare().invites.contains(chan) {
                    c.rare_mut().invites.push(chan.clone());
                }
            }
            to_conn_shared(st, out, conn, line, 0);
        }
        Route::Shard(s) => {
            out.to_shard(s, Env::Ordered(Ordered::Invite { target: uid, chan: chan.clone(), line: line.clone() }))
        }
        Route::Link => crate::commands::link::relay::invite(st, out, uid, chan, line),
        Route::Gone => {}
    }
}

/// A line for a channel's members: here, and one envelope to each other shard that delivers
/// to members.
pub fn to_channel(st: &mut ShardState, out: &mut dyn Outbox, msg: ChanMsg) {
    let Some(view) = st.channels.get(&msg.chan) else { return };
    let me = st.me;
    // The channel's home keeps its history: it gets the message even without members.
    let home = if st.cfg.history.enabled && msg.min == Status::NONE { msg.chan.owner(st.cores) } else { me };
    // So do other rustircd servers: the shards holding links to them get it too (never back
    // toward the sender's server).
    let linked = match st.servers.is_empty() || crate::commands::history::record::kept(&msg).is_none() {
        true => smallvec::SmallVec::new(),
        false => link::history_shards(st, link::direction(st, Sid::of(&msg.sender))),
    };
    let shards: smallvec::SmallVec<[usize; 4]> = view
        .ch
        .per_shard
        .iter()
        .enumerate()
        .filter(|(s, n)| *s != me && (**n > 0 || *s == home || linked.contains(s)))
        .map(|(s, _)| s)
        .collect();
    for s in shards {
        out.to_shard(s, Env::Ordered(Ordered::ChanMsg(msg.clone())));
    }
    channel_here(st, out, &msg);
}

/// The part of [`to_channel`] for this shard's members.
pub fn channel_here(st: &mut ShardState, out: &mut dyn Outbox, msg: &ChanMsg) {
    let latest = crate::commands::history::record::channel_message(st, msg);
    crate::commands::link::relay::chan_message(st, out, msg);
    let Some(view) = st.channels.get_mut(&msg.chan) else { return };
    if let Some(t) = latest {
        view.last_message = view.last_message.max(t);
    }
    let view = &*view;
    let members = view.ch.members.len();
    let (sender, min) = (msg.sender, msg.min);
    let targets: smallvec::SmallVec<[Conn; 16]> = view
        .local
        .iter()
        .filter(|(u, _)| *u != sender && (min == Status::NONE || view.ch.status(u).is_some_and(|s| at_least(s, min))))
        .map(|(_, c)| *c)
        .collect();
    if targets.is_empty() {
        return;
    }
    to_conns_shared(st, out, &targets, &msg.line, msg.need);
    let took = msg.at.elapsed();
    st.metrics.message_latency.observe(took);
    st.metrics.broadcast(members, took);
}

fn at_least(s: Status, min: Status) -> bool {
    if min.is_op() {
        s.is_op()
    } else {
        s.can_speak()
    }
}

/// Sends one envelope to every other shard, built per destination.
pub fn broadcast(st: &ShardState, out: &mut dyn Outbox, mut make: impl FnMut() -> Env) {
    for s in 0..st.cores {
        if s != st.me {
            out.to_shard(s, make());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::sim::Sim;

    #[test]
    fn every_shard_routes_a_user_by_its_location() {
        let mut sim = Sim::new(Arc::new(Config::embedded()), 3, true);
        let alice = sim.client(1, "alice");
        let uid = sim.shards[1].0.clients[&alice].uid;
        assert_eq!(route(&sim.shards[1].0, uid), Route::Here(alice));
        assert_eq!(route(&sim.shards[0].0, uid), Route::Shard(1));
        assert_eq!(route(&sim.shards[2].0, uid), Route::Shard(1));
        // A user behind a link held by shard 2: the others send it there; shard 2 to the link.
        for (st, _) in &mut sim.shards {
            st.directory.get_mut(&uid).expect("introduced").location = Location::Link(2);
        }
        assert_eq!(route(&sim.shards[0].0, uid), Route::Shard(2));
        assert_eq!(route(&sim.shards[2].0, uid), Route::Link);
    }

    #[test]
    fn a_user_of_this_shard_without_a_connection_is_gone() {
        let mut sim = Sim::new(Arc::new(Config::embedded()), 2, true);
        let bob = sim.client(0, "bob");
        let uid = sim.shards[0].0.clients[&bob].uid;
        sim.shards[0].0.local.remove(&uid);
        assert_eq!(route(&sim.shards[0].0, uid), Route::Gone);
        assert_eq!(route(&sim.shards[1].0, uid), Route::Shard(0));
    }
}
