//! Channels across shards. A channel's *home* (the owner of its folded name) holds the
//! authoritative state and decides every change, giving it the next number of its sequence.
//! The requesting shard then applies the change to its own view, shows it to its members, and
//! sends it to every other shard, which apply it in sequence order. Messages and every other
//! event of a user leave from the user's own shard, so each observer sees them in the order the
//! user made them. `docs/architecture.md` has the whole argument.

pub mod invite;
pub mod join;
pub mod kick;
pub mod knock;
pub mod list;
pub mod mode;
pub mod names;
pub mod part;
pub mod stall;
pub mod topic;

use std::sync::Arc;
use std::time::Instant;

use smallvec::SmallVec;

use super::connection::{release_nick, resume};
use super::context::Reply;
use super::delivery::{broadcast, meta, reply, to_conns_shared};
use super::envelope::Env;
use super::outbox::{Conn, Outbox};
use super::outgoing::Shared;
use super::Ctx;
use crate::proto::Folded;
use crate::state::channel::{Channel, Mutation};
use crate::state::client::Wait;
use crate::state::sequencer::Dep;
use crate::state::shard::{Mine, QuitState, ShardState, View};
use crate::state::whowas::WasEntry;
use crate::state::Uid;

/// A user's request to a channel's home. `mask` is the user's `nick!user@host`.
#[derive(Clone, Debug)]
pub enum ChanRequest {
    Join { name: Arc<str>, key: Option<String>, mask: Arc<str>, ip_mask: String, invited: bool },
    Part { name: Arc<str>, mask: Arc<str>, reason: Option<String> },
    Kick { name: Arc<str>, mask: Arc<str>, target: Uid, target_nick: Arc<str>, reason: String },
    Topic { name: Arc<str>, mask: Arc<str>, text: String },
    Mode { name: Arc<str>, mask: Arc<str>, changes: Vec<mode::Requested> },
}

impl ChanRequest {
    pub fn name(&self) -> &Arc<str> {
        match self {
            ChanRequest::Join { name, .. }
            | ChanRequest::Part { name, .. }
            | ChanRequest::Kick { name, .. }
            | ChanRequest::Topic { name, .. }
            | ChanRequest::Mode { name, .. } => name,
        }
    }
}

/// The home's answer to a request.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The change, its number, the line its members see, and numerics for the requester.
    Accepted {
        home: u16,
        seq: u64,
        chan: Folded,
        name: Arc<str>,
        mutation: Mutation,
        line: Arc<[u8]>,
        notes: Vec<Reply>,
    },
    Refused(Vec<Reply>),
}

/// An event applied by every shard in sequence order: after the previous number of `dep`'s
/// home (an event needs at most one home's number; see `state::sequencer`).
#[derive(Clone, Debug)]
pub struct Sequenced {
    pub dep: Option<Dep>,
    pub ev: ChanEvent,
    /// Answer [`Env::Applied`] to the sending shard for this connection once applied.
    pub ack: Option<Conn>,
}

#[derive(Clone, Debug)]
pub enum ChanEvent {
    /// A change to one channel; its members see `line`.
    Change { chan: Folded, name: Arc<str>, mutation: Mutation, line: Shared, actor: Uid },
    /// A user leaving the network leaves the channels of one home (`chans`); `later` are its
    /// channels whose homes' parts come after this one. Everyone who shared a channel with it
    /// sees `line` once, with the part that removes it from the last channel they share; with
    /// the last part (`later` empty) the user is gone.
    Quit { uid: Uid, line: Shared, chans: Vec<Folded>, later: Vec<Folded> },
}

// ---------------------------------------------------------------------------------------------
// The requesting side

/// Queues channel requests for the running client and sends the first; the client's further
/// input waits until all of them are answered and applied.
pub fn submit(ctx: &mut Ctx<'_>, reqs: Vec<ChanRequest>) {
    if reqs.is_empty() {
        return;
    }
    ctx.me_mut().chan_queue.extend(reqs);
    send_next(ctx.st, ctx.out, ctx.conn);
}

/// Sends the client's next queued request. False when none is left (the wait is over).
fn send_next(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn) -> bool {
    let cores = st.cores;
    let cm = st.cm;
    let Some(c) = st.clients.get_mut(&conn) else { return false };
    match c.chan_queue.pop_front() {
        Some(req) => {
            c.wait = Some(Wait::Chan);
            let home = cm.fold(req.name()).owner(cores);
            out.mesh(home, Env::ChanReq { conn, uid: c.uid, req });
            true
        }
        None => {
            if c.wait == Some(Wait::Chan) {
                c.wait = None;
            }
            false
        }
    }
}

/// After a request was answered (and applied): the next one, or the client's queued input.
fn continue_client(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, now: Instant, unix: u64) {
    let Some(c) = st.clients.get_mut(&conn) else { return };
    if c.departing.is_some() {
        c.chan_queue.clear();
        c.wait = None;
        depart(st, out, conn, unix);
        return;
    }
    if !send_next(st, out, conn) {
        resume(st, out, conn, now, unix);
    }
}

/// The home's answer arrived.
pub fn on_ack(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    conn: Conn,
    uid: Uid,
    outcome: Outcome,
    now: Instant,
    unix: u64,
) {
    match outcome {
        Outcome::Refused(replies) => {
            send_replies(st, out, conn, &replies);
            continue_client(st, out, conn, now, unix);
        }
        Outcome::Accepted { home, seq, chan, name, mutation, line, notes } => {
            // The change gets its time and msgid here, once; a JOIN also its extended-join form.
            let mut line = Shared::with_meta(line, meta(st, Some(uid), None));
            if matches!(mutation, Mutation::Join { .. }) {
                if let Some(u) = st.directory.get(&uid) {
                    let account = u.account.as_deref().unwrap_or("*");
                    let ext = crate::proto::Line::new()
                        .source(&u.mask())
                        .verb("JOIN")
                        .param(&name)
                        .param(account)
                        .trailing(&u.realname)
                        .finish();
                    line.join_ext = Some(ext.into());
                }
            }
            let event = Sequenced {
                dep: Some((home, seq)),
                ev: ChanEvent::Change { chan, name, mutation, line, actor: uid },
                ack: Some(conn),
            };
            st.mine.push(Mine { event, conn: Some(conn), notes, farewell: None, since: now, noted: false });
            apply_ready(st, out, now, unix);
        }
    }
}

fn send_replies(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, replies: &[Reply]) {
    let Some(c) = st.clients.get(&conn) else { return };
    if c.departing.is_some() || replies.is_empty() {
        return;
    }
    let target = c.target().to_string();
    let mut buf = Vec::new();
    for r in replies {
        let params: Vec<&str> = r.params.iter().map(String::as_str).collect();
        buf.extend_from_slice(&super::numeric_line(&st.cfg.server.name, &target, r.numeric, &params));
    }
    reply(st, out, conn, &buf);
}

// ---------------------------------------------------------------------------------------------
// The home side

/// A request reached this shard as the channel's home.
pub fn at_home(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    from: usize,
    conn: Conn,
    uid: Uid,
    req: ChanRequest,
    unix: u64,
) {
    let outcome = match decide(st, uid, req, unix) {
        Ok((chan, name, mutation, line, notes)) => {
            let seq = st.seq.issue();
            Outcome::Accepted { home: st.me as u16, seq, chan, name, mutation, line, notes }
        }
        Err(replies) => Outcome::Refused(replies),
    };
    out.mesh(from, Env::ChanAck { conn, uid, outcome });
}

type Decision = Result<(Folded, Arc<str>, Mutation, Arc<[u8]>, Vec<Reply>), Vec<Reply>>;

fn decide(st: &mut ShardState, uid: Uid, req: ChanRequest, unix: u64) -> Decision {
    let folded = st.cm.fold(req.name());
    let cores = st.cores;
    let decision = match req {
        ChanRequest::Join { name, key, mask, ip_mask, invited } => {
            let ch =
                st.homes.entry(folded.clone()).or_insert_with(|| Channel::new(name.clone(), folded.clone(), 0, cores));
            join::decide(ch, st.cm, uid, key.as_deref(), &mask, &ip_mask, invited, unix)
                .map(|(m, line)| (ch.name.clone(), m, line, Vec::new()))
        }
        ChanRequest::Part { mask, reason, .. } => match st.homes.get(&folded) {
            None => Err(vec![crate::err!(ERR_NOSUCHCHANNEL, req_name(&folded))]),
            Some(ch) => {
                part::decide(ch, uid, &mask, reason.as_deref()).map(|(m, line)| (ch.name.clone(), m, line, Vec::new()))
            }
        },
        ChanRequest::Kick { name, mask, target, target_nick, reason } => match st.homes.get(&folded) {
            None => Err(vec![crate::err!(ERR_NOSUCHCHANNEL, name)]),
            Some(ch) => kick::decide(ch, uid, &mask, target, &target_nick, &reason)
                .map(|(m, line)| (ch.name.clone(), m, line, Vec::new())),
        },
        ChanRequest::Topic { name, mask, text } => match st.homes.get(&folded) {
            None => Err(vec![crate::err!(ERR_NOSUCHCHANNEL, name)]),
            Some(ch) => {
                topic::decide(ch, uid, &mask, &text, unix).map(|(m, line)| (ch.name.clone(), m, line, Vec::new()))
            }
        },
        ChanRequest::Mode { name, mask, changes } => match st.homes.get(&folded) {
            None => Err(vec![crate::err!(ERR_NOSUCHCHANNEL, name)]),
            Some(ch) => {
                let limits = &st.cfg.limits;
                mode::decide(ch, uid, &mask, &changes, limits.max_list_entries, limits.max_modes, unix)
                    .map(|(m, line, notes)| (ch.name.clone(), m, line, notes))
            }
        },
    };
    let (name, mutation, line, notes) = match decision {
        Ok(d) => d,
        Err(e) => {
            // A join refused on a channel that did not exist leaves nothing behind.
            if st.homes.get(&folded).is_some_and(|c| c.members.is_empty()) {
                st.homes.remove(&folded);
            }
            return Err(e);
        }
    };
    let ch = st.homes.get_mut(&folded).expect("decided on an existing channel");
    if !ch.apply(&mutation, |u| u.shard(cores)) {
        st.homes.remove(&folded);
    }
    Ok((folded, name, mutation, line, notes))
}

fn req_name(f: &Folded) -> String {
    f.as_str().to_string()
}

/// A departing user's channels at this home: remove it, and number the change.
pub fn quit_at_home(st: &mut ShardState, out: &mut dyn Outbox, from: usize, uid: Uid, chans: Vec<Folded>) {
    let cores = st.cores;
    for chan in &chans {
        if let Some(ch) = st.homes.get_mut(chan) {
            if !ch.apply(&Mutation::Leave { uid }, |u| u.shard(cores)) {
                st.homes.remove(chan);
            }
        }
    }
    let seq = st.seq.issue();
    out.mesh(from, Env::QuitAck { uid, home: st.me as u16, seq });
}

// ---------------------------------------------------------------------------------------------
// Departures

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

fn depart(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, _unix: u64) {
    let Some(c) = st.clients.remove(&conn) else { return };
    let reason = c.departing.clone().unwrap_or_default();
    st.class_counts[c.class] -= 1;
    crate::commands::admission::closed(st, out, c.addr.ip(), Instant::now());
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
    let body: Arc<[u8]> = crate::proto::Line::new().source(&c.mask()).verb("QUIT").trailing(&reason).finish().into();
    let line = Shared::with_meta(body, meta(st, Some(c.uid), None));
    let chans = st.directory.get(&c.uid).map(|u| u.channels.clone()).unwrap_or_default();
    let mut parts: Vec<(u16, Vec<Folded>)> = Vec::new();
    for f in chans {
        let h = f.owner(st.cores) as u16;
        match parts.iter_mut().find(|(x, _)| *x == h) {
            Some((_, v)) => v.push(f),
            None => parts.push((h, vec![f])),
        }
    }
    let farewell = c.farewell.map(|l| (conn, l));
    for (h, chans) in &parts {
        out.mesh(*h as usize, Env::QuitReq { uid: c.uid, chans: chans.clone() });
    }
    let none = parts.is_empty();
    st.quits.insert(c.uid, QuitState { line: line.clone(), parts, farewell });
    if none {
        let now = Instant::now();
        push_quit_part(st, c.uid, None, line, Vec::new(), now);
        apply_ready(st, out, now, _unix);
    }
}

/// One home's part of a departure, to be applied in that home's sequence like any change.
fn push_quit_part(st: &mut ShardState, uid: Uid, dep: Option<Dep>, line: Shared, chans: Vec<Folded>, now: Instant) {
    st.mine.push(Mine {
        event: Sequenced { dep, ev: ChanEvent::Quit { uid, line, chans, later: Vec::new() }, ack: None },
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
    apply_ready(st, out, now, unix);
}

/// A departure part's turn came here: it learns which channels later parts hold; the last one
/// carries the farewell, and its acknowledgements tell the client every shard saw it all.
fn quit_part_turn(st: &mut ShardState, m: &mut Mine) {
    let ChanEvent::Quit { uid, later, .. } = &mut m.event.ev else { return };
    let Some(q) = st.quits.get_mut(uid) else { return };
    if let Some((home, _)) = m.event.dep {
        q.parts.retain(|(h, _)| *h != home);
    }
    *later = q.parts.iter().flat_map(|(_, c)| c.iter().cloned()).collect();
    if later.is_empty() {
        let q = st.quits.remove(uid).expect("present");
        m.event.ack = q.farewell.as_ref().map(|(c, _)| *c);
        m.farewell = q.farewell;
    }
}

// ---------------------------------------------------------------------------------------------
// Applying events in sequence

/// Applies every held event whose turn has come — this shard's own first, then those from
/// other shards, each source in arrival order — until nothing more can move.
pub fn apply_ready(st: &mut ShardState, out: &mut dyn Outbox, now: Instant, unix: u64) {
    loop {
        let mut progress = false;
        let mut i = 0;
        while i < st.mine.len() {
            if st.seq.ready(st.mine[i].event.dep) {
                let m = st.mine.remove(i);
                apply_mine(st, out, m, now, unix);
                progress = true;
            } else {
                i += 1;
            }
        }
        for from in 0..st.cores {
            while let Some(env) = st.blocked[from].events.pop_front() {
                match super::mesh::stream_event(st, out, from, env, now, unix) {
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
            break;
        }
    }
}

/// One of this shard's own changes: apply, show, send to every other shard, answer the
/// requester, and let it go on.
fn apply_mine(st: &mut ShardState, out: &mut dyn Outbox, mut m: Mine, now: Instant, unix: u64) {
    st.seq.advance(m.event.dep);
    quit_part_turn(st, &mut m);
    // A departing user's nick is freed only once every shard will have seen it go.
    let release = match &m.event.ev {
        ChanEvent::Quit { uid, later, .. } if later.is_empty() => {
            st.directory.get(uid).map(|u| (u.folded.clone(), *uid))
        }
        _ => None,
    };
    // The actor's own copy of the change waits for every shard (see `Wait::Barrier`).
    apply_event(st, out, &m.event.ev, m.conn, unix);
    let event = m.event;
    broadcast(st, out, || Env::Event(Box::new(event.clone())));
    if let Some((nick, uid)) = release {
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
    let mut held = Vec::new();
    if let (ChanEvent::Change { line, .. }, Some(c)) = (&event.ev, st.clients.get(&conn)) {
        line.render(c.caps, &mut held);
    }
    if let Some(c) = st.clients.get(&conn) {
        let target = c.target().to_string();
        for r in &m.notes {
            let params: Vec<&str> = r.params.iter().map(String::as_str).collect();
            held.extend_from_slice(&super::numeric_line(&st.cfg.server.name, &target, r.numeric, &params));
        }
    }
    if let ChanEvent::Change { chan, mutation: Mutation::Join { .. }, .. } = &event.ev {
        if st.clients.get(&conn).is_some_and(|c| c.departing.is_none()) {
            held.extend_from_slice(&join::after_join(st, out, conn, chan, now, unix));
        }
    }
    barrier(st, out, conn, held, now, unix);
}

/// Holds `held` for the client until every other shard acknowledged the change just sent
/// out, then sends it and lets the client go on.
pub fn barrier(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, held: Vec<u8>, now: Instant, unix: u64) {
    let remaining = st.cores - 1;
    let Some(c) = st.clients.get_mut(&conn) else { return };
    if remaining == 0 || c.departing.is_some() {
        c.wait = Some(Wait::Chan);
        reply(st, out, conn, &held);
        continue_client(st, out, conn, now, unix);
        return;
    }
    c.wait = Some(Wait::Barrier { remaining, held });
}

/// One shard applied a change this client made.
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
    let Some(Wait::Barrier { remaining, held }) = &mut c.wait else { return };
    *remaining -= 1;
    if *remaining > 0 {
        return;
    }
    let held = std::mem::take(held);
    c.wait = Some(Wait::Chan);
    reply(st, out, conn, &held);
    continue_client(st, out, conn, now, unix);
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
        ChanEvent::Change { chan, name, mutation, line, .. } => apply_change(st, out, chan, name, mutation, line, skip),
        ChanEvent::Quit { uid, line, chans, later } => {
            let observers = quit_observers(st, uid, chans, later);
            let cores = st.cores;
            for chan in chans {
                let Some(view) = st.channels.get_mut(chan) else { continue };
                view.local.retain(|(u, _)| u != uid);
                if !view.ch.apply(&Mutation::Leave { uid: *uid }, |u| u.shard(cores)) {
                    st.channels.remove(chan);
                }
            }
            to_conns_shared(st, out, &observers, line, 0);
            // Left now: `forget_user` need not visit these channels again.
            if let Some(u) = st.directory.get_mut(uid) {
                u.channels.retain(|c| !chans.contains(c));
            }
            if later.is_empty() {
                forget_user(st, out, uid, unix);
            }
        }
    }
}

/// Local members of `chans` (still holding `uid`) who see its QUIT now: each once, and not
/// those who share one of the `later` channels with it — they see it with that part.
fn quit_observers(st: &mut ShardState, uid: &Uid, chans: &[Folded], later: &[Folded]) -> Vec<Conn> {
    let mut observers = Vec::new();
    st.stamp += 1;
    let stamp = st.stamp;
    let later: SmallVec<[&Channel; 4]> = later.iter().filter_map(|f| st.channels.get(f)).map(|v| &v.ch).collect();
    for chan in chans {
        let Some(view) = st.channels.get(chan) else { continue };
        if !view.ch.members.contains_key(uid) {
            continue;
        }
        for &(u, conn) in &view.local {
            if u == *uid || later.iter().any(|ch| ch.members.contains_key(&u) && ch.members.contains_key(uid)) {
                continue;
            }
            if let Some(c) = st.clients.get_mut(&conn) {
                if c.stamp != stamp {
                    c.stamp = stamp;
                    observers.push(conn);
                }
            }
        }
    }
    observers
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
        View { ch: Channel::new(name.clone(), chan.clone(), created, cores), local: Vec::new() }
    });
    if let Mutation::Join { created: Some(ts), .. } = mutation {
        view.ch.created = *ts;
        view.ch.name = name.clone();
    }
    let show_first = matches!(mutation, Mutation::Leave { .. });
    let targets: Vec<Conn> = view.local.iter().map(|(_, c)| *c).collect();
    if show_first {
        deliver_all(st, out, &targets, line, skip);
    }
    let view = st.channels.get_mut(chan).expect("view exists");
    let alive = view.ch.apply(mutation, |u| u.shard(cores));
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
                to_conns_shared(st, out, &targets, &Shared::plain(body.into()), super::cap::bits::AWAY_NOTIFY);
            }
        }
    }
}

fn deliver_all(st: &mut ShardState, out: &mut dyn Outbox, conns: &[Conn], line: &Shared, skip: Option<Conn>) {
    let conns: Vec<Conn> = conns.iter().copied().filter(|c| Some(*c) != skip).collect();
    to_conns_shared(st, out, &conns, line, 0);
}

/// A user left the network: out of the directory, into WHOWAS, and MONITOR watchers told.
fn forget_user(st: &mut ShardState, out: &mut dyn Outbox, uid: &Uid, unix: u64) {
    let Some(u) = st.directory.remove(uid) else { return };
    for chan in &u.channels {
        if let Some(view) = st.channels.get_mut(chan) {
            view.local.retain(|(x, _)| x != uid);
        }
    }
    st.whowas.record(WasEntry::of(&u, &st.cfg.server.name, unix));
    crate::commands::query::monitor::notify_offline(st, out, &u.folded, &u.nick);
}

/// The local members of `chan` other than `except`, with their status.
pub fn local_members(st: &ShardState, chan: &Folded) -> Vec<(Uid, Conn)> {
    st.channels.get(chan).map(|v| v.local.clone()).unwrap_or_default()
}
