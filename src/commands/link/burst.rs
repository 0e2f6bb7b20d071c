//! Our burst to a new peer (docs/ts6 §3): every server and user on our side of the tree, in
//! one turn of the link's shard from its own copy of the network, then PING and EOB. From the
//! same turn on the link hears every change this shard applies, so nothing is missed or told
//! twice.

use std::time::Instant;

use super::relay::uid_line;
use super::s2s::sid_line;
use super::{our_sid, write};
use crate::commands::outbox::{Conn, Outbox};
use crate::local::shard::ShardState;
use crate::proto::Line;
use crate::state::servers::Sid;

/// Writes the burst for the peer `peer` on link `conn`.
pub fn send(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, peer: Sid, now: Instant) {
    let mut b: Vec<u8> = Vec::with_capacity(4096);
    for s in st.servers.in_tree_order() {
        if s.via != peer {
            b.extend_from_slice(&sid_line(st, s));
        }
    }
    let form = st.links.get(&conn).map_or(crate::local::link::UidForm::Hybrid, |l| l.uid_form());
    for u in st.directory.iter() {
        if super::direction(st, Sid::of(&u.uid)) == Some(peer) {
            continue;
        }
        b.extend_from_slice(&uid_line(st, u, form));
        if let Some(a) = &u.away {
            b.extend_from_slice(&Line::new().source(u.uid.as_str()).verb("AWAY").trailing(a).finish());
        }
    }
    let sid = our_sid(st).to_string();
    let mlock = mlock_form(st, conn);
    channels(st, peer, &sid, mlock, &mut b);
    if st.links.get(&conn).is_some_and(|l| l.tags) {
        drafts(st, peer, &sid, &mut b);
    }
    // The SASL mechanisms of services on our side (Anope announces them only once, in its own
    // burst: a server linking later learns them from ours).
    if let Some((svc, mechs)) = st.sasl_mechs.as_ref().filter(|(s, _)| super::direction(st, *s) != Some(peer)) {
        let line = Line::new().source(svc.as_str()).verb("ENCAP").param("*").param("MECHLIST").trailing(mechs);
        b.extend_from_slice(&line.finish());
    }
    b.extend_from_slice(&Line::new().verb("PING").trailing(&sid).finish());
    if st.links.get(&conn).is_some_and(|l| l.has_cap("EOB")) {
        b.extend_from_slice(&Line::new().source(&sid).verb("EOB").finish());
        // Servers behind us that finished their own bursts.
        let synced: Vec<Sid> = st.servers.iter().filter(|s| s.synced && s.via != peer).map(|s| s.sid).collect();
        for s in synced {
            b.extend_from_slice(&Line::new().source(s.as_str()).verb("EOB").finish());
        }
    }
    let lines = b.iter().filter(|&&c| c == b'\n').count();
    write(st, out, conn, &b);
    if let Some(l) = st.links.get_mut(&conn) {
        l.burst_sent = Some(now);
    }
    log::info!("Server burst: {lines} lines ({} bytes) sent to {peer} shard={}", b.len(), st.me);
}

/// For a rustircd peer (`MTAGS`), after the TS6 burst: what the IRCv3 drafts keep of our side
/// of the network, so that a server linking later is not blind to earlier changes — users' and
/// channels' metadata and every account's read markers, in the forms changes travel in.
fn drafts(st: &ShardState, peer: Sid, sid: &str, b: &mut Vec<u8>) {
    let ours = |uid: &crate::state::Uid| super::direction(st, Sid::of(uid)) != Some(peer);
    for u in st.directory.iter().filter(|u| ours(&u.uid)) {
        for (k, v) in u.metadata.iter().flat_map(|m| m.iter()) {
            let line = Line::new().source(u.uid.as_str()).verb("ENCAP").param("*").param("METADATA").param(k);
            b.extend_from_slice(&line.trailing(v).finish());
        }
    }
    for view in st.channels.values().filter(|v| v.ch.members.keys().any(&ours)) {
        for (k, v) in view.ch.metadata.iter().flat_map(|m| m.iter()) {
            b.extend_from_slice(&super::relay::chan_metadata_line(sid, &view.ch.name, view.ch.created, k, Some(v)));
        }
    }
    crate::commands::read_marker::burst(st, sid, b);
}

/// Whether the peer on `conn` takes MLOCK: `Some(true)` in hybrid's form (with a lock TS).
pub fn mlock_form(st: &ShardState, conn: Conn) -> Option<bool> {
    st.links.get(&conn).filter(|l| l.has_cap("MLOCK")).map(|l| l.form == crate::local::link::Form::Hybrid)
}

/// Every channel with members on our side: SJOIN (members split over lines), BMASK per list,
/// TBURST when it has a topic (§3.3–3.5).
fn channels(st: &ShardState, peer: Sid, sid: &str, mlock: Option<bool>, b: &mut Vec<u8>) {
    for view in st.channels.values() {
        channel(st, &view.ch, peer, sid, mlock, b);
    }
}

/// One channel's burst lines for `peer`, if it has members on our side.
/// `mlock`: the peer takes MLOCK ([`mlock_form`]).
pub fn channel(
    st: &ShardState,
    ch: &crate::state::channel::Channel,
    peer: Sid,
    sid: &str,
    mlock: Option<bool>,
    b: &mut Vec<u8>,
) {
    use crate::proto::ts6;
    use crate::state::channel::ListKind;
    let members: Vec<String> = ch
        .members
        .iter()
        .filter(|(u, _)| super::direction(st, Sid::of(u)) != Some(peer))
        .map(|(u, m)| format!("{}{u}", m.status.all_prefixes()))
        .collect();
    if members.is_empty() {
        return;
    }
    let members: Vec<ts6::Member<'_>> = members.iter().filter_map(|m| ts6::Member::parse(m).ok()).collect();
    let (modes, params) = ch.mode_string(true);
    let args: Vec<&str> = params.iter().map(String::as_str).collect();
    for l in ts6::sjoin_lines(sid, ch.created, &ch.name, &modes, &args, &members) {
        b.extend_from_slice(l.as_bytes());
        b.extend_from_slice(b"\r\n");
    }
    for kind in [ListKind::Ban, ListKind::Except, ListKind::Invex] {
        let masks: Vec<&str> = ch.list(kind).iter().map(|e| &*e.mask).collect();
        for l in ts6::bmask_lines(sid, ch.created, &ch.name, kind.letter(), &masks) {
            b.extend_from_slice(l.as_bytes());
            b.extend_from_slice(b"\r\n");
        }
    }
    if let Some(t) = &ch.topic {
        let line = Line::new()
            .source(sid)
            .verb("TBURST")
            .param(&ch.created.to_string())
            .param(&ch.name)
            .param(&t.set_at.to_string())
            .param(&t.set_by)
            .trailing(&t.text)
            .finish();
        b.extend_from_slice(&line);
    }
    if let (Some(hybrid), Some(lock)) = (mlock, &ch.mlock) {
        let l = Line::new().source(sid).verb("MLOCK").param(&ch.created.to_string()).param(&ch.name);
        let l = if hybrid { l.param("0") } else { l };
        b.extend_from_slice(&l.trailing(lock).finish());
    }
}
