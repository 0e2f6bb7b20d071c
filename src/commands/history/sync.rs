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
//! and the peer's home of that channel answers with its entries from then (at most
//! `max_query`, the newest), one line each, the entry's line with its tags:
//!
//! `:<SID> ENCAP <asker name> HISTENT <#chan> :@msgid=…;time=…[;account=…][;+tags] :<line>`
//!
//! which the home here adds unless it has that msgid already. Private history and multiline
//! messages are not exchanged.

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

/// At the channel's home: its entries from `from` on (the newest `max_query`), to `to`.
pub fn serve(st: &mut ShardState, out: &mut dyn Outbox, chan: &Folded, from: u64, to: Sid) {
    if !st.cfg.history.enabled {
        return;
    }
    let (Some(log), Some(view)) = (st.history.channels.get(chan), st.channels.get(chan)) else { return };
    let sid = our_sid(st).to_string();
    let Some(to_name) = st.servers.get(&to).map(|s| s.name.clone()) else { return };
    let name = view.ch.name.clone();
    let fresh: Vec<&Entry> = log.entries().filter(|e| e.time_ms() >= from && e.line.multi.is_none()).collect();
    let skip = fresh.len().saturating_sub(st.cfg.history.max_query);
    let lines: Vec<Vec<u8>> = fresh[skip..].iter().filter_map(|e| entry_line(&sid, &to_name, &name, e)).collect();
    for line in lines {
        to_link(st, out, to, line.into());
    }
}

/// The HISTENT line of an entry: its line (one, without its CRLF) behind its tags.
fn entry_line(sid: &str, to: &str, chan: &str, e: &Entry) -> Option<Vec<u8>> {
    let meta = e.line.meta.as_ref()?;
    let body = std::str::from_utf8(&e.line.body).ok()?.trim_end_matches(['\r', '\n']);
    if body.contains(['\r', '\n']) {
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
    let inner = format!("{tags} {body}");
    Some(Line::new().source(sid).verb("ENCAP").param(to).param("HISTENT").param(chan).trailing(&inner).finish())
}

/// `HISTENT <#chan> :<tagged line>` from a peer: to the channel's home, which adds it.
pub fn entry_from_link(st: &mut ShardState, out: &mut dyn Outbox, args: &[&str]) {
    let (Some(name), Some(inner)) = (args.first(), args.get(1)) else { return };
    let Some(entry) = parse_entry(inner) else {
        log::debug!("Link: HISTENT for {name} not understood: dropped");
        return;
    };
    let chan = st.cm.fold(name);
    let home = chan.owner(st.cores);
    if home == st.me {
        add(st, chan, entry);
    } else {
        out.to_shard(home, Env::Request(Request::HistoryBackfill { chan, entry: Box::new(entry) }));
    }
}

/// At the channel's home: kept unless the log has this message already (or the channel is
/// gone: its history went with it).
pub fn add(st: &mut ShardState, chan: Folded, entry: Entry) {
    if !st.cfg.history.enabled || !st.homes.contains_key(&chan) {
        return;
    }
    let msgid = entry.msgid().unwrap_or_default();
    if st.history.channels.get(&chan).is_some_and(|l| l.find(msgid, None).is_some()) {
        return;
    }
    let (max, oldest) = (st.cfg.history.channel_length, super::oldest(st, entry.time_ms()));
    st.history.add(super::codec::LogKey::Channel(chan), entry, max, oldest, false);
}

/// An entry from its tagged line: msgid and time required, as on a live message.
fn parse_entry(inner: &str) -> Option<Entry> {
    let msg = Message::parse(inner).ok()?;
    let msgid = msg.tag("msgid").filter(|m| !m.is_empty() && m.len() <= 64 && !m.contains([' ', ';']))?;
    let time_ms = msg.tag("time").and_then(|t| crate::clock::parse_iso_ms(&t))?;
    let account = msg.tag("account").map(|a| Arc::<str>::from(a.as_ref()));
    let client: Vec<String> = msg
        .tags()
        .filter(|(k, _)| k.starts_with('+'))
        .map(|(k, v)| if v.is_empty() { k.to_string() } else { format!("{k}={}", escape(&v)) })
        .collect();
    let body = inner.strip_prefix('@').and_then(|r| r.split_once(' ')).map_or(inner, |(_, b)| b);
    let kind = match msg.verb.to_ascii_uppercase().as_str() {
        "PRIVMSG" | "NOTICE" => Kind::Message,
        "TAGMSG" => Kind::Tagmsg,
        _ => Kind::Event,
    };
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
        let back = parse_entry(m.params[3]).unwrap();
        assert_eq!(&*back.line.body, &b":a!b@c TAGMSG #chan\r\n"[..]);
        assert_eq!(back.line.meta.as_ref().unwrap().client_tags.as_deref(), Some("+draft/react=\\s:)"));
        assert_eq!(back.line.meta.as_ref().unwrap().account.as_deref(), Some("alice"));
        assert_eq!(back.time_ms(), 951_782_400_123);
        assert!(matches!(back.kind, Kind::Tagmsg));
        // No msgid, no entry.
        assert!(parse_entry(":a!b@c PRIVMSG #chan :hi").is_none());
    }
}
