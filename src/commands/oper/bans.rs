//! KLINE/UNKLINE and DLINE/UNDLINE:
//! `KLINE [<minutes>] <user@host> :<reason>`, `DLINE [<minutes>] <ip[/bits]> :<reason>`.
//! A ban goes to every shard at once (each enforces it on its own connections) and to the main
//! thread, which keeps the ban file (written atomically).

use std::sync::Arc;

use super::super::connection::close_later;
use super::super::delivery::broadcast;
use super::super::envelope::{Env, ToMain};
use super::super::outbox::Outbox;
use super::super::{numeric_line, CmdResult, Ctx};
use super::snotice::snotice;
use crate::err;
use crate::proto::{Line, Message, Numeric};
use crate::state::bans::{valid_dline, Ban, BanKind};
use crate::state::shard::ShardState;

pub fn kline(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    add(ctx, msg, BanKind::K)
}

pub fn dline(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    add(ctx, msg, BanKind::D)
}

pub fn unkline(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    remove(ctx, msg, BanKind::K)
}

pub fn undline(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    remove(ctx, msg, BanKind::D)
}

fn privilege(kind: BanKind) -> &'static str {
    match kind {
        BanKind::K => "kline",
        BanKind::D => "dline",
    }
}

fn command(kind: BanKind) -> &'static str {
    match kind {
        BanKind::K => "KLINE",
        BanKind::D => "DLINE",
    }
}

fn add(ctx: &mut Ctx<'_>, msg: &Message<'_>, kind: BanKind) -> CmdResult {
    super::require(ctx, privilege(kind))?;
    let mut params = msg.params.iter().copied();
    let mut first = params.next().unwrap_or("");
    let mut minutes = 0u64;
    if let Ok(m) = first.parse::<u64>() {
        minutes = m;
        first = params.next().unwrap_or("");
    }
    let reason = params.next().filter(|r| !r.is_empty()).unwrap_or("No reason given");
    let mask = match kind {
        BanKind::K => {
            let m = if first.contains('@') { first.to_string() } else { format!("*@{first}") };
            if first.is_empty() || m.contains(' ') || m.matches('@').count() != 1 {
                return Err(err!(ERR_NEEDMOREPARAMS, command(kind)));
            }
            m
        }
        BanKind::D => {
            if !valid_dline(first) {
                return Err(err!(ERR_NEEDMOREPARAMS, command(kind)));
            }
            first.to_string()
        }
    };
    let who = ctx.me().target().to_string();
    let ban = Ban {
        kind,
        mask: mask.clone().into(),
        reason: reason.into(),
        setter: who.as_str().into(),
        set_at: ctx.unix,
        expires: if minutes > 0 { ctx.unix + minutes * 60 } else { 0 },
    };
    apply(ctx.st, ctx.out, ban.clone());
    broadcast(ctx.st, ctx.out, || Env::Ban(ban.clone()));
    ctx.out.to_main(ToMain::BanAdded(ban));
    let how_long = if minutes > 0 { format!("temporary ({minutes} min.)") } else { "permanent".into() };
    let text = format!("{who} added {how_long} {}-line for [{mask}] [{reason}]", kind.letter());
    log::info!("Ban: {text}");
    snotice(ctx.st, ctx.out, &text);
    let line = Line::new()
        .source(ctx.server())
        .verb("NOTICE")
        .param(&who)
        .trailing(&format!("Added {}-line [{mask}]", kind.letter()))
        .finish();
    ctx.send(&line);
    Ok(())
}

fn remove(ctx: &mut Ctx<'_>, msg: &Message<'_>, kind: BanKind) -> CmdResult {
    super::require(ctx, privilege(kind))?;
    let raw = msg.params[0];
    let mask: Arc<str> = match kind {
        BanKind::K if !raw.contains('@') => format!("*@{raw}").into(),
        _ => raw.into(),
    };
    let who = ctx.me().target().to_string();
    let existed = ctx.st.bans.iter().any(|b| b.kind == kind && b.mask.eq_ignore_ascii_case(&mask));
    let text = if existed {
        unapply(ctx.st, kind, &mask);
        broadcast(ctx.st, ctx.out, || Env::Unban { kind, mask: mask.clone() });
        ctx.out.to_main(ToMain::BanRemoved { kind, mask: mask.clone() });
        let text = format!("{who} removed {}-line for [{mask}]", kind.letter());
        log::info!("Unban: {text}");
        snotice(ctx.st, ctx.out, &text);
        format!("{}-line for [{mask}] removed", kind.letter())
    } else {
        format!("No {}-line for [{mask}]", kind.letter())
    };
    let line = Line::new().source(ctx.server()).verb("NOTICE").param(&who).trailing(&text).finish();
    ctx.send(&line);
    Ok(())
}

/// Adds a ban on this shard and closes this shard's connections it covers.
pub fn apply(st: &mut ShardState, out: &mut dyn Outbox, ban: Ban) {
    st.bans.retain(|b| !(b.kind == ban.kind && b.mask.eq_ignore_ascii_case(&ban.mask)));
    let server = st.cfg.server.name.clone();
    let mut hit = Vec::new();
    for (conn, c) in st.clients.iter() {
        if c.closing {
            continue;
        }
        let covered = match ban.kind {
            BanKind::D => ban.matches_ip(c.addr.ip()),
            BanKind::K => c.user.as_ref().is_some_and(|(u, _)| ban.matches_user(u, &c.host, &c.ip)),
        };
        if covered {
            hit.push((*conn, c.target().to_string()));
        }
    }
    let what = if ban.kind == BanKind::K { "K-lined" } else { "D-lined" };
    for (conn, nick) in hit {
        let line = numeric_line(&server, &nick, Numeric::ERR_YOUREBANNEDCREEP, &[]);
        out.send(conn, &line);
        close_later(st, conn, format!("{what}: {}", ban.reason));
    }
    st.bans.push(ban);
}

pub fn unapply(st: &mut ShardState, kind: BanKind, mask: &str) {
    st.bans.retain(|b| !(b.kind == kind && b.mask.eq_ignore_ascii_case(mask)));
}

/// The ban covering a user about to register, if any (K-lines).
pub fn kline_for<'a>(st: &'a ShardState, user: &str, host: &str, ip: &str, now: u64) -> Option<&'a Ban> {
    st.bans.iter().find(|b| b.live(now) && b.matches_user(user, host, ip))
}

/// The ban covering a new connection from `ip`, if any (D-lines).
pub fn dline_for(st: &ShardState, ip: std::net::IpAddr, now: u64) -> Option<&Ban> {
    st.bans.iter().find(|b| b.live(now) && b.matches_ip(ip))
}
