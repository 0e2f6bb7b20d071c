//! SASL (IRCv3 SASL 3.1/3.2), relayed to services over the links as the charybdis family does
//! (`docs/sasl-plan.md`, step 7). The `sasl` capability is offered while a services server has
//! announced its mechanisms (`ENCAP * MECHLIST`). A client's `AUTHENTICATE` lines go, from
//! whichever shard holds the client, to the services server as
//! `ENCAP <services> SASL <uid> <agent|*> H|S|C|D ...`; services answer
//! `ENCAP <us> SASL <agent> <uid> C|D|M ...` and `ENCAP <us> SVSLOGIN <uid> ... <account>`,
//! which the shard holding the link hands to the client's shard (the UID says which). The
//! client's registration waits while an exchange runs; the account it was given goes into its
//! introduction to every shard and server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::capabilities::bits;
use super::envelope::{Control, Env};
use super::outbox::{Conn, Outbox};
use super::{CmdResult, Ctx};
use crate::err;
use crate::local::client::Sasl;
use crate::local::shard::ShardState;
use crate::proto::{Line, Message, Numeric};
use crate::state::servers::Sid;
use crate::state::Uid;

/// The longest AUTHENTICATE payload line (a line this long says more follows).
pub const CHUNK: usize = 400;
/// The most a client may send in one exchange (Atheme gives up at 8 KiB too).
const MAX_EXCHANGE: usize = 8192;
/// An exchange services leave unanswered this long is aborted (906).
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// `AUTHENTICATE <mechanism | payload | * | +>`: before registration, or after it to log in (or
/// in again) — SASL 3.2's reauthentication.
pub fn authenticate(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let arg = msg.params[0];
    let me = ctx.me();
    if me.caps & bits::SASL == 0 {
        return Err(err!(ERR_SASLFAIL));
    }
    if me.rare().sasl.as_ref().is_some_and(|s| s.done) {
        // Logged in by SASL and not registered yet: registration comes first.
        return Err(err!(ERR_SASLALREADY));
    }
    if arg.is_empty() || arg.starts_with(':') || arg.contains(' ') {
        abort(ctx.st, ctx.out, ctx.conn);
        return Err(err!(ERR_SASLFAIL));
    }
    let Some((services, _)) = ctx.st.sasl_mechs.clone() else {
        return Err(err!(ERR_SASLFAIL));
    };
    if arg == "*" {
        abort(ctx.st, ctx.out, ctx.conn);
        return Err(err!(ERR_SASLABORTED));
    }
    if arg.len() > CHUNK {
        abort(ctx.st, ctx.out, ctx.conn);
        return Err(err!(ERR_SASLTOOLONG));
    }
    let (uid, conn, now) = (ctx.me().uid, ctx.conn, ctx.now);
    let lines = match ctx.me().rare().sasl.as_ref() {
        // What is not a mechanism name (RFC 4422: up to 20 of A-Z 0-9 - _) cannot start an
        // exchange: the rest of an aborted one's payload is not sent to services as one.
        None if !is_mechanism(arg) => return Err(err!(ERR_SASLFAIL)),
        None => {
            // A new exchange: who the client is, then the mechanism.
            let me = ctx.me();
            let mode = if me.secure { "S" } else { "P" };
            let host = vec![me.host.to_string(), me.ip.to_string(), mode.to_string()];
            // EXTERNAL is the client's certificate: its fingerprint goes with the mechanism.
            let mut mech = vec![arg.to_string()];
            if arg.eq_ignore_ascii_case("EXTERNAL") {
                mech.extend(me.rare().certfp.as_deref().map(str::to_string));
            }
            ctx.me_mut().rare_mut().sasl =
                Some(Box::new(Sasl { started: now, agent: None, bytes: 0, account: None, done: false }));
            ctx.st.sasl_clients.insert(uid, conn);
            vec![encap(ctx.st, services, uid, "*", "H", &host), encap(ctx.st, services, uid, "*", "S", &mech)]
        }
        Some(_) => {
            let s = ctx.me_mut().rare_mut().sasl.as_mut().expect("checked");
            s.bytes += arg.len();
            if s.bytes > MAX_EXCHANGE {
                // 905 is for one line over 400 bytes; an exchange too long fails (904).
                abort(ctx.st, ctx.out, conn);
                return Err(err!(ERR_SASLFAIL));
            }
            let agent = s.agent.as_deref().unwrap_or("*").to_string();
            vec![encap(ctx.st, services, uid, &agent, "C", &[arg.into()])]
        }
    };
    for l in lines {
        super::link::to_link(ctx.st, ctx.out, services, l);
    }
    Ok(())
}

fn is_mechanism(s: &str) -> bool {
    (1..=20).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The client ended capability negotiation while its exchange ran: SASL 3.1 says abort it
/// (906) and register without an account.
pub fn cap_end(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, now: Instant, unix: u64) {
    if st.clients.get(&conn).and_then(|c| c.rare().sasl.as_ref()).is_none_or(|s| s.done) {
        return;
    }
    abort(st, out, conn);
    let mut ctx = Ctx { st, out, conn, now, unix };
    ctx.reply(Numeric::ERR_SASLABORTED, &[]);
}

/// `:<our SID> ENCAP <services> SASL <uid> <agent> <mode> <args...>`.
fn encap(st: &ShardState, services: Sid, uid: Uid, agent: &str, mode: &str, args: &[String]) -> Arc<[u8]> {
    let name = st.servers.get(&services).map_or_else(|| services.to_string(), |s| s.name.to_string());
    let mut l = Line::new().source(&st.cfg.server.sid).verb("ENCAP").param(&name).param("SASL");
    l = l.param(uid.as_str()).param(agent).param(mode);
    for a in args {
        l = l.param(a);
    }
    l.finish().into()
}

/// Ends the client's exchange, telling services (`D A`) when one was under way.
fn abort(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn) {
    let Some(c) = st.clients.get_mut(&conn) else { return };
    let Some(s) = c.rare_if_any().and_then(|r| r.sasl.take()) else { return };
    let uid = c.uid;
    st.sasl_clients.remove(&uid);
    if s.done {
        // Logged in already: nothing to abort (the account stays).
        if let Some(c) = st.clients.get_mut(&conn) {
            c.rare_mut().sasl = Some(s);
        }
        return;
    }
    if let Some((services, _)) = st.sasl_mechs.clone() {
        let agent = s.agent.as_deref().unwrap_or("*").to_string();
        let line = encap(st, services, uid, &agent, "D", &["A".into()]);
        super::link::to_link(st, out, services, line);
    }
}

/// A client left while its exchange ran: services hear `D A`.
pub fn gone(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, s: &Sasl) {
    st.sasl_clients.remove(&uid);
    if s.done {
        return;
    }
    if let Some((services, _)) = st.sasl_mechs.clone() {
        let agent = s.agent.as_deref().unwrap_or("*").to_string();
        let line = encap(st, services, uid, &agent, "D", &["A".into()]);
        super::link::to_link(st, out, services, line);
    }
}

/// Services' answer for one of this shard's clients.
#[allow(clippy::too_many_arguments)]
pub fn on_answer(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    uid: Uid,
    agent: &str,
    mode: &str,
    data: &str,
    now: Instant,
    unix: u64,
) {
    let Some(&conn) = st.sasl_clients.get(&uid) else {
        log::debug!("SASL answer for {uid}, who has no exchange here: dropped");
        return;
    };
    // Called from a link's line on the shard holding both: its replies are kept aside.
    let saved = std::mem::take(&mut st.reply);
    let mut ctx = Ctx { st, out, conn, now, unix };
    match mode {
        "C" => {
            if let Some(s) = ctx.me_mut().rare_if_any().and_then(|r| r.sasl.as_mut()) {
                s.agent = Some(agent.into());
            }
            let line = Line::new().verb("AUTHENTICATE").param(data).finish();
            ctx.send(&line);
        }
        "M" => ctx.reply(Numeric::RPL_SASLMECHS, &[data]),
        "D" => {
            ctx.st.sasl_clients.remove(&uid);
            match data {
                "S" => {
                    if ctx.me().registered {
                        // Logged in (again) after registration: the account is set already
                        // (SVSLOGIN); the exchange is over.
                        if let Some(r) = ctx.me_mut().rare_if_any() {
                            r.sasl = None;
                        }
                    } else if let Some(s) = ctx.me_mut().rare_if_any().and_then(|r| r.sasl.as_mut()) {
                        s.done = true;
                    }
                    ctx.reply(Numeric::RPL_SASLSUCCESS, &[]);
                }
                _ => {
                    if let Some(r) = ctx.me_mut().rare_if_any() {
                        r.sasl = None;
                    }
                    let n = if data == "A" { Numeric::ERR_SASLABORTED } else { Numeric::ERR_SASLFAIL };
                    ctx.reply(n, &[]);
                }
            }
            // CAP END may have come meanwhile: registration goes on.
            super::registration::try_register(&mut ctx);
        }
        _ => log::debug!("SASL answer {mode} for {uid}: not understood, dropped"),
    }
    ctx.flush();
    st.reply = saved;
}

/// Services logged one of this shard's clients in (SVSLOGIN) during its exchange: the account
/// is kept for its registration, and it is told so (900).
pub fn on_login(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, account: Arc<str>, now: Instant, unix: u64) {
    let Some(&conn) = st.sasl_clients.get(&uid) else {
        log::debug!("SVSLOGIN for {uid}, who has no exchange here: dropped");
        return;
    };
    let saved = std::mem::take(&mut st.reply);
    let mut ctx = Ctx { st, out, conn, now, unix };
    if let Some(s) = ctx.me_mut().rare_if_any().and_then(|r| r.sasl.as_mut()) {
        s.account = Some(account.clone());
    }
    let me = ctx.me();
    let nick = me.nick.as_ref().map_or("*", |(n, _)| n).to_string();
    let user = me.user.as_ref().map_or("*", |(u, _)| u).to_string();
    let mask = format!("{nick}!{user}@{}", me.host);
    ctx.reply(Numeric::RPL_LOGGEDIN, &[&mask, &account, &format!("You are now logged in as {account}")]);
    ctx.flush();
    st.reply = saved;
}

/// At the shard holding the services link: `ENCAP <us> SASL <agent> <uid> <mode> <data...>`
/// for one of our users goes to the shard holding it.
pub fn route_answer(st: &mut ShardState, out: &mut dyn Outbox, args: &[&str], now: Instant, unix: u64) {
    let (Some(agent), Some(target), Some(mode)) = (args.first(), args.get(1), args.get(2)) else { return };
    let Some(uid) = Uid::parse(target).filter(|u| u.sid() == st.cfg.server.sid) else {
        log::debug!("SASL answer for {target}, not one of ours: dropped");
        return;
    };
    let data = args.get(3..).map(|d| d.join(" ")).unwrap_or_default();
    let shard = uid.shard(st.cores);
    if shard == st.me {
        return on_answer(st, out, uid, agent, mode, &data, now, unix);
    }
    let c = Control::Sasl { uid, agent: (*agent).into(), mode: (*mode).into(), data: data.into() };
    out.to_shard(shard, Env::Control(c));
}

/// At the shard holding the services link: `ENCAP <us> SVSLOGIN <uid> <nick> <user> <host>
/// <account>` for one of our clients still registering goes to its shard.
pub fn route_login(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, account: Arc<str>, now: Instant, unix: u64) {
    let shard = uid.shard(st.cores);
    if shard == st.me {
        return on_login(st, out, uid, account, now, unix);
    }
    out.to_shard(shard, Env::Control(Control::SaslLogin { uid, account }));
}

/// Services announced their mechanisms: `sasl` is offered from now on, and this shard's
/// `cap-notify` clients hear `CAP NEW` (again when the list changes).
pub fn set_mechs(st: &mut ShardState, out: &mut dyn Outbox, sid: Sid, mechs: Arc<str>) {
    if st.sasl_mechs.as_ref().is_some_and(|(s, m)| *s == sid && *m == mechs) {
        return;
    }
    log::info!("SASL: mechanisms {mechs} from {sid} shard={}", st.me);
    st.sasl_mechs = Some((sid, mechs.clone()));
    cap_notify(st, out, "NEW", &format!("sasl={mechs}"), "sasl");
}

/// Servers left the network: if SASL's server was one of them, `sasl` is no longer offered
/// (`CAP DEL`, and taken off the clients that had it).
pub fn servers_gone(st: &mut ShardState, out: &mut dyn Outbox, sids: &[Sid]) {
    if st.sasl_mechs.as_ref().is_some_and(|(s, _)| sids.contains(s)) {
        st.sasl_mechs = None;
        cap_notify(st, out, "DEL", "sasl", "sasl");
        for c in st.clients.values_mut() {
            c.caps &= !bits::SASL;
        }
    }
}

/// `CAP <nick> NEW|DEL :<item>` to this shard's clients that asked for `cap-notify` (302
/// clients get the value, others the bare name).
fn cap_notify(st: &mut ShardState, out: &mut dyn Outbox, sub: &str, with_value: &str, bare: &str) {
    let targets: Vec<(Conn, String, bool)> = st
        .clients
        .iter()
        .filter(|(_, c)| c.caps & bits::CAP_NOTIFY != 0 && c.kind == crate::local::kind::Kind::Client && !c.closing)
        .map(|(conn, c)| (*conn, c.target().to_string(), c.cap_version >= 302))
        .collect();
    for (conn, target, values) in targets {
        let item = if values { with_value } else { bare };
        let line =
            Line::new().source(&st.cfg.server.name).verb("CAP").param(&target).param(sub).trailing(item).finish();
        super::delivery::to_conn(st, out, conn, &line);
    }
}

/// Exchanges services left unanswered too long are aborted (906); registration goes on.
pub fn expire(st: &mut ShardState, out: &mut dyn Outbox, now: Instant, unix: u64) {
    let stale: Vec<Conn> = st
        .sasl_clients
        .values()
        .copied()
        .filter(|c| {
            st.clients
                .get(c)
                .and_then(|c| c.rare().sasl.as_ref())
                .is_some_and(|s| now.duration_since(s.started) >= TIMEOUT)
        })
        .collect();
    for conn in stale {
        abort(st, out, conn);
        let mut ctx = Ctx { st, out, conn, now, unix };
        ctx.reply(Numeric::ERR_SASLABORTED, &[]);
        super::registration::try_register(&mut ctx);
        ctx.flush();
    }
}
