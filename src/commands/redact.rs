//! REDACT (IRCv3 `draft/message-redaction`): `REDACT <target> <msgid> [:<reason>]`. Who may:
//! the message's sender (the same user, or the same account), and in a channel its operators.
//! The shard that keeps the log decides (it has the message, and for a channel, as its home,
//! the authoritative member list), takes the message out of the log (and off the disk; for a
//! private message out of both sides' logs), and answers; the redactor's shard then shows the
//! REDACT to those with the capability — the channel's members, or the other side and the
//! redactor.

use std::sync::Arc;
use std::time::Instant;

use super::capabilities::bits;
use super::delivery::{meta, reply, to_channel, to_user};
use super::envelope::{Answer, ChanMsg, Env, Request};
use super::history::codec::LogKey;
use super::history::record::user_key;
use super::history::store::{DbOp, Peer};
use super::history::Source;
use super::outbox::{Conn, Outbox};
use super::outgoing::Shared;
use super::{CmdResult, Ctx};
use crate::local::client::Wait;
use crate::local::shard::ShardState;
use crate::proto::names::is_channel_name;
use crate::proto::{Line, Message};
use crate::state::channel::Status;
use crate::state::Uid;

/// A redaction asked of the log's keeper.
#[derive(Clone, Debug)]
pub struct Ask {
    pub uid: Uid,
    pub account: Option<Arc<str>>,
    pub source: Source,
    pub target: Arc<str>,
    pub msgid: Box<str>,
    pub reason: Option<Box<str>>,
}

/// The keeper's verdict: done (with the other side as the log knows it, for a private
/// message), or a FAIL code.
#[derive(Debug)]
pub enum Verdict {
    Done { peer: Option<Arc<Peer>> },
    Refused(&'static str),
}

pub fn redact(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let (target, msgid) = (msg.params[0], msg.params[1]);
    let reason = msg.params.get(2).filter(|r| !r.is_empty()).map(|r| Box::from(*r));
    let uid = ctx.me().uid;
    let source = if is_channel_name(target) {
        let folded = ctx.st.cm.fold(target);
        ctx.st.channels.get(&folded).filter(|v| v.ch.status(&uid).is_some()).map(|_| Source::Channel(folded))
    } else if crate::proto::names::valid_nick(target, usize::MAX) {
        user_key(ctx.st, uid).map(|key| Source::User { key, peer: ctx.st.cm.fold(target) })
    } else {
        None
    };
    let Some(source) = source.filter(|_| ctx.st.cfg.history.enabled) else {
        super::identity::fail(ctx, "REDACT", "INVALID_TARGET", &[target], "You cannot redact messages there");
        return Ok(());
    };
    let account = ctx.st.directory.get(&uid).and_then(|u| u.account.clone());
    let ask = Ask { uid, account, source, target: target.into(), msgid: msgid.into(), reason };
    let keeper = match &ask.source {
        Source::Channel(c) => c.owner(ctx.st.cores),
        Source::User { key, .. } => key.owner(ctx.st.cores),
    };
    if keeper == ctx.st.me {
        let verdict = decide(ctx.st, ctx.out, &ask);
        let (conn, now) = (ctx.conn, ctx.now);
        ctx.flush();
        show(ctx.st, ctx.out, conn, ask, verdict, now);
    } else {
        let conn = ctx.conn;
        ctx.out.to_shard(keeper, Env::Request(Request::Redact { conn, ask: Box::new(ask) }));
        ctx.me_mut().wait = Some(Wait::Answer);
    }
    Ok(())
}

/// At the log's keeper: may the asker redact this message? If so it leaves the log(s).
pub fn decide(st: &mut ShardState, out: &mut dyn Outbox, ask: &Ask) -> Verdict {
    let (log_key, peer) = match &ask.source {
        Source::Channel(c) => (LogKey::Channel(c.clone()), None),
        Source::User { key, peer } => (LogKey::User(key.clone()), Some(peer)),
    };
    let log = match &log_key {
        LogKey::Channel(c) => st.history.channels.get(c),
        LogKey::User(k) => st.history.users.get(k),
    };
    let Some(entry) = log.and_then(|l| l.find(&ask.msgid, peer)) else { return Verdict::Refused("UNKNOWN_MSGID") };
    let meta = entry.line.meta.clone();
    let own = meta.as_ref().is_some_and(|m| {
        m.sender == Some(ask.uid) || (m.account.is_some() && m.account.as_deref() == ask.account.as_deref())
    });
    let op = match &ask.source {
        Source::Channel(c) => st.homes.get(c).and_then(|ch| ch.status(&ask.uid)).is_some_and(|s| s.is_op()),
        Source::User { .. } => false,
    };
    if !own && !op {
        return Verdict::Refused("REDACT_FORBIDDEN");
    }
    let other = entry.peer.clone();
    let now_ms = out.unix_ms();
    remove(st, log_key, &ask.msgid, now_ms);
    // A private message is in the other side's log too, when it had an account then.
    let peer = other.inspect(|p| {
        if let Some(a) = &p.account {
            let key = super::history::record::account_key(st.cm, a.as_str());
            let owner = key.owner(st.cores);
            if owner == st.me {
                remove(st, LogKey::User(key), &ask.msgid, now_ms);
            } else {
                out.to_shard(
                    owner,
                    Env::Request(Request::HistoryRemove { log: LogKey::User(key), msgid: ask.msgid.clone() }),
                );
            }
        }
    });
    Verdict::Done { peer }
}

/// Takes an entry out of a log this shard keeps, and off the disk.
pub fn remove(st: &mut ShardState, log: LogKey, msgid: &str, now_ms: u64) {
    let logs = match &log {
        LogKey::Channel(_) => &mut st.history.channels,
        LogKey::User(_) => &mut st.history.users,
    };
    let Some(l) = logs.get_mut(log.name()) else { return };
    if let Some(e) = l.redact(msgid, now_ms) {
        if let Some(sink) = st.history.sink_for(&log) {
            let _ = sink.send(DbOp::Delete(log, e.time_ms(), msgid.into()));
        }
    }
}

/// A redaction request from another shard's client.
pub fn on_request(st: &mut ShardState, out: &mut dyn Outbox, from: usize, conn: Conn, ask: Ask) {
    let verdict = decide(st, out, &ask);
    out.to_shard(from, Env::Answer(Answer::Redacted { conn, ask: Box::new(ask), verdict }));
}

/// The verdict for a waiting client of this shard.
pub fn on_answer(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    conn: Conn,
    ask: Ask,
    verdict: Verdict,
    now: Instant,
    unix: u64,
) {
    if let Some(c) = st.clients.get_mut(&conn) {
        if c.wait == Some(Wait::Answer) {
            c.wait = None;
        }
    }
    show(st, out, conn, ask, verdict, now);
    super::connection::resume(st, out, conn, now, unix);
}

/// The REDACT to those who should see it, or the FAIL to the redactor.
fn show(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, ask: Ask, verdict: Verdict, now: Instant) {
    let server = st.cfg.server.name.clone();
    let peer = match verdict {
        Verdict::Refused(code) => {
            let context: &[&str] = if code == "INVALID_TARGET" { &[&ask.target] } else { &[&ask.target, &ask.msgid] };
            let text = if code == "UNKNOWN_MSGID" { "No such message" } else { "You may not redact that message" };
            reply(st, out, conn, &super::identity::fail_line(&server, "REDACT", code, context, text));
            return;
        }
        Verdict::Done { peer } => peer,
    };
    to_links(st, out, &ask, peer.as_ref().and_then(|p| p.uid));
    let Some(me) = st.directory.get(&ask.uid) else { return };
    let mut l = Line::new().source(&me.mask()).verb("REDACT").param(&ask.target).param(&ask.msgid);
    if let Some(r) = &ask.reason {
        l = l.trailing(r);
    }
    let body: Arc<[u8]> = l.finish().into();
    let line = Shared::with_meta(body, meta(st, &*out, Some(ask.uid), None));
    match &ask.source {
        Source::Channel(chan) => {
            let msg = ChanMsg {
                chan: chan.clone(),
                line: line.clone(),
                sender: ask.uid,
                min: Status::NONE,
                need: bits::REDACTION,
                at: now,
            };
            to_channel(st, out, msg);
        }
        Source::User { .. } => {
            for u in peer.map(|p| holders(st, &p)).unwrap_or_default() {
                if u != ask.uid {
                    to_user(st, out, u, &line, bits::REDACTION, now);
                }
            }
        }
    }
    // The redactor sees it too (when it understands it), among its replies.
    if st.clients.get(&conn).is_some_and(|c| c.caps & bits::REDACTION != 0) {
        let mut buf = Vec::new();
        line.render(st.clients[&conn].caps, &mut buf);
        reply(st, out, conn, &buf);
    }
}

/// Who holds the other side of a private conversation now: the sessions of its account when
/// it had one then, else that user (by UID) while it is still here — never whoever has taken
/// its nick since.
fn holders(st: &ShardState, p: &Peer) -> Vec<Uid> {
    match &p.account {
        Some(a) => {
            let cm = st.cm;
            let of_account = |u: &&crate::state::user::User| u.account.as_deref().is_some_and(|x| cm.eq(x, a.as_str()));
            st.directory.iter().filter(of_account).map(|u| u.uid).collect()
        }
        None => p.uid.filter(|u| st.directory.get(u).is_some()).into_iter().collect(),
    }
}

/// A redaction decided here, for the other servers (rustircd ones take it, others pass it on):
/// `:<UID> ENCAP * REDACT <target> <msgid> [:<reason>]`, the target as the redactor named it
/// (a channel, or the other side's nick).
/// `to`: the other side of a private message, named by its UID (its nick may have changed,
/// or gone to someone else, since).
fn to_links(st: &mut ShardState, out: &mut dyn Outbox, ask: &Ask, to: Option<Uid>) {
    let l = Line::new().source(ask.uid.as_str()).verb("ENCAP").param("*").param("REDACT");
    let target = match (&ask.source, to) {
        (Source::User { .. }, Some(to)) => to.as_str().to_string(),
        _ => ask.target.to_string(),
    };
    let l = l.param(&target).param(&ask.msgid);
    let line = match &ask.reason {
        Some(r) => l.trailing(r).finish(),
        None => l.finish(),
    };
    super::link::to_all_links(st, out, None, line.into());
}

/// `:<UID> ENCAP * REDACT <target> <msgid> [:<reason>]` from another rustircd server, whose
/// log keeper allowed it (passed on already): the message leaves the logs kept here — the
/// channel's, or each side's of a private one (the other side by UID; an older server's nick
/// is still understood) — and whoever would see the REDACT there sees it here.
pub fn from_link(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, args: &[&str], now: Instant) {
    let (Some(target), Some(msgid)) = (args.first(), args.get(1)) else { return };
    let Some(mask) = st.directory.get(&uid).map(|u| u.mask()) else { return };
    let other = match Uid::parse(target) {
        Some(o) => st.directory.get(&o).map(|u| (o, u.nick.clone())),
        None if !is_channel_name(target) => st.directory.by_nick(&st.cm.fold(target)).map(|u| (u.uid, u.nick.clone())),
        None => None,
    };
    let target = other.as_ref().map_or(*target, |(_, nick)| &**nick);
    let mut l = Line::new().source(&mask).verb("REDACT").param(target).param(msgid);
    if let Some(r) = args.get(2).filter(|r| !r.is_empty()) {
        l = l.trailing(r);
    }
    let line = Shared::with_meta(l.finish().into(), meta(st, &*out, Some(uid), None));
    if is_channel_name(target) {
        let chan = st.cm.fold(target);
        if st.channels.get(&chan).is_none() {
            return;
        }
        drop_entry(st, out, LogKey::Channel(chan.clone()), msgid);
        let msg = ChanMsg { chan, line, sender: uid, min: Status::NONE, need: bits::REDACTION, at: now };
        return to_channel(st, out, msg);
    }
    let other = other.map(|(o, _)| o);
    let keys = [user_key(st, uid), other.and_then(|o| user_key(st, o))];
    for key in keys.into_iter().flatten() {
        drop_entry(st, out, LogKey::User(key), msgid);
    }
    if let Some(o) = other.filter(|o| *o != uid) {
        to_user(st, out, o, &line, bits::REDACTION, now);
    }
}

/// Takes a message out of a log here, or asks the shard that keeps it.
pub fn drop_entry(st: &mut ShardState, out: &mut dyn Outbox, log: LogKey, msgid: &str) {
    let owner = log.name().owner(st.cores);
    if owner == st.me {
        remove(st, log, msgid, out.unix_ms());
    } else {
        out.to_shard(owner, Env::Request(Request::HistoryRemove { log, msgid: msgid.into() }));
    }
}
