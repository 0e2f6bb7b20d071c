//! OPER: `OPER <name> <password>` — 381 and +o on success; 491 when no oper block fits the
//! name and host, or the address spent its budget of checks; 464 for a wrong password. The
//! password hash is checked (`crate::password`) on a blocking thread (argon2 is slow on purpose
//! and memory-hungry: see `limit`); the client's further input waits for the answer.

use super::super::connection::close_later;
use super::super::delivery::broadcast;
use super::super::envelope::Env;
use super::super::outbox::{Conn, Outbox};
use super::super::{CmdResult, Ctx};
use super::limit::{self, Check, Spend};
use super::snotice::snotice;
use crate::commands::envelope::{Answer, Ordered};
use crate::err;
use crate::local::client::Wait;
use crate::local::shard::ShardState;
use crate::proto::{mask, CaseMapping, Line, Message, Numeric};
use crate::state::UserModes;

pub fn oper(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let (name, password) = (msg.params[0], msg.params.get(1).copied().unwrap_or(""));
    if msg.params.len() < 2 {
        return Err(err!(ERR_NEEDMOREPARAMS, "OPER"));
    }
    let uid = ctx.me().uid;
    let Some(u) = ctx.st.directory.get(&uid) else { return Ok(()) };
    let (userhost, userip) = (format!("{}@{}", u.user, u.host), format!("{}@{}", u.user, u.ip));
    let block = ctx.st.cfg.opers.iter().find(|o| o.name == name).filter(|o| {
        o.hosts
            .iter()
            .any(|h| mask::matches(CaseMapping::Ascii, h, &userhost) || mask::matches(CaseMapping::Ascii, h, &userip))
    });
    let Some(block) = block else {
        let text = format!("Failed OPER attempt as {name} by {} ({userhost}): no matching oper block", u.nick);
        log::warn!("Oper failed: {text}");
        snotice(ctx.st, ctx.out, &text);
        return Err(err!(ERR_NOOPERHOST));
    };
    let (hash, plain_ok) = (block.password.clone(), block.allow_plaintext);
    let nick = u.nick.clone();
    let ip = ctx.me().addr.ip();
    if let Spend::Refused { first } = ctx.st.oper_limit.spend(ip, ctx.now) {
        if first {
            let text = format!("OPER from [{ip}] refused: too many failed attempts (by {nick} as {name})");
            log::warn!("Oper failed: {text}");
            snotice(ctx.st, ctx.out, &text);
        }
        failed(ctx);
        return Err(err!(ERR_NOOPERHOST));
    }
    let check = Check { conn: ctx.conn, name: name.to_string(), hash, password: password.to_string(), plain_ok };
    ctx.me_mut().wait = Some(Wait::Answer);
    if let Some(check) = ctx.st.oper_limit.enqueue(check) {
        start(ctx.out, check);
    }
    Ok(())
}

/// Runs a check on a blocking thread, behind the process-wide gate.
fn start(out: &mut dyn Outbox, c: Check) {
    out.blocking(Box::new(move || {
        let ok = limit::gated(|| crate::password::check(&c.hash, &c.password, c.plain_ok));
        Env::Answer(Answer::OperChecked { conn: c.conn, name: c.name, ok })
    }));
}

/// One more wrong or refused attempt of the running client; the last one allowed closes it.
fn failed(ctx: &mut Ctx<'_>) {
    let c = ctx.me_mut();
    let r = c.rare_mut();
    r.oper_failures = r.oper_failures.saturating_add(1);
    if r.oper_failures >= limit::MAX_CLIENT_FAILURES {
        let conn = ctx.conn;
        close_later(ctx.st, conn, "Too many failed OPER attempts");
    }
}

/// The password check came back.
pub fn checked(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    conn: Conn,
    name: String,
    ok: bool,
    now: std::time::Instant,
    unix: u64,
) {
    if let Some(next) = st.oper_limit.next(|c| st.clients.get(&c).is_some_and(|c| !c.closing)) {
        start(out, next);
    }
    let Some(c) = st.clients.get_mut(&conn) else { return };
    if c.wait == Some(Wait::Answer) {
        c.wait = None;
    }
    let (uid, ip) = (c.uid, c.addr.ip());
    let mut ctx = Ctx { st, out, conn, now, unix };
    let who = ctx.st.directory.get(&uid).map(|u| format!("{} ({}@{})", u.nick, u.user, u.host)).unwrap_or_default();
    if !ok {
        ctx.reply(Numeric::ERR_PASSWDMISMATCH, &[]);
        let text = format!("Failed OPER attempt as {name} by {who}: wrong password");
        log::warn!("Oper failed: {text}");
        snotice(ctx.st, ctx.out, &text);
        failed(&mut ctx);
    } else {
        ctx.st.oper_limit.refund(ip);
        ctx.me_mut().rare_mut().oper = Some(name.clone());
        let before = ctx.st.directory.get(&uid).map(|u| u.modes).unwrap_or_default();
        let mut modes = before;
        modes.set(UserModes::OPER, true);
        modes.set(UserModes::SNOTICE, true);
        modes.set(UserModes::WALLOPS, true);
        ctx.st.directory.set_modes(&uid, modes);
        crate::commands::link::relay::umodes(ctx.st, ctx.out, uid, before, modes);
        ctx.st.snotice_targets = None;
        let ack = Some(conn);
        broadcast(ctx.st, ctx.out, || Env::Ordered(Ordered::UserModes { uid, modes, ack }));
        let nick = ctx.me().target().to_string();
        let mut added = String::from("+");
        for (c, m) in UserModes::TABLE {
            if modes.has(m) && !before.has(m) {
                added.push(c);
            }
        }
        let line = Line::new().source(&nick).verb("MODE").param(&nick).trailing(&added).finish();
        ctx.send(&line);
        ctx.reply(Numeric::RPL_YOUREOPER, &[]);
        // Shown once every shard knows the user is an operator (WHOIS 313 anywhere at once).
        let held = std::mem::take(&mut ctx.st.reply);
        super::super::registration::hold_until_applied(&mut ctx, held);
        log::info!("Oper up: {who} as {name}");
        snotice(ctx.st, ctx.out, &format!("{who} is now an operator ({name})"));
    }
    ctx.flush();
    super::super::connection::resume(st, out, conn, now, unix);
}
