//! The requesting side: a client's channel requests go to their homes one at a time, its
//! further input waiting until each is answered and applied.

use std::time::Instant;

use super::depart::depart;
use super::*;
use crate::commands::connection::resume;
use crate::commands::context::Reply;
use crate::commands::delivery::{meta, reply};
use crate::commands::envelope::Env;
use crate::commands::envelope::Request;
use crate::commands::outbox::{Conn, Outbox};
use crate::commands::outgoing::Shared;
use crate::commands::Ctx;
use crate::local::client::Wait;
use crate::local::shard::{Mine, ShardState};
use crate::state::channel::Mutation;
use crate::state::Uid;

/// Queues channel requests for the running client and sends the first; the client's further
/// input waits until all of them are answered and applied.
pub fn submit(ctx: &mut Ctx<'_>, reqs: Vec<ChanRequest>) {
    if reqs.is_empty() {
        return;
    }
    if ctx.me().kind == crate::local::kind::Kind::Server {
        return submit_pipelined(ctx, reqs);
    }
    ctx.me_mut().rare_mut().chan_queue.extend(reqs);
    send_next(ctx.st, ctx.out, ctx.conn);
}

/// A server link's requests all go at once: its channel lines do not wait for each other (a
/// home answers its requests in the order they came; what one line needs of another's answer
/// is the same channel's, hence the same home's). The link's other lines wait until every
/// answer is applied here (`link::pipelined`).
fn submit_pipelined(ctx: &mut Ctx<'_>, reqs: Vec<ChanRequest>) {
    let (cores, cm, conn) = (ctx.st.cores, ctx.st.cm, ctx.conn);
    let Some(link) = ctx.st.links.get_mut(&conn) else { return };
    link.in_flight += reqs.len() as u32;
    ctx.me_mut().wait = Some(Wait::Chan);
    for req in reqs {
        let home = cm.fold(req.name()).owner(cores);
        let uid = match &req {
            ChanRequest::Remote(r) => r.by().unwrap_or(ctx.me().uid),
            _ => ctx.me().uid,
        };
        ctx.out.to_shard(home, Env::Request(Request::Chan { conn, uid, req }));
    }
}

/// One of a link's requests was answered and applied: true while others are still in flight.
fn link_still_waiting(st: &mut ShardState, conn: Conn) -> bool {
    let Some(link) = st.links.get_mut(&conn) else { return false };
    link.in_flight = link.in_flight.saturating_sub(1);
    if link.in_flight > 0 {
        return true;
    }
    if let Some(c) = st.clients.get_mut(&conn) {
        if c.wait == Some(Wait::Chan) {
            c.wait = None;
        }
    }
    false
}

/// Sends the client's next queued request. False when none is left (the wait is over).
fn send_next(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn) -> bool {
    let cores = st.cores;
    let cm = st.cm;
    let Some(c) = st.clients.get_mut(&conn) else { return false };
    match c.rare_if_any().and_then(|r| r.chan_queue.pop_front()) {
        Some(req) => {
            c.wait = Some(Wait::Chan);
            let home = cm.fold(req.name()).owner(cores);
            // A server link's change is made by the user behind it, when a user makes it.
            let uid = match &req {
                ChanRequest::Remote(r) => r.by().unwrap_or(c.uid),
                _ => c.uid,
            };
            out.to_shard(home, Env::Request(Request::Chan { conn, uid, req }));
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

/// Applies what is ready, then runs what that left to do (clients going on with their input).
pub fn settle(st: &mut ShardState, out: &mut dyn Outbox, now: Instant, unix: u64) {
    for effect in apply_ready(st, out, now, unix) {
        match effect {
            Effect::Continue(conn) => continue_client(st, out, conn, now, unix),
        }
    }
}

/// After a request was answered (and applied): the next one, or the client's queued input.
pub fn continue_client(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, now: Instant, unix: u64) {
    if st.clients.get(&conn).is_some_and(|c| c.kind == crate::local::kind::Kind::Server) && link_still_waiting(st, conn)
    {
        return;
    }
    let Some(c) = st.clients.get_mut(&conn) else { return };
    // A rename's channel is in flight between homes: it lands even if the client is leaving.
    if let Some(next) = c.rare_if_any().and_then(|r| r.then.take()) {
        let uid = c.uid;
        return send_now(st, out, conn, uid, *next);
    }
    if let Some(r) = c.rare_if_any().filter(|r| r.departing.is_some()) {
        r.chan_queue.clear();
        c.wait = None;
        depart(st, out, conn, unix);
        return;
    }
    if !send_next(st, out, conn) {
        resume(st, out, conn, now, unix);
    }
}

/// Sends a request of a step under way, outside the client's queue; the client still waits.
fn send_now(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, uid: Uid, req: ChanRequest) {
    let home = st.cm.fold(req.name()).owner(st.cores);
    if let Some(c) = st.clients.get_mut(&conn) {
        c.wait = Some(Wait::Chan);
    }
    out.to_shard(home, Env::Request(Request::Chan { conn, uid, req }));
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
        Outcome::Fail { command, code, context, text } => {
            if st.clients.get(&conn).is_some_and(|c| c.rare().departing.is_none()) {
                let line = crate::commands::identity::fail_line(&st.cfg.server.name, command, code, &context, text);
                reply(st, out, conn, &line);
            }
            continue_client(st, out, conn, now, unix);
        }
        // Still waiting: the next step goes out at once, even for a client that is leaving
        // (a refusal there releases what this step reserved).
        Outcome::Proceed(next) => send_now(st, out, conn, uid, *next),
        Outcome::Accepted { home, seq, chan, name, mutation, line, notes, then } => {
            // The client cannot be gone: its departure waits while a request is in flight.
            if let Some(then) = then {
                match st.clients.get_mut(&conn) {
                    Some(c) => c.rare_mut().then = Some(then),
                    None => log::error!("Channel hand-over for a connection that is gone: {:?}", then.name()),
                }
            }
            // A server link's change: through which peer it came (it is not told again).
            let via = st.links.get(&conn).and_then(|l| l.sid());
            // The change gets its time and msgid here, once; a JOIN also its extended-join form.
            // (A burst's lines are several, shown as they are.)
            let mut line = match mutation {
                Mutation::Burst { .. } => Shared::plain(line),
                _ => Shared::with_meta(line, meta(st, &*out, Some(uid), None)),
            };
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
                ev: ChanEvent::Change { chan, name, mutation, line, actor: uid, via },
                ack: Some(conn),
            };
            st.mine.push(Mine { event, conn: Some(conn), notes, farewell: None, since: now, noted: false });
            settle(st, out, now, unix);
        }
    }
}

fn send_replies(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, replies: &[Reply]) {
    let Some(c) = st.clients.get(&conn) else { return };
    if c.rare().departing.is_some() || replies.is_empty() {
        return;
    }
    let target = c.target().to_string();
    let mut buf = Vec::new();
    for r in replies {
        r.write(&st.cfg.server.name, &target, &mut buf);
    }
    reply(st, out, conn, &buf);
}
