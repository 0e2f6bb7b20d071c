//! Services commands (docs/ts6 §4.1), obeyed only from the servers `[server] services` names
//! (hybrid's `service {}` block); from any other server they are logged and dropped. Accounts
//! set by services show in WHOIS (330), `account-notify`, `account-tag` and `extended-join`.
//! Forced changes (SVSNICK, SVSJOIN, SVSPART) run on the user's own shard as if the user had
//! sent the command, so they take the ordinary paths (nick claims, channel homes, links).

use std::sync::Arc;

use super::s2s::{source, Source};
use super::{is_service, to_all_links};
use crate::commands::delivery::broadcast;
use crate::commands::envelope::{Control, Env, Ordered};
use crate::commands::outbox::Outbox;
use crate::commands::{CmdResult, Ctx};
use crate::local::shard::ShardState;
use crate::proto::{Line, Message};
use crate::state::servers::Sid;
use crate::state::{Location, Uid, UserModes};

/// The line's source when it is a services server (or one of its pseudo-clients).
fn from_services(ctx: &Ctx<'_>, msg: &Message<'_>) -> Option<Sid> {
    let sid = match source(ctx, msg)? {
        Source::Server(s) => s,
        Source::User(u) => Sid::of(&u),
    };
    let name = ctx.st.servers.get(&sid)?.name.clone();
    if is_service(ctx.st, &name) {
        Some(sid)
    } else {
        log::info!("Services command {} from {name}, not a [server] services server: dropped", msg.verb);
        None
    }
}

/// The target user and whether the TS in the line (0: any) is its nick TS.
fn target(ctx: &Ctx<'_>, msg: &Message<'_>) -> Option<Uid> {
    let uid = Uid::parse(msg.params[0])
        .or_else(|| ctx.st.directory.by_nick(&ctx.st.cm.fold(msg.params[0])).map(|u| u.uid))?;
    let u = ctx.st.directory.get(&uid)?;
    let ts: u64 = msg.param(1).and_then(|t| t.parse().ok()).unwrap_or(0);
    (ts == 0 || ts == u.nick_ts).then_some(uid)
}

/// The line as received, for the other links (each server applies services' changes itself).
fn pass_on(ctx: &mut Ctx<'_>, msg: &Message<'_>) {
    let except = ctx.st.links.get(&ctx.conn).and_then(|l| l.sid());
    to_all_links(ctx.st, ctx.out, except, super::s2s::relayed(msg));
}

/// `:<S> SVSACCOUNT <UID> <ts> <account|*>`.
pub fn svsaccount(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    if from_services(ctx, msg).is_none() {
        return Ok(());
    }
    let Some(uid) = target(ctx, msg) else { return Ok(()) };
    let account = msg.param(2).filter(|a| *a != "*" && !a.is_empty()).map(Arc::<str>::from);
    pass_on(ctx, msg);
    account_changed(ctx.st, ctx.out, uid, account);
    Ok(())
}

/// The direct rustircd (`MTAGS`) peer on this link, when it speaks for itself: the only one
/// heard on channel history (`history::sync`).
fn history_peer(ctx: &Ctx<'_>, src: Source) -> Option<Sid> {
    let Source::Server(sid) = src else { return None };
    let link = ctx.st.links.get(&ctx.conn).and_then(|l| l.sid())?;
    (sid == link && ctx.st.servers.get(&sid).is_some_and(|s| s.tags)).then_some(sid)
}

/// `:<S or U> ENCAP <mask> <subcommand> [args...]` (solanum's ts6 doc). A mask naming one
/// server (no wildcard) goes only toward that server — SASL exchanges carry passwords and must
/// not reach every server — and is acted on only there; a wildcard mask is passed on to every
/// other link as received. Acted on here when the mask matches our name and the subcommand is
/// one we know — the charybdis family's account and host changes:
/// - `ENCAP * SU <UID> [<account>]` from services: logged in (or out, without an account);
/// - `ENCAP * LOGIN <account>` from a user's own server (in its burst): that user's account;
/// - `ENCAP * CHGHOST <UID> <host>` from services: its shown host (as SVSHOST);
/// - `ENCAP * REALHOST <host>`: accepted and not kept (the real host is not shown here).
///
/// Anything else is only passed on.
pub fn encap(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(src) = source(ctx, msg) else { return Ok(()) };
    let mask = msg.params[0];
    let me = ctx.st.cfg.server.name.clone();
    if mask.contains(['*', '?']) {
        pass_on(ctx, msg);
        if !crate::proto::mask::matches(ctx.st.cm, mask, &me) {
            return Ok(());
        }
    } else if !mask.eq_ignore_ascii_case(&me) {
        match ctx.st.servers.by_name(mask).map(|s| s.sid) {
            Some(to) if super::direction(ctx.st, to) != ctx.st.links.get(&ctx.conn).and_then(|l| l.sid()) => {
                super::to_link(ctx.st, ctx.out, to, super::s2s::relayed(msg));
            }
            _ => log::debug!("Link: ENCAP for {mask}, no way there: dropped"),
        }
        return Ok(());
    }
    let args = &msg.params[2..];
    match msg.params[1].to_ascii_uppercase().as_str() {
        "SU" => {
            if from_services(ctx, msg).is_none() {
                return Ok(());
            }
            let Some(uid) = args.first().and_then(|u| Uid::parse(u)) else { return Ok(()) };
            if ctx.st.directory.get(&uid).is_none() {
                log::debug!("Link: ENCAP SU for unknown {uid} dropped");
                return Ok(());
            }
            let account = args.get(1).filter(|a| !a.is_empty() && **a != "*").map(|a| Arc::<str>::from(*a));
            account_changed(ctx.st, ctx.out, uid, account);
        }
        "LOGIN" => {
            let Source::User(uid) = src else { return Ok(()) };
            let Some(account) = args.first().filter(|a| !a.is_empty() && **a != "*") else { return Ok(()) };
            account_changed(ctx.st, ctx.out, uid, Some(Arc::from(*account)));
        }
        // Between rustircd servers: a read marker and a user's metadata, network-wide.
        "MARKREAD" => crate::commands::read_marker::from_link(ctx.st, ctx.out, args),
        // Channel history a rustircd server missed while apart (`history::sync`).
        // An account's private history, asked by the server its user logged in on.
        "HISTACC" => {
            let Source::User(uid) = src else { return Ok(()) };
            crate::commands::history::accounts::asked(ctx.st, ctx.out, uid);
        }
        "HISTPM" => {
            let Source::Server(_) = src else { return Ok(()) };
            crate::commands::history::accounts::entry_from_link(ctx.st, ctx.out, args);
        }
        "HISTREQ" | "HISTENT" | "HISTDEL" => {
            let Some(sid) = history_peer(ctx, src) else {
                log::debug!("Link: ENCAP {} not from a rustircd peer itself: dropped", msg.params[1]);
                return Ok(());
            };
            use crate::commands::history::sync;
            match msg.params[1].to_ascii_uppercase().as_str() {
                "HISTREQ" => sync::request_from_link(ctx.st, ctx.out, sid, args),
                "HISTENT" => sync::entry_from_link(ctx.st, ctx.out, args),
                _ => sync::redacted_from_link(ctx.st, ctx.out, args),
            }
        }
        "REDACT" => {
            let Source::User(uid) = src else { return Ok(()) };
            crate::commands::redact::from_link(ctx.st, ctx.out, uid, args, ctx.now);
        }
        "METADATA" if args.first().is_some_and(|t| crate::proto::names::is_channel_name(t)) => {
            super::channels::metadata(ctx, src, args)
        }
        "METADATA" => {
            let Source::User(uid) = src else { return Ok(()) };
            let Some(key) = args.first().filter(|k| crate::commands::metadata::valid_key(k)) else { return Ok(()) };
            use crate::commands::metadata::{MAX_KEYS, MAX_VALUE_BYTES};
            if args.get(1).is_some_and(|v| v.len() > MAX_VALUE_BYTES) {
                log::debug!("Link: METADATA {key} of {uid}: value too long, dropped");
                return Ok(());
            }
            let kept = ctx.st.directory.get(&uid).and_then(|u| u.metadata.as_deref());
            if args.get(1).is_some_and(|v| !v.is_empty())
                && kept.is_some_and(|m| !m.contains_key(*key) && m.len() >= MAX_KEYS)
            {
                log::debug!("Link: METADATA {key} of {uid}: {MAX_KEYS} keys already, dropped");
                return Ok(());
            }
            let value = args.get(1).filter(|v| !v.is_empty()).map(|v| Box::<str>::from(*v));
            crate::commands::metadata::user_changed(ctx.st, ctx.out, uid, key, value.as_deref());
            let key: Box<str> = (*key).into();
            broadcast(ctx.st, ctx.out, || {
                Env::Ordered(Ordered::UserMetadata { uid, key: key.clone(), value: value.clone() })
            });
        }
        "MECHLIST" => {
            let Some(sid) = from_services(ctx, msg) else { return Ok(()) };
            let Some(mechs) = args.first().filter(|m| !m.is_empty()) else { return Ok(()) };
            let mechs: Arc<str> = (*mechs).into();
            crate::commands::sasl::set_mechs(ctx.st, ctx.out, sid, mechs.clone());
            broadcast(ctx.st, ctx.out, || Env::Ordered(Ordered::Mechlist { sid, mechs: mechs.clone() }));
        }
        "SASL" => {
            if from_services(ctx, msg).is_none() {
                return Ok(());
            }
            crate::commands::sasl::route_answer(ctx.st, ctx.out, args, ctx.now, ctx.unix);
        }
        "SVSLOGIN" => {
            // <uid> <nick> <user> <host> <account>: only the account is taken (`*` keeps the rest).
            if from_services(ctx, msg).is_none() {
                return Ok(());
            }
            let (Some(uid), Some(account)) = (args.first().and_then(|u| Uid::parse(u)), args.get(4)) else {
                return Ok(());
            };
            if account.is_empty() || *account == "*" {
                return Ok(());
            }
            let account: Arc<str> = (*account).into();
            if uid.sid() == ctx.st.cfg.server.sid {
                // Its 900 (before any ACCOUNT it hears), and (not registered yet) the account
                // it will register with.
                crate::commands::sasl::route_login(ctx.st, ctx.out, uid, account.clone(), ctx.now, ctx.unix);
            }
            if ctx.st.directory.get(&uid).is_some() {
                // Registered already (SASL after registration): an account change like SU.
                account_changed(ctx.st, ctx.out, uid, Some(account));
            }
        }
        "RSFNC" => {
            // <uid> <new nick> <new ts> <old ts>: a forced nick change (charybdis services'
            // SVSNICK), ignored when the user's nick changed since (old ts differs).
            if from_services(ctx, msg).is_none() {
                return Ok(());
            }
            let (Some(uid), Some(nick), Some(old_ts)) = (
                args.first().and_then(|u| Uid::parse(u)),
                args.get(1),
                args.get(3).and_then(|t| t.parse::<u64>().ok()),
            ) else {
                return Ok(());
            };
            if !ours(ctx.st, uid) || ctx.st.directory.get(&uid).is_none_or(|u| u.nick_ts != old_ts) {
                log::debug!("Link: RSFNC for {uid} ignored (not ours, or its nick changed since)");
                return Ok(());
            }
            run_or_tell(ctx.st, ctx.out, uid, Some(format!("NICK {nick}").into_bytes()), None);
        }
        "NICKDELAY" => {
            // <seconds> <nick>: services hold a nick (0: release it early).
            if from_services(ctx, msg).is_none() {
                return Ok(());
            }
            let (Some(secs), Some(nick)) = (args.first().and_then(|s| s.parse::<u64>().ok()), args.get(1)) else {
                return Ok(());
            };
            let folded = ctx.st.cm.fold(nick);
            let until = if secs == 0 { 0 } else { ctx.unix + secs.min(86_400) };
            let owner = folded.owner(ctx.st.cores);
            if owner == ctx.st.me {
                ctx.st.nicks.reserve_all(vec![folded], until);
            } else {
                ctx.out.to_shard(
                    owner,
                    Env::Request(crate::commands::envelope::Request::NickReserve { nicks: vec![folded], until }),
                );
            }
        }
        "CHGHOST" => {
            if from_services(ctx, msg).is_none() {
                return Ok(());
            }
            let (Some(uid), Some(host)) = (args.first().and_then(|u| Uid::parse(u)), args.get(1)) else {
                return Ok(());
            };
            if ctx.st.directory.get(&uid).is_none() || !crate::proto::names::valid_hostname(host) {
                return Ok(());
            }
            let host: Arc<str> = (*host).into();
            if let Some(u) = ctx.st.directory.get_mut(&uid) {
                u.host = host.clone();
            }
            broadcast(ctx.st, ctx.out, || Env::Ordered(Ordered::UserHost { uid, host: host.clone() }));
        }
        _ => {}
    }
    Ok(())
}

/// A user's account set or cleared by services: here, and on every other shard.
fn account_changed(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, account: Option<Arc<str>>) {
    set_account(st, out, uid, account.clone());
    broadcast(st, out, || Env::Ordered(Ordered::UserAccount { uid, account: account.clone() }));
}

/// A user's account changed: in this shard's directory, and told to this shard's users who
/// share a channel with it and asked (`account-notify`).
pub fn set_account(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, account: Option<Arc<str>>) {
    let Some(u) = st.directory.get_mut(&uid) else { return };
    if u.account == account {
        return;
    }
    u.account = account.clone();
    // One of this shard's users: what other servers kept of its account's conversations.
    if account.is_some() && st.local.contains_key(&uid) {
        crate::commands::history::accounts::logged_in(st, out, uid);
    }
    let Some(u) = st.directory.get(&uid) else { return };
    let mask = u.mask();
    let line = Line::new().source(&mask).verb("ACCOUNT").param(account.as_deref().unwrap_or("*")).finish();
    let bit = crate::commands::capabilities::bits::ACCOUNT_NOTIFY;
    let mut targets = crate::commands::inbox::observers(st, uid, bit);
    // extended-monitor: those watching its nick hear it too (once).
    let folded = st.directory.get(&uid).map(|u| u.folded.clone());
    let watching = folded.and_then(|f| st.monitors.get(&f).cloned()).unwrap_or_default();
    let extended = bit | crate::commands::capabilities::bits::EXTENDED_MONITOR;
    for conn in watching {
        if !targets.contains(&conn) && st.clients.get(&conn).is_some_and(|c| c.caps & extended == extended) {
            targets.push(conn);
        }
    }
    // The user itself hears it too, when it asked.
    if let Some(&me) = st.local.get(&uid) {
        if st.clients.get(&me).is_some_and(|c| c.caps & bit != 0) {
            targets.push(me);
        }
    }
    let shared = crate::commands::outgoing::Shared::plain(line.into());
    crate::commands::delivery::to_conns_shared(st, out, &targets, &shared, 0);
}

/// `:<S> SVSMODE <UID> <ts> <+modes-modes>`.
pub fn svsmode(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    if from_services(ctx, msg).is_none() {
        return Ok(());
    }
    let Some(uid) = target(ctx, msg) else { return Ok(()) };
    let Some(mut modes) = ctx.st.directory.get(&uid).map(|u| u.modes) else { return Ok(()) };
    let before = modes;
    let mut on = true;
    for c in msg.param(2).unwrap_or("").chars() {
        match c {
            '+' | '-' => on = c == '+',
            c => {
                if let Some(m) = UserModes::from_letter(c) {
                    modes.set(m, on);
                }
            }
        }
    }
    pass_on(ctx, msg);
    if modes == before {
        return Ok(());
    }
    ctx.st.directory.set_modes(&uid, modes);
    broadcast(ctx.st, ctx.out, || Env::Ordered(Ordered::UserModes { uid, modes, ack: None }));
    // The user is shown its new modes, as after its own MODE.
    let diff = mode_diff(before, modes);
    let to = ctx.st.directory.get(&uid).map(|u| u.nick.to_string()).unwrap_or_default();
    let server = ctx.st.cfg.server.name.clone();
    let line = Line::new().source(&server).verb("MODE").param(&to).trailing(&diff).finish();
    run_or_tell(ctx.st, ctx.out, uid, None, Some(line));
    Ok(())
}

fn mode_diff(before: UserModes, after: UserModes) -> String {
    let mut diff = String::new();
    for (on, sign) in [(true, '+'), (false, '-')] {
        let letters: String = UserModes::TABLE
            .iter()
            .filter(|(_, m)| after.has(*m) == on && before.has(*m) != on)
            .map(|(c, _)| *c)
            .collect();
        if !letters.is_empty() {
            diff.push(sign);
            diff.push_str(&letters);
        }
    }
    diff
}

/// `:<S> SVSHOST <UID> <ts> <host>`.
pub fn svshost(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    if from_services(ctx, msg).is_none() {
        return Ok(());
    }
    let Some(uid) = target(ctx, msg) else { return Ok(()) };
    let Some(host) = msg.param(2).filter(|h| crate::proto::names::valid_hostname(h)) else { return Ok(()) };
    let host: Arc<str> = host.into();
    pass_on(ctx, msg);
    if let Some(u) = ctx.st.directory.get_mut(&uid) {
        u.host = host.clone();
    }
    broadcast(ctx.st, ctx.out, || Env::Ordered(Ordered::UserHost { uid, host: host.clone() }));
    Ok(())
}

/// `:<S> SVSNICK <UID> <ts> <newnick> [<newts>]`: the user changes nick as if it asked.
pub fn svsnick(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    if from_services(ctx, msg).is_none() {
        return Ok(());
    }
    let (Some(uid), Some(nick)) = (target(ctx, msg), msg.param(2)) else { return Ok(()) };
    let line = format!("NICK {nick}");
    if !ours(ctx.st, uid) {
        pass_on(ctx, msg);
        return Ok(());
    }
    run_or_tell(ctx.st, ctx.out, uid, Some(line.into_bytes()), None);
    Ok(())
}

/// `:<S> SVSJOIN <UID> <chan> [<key>]` and `:<S> SVSPART <UID> <chan> [:<reason>]`.
pub fn svsjoin(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    forced(ctx, msg, "JOIN")
}

pub fn svspart(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    forced(ctx, msg, "PART")
}

fn forced(ctx: &mut Ctx<'_>, msg: &Message<'_>, verb: &str) -> CmdResult {
    if from_services(ctx, msg).is_none() {
        return Ok(());
    }
    let Some(uid) = Uid::parse(msg.params[0]).filter(|u| ctx.st.directory.get(u).is_some()) else { return Ok(()) };
    let (Some(chan), rest) = (msg.param(1), msg.param(2)) else { return Ok(()) };
    if !ours(ctx.st, uid) {
        pass_on(ctx, msg);
        return Ok(());
    }
    let line = match (verb, rest) {
        ("PART", Some(r)) => format!("PART {chan} :{r}"),
        (_, Some(k)) => format!("{verb} {chan} {k}"),
        _ => format!("{verb} {chan}"),
    };
    run_or_tell(ctx.st, ctx.out, uid, Some(line.into_bytes()), None);
    Ok(())
}

/// `:<S> SVSKILL <UID> :<reason>`: services disconnect a user (one of ours; or passed on).
pub fn svskill(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(sid) = from_services(ctx, msg) else { return Ok(()) };
    let Some(uid) = Uid::parse(msg.params[0]).filter(|u| ctx.st.directory.get(u).is_some()) else { return Ok(()) };
    let server = ctx.st.servers.get(&sid).map(|s| s.name.to_string()).unwrap_or_default();
    let reason = format!("Killed ({server} ({}))", msg.param(1).unwrap_or("SVSKILL"));
    if !ours(ctx.st, uid) {
        pass_on(ctx, msg);
        return Ok(());
    }
    // Its server tells the network: a KILL from us, so nobody waits for a QUIT.
    let line = Line::new()
        .source(super::our_sid(ctx.st))
        .verb("KILL")
        .param(uid.as_str())
        .trailing(&format!("{server} ({})", msg.param(1).unwrap_or("SVSKILL")))
        .finish();
    to_all_links(ctx.st, ctx.out, None, line.into());
    let shard = ctx.st.directory.get(&uid).map_or(0, |u| u.location.shard());
    let reason: Arc<str> = reason.into();
    if shard == ctx.st.me {
        crate::commands::oper::kill::kill_local(ctx.st, ctx.out, uid, &reason);
    } else {
        ctx.out.to_shard(shard, Env::Control(Control::Kill { target: uid, reason }));
    }
    Ok(())
}

/// `:<S> RESV ...`, `:<S> ENCAP ...` and other services lines we do not act on: passed on to the
/// other links (every server decides for itself), logged here.
pub fn pass_through(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    if source(ctx, msg).is_none() {
        return Ok(());
    }
    log::debug!("Link: {} passed on, not acted on here", msg.verb);
    pass_on(ctx, msg);
    Ok(())
}

/// Whether the user is one of this server's (on any shard).
fn ours(st: &ShardState, uid: Uid) -> bool {
    st.directory.get(&uid).is_some_and(|u| u.location.is_local())
}

/// Runs `line` as the user (or shows it `tell`), on the user's own shard.
fn run_or_tell(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, line: Option<Vec<u8>>, tell: Option<Vec<u8>>) {
    let Some(at) = st.directory.get(&uid).map(|u| u.location) else { return };
    let Location::Local(shard) = at else { return };
    if let Some(t) = tell {
        if shard as usize == st.me {
            if let Some(&conn) = st.local.get(&uid) {
                crate::commands::delivery::to_conn(st, out, conn, &t);
            }
        } else {
            out.to_shard(
                shard as usize,
                Env::Control(Control::RunAs { target: uid, line: [b"\x00".as_slice(), &t].concat().into() }),
            );
        }
    }
    if let Some(l) = line {
        if shard as usize == st.me {
            run_as(st, out, uid, &l);
        } else {
            out.to_shard(shard as usize, Env::Control(Control::RunAs { target: uid, line: l.into() }));
        }
    }
}

/// On the user's shard: a forced command runs as if the user sent it (a line starting with NUL
/// is only shown to the user).
pub fn run_as(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, line: &[u8]) {
    let Some(&conn) = st.local.get(&uid) else { return };
    if let Some(shown) = line.strip_prefix(b"\x00") {
        crate::commands::delivery::to_conn(st, out, conn, shown);
        return;
    }
    // Behind whatever the user is waiting for, like its own input.
    if let Some(c) = st.clients.get_mut(&conn) {
        if c.wait.is_some() || !c.rare().queue.is_empty() {
            let r = c.rare_mut();
            r.queued_bytes += line.len();
            r.queue.push_back(line.into());
            return;
        }
    }
    let (now, unix) = (out.now(), out.unix_ms() / 1000);
    let mut ctx = Ctx { st, out, conn, now, unix };
    crate::commands::run_line(&mut ctx, line);
    ctx.flush();
}

/// Applies another shard's `UserAccount` / `UserHost`.
pub fn account_seen(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, account: Option<Arc<str>>) {
    set_account(st, out, uid, account);
}

pub fn host_seen(st: &mut ShardState, uid: Uid, host: Arc<str>) {
    if let Some(u) = st.directory.get_mut(&uid) {
        u.host = host;
    }
}
