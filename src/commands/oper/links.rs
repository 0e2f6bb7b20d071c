//! Operator commands for server links (docs/ts6 §7):
//!
//! - `CONNECT <server> [<port>]`: dials the `[[links]]` block of that name now, from the shard
//!   that dials it (`link::dial::dialer`; another shard gets `Control::Connect`).
//! - `SQUIT <server> [:<reason>]`: a direct peer's link is closed by the shard holding it, which
//!   first tells the peer `:<oper UID> SQUIT <our SID> :<reason>` (as hybrid does: "to them, we
//!   are exiting"); the split then reaches the other links as `:<oper UID> SQUIT <peer SID>`. A
//!   server further away gets `:<oper UID> SQUIT <SID> :<reason>` routed toward it, and the
//!   server next to it closes that link (its SQUIT comes back as the split).
//!
//! Both need the `connect` or `squit` privilege; the answers are NOTICEs, as on hybrid.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::super::envelope::{Control, Env};
use super::super::outbox::Outbox;
use super::super::outgoing::Shared;
use super::super::{CmdResult, Ctx};
use super::snotice::snotice;
use crate::commands::link::{self, dial};
use crate::err;
use crate::local::shard::ShardState;
use crate::proto::{Line, Message};
use crate::state::servers::Sid;
use crate::state::Uid;

/// Tells the running client a line of NOTICE text.
fn notice(ctx: &mut Ctx<'_>, text: &str) {
    let target = ctx.me().target().to_string();
    let line = Line::new().source(ctx.server()).verb("NOTICE").param(&target).trailing(text).finish();
    ctx.send(&line);
}

/// Tells an operator (on any shard) a line of NOTICE text.
fn tell(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, text: &str, now: Instant) {
    let Some(nick) = st.directory.get(&uid).map(|u| u.nick.clone()) else { return };
    let line = Line::new().source(&st.cfg.server.name).verb("NOTICE").param(&nick).trailing(text).finish();
    crate::commands::delivery::to_user(st, out, uid, &Shared::plain(line.into()), 0, now);
}

/// The operator as server notices name them: `nick!user@host{block}`.
fn who(ctx: &Ctx<'_>) -> String {
    let me = ctx.me();
    let mask = ctx.st.directory.get(&me.uid).map_or_else(|| me.target().to_string(), |u| u.mask());
    format!("{mask}{{{}}}", me.rare().oper.as_deref().unwrap_or("?"))
}

/// Whether `name` is this server (by name or SID).
fn is_us(st: &ShardState, name: &str) -> bool {
    name == st.cfg.server.sid || name.eq_ignore_ascii_case(&st.cfg.server.name)
}

/// `CONNECT <server> [<port> [<remote server>]]`.
pub fn connect(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    super::require(ctx, "connect")?;
    let wanted = msg.params[0];
    if let Some(remote) = msg.param(2).filter(|r| !is_us(ctx.st, r)) {
        // Asking another server to connect somewhere: not supported (hybrid's `connect:remote`).
        return Err(err!(ERR_NOSUCHSERVER, remote));
    }
    let cfg = ctx.st.cfg.clone();
    let cm = ctx.st.cm;
    let found = cfg
        .links
        .iter()
        .position(|l| l.name.eq_ignore_ascii_case(wanted))
        .or_else(|| cfg.links.iter().position(|l| crate::proto::mask::matches(cm, wanted, &l.name)));
    let Some(block) = found else {
        notice(ctx, &format!("Connect: Host {wanted} not listed in the configuration"));
        return Ok(());
    };
    let l = &cfg.links[block];
    if let Some(s) = ctx.st.servers.by_name(&l.name) {
        let via = ctx.st.servers.get(&s.via).map_or_else(|| s.via.to_string(), |v| v.name.to_string());
        notice(ctx, &format!("Connect: Server {} already present from {via}", l.name));
        return Ok(());
    }
    let Some(mut addr) = l.address else {
        notice(ctx, &format!("Connect: {} has no address: it connects to us", l.name));
        return Ok(());
    };
    if let Some(p) = msg.param(1).filter(|p| !p.is_empty()) {
        match p.parse::<u16>() {
            Ok(port) if port > 0 => addr.set_port(port),
            _ => {
                notice(ctx, &format!("Connect: Illegal port number {p}"));
                return Ok(());
            }
        }
    }
    let (oper, by) = (who(ctx), ctx.me().uid);
    notice(ctx, &format!("Connecting to {}[{}].{}", l.name, addr.ip(), addr.port()));
    snotice(ctx.st, ctx.out, &format!("Connect '{}' {} from {oper}", l.name, addr.port()));
    log::info!("Connect: {} [{addr}] requested by {oper}", l.name);
    let shard = dial::dialer(ctx.st, block);
    if shard == ctx.st.me {
        connect_here(ctx.st, ctx.out, &l.name, addr, by, ctx.now);
    } else {
        ctx.out.to_shard(shard, Env::Control(Control::Connect { name: l.name.as_str().into(), addr, by }));
    }
    Ok(())
}

/// The dialing shard: opens the link of block `name` to `addr` now, unless one is up or being
/// made (the operator `by` is told so).
pub fn connect_here(st: &mut ShardState, out: &mut dyn Outbox, name: &str, addr: SocketAddr, by: Uid, now: Instant) {
    let Some(block) = st.cfg.links.iter().position(|l| l.name == name) else {
        // The block went in a REHASH meanwhile.
        return tell(st, out, by, &format!("Connect: Host {name} not listed in the configuration"), now);
    };
    let dialing = st.dials.get(&block).is_some_and(|d| d.conn.is_some());
    if dialing || dial::linked(st, block) {
        log::info!("Connect: {name}: a link is already up or being made");
        return tell(st, out, by, &format!("Connect: a link to {name} is already up or being made"), now);
    }
    dial::connect(st, out, block, addr, now);
}

/// `SQUIT <server> [:<reason>]`.
pub fn squit(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    super::require(ctx, "squit")?;
    let wanted = msg.params[0];
    if is_us(ctx.st, wanted) {
        notice(ctx, "SQUIT: you cannot SQUIT this server (use DIE)");
        return Ok(());
    }
    let cm = ctx.st.cm;
    let found = ctx.st.servers.find(wanted).or_else(|| {
        let mut matching: Vec<_> =
            ctx.st.servers.iter().filter(|s| crate::proto::mask::matches(cm, wanted, &s.name)).collect();
        matching.sort_by_key(|s| (s.hop, s.sid));
        matching.first().copied()
    });
    let Some(server) = found else {
        return Err(err!(ERR_NOSUCHSERVER, wanted));
    };
    let (sid, name, shard, hop) = (server.sid, server.name.clone(), server.shard as usize, server.hop);
    let oper = who(ctx);
    let reason: Arc<str> = msg.param(1).filter(|r| !r.is_empty()).unwrap_or(ctx.me().target()).into();
    let by = ctx.me().uid;
    let what = if hop == 1 { "Received SQUIT" } else { "Remote SQUIT" };
    snotice(ctx.st, ctx.out, &format!("{what} {name} from {oper} ({reason})"));
    log::info!("Squit: {name} ({sid}) by {oper} ({reason})");
    if shard == ctx.st.me {
        squit_here(ctx.st, ctx.out, sid, &reason, by);
    } else {
        ctx.out.to_shard(shard, Env::Control(Control::Squit { sid, reason, by }));
    }
    Ok(())
}

/// The shard holding the link toward `sid`: closes it if `sid` is its peer, else routes the
/// SQUIT toward `sid`.
pub fn squit_here(st: &mut ShardState, out: &mut dyn Outbox, sid: Sid, reason: &str, by: Uid) {
    if let Some(&conn) = st.peers.get(&sid) {
        let us = link::our_sid(st).to_string();
        let line = Line::new().source(by.as_str()).verb("SQUIT").param(&us).trailing(reason).finish();
        link::write(st, out, conn, &line);
        if let Some(l) = st.links.get_mut(&conn) {
            l.squit_by = Some(by);
        }
        crate::commands::connection::close_later(st, conn, reason);
        return;
    }
    match link::link_toward(st, sid) {
        Some(conn) => {
            let line = Line::new().source(by.as_str()).verb("SQUIT").param(sid.as_str()).trailing(reason).finish();
            link::write(st, out, conn, &line);
        }
        // The server left meanwhile.
        None => log::info!("Squit: {sid} is no longer behind a link of shard {}", st.me),
    }
}
