//! Departures: a user leaving the network leaves its channels one home at a time, each part
//! numbered by its home (see `docs/architecture.md`, "Departures").

use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::commands::connection::release_nick;
use crate::commands::delivery::meta;
use crate::commands::envelope::Env;
use crate::commands::envelope::Request;
use crate::commands::outbox::{Conn, Outbox};
use crate::commands::outgoing::Shared;
use crate::local::client::Wait;
use crate::local::shard::{Mine, QuitState, ShardState};
use crate::proto::Folded;
use crate::state::sequencer::Dep;
use crate::state::Uid;

/// The connection is gone: the user leaves the network once no channel request of its is in
/// flight (an accepted change must still be applied and sent out, or every shard would wait
/// for its number forever).
/// `farewell` (the ERROR line) is sent, and the connection closed, once every shard applied the
/// departure — so WHOWAS, MONITOR and the channels everywhere know before the client does.
pub fn leave_network(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    conn: Conn,
    reason: &str,
    farewell: Option<Vec<u8>>,
    unix: u64,
) {
    let Some(c) = st.clients.get_mut(&conn) else { return };
    c.closing = true;
    let r = c.rare_mut();
    r.departing = Some(reason.to_string());
    r.farewell = farewell;
    r.chan_queue.clear();
    // A rename's channel in flight (`then`) lands first, whatever the client waits for.
    let in_flight = r.then.is_some();
    if c.wait == Some(Wait::Chan) || in_flight {
        return;
    }
    depart(st, out, conn, unix);
}

pub(super) fn depart(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, _unix: u64) {
    let Some(mut c) = st.clients.remove(&conn) else { return };
    let reason = c.rare().departing.clone().unwrap_or_default();
    st.class_counts[c.class] -= 1;
    let now = out.now();
    crate::commands::admission::closed(st, out, c.addr.ip(), now);
    if c.kind == crate::local::kind::Kind::Server {
        // Closed by us (SQUIT, ERROR, a refusal): the ERROR line goes after what is queued,
        // then the socket closes. A link the peer closed has no farewell and nothing to close.
        if let Some(line) = &c.rare().farewell {
            out.send(conn, line);
            out.close(conn);
        }
        crate::commands::link::split::link_closed(st, out, conn, &reason);
        return;
    }
    log::info!("Client disconnected: {} [{}] shard={} reason={reason}", c.mask(), c.addr, st.me);
    for f in &c.rare().monitor {
        crate::commands::query::monitor::unwatch(st, f, conn);
    }
    // A SASL exchange under way (before registration, or a reauthentication after it) ends.
    if let Some(s) = &c.rare().sasl {
        crate::commands::sasl::gone(st, out, c.uid, s);
    }
    if !c.registered {
        if let Some((_, folded)) = c.nick {
            release_nick(st, out, folded, c.uid);
        }
        return;
    }
    st.local.remove(&c.uid);
    // O(operators), never a rebuild from every local user: a mass disconnect stays linear.
    if let Some(t) = &mut st.snotice_targets {
        t.retain(|x| *x != conn);
    }
    let exit = format!(
        "Client exiting: {} ({}@{}) [{reason}] [{}]",
        c.target(),
        c.user.as_ref().map_or("*", |(u, _)| u),
        c.host,
        c.ip
    );
    crate::commands::oper::snotice::snotice(st, out, &exit);
    let mask = c.mask();
    let farewell = c.rare_if_any().and_then(|r| r.farewell.take()).map(|l| (conn, l));
    depart_user(st, out, c.uid, &mask, &reason, farewell);
}

/// A user leaves the network: one of this shard's clients, or a user behind one of its server
/// links. Its channels' homes number its removal; the QUIT is shown as the parts are applied.
pub fn depart_user(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    uid: Uid,
    mask: &str,
    reason: &str,
    farewell: Option<(Conn, Vec<u8>)>,
) {
    let line = quit_line(st, &*out, uid, mask, reason);
    depart_users(st, out, vec![(uid, line, farewell)]);
}

/// The QUIT line observers of a departing user see.
pub fn quit_line(st: &mut ShardState, out: &dyn Outbox, uid: Uid, mask: &str, reason: &str) -> Shared {
    let body: Arc<[u8]> = crate::proto::Line::new().source(mask).verb("QUIT").trailing(reason).finish().into();
    Shared::with_meta(body, meta(st, out, Some(uid), None))
}

/// A user leaving: its QUIT line, and for a client of ours that gets one, its ERROR farewell.
pub type Departing = (Uid, Shared, Option<(Conn, Vec<u8>)>);

/// Users leave the network at once (a netsplit takes all those behind the lost servers): one
/// request per home for all of them, one numbered part per home back, so a split of 10,000
/// users costs a handful of mesh messages, not two per user and home. Each user's QUIT is
/// still shown once per observer, with the first part applied on the observer's shard.
/// A departure with a farewell (a client's ERROR line) departs alone.
pub fn depart_users(st: &mut ShardState, out: &mut dyn Outbox, users: Vec<Departing>) {
    debug_assert!(users.len() == 1 || users.iter().all(|(_, _, f)| f.is_none()));
    let unix = out.unix_ms() / 1000;
    // Per home: the users leaving, each with its channels there.
    type PerHome = (u16, Vec<(Uid, Vec<Folded>)>);
    let mut requests: Vec<PerHome> = Vec::new();
    let mut unattached = Vec::new();
    for (uid, line, farewell) in users {
        if st.quits.contains_key(&uid) {
            // Already on its way out (a KILL while its netsplit departs it a piece at a time).
            continue;
        }
        let chans = st.directory.get(&uid).map(|u| u.channels.clone()).unwrap_or_default();
        let mut parts: Vec<(u16, Vec<Folded>)> = Vec::new();
        for f in chans {
            let h = f.owner(st.cores) as u16;
            match parts.iter_mut().find(|(x, _)| *x == h) {
                Some((_, v)) => v.push(f),
                None => parts.push((h, vec![f])),
            }
        }
        for (h, chans) in &parts {
            match requests.iter_mut().find(|(x, _)| x == h) {
                Some((_, v)) => v.push((uid, chans.clone())),
                None => requests.push((*h, vec![(uid, chans.clone())])),
            }
        }
        if parts.is_empty() {
            unattached.push(QuitPart { uid, line: line.clone(), chans: Vec::new(), last: false });
        }
        st.quits.insert(uid, QuitState { line, parts, farewell });
    }
    for (h, users) in requests {
        out.to_shard(h as usize, Env::Request(Request::Quit { users }));
    }
    if !unattached.is_empty() {
        let now = out.now();
        push_quit_part(st, None, unattached, now);
        super::settle(st, out, now, unix);
    }
}

/// One home's part of a departure, to be applied in that home's sequence like any change.
fn push_quit_part(st: &mut ShardState, dep: Option<Dep>, parts: Vec<QuitPart>, now: Instant) {
    st.mine.push(Mine {
        event: Sequenced { dep, ev: ChanEvent::Quit { parts }, ack: None },
        conn: None,
        notes: Vec::new(),
        farewell: None,
        since: now,
        noted: false,
    });
}

/// A home numbered departing users' removal from its channels: that part goes out on its
/// own, in that home's sequence, whatever the other homes answered. (Applied even if none of
/// the users is still known here: every shard waits for the number.)
pub fn on_quit_ack(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    uids: Vec<Uid>,
    home: u16,
    seq: u64,
    now: Instant,
    unix: u64,
) {
    let parts = uids
        .into_iter()
        .filter_map(|uid| {
            let q = st.quits.get(&uid)?;
            let (_, chans) = q.parts.iter().find(|(h, _)| *h == home)?;
            Some(QuitPart { uid, line: q.line.clone(), chans: chans.clone(), last: false })
        })
        .collect();
    push_quit_part(st, Some((home, seq)), parts, now);
    super::settle(st, out, now, unix);
}

/// A departure part's turn came here: it learns whether it is the last (every shard applies the
/// parts in the order this shard sends them); the last one carries the farewell, and its
/// acknowledgements tell the client every shard saw it all.
pub(super) fn quit_part_turn(st: &mut ShardState, m: &mut Mine) {
    let ChanEvent::Quit { parts } = &mut m.event.ev else { return };
    for p in parts {
        let Some(q) = st.quits.get_mut(&p.uid) else { continue };
        if let Some((home, _)) = m.event.dep {
            q.parts.retain(|(h, _)| *h != home);
        }
        p.last = q.parts.is_empty();
        if p.last {
            let q = st.quits.remove(&p.uid).expect("present");
            if q.farewell.is_some() {
                m.event.ack = q.farewell.as_ref().map(|(c, _)| *c);
                m.farewell = q.farewell;
            }
        }
    }
}
