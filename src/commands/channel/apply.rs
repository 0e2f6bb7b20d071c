//! The replication engine: applying sequenced changes in each home's order, showing them to
//! local members, the requester's barrier until every shard applied its change.

use std::sync::Arc;
use std::time::Instant;

use super::depart::quit_part_turn;
use super::*;
use crate::commands::connection::release_nick;
use crate::commands::delivery::{broadcast, reply, to_conns_shared};
use crate::commands::envelope::Env;
use crate::commands::envelope::Ordered;
use crate::commands::outbox::{Conn, Outbox};
use crate::commands::outgoing::Shared;
use crate::local::client::Wait;
use crate::local::shard::{Mine, ShardState, View};
use crate::proto::Folded;
use crate::state::channel::{Channel, Mutation};
use crate::state::whowas::WasEntry;
use crate::state::Uid;

/// What applying leaves for the caller to do once nothing more can move: the engine never
/// calls back into a client's command dispatch in the middle of its loop.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    /// The client's change is done here and it waits for nothing more: its next request, or
    /// its queued input.
    Continue(Conn),
}

/// Applies every held event whose turn has come — this shard's own first, then those from
/// other shards, each source in arrival order — until nothing more can move. Returns what the
/// caller must do next (see [`super::settle`], which runs it).
#[must_use = "run the effects (channel::settle)"]
pub fn apply_ready(st: &mut ShardState, out: &mut dyn Outbox, now: Instant, unix: u64) -> Vec<Effect> {
    let mut effects = Vec::new();
    loop {
        let mut progress = false;
        let mut i = 0;
        while i < st.mine.len() {
            if st.seq.ready(st.mine[i].event.dep) {
                let m = st.mine.remove(i);
                apply_mine(st, out, m, now, unix, &mut effects);
                progress = true;
            } else {
                i += 1;
            }
        }
        for from in 0..st.cores {
            while let Some(env) = st.blocked[from].events.pop_front() {
                match crate::commands::inbox::stream_event(st, out, from, env, now, unix) {
                    Ok(()) => {
                        progress = true;
                        st.blocked[from].moved(now);
                    }
                    Err(env) => {
                        st.blocked[from].events.push_front(env);
                        break;
                    }
                }
            }
        }
        if !progress {
            return effects;
        }
    }
}

/// One of this shard's own changes: apply, show, send to every other shard, answer the
/// requester, and let it go on.
fn apply_mine(st: &mut ShardState, out: &mut dyn Outbox, mut m: Mine, now: Instant, unix: u64, fx: &mut Vec<Effect>) {
    st.seq.advance(m.event.dep);
    quit_part_turn(st, &mut m);
    // A departing user's nick is freed only once every shard will have seen it go.
    let release: Vec<(Folded, Uid)> = match &m.event.ev {
        ChanEvent::Quit { parts } => parts
            .iter()
            .filter(|p| p.last)
            .filter_map(|p| st.directory.get(&p.uid).map(|u| (u.folded.clone(), p.uid)))
            .collect(),
        _ => Vec::new(),
    };
    // A KICK of a user whose QUIT this shard has already shown (the home numbered the kick
    // before the departure's part): applied, but told to nobody — the kicker gets 441.
    let gone = match &m.event.ev {
        ChanEvent::Change { mutation: Mutation::Leave { uid }, name, actor, .. }
            if *uid != *actor && st.leaving.contains(uid) =>
        {
            st.directory.get(uid).map(|u| (u.nick.to_string(), name.to_string()))
        }
        _ => None,
    };
    // The actor's own copy of the change waits for every shard (see `Wait::Barrier`). Its
    // reply (a JOIN's names, topic and 366) is built after the members' copies are queued:
    // its connection is written first all the same, not after a thousand members' writes.
    if let Some(conn) = m.conn {
        out.write_first(conn);
    }
    apply_event(st, out, &m.event.ev, m.conn, unix);
    let event = m.event;
    broadcast(st, out, || Env::Ordered(Ordered::Chan(Box::new(event.clone()))));
    for (nick, uid) in release {
        release_nick(st, out, nick, uid);
    }
    if let Some((conn, line)) = m.farewell {
        if st.cores == 1 {
            out.send(conn, &line);
            out.close(conn);
        } else {
            st.farewells.insert(conn, (st.cores - 1, line));
        }
    }
    let Some(conn) = m.conn else { return };
    // A server link's change: nothing to show it, no barrier (its next lines only need this
    // shard to have applied it; the other shards get what follows in this shard's stream).
    if st.clients.get(&conn).is_some_and(|c| c.kind == crate::local::kind::Kind::Server) {
        fx.push(Effect::Continue(conn));
        return;
    }
    let mut held = Vec::new();
    if let (ChanEvent::Change { line, .. }, Some(c)) = (&event.ev, st.clients.get(&conn)) {
        match &gone {
            // Nothing to show (a rename's first half), or shown by `rename::lines_for` below.
            None if line.body.is_empty()
                || matches!(&event.ev, ChanEvent::Change { mutation: Mutation::Arrived { .. }, .. }) => {}
            None => line.render(c.caps, &mut held),
            Some((nick, chan)) => held.extend_from_slice(&crate::commands::numeric_line(
                &st.cfg.server.name,
                c.target(),
                crate::proto::Numeric::ERR_USERNOTINCHANNEL,
                &[nick, chan],
            )),
        }
    }
    if let Some(c) = st.clients.get(&conn) {
        let target = c.target().to_string();
        for r in &m.notes {
            r.write(&st.cfg.server.name, &target, &mut held);
        }
    }
    if let ChanEvent::Change { chan, mutation: Mutation::Arrived { from, reason, .. }, line, .. } = &event.ev {
        if st.channels.get(chan).is_some_and(|v| v.local.iter().any(|(_, c)| *c == conn)) {
            held.extend_from_slice(&super::rename::lines_for(st, out, conn, chan, from, reason, line));
        }
    }
    if let ChanEvent::Change { chan, mutation: Mutation::Join { .. }, .. } = &event.ev {
        if st.clients.get(&conn).is_some_and(|c| c.rare().departing.is_none()) {
            held.extend_from_slice(&join::after_join(st, out, conn, chan, now, unix));
        }
    }
    if let Some(held) = crate::commands::barrier::hold(st, conn, held) {
        if let Some(c) = st.clients.get_mut(&conn) {
            c.wait = Some(Wait::Chan);
        }
        reply(st, out, conn, &held);
        fx.push(Effect::Continue(conn));
    }
}

/// An event from another shard: applied if its turn has come, else handed back to be held.
pub fn try_event(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    ev: Box<Sequenced>,
    unix: u64,
) -> Result<(), Box<Sequenced>> {
    if !st.seq.ready(ev.dep) {
        return Err(ev);
    }
    st.seq.advance(ev.dep);
    apply_event(st, out, &ev.ev, None, unix);
    Ok(())
}

/// Applies an event to this shard's views and shows it to the local members concerned.
/// `skip` is a connection not to show it to (the actor, whose copy is held for later).
pub fn apply_event(st: &mut ShardState, out: &mut dyn Outbox, ev: &ChanEvent, skip: Option<Conn>, unix: u64) {
    match ev {
        ChanEvent::Change { chan, name, mutation, line, actor, via } => {
            apply_change(st, out, chan, name, mutation, line, skip);
            if !matches!(mutation, Mutation::Arrived { .. }) {
                crate::commands::history::record::channel_event(st, chan, line);
            }
            crate::commands::link::relay::chan_change(st, out, chan, mutation, line, *actor, *via);
        }
        ChanEvent::Quit { parts } => {
            for p in parts {
                apply_quit_part(st, out, p, unix);
            }
        }
    }
}

/// Everyone here who shares a channel with the user sees its QUIT once, with the first part
/// applied here; from then on it is leaving (left out of NAMES) until the last part removes
/// it. Showing it with a later part could miss an observer who left the later channel
/// meanwhile, or show it twice to one who joined it meanwhile. A departure of one part (the
/// usual case) never enters `leaving`.
fn apply_quit_part(st: &mut ShardState, out: &mut dyn Outbox, p: &QuitPart, unix: u64) {
    let QuitPart { uid, line, chans, last } = p;
    let first = if *last { !st.leaving.remove(uid) } else { st.leaving.insert(*uid) };
    if first {
        let observers = crate::commands::inbox::observers(st, *uid, 0);
        to_conns_shared(st, out, &observers, line, 0);
    }
    for chan in chans {
        crate::commands::history::record::channel_event(st, chan, line);
        let Some(view) = st.channels.get_mut(chan) else { continue };
        view.local.retain(|(u, _)| u != uid);
        if !view.ch.apply(&Mutation::Leave { uid: *uid }) {
            st.channels.remove(chan);
        }
    }
    // Left now: `forget_user` need not visit these channels again.
    if let Some(u) = st.directory.get_mut(uid) {
        u.channels.retain(|c| !chans.contains(c));
    }
    if *last {
        forget_user(st, out, uid, line, unix);
    }
}

fn apply_change(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    chan: &Folded,
    name: &Arc<str>,
    mutation: &Mutation,
    line: &Shared,
    skip: Option<Conn>,
) {
    let cores = st.cores;
    let view = st.channels.entry(chan.clone()).or_insert_with(|| {
        let created = match mutation {
            Mutation::Join { created: Some(ts), .. } => *ts,
            _ => 0,
        };
        View { ch: Channel::new(name.clone(), chan.clone(), created, cores), local: Vec::new(), last_message: 0 }
    });
    if let Mutation::Join { created: Some(ts), .. } | Mutation::Burst { ts: Some(ts), .. } = mutation {
        view.ch.created = *ts;
        view.ch.name = name.clone();
    }
    let show_first = matches!(mutation, Mutation::Leave { .. });
    // Nobody here is shown a user leaving a channel after its QUIT (see `apply_mine`).
    let silent = matches!(mutation, Mutation::Leave { uid } if st.leaving.contains(uid));
    let targets: Vec<Conn> = if silent { Vec::new() } else { view.local.iter().map(|(_, c)| *c).collect() };
    if show_first {
        deliver_all(st, out, &targets, line, skip);
    }
    let view = st.channels.get_mut(chan).expect("view exists");
    let alive = view.ch.apply(mutation);
    match mutation {
        Mutation::Join { uid, .. } => {
            if let Some(&conn) = st.local.get(uid) {
                st.metrics.c.joins += 1;
                if !view.local.iter().any(|(u, _)| u == uid) {
                    view.local.push((*uid, conn));
                }
            }
            if let Some(u) = st.directory.get_mut(uid) {
                if !u.channels.contains(chan) {
                    u.channels.push(chan.clone());
                }
            }
        }
        Mutation::Burst { joins, .. } => {
            for (uid, _, _) in joins {
                if let Some(u) = st.directory.get_mut(uid) {
                    if !u.channels.contains(chan) {
                        u.channels.push(chan.clone());
                    }
                }
            }
        }
        // A rename: the channel leaves its old name here, members included...
        Mutation::Moved { .. } => {
            let members: Vec<Uid> = view.ch.members.keys().copied().collect();
            for uid in members {
                if let Some(u) = st.directory.get_mut(&uid) {
                    u.channels.retain(|c| c != chan);
                }
            }
        }
        // ...and arrives under its new one, with its members as the old home handed it over.
        Mutation::Arrived { from, .. } => {
            super::rename::arrived_here(st, chan);
            let old = st.cm.fold(from);
            crate::commands::read_marker::renamed(st, &old, chan);
        }
        Mutation::Leave { uid } => {
            if st.local.contains_key(uid) {
                st.metrics.c.parts += 1;
            }
            view.local.retain(|(u, _)| u != uid);
            if let Some(u) = st.directory.get_mut(uid) {
                u.channels.retain(|c| c != chan);
            }
        }
        _ => {}
    }
    if !alive {
        st.channels.remove(chan);
    }
    if let Mutation::Metadata(changes) = mutation {
        crate::commands::metadata::channel_changed(st, out, chan, changes, skip);
    }
    if let Mutation::Arrived { from, reason, .. } = mutation {
        return super::rename::show(st, out, chan, from, reason, line, skip);
    }
    if !show_first {
        let targets: Vec<Conn> =
            st.channels.get(chan).map(|v| v.local.iter().map(|(_, c)| *c).collect()).unwrap_or_default();
        deliver_all(st, out, &targets, line, skip);
        // away-notify: a joining user who is away says so right after its JOIN.
        if let Mutation::Join { uid, .. } = mutation {
            let away = st.directory.get(uid).and_then(|u| u.away.clone().map(|a| (u.mask(), a)));
            if let Some((mask, away)) = away {
                let joiner = st.local.get(uid).copied();
                let body = crate::proto::Line::new().source(&mask).verb("AWAY").trailing(&away).finish();
                let targets: Vec<Conn> = targets.into_iter().filter(|c| Some(*c) != joiner).collect();
                to_conns_shared(
                    st,
                    out,
                    &targets,
                    &Shared::plain(body.into()),
                    crate::commands::capabilities::bits::AWAY_NOTIFY,
                );
            }
        }
    }
}

fn deliver_all(st: &mut ShardState, out: &mut dyn Outbox, conns: &[Conn], line: &Shared, skip: Option<Conn>) {
    // A change nobody is shown (an MLOCK) has no line.
    if line.body.is_empty() {
        return;
    }
    let conns: Vec<Conn> = conns.iter().copied().filter(|c| Some(*c) != skip).collect();
    to_conns_shared(st, out, &conns, line, 0);
}

/// A user left the network: out of the directory, into WHOWAS, and MONITOR watchers told.
fn forget_user(st: &mut ShardState, out: &mut dyn Outbox, uid: &Uid, quit: &Shared, unix: u64) {
    let Some(u) = st.directory.remove(uid) else { return };
    // Our own users' QUITs go to this shard's links as it applies them (a remote user's
    // departure went to the links when its link said so).
    crate::commands::link::relay::quit(st, out, &u, quit);
    for chan in &u.channels {
        if let Some(view) = st.channels.get_mut(chan) {
            view.local.retain(|(x, _)| x != uid);
        }
    }
    // Channels its departure did not know of: a rename's arrival after it began.
    super::rename::scrub(st, *uid, &u.channels);
    st.whowas.record(WasEntry::of(&u, &st.cfg.server.name, unix));
    crate::commands::query::monitor::notify_offline(st, out, &u.folded, &u.nick);
    // Only its own shard held them.
    if u.account.is_none() && u.location == crate::state::Location::Local(st.me as u16) {
        crate::commands::read_marker::forget(st, *uid);
    }
    if matches!(u.location, crate::state::Location::Local(_)) {
        crate::commands::history::record::session_gone(st, *uid);
    }
}

/// The local members of `chan` other than `except`, with their status.
pub fn local_members(st: &ShardState, chan: &Folded) -> Vec<(Uid, Conn)> {
    st.channels.get(chan).map(|v| v.local.clone()).unwrap_or_default()
}
