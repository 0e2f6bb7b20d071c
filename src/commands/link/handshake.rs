//! The link handshake (docs/ts6 §2): PASS, CAPAB, SERVER both ways, then SVINFO and the burst.
//! A peer may connect to any listener: its CAPAB or SERVER before registration makes the
//! connection a server link. The initiator sends first; the acceptor answers once the
//! initiator's SERVER passed every check (in hybrid's order, each failure an ERROR), and the
//! new server was registered at shard 0, which keeps two links on different shards from
//! bringing in the same SID or name.

use std::net::SocketAddr;
use std::time::Instant;

use super::{burst, our_sid, write};
use crate::commands::connection::{close_later, resume};
use crate::commands::envelope::{Answer, Env, Ordered, Request};
use crate::commands::outbox::{Conn, Outbox};
use crate::commands::{CmdResult, Ctx};
use crate::err;
use crate::local::client::{Client, Wait};
use crate::local::kind::Kind;
use crate::local::link::{Link, Phase};
use crate::local::shard::ShardState;
use crate::proto::{ts6, Line, Message};
use crate::state::servers::{Server, Sid};

/// The capabilities we advertise. Never AOP or QOP: hybrid drops a peer whose AOP/QOP differ
/// from its own, and Debian's hybrid has neither. No HOP (no half-ops here), no RESYNC.
/// `MLOCK`: services' mode locks (hybrid's form with a lock TS, charybdis' without). `EUID`: a charybdis-family peer (Atheme, Anope's charybdis module) introduces users
/// with EUID (real host and account) and gets ours so; `SERVICES` makes Atheme send the
/// accounts NickServ sets (`ENCAP * SU`, without it IDENTIFY sets none); `RSFNC`: services may
/// force nick changes with it; `TB` and `EOPMOD` (ETB): topic bursts, e.g. services keeping a
/// topic. `MTAGS` is ours (hybrid and Anope ignore tokens they do not know): between two
/// rustircd servers, client-only message tags and TAGMSG cross the link.
pub const CAPAB: &str = "ENCAP TBURST EOB RHOST KNOCK MLOCK EUID SERVICES RSFNC TB EOPMOD MTAGS";

/// Our CAPAB token for message tags across a link (see [`CAPAB`]).
pub const MTAGS: &str = "MTAGS";

/// The TS6 protocol version we speak (SVINFO's first two fields).
const TS_CURRENT: u32 = 6;
/// Clocks further apart than this drop the link (hybrid's `ts_max_delta`); past the warning
/// threshold the link stays and the difference is logged.
const TS_MAX_DELTA: u64 = 15;
const TS_WARN_DELTA: u64 = 3;

/// `CAPAB :<tokens>`: from a new connection it says a server is calling.
pub fn capab(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(link) = become_link(ctx)? else { return Ok(()) };
    link.caps = msg.params[0].split_ascii_whitespace().map(Into::into).collect();
    link.tags = link.has_cap(MTAGS);
    Ok(())
}

/// `PASS <pw> TS 6 :<SID>`: a server is calling (its password was kept by the client PASS);
/// the SID is kept for a SERVER line in the charybdis form, which has none.
pub fn pass(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let sid = msg.param(3).and_then(Sid::parse);
    let Some(link) = become_link(ctx)? else { return Ok(()) };
    link.pass_sid = sid;
    Ok(())
}

/// Turns a new connection into a server link (its first CAPAB or SERVER), or finds its link.
/// A client that already sent NICK or USER cannot turn into a server.
fn become_link<'c>(ctx: &'c mut Ctx<'_>) -> Result<Option<&'c mut Link>, crate::commands::Reply> {
    let me = ctx.me();
    if me.kind == Kind::Client && (me.nick.is_some() || me.user.is_some()) {
        return Err(err!(ERR_ALREADYREGISTERED));
    }
    if me.registered {
        // An up link saying CAPAB or SERVER again: ignored (hybrid ignores it too).
        return Ok(None);
    }
    let (conn, now) = (ctx.conn, ctx.now);
    ctx.me_mut().kind = Kind::Server;
    Ok(Some(ctx.st.links.entry(conn).or_insert_with(|| Link::new(None, false, now))))
}

/// `SERVER <name> 1 <SID> +<flags> :<desc>`: the peer introduces itself. Checked in hybrid's
/// order; then registered at shard 0 ([`claimed`] brings the link up).
pub fn server(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    if become_link(ctx)?.is_none() {
        return Ok(());
    }
    let conn = ctx.conn;
    let pass_sid = ctx.st.links.get(&conn).and_then(|l| l.pass_sid);
    let pass_sid_str = pass_sid.as_ref().map(|s| s.as_str().to_string()).unwrap_or_default();
    let charybdis = msg.params.len() == 3;
    let parsed: Result<ts6::ServerIntro<'_>, _> =
        if charybdis { ts6::parse_server_charybdis(msg, &pass_sid_str) } else { ts6::parse_server(msg) };
    let intro = match parsed {
        Ok(i) => i,
        Err(ts6::Ts6Error::BadSid) => return refuse(ctx.st, conn, "Invalid SID"),
        Err(ts6::Ts6Error::NotEnoughParams { .. }) => return refuse(ctx.st, conn, "Not enough parameters"),
        Err(_) => return refuse(ctx.st, conn, "Invalid servername"),
    };
    if !crate::proto::names::valid_server_name(intro.name) {
        return refuse(ctx.st, conn, "Invalid servername");
    }
    let cfg = ctx.st.cfg.clone();
    let link = ctx.st.links.get(&conn).expect("become_link made it");
    let peer_ip = ctx.me().addr.ip();
    let block = match link.block {
        // We called it: it must be who we called.
        Some(b) if !cfg.links[b].name.eq_ignore_ascii_case(intro.name) => {
            return refuse(ctx.st, conn, "Server name mismatch")
        }
        Some(b) => b,
        None => {
            let found = cfg
                .links
                .iter()
                .position(|l| l.name.eq_ignore_ascii_case(intro.name) && l.address.is_none_or(|a| a.ip() == peer_ip));
            match found {
                Some(b) => b,
                None => return refuse(ctx.st, conn, "No connect {} block"),
            }
        }
    };
    let block_cfg = &cfg.links[block];
    if ctx.me().rare().pass.as_deref() != Some(block_cfg.accept_password.as_str()) {
        return refuse(ctx.st, conn, "Invalid password");
    }
    if block_cfg.sid.as_deref().is_some_and(|s| s != intro.sid) {
        return refuse(ctx.st, conn, "Wrong SID");
    }
    let link = ctx.st.links.get(&conn).expect("present");
    let tags = link.tags;
    if (link.has_cap("AOP") || link.has_cap("QOP"))
        && !cfg.server.services.iter().any(|s| s.eq_ignore_ascii_case(intro.name))
    {
        return refuse(ctx.st, conn, "Mismatching AOP/QOP capabilities");
    }
    if intro.sid == cfg.server.sid || intro.name.eq_ignore_ascii_case(&cfg.server.name) {
        return refuse(ctx.st, conn, "Server ID already exists");
    }
    let sid = Sid::parse(intro.sid).expect("parse_server checked the SID");
    let server = Server {
        sid,
        name: intro.name.into(),
        hop: 1,
        desc: intro.desc.into(),
        hidden: intro.hidden(),
        uplink: None,
        via: sid,
        shard: ctx.st.me as u16,
        synced: false,
        tags,
    };
    let link = ctx.st.links.get_mut(&conn).expect("present");
    link.block = Some(block);
    link.form = if charybdis { crate::local::link::Form::Charybdis } else { crate::local::link::Form::Hybrid };
    link.phase = Phase::Claiming;
    link.pending = Some(Box::new(server));
    claim(ctx.st, ctx.out, conn, sid, intro.name, ctx.now, ctx.unix);
    Ok(())
}

/// Registers a server brought in by link `conn` at shard 0; the link's further lines wait for
/// the answer (this shard's own register answers at once).
pub fn claim(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, sid: Sid, name: &str, now: Instant, unix: u64) {
    if st.me == 0 {
        let result = st.register.claim(sid, name);
        return claimed(st, out, conn, sid, result, now, unix);
    }
    out.to_shard(0, Env::Request(Request::ServerClaim { conn, sid, name: name.into() }));
    if let Some(c) = st.clients.get_mut(&conn) {
        c.wait = Some(Wait::Answer);
    }
}

/// Shard 0: a claim from another shard's link.
pub fn on_claim(st: &mut ShardState, out: &mut dyn Outbox, from: usize, conn: Conn, sid: Sid, name: &str) {
    let result = st.register.claim(sid, name);
    out.to_shard(from, Env::Answer(Answer::ServerClaim { conn, sid, result }));
}

/// Shard 0's answer for a server link `conn` brought in: the peer itself (the handshake goes
/// on), or a server behind it (`s2s::sid`).
pub fn claimed(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    conn: Conn,
    sid: Sid,
    result: Result<(), &'static str>,
    now: Instant,
    unix: u64,
) {
    let Some(link) = st.links.get_mut(&conn) else {
        // The link went meanwhile: give the claim back.
        if result.is_ok() {
            super::split::release(st, out, vec![sid]);
        }
        return;
    };
    if let Some(c) = st.clients.get_mut(&conn) {
        if c.wait == Some(Wait::Answer) {
            c.wait = None;
        }
    }
    let server = link.pending.take();
    match (result, server) {
        (Err(why), _) => {
            log::warn!("Link refused: {} sid={sid} ({why}) shard={}", link_name(st, conn), st.me);
            let _ = refuse(st, conn, why);
        }
        (Ok(()), Some(server)) if server.sid == sid && server.hop == 1 => up(st, out, conn, *server, now, unix),
        (Ok(()), Some(server)) if server.sid == sid => super::s2s::introduce_server(st, out, conn, *server),
        (Ok(()), _) => super::split::release(st, out, vec![sid]),
    }
    resume(st, out, conn, now, unix);
}

fn link_name(st: &ShardState, conn: Conn) -> String {
    st.links
        .get(&conn)
        .and_then(|l| {
            l.pending.as_ref().map(|s| s.name.to_string()).or_else(|| l.peer.as_ref().map(|p| p.1.to_string()))
        })
        .unwrap_or_else(|| "?".into())
}

/// The peer is accepted: it becomes part of the network; the acceptor answers the handshake;
/// both send SVINFO, the burst, a PING and EOB, without waiting for the peer's SVINFO (hybrid
/// does not wait either).
fn up(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, server: Server, now: Instant, unix: u64) {
    let (sid, me) = (server.sid, st.me);
    let Some(link) = st.links.get_mut(&conn) else { return };
    link.phase = Phase::Up;
    link.peer = Some((sid, server.name.as_ref().into()));
    let (outbound, block) = (link.outbound, link.block.unwrap_or(0));
    // The block's class gives the link its ping frequency and sendq (the class its address
    // matched was a client's).
    let class = st.cfg.links.get(block).and_then(|b| b.class);
    if let Some(c) = st.clients.get_mut(&conn) {
        c.registered = true;
        c.kind = Kind::Server;
        if let Some(k) = class {
            st.class_counts[c.class] -= 1;
            st.class_counts[k] += 1;
            c.class = k;
        }
    }
    if let Some(d) = st.dials.get_mut(&block) {
        // A link made: the next failure starts the backoff from its minimum again.
        d.backoff = std::time::Duration::ZERO;
    }
    let peer_addr = st.clients.get(&conn).map(|c| c.addr.to_string()).unwrap_or_default();
    log::info!(
        "Link established: {} [{}] sid={sid} shard={me} {}",
        server.name,
        peer_addr,
        if outbound { "outbound" } else { "inbound" }
    );
    crate::commands::oper::snotice::snotice(st, out, &format!("Link with {} established", server.name));
    if !outbound {
        let charybdis =
            st.links.get(&conn).is_some_and(|l| l.form == crate::local::link::Form::Charybdis || l.has_cap("EUID"));
        let hello = hello(st, block, charybdis);
        write(st, out, conn, &hello);
    }
    let svinfo = format!(":{} SVINFO {TS_CURRENT} {TS_CURRENT} 0 :{unix}\r\n", our_sid(st));
    write(st, out, conn, svinfo.as_bytes());
    burst::send(st, out, conn, sid, now);
    super::s2s::join_network(st, out, conn, server);
}

/// PASS, CAPAB and SERVER for the link of block `block` (the first lines each side sends).
/// PASS carries hybrid's old `TS 6 :<SID>` suffix: hybrid ignores it, other TS6 servers read it.
/// SERVER is hybrid's 5-parameter form, or the charybdis family's 3 (`charybdis`: the peer
/// spoke that family — its own 3-parameter SERVER, or `EUID` in its CAPAB: Anope's charybdis
/// module sends hybrid's form but takes only its own, exactly 3 parameters).
pub fn hello(st: &ShardState, block: usize, charybdis: bool) -> Vec<u8> {
    let cfg = &st.cfg;
    let mut b = Line::new()
        .verb("PASS")
        .param(&cfg.links[block].send_password)
        .param("TS")
        .param("6")
        .trailing(&cfg.server.sid)
        .finish();
    b.extend_from_slice(&Line::new().verb("CAPAB").trailing(CAPAB).finish());
    let server = Line::new().verb("SERVER").param(&cfg.server.name).param("1");
    let server = if charybdis { server } else { server.param(&cfg.server.sid).param("+") };
    b.extend_from_slice(&server.trailing(&cfg.server.description).finish());
    b
}

/// We opened a link (an outgoing link of block `block`): it is a server link from the start, and
/// we speak first.
#[allow(clippy::too_many_arguments)]
pub fn opened(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    conn: Conn,
    block: usize,
    peer: SocketAddr,
    now: Instant,
    unix: u64,
) {
    let class = st.cfg.class_for(&crate::local::client::display_ip(peer)).unwrap_or(0);
    st.class_counts[class] += 1;
    let uid = st.uids.allocate();
    let mut client = Box::new(Client::new(conn, uid, peer, class, now, unix));
    client.kind = Kind::Server;
    st.clients.insert(conn, client);
    st.links.insert(conn, Link::new(Some(block), true, now));
    log::info!("Link open: {} [{peer}] shard={}: handshake sent", st.cfg.links[block].name, st.me);
    // We speak first: hybrid's form (Atheme and Anope's hybrid module take it).
    let hello = hello(st, block, false);
    write(st, out, conn, &hello);
}

/// `SVINFO <current> <min> 0 :<time>`: the peer's TS version and clock, checked when it comes.
pub fn svinfo(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let conn = ctx.conn;
    let Ok(v) = ts6::parse_svinfo(msg) else {
        return refuse(ctx.st, conn, "Bad SVINFO");
    };
    if v.ts_current < TS_CURRENT || v.ts_min > TS_CURRENT {
        return refuse(ctx.st, conn, "Incompatible TS version");
    }
    let delta = v.now.abs_diff(ctx.unix);
    if delta > TS_MAX_DELTA {
        return refuse(ctx.st, conn, &format!("Excessive TS delta ({delta} seconds)"));
    }
    if delta > TS_WARN_DELTA {
        log::warn!("Link {}: clock differs from ours by {delta} seconds", link_name(ctx.st, conn));
    }
    Ok(())
}

/// `ERROR :<text>` from a peer: it is closing the link.
pub fn error(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let text = msg.param(0).unwrap_or("");
    log::warn!("Link {}: ERROR from the peer: {text}", link_name(ctx.st, ctx.conn));
    close_later(ctx.st, ctx.conn, format!("Remote ERROR: {text}"));
    Ok(())
}

/// Drops a link that is not (yet) part of the network: `ERROR :Closing Link: <ip> (<why>)`.
pub fn refuse(st: &mut ShardState, conn: Conn, why: &str) -> CmdResult {
    if let Some(c) = st.clients.get(&conn) {
        log::warn!("Link refused: [{}] shard={} reason={why}", c.addr, st.me);
    }
    close_later(st, conn, why.to_string());
    Ok(())
}

/// A new link's server, told to the other shards.
pub fn announce(st: &ShardState, out: &mut dyn Outbox, server: &Server) {
    crate::commands::delivery::broadcast(st, out, || Env::Ordered(Ordered::ServerIntro(Box::new(server.clone()))));
}
