//! Changes of this server's own users told to the links, in TS6 form. Each shard holding links
//! writes what it applies (its own users' changes and those it gets through the mesh) to each
//! of its links, except the one toward the user's server: one copy per link, never back.

use std::sync::Arc;

use super::{direction, our_sid, to_my_links};
use crate::commands::outbox::Outbox;
use crate::commands::outgoing::Shared;
use crate::local::shard::ShardState;
use crate::proto::Line;
use crate::state::servers::Sid;
use crate::state::{Uid, User};

/// `:<SID> UID ...` for a user (hop 1 for ours, one more than its server's for others).
pub fn uid_line(st: &ShardState, u: &User) -> Vec<u8> {
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
    let mut line = crate::proto::ts6::uid_line(&intro).into_bytes();
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
    if st.peers.is_empty() {
        return;
    }
    let line = uid_line(st, u);
    to_my_links(st, out, except(st, u.uid), &line);
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

/// A user of ours left the network; its QUIT line as observers saw it gives the reason.
pub fn quit(st: &mut ShardState, out: &mut dyn Outbox, u: &User, line: &Shared) {
    if st.peers.is_empty() || !u.location.is_local() {
        return;
    }
    let text = String::from_utf8_lossy(&line.body);
    let reason = text.trim_end().split_once(" :").map_or("", |(_, r)| r);
    let wire = Line::new().source(u.uid.as_str()).verb("QUIT").trailing(reason).finish();
    to_my_links(st, out, None, &wire);
}

/// A PRIVMSG or NOTICE for a user behind a link of this shard: `:<sender> VERB <UID> :text`,
/// the sender named by its UID (or our SID for the server's own notices).
pub fn message(st: &mut ShardState, out: &mut dyn Outbox, to: Uid, line: &Shared) {
    let Some(conn) = super::link_toward(st, Sid::of(&to)) else {
        log::debug!("No link toward {to}: line dropped");
        return;
    };
    let text = String::from_utf8_lossy(&line.body);
    let Ok(m) = crate::proto::Message::parse(text.trim_end()) else { return };
    if !matches!(m.verb, "PRIVMSG" | "NOTICE") {
        // TAGMSG and the rest have no TS6 form for hybrid.
        return;
    }
    let sender: Arc<str> = match line.meta.as_ref().and_then(|m| m.sender) {
        Some(uid) => uid.as_str().into(),
        None => our_sid(st).into(),
    };
    let wire = Line::new().source(&sender).verb(m.verb).param(to.as_str()).trailing(m.param(1).unwrap_or("")).finish();
    super::write(st, out, conn, &wire);
}
