//! A connection's life: accepted (as a client: every listener serves clients), looked up
//! (hostname, ident), fed bytes (framed into lines, queued while the client waits for another
//! shard or for flood-control tokens, resumed), and closed — with `ERROR`, the QUIT seen by
//! others, the nick released. No command handler lives here: PING and PONG are in `ping.rs`,
//! QUIT in `quit.rs`.

use std::net::SocketAddr;
use std::time::Instant;

use super::channel::leave_network;
use super::envelope::Env;
use super::outbox::{Conn, Outbox};
use super::{run_line, Ctx};
use crate::commands::envelope::{Answer, Control, Request};
use crate::local::client::{Client, Wait};
use crate::local::shard::ShardState;
use crate::proto::framer::Frame;
use crate::proto::{Line, Numeric};

/// A new connection: refused when a D-line or a limit of its class says so; otherwise it joins
/// the first class that matches its address, and hostname/ident lookups start if configured.
#[allow(clippy::too_many_arguments)]
pub fn accept(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    conn: Conn,
    peer: SocketAddr,
    local: SocketAddr,
    secure: bool,
    now: Instant,
    unix: u64,
) {
    let ip = crate::local::client::display_ip(peer);
    let class = st.cfg.class_for(&ip);
    let refuse = |st: &mut ShardState, out: &mut dyn Outbox, why: &str| {
        st.metrics.c.refused += 1;
        log::info!("Client refused: [{peer}] shard={} reason={why}", st.me);
        let line = Line::new().verb("ERROR").trailing(&format!("Closing Link: {ip} ({why})")).finish();
        out.send(conn, &line);
        out.close(conn);
    };
    let Some(class) = class else {
        return refuse(st, out, "No connection class for your host");
    };
    // max_clients is per class across the process: this shard's count and the others' last
    // reported ones.
    let elsewhere: usize = st.classes_elsewhere.iter().map(|v| v.get(class).copied().unwrap_or(0) as usize).sum();
    if st.class_counts[class] + elsewhere >= st.cfg.classes[class].max_clients {
        return refuse(st, out, "Too many connections in your class");
    }
    if let Some(why) = super::admission::refusal(st, peer.ip(), class, now, unix) {
        if why.starts_with("D-lined") {
            let text = format!("D-line active for [{ip}]: connection refused");
            super::oper::snotice::snotice(st, out, &text);
        }
        return refuse(st, out, &why);
    }
    st.class_counts[class] += 1;
    super::admission::opened(st, out, peer.ip(), now);
    let uid = st.uids.allocate();
    let mut client = Box::new(Client::new(conn, uid, peer, class, now, unix));
    client.secure = secure;
    st.clients.insert(conn, client);
    let tls = if secure { " tls" } else { "" };
    log::info!("Client connected: [{peer}] shard={} class={}{tls}", st.me, st.cfg.classes[class].name);
    start_lookups(st, out, conn, peer, local, now);
}

/// Hostname and ident lookups, when the config asks for them: the classic notices, a cached
/// hostname where there is one, and a blocking job for the rest. Registration waits for the
/// answer at most `[lookups] timeout`.
fn start_lookups(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    conn: Conn,
    peer: SocketAddr,
    local: SocketAddr,
    now: Instant,
) {
    let l = &st.cfg.lookups;
    let (mut dns, ident, timeout) = (l.dns, l.ident, l.timeout);
    if !dns && !ident {
        return;
    }
    let server = st.cfg.server.name.clone();
    let notice = |text: &str| Line::new().source(&server).verb("NOTICE").param("*").trailing(text).finish();
    let mut buf = Vec::new();
    if dns {
        buf.extend_from_slice(&notice("*** Looking up your hostname..."));
        let ttl = st.cfg.database.user_cache_ttl;
        let cached = st.host_cache.get(&peer.ip()).cloned().filter(|(_, at)| now.duration_since(*at) < ttl);
        if cached.is_some() {
            st.metrics.c.dns_hits += 1;
        } else {
            st.metrics.c.dns_misses += 1;
        }
        if let Some((host, _)) = cached {
            dns = false;
            buf.extend_from_slice(&found_host(&notice, host.as_deref(), true));
            if let (Some(h), Some(c)) = (host, st.clients.get_mut(&conn)) {
                c.host = h;
            }
        }
    }
    if ident {
        buf.extend_from_slice(&notice("*** Checking Ident"));
    }
    out.send(conn, &buf);
    if !dns && !ident {
        return;
    }
    if let Some(c) = st.clients.get_mut(&conn) {
        c.rare_mut().looking_up = Some(now + timeout);
    }
    out.blocking(Box::new(move || {
        let found = crate::lookup::lookup(peer, local, dns, ident, timeout);
        Env::Answer(Answer::Looked { conn, ip: peer.ip(), dns, host: found.host, ident: found.ident })
    }));
}

fn found_host(notice: &dyn Fn(&str) -> Vec<u8>, host: Option<&str>, cached: bool) -> Vec<u8> {
    match (host, cached) {
        (Some(_), true) => notice("*** Found your hostname (cached)"),
        (Some(_), false) => notice("*** Found your hostname"),
        (None, true) => notice("*** Couldn't look up your hostname (cached)"),
        (None, false) => notice("*** Couldn't look up your hostname"),
    }
}

/// The lookups came back (or timed out): the client takes what was found and registration
/// goes on. A late answer, for a client that already went on without it, is dropped.
#[allow(clippy::too_many_arguments)]
pub fn looked(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    conn: Conn,
    dns: bool,
    host: Option<String>,
    ident: Option<String>,
    now: Instant,
    unix: u64,
) {
    let server = st.cfg.server.name.clone();
    let notice = |text: &str| Line::new().source(&server).verb("NOTICE").param("*").trailing(text).finish();
    let host: Option<std::sync::Arc<str>> = host.map(Into::into);
    let Some(c) = st.clients.get_mut(&conn) else { return };
    if c.rare().looking_up.is_none() || c.registered || c.closing {
        return;
    }
    c.rare_mut().looking_up = None;
    let mut buf = Vec::new();
    if dns {
        buf.extend_from_slice(&found_host(&notice, host.as_deref(), false));
        if let Some(h) = host {
            c.host = h;
        }
    }
    if st.cfg.lookups.ident {
        match ident {
            Some(i) => {
                buf.extend_from_slice(&notice("*** Got Ident response"));
                c.rare_mut().ident = Some(i.into());
            }
            None => buf.extend_from_slice(&notice("*** No Ident response")),
        }
    }
    out.send(conn, &buf);
    let mut ctx = Ctx { st, out, conn, now, unix };
    super::registration::try_register(&mut ctx);
    ctx.flush();
    resume(st, out, conn, now, unix);
}

/// Keeps a reverse-DNS answer for `ip` (`[database] user_cache_size` entries, for
/// `user_cache_ttl`).
pub fn remember_host(st: &mut ShardState, ip: std::net::IpAddr, host: Option<&str>, now: Instant) {
    let cap = st.cfg.database.user_cache_size;
    if cap == 0 {
        return;
    }
    if st.host_cache.len() >= cap {
        // Full: the older half goes (rare, and amortised over the next cap/2 inserts).
        let mut ages: Vec<Instant> = st.host_cache.values().map(|(_, t)| *t).collect();
        ages.sort();
        let cut = ages[ages.len() / 2];
        st.host_cache.retain(|_, (_, t)| *t > cut);
    }
    st.host_cache.insert(ip, (host.map(Into::into), now));
}

/// Lookups past their deadline (their job is stuck behind others): registration goes on
/// without them.
pub fn lookups_overdue(st: &mut ShardState, out: &mut dyn Outbox, now: Instant, unix: u64) {
    let late: Vec<Conn> = st
        .clients
        .iter()
        .filter(|(_, c)| c.rare().looking_up.is_some_and(|d| now >= d + LOOKUP_SLACK))
        .map(|(k, _)| *k)
        .collect();
    for conn in late {
        looked(st, out, conn, st.cfg.lookups.dns, None, None, now, unix);
    }
}

/// How long past its own deadline a lookup job may take before the tick gives up on it.
const LOOKUP_SLACK: std::time::Duration = std::time::Duration::from_millis(500);

/// Bytes from a connection.
pub fn data(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, bytes: &[u8], now: Instant, unix: u64) {
    let Some(c) = st.clients.get_mut(&conn) else {
        return;
    };
    if c.closing {
        return;
    }
    let mut framer = std::mem::take(&mut c.framer);
    framer.feed(bytes, |frame| on_frame(st, out, conn, frame, now, unix));
    if let Some(c) = st.clients.get_mut(&conn) {
        c.framer = framer;
        // Input held while the client waits for another shard is bounded by one socket read
        // (its socket is paused); what waits for flood-control tokens counts against recvq.
        let held = if c.paused { c.framer.buffered() } else { c.framer.buffered() + c.rare().queued_bytes };
        if !c.closing && held > st.cfg.classes[c.class].recvq {
            c.closing = true;
            st.to_close.push((conn, "Excess Flood".into(), false));
            st.metrics.c.excess_flood += 1;
            let text = format!("Excess Flood: {} [{}] disconnected", c.mask(), c.addr);
            super::oper::snotice::snotice(st, out, &text);
        }
    }
}

fn on_frame(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, frame: Frame<'_>, now: Instant, unix: u64) {
    let Some(c) = st.clients.get_mut(&conn) else {
        return;
    };
    if c.closing {
        return;
    }
    c.last_active = now;
    c.ping_sent = None;
    // Counted as received here, whether the line runs now or waits its turn.
    c.lines_in += 1;
    st.metrics.c.lines_in += 1;
    match frame {
        Frame::TooLong => {
            st.metrics.c.parse_errors += 1;
            let mut ctx = Ctx { st, out, conn, now, unix };
            ctx.reply(Numeric::ERR_INPUTTOOLONG, &[]);
            ctx.flush();
        }
        Frame::Line(line) => {
            if (c.wait.is_some() && !runs_while_waiting(c, line)) || c.throttled || !c.rare().queue.is_empty() {
                let r = c.rare_mut();
                r.queued_bytes += line.len();
                r.queue.push_back(line.into());
                if c.wait.is_some() && !c.paused {
                    c.paused = true;
                    st.paused.push(conn);
                    out.pause_reading(conn, true);
                }
                return;
            }
            if !super::flood::take(st, conn, now) {
                if let Some(c) = st.clients.get_mut(&conn) {
                    let r = c.rare_mut();
                    r.queued_bytes += line.len();
                    r.queue.push_back(line.into());
                }
                super::flood::warn(st, out, conn);
                return;
            }
            let mut ctx = Ctx { st, out, conn, now, unix };
            run_line(&mut ctx, line);
            ctx.flush();
            command_done(st, out, conn);
        }
    }
}

/// Runs the lines a client sent while it waited, until it waits again.
pub fn resume(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, now: Instant, unix: u64) {
    // The command that waited is complete now.
    command_done(st, out, conn);
    loop {
        let Some(c) = st.clients.get_mut(&conn) else {
            return;
        };
        if c.closing || c.rare().queue.is_empty() {
            return;
        }
        if c.wait.is_some() && !c.rare().queue.front().is_some_and(|l| runs_while_waiting(c, l)) {
            return;
        }
        if !super::flood::take(st, conn, now) {
            super::flood::warn(st, out, conn);
            return;
        }
        let Some(c) = st.clients.get_mut(&conn) else { return };
        let Some(r) = c.rare_if_any() else { return };
        let Some(line) = r.queue.pop_front() else {
            return;
        };
        r.queued_bytes -= line.len();
        let mut ctx = Ctx { st, out, conn, now, unix };
        run_line(&mut ctx, &line);
        ctx.flush();
        command_done(st, out, conn);
    }
}

/// A client's command is complete: its labeled replies go out, and it drops its rarely used
/// fields if none is in use any more (`Client::tidy`).
fn command_done(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn) {
    super::delivery::finish_label(st, out, conn);
    if let Some(c) = st.clients.get_mut(&conn) {
        c.tidy();
    }
}

/// Whether a line may run although its client waits: a ban command while the client's earlier
/// ban changes are being saved, so that a pipelined burst shares one write (not under a label
/// still open — the new command's label would replace it —, nor with tags); a server link's
/// channel line while its earlier channel requests are in flight.
fn runs_while_waiting(c: &Client, line: &[u8]) -> bool {
    match c.wait {
        Some(Wait::Saving { .. }) => c.rare().label.is_none() && super::oper::bans::is_ban_command(line),
        Some(Wait::Chan) => c.kind == crate::local::kind::Kind::Server && super::link::pipelined(line),
        _ => false,
    }
}

/// Marks a connection for closing at the end of the current event.
pub fn close_later(st: &mut ShardState, conn: Conn, reason: impl Into<String>) {
    if let Some(c) = st.clients.get_mut(&conn) {
        if !c.closing {
            c.closing = true;
            st.to_close.push((conn, reason.into(), false));
        }
    }
}

/// Ends every event: closes the connections marked during it (ERROR, unless their output is
/// discarded; then the user leaves the network), starts writing the ban changes it made, and
/// tells the other shards when this one's count of unregistered connections changed (LUSERS
/// shows the sum at once).
pub fn finish(st: &mut ShardState, out: &mut dyn Outbox) {
    close_marked(st, out);
    if !st.paused.is_empty() {
        read_again(st, out);
    }
    super::oper::bans::save_queued(st, out);
    let unregistered = st.local_unregistered() as u32;
    // Compared in place: this runs after every event, and the counts rarely change.
    let same = st.class_counts.len() == st.sent_classes.len()
        && st.class_counts.iter().zip(&st.sent_classes).all(|(&n, &sent)| n as u32 == sent);
    if unregistered != st.sent_unregistered || !same {
        let classes: Vec<u32> = st.class_counts.iter().map(|&n| n as u32).collect();
        st.sent_unregistered = unregistered;
        st.sent_classes = classes.clone();
        super::delivery::broadcast(st, out, || {
            Env::Control(Control::Counts { unregistered, classes: classes.clone() })
        });
    }
}

/// Clients whose wait is over are read again (their queued input has run, or waits only for
/// flood-control tokens now).
fn read_again(st: &mut ShardState, out: &mut dyn Outbox) {
    st.paused.retain(|&conn| match st.clients.get_mut(&conn) {
        Some(c) if c.wait.is_some() && !c.closing => true,
        Some(c) => {
            c.paused = false;
            out.pause_reading(conn, false);
            false
        }
        None => false,
    });
}

fn close_marked(st: &mut ShardState, out: &mut dyn Outbox) {
    while let Some((conn, reason, abort)) = st.to_close.pop() {
        let Some(c) = st.clients.get(&conn) else { continue };
        if abort {
            let text = format!("{reason}: {} [{}] disconnected", c.mask(), c.addr);
            out.abort(conn);
            super::oper::snotice::snotice(st, out, &text);
            let unix = out.unix_ms() / 1000;
            leave_network(st, out, conn, &reason, None, unix);
            continue;
        }
        let line = Line::new().verb("ERROR").trailing(&format!("Closing Link: {} ({reason})", c.host)).finish();
        if c.registered {
            // The goodbye waits until every shard has seen the user leave (see `depart`).
            let unix = out.unix_ms() / 1000;
            leave_network(st, out, conn, &reason, Some(line), unix);
        } else {
            out.send(conn, &line);
            out.close(conn);
            let unix = out.unix_ms() / 1000;
            leave_network(st, out, conn, &reason, None, unix);
        }
    }
}

/// The peer went away (EOF or error): the same as a close, without the ERROR line.
pub fn disconnected(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, reason: &str) {
    if st.clients.get(&conn).is_some_and(|c| c.rare().departing.is_none()) {
        let unix = out.unix_ms() / 1000;
        leave_network(st, out, conn, reason, None, unix);
    }
}

/// Frees a nick at its owner shard.
pub fn release_nick(st: &mut ShardState, out: &mut dyn Outbox, nick: crate::proto::Folded, uid: crate::state::Uid) {
    let owner = nick.owner(st.cores);
    if owner == st.me {
        st.nicks.release(&nick, uid);
    } else {
        out.to_shard(owner, Env::Request(Request::NickRelease { nick, uid }));
    }
}
