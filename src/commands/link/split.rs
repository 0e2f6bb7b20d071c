//! Netsplits (docs/ts6 §7): a link lost (closed, timed out, ERROR, SQUIT), or a server behind
//! one. The lost servers leave every shard's map, the other links hear one SQUIT, and every user
//! behind the split leaves with `QUIT :<near> <far>`, each seen once by each observer through
//! the ordinary departure. No per-user QUIT goes to the links (each server removes them itself).

use std::sync::Arc;

use super::s2s::depart_remote;
use super::to_all_links;
use crate::commands::envelope::{Env, Ordered, Request};
use crate::commands::outbox::{Conn, Outbox};
use crate::local::shard::ShardState;
use crate::proto::Line;
use crate::state::servers::Sid;

/// A link of this shard closed (`reason` is why): its peer and everything behind it is gone.
pub fn link_closed(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, reason: &str) {
    let Some(link) = st.links.remove(&conn) else { return };
    let name = link.peer.as_ref().map(|p| p.1.to_string()).unwrap_or_else(|| "?".into());
    if let Some(block) = link.block.filter(|_| link.outbound) {
        super::dial::failed(st, block, out.now());
    }
    if let Some(server) = &link.pending {
        // Claimed, or being claimed: the register gets it back when the answer comes.
        log::debug!("Link {name}: closed while {} was being claimed", server.sid);
    }
    let Some(sid) = link.sid().filter(|_| link.is_up()) else {
        log::info!("Link closed before registering: {name} shard={} reason={reason}", st.me);
        return;
    };
    st.peers.remove(&sid);
    let took = out.now().duration_since(link.opened).as_secs();
    log::warn!("Link closed: {name} sid={sid} after {took} s shard={} reason={reason}", st.me);
    crate::commands::oper::snotice::snotice(st, out, &format!("Server {name} split from us: {reason}"));
    lose_by(st, out, sid, reason, None, link.squit_by);
}

/// `sid` and everything behind it left the network as seen from this shard's link (`from`: the
/// peer that said so, which is not told again).
pub fn lose(st: &mut ShardState, out: &mut dyn Outbox, sid: Sid, reason: &str, from: Option<Sid>) {
    lose_by(st, out, sid, reason, from, None);
}

/// [`lose`], the SQUIT to the other links sourced from `by` (the operator who ordered it;
/// None: unprefixed, the link just closed).
pub fn lose_by(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    sid: Sid,
    reason: &str,
    from: Option<Sid>,
    by: Option<crate::state::Uid>,
) {
    let started = out.now();
    let sids = st.servers.subtree(sid);
    if sids.is_empty() {
        return;
    }
    st.metrics.c.netsplits += 1;
    // Who leaves, and the QUIT reason each gets: its server's uplink and its server.
    let names: Vec<(Sid, String)> = sids
        .iter()
        .map(|s| (*s, format!("{} {}", super::uplink_name(st, *s), st.servers.get(s).map_or("?", |x| &x.name))))
        .collect();
    let users: Vec<(crate::state::Uid, String)> = st
        .directory
        .iter()
        .filter_map(|u| {
            let s = Sid::of(&u.uid);
            names.iter().find(|(x, _)| *x == s).map(|(_, why)| (u.uid, why.clone()))
        })
        .collect();
    let mut squit = Line::new();
    if let Some(by) = &by {
        squit = squit.source(by.as_str());
    }
    let line: Arc<[u8]> = squit.verb("SQUIT").param(sid.as_str()).trailing(reason).finish().into();
    // The other links (ours now, the other shards' in this shard's stream) hear one SQUIT.
    to_all_links(st, out, from.or(Some(sid)), line.clone());
    let n = users.len();
    // Their nicks stay theirs a while: the split may heal (`[netsplit] split_user_grace_period`).
    // Sent before the departures, whose releases follow on the same queues.
    let grace = st.cfg.netsplit.split_user_grace_period.as_secs();
    let until = out.unix_ms() / 1000 + grace;
    for (uid, why) in users {
        if grace > 0 {
            if let Some(nick) = st.directory.get(&uid).map(|u| u.folded.clone()) {
                let owner = nick.owner(st.cores);
                if owner == st.me {
                    st.nicks.reserve(nick, until);
                } else {
                    out.to_shard(owner, Env::Request(Request::NickReserve { nick, until }));
                }
            }
        }
        depart_remote(st, out, uid, &why);
    }
    st.servers.remove_subtree(sid);
    crate::commands::delivery::broadcast(st, out, || Env::Ordered(Ordered::ServerSplit { sids: sids.clone() }));
    release(st, out, sids.clone());
    log::warn!(
        "Netsplit: {} server(s) and {n} user(s) lost behind {sid} shard={} ({} us)",
        sids.len(),
        st.me,
        out.now().duration_since(started).as_micros()
    );
}

/// The register at shard 0 forgets servers that left.
pub fn release(st: &mut ShardState, out: &mut dyn Outbox, sids: Vec<Sid>) {
    if st.me == 0 {
        for s in sids {
            st.register.release(s);
        }
    } else {
        out.to_shard(0, Env::Request(Request::ServerRelease { sids }));
    }
}
