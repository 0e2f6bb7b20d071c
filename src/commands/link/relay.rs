//! Changes of this server's own users told to the links, in TS6 form. Each shard holding links
//! writes what it applies (its own users' changes and those it gets through the mesh) to each
//! of its links, except the one toward the user's server: one copy per link, never back.

use super::{direction, our_sid, to_my_links};
use crate::commands::outbox::Outbox;
use crate::commands::outgoing::Shared;
use crate::local::link::{Form, UidForm};
use crate::local::shard::ShardState;
use crate::proto::Line;
use crate::state::servers::Sid;
use crate::state::{Uid, User};

/// `:<SID> UID ...` for a user (hop 1 for ours, one more than its server's for others), in
/// the peer's form (hybrid's 11 parameters, charybdis' 9).
pub fn uid_line(st: &ShardState, u: &User, form: UidForm) -> Vec<u8> {
    let sid = Sid::of(&u.uid);
    let hop = st.servers.get(&sid).map_or(1, |s| s.hop + 1);
    let modes = u.modes.to_mode_string();
    let intro = crate::proto::ts6::UidIntro {
        source: Some(sid.as_str()),
        nick: &u.nick,
        hop,
        ts: u.nick_ts,
        umodes: &modes,
        user: &u.user,
        host: &u.host,
        realhost: &u.host,
        ip: if u.ip.is_empty() { "0" } else { &u.ip },
        uid: u.uid.as_str(),
        account: u.account.as_deref().unwrap_or("*"),
        gecos: &u.realname,
    };
    let mut line = match form {
        UidForm::Hybrid => crate::proto::ts6::uid_line(&intro),
        UidForm::Charybdis => crate::proto::ts6::uid_line_charybdis(&intro),
        UidForm::Euid => crate::proto::ts6::euid_line(&intro),
    }
    .into_bytes();
    line.extend_from_slice(b"\r\n");
    line
}

/// Links not toward the user's server.
fn except(st: &ShardState, uid: Uid) -> Option<Sid> {
    let sid = Sid::of(&uid);
    (sid.as_str() != our_sid(st)).then_some(sid).filter(|s| direction(st, *s).is_some())
}

/// A user joined the network.
pub fn user_intro(st: &mut ShardState, out: &mut dyn Outbox, u: &User) {
    if !super::any_link_but(st, except(st, u.uid)) {
        return;
    }
    let skip = except(st, u.uid).and_then(|s| direction(st, s));
    let links: smallvec::SmallVec<[(crate::commands::outbox::Conn, UidForm); 4]> = st
        .peers
        .iter()
        .filter(|(sid, _)| Some(**sid) != skip)
        .map(|(_, c)| (*c, st.links.get(c).map_or(UidForm::Hybrid, |l| l.uid_form())))
        .collect();
    // Built once per form in use.
    let mut lines: [Option<Vec<u8>>; 3] = [None, None, None];
    for (conn, form) in links {
        let line = lines[form as usize].get_or_insert_with(|| uid_line(st, u, form));
        super::write(st, out, conn, line);
    }
}

/// A user of ours changed nick (remote users' changes pass through as received).
pub fn nick(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, nick: &str, ts: u64) {
    if st.peers.is_empty() {
        return;
    }
    let line = Line::new().source(uid.as_str()).verb("NICK").param(nick).trailing(&ts.to_string()).finish();
    to_my_links(st, out, except(st, uid), &line);
}

/// A user of ours set or cleared AWAY.
pub fn away(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, away: Option<&str>) {
    if st.peers.is_empty() || except(st, uid).is_some() {
        return;
    }
    let mut l = Line::new().source(uid.as_str()).verb("AWAY");
    if let Some(a) = away {
        l = l.trailing(a);
    }
    to_my_links(st, out, None, &l.finish());
}

/// How every KILL's departure reason starts.
pub const KILLED: &str = "Killed (";

/// A user of ours left the network; its QUIT line as observers saw it gives the reason.
pub fn quit(st: &mut ShardState, out: &mut dyn Outbox, u: &User, line: &Shared) {
    if st.peers.is_empty() || !u.location.is_local() {
        return;
    }
    let text = String::from_utf8_lossy(&line.body);
    let reason = text.trim_end().split_once(" :").map_or("", |(_, r)| r);
    // A killed user's KILL went to the links when it was killed: its server sends no QUIT
    // (docs/ts6 §4). Every kill's reason, and only a kill's, starts so (a user's own QUIT
    // says "Quit: ").
    if reason.starts_with(KILLED) {
        return;
    }
    let wire = Line::new().source(u.uid.as_str()).verb("QUIT").trailing(reason).finish();
    to_my_links(st, out, None, &wire);
}

/// A PRIVMSG or NOTICE for a user behind a link of this shard: `:<sender> VERB <UID> :text`,
/// the sender named by its UID (or our SID for the server's own notices).
pub fn message(st: &mut ShardState, out: &mut dyn Outbox, to: Uid, line: &Shared, at: std::time::Instant) {
    let Some(conn) = super::link_toward(st, Sid::of(&to)) else {
        log::debug!("No link toward {to}: line dropped");
        return;
    };
    let sender = line.meta.as_ref().and_then(|m| m.sender);
    let source = match &sender {
        Some(uid) => uid.as_str(),
        None => our_sid(st),
    };
    let tags = link_tags(st, conn, line);
    // TAGMSG crosses only to a peer that takes tags (a rustircd server).
    let Some(wire) = ts6_message(&line.body, source, Some(to.as_str()), tags.as_deref()) else { return };
    super::write(st, out, conn, &wire);
    st.metrics.link_latency.observe(at.elapsed());
}

/// The tags of `line` for the link `conn`, if it takes them (`MTAGS`, a rustircd server): its
/// msgid and time, so that the message is the same message on every server (history,
/// redaction, read markers), and its client-only tags.
fn link_tags(st: &ShardState, conn: crate::commands::outbox::Conn, line: &Shared) -> Option<String> {
    if !takes_tags(st, conn) {
        return None;
    }
    tags_of(line)
}

fn takes_tags(st: &ShardState, conn: crate::commands::outbox::Conn) -> bool {
    st.links.get(&conn).is_some_and(|l| l.tags)
}

/// The tag section a tag-taking peer gets with `line` (see [`link_tags`]).
fn tags_of(line: &Shared) -> Option<String> {
    let m = line.meta.as_ref()?;
    let mut t = Vec::with_capacity(96);
    t.extend_from_slice(b"msgid=");
    crate::proto::tags::escape_into(&mut t, &m.msgid);
    t.extend_from_slice(b";time=");
    t.extend_from_slice(crate::clock::format_iso_ms(m.time_ms).as_bytes());
    if let Some(ct) = &m.client_tags {
        t.push(b';');
        t.extend_from_slice(ct.as_bytes());
    }
    String::from_utf8(t).ok()
}

/// The TS6 copy of a PRIVMSG, NOTICE or TAGMSG line we built (`:<mask> VERB <target> :text`):
/// the same line from `source`, to `target` when given (else the same target), cut to 510
/// bytes as `Line::finish` cuts, with the client-only `tags` in front for a peer that takes
/// them. The line is not parsed again: only its first three words change. None for any other
/// verb, and for a TAGMSG without tags to carry.
///
/// A multiline message's body is several such lines (draft/multiline, as clients without it
/// see it): each is converted, so a peer gets them as separate messages.
pub fn ts6_message(body: &[u8], source: &str, target: Option<&str>, tags: Option<&str>) -> Option<Vec<u8>> {
    let mut lines = body.split_inclusive(|&b| b == b'\n');
    let mut wire = ts6_line(lines.next()?, source, target, tags)?;
    // A msgid names one message: the lines after the first go without it (the peer gives
    // them their own), as clients without multiline see them.
    let rest: Option<String> =
        tags.map(|t| t.split(';').filter(|x| !x.starts_with("msgid=")).collect::<Vec<_>>().join(";"));
    let rest = rest.as_deref().filter(|t| !t.is_empty());
    for l in lines {
        wire.extend_from_slice(&ts6_line(l, source, target, rest)?);
    }
    Some(wire)
}

fn ts6_line(body: &[u8], source: &str, target: Option<&str>, tags: Option<&str>) -> Option<Vec<u8>> {
    let rest = body.strip_prefix(b":")?;
    fn word(s: &[u8]) -> Option<(usize, &[u8])> {
        memchr::memchr(b' ', s).map(|i| (i, &s[i + 1..]))
    }
    let (_, rest) = word(rest)?;
    let (n, after) = word(rest)?;
    let verb = &rest[..n];
    let tagmsg = verb == b"TAGMSG";
    // A TAGMSG is something only with client-only tags.
    let client_tags = tags.is_some_and(|t| t.split(';').any(|x| x.starts_with('+')));
    if !(verb == b"PRIVMSG" || verb == b"NOTICE" || (tagmsg && client_tags)) {
        return None;
    }
    let end = memchr::memchr2(b' ', b'\r', after).unwrap_or(after.len());
    let (old_target, text) = after.split_at(end);
    let text = text.strip_suffix(b"\r\n").unwrap_or(text);
    let target = target.map_or(old_target, str::as_bytes);
    let tags = tags.unwrap_or("");
    let mut wire = Vec::with_capacity(tags.len() + source.len() + verb.len() + target.len() + text.len() + 10);
    if !tags.is_empty() {
        wire.push(b'@');
        wire.extend_from_slice(tags.as_bytes());
        wire.push(b' ');
    }
    let body_start = wire.len();
    wire.push(b':');
    wire.extend_from_slice(source.as_bytes());
    wire.push(b' ');
    wire.extend_from_slice(verb);
    wire.push(b' ');
    wire.extend_from_slice(target);
    if !tagmsg {
        wire.extend_from_slice(if text.is_empty() { b" :" } else { text });
    }
    crate::proto::line::truncate_body(&mut wire, body_start);
    wire.extend_from_slice(b"\r\n");
    Some(wire)
}

/// The TS6 source of a change: its user, or the server it came from (or us).
fn source_of(st: &ShardState, actor: Uid, via: Option<Sid>) -> String {
    if st.directory.get(&actor).is_some() {
        actor.to_string()
    } else {
        via.map_or_else(|| our_sid(st).to_string(), |s| s.to_string())
    }
}

/// A channel change applied here, told to this shard's links (not back toward `via`), in TS6
/// form: our users' joins as SJOIN (a new channel) or JOIN, their parts, kicks, modes (TMODE)
/// and topics, and a burst that came from another link as the SJOIN it resulted in.
pub fn chan_change(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    chan: &crate::proto::Folded,
    mutation: &crate::state::channel::Mutation,
    line: &Shared,
    actor: Uid,
    via: Option<Sid>,
) {
    use crate::state::channel::Mutation;
    if !super::any_link_but(st, via) {
        return;
    }
    if let Mutation::Mlock(letters) = mutation {
        let (name, ts) = match st.channels.get(chan) {
            Some(v) => (v.ch.name.clone(), v.ch.created),
            None => return,
        };
        return mlock(st, out, &name, ts, letters.as_deref().unwrap_or(""), via);
    }
    if let Mutation::Arrived { from, reason, .. } = mutation {
        return renamed(st, out, chan, from, reason);
    }
    let src = source_of(st, actor, via);
    if let Mutation::Metadata(changes) = mutation {
        // Only our own changes: one from a link was passed on as the ENCAP it came in.
        let Some(v) = st.channels.get(chan).filter(|_| via.is_none()) else { return };
        let (name, ts) = (v.ch.name.clone(), v.ch.created);
        for (k, value) in changes {
            let line = chan_metadata_line(&src, &name, ts, k, value.as_deref());
            to_my_links(st, out, None, &line);
        }
        return;
    }
    let view = st.channels.get(chan);
    let ts = view.map_or(0, |v| v.ch.created).to_string();
    let text = String::from_utf8_lossy(&line.body).into_owned();
    let client = crate::proto::Message::parse(text.trim_end()).ok();
    let name = client.as_ref().and_then(|m| m.param(0)).unwrap_or(chan.as_str()).to_string();
    let wire = match mutation {
        Mutation::Join { uid, status, created: Some(_), .. } => {
            let Some(v) = view else { return };
            let (modes, params) = v.ch.mode_string(true);
            let mut l = Line::new().source(our_sid(st)).verb("SJOIN").param(&ts).param(&v.ch.name).param(&modes);
            for p in &params {
                l = l.param(p);
            }
            l.trailing(&format!("{}{uid}", status.all_prefixes())).finish()
        }
        Mutation::Join { uid, .. } => {
            Line::new().source(uid.as_str()).verb("JOIN").param(&ts).param(&name).param("+").finish()
        }
        Mutation::Leave { uid } => match client.as_ref().map(|m| m.verb) {
            Some("KICK") => {
                let reason = client.as_ref().and_then(|m| m.param(2)).unwrap_or("");
                Line::new().source(&src).verb("KICK").param(&name).param(uid.as_str()).trailing(reason).finish()
            }
            _ => {
                let mut l = Line::new().source(uid.as_str()).verb("PART").param(&name);
                if let Some(r) = client.as_ref().and_then(|m| m.param(1)) {
                    l = l.trailing(r);
                }
                l.finish()
            }
        },
        Mutation::Modes(changes) => {
            let (modes, params) = crate::state::channel::render_changes(changes, |u| u.to_string());
            let mut l = Line::new().source(&src).verb("TMODE").param(&ts).param(&name).param(&modes);
            for p in &params {
                l = l.param(p);
            }
            l.finish()
        }
        Mutation::Topic(t) => {
            Line::new().source(&src).verb("TOPIC").param(&name).trailing(t.as_ref().map_or("", |t| &t.text)).finish()
        }
        // The first three went their own ways above; a rename's first half is not news.
        Mutation::Mlock(_) | Mutation::Metadata(_) | Mutation::Arrived { .. } | Mutation::Moved { .. } => return,
        Mutation::Burst { joins, .. } => {
            let Some(v) = view else { return };
            let (modes, params) = v.ch.mode_string(true);
            let args: Vec<&str> = params.iter().map(String::as_str).collect();
            let members: Vec<String> = joins.iter().map(|(u, s, _)| format!("{}{u}", s.all_prefixes())).collect();
            let members: Vec<crate::proto::ts6::Member<'_>> =
                members.iter().filter_map(|m| crate::proto::ts6::Member::parse(m).ok()).collect();
            let from = via.map_or_else(|| our_sid(st).to_string(), |s| s.to_string());
            let mut b = Vec::new();
            for l in crate::proto::ts6::sjoin_lines(&from, v.ch.created, &v.ch.name, &modes, &args, &members) {
                b.extend_from_slice(l.as_bytes());
                b.extend_from_slice(b"\r\n");
            }
            b
        }
    };
    if !wire.is_empty() {
        to_my_links(st, out, via, &wire);
    }
}

/// A channel renamed (ours: renames wait for every member to be ours, `channel::rename`), as
/// TS6 can say it: every member leaves the old name, and the channel is burst under the new
/// one with its modes, lists, topic and metadata. Each shard tells its own links.
fn renamed(st: &mut ShardState, out: &mut dyn Outbox, chan: &crate::proto::Folded, from: &str, reason: &str) {
    let Some(view) = st.channels.get(chan) else { return };
    let ch = &view.ch;
    let why =
        if reason.is_empty() { format!("Renamed to {}", ch.name) } else { format!("Renamed to {}: {reason}", ch.name) };
    let mut parts = Vec::new();
    for uid in ch.members.keys() {
        parts.extend_from_slice(&Line::new().source(uid.as_str()).verb("PART").param(from).trailing(&why).finish());
    }
    let sid = our_sid(st).to_string();
    let mut each = Vec::new();
    for (&peer, &conn) in &st.peers {
        let mut b = parts.clone();
        super::burst::channel(st, ch, peer, &sid, super::burst::mlock_form(st, conn), &mut b);
        if st.links.get(&conn).is_some_and(|l| l.tags) {
            for (k, v) in ch.metadata.iter().flat_map(|m| m.iter()) {
                b.extend_from_slice(&chan_metadata_line(&sid, &ch.name, ch.created, k, Some(v)));
            }
        }
        each.push((conn, b));
    }
    for (conn, b) in each {
        super::write(st, out, conn, &b);
    }
}

/// `:<source> ENCAP * METADATA <chan> <chan TS> <key> [:<value>]`: a channel's metadata for
/// the other servers. A user's is `:<UID> ENCAP * METADATA <key> [:<value>]`; no key starts
/// with a channel's prefix, so the first argument tells them apart (and a rustircd server
/// that knows only users' drops a channel's as a bad key).
pub fn chan_metadata_line(source: &str, name: &str, ts: u64, key: &str, value: Option<&str>) -> Vec<u8> {
    let l = Line::new().source(source).verb("ENCAP").param("*").param("METADATA").param(name);
    let l = l.param(&ts.to_string()).param(key);
    match value {
        Some(v) => l.trailing(v).finish(),
        None => l.finish(),
    }
}

/// A channel's mode lock, to this shard's links that said `MLOCK` (not back toward `via`), in
/// each one's form: hybrid's `MLOCK <ts> <chan> <lock ts> :<letters>` (lock TS 0: not known
/// here), charybdis' `MLOCK <ts> <chan> :<letters>`.
pub fn mlock(st: &mut ShardState, out: &mut dyn Outbox, name: &str, ts: u64, letters: &str, via: Option<Sid>) {
    let skip = via.and_then(|s| direction(st, s));
    let links: Vec<(crate::commands::outbox::Conn, bool)> = st
        .peers
        .iter()
        .filter(|(sid, _)| Some(**sid) != skip)
        .filter_map(|(_, c)| st.links.get(c).filter(|l| l.has_cap("MLOCK")).map(|l| (*c, l.form == Form::Hybrid)))
        .collect();
    for (conn, hybrid) in links {
        let l = Line::new().source(our_sid(st)).verb("MLOCK").param(&ts.to_string()).param(name);
        let l = if hybrid { l.param("0") } else { l };
        let wire = l.trailing(letters).finish();
        super::write(st, out, conn, &wire);
    }
}

/// A channel message for the members behind this shard's links: one copy per link with
/// members behind it, none toward the sender's own server. The channel counts its members per
/// server (`per_server`), so this costs a lookup per server with members, not a member scan.
/// A message history keeps goes to every rustircd peer (`MTAGS`) as well, members behind it or
/// not: each keeps the channel's history, and passes it on to its own such peers.
pub fn chan_message(st: &mut ShardState, out: &mut dyn Outbox, msg: &crate::commands::envelope::ChanMsg) {
    if st.peers.is_empty() || st.directory.get(&msg.sender).is_none() {
        return;
    }
    let Some(view) = st.channels.get(&msg.chan) else { return };
    let from = direction(st, Sid::of(&msg.sender));
    let mut links: smallvec::SmallVec<[crate::commands::outbox::Conn; 4]> = smallvec::SmallVec::new();
    for (sid, _) in &view.ch.per_server {
        // Behind one of this shard's links, and not the one the message came from.
        let Some(via) = direction(st, *sid).filter(|d| Some(*d) != from) else { continue };
        if let Some(&conn) = st.peers.get(&via) {
            if !links.contains(&conn) {
                links.push(conn);
            }
        }
    }
    if crate::commands::history::record::kept(msg).is_some() {
        for (sid, &conn) in &st.peers {
            if Some(*sid) != from && takes_tags(st, conn) && !links.contains(&conn) {
                links.push(conn);
            }
        }
    }
    if links.is_empty() {
        return;
    }
    // Built once for the peers without tags and once for those with (rustircd servers).
    let (mut plain, mut tagged) = (None, None);
    for conn in links {
        let takes = takes_tags(st, conn) && msg.line.meta.is_some();
        let slot = if takes { &mut tagged } else { &mut plain };
        let wire = slot.get_or_insert_with(|| {
            let tags = if takes { tags_of(&msg.line) } else { None };
            ts6_message(&msg.line.body, msg.sender.as_str(), None, tags.as_deref())
        });
        let Some(wire) = wire.as_ref() else { continue };
        super::write(st, out, conn, wire);
        st.metrics.link_latency.observe(msg.at.elapsed());
    }
}

/// A user of ours changed its modes: `:<UID> MODE <UID> :<+added-removed>` (remote users'
/// changes pass through as received).
pub fn umodes(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    uid: Uid,
    before: crate::state::UserModes,
    after: crate::state::UserModes,
) {
    if st.peers.is_empty() || except(st, uid).is_some() || before == after {
        return;
    }
    let mut diff = String::new();
    for (on, sign) in [(true, '+'), (false, '-')] {
        let letters: String = crate::state::UserModes::TABLE
            .iter()
            .filter(|(_, m)| after.has(*m) == on && before.has(*m) != on)
            .map(|(c, _)| *c)
            .collect();
        if !letters.is_empty() {
            diff.push(sign);
            diff.push_str(&letters);
        }
    }
    let line = Line::new().source(uid.as_str()).verb("MODE").param(uid.as_str()).trailing(&diff).finish();
    to_my_links(st, out, None, &line);
}

/// An INVITE for a user behind a link of this shard: `:<UID> INVITE <UID> <chan> <ts>`.
pub fn invite(st: &mut ShardState, out: &mut dyn Outbox, to: Uid, chan: &crate::proto::Folded, line: &Shared) {
    let Some(conn) = super::link_toward(st, Sid::of(&to)) else { return };
    let Some(from) = line.meta.as_ref().and_then(|m| m.sender) else { return };
    let Some(view) = st.channels.get(chan) else { return };
    let wire = Line::new()
        .source(from.as_str())
        .verb("INVITE")
        .param(to.as_str())
        .param(&view.ch.name)
        .param(&view.ch.created.to_string())
        .finish();
    super::write(st, out, conn, &wire);
}

/// A WALLOPS of one of our users, for every link.
pub fn wallops(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, text: &str) {
    let line = Line::new().source(uid.as_str()).verb("WALLOPS").trailing(text).finish();
    super::to_all_links(st, out, None, line.into());
}

#[cfg(test)]
mod tests {
    use super::ts6_message;

    fn wire(body: &str, source: &str, target: Option<&str>) -> Option<String> {
        ts6_message(body.as_bytes(), source, target, None).map(|w| String::from_utf8(w).unwrap())
    }

    #[test]
    fn client_tags_go_in_front_and_a_tagmsg_needs_them() {
        let tagged = |body: &str, tags| {
            ts6_message(body.as_bytes(), "0RCAAAAAA", None, tags).map(|w| String::from_utf8(w).unwrap())
        };
        assert_eq!(
            tagged(":al!a@h PRIVMSG #c :hi\r\n", Some("+draft/reply=1;+x")).as_deref(),
            Some("@+draft/reply=1;+x :0RCAAAAAA PRIVMSG #c :hi\r\n")
        );
        assert_eq!(
            tagged(":al!a@h TAGMSG bob\r\n", Some("+typing=active")).as_deref(),
            Some("@+typing=active :0RCAAAAAA TAGMSG bob\r\n")
        );
        assert_eq!(tagged(":al!a@h TAGMSG bob\r\n", None), None);
        // The 510-byte cut counts from after the tags.
        let long = format!(":al!a@h PRIVMSG #c :{}\r\n", "x".repeat(600));
        let w = tagged(&long, Some(&format!("+t={}", "y".repeat(300)))).unwrap();
        let body = w.split_once(' ').unwrap().1;
        assert_eq!(body.len(), 512, "{body}");
    }

    /// What the peer on shard 1 (dave, in `#a` only) gets of alice's lines to `#b` (shard 0).
    fn to_b_without_members(capab: &str) -> String {
        use std::sync::Arc;
        let cfg = Arc::new(crate::config::Config::parse("fuzz", crate::fuzzing::CONFIG, None).unwrap());
        let mut sim = crate::sim::Sim::new(cfg, 2, true);
        let alice = sim.connect(0);
        sim.feed(0, alice, b"CAP LS 302\r\nCAP REQ :message-tags\r\nNICK alice\r\nUSER a 0 * :a\r\nCAP END\r\n");
        sim.feed(0, alice, b"JOIN #b\r\n");
        let link = sim.connect(1);
        let script = String::from_utf8_lossy(crate::fuzzing::LINK).replace("CAPAB :EOB", capab);
        sim.feed(1, link, script.as_bytes());
        sim.pump();
        let lines = "PRIVMSG #b :kept\r\nNOTICE @#b :ops only\r\n@+typing=active TAGMSG #b\r\n\
                     @+draft/react=ok TAGMSG #b\r\n";
        sim.feed(0, alice, lines.as_bytes());
        sim.pump();
        sim.check_consistent();
        sim.text(1, link)
    }

    #[test]
    fn a_rustircd_peer_gets_what_history_keeps_of_a_channel_without_members_behind_it() {
        let out = to_b_without_members("CAPAB :MTAGS EOB");
        // The history catch-up request at EOB (`ENCAP <peer> HISTREQ #b`) is not a relay.
        let lines: Vec<&str> = out.lines().filter(|l| l.contains(" #b") && !l.contains(" HISTREQ ")).collect();
        assert!(lines[0].contains(" SJOIN ") && lines[0].contains(" #b "), "{out}");
        let (kept, react) = (lines[1], lines[2]);
        assert!(kept.starts_with("@msgid=") && kept.ends_with(" PRIVMSG #b :kept"), "{out}");
        assert!(react.contains(";+draft/react=ok ") && react.ends_with(" TAGMSG #b"), "{out}");
        assert_eq!(lines.len(), 3, "no STATUSMSG, no typing notice: {out}");
        // A peer that keeps no history (hybrid) hears only of the channel.
        let out = to_b_without_members("CAPAB :EOB");
        let lines: Vec<&str> = out.lines().filter(|l| l.contains(" #b")).collect();
        assert_eq!(lines.len(), 1, "{out}");
    }

    #[test]
    fn channel_metadata_goes_as_encap_with_the_channel_first() {
        let set = super::chan_metadata_line("0RCAAAAAA", "#Chan", 42, "url", Some("https://x y"));
        assert_eq!(set, b":0RCAAAAAA ENCAP * METADATA #Chan 42 url :https://x y\r\n");
        assert_eq!(super::chan_metadata_line("0RC", "#c", 1, "url", None), b":0RC ENCAP * METADATA #c 1 url\r\n");
    }

    #[test]
    fn a_message_line_gets_its_ts6_source_and_target() {
        let w = wire(":al!a@h PRIVMSG bob :hi there\r\n", "0RCAAAAAA", Some("2BBAAAAAB"));
        assert_eq!(w.as_deref(), Some(":0RCAAAAAA PRIVMSG 2BBAAAAAB :hi there\r\n"));
        // A channel keeps its target as shown (with a STATUSMSG prefix); the text is kept as
        // local members see it, trailing spaces and colons included.
        let w = wire(":al!a@h NOTICE @#Chan :: x  \r\n", "0RCAAAAAA", None);
        assert_eq!(w.as_deref(), Some(":0RCAAAAAA NOTICE @#Chan :: x  \r\n"));
        let w = wire(":al!a@h PRIVMSG #c\r\n", "0RC", None);
        assert_eq!(w.as_deref(), Some(":0RC PRIVMSG #c :\r\n"));
        assert_eq!(wire(":al!a@h TAGMSG #c\r\n", "0RCAAAAAA", None), None);
        assert_eq!(wire("PRIVMSG #c :x\r\n", "0RCAAAAAA", None), None);
    }

    #[test]
    fn a_longer_source_or_target_is_cut_as_line_cuts() {
        // The client line is at the limit with a short mask: the UIDs make it longer.
        let text = "é".repeat(300);
        let body = crate::proto::Line::new().source("a!b@c").verb("PRIVMSG").param("d").trailing(&text).finish();
        let w = ts6_message(&body, "0RCAAAAAA", Some("2BBAAAAAB"), None).unwrap();
        let text = String::from_utf8_lossy(&body);
        let m = crate::proto::Message::parse(text.trim_end()).unwrap();
        let rebuilt = crate::proto::Line::new()
            .source("0RCAAAAAA")
            .verb("PRIVMSG")
            .param("2BBAAAAAB")
            .trailing(m.param(1).unwrap())
            .finish();
        assert_eq!(w, rebuilt);
        assert!(w.len() <= 512 && w.len() < body.len() + 8, "cut: {}", w.len());
    }
}
