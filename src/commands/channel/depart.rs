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
    c.departing = Some(reason.to_string());
    c.farewell = farewell;
    c.chan_queue.clear();
    if c.wait == Some(Wait::Chan) {
        return;
    }
    depart(st, out, conn, unix);
}

pub(super) fn depart(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, _unix: u64) {
    let Some(c) = st.clients.remove(&conn) else { return };
    let reason = c.departing.clone().unwrap_or_default();
    st.class_counts[c.class] -= 1;
    let now = out.now();
    crate::commands::admission::closed(st, out, c.addr.ip(), now);
    if c.kind == crate::local::kind::Kind::Server {
        // Closed by us (SQUIT, ERROR, a refusal): the ERROR line goes after what is queued,
        // then the socket closes. A link the peer closed has no farewell and nothing to close.
        if let Some(line) = &c.farewell {
            out.send(conn, line);
            out.close(conn);
        }
        crate::commands::link::split::link_closed(st, out, conn, &reason);
        return;
    }
    log::info!("Client disconnected: {} [{}] shard={} reason={reason}", c.mask(), c.addr, st.me);
    for f in &c.monitor {
        crate::commands::query::monitor::unwatch(st, f, conn);
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
    let farewell = c.farewell.map(|l| (conn, l));
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
    let unix = out.unix_ms() / 1000;
    let body: Arc<[u8]> = crate::proto::Line::new().source(mask).verb("QUIT").trailing(reason).finish().into();
    let line = Shared::with_meta(body, meta(st, &*out, Some(uid), None));
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
        out.to_shard(*h as usize, Env::Request(Request::Quit { uid, chans: chans.clone() }));
    }
    let none = parts.is_empty();
    st.quits.insert(uid, QuitState { line: line.clone(), parts, farewell });
    if none {
        let now = out.now();
        push_quit_part(st, uid, None, line, Vec::new(), now);
        super::settle(st, out, now, unix);
    }
}

/// One home's part of a departure, to be applied in that home's sequence like any change.
fn push_quit_part(st: &mut ShardState, uid: Uid, dep: Option<Dep>, line: Shared, chans: Vec<Folded>, now: Instant) {
    st.mine.push(Mine {
        event: Sequenced { dep, ev: ChanEvent::Quit { uid, line, chans, last: false }, ack: None },
        conn: None,
        notes: Vec::new(),
        farewell: None,
        since: now,
        noted: false,
    });
}

/// A home numbered a departing user's removal from its channels: that part goes out on its
/// own, in that home's sequence, whatever the other homes answered.
pub fn on_quit_ack(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, home: u16, seq: u64, now: Instant, unix: u64) {
    let Some(q) = st.quits.get(&uid) else { return };
    let Some((_, chans)) = q.parts.iter().find(|(h, _)| *h == home) else { return };
    let (line, chans) = (q.line.clone(), chans.clone());
    push_quit_part(st, uid, Some((home, seq)), line, chans, now);
    super::settle(st, out, now, unix);
}

/// A departure part's turn came here: it learns whether it is the last (every shard applies the
/// parts in the order this shard sends them); the last one carries the farewell, and its
/// acknowledgements tell the client every shard saw it all.
pub(super) fn quit_part_turn(st: &mut ShardState, m: &mut Mine) {
    let ChanEvent::Quit { uid, last, .. } = &mut m.event.ev else { return };
    let Some(q) = st.quits.get_mut(uid) else { return };
    if let Some((home, _)) = m.event.dep {
        q.parts.retain(|(h, _)| *h != home);
    }
    *last = q.parts.is_empty();
    if *last {
        let q = st.quits.remove(uid).expect("present");
        m.event.ack = q.farewell.as_ref().map(|(c, _)| *c);
        m.farewell = q.farewell;
    }
}
