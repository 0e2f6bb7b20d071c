//! Channel history between rustircd servers that link, or link again after a split. While
//! linked, every rustircd server keeps every channel's messages (`link::history_shards`); what
//! was said while they were apart, or before one of them linked, reaches it here. When a
//! rustircd peer ends its burst, each channel's home here asks the peer for what it kept of the
//! channel since it split from us (a minute before, for what was in flight; from the start when
//! it never was linked since we started) — not since our own latest entry: both sides may
//! have talked meanwhile, so the peer's news can be older than ours:
//!
//! `:<our SID> ENCAP <peer name> HISTREQ <#chan> <from ms>`
//!
//! and the peer's home of that channel answers with the messages it redacted since then (so
//! that ours go too) and its messages from then (at most `max_query`, the newest), one line
//! each, the entry's line with its tags:
//!
//! `:<SID> ENCAP <asker name> HISTDEL <#chan> <msgid>`
//! `:<SID> ENCAP <asker name> HISTENT <#chan> :@msgid=…;time=…[;account=…][;+tags] :<line>`
//!
//! which the home here adds unless it has that msgid already or redacted it. Only a direct
//! rustircd peer, speaking for itself, is heard; an entry must be a PRIVMSG, NOTICE or TAGMSG
//! to the channel named, and not from the future. One server's answers to one catch-up are
//! bounded (a quarter of the link's sendq), so that many channels cannot overflow it.
//!
//! Not exchanged: private history, multiline messages, events (JOIN, PART…). Catch-up is
//! between the two servers that link: a third server behind one of them learns what the
//! other said while apart only when it links to it itself (messages said while linked reach
//! every rustircd server as they are said).

use std::sync::Arc;

use super::store::{Entry, Kind};
use crate::commands::envelope::{Env, Request};
use crate::commands::link::{our_sid, to_link};
use crate::commands::outbox::Outbox;
use crate::commands::outgoing::{Meta, Shared};
use crate::local::shard::ShardState;
use crate::proto::{Folded, Line, Message};
use crate::state::servers::Sid;

/// A rustircd peer ended its burst (on the link's shard): every shard asks it for what its
/// channels missed.
pub fn peer_synced(st: &mut ShardState, out: &mut dyn Outbox, peer: Sid) {
    if !st.cfg.history.enabled || !st.servers.get(&peer).is_some_and(|s| s.tags) {
        return;
    }
    for shard in (0..st.cores).filter(|s| *s != st.me) {
        out.to_shard(shard, Env::Request(Request::HistoryAsk { peer }));
    }
    ask(st, out, peer);
}

/// What arrives in flight around a split: asked for again (duplicates are dropped by msgid).
const IN_FLIGHT_MS: u64 = 60_000;

/// How far a peer's clock may run ahead of ours: a live message's time beyond it is taken as
/// this far ahead (`delivery::meta_from`), and a history entry beyond it is not kept.
pub const CLOCK_AHEAD_MS: u64 = 10_000;

/// What one catch-up may send a peer in all, shared by the shards, whatever the channels'
/// count: a quarter of the link's sendq (it goes out at once, before the peer has read it).
fn budget(st: &ShardState, peer_name: &str) -> usize {
    crate::commands::link::sendq_of(st, peer_name) / 4 / st.cores.max(1)
}

/// A catch-up (one peer's HISTREQs after one burst) counts against the budget for this long.
const ROUND_MS: u64 = 60_000;

/// Servers left the network (on every shard): remember when, for their return.
pub fn apart(st: &mut ShardState, out: &dyn Outbox, sids: &[Sid]) {
    let now = out.unix_ms();
    for sid in sids {
        st.history.apart.insert(*sid, now);
    }
}

/// This shard's part: one HISTREQ per channel it is home to.
pub fn ask(st: &mut ShardState, out: &mut dyn Outbox, peer: Sid) {
    let sid = our_sid(st).to_string();
    let Some(to) = st.servers.get(&peer).map(|s| s.name.clone()) else { return };
    let from = st.history.apart.get(&peer).map_or(0, |t| t.saturating_sub(IN_FLIGHT_MS));
    let lines: Vec<Vec<u8>> = st
        .homes
        .values()
        .map(|ch| {
            let l = Line::new().source(&sid).verb("ENCAP").param(&to).param("HISTREQ").param(&ch.name);
            l.param(&from.to_string()).finish()
        })
        .collect();
    for line in lines {
        to_link(st, out, peer, line.into());
    }
}

/// `HISTREQ <#chan> <from ms>` from `asker`: to the channel's home.
pub fn request_from_link(st: &mut ShardState, out: &mut dyn Outbox, asker: Sid, args: &[&str]) {
    let (Some(name), Some(from)) = (args.first(), args.get(1).and_then(|t| t.parse::<u64>().ok())) else { return };
    let chan = st.cm.fold(name);
    let home = chan.owner(st.cores);
    if home == st.me {
        serve(st, out, &chan, from, asker);
    } else {
        out.to_shard(home, Env::Request(Request::HistoryServe { chan, from, to: asker }));
    }
}

/// At the channel's home: what it redacted from `from` on, then its messages from `from` on
/// (the newest `max_query`), to `to` — within what is left of this round's budget.
pub fn serve(st: &mut ShardState, out: &mut dyn Outbox, chan: &Folded, from: u64, to: Sid) {
    if !st.cfg.history.enabled {
        return;
    }
    let (Some(log), Some(view)) = (st.history.channels.get(chan), st.channels.get(chan)) else { return };
    let sid = our_sid(st).to_string();
    let Some(to_name) = st.servers.get(&to).map(|s| s.name.clone()) else { return };
    let name = view.ch.name.clone();
    let mut lines: Vec<Vec<u8>> = log
        .redacted_since(from)
        .map(|m| Line::new().source(&sid).verb("ENCAP").param(&to_name).param("HISTDEL").param(&name).param(m).finish())
        .collect();
    let fresh: Vec<&Entry> = log
        .entries()
        .filter(|e| e.time_ms() >= from && e.line.multi.is_none() && matches!(e.kind, Kind::Message | Kind::Tagmsg))
        .collect();
    let skip = fresh.len().saturating_sub(st.cfg.history.max_query);
    lines.extend(fresh[skip..].iter().filter_map(|e| entry_line(&sid, &to_name, &name, e)));
    let budget = budget(st, &to_name);
    let now = out.unix_ms();
    let spent = st.history.served.entry(to).or_insert((now, 0));
    if now.saturating_sub(spent.0) > ROUND_MS {
        *spent = (now, 0);
    }
    let left = budget.saturating_sub(spent.1);
    let mut size = 0;
    let fit = lines.iter().take_while(|l| {
        size += l.len();
        size <= left
    });
    let fit = fit.count();
    if fit < lines.len() {
        // Said once a round (the channel that crossed the budget), not for every one after.
        if left > 0 {
            log::info!(
                "History: catch-up for {to_name} cut short at {name} ({fit} of {} lines): budget of {budget} bytes spent; later channels are skipped",
                lines.len()
            );
        }
        size = lines[..fit].iter().map(Vec::len).sum();
    }
    spent.1 += size;
    for line in lines.into_iter().take(fit) {
        to_link(st, out, to, line.into());
    }
}

/// `HISTDEL <#chan> <msgid>` from a peer: the message was redacted there; its channel's home
/// here takes it out of the log (if there) and remembers it.
pub fn redacted_from_link(st: &mut ShardState, out: &mut dyn Outbox, args: &[&str]) {
    let (Some(name), Some(msgid)) = (args.first(), args.get(1)) else { return };
    if !crate::proto::names::is_channel_name(name) || msgid.is_empty() {
        return;
    }
    let log = super::codec::LogKey::Channel(st.cm.fold(name));
    crate::commands::redact::drop_entry(st, out, log, msgid);
}

/// The HISTENT line of an entry.
fn entry_line(sid: &str, to: &str, chan: &str, e: &Entry) -> Option<Vec<u8>> {
    encap_line(sid, to, &format!("HISTENT {chan}"), e)
}

/// `:<sid> ENCAP <to> <head> :<tags> <line>`: an entry's line (one, without its CRLF) behind its
/// tags. Not cut at 512 bytes as a client's line is: the entry is a whole line itself, and a
/// rustircd server reads lines of tags and body ([`crate::proto::framer::MAX_LINE`]); longer,
/// it is not sent.
pub(super) fn encap_line(sid: &str, to: &str, head: &str, e: &Entry) -> Option<Vec<u8>> {
    let meta = e.line.meta.as_ref()?;
    let body = std::str::from_utf8(&e.line.body).ok()?.trim_end_matches(['\r', '\n']);
    if body.contains(['\r', '\n', '\0']) {
        return None;
    }
    let mut tags = format!("@msgid={};time={}", meta.msgid, crate::clock::format_iso_ms(meta.time_ms));
    if let Some(a) = &meta.account {
        tags.push_str(";account=");
        tags.push_str(a);
    }
    if let Some(ct) = &meta.client_tags {
        tags.push(';');
        tags.push_str(ct);
    }
    let line = format!(":{sid} ENCAP {to} {head} :{tags} {body}\r\n");
    (line.len() <= crate::proto::framer::MAX_LINE).then(|| line.into_bytes())
}

/// `HISTENT <#chan> :<tagged line>` from a peer: to the channel's home, which adds it.
pub fn entry_from_link(st: &mut ShardState, out: &mut dyn Outbox, args: &[&str]) {
    let (Some(name), Some(inner)) = (args.first(), args.get(1)) else { return };
    let chan = st.cm.fold(name);
    let Some(entry) = parse_entry(inner, |target| st.cm.fold(target) == chan) else {
        log::debug!("Link: HISTENT for {name} not understood: dropped");
        return;
    };
    let home = chan.owner(st.cores);
    if home == st.me {
        add(st, out, chan, entry);
    } else {
        out.to_shard(home, Env::Request(Request::HistoryBackfill { chan, entry: Box::new(entry) }));
    }
}

/// At the channel's home: kept unless the log has this message already or redacted it, or it
/// is from the future (or the channel is gone: its history went with it).
pub fn add(st: &mut ShardState, out: &dyn Outbox, chan: Folded, entry: Entry) {
    if !st.cfg.history.enabled || !st.homes.contains_key(&chan) {
        return;
    }
    let now = out.unix_ms();
    if !is_news(st.history.channels.get(&chan), &entry, now) {
        return;
    }
    let (max, oldest) = (st.cfg.history.channel_length, super::oldest(st, now));
    if st.history.add(super::codec::LogKey::Channel(chan.clone()), entry, max, oldest, false) {
        super::record::log_began(st, &chan);
    }
}

/// Whether another server's entry is news to `log`: not dated past our clock's allowance
/// ([`CLOCK_AHEAD_MS`]), not there already, not redacted here.
pub(super) fn is_news(log: Option<&super::store::Log>, entry: &Entry, now: u64) -> bool {
    let msgid = entry.msgid().unwrap_or_default();
    entry.time_ms() <= now + CLOCK_AHEAD_MS
        && !log.is_some_and(|l| l.was_redacted(msgid) || l.find(msgid, None).is_some())
}

/// An entry from its tagged line: msgid and time required, as on a live message; a PRIVMSG,
/// NOTICE or TAGMSG whose target `ours` accepts.
pub(super) fn parse_entry(inner: &str, ours: impl Fn(&str) -> bool) -> Option<Entry> {
    let msg = Message::parse(inner).ok()?;
    let msgid = msg.tag("msgid").filter(|m| !m.is_empty() && m.len() <= 64 && !m.contains([' ', ';']))?;
    let time_ms = msg.tag("time").and_then(|t| crate::clock::parse_iso_ms(&t))?;
    let kind = match msg.verb.to_ascii_uppercase().as_str() {
        "PRIVMSG" | "NOTICE" => Kind::Message,
        "TAGMSG" => Kind::Tagmsg,
        _ => return None,
    };
    if !msg.param(0).is_some_and(&ours) || msg.source.is_none() {
        return None;
    }
    let account = msg.tag("account").map(|a| Arc::<str>::from(a.as_ref()));
    let client: Vec<String> = msg
        .tags()
        .filter(|(k, _)| k.starts_with('+'))
        .map(|(k, v)| if v.is_empty() { k.to_string() } else { format!("{k}={}", escape(&v)) })
        .collect();
    let body = inner.strip_prefix('@').and_then(|r| r.split_once(' ')).map_or(inner, |(_, b)| b);
    let meta = Meta {
        time_ms,
        msgid: msgid.as_ref().into(),
        client_tags: (!client.is_empty()).then(|| client.join(";").into()),
        account,
        bot: false,
        sender: None,
    };
    let line = Shared::with_meta(format!("{body}\r\n").into_bytes().into(), Arc::new(meta));
    Some(Entry { line, kind, peer: None })
}

fn escape(v: &str) -> String {
    let mut out = Vec::new();
    crate::proto::tags::escape_into(&mut out, v);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_crosses_as_it_was() {
        let meta = Meta {
            time_ms: 951_782_400_123,
            msgid: "1AAabc".into(),
            client_tags: Some("+draft/react=\\s:)".into()),
            account: Some("alice".into()),
            bot: false,
            sender: None,
        };
        let line = Shared::with_meta((&b":a!b@c TAGMSG #chan\r\n"[..]).into(), Arc::new(meta));
        let e = Entry { line, kind: Kind::Tagmsg, peer: None };
        let wire = entry_line("1AA", "irc.b.test", "#Chan", &e).unwrap();
        let wire = String::from_utf8(wire).unwrap();
        assert!(wire.starts_with(":1AA ENCAP irc.b.test HISTENT #Chan :@msgid=1AAabc;time=2000-02-29T00:00:00.123Z;account=alice;+draft/react=\\s:) :a!b@c TAGMSG #chan"), "{wire}");
        let m = Message::parse(wire.trim_end()).unwrap();
        let back = parse_entry(m.params[3], |t| t == "#chan").unwrap();
        assert_eq!(&*back.line.body, &b":a!b@c TAGMSG #chan\r\n"[..]);
        assert_eq!(back.line.meta.as_ref().unwrap().client_tags.as_deref(), Some("+draft/react=\\s:)"));
        assert_eq!(back.line.meta.as_ref().unwrap().account.as_deref(), Some("alice"));
        assert_eq!(back.time_ms(), 951_782_400_123);
        assert!(matches!(back.kind, Kind::Tagmsg));
        // No msgid, no entry; not a message, or not to this channel, no entry.
        assert!(parse_entry(":a!b@c PRIVMSG #chan :hi", |_| true).is_none());
        let tags = "@msgid=x;time=2000-02-29T00:00:00.123Z";
        assert!(parse_entry(&format!("{tags} :a!b@c PRIVMSG #chan :hi"), |t| t == "#chan").is_some());
        assert!(parse_entry(&format!("{tags} :a!b@c PRIVMSG #other :hi"), |t| t == "#chan").is_none());
        assert!(parse_entry(&format!("{tags} :a!b@c KICK #chan bob :hi"), |t| t == "#chan").is_none());
        assert!(parse_entry(&format!("{tags} PRIVMSG #chan :hi"), |t| t == "#chan").is_none());
    }

    #[test]
    fn a_long_entry_crosses_whole() {
        let meta = Meta {
            time_ms: 1,
            msgid: "m".into(),
            client_tags: Some(format!("+x={}", "y".repeat(3000)).into()),
            account: None,
            bot: false,
            sender: None,
        };
        let body = format!(":{}!u@h PRIVMSG #c :{}\r\n", "n".repeat(30), "z".repeat(400));
        let e = Entry {
            line: Shared::with_meta(body.clone().into_bytes().into(), Arc::new(meta)),
            kind: Kind::Message,
            peer: None,
        };
        let wire = String::from_utf8(entry_line("1AA", "irc.b.test", "#c", &e).unwrap()).unwrap();
        let m = Message::parse(wire.trim_end()).unwrap();
        let back = parse_entry(m.params[3], |t| t == "#c").unwrap();
        assert_eq!(&*back.line.body, body.as_bytes());
    }
}
