//! Messages from other shards (and this one), dispatched by their group, whose ordering rule
//! is [`Env::order`]: requests, answers, control and counts are handled on arrival; events and
//! deliveries of a shard's users go through that shard's stream, applied strictly in the order
//! they came — if one must wait for its sequence turn, the ones behind it from the same shard
//! wait too, which keeps every user's events in the order the user made them.

use std::time::Instant;

use super::capabilities::bits;
use super::channel::{self, try_event};
use super::connection::resume;
use super::delivery::{channel_here, to_conns_shared, to_invitee, to_user};
use super::envelope::{Answer, Control, Env, Ordered, Request};
use super::link;
use super::outbox::Outbox;
use super::outgoing::Shared;
use super::query::monitor::{notify_offline, notify_online};
use super::query::whois;
use super::registration::nick_result;
use crate::local::client::Wait;
use crate::local::shard::ShardState;
use crate::proto::Line;
use crate::state::whowas::WasEntry;

pub fn receive(st: &mut ShardState, out: &mut dyn Outbox, from: usize, env: Env, now: Instant, unix: u64) {
    match env {
        Env::Request(r) => on_request(st, out, from, r, now, unix),
        Env::Answer(a) => on_answer(st, out, from, a, now, unix),
        Env::Ordered(o) => from_stream(st, out, from, o, now, unix),
        Env::Control(c) => on_control(st, out, from, c, now),
    }
}

/// A request to this shard as the owner of a nick, the home of a channel or a user's shard.
fn on_request(st: &mut ShardState, out: &mut dyn Outbox, from: usize, r: Request, now: Instant, unix: u64) {
    match r {
        Request::NickClaim { nick, uid, conn } => {
            let granted = !st.nicks.is_reserved(&nick, unix) && st.nicks.claim(nick.clone(), uid);
            out.to_shard(from, Answer::Nick { nick, uid, conn, granted }.into());
        }
        Request::NickRelease { nick, uid } => st.nicks.release(&nick, uid),
        Request::NickReserve { nicks, until } => st.nicks.reserve_all(nicks, until),
        Request::Chan { conn, uid, req } => channel::at_home(st, out, from, conn, uid, req, unix),
        Request::Quit { users } => channel::quit_at_home(st, out, from, users),
        Request::Whois { conn, asker, asker_nick, target, metadata } => {
            whois::on_request(st, out, from, conn, asker, &asker_nick, target, metadata, now)
        }
        Request::Stats { conn, with_conns } => super::stats::on_request(st, out, from, conn, with_conns),
        Request::ServerClaim { conn, sid, name } => link::handshake::on_claim(st, out, from, conn, sid, &name),
        Request::ServerRelease { sids } => {
            for s in sids {
                st.register.release(s);
            }
        }
        Request::NickTs { conn, claim } => link::s2s::on_nick_claim(st, out, from, conn, claim),
        Request::History { conn, ask } => super::history::on_request(st, out, from, conn, *ask),
        Request::Redact { conn, ask } => super::redact::on_request(st, out, from, conn, *ask),
        Request::HistoryRemove { log, msgid } => super::redact::remove(st, log, &msgid, out.unix_ms()),
        Request::HistoryAdd { key, entry } => super::history::record::add_private(st, key, *entry),
        Request::Unreserve { name } => {
            st.reserved.remove(&name);
        }
        Request::HistoryAsk { peer } => super::history::sync::ask(st, out, peer),
        Request::HistoryServe { chan, from, to } => super::history::sync::serve(st, out, &chan, from, to),
        Request::HistoryBackfill { chan, entry } => super::history::sync::add(st, out, chan, *entry),
        Request::HistoryAccount { key, uid } => super::history::accounts::serve(st, out, &key, uid),
        Request::HistoryAccountEntry { key, entry } => super::history::accounts::add(st, out, key, *entry),
    }
}

/// An answer to a request of this shard, or the result of one of its jobs.
fn on_answer(st: &mut ShardState, out: &mut dyn Outbox, _from: usize, a: Answer, now: Instant, unix: u64) {
    match a {
        Answer::Nick { nick, uid, conn, granted } => nick_result(st, out, conn, nick, uid, granted, now, unix),
        Answer::Chan { conn, uid, outcome } => channel::on_ack(st, out, conn, uid, outcome, now, unix),
        Answer::Quit { uids, home, seq } => channel::on_quit_ack(st, out, uids, home, seq, now, unix),
        Answer::Applied { conn } => super::barrier::on_applied(st, out, conn, now, unix),
        Answer::Replies { conn, bytes } => {
            if let Some(c) = st.clients.get_mut(&conn) {
                if c.wait == Some(Wait::Answer) {
                    c.wait = None;
                }
                super::delivery::reply(st, out, conn, &bytes);
                resume(st, out, conn, now, unix);
            }
        }
        Answer::Stats { conn, report } => super::stats::on_report(st, out, conn, *report, now, unix),
        Answer::Redacted { conn, ask, verdict } => super::redact::on_answer(st, out, conn, *ask, verdict, now, unix),
        Answer::History { conn, found } => super::history::on_answer(st, out, conn, *found, now, unix),
        Answer::OperChecked { conn, name, ok } => super::oper::oper::checked(st, out, conn, name, ok, now, unix),
        Answer::Looked { conn, ip, dns, host, ident } => {
            if dns {
                super::connection::remember_host(st, ip, host.as_deref(), now);
            }
            super::connection::looked(st, out, conn, dns, host, ident, now, unix);
        }
        Answer::BansSaved { result } => super::oper::bans::saved(st, out, result, now, unix),
        Answer::ServerClaim { conn, sid, result } => link::handshake::claimed(st, out, conn, sid, result, now, unix),
        Answer::NickTs { conn, claim, verdict } => link::s2s::nick_verdict(st, out, conn, claim, verdict, now, unix),
    }
}

/// Control and counts from another shard.
fn on_control(st: &mut ShardState, out: &mut dyn Outbox, from: usize, c: Control, now: Instant) {
    match c {
        Control::SplitMore => link::split::depart_more(st, out),
        Control::Sasl { uid, agent, mode, data } => {
            let unix = out.unix_ms() / 1000;
            super::sasl::on_answer(st, out, uid, &agent, &mode, &data, now, unix)
        }
        Control::SaslLogin { uid, account } => {
            let unix = out.unix_ms() / 1000;
            super::sasl::on_login(st, out, uid, account, now, unix)
        }
        Control::IpEvent { ip, up } => super::admission::count(st, ip, up, now),
        Control::Ban(ban) => super::oper::bans::apply(st, out, ban),
        Control::Unban { kind, mask } => super::oper::bans::unapply(st, kind, &mask),
        Control::Kill { target, reason } => super::oper::kill::kill_local(st, out, target, &reason),
        Control::ReadMarker { key, target, name, ms } => super::read_marker::on_marker(st, out, key, target, &name, ms),
        Control::Wallops { line } => super::oper::wallops::deliver(st, out, &line),
        Control::RunAs { target, line } => link::services::run_as(st, out, target, &line),
        Control::Snotice { text } => super::oper::snotice::deliver(st, out, &text),
        Control::Connect { name, addr, by } => super::oper::links::connect_here(st, out, &name, addr, by, now),
        Control::Squit { sid, reason, by } => super::oper::links::squit_here(st, out, sid, &reason, by),
        Control::Counts { unregistered, classes } => {
            st.unregistered[from] = unregistered;
            st.classes_elsewhere[from] = classes;
        }
    }
}

/// A message of `from`'s stream: held behind that shard's held events, else applied now (or
/// held, when its sequence turn has not come); what it unblocks follows.
fn from_stream(st: &mut ShardState, out: &mut dyn Outbox, from: usize, env: Ordered, now: Instant, unix: u64) {
    if !st.blocked[from].events.is_empty() {
        st.blocked[from].hold(env, now);
        return;
    }
    match stream_event(st, out, from, env, now, unix) {
        Ok(()) => {
            if !st.mine.is_empty() || st.blocked.iter().any(|q| !q.events.is_empty()) {
                channel::settle(st, out, now, unix);
            }
        }
        Err(env) => st.blocked[from].hold(env, now),
    }
}

/// Applies one event from `from`, or hands it back when its turn has not come.
pub fn stream_event(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    from: usize,
    env: Ordered,
    _now: Instant,
    unix: u64,
) -> Result<(), Ordered> {
    match env {
        Ordered::Chan(ev) => {
            let ack = ev.ack;
            try_event(st, out, ev, unix).map_err(Ordered::Chan)?;
            if let Some(conn) = ack {
                out.to_shard(from, Answer::Applied { conn }.into());
            }
        }
        Ordered::UserIntro { user, ack } => {
            let online = super::query::monitor::watched(st, &user.folded).then(|| (user.folded.clone(), user.mask()));
            link::relay::user_intro(st, out, &user);
            st.directory.insert(*user);
            st.max_global = st.max_global.max(st.directory.len());
            st.max_local = st.max_local.max(st.directory.locals());
            if let Some((folded, mask)) = online {
                notify_online(st, out, &folded, &mask);
            }
            if let Some(conn) = ack {
                out.to_shard(from, Answer::Applied { conn }.into());
            }
        }
        Ordered::UserNick { uid, nick, folded, ts, line, ack } => {
            if let Some(conn) = ack {
                out.to_shard(from, Answer::Applied { conn }.into());
            }
            nick_seen(st, out, uid, &line, unix);
            let old = st.directory.get(&uid).map(|u| (u.folded.clone(), u.nick.clone()));
            link::relay::nick(st, out, uid, &nick, ts);
            st.directory.rename(&uid, nick, folded.clone(), ts);
            if let Some((of, on)) = old {
                if of != folded {
                    notify_offline(st, out, &of, &on);
                    let mask = st.directory.get(&uid).map(|u| u.mask()).unwrap_or_default();
                    notify_online(st, out, &folded, &mask);
                }
            }
        }
        Ordered::UserModes { uid, modes, ack } => {
            if let Some(before) = st.directory.get(&uid).map(|u| u.modes) {
                link::relay::umodes(st, out, uid, before, modes);
            }
            st.directory.set_modes(&uid, modes);
            if let Some(conn) = ack {
                out.to_shard(from, Answer::Applied { conn }.into());
            }
        }
        Ordered::UserMetadata { uid, key, value } => {
            super::metadata::user_changed(st, out, uid, &key, value.as_deref())
        }
        Ordered::UserAway { uid, away, ack } => {
            link::relay::away(st, out, uid, away.as_deref());
            if let Some(u) = st.directory.get_mut(&uid) {
                u.away = away;
            }
            away_seen(st, out, uid);
            if let Some(conn) = ack {
                out.to_shard(from, Answer::Applied { conn }.into());
            }
        }
        Ordered::UserRealname { uid, realname, ack } => {
            if let Some(u) = st.directory.get_mut(&uid) {
                u.realname = realname;
            }
            realname_seen(st, out, uid);
            if let Some(conn) = ack {
                out.to_shard(from, Answer::Applied { conn }.into());
            }
        }
        Ordered::ToUser { uid, line, need, at } => to_user(st, out, uid, &line, need, at),
        Ordered::ChanMsg(msg) => channel_here(st, out, &msg),
        Ordered::Invite { target, chan, line } => to_invitee(st, out, target, &chan, &line),
        Ordered::UserAccount { uid, account } => link::services::account_seen(st, out, uid, account),
        Ordered::UserHost { uid, host } => link::services::host_seen(st, uid, host),
        Ordered::ServerIntro(server) => link::s2s::server_seen(st, out, *server),
        Ordered::ServerSplit { sids } => link::s2s::split_seen(st, out, &sids),
        Ordered::Mechlist { sid, mechs } => super::sasl::set_mechs(st, out, sid, mechs),
        Ordered::ToLinks { except, line } => link::to_my_links(st, out, except, &line),
        Ordered::ToLink { toward, line } => link::to_link(st, out, toward, line),
    }
    Ok(())
}

/// A user changed nick: everyone here who shares a channel with it sees the line once, and
/// WHOWAS remembers the old nick. (The user's own shard also shows it to the user.)
pub fn nick_seen(st: &mut ShardState, out: &mut dyn Outbox, uid: crate::state::Uid, line: &Shared, unix: u64) {
    let Some(u) = st.directory.get(&uid) else { return };
    st.whowas.record(WasEntry::of(u, &st.cfg.server.name, unix));
    let targets = observers(st, uid, 0);
    to_conns_shared(st, out, &targets, line, 0);
}

/// Local users who share a channel with `uid` (each once), with all of `need`.
pub fn observers(st: &mut ShardState, uid: crate::state::Uid, need: u64) -> Vec<super::Conn> {
    let Some(u) = st.directory.get(&uid) else { return Vec::new() };
    st.stamp += 1;
    let stamp = st.stamp;
    let mut targets = Vec::new();
    for chan in &u.channels {
        let Some(view) = st.channels.get(chan) else { continue };
        for &(member, conn) in &view.local {
            if member == uid {
                continue;
            }
            if let Some(c) = st.clients.get_mut(&conn) {
                if c.stamp != stamp && c.caps & need == need {
                    c.stamp = stamp;
                    targets.push(conn);
                }
            }
        }
    }
    targets
}

/// away-notify: a user's AWAY change, to those who share a channel with it and asked; and to
/// MONITOR watchers with extended-monitor.
pub fn away_seen(st: &mut ShardState, out: &mut dyn Outbox, uid: crate::state::Uid) {
    let Some(u) = st.directory.get(&uid) else { return };
    let mut l = Line::new().source(&u.mask()).verb("AWAY");
    if let Some(a) = &u.away {
        l = l.trailing(a);
    }
    let folded = u.folded.clone();
    let line = Shared::plain(l.finish().into());
    let mut targets = observers(st, uid, bits::AWAY_NOTIFY);
    targets.extend(monitor_watchers(st, &folded, bits::AWAY_NOTIFY, &targets));
    to_conns_shared(st, out, &targets, &line, 0);
}

/// setname: a user's new realname, to those who share a channel with it and asked.
pub fn realname_seen(st: &mut ShardState, out: &mut dyn Outbox, uid: crate::state::Uid) {
    let Some(u) = st.directory.get(&uid) else { return };
    let folded = u.folded.clone();
    let line = Shared::plain(Line::new().source(&u.mask()).verb("SETNAME").trailing(&u.realname).finish().into());
    let mut targets = observers(st, uid, bits::SETNAME);
    targets.extend(monitor_watchers(st, &folded, bits::SETNAME, &targets));
    to_conns_shared(st, out, &targets, &line, 0);
}

/// extended-monitor: local watchers of `nick` with extended-monitor and `need`, not in `already`.
fn monitor_watchers(
    st: &ShardState,
    nick: &crate::proto::Folded,
    need: u64,
    already: &[super::Conn],
) -> Vec<super::Conn> {
    let need = need | bits::EXTENDED_MONITOR;
    st.monitors
        .get(nick)
        .map(|v| {
            v.iter()
                .copied()
                .filter(|c| !already.contains(c) && st.clients.get(c).is_some_and(|c| c.caps & need == need))
                .collect()
        })
        .unwrap_or_default()
}
