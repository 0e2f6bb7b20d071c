//! Netsplits (docs/ts6 §7): a link lost (closed, timed out, ERROR, SQUIT), or a server behind
//! one. The lost servers leave every shard's map, the other links hear one SQUIT, and every user
//! behind the split leaves with `QUIT :<near> <far>`, each seen once by each observer through
//! the ordinary departure. No per-user QUIT goes to the links (each server removes them itself).

use std::sync::Arc;

use super::to_all_links;
use crate::commands::channel::depart_users;
use crate::commands::delivery::meta;
use crate::commands::envelope::{Control, Env, Ordered, Request};
use crate::commands::outbox::{Conn, Outbox};
use crate::commands::outgoing::Shared;
use crate::local::link::Splitting;
use crate::local::shard::ShardState;
use crate::proto::{Folded, Line};
use crate::state::servers::Sid;
use crate::state::Uid;

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
    let users: Vec<(Uid, usize)> = st
        .directory
        .iter()
        .filter_map(|u| {
            let s = Sid::of(&u.uid);
            names.iter().position(|(x, _)| *x == s).map(|i| (u.uid, i))
        })
        .collect();
    let mut squit = Line::new();
    if let Some(by) = &by {
        squit = squit.source(by.as_str());
    }
    let line: Arc<[u8]> = squit.verb("SQUIT").param(sid.as_str()).trailing(reason).finish().into();
    // The other links (ours now, the other shards' in this shard's stream) hear one SQUIT.
    to_all_links(st, out, from.or(Some(sid)), line.clone());
    // Their nicks stay theirs a while: the split may heal (`[netsplit] split_user_grace_period`).
    // Sent before the departures, whose releases follow on the same queues.
    let grace = st.cfg.netsplit.split_user_grace_period.as_secs();
    if grace > 0 {
        let until = out.unix_ms() / 1000 + grace;
        let mut reserve: Vec<Vec<Folded>> = vec![Vec::new(); st.cores];
        for (uid, _) in &users {
            if let Some(u) = st.directory.get(uid) {
                reserve[u.folded.owner(st.cores)].push(u.folded.clone());
            }
        }
        for (owner, nicks) in reserve.into_iter().enumerate().filter(|(_, n)| !n.is_empty()) {
            if owner == st.me {
                st.nicks.reserve_all(nicks, until);
            } else {
                out.to_shard(owner, Env::Request(Request::NickReserve { nicks, until }));
            }
        }
    }
    st.servers.remove_subtree(sid);
    crate::commands::sasl::servers_gone(st, out, &sids);
    crate::commands::history::sync::apart(st, out, &sids);
    crate::commands::delivery::broadcast(st, out, || Env::Ordered(Ordered::ServerSplit { sids: sids.clone() }));
    let reasons = names.into_iter().map(|(_, why)| why).collect();
    let count = users.len();
    st.splitting.push_back(Splitting { users, reasons, sids, sid, count, started });
    depart_more(st, out);
}

/// How many users of a netsplit depart per turn: each piece's QUITs reach the observers (and
/// the next piece's requests the homes) while the next is being prepared.
#[cfg(not(test))]
const PIECE: usize = 256;
#[cfg(test)]
const PIECE: usize = 2;

/// The next piece of the oldest netsplit's departures: every user of the piece leaves in one
/// departure (one request per channel home, not one per user). Another piece, if any, follows
/// in a later turn; once the last has gone, the lost SIDs may come back.
pub fn depart_more(st: &mut ShardState, out: &mut dyn Outbox) {
    let Some(split) = st.splitting.front_mut() else { return };
    let piece = split.users.split_off(split.users.len().saturating_sub(PIECE));
    let reasons = std::mem::take(&mut split.reasons);
    let leaving = piece
        .iter()
        .filter_map(|&(uid, i)| {
            let u = st.directory.get(&uid)?;
            let body = Line::new().source_mask(&u.nick, &u.user, &u.host).verb("QUIT").trailing(&reasons[i]).finish();
            Some((uid, Shared::with_meta(body.into(), meta(st, &*out, Some(uid), None)), None))
        })
        .collect();
    depart_users(st, out, leaving);
    let split = st.splitting.front_mut().expect("still there");
    split.reasons = reasons;
    if split.users.is_empty() {
        let done = st.splitting.pop_front().expect("still there");
        release(st, out, done.sids.clone());
        log::warn!(
            "Netsplit: {} server(s) and {} user(s) lost behind {} shard={} ({} us)",
            done.sids.len(),
            done.count,
            done.sid,
            st.me,
            out.now().duration_since(done.started).as_micros()
        );
    }
    if !st.splitting.is_empty() {
        out.later(Env::Control(Control::SplitMore));
    }
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
