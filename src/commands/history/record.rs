//! What history keeps, and where. A channel's log is kept by its home: the sender's shard
//! sends a channel message to the home as to any shard with members (one envelope more only
//! when the home has none), and the home adds it as it delivers it; channel events (JOIN,
//! PART, KICK, MODE, TOPIC, QUIT) are added where the home applies them. A private message goes
//! into the log of each side's key, at the shard that owns the key.

use std::sync::Arc;

use super::codec::LogKey;
use super::store::{DbOp, Entry, Kind, Peer};
use crate::commands::capabilities::bits;
use crate::commands::envelope::{ChanMsg, Env, Request};
use crate::commands::outbox::Outbox;
use crate::commands::outgoing::Shared;
use crate::local::shard::ShardState;
use crate::proto::Folded;
use crate::state::channel::{Closed, Status};
use crate::state::Uid;

/// The key a user's private history is kept under: its account (`a:<account>`), across
/// connections, servers and restarts; without one, its connection (`u:<UID>`), in memory only
/// and gone when it leaves. Not its nick: a nick passes to whoever takes it next, and the
/// conversation must not go with it (Ergo, too, keeps an unregistered client's history with
/// the client).
pub fn user_key(st: &ShardState, uid: Uid) -> Option<Folded> {
    let u = st.directory.get(&uid)?;
    Some(match u.account.as_deref() {
        Some(a) => account_key(st.cm, a),
        None => session_key(st.cm, uid),
    })
}

/// The key of a connection's own private history (and read markers).
pub fn session_key(cm: crate::proto::CaseMapping, uid: Uid) -> Folded {
    cm.fold(&format!("u:{uid}"))
}

/// A user left (on every shard): its connection's private history goes, where it was kept.
pub fn session_gone(st: &mut ShardState, uid: Uid) {
    // Most shards keep no log at all: no key to build for them.
    if st.history.users.is_empty() {
        return;
    }
    let key = session_key(st.cm, uid);
    if key.owner(st.cores) == st.me {
        st.history.users.remove(&key);
    }
}

/// The key of an account's private history and read markers.
pub fn account_key(cm: crate::proto::CaseMapping, account: &str) -> Folded {
    cm.fold(&format!("a:{account}"))
}

/// The kind of a stored line, from its verb.
fn kind_of(body: &[u8]) -> Kind {
    let rest = match body.strip_prefix(b":") {
        Some(r) => r.splitn(2, |&b| b == b' ').nth(1).unwrap_or_default(),
        None => body,
    };
    if rest.starts_with(b"PRIVMSG ") || rest.starts_with(b"NOTICE ") {
        Kind::Message
    } else if rest.starts_with(b"TAGMSG ") {
        Kind::Tagmsg
    } else {
        Kind::Event
    }
}

/// A TAGMSG is kept only when it is meant to last (a reaction, or `+draft/persist`): typing
/// notices come every few seconds and would push messages out of the logs.
fn worth_keeping(kind: Kind, line: &Shared) -> bool {
    if kind != Kind::Tagmsg {
        return true;
    }
    let tags = line.meta.as_ref().and_then(|m| m.client_tags.as_deref()).unwrap_or("");
    tags.split(';')
        .map(|t| t.split('=').next().unwrap_or(""))
        .any(|k| matches!(k, "+draft/react" | "+react" | "+draft/persist"))
}

/// Whether this shard keeps `chan`'s log: it is the channel's home, and the channel exists
/// (a line or event that reaches the home after the channel ended is not kept for the next
/// channel of that name).
pub fn is_home(st: &ShardState, chan: &Folded) -> bool {
    st.cfg.history.enabled && chan.owner(st.cores) == st.me && st.homes.contains_key(chan)
}

/// The home ended a channel (its last member left): its history goes with it, from memory and
/// disk, so that whoever creates a channel of that name next does not read it (as Ergo does
/// for channels nobody registered).
pub fn channel_gone(st: &mut ShardState, chan: &Folded) {
    let Some(log) = st.history.channels.remove(chan) else { return };
    st.history.channel_log_gone(chan, &log);
    if let Some(sink) = &st.history.sink {
        for e in log.entries() {
            let _ = sink.send(DbOp::Delete(LogKey::Channel(chan.clone()), e.time_ms(), e.msgid().unwrap_or("").into()));
        }
    }
}

/// A renamed channel's log leaves this home with it (memory and disk); see `channel::rename`.
pub fn channel_handed_over(st: &mut ShardState, chan: &Folded) -> Vec<Entry> {
    let Some(log) = st.history.channels.remove(chan) else { return Vec::new() };
    st.history.channel_log_gone(chan, &log);
    let entries: Vec<Entry> = log.into_entries().into();
    if let Some(sink) = &st.history.sink {
        for e in &entries {
            let _ = sink.send(DbOp::Delete(LogKey::Channel(chan.clone()), e.time_ms(), e.msgid().unwrap_or("").into()));
        }
    }
    entries
}

/// A renamed channel's log arrives at its new home, its lines naming the channel as it is now
/// named (a client replaying it asks by the new name). `closed`: what closes the channel
/// (its state is not among the home's channels yet).
pub fn channel_taken_in(st: &mut ShardState, chan: &Folded, from: &str, to: &str, closed: Closed, log: Vec<Entry>) {
    if !st.cfg.history.enabled {
        return;
    }
    for mut e in log {
        e.line = retarget(st.cm, &e.line, from, to);
        add_channel(st, chan, e);
    }
    st.history.channel_closed(chan, closed);
}

/// The home applied a change of a channel's modes: what closes it, for its log on disk (a
/// record is written only when that changes).
pub fn channel_modes(st: &mut ShardState, chan: &Folded, closed: Closed) {
    if st.cfg.history.enabled {
        st.history.channel_closed(chan, closed);
    }
}

/// `line` with its target `from` (each line's first parameter) now `to`.
fn retarget(cm: crate::proto::CaseMapping, line: &Shared, from: &str, to: &str) -> Shared {
    let fix = |body: &[u8]| -> Arc<[u8]> {
        let mut out = Vec::with_capacity(body.len() + to.len());
        for l in body.split_inclusive(|&b| b == b'\n') {
            match first_param(l) {
                Some((start, end)) if std::str::from_utf8(&l[start..end]).is_ok_and(|p| cm.eq(p, from)) => {
                    out.extend_from_slice(&l[..start]);
                    out.extend_from_slice(to.as_bytes());
                    out.extend_from_slice(&l[end..]);
                }
                _ => out.extend_from_slice(l),
            }
        }
        out.into()
    };
    let mut s = line.clone();
    s.body = fix(&line.body);
    s.join_ext = line.join_ext.as_deref().map(fix);
    if let Some(m) = &line.multi {
        let mut m = (**m).clone();
        if cm.eq(&m.target, from) {
            m.target = to.into();
        }
        s.multi = Some(Arc::new(m));
    }
    s
}

/// Where the first parameter of `:source VERB <param> ...` is (without a leading `:`), for the
/// verbs whose first parameter is a channel (a QUIT's is its reason).
fn first_param(l: &[u8]) -> Option<(usize, usize)> {
    const TARGETED: [&[u8]; 8] = [b"PRIVMSG", b"NOTICE", b"TAGMSG", b"JOIN", b"PART", b"KICK", b"MODE", b"TOPIC"];
    let mut i = 0;
    if l.first() == Some(&b':') {
        i = l.iter().position(|&b| b == b' ')? + 1;
    }
    let verb_len = l[i..].iter().position(|&b| b == b' ')?;
    if !TARGETED.contains(&&l[i..i + verb_len]) {
        return None;
    }
    i += verb_len + 1;
    if l.get(i) == Some(&b':') {
        i += 1;
    }
    let end = i + l[i..].iter().position(|&b| b == b' ' || b == b'\r' || b == b'\n').unwrap_or(l.len() - i);
    Some((i, end))
}

/// A channel message passing through this shard: remembered as the channel's latest, and
/// kept when this shard is its home. STATUSMSG (`@#chan`) is for some members only: not kept.
/// Returns the message's time when it counts as the channel's latest (the caller, which holds
/// the channel's view, remembers it for TARGETS).
pub fn channel_message(st: &mut ShardState, msg: &ChanMsg) -> Option<u64> {
    if !st.cfg.history.enabled {
        return None;
    }
    let kind = kept(msg)?;
    if is_home(st, &msg.chan) {
        add_channel(st, &msg.chan, Entry { line: msg.line.clone(), kind, peer: None });
    }
    msg.line.meta.as_ref().map(|m| m.time_ms)
}

/// The kind a channel message is kept as, if history keeps such a message (whatever this
/// server's config: other rustircd servers keep what passes through them too). What a
/// channel line is shows in what it needs, without parsing it: a REDACT needs the redaction
/// capability (it is not a message of the channel), a TAGMSG message-tags. STATUSMSG is for
/// some members only, and a typing notice would push messages out.
pub fn kept(msg: &ChanMsg) -> Option<Kind> {
    if msg.min != Status::NONE || msg.need & bits::REDACTION != 0 {
        return None;
    }
    let kind = if msg.need & bits::MESSAGE_TAGS != 0 { Kind::Tagmsg } else { Kind::Message };
    worth_keeping(kind, &msg.line).then_some(kind)
}

/// A channel change or departure applied here, as its home: kept as an event.
pub fn channel_event(st: &mut ShardState, chan: &Folded, line: &Shared) {
    if line.body.is_empty() || line.meta.is_none() || !is_home(st, chan) {
        return;
    }
    add_channel(st, chan, Entry { line: line.clone(), kind: Kind::Event, peer: None });
}

fn add_channel(st: &mut ShardState, chan: &Folded, e: Entry) {
    let (max, oldest) = (st.cfg.history.channel_length, super::oldest(st, e.time_ms()));
    if st.history.add(LogKey::Channel(chan.clone()), e, max, oldest, false) {
        log_began(st, chan);
    }
}

/// A channel's log began (or has no record yet of the channel's modes): what closes the
/// channel is written with it, once, as `history_db` restores only an open channel's log.
pub(super) fn log_began(st: &mut ShardState, chan: &Folded) {
    if let Some(ch) = st.homes.get(chan) {
        let closed = Closed::of(ch);
        st.history.channel_closed(chan, closed);
    }
}

/// A private message (or TAGMSG) from `from` to `to`: into each side's log.
pub fn private(st: &mut ShardState, out: &mut dyn Outbox, from: Uid, to: Uid, line: &Shared) {
    if !st.cfg.history.enabled || line.meta.is_none() {
        return;
    }
    let kind = kind_of(&line.body);
    if !worth_keeping(kind, line) {
        return;
    }
    let (fk, tk) = (user_key(st, from), user_key(st, to));
    let (Some(fp), Some(tp)) = (peer(st, from), peer(st, to)) else { return };
    // Kept for both sides when either is a user of this server, so that a user of another
    // server who comes here finds the conversation too; a server that only passes it on
    // keeps nothing.
    let local =
        |uid: &Uid| st.directory.get(uid).is_some_and(|u| matches!(u.location, crate::state::Location::Local(_)));
    // Nothing said to services (NickServ REGISTER carries a password) is kept.
    if (!local(&from) && !local(&to)) || of_services(st, from) || of_services(st, to) {
        return;
    }
    // Each side keeps it: under its account, or (a user of this server) under its connection;
    // a message to oneself is kept once.
    let sessions = st.cfg.history.session_length > 0;
    let mine = |k: Option<Folded>, uid: &Uid| k.filter(|k| !super::codec::is_session(k) || (sessions && local(uid)));
    let (fk, tk) = (mine(fk, &from), mine(tk, &to));
    let mut sides = Vec::with_capacity(2);
    if let Some(k) = fk.clone() {
        sides.push((k, tp));
    }
    if let Some(k) = tk.filter(|k| Some(k) != fk.as_ref()) {
        sides.push((k, fp));
    }
    for (key, peer) in sides {
        let entry = Entry { line: line.clone(), kind, peer: Some(peer) };
        let owner = key.owner(st.cores);
        if owner == st.me {
            add_private(st, key, entry);
        } else {
            out.to_shard(owner, Env::Request(Request::HistoryAdd { key, entry: Box::new(entry) }));
        }
    }
}

/// Whether a user is one of the services' (NickServ...): a user of a `[server] services` server.
fn of_services(st: &ShardState, uid: Uid) -> bool {
    let sid = crate::state::servers::Sid::of(&uid);
    st.servers.get(&sid).is_some_and(|s| crate::commands::link::is_service(st, &s.name))
}

fn peer(st: &ShardState, uid: Uid) -> Option<Arc<Peer>> {
    let u = st.directory.get(&uid)?;
    Some(Arc::new(Peer {
        nick: u.nick.clone(),
        folded: u.folded.clone(),
        account: u.account.as_deref().map(|a| st.cm.fold(a)),
        uid: Some(uid),
    }))
}

/// An entry for a user key this shard owns.
pub fn add_private(st: &mut ShardState, key: Folded, e: Entry) {
    let h = &st.cfg.history;
    let max = if super::codec::is_session(&key) { h.session_length } else { h.private_length };
    let oldest = super::oldest(st, e.time_ms());
    st.history.add(LogKey::User(key), e, max, oldest, false);
}

/// Entries loaded from the disk at start-up, for the logs this shard keeps (in key order:
/// each log's oldest first), bounded as the config says now.
pub fn load(st: &mut ShardState, entries: Vec<(LogKey, Entry)>, now_ms: u64) {
    let oldest = super::oldest(st, now_ms);
    let h = &st.cfg.history;
    let (chan_max, user_max) = (h.channel_length, h.private_length);
    for (log, e) in entries {
        let max = if matches!(log, LogKey::Channel(_)) { chan_max } else { user_max };
        st.history.add(log, e, max, oldest, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renamed_channels_lines_name_it_anew() {
        let cm = crate::proto::CaseMapping::Rfc1459;
        let line = |b: &str| Shared::plain(b.as_bytes().into());
        let body = |s: &Shared| String::from_utf8(s.body.to_vec()).unwrap();
        let l = retarget(cm, &line(":a!b@c PRIVMSG #Old :hello #old\r\n"), "#old", "#new");
        assert_eq!(body(&l), ":a!b@c PRIVMSG #new :hello #old\r\n");
        let l = retarget(cm, &line(":a!b@c JOIN :#OLD\r\n"), "#old", "#new");
        assert_eq!(body(&l), ":a!b@c JOIN :#new\r\n");
        let l = retarget(cm, &line(":a!b@c QUIT :#old\r\n"), "#old", "#new");
        assert_eq!(body(&l), ":a!b@c QUIT :#old\r\n");
        let l = retarget(cm, &line(":a!b@c PRIVMSG #old :1\r\n:a!b@c PRIVMSG #old :2\r\n"), "#old", "#x");
        assert_eq!(body(&l), ":a!b@c PRIVMSG #x :1\r\n:a!b@c PRIVMSG #x :2\r\n");
    }

    /// A connection's private log lives while it does: gone from memory when it leaves.
    #[test]
    fn a_connections_private_log_ends_with_it() {
        let cfg = std::sync::Arc::new(crate::config::Config::parse("fuzz", crate::fuzzing::CONFIG, None).unwrap());
        let mut sim = crate::sim::Sim::new(cfg, 2, true);
        let a = sim.client(0, "ann");
        let b = sim.client(1, "ben");
        sim.feed(0, a, b"PRIVMSG ben :hi\r\n");
        sim.pump();
        let logs = |sim: &crate::sim::Sim| sim.shards.iter().map(|(st, _)| st.history.users.len()).sum::<usize>();
        assert_eq!(logs(&sim), 2, "one log per side");
        sim.feed(0, a, b"QUIT\r\n");
        sim.feed(1, b, b"QUIT\r\n");
        sim.pump();
        assert_eq!(logs(&sim), 0);
    }

    #[test]
    fn kinds_come_from_the_verb() {
        assert_eq!(kind_of(b":a!b@c PRIVMSG #x :hi\r\n"), Kind::Message);
        assert_eq!(kind_of(b":a!b@c NOTICE bob :hi\r\n"), Kind::Message);
        assert_eq!(kind_of(b":a!b@c TAGMSG #x\r\n"), Kind::Tagmsg);
        assert_eq!(kind_of(b":a!b@c TOPIC #x :PRIVMSG \r\n"), Kind::Event);
        assert_eq!(kind_of(b":a!b@c JOIN #x\r\n"), Kind::Event);
    }
}
