//! WHOIS: `WHOIS [<server>] <nick>` — 311, 319, 312, 301, 313, 338, 317, 318. The idle time is
//! known only where the user's connection is, so for a user of another shard the whole answer
//! is made there and comes back as one block (the asker's further input waits meanwhile, so
//! its replies stay in order).

use std::time::Instant;

use super::super::capabilities::bits;
use super::super::envelope::Env;
use super::super::{numeric_line, CmdResult, Ctx};
use crate::commands::envelope::{Answer, Request};
use crate::local::client::Wait;
use crate::local::shard::ShardState;
use crate::proto::{Message, Numeric};
use crate::state::{Location, Uid, UserModes};

pub fn whois(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let target = if msg.params.len() >= 2 { msg.params[1] } else { msg.params[0] };
    let nick = target.split(',').next().unwrap_or("");
    let Some(u) = ctx.st.directory.by_nick(&ctx.st.cm.fold(nick)) else {
        ctx.reply(Numeric::ERR_NOSUCHNICK, &[nick]);
        ctx.reply(Numeric::RPL_ENDOFWHOIS, &[nick]);
        return Ok(());
    };
    let tuid = u.uid;
    let me = ctx.me().uid;
    // A user of another shard of this server is asked there (idle time, secure connection);
    // one here or behind a server link is answered from what this shard knows.
    match u.location {
        Location::Local(s) if s as usize != ctx.st.me => {
            let asker = ctx.me().target().to_string();
            let conn = ctx.conn;
            let metadata = ctx.me().caps & bits::METADATA != 0;
            let req = Request::Whois { conn, asker: me, asker_nick: asker.into(), target: tuid, metadata };
            ctx.out.to_shard(s as usize, Env::Request(req));
            ctx.me_mut().wait = Some(Wait::Answer);
        }
        // `WHOIS nick nick` of a user behind a link: its server answers (idle time and all).
        Location::Link(_) if msg.params.len() >= 2 => {
            let line = crate::proto::Line::new()
                .source(me.as_str())
                .verb("WHOIS")
                .param(tuid.as_str())
                .trailing(nick)
                .finish();
            let sid = crate::state::servers::Sid::of(&tuid);
            crate::commands::link::to_link(ctx.st, ctx.out, sid, line.into());
        }
        _ => {
            let asker = ctx.me().target().to_string();
            let lines = whois_lines(ctx.st, me, &asker, tuid, ctx.now);
            ctx.send(&lines);
        }
    }
    Ok(())
}

/// The WHOIS reply for `target`, addressed to `asker_nick`. Its metadata (760) only when the
/// asker is a client of this shard that negotiated the capability: the spec sends 760 to "a
/// user with the capability enabled" (as Ergo does); an asker behind a link is not shown them.
pub fn whois_lines(st: &ShardState, asker: Uid, asker_nick: &str, target: Uid, now: Instant) -> Vec<u8> {
    let metadata = st.local.get(&asker).and_then(|c| st.clients.get(c)).is_some_and(|c| c.caps & bits::METADATA != 0);
    whois_reply(st, asker, asker_nick, target, now, metadata)
}

/// The WHOIS reply, with the target's metadata when `metadata` (the asker has the capability).
fn whois_reply(st: &ShardState, asker: Uid, asker_nick: &str, target: Uid, now: Instant, metadata: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let server = st.cfg.server.name.as_str();
    let mut add = |n: Numeric, p: &[&str]| out.extend_from_slice(&numeric_line(server, asker_nick, n, p));
    let Some(u) = st.directory.get(&target) else {
        return out;
    };
    let nick = u.nick.to_string();
    add(Numeric::RPL_WHOISUSER, &[&nick, &u.user, &u.host, "*", &u.realname]);
    let chans: Vec<String> = u
        .channels
        .iter()
        .filter_map(|c| {
            let v = st.channels.get(c)?;
            let visible = !v.ch.is_secret() || v.ch.members.contains_key(&asker);
            visible.then(|| format!("{}{}", v.ch.status(&target).unwrap_or_default().prefix(), v.ch.name))
        })
        .collect();
    for chunk in chans.chunks(20) {
        add(Numeric::RPL_WHOISCHANNELS, &[&nick, &chunk.join(" ")]);
    }
    // A remote user's server, from the network map.
    match st.servers.get(&crate::state::servers::Sid::of(&target)) {
        Some(s) => add(Numeric::RPL_WHOISSERVER, &[&nick, &s.name, &s.desc]),
        None => add(Numeric::RPL_WHOISSERVER, &[&nick, server, &st.cfg.server.description]),
    }
    if let Some(a) = &u.away {
        add(Numeric::RPL_AWAY, &[&nick, a]);
    }
    if u.modes.has(UserModes::OPER) {
        add(Numeric::RPL_WHOISOPERATOR, &[&nick]);
    }
    if u.modes.has(UserModes::BOT) {
        add(Numeric::RPL_WHOISBOT, &[&nick]);
    }
    if let Some(account) = &u.account {
        add(Numeric::RPL_WHOISACCOUNT, &[&nick, account]);
    }
    if u.modes.has(UserModes::SECURE) {
        add(Numeric::RPL_WHOISSECURE, &[&nick]);
    }
    let asker_is_oper = st.directory.get(&asker).is_some_and(|a| a.modes.has(UserModes::OPER));
    if asker == target || asker_is_oper {
        add(Numeric::RPL_WHOISACTUALLY, &[&nick, &u.ip]);
    }
    if let Some(c) = st.local.get(&target).and_then(|c| st.clients.get(c)) {
        let idle = now.duration_since(c.last_spoke).as_secs().to_string();
        add(Numeric::RPL_WHOISIDLE, &[&nick, &idle, &c.signon.to_string()]);
    }
    if metadata {
        out.extend(crate::commands::metadata::whois_lines(st, server, asker_nick, target));
    }
    out.extend_from_slice(&numeric_line(server, asker_nick, Numeric::RPL_ENDOFWHOIS, &[&nick]));
    out
}

/// Another shard asks for the WHOIS of one of ours.
#[allow(clippy::too_many_arguments)]
pub fn on_request(
    st: &mut ShardState,
    out: &mut dyn super::super::Outbox,
    from: usize,
    conn: super::super::Conn,
    asker: Uid,
    asker_nick: &str,
    target: Uid,
    metadata: bool,
    now: Instant,
) {
    let mut lines = whois_reply(st, asker, asker_nick, target, now, metadata);
    if lines.is_empty() {
        // The user left meanwhile.
        let server = st.cfg.server.name.clone();
        lines.extend_from_slice(&numeric_line(&server, asker_nick, Numeric::ERR_NOSUCHNICK, &["*"]));
    }
    out.to_shard(from, Env::Answer(Answer::Replies { conn, bytes: lines }));
}
