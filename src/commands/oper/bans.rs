//! KLINE/UNKLINE and DLINE/UNDLINE:
//! `KLINE [<minutes>] <user@host> :<reason>`, `DLINE [<minutes>] <ip[/bits]> :<reason>`.
//! A ban goes to every shard at once (each enforces it on its own connections) and to the ban
//! file's writer ([`crate::persist::BanStore`]); the operator is answered once the change is
//! on disk, and so are the other operators' server notices.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use super::super::connection::close_later;
use super::super::delivery::broadcast;
use super::super::envelope::Env;
use super::super::outbox::{Conn, Outbox};
use super::super::{numeric_line, CmdResult, Ctx};
use super::snotice::snotice;
use crate::commands::envelope::{Answer, Control};
use crate::err;
use crate::local::client::{Held, Wait};
use crate::local::shard::ShardState;
use crate::persist::Change;
use crate::proto::{Line, Message, Numeric};
use crate::state::bans::{valid_dline, Ban, BanKind};

/// A shard's ban changes on their way to the ban file: one write at a time is under way
/// (`saving`); changes made meanwhile wait in `next` and go together in the following one.
#[derive(Default)]
pub struct Saves {
    pub saving: Vec<PendingSave>,
    pub next: Vec<PendingSave>,
}

/// A ban change, and what to say once it is on disk.
pub struct PendingSave {
    conn: Conn,
    change: Change,
    /// For the operator who made it, and for the server notice.
    ack: String,
    notice: String,
}

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
    broadcast(ctx.st, ctx.out, || Env::Control(Control::Ban(ban.clone())));
    let how_long = if minutes > 0 { format!("temporary ({minutes} min.)") } else { "permanent".into() };
    let text = format!("{who} added {how_long} {}-line for [{mask}] [{reason}]", kind.letter());
    log::info!("Ban: {text}");
    save_then_ack(ctx, Change::Add(ban), format!("Added {}-line [{mask}]", kind.letter()), text);
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
    if !existed {
        let text = format!("No {}-line for [{mask}]", kind.letter());
        let line = Line::new().source(ctx.server()).verb("NOTICE").param(&who).trailing(&text).finish();
        ctx.send(&line);
        return Ok(());
    }
    unapply(ctx.st, kind, &mask);
    broadcast(ctx.st, ctx.out, || Env::Control(Control::Unban { kind, mask: mask.clone() }));
    let text = format!("{who} removed {}-line for [{mask}]", kind.letter());
    log::info!("Unban: {text}");
    let ack = format!("{}-line for [{mask}] removed", kind.letter());
    save_then_ack(ctx, Change::Remove { kind, mask }, ack, text);
    Ok(())
}

/// The change is in force already; its acknowledgement waits until it is on disk. It joins
/// the shard's next write, and the client keeps a slot for the answer among its held replies.
fn save_then_ack(ctx: &mut Ctx<'_>, change: Change, ack: String, notice: String) {
    let conn = ctx.conn;
    ctx.st.ban_saves.next.push(PendingSave { conn, change, ack, notice });
    let c = ctx.me_mut();
    match &mut c.wait {
        Some(Wait::Saving { held }) => held.push_back(Held::Ban),
        _ => c.wait = Some(Wait::Saving { held: Box::new(VecDeque::from([Held::Ban])) }),
    }
}

/// Starts the shard's next write of ban changes unless one is under way (called at the end of
/// every event): whatever was changed meanwhile goes in one write.
pub fn save_queued(st: &mut ShardState, out: &mut dyn Outbox) {
    let saves = &mut st.ban_saves;
    if !saves.saving.is_empty() || saves.next.is_empty() {
        return;
    }
    saves.saving = std::mem::take(&mut saves.next);
    let changes: Vec<Change> = saves.saving.iter().map(|p| p.change.clone()).collect();
    let (store, dir) = (st.ban_store.clone(), st.cfg.server.data_dir.clone());
    // Off the event loop: the write waits for the disk, and perhaps for another shard's write.
    out.blocking(Box::new(move || {
        Env::Answer(Answer::BansSaved { result: store.map_or(Ok(()), |s| s.save(&dir, changes)) })
    }));
}

/// The shard's write is done: each change's operator gets the answer, the others the notice.
/// A failed write leaves the change in force but not on disk; the operator is told so.
pub fn saved(st: &mut ShardState, out: &mut dyn Outbox, result: Result<(), String>, now: Instant, unix: u64) {
    for p in std::mem::take(&mut st.ban_saves.saving) {
        let (ack, notice) = match &result {
            Ok(()) => (p.ack, p.notice),
            Err(e) => (
                format!("{}: active but NOT saved to the ban file ({e}); a restart would undo it", p.ack),
                format!("{} (NOT saved: {e})", p.notice),
            ),
        };
        snotice(st, out, &notice);
        answer(st, out, p.conn, &ack, now, unix);
    }
}

/// Fills the client's first waiting ban slot, sends what is ready up to the next slot still
/// waiting, and lets the client go on once nothing is held.
fn answer(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, text: &str, now: Instant, unix: u64) {
    let server = st.cfg.server.name.clone();
    let Some(c) = st.clients.get_mut(&conn) else { return };
    let nick = c.target().to_string();
    let Some(Wait::Saving { held }) = &mut c.wait else { return };
    if let Some(slot) = held.iter_mut().find(|h| **h == Held::Ban) {
        *slot = Held::Bytes(Line::new().source(&server).verb("NOTICE").param(&nick).trailing(text).finish());
    }
    let mut ready = Vec::new();
    while let Some(Held::Bytes(b)) = held.front_mut() {
        ready.append(b);
        held.pop_front();
    }
    let done = held.is_empty();
    if done {
        c.wait = None;
    }
    super::super::delivery::deliver(st, out, conn, &ready);
    if done {
        super::super::connection::resume(st, out, conn, now, unix);
    }
}

/// Whether a raw line is KLINE, DLINE, UNKLINE or UNDLINE, without tags (a tagged command may
/// carry a label, which must not join a running burst).
pub fn is_ban_command(line: &[u8]) -> bool {
    let Some(msg) = std::str::from_utf8(line).ok().and_then(|l| crate::proto::Message::parse(l).ok()) else {
        return false;
    };
    msg.tags.is_none() && ["KLINE", "DLINE", "UNKLINE", "UNDLINE"].iter().any(|k| msg.verb.eq_ignore_ascii_case(k))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Oper};
    use crate::sim::Sim;

    #[test]
    fn replies_keep_their_order_while_ban_changes_are_saved() {
        let mut cfg = Config::embedded();
        cfg.opers.push(Oper {
            name: "boss".into(),
            password: "pw".into(),
            allow_plaintext: true,
            hosts: vec!["*@*".into()],
            privileges: vec!["kline".into()],
        });
        let mut sim = Sim::new(Arc::new(cfg), 2, true);
        let op = sim.client(0, "op");
        sim.feed(0, op, b"OPER boss pw\r\n");
        let before = sim.text(0, op).len();
        // Ban commands run while earlier ones are saved; the PING waits, and so does the
        // KLINE queued behind it.
        let burst = b"KLINE *@a :x\r\nKLINE a@b@c :x\r\nUNKLINE *@a\r\nPING :p\r\nKLINE *@c :x\r\n";
        let (st, out) = &mut sim.shards[0];
        crate::commands::connection::data(st, out, op, burst, Instant::now(), 1);
        crate::commands::connection::finish(st, out);
        assert_eq!(&sim.text(0, op)[before..], "", "nothing before the write is done");
        sim.pump();
        let text = sim.text(0, op)[before..].to_string();
        let order = ["Added K-line [*@a]", " 461 ", "K-line for [*@a] removed", "PONG", "Added K-line [*@c]"];
        let at: Vec<usize> = order.iter().map(|s| text.find(s).unwrap_or_else(|| panic!("{s} in {text}"))).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(sim.shards[0].0.clients[&op].wait.is_none());
    }

    #[test]
    fn ban_commands_are_told_from_other_lines() {
        assert!(is_ban_command(b"KLINE *@x :r"));
        assert!(is_ban_command(b":op undline 1.2.3.4"));
        assert!(!is_ban_command(b"@label=1 KLINE *@x :r"));
        assert!(!is_ban_command(b"PRIVMSG #c :KLINE"));
        assert!(!is_ban_command(b""));
    }
}
