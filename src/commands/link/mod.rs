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

/// A server's command sent by a client: unknown to it (421), as on hybrid.
pub fn not_for_clients(_ctx: &mut crate::commands::Ctx<'_>, msg: &crate::proto::Message<'_>) -> crate::commands::CmdResult {
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

/// Writes one TS6 line (CRLF included) to a link of this shard, counting it.
pub fn write(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, line: &[u8]) {
    if let Some(l) = st.links.get_mut(&conn) {
        l.lines_out += line.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    out.send(conn, line);
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
