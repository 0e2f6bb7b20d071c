//! Channel lines from a linked peer (docs/ts6 §3.3–3.6, §4): SJOIN, JOIN, PART, KICK, TMODE,
//! TOPIC, TBURST, BMASK. Each becomes a request to the channel's home, decided there by the TS
//! rules (`channel::remote`); the link's next line waits until this shard applied the change,
//! so the link's order is kept for every member of the network.

use std::sync::Arc;

use super::s2s::{source, Source};
use crate::commands::channel::remote::{entry, Joiner, RemoteChan, SimpleModes, TopicBurst};
use crate::commands::channel::{submit, ChanRequest};
use crate::commands::{CmdResult, Ctx};
use crate::proto::{ts6, Message};
use crate::state::channel::{Flags, ListKind, ModeChange, Status};
use crate::state::servers::Sid;
use crate::state::{Location, Uid};

/// Who the members see making a change: a user's mask or a server's name.
fn shown(ctx: &Ctx<'_>, src: Source) -> (Arc<str>, Option<Uid>) {
    match src {
        Source::User(u) => (ctx.st.directory.get(&u).map_or_else(|| u.to_string(), |x| x.mask()).into(), Some(u)),
        Source::Server(s) => {
            (ctx.st.servers.get(&s).map_or_else(|| s.to_string(), |x| x.name.to_string()).into(), None)
        }
    }
}

fn send(ctx: &mut Ctx<'_>, r: RemoteChan) {
    submit(ctx, vec![ChanRequest::Remote(Box::new(r))]);
}

/// Members of an SJOIN or a JOIN that are users behind this link (others are skipped, §3.3).
fn joiner(ctx: &Ctx<'_>, uid: &str, status: Status) -> Option<Joiner> {
    let uid = Uid::parse(uid)?;
    let peer = ctx.st.links.get(&ctx.conn)?.sid()?;
    let u = ctx.st.directory.get(&uid)?;
    (super::direction(ctx.st, Sid::of(&uid)) == Some(peer)).then(|| Joiner {
        uid,
        status,
        mask: u.mask().into(),
        at: Location::Link(ctx.st.me as u16),
    })
}

/// `:<SID> SJOIN <ts> <chan> +<modes> [args] :<members>`.
pub fn sjoin(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(src) = source(ctx, msg) else { return Ok(()) };
    let Ok(s) = ts6::parse_sjoin(msg) else {
        log::warn!("Link: bad SJOIN dropped: {}", msg.params.join(" "));
        return Ok(());
    };
    let members: Vec<Joiner> = s
        .members
        .iter()
        .filter_map(|m| {
            let mut st = Status::NONE;
            st.set(Status::OP, m.op());
            st.set(Status::VOICE, m.voice());
            joiner(ctx, m.uid, st)
        })
        .collect();
    let (source, _) = shown(ctx, src);
    let modes = SimpleModes::parse(s.modes, &s.mode_args);
    send(ctx, RemoteChan::Sjoin { name: s.channel.into(), ts: s.ts, modes: Some(modes), members, source });
    Ok(())
}

/// `:<UID> JOIN <ts> <chan> +` (a JOIN carries no modes, §4).
pub fn join(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(Source::User(uid)) = source(ctx, msg) else { return Ok(()) };
    let (Some(ts), Some(chan)) = (msg.param(0).and_then(|t| t.parse().ok()), msg.param(1)) else {
        // `JOIN 0` (leave all) has no TS: not hybrid's dialect.
        return Ok(());
    };
    if !crate::proto::names::valid_channel(chan, 200) {
        log::warn!("Link: JOIN to a bad channel name dropped: {chan}");
        return Ok(());
    }
    let Some(j) = joiner(ctx, uid.as_str(), Status::NONE) else { return Ok(()) };
    let source = ctx.st.servers.get(&Sid::of(&uid)).map_or_else(|| Arc::from("*"), |s| s.name.clone());
    send(ctx, RemoteChan::Sjoin { name: chan.into(), ts, modes: None, members: vec![j], source });
    Ok(())
}

/// `:<UID> PART <chan>[,<chan>...] [:<reason>]`.
pub fn part(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(Source::User(uid)) = source(ctx, msg) else { return Ok(()) };
    let Some(mask) = ctx.st.directory.get(&uid).map(|u| Arc::<str>::from(u.mask())) else { return Ok(()) };
    let reason = msg.param(1).map(str::to_string);
    let reqs = msg.params[0]
        .split(',')
        .filter(|c| !c.is_empty())
        .map(|c| {
            ChanRequest::Remote(Box::new(RemoteChan::Part {
                name: c.into(),
                uid,
                mask: mask.clone(),
                reason: reason.clone(),
            }))
        })
        .collect();
    submit(ctx, reqs);
    Ok(())
}

/// `:<UID or SID> KICK <chan> <UID> :<reason>`.
pub fn kick(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(src) = source(ctx, msg) else { return Ok(()) };
    let Some(target) = Uid::parse(msg.params[1]) else { return Ok(()) };
    let Some(target_nick) = ctx.st.directory.get(&target).map(|u| u.nick.clone()) else { return Ok(()) };
    let (source, by) = shown(ctx, src);
    let reason = msg.param(2).unwrap_or(&target_nick).to_string();
    send(ctx, RemoteChan::Kick { name: msg.params[0].into(), source, by, target, target_nick, reason });
    Ok(())
}

/// `:<UID> TOPIC <chan> :<text>`.
pub fn topic(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(src) = source(ctx, msg) else { return Ok(()) };
    let (source, by) = shown(ctx, src);
    let text = msg.param(1).unwrap_or("").to_string();
    let setter = source.clone();
    let (name, at) = (msg.params[0].into(), ctx.unix);
    send(ctx, RemoteChan::Topic { name, source, by, text, setter, at, burst: None });
    Ok(())
}

/// `:<S or U> ENCAP * METADATA <chan> <chan TS> <key> [:<value>]` from a rustircd server: a
/// channel's metadata, changed through its home as a TOPIC is (the line was passed on already).
pub fn metadata(ctx: &mut Ctx<'_>, src: Source, args: &[&str]) {
    let (Some(name), Some(ts), Some(key)) = (args.first(), args.get(1).and_then(|t| t.parse().ok()), args.get(2))
    else {
        return;
    };
    if !crate::commands::metadata::valid_key(key) {
        return;
    }
    // A value too long for us is not kept, and does not delete the one we have either.
    if args.get(3).is_some_and(|v| v.len() > crate::commands::metadata::MAX_VALUE_BYTES) {
        log::debug!("Link: METADATA {key} of {name}: value too long, dropped");
        return;
    }
    let value = args.get(3).filter(|v| !v.is_empty());
    let by = match src {
        Source::User(u) => Some(u),
        Source::Server(_) => None,
    };
    let changes = vec![((*key).into(), value.map(|v| (*v).into()))];
    send(ctx, RemoteChan::Metadata { name: (*name).into(), ts, by, changes });
}

/// `:<SID> TBURST <chan ts> <chan> <topic ts> <setter> :<topic>` (§3.5).
pub fn tburst(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(src) = source(ctx, msg) else { return Ok(()) };
    let Ok(t) = ts6::parse_tburst(msg) else { return Ok(()) };
    let (source, by) = shown(ctx, src);
    let from_service = super::is_service(ctx.st, &source);
    let burst = Some(TopicBurst { chan_ts: Some(t.ts), from_service });
    let r = RemoteChan::Topic {
        name: t.channel.into(),
        source,
        by,
        text: t.topic.to_string(),
        setter: t.setter.into(),
        at: t.topic_ts,
        burst,
    };
    send(ctx, r);
    Ok(())
}

/// Charybdis' `:<SID> TB <chan> <topic ts> [<setter>] :<topic>` (capab TB): a topic burst
/// without the channel's TS — it wins over no topic or a newer one (or from services).
pub fn tb(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(src) = source(ctx, msg) else { return Ok(()) };
    let (chan, at) = (msg.params[0], msg.params[1].parse::<u64>().ok());
    let Some(at) = at else { return Ok(()) };
    let (setter, text) = match msg.params.len() {
        3 => (None, msg.params[2]),
        _ => (Some(msg.params[2]), msg.params[3]),
    };
    topic_burst(ctx, src, chan, None, at, setter, text);
    Ok(())
}

/// `:<source> ETB <chan ts> <chan> <topic ts> <setter> :<topic>` (capab EOPMOD): TBURST's rules
/// from a server or a user (a services client's topic change with its TS).
pub fn etb(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(src) = source(ctx, msg) else { return Ok(()) };
    let (Some(chan_ts), Some(at)) = (msg.params[0].parse::<u64>().ok(), msg.params[2].parse::<u64>().ok()) else {
        return Ok(());
    };
    topic_burst(ctx, src, msg.params[1], Some(chan_ts), at, Some(msg.params[3]), msg.params[4]);
    Ok(())
}

fn topic_burst(
    ctx: &mut Ctx<'_>,
    src: Source,
    chan: &str,
    chan_ts: Option<u64>,
    at: u64,
    setter: Option<&str>,
    text: &str,
) {
    let (source, by) = shown(ctx, src);
    let from_service = match src {
        Source::Server(s) => ctx.st.servers.get(&s).is_some_and(|x| super::is_service(ctx.st, &x.name)),
        Source::User(u) => ctx.st.servers.get(&Sid::of(&u)).is_some_and(|x| super::is_service(ctx.st, &x.name)),
    };
    let setter: Arc<str> = setter.map_or_else(|| source.clone(), Arc::from);
    let burst = Some(TopicBurst { chan_ts, from_service });
    let r = RemoteChan::Topic { name: chan.into(), source, by, text: text.to_string(), setter, at, burst };
    send(ctx, r);
}

/// `:<SID> MLOCK <chan ts> <chan> [<lock ts>] :<letters>` (§3.6; hybrid sends a lock TS,
/// charybdis does not): services lock mode letters that users may then not change (742).
pub fn mlock(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    if source(ctx, msg).is_none() {
        return Ok(());
    }
    let Some(ts) = msg.params[0].parse::<u64>().ok() else { return Ok(()) };
    let letters: String = msg.params.last().unwrap_or(&"").chars().filter(char::is_ascii_alphabetic).collect();
    send(ctx, RemoteChan::Mlock { name: msg.params[1].into(), ts, letters });
    Ok(())
}

/// `:<SID> BMASK <ts> <chan> <b|e|I> :<masks>` (§3.4).
pub fn bmask(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(src) = source(ctx, msg) else { return Ok(()) };
    let Ok(b) = ts6::parse_bmask(msg) else { return Ok(()) };
    let (source, by) = shown(ctx, src);
    let kind = ListKind::from_letter(b.list).expect("parse_bmask checked the list");
    let changes = b.masks.iter().map(|m| ModeChange::List(kind, true, entry(m, &source, ctx.unix))).collect();
    send(ctx, RemoteChan::Modes { name: b.channel.into(), source, by, ts: b.ts, changes, nicks: Vec::new() });
    Ok(())
}

/// `:<UID or SID> TMODE <ts> <chan> <modes> [args...]` (§4): members named by UID.
pub fn tmode(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(src) = source(ctx, msg) else { return Ok(()) };
    let Ok(t) = ts6::parse_tmode(msg) else { return Ok(()) };
    channel_modes(ctx, src, t.ts, t.channel, t.modes, &t.args);
    Ok(())
}

/// `:<UID or SID> MODE <chan> <modes> [args...]`: a channel mode change without a TS, as Anope
/// sends them (hybrid takes it from servers): applied as a TMODE at the channel's own TS.
pub fn mode(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(src) = source(ctx, msg) else { return Ok(()) };
    let chan = msg.params[0];
    let Some(ts) = ctx.st.channels.get(&ctx.st.cm.fold(chan)).map(|v| v.ch.created) else { return Ok(()) };
    let (Some(modes), args) = (msg.param(1), msg.params.get(2..).unwrap_or(&[])) else { return Ok(()) };
    if !modes.starts_with(['+', '-']) {
        return Ok(());
    }
    channel_modes(ctx, src, ts, chan, modes, args);
    Ok(())
}

/// A channel mode change from a link, members named by UID; letters we do not have (Anope's
/// `+r` for a registered channel) are skipped.
fn channel_modes(ctx: &mut Ctx<'_>, src: Source, ts: u64, chan: &str, modes: &str, args: &[&str]) {
    let (source, by) = shown(ctx, src);
    let mut args = args.iter();
    let mut on = true;
    let mut changes = Vec::new();
    let mut nicks = Vec::new();
    for c in modes.chars() {
        match c {
            '+' | '-' => on = c == '+',
            'o' | 'v' => {
                let Some(uid) = args.next().and_then(|a| Uid::parse(a)) else { continue };
                let Some(nick) = ctx.st.directory.get(&uid).map(|u| u.nick.clone()) else { continue };
                nicks.push((uid, nick));
                let s = Status::from_mode(c).expect("o or v");
                changes.push(ModeChange::Member(s, c, on, uid));
            }
            'k' => {
                let key = args.next();
                changes.push(ModeChange::Key(if on { key.map(|k| Arc::from(*k)) } else { None }));
            }
            'l' => {
                let limit = if on { args.next().and_then(|l| l.parse().ok()) } else { None };
                if on && limit.is_none() {
                    continue;
                }
                changes.push(ModeChange::Limit(limit));
            }
            c => {
                if let Some(kind) = ListKind::from_letter(c) {
                    let Some(mask) = args.next() else { continue };
                    changes.push(ModeChange::List(kind, on, entry(mask, &source, ctx.unix)));
                } else if let Some(f) = Flags::from_letter(c) {
                    changes.push(ModeChange::Flag(f, c, on));
                }
            }
        }
    }
    send(ctx, RemoteChan::Modes { name: chan.into(), source, by, ts, changes, nicks });
}

#[cfg(test)]
mod tests {
    /// A channel metadata value longer than ours may be is dropped from a link: the value we
    /// have stays (it is not taken as a deletion).
    #[test]
    fn a_too_long_channel_metadata_value_from_a_link_changes_nothing() {
        let mut sim = crate::sim::Sim::fuzz_config();
        let link = sim.link_peer(1);
        let long = "x".repeat(crate::commands::metadata::MAX_VALUE_BYTES + 1);
        let lines = format!(":2FZ ENCAP * METADATA #a 1 url :short\r\n:2FZ ENCAP * METADATA #a 1 url :{long}\r\n");
        sim.feed(1, link, lines.as_bytes());
        sim.pump();
        let alice = sim.connect(0);
        let reg = b"CAP LS 302\r\nCAP REQ :draft/metadata-2\r\nNICK alice\r\nUSER a 0 * :a\r\nCAP END\r\n";
        sim.feed(0, alice, reg);
        sim.feed(0, alice, b"JOIN #a\r\nMETADATA #a GET url\r\n");
        sim.pump();
        let text = sim.text(0, alice);
        assert!(text.lines().any(|l| l.contains(" 761 ") && l.ends_with(" url * :short")), "{text}");
    }

    /// A link cannot give a channel more keys than a client could.
    #[test]
    fn a_link_cannot_give_a_channel_more_keys_than_the_limit() {
        use crate::commands::metadata::MAX_KEYS;
        let mut sim = crate::sim::Sim::fuzz_config();
        let link = sim.link_peer(1);
        let lines: String = (0..MAX_KEYS + 5).map(|i| format!(":2FZ ENCAP * METADATA #a 1 k{i} :v\r\n")).collect();
        sim.feed(1, link, lines.as_bytes());
        sim.pump();
        sim.check_consistent();
        for (st, _) in &sim.shards {
            let v = st.channels.get(&st.cm.fold("#a")).unwrap();
            assert_eq!(v.ch.metadata.as_ref().map_or(0, |m| m.len()), MAX_KEYS);
        }
    }
}
