//! MONITOR (IRCv3): `MONITOR + targets`, `- targets`, `C`, `L`, `S`; 730/731 when watched nicks
//! come and go. Every shard sees every arrival and departure, so it notifies its own watchers.

use super::super::delivery::to_conn;
use super::super::outbox::{Conn, Outbox};
use super::super::{numeric_line, CmdResult, Ctx};
use crate::err;
use crate::local::shard::ShardState;
use crate::proto::{Folded, Message, Numeric};

pub fn monitor(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let sub = msg.params[0];
    let conn = ctx.conn;
    match sub {
        "+" => {
            let Some(targets) = msg.param(1) else { return Err(err!(ERR_NEEDMOREPARAMS, "MONITOR")) };
            let max = ctx.st.cfg.limits.monitor;
            let (mut online, mut offline) = (Vec::new(), Vec::new());
            let list: Vec<&str> = targets.split(',').filter(|t| !t.is_empty()).collect();
            for (i, nick) in list.iter().enumerate() {
                let f = ctx.st.cm.fold(nick);
                if ctx.me().rare().monitor.contains(&f) {
                    continue;
                }
                if ctx.me().rare().monitor.len() >= max {
                    let rest = list[i..].join(",");
                    ctx.reply(Numeric::ERR_MONLISTFULL, &[&max.to_string(), &rest]);
                    break;
                }
                ctx.me_mut().rare_mut().monitor.push(f.clone());
                ctx.st.monitors.entry(f.clone()).or_default().push(conn);
                match ctx.st.directory.by_nick(&f) {
                    Some(u) => online.push(u.mask()),
                    None => offline.push(nick.to_string()),
                }
            }
            if !online.is_empty() {
                ctx.reply(Numeric::RPL_MONONLINE, &[&online.join(",")]);
            }
            if !offline.is_empty() {
                ctx.reply(Numeric::RPL_MONOFFLINE, &[&offline.join(",")]);
            }
        }
        "-" => {
            let Some(targets) = msg.param(1) else { return Err(err!(ERR_NEEDMOREPARAMS, "MONITOR")) };
            for nick in targets.split(',').filter(|t| !t.is_empty()) {
                let f = ctx.st.cm.fold(nick);
                if let Some(r) = ctx.me_mut().rare_if_any() {
                    r.monitor.retain(|x| x != &f);
                }
                unwatch(ctx.st, &f, conn);
            }
        }
        "C" | "c" => {
            let list = ctx.me_mut().rare_if_any().map(|r| std::mem::take(&mut r.monitor)).unwrap_or_default();
            for f in &list {
                unwatch(ctx.st, f, conn);
            }
        }
        "L" | "l" => {
            let list: Vec<String> = ctx.me().rare().monitor.iter().map(|f| f.to_string()).collect();
            for chunk in list.chunks(20) {
                ctx.reply(Numeric::RPL_MONLIST, &[&chunk.join(",")]);
            }
            ctx.reply(Numeric::RPL_ENDOFMONLIST, &[]);
        }
        "S" | "s" => {
            let (mut online, mut offline) = (Vec::new(), Vec::new());
            for f in ctx.me().rare().monitor.clone() {
                match ctx.st.directory.by_nick(&f) {
                    Some(u) => online.push(u.mask()),
                    None => offline.push(f.to_string()),
                }
            }
            if !online.is_empty() {
                ctx.reply(Numeric::RPL_MONONLINE, &[&online.join(",")]);
            }
            if !offline.is_empty() {
                ctx.reply(Numeric::RPL_MONOFFLINE, &[&offline.join(",")]);
            }
        }
        _ => return Err(err!(ERR_UNKNOWNCOMMAND, "MONITOR")),
    }
    Ok(())
}

pub fn unwatch(st: &mut ShardState, f: &Folded, conn: Conn) {
    if let Some(v) = st.monitors.get_mut(f) {
        v.retain(|c| *c != conn);
        if v.is_empty() {
            st.monitors.remove(f);
        }
    }
}

fn notify(st: &mut ShardState, out: &mut dyn Outbox, f: &Folded, n: Numeric, what: &str) {
    let Some(watchers) = st.monitors.get(f).cloned() else { return };
    for conn in watchers {
        let Some(c) = st.clients.get(&conn) else { continue };
        let line = numeric_line(&st.cfg.server.name, c.target(), n, &[what]);
        to_conn(st, out, conn, &line);
    }
}

/// Whether anyone here watches `f` (a burst introduces thousands of users: their masks are
/// only formatted for a MONITOR notice when someone is watching).
pub fn watched(st: &ShardState, f: &Folded) -> bool {
    st.monitors.contains_key(f)
}

/// A watched nick came online (`mask` is its nick!user@host).
pub fn notify_online(st: &mut ShardState, out: &mut dyn Outbox, f: &Folded, mask: &str) {
    notify(st, out, f, Numeric::RPL_MONONLINE, mask);
}

pub fn notify_offline(st: &mut ShardState, out: &mut dyn Outbox, f: &Folded, nick: &str) {
    notify(st, out, f, Numeric::RPL_MONOFFLINE, nick);
}
