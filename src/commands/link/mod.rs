//! Server links in TS6 (the dialect of ircd-hybrid 8.2, `shared/docs/ts6.md`): the handshake
//! (`handshake.rs`), our burst (`burst.rs`), what a peer sends once linked (`s2s.rs`), our own
//! changes told to the links (`relay.rs`), a link lost (`split.rs`) and outgoing links tried
//! and retried (`dial.rs`).
//!
//! A link is served by the shard that accepted or opened it (L). Everything behind the link
//! enters the network through L, in link order: L applies it, tells the other shards through
//! its mesh stream, and forwards it to its other links; every other shard holding links
//! forwards it to its own. So each link hears each change once, never from the direction it
//! came from.

pub mod burst;
pub mod channels;
pub mod dial;
pub mod handshake;
pub mod relay;
pub mod s2s;
pub mod services;
pub mod split;

use std::sync::Arc;

use super::delivery::broadcast;
use super::envelope::{Env, Ordered};
use super::outbox::{Conn, Outbox};
use crate::local::shard::ShardState;
use crate::state::servers::Sid;

/// Whether a peer's line may be sent on while the link's earlier channel requests are in
/// flight: the channel lines of `channels.rs`, each a request to the channel's home that reads
/// nothing of the other requests' outcome (those of one channel go to one home, which answers
/// them in order). Not MODE (it reads the channel's TS here), nor anything else: a QUIT, a
/// message or an EOB must find every earlier change applied.
pub fn pipelined(line: &[u8]) -> bool {
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let mut verb = words.next().unwrap_or_default();
    if verb.first() == Some(&b'@') {
        verb = words.next().unwrap_or_default();
    }
    if verb.first() == Some(&b':') {
        verb = words.next().unwrap_or_default();
    }
    const VERBS: [&[u8]; 11] =
        [b"SJOIN", b"JOIN", b"PART", b"KICK", b"TMODE", b"TOPIC", b"TBURST", b"BMASK", b"TB", b"ETB", b"MLOCK"];
    VERBS.iter().any(|v| v.eq_ignore_ascii_case(verb))
}

/// A server's command sent by a client: unknown to it (421), as on hybrid.
pub fn not_for_clients(
    _ctx: &mut crate::commands::Ctx<'_>,
    msg: &crate::proto::Message<'_>,
) -> crate::commands::CmdResult {
    Err(crate::err!(ERR_UNKNOWNCOMMAND, msg.verb))
}

/// Whether `name` is one of the services servers of `[server] services` (their SVS commands
/// and topic bursts are obeyed).
pub fn is_service(st: &ShardState, name: &str) -> bool {
    st.cfg.server.services.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// Our SID as every TS6 line names us.
pub fn our_sid(st: &ShardState) -> &str {
    &st.cfg.server.sid
}

/// What a link may have queued when its block names no class: a burst of 10,000 users and
/// their channels is about 1.2 MB.
pub const LINK_SENDQ: usize = 32 << 20;

/// What the link to the direct peer `name` may have queued: its block's class's sendq, or
/// [`LINK_SENDQ`].
pub fn sendq_of(st: &ShardState, name: &str) -> usize {
    let class = st.cfg.links.iter().find(|b| b.name.eq_ignore_ascii_case(name)).and_then(|b| b.class);
    class.map_or(LINK_SENDQ, |c| st.cfg.classes[c].sendq)
}

/// Writes TS6 lines (CRLF included) to a link of this shard, counting them. A peer that stops
/// reading is dropped once its sendq (its block's class's, or [`LINK_SENDQ`]) is full.
pub fn write(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, line: &[u8]) {
    let Some(l) = st.links.get_mut(&conn) else {
        out.send(conn, line);
        return;
    };
    l.lines_out += memchr::memchr_iter(b'\n', line).count() as u64;
    let class = l.block.and_then(|b| st.cfg.links.get(b)).and_then(|b| b.class);
    let limit = class.map_or(LINK_SENDQ, |c| st.cfg.classes[c].sendq);
    if out.send(conn, line).is_some_and(|queued| queued > limit) {
        let name = l.peer.as_ref().map_or("?".to_string(), |p| p.1.to_string());
        if let Some(c) = st.clients.get_mut(&conn).filter(|c| !c.closing) {
            c.closing = true;
            log::warn!("Link {name}: SendQ exceeded ({limit} bytes): dropped");
            st.metrics.c.sendq_exceeded += 1;
            st.to_close.push((conn, "SendQ exceeded".into(), true));
        }
    }
}

/// Writes a line to every link of this shard that is up, except the one toward `except`.
pub fn to_my_links(st: &mut ShardState, out: &mut dyn Outbox, except: Option<Sid>, line: &[u8]) {
    if st.peers.is_empty() {
        return;
    }
    let skip = except.and_then(|s| direction(st, s));
    let conns: smallvec::SmallVec<[Conn; 4]> =
        st.peers.iter().filter(|(sid, _)| Some(**sid) != skip).map(|(_, c)| *c).collect();
    for c in conns {
        write(st, out, c, line);
    }
}

/// Whether this shard holds a link other than the one toward `except`: if not, a line for
/// its links need not be built (a burst's lines would be made for nobody).
pub fn any_link_but(st: &ShardState, except: Option<Sid>) -> bool {
    match except.and_then(|s| direction(st, s)) {
        Some(skip) => st.peers.keys().any(|p| *p != skip),
        None => !st.peers.is_empty(),
    }
}

/// Writes a line to every link of the network's part this server holds (every shard's),
/// except the one toward `except`: this shard's now, the others' through its mesh stream.
pub fn to_all_links(st: &mut ShardState, out: &mut dyn Outbox, except: Option<Sid>, line: Arc<[u8]>) {
    to_my_links(st, out, except, &line);
    broadcast(st, out, || Env::Ordered(Ordered::ToLinks { except, line: line.clone() }));
}

/// Writes a line to the link toward `sid`, wherever it is held (this shard, or through the
/// holding shard's stream).
pub fn to_link(st: &mut ShardState, out: &mut dyn Outbox, toward: Sid, line: Arc<[u8]>) {
    if let Some(conn) = link_toward(st, toward) {
        return write(st, out, conn, &line);
    }
    match st.servers.get(&toward).map(|s| s.shard as usize) {
        Some(shard) if shard != st.me => out.to_shard(shard, Env::Ordered(Ordered::ToLink { toward, line })),
        _ => log::debug!("No link toward {toward}: line dropped"),
    }
}

/// The shards holding a link to a rustircd peer (`MTAGS`) other than `except`: a channel
/// message history keeps goes to each of them, members behind it or not, so that every
/// rustircd server keeps the channel's history.
pub fn history_shards(st: &ShardState, except: Option<Sid>) -> smallvec::SmallVec<[usize; 4]> {
    let mut shards = smallvec::SmallVec::new();
    for s in st.servers.iter().filter(|s| s.tags && s.uplink.is_none() && Some(s.sid) != except) {
        if !shards.contains(&(s.shard as usize)) {
            shards.push(s.shard as usize);
        }
    }
    shards
}

/// Our direct peer through which `sid` is reached.
pub fn direction(st: &ShardState, sid: Sid) -> Option<Sid> {
    st.servers.get(&sid).map(|s| s.via)
}

/// The link of this shard that reaches `sid`, if this shard holds it.
pub fn link_toward(st: &ShardState, sid: Sid) -> Option<Conn> {
    direction(st, sid).and_then(|via| st.peers.get(&via).copied())
}

/// The server name a split user's QUIT shows for `sid` (its uplink's, or ours).
pub fn uplink_name(st: &ShardState, sid: Sid) -> Arc<str> {
    match st.servers.get(&sid).and_then(|s| s.uplink).and_then(|u| st.servers.get(&u)) {
        Some(up) => up.name.clone(),
        None => st.cfg.server.name.as_str().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::pipelined;

    #[test]
    fn channel_lines_pipeline_and_the_rest_waits() {
        assert!(pipelined(b":42X SJOIN 1 #a + :@42XAAAAAB"));
        assert!(pipelined(b":42XAAAAAB JOIN 1 #a +"));
        assert!(pipelined(b"@t=1 :42X TBURST 1 #a 2 x :y"));
        assert!(pipelined(b"bmask 1 #a b :x!*@*"));
        assert!(!pipelined(b":42XAAAAAB MODE #a +o 42XAAAAAC"));
        assert!(!pipelined(b":42XAAAAAB PRIVMSG #a :hi"));
        assert!(!pipelined(b":42XAAAAAB QUIT :bye"));
        assert!(!pipelined(b":42X EOB"));
        assert!(!pipelined(b":42X"));
        assert!(!pipelined(b""));
    }
}
