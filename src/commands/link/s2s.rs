//! What a linked peer sends (docs/ts6 §3–§5): servers and users behind it, their changes and
//! messages, pings, kills and squits. Every line's source must be behind the link it came on
//! (hybrid drops "fake direction" input); what the rest of the network must hear is forwarded
//! to every other link as it is applied.

use std::sync::Arc;

use super::handshake::{announce, claim};
use super::{direction, our_sid, to_all_links, to_my_links, write};
use crate::commands::delivery::{broadcast, meta, meta_from, to_user};
use crate::commands::envelope::{Answer, ChanMsg, Env, NickTsClaim, NickVerdict, Ordered, Request};
use crate::commands::outbox::{Conn, Outbox};
use crate::commands::outgoing::Shared;
use crate::commands::query::monitor::{notify_offline, notify_online};
use crate::commands::{CmdResult, Ctx};
use crate::local::client::Wait;
use crate::local::shard::ShardState;
use crate::proto::{ts6, Line, Message};
use crate::state::channel::Status;
use crate::state::servers::{Server, Sid};
use crate::state::{Location, Uid, User, UserModes};

/// Who sent a line, as the link vouches for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Server(Sid),
    User(Uid),
}

/// The line's source, when it is behind this link (no prefix: the peer itself). Anything else
/// is logged and the line dropped.
pub fn source(ctx: &Ctx<'_>, msg: &Message<'_>) -> Option<Source> {
    let peer = ctx.st.links.get(&ctx.conn)?.sid()?;
    let Some(s) = msg.source else { return Some(Source::Server(peer)) };
    let found = if s.len() == 9 {
        Uid::parse(s).filter(|u| ctx.st.directory.get(u).is_some()).map(Source::User)
    } else {
        ctx.st.servers.find(s).map(|x| Source::Server(x.sid))
    };
    let sid = match found {
        Some(Source::User(u)) => Sid::of(&u),
        Some(Source::Server(x)) => x,
        None => {
            log::debug!("Link {peer}: unknown source {s} on {}", msg.verb);
            return None;
        }
    };
    if direction(ctx.st, sid) != Some(peer) {
        log::warn!("Link {peer}: {s} is not behind this link ({}): dropped", msg.verb);
        return None;
    }
    found
}

fn peer(ctx: &Ctx<'_>) -> Sid {
    ctx.st.links.get(&ctx.conn).and_then(|l| l.sid()).expect("an up link has a peer")
}

/// The line as received, for the other links (TS6 lines pass through unchanged).
pub fn relayed(msg: &Message<'_>) -> Arc<[u8]> {
    let mut l = Line::new();
    if let Some(s) = msg.source {
        l = l.source(s);
    }
    l = l.verb(msg.verb);
    let n = msg.params.len();
    for (i, p) in msg.params.iter().enumerate() {
        l = if i + 1 == n { l.trailing(p) } else { l.param(p) };
    }
    l.finish().into()
}

/// The link joins the network: its server in every shard's map, told to every other link.
pub fn join_network(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, server: Server) {
    st.peers.insert(server.sid, conn);
    introduce_server(st, out, conn, server);
}

/// A server brought in by link `conn` (its peer, or one behind it) and registered at shard 0:
/// into the map here and on every shard, and told to the other links.
pub fn introduce_server(st: &mut ShardState, out: &mut dyn Outbox, _conn: Conn, server: Server) {
    if !st.servers.insert(server.clone()) {
        log::warn!("Server {} ({}) already in the map of shard {}", server.name, server.sid, st.me);
        return;
    }
    let line = sid_line(st, &server);
    to_my_links(st, out, Some(server.sid), &line);
    announce(st, out, &server);
}

/// `:<uplink> SID <name> <hop+1> <sid> +<flags> :<desc>` as we tell it to our other links.
pub fn sid_line(st: &ShardState, s: &Server) -> Vec<u8> {
    let up = s.uplink.map_or_else(|| our_sid(st).to_string(), |u| u.to_string());
    let flags = if s.hidden { "+h" } else { "+" };
    Line::new()
        .source(&up)
        .verb("SID")
        .param(&s.name)
        .param(&(s.hop + 1).to_string())
        .param(s.sid.as_str())
        .param(flags)
        .trailing(&s.desc)
        .finish()
}

/// Another shard's link brought in a server (its stream's `ServerIntro`).
pub fn server_seen(st: &mut ShardState, out: &mut dyn Outbox, server: Server) {
    let line = sid_line(st, &server);
    if st.servers.insert(server.clone()) {
        to_my_links(st, out, Some(server.sid), &line);
    }
}

/// `:<uplink> SID <name> <hop> <SID> +<flags> :<desc>`: a server behind the peer.
pub fn sid(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(Source::Server(uplink)) = source(ctx, msg) else { return Ok(()) };
    let conn = ctx.conn;
    let Ok(intro) = ts6::parse_sid(msg) else {
        log::warn!("Link {}: bad SID line dropped", peer(ctx));
        return Ok(());
    };
    let block = ctx.st.links.get(&conn).and_then(|l| l.block).unwrap_or(0);
    let cfg = ctx.st.cfg.clone();
    let rules = &cfg.links[block];
    let cm = crate::proto::CaseMapping::Ascii;
    if !rules.hub_mask.iter().any(|m| crate::proto::mask::matches(cm, m, intro.name)) {
        return super::handshake::refuse(ctx.st, conn, &format!("No matching hub_mask for {}", intro.name));
    }
    if rules.leaf_mask.iter().any(|m| crate::proto::mask::matches(cm, m, intro.name)) {
        return super::handshake::refuse(ctx.st, conn, &format!("Matching leaf_mask for {}", intro.name));
    }
    let sid = Sid::parse(intro.sid).expect("parse_sid checked it");
    let via = peer(ctx);
    let server = Server {
        sid,
        name: intro.name.into(),
        hop: intro.hop.max(2),
        desc: intro.desc.into(),
        hidden: intro.hidden(),
        uplink: Some(uplink),
        via,
        shard: ctx.st.me as u16,
        synced: false,
        tags: false,
    };
    let name = server.name.clone();
    if let Some(l) = ctx.st.links.get_mut(&conn) {
        l.pending = Some(Box::new(server));
    }
    claim(ctx.st, ctx.out, conn, sid, &name, ctx.now, ctx.unix);
    Ok(())
}

/// `:<SID> EOB`: that server finished its burst.
pub fn eob(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(Source::Server(sid)) = source(ctx, msg) else { return Ok(()) };
    synced(ctx.st, ctx.out, sid, ctx.conn, ctx.now);
    // Our own peer's burst is in: what our channels missed of its side's history.
    if ctx.st.links.get(&ctx.conn).and_then(|l| l.sid()) == Some(sid) {
        crate::commands::history::sync::peer_synced(ctx.st, ctx.out, sid);
    }
    let line = Line::new().source(sid.as_str()).verb("EOB").finish();
    to_all_links(ctx.st, ctx.out, Some(sid), line.into());
    Ok(())
}

fn synced(st: &mut ShardState, _out: &mut dyn Outbox, sid: Sid, conn: Conn, now: std::time::Instant) {
    let Some(s) = st.servers.get_mut(&sid) else { return };
    if s.synced {
        return;
    }
    s.synced = true;
    let name = s.name.clone();
    if let Some(l) = st.links.get_mut(&conn).filter(|l| l.sid() == Some(sid)) {
        l.synced = Some(now);
        let took = now.duration_since(l.opened);
        log::info!("Server burst: end of burst from {name} ({} ms) shard={}", took.as_millis(), st.me);
        st.metrics.burst(took);
    }
}

/// `PING :<origin>` or `:<S> PING <origin> :<destination>`: answered when it is for us,
/// otherwise passed toward its destination.
pub fn ping(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let origin = msg.param(0).unwrap_or("");
    let dest = msg.param(1);
    if dest.is_none_or(|d| is_us(ctx.st, d)) {
        let me = ctx.st.cfg.server.name.clone();
        let line = Line::new().source(our_sid(ctx.st)).verb("PONG").param(&me).trailing(origin).finish();
        let conn = ctx.conn;
        write(ctx.st, ctx.out, conn, &line);
        return Ok(());
    }
    // Only a link that is up routes pings on.
    if ctx.me().registered {
        forward(ctx, msg, dest.unwrap_or(""));
    }
    Ok(())
}

/// `:<S> PONG <name> :<destination>`: the answer to our post-burst PING marks the peer synced
/// when it sends no EOB; a PONG for someone else goes on toward it.
pub fn pong(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    // PONG runs before a link is up too (the row is `Always`): nothing to mark then.
    let Some(p) = ctx.st.links.get(&ctx.conn).and_then(|l| l.sid()) else { return Ok(()) };
    let dest = msg.param(1).unwrap_or("");
    if dest.is_empty() || is_us(ctx.st, dest) {
        if !ctx.st.links.get(&ctx.conn).is_some_and(|l| l.has_cap("EOB")) {
            synced(ctx.st, ctx.out, p, ctx.conn, ctx.now);
        }
        return Ok(());
    }
    forward(ctx, msg, dest);
    Ok(())
}

fn is_us(st: &ShardState, name: &str) -> bool {
    name == st.cfg.server.sid || name.eq_ignore_ascii_case(&st.cfg.server.name)
}

/// A line routed to one server: toward it, if this shard holds that link.
fn forward(ctx: &mut Ctx<'_>, msg: &Message<'_>, dest: &str) {
    let Some(to) = ctx.st.servers.find(dest).map(|s| s.sid) else { return };
    match super::link_toward(ctx.st, to) {
        Some(conn) if conn != ctx.conn => {
            let line = relayed(msg);
            write(ctx.st, ctx.out, conn, &line);
        }
        Some(_) => {}
        None => {
            let line = relayed(msg);
            let except = ctx.st.links.get(&ctx.conn).and_then(|l| l.sid());
            broadcast(ctx.st, ctx.out, || Env::Ordered(Ordered::ToLinks { except, line: line.clone() }));
        }
    }
}

/// `:<SID> UID <nick> <hop> <ts> +<modes> <user> <host> <realhost> <ip> <UID> <account> :<gecos>`:
/// a user behind the link. Its nick is claimed at the nick's owner under the TS rules; the
/// link's next lines wait for the verdict.
pub fn uid(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(Source::Server(sid)) = source(ctx, msg) else { return Ok(()) };
    let conn = ctx.conn;
    let parsed = if msg.verb.eq_ignore_ascii_case("EUID") { ts6::parse_euid(msg) } else { ts6::parse_uid(msg) };
    let u = match parsed {
        Ok(u) => u,
        Err(e) => {
            log::warn!("Link {}: bad {} dropped ({e})", peer(ctx), msg.verb);
            return Ok(());
        }
    };
    let uid = Uid::parse(u.uid).expect("parse_uid checked it");
    if Sid::of(&uid) != sid {
        log::warn!("Link {}: UID {uid} introduced by {sid}: dropped", peer(ctx));
        return Ok(());
    }
    if !crate::proto::names::valid_nick(u.nick, 64) {
        let line = kill_line(ctx.st, uid, "Bad nickname");
        write(ctx.st, ctx.out, conn, &line);
        return Ok(());
    }
    if ctx.st.directory.get(&uid).is_some() {
        log::warn!("Link {}: UID {uid} is already known: dropped", peer(ctx));
        return Ok(());
    }
    let mut modes = UserModes::default();
    for c in u.umodes.chars().skip(1) {
        if let Some(m) = UserModes::from_letter(c) {
            modes.set(m, true);
        }
    }
    let user = User {
        uid,
        nick: u.nick.into(),
        folded: ctx.st.cm.fold(u.nick),
        nick_ts: u.ts,
        user: u.user.into(),
        host: u.host.into(),
        ip: u.ip.into(),
        realname: u.gecos.into(),
        modes,
        away: None,
        account: u.logged_in().map(Into::into),
        location: Location::Link(ctx.st.me as u16),
        signon: u.ts,
        channels: Vec::new(),
        metadata: None,
    };
    let mut c = NickTsClaim {
        nick: user.folded.clone(),
        uid,
        ts: u.ts,
        user: user.user.clone(),
        ip: user.ip.clone(),
        optimistic: false,
    };
    // A burst is mostly nicks nobody here holds: when this shard's copy shows the nick free and
    // its owner is another shard, the user is introduced at once and the owner's verdict follows
    // (a collision with a claim still in flight is then settled by KILLs, as between servers).
    // Waiting for every verdict would cost a mesh round trip per user.
    if c.nick.owner(ctx.st.cores) != ctx.st.me && ctx.st.directory.by_nick(&c.nick).is_none() {
        c.optimistic = true;
        introduce_user(ctx.st, ctx.out, user);
        ctx.out.to_shard(c.nick.owner(ctx.st.cores), Env::Request(Request::NickTs { conn, claim: c }));
        return Ok(());
    }
    if let Some(l) = ctx.st.links.get_mut(&conn) {
        l.pending_user = Some(Box::new(user));
    }
    claim_nick(ctx.st, ctx.out, conn, c, ctx.now, ctx.unix);
    Ok(())
}

/// Sends a remote user's nick claim to the nick's owner (or decides it here).
fn claim_nick(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    conn: Conn,
    c: NickTsClaim,
    now: std::time::Instant,
    unix: u64,
) {
    let owner = c.nick.owner(st.cores);
    if owner == st.me {
        let verdict = decide_nick(st, &c);
        return nick_verdict(st, out, conn, c, verdict, now, unix);
    }
    out.to_shard(owner, Env::Request(Request::NickTs { conn, claim: c }));
    if let Some(cl) = st.clients.get_mut(&conn) {
        cl.wait = Some(Wait::Answer);
    }
}

/// The nick owner: a remote claim against the present holder, by docs/ts6 §6.1 (hybrid
/// compares username and IP to tell a reconnecting ghost from another user).
pub fn decide_nick(st: &mut ShardState, c: &NickTsClaim) -> NickVerdict {
    let holder = st.nicks.holder(&c.nick).filter(|h| *h != c.uid);
    let verdict = match holder.map(|h| (h, st.directory.get(&h))) {
        None => NickVerdict::Introduce,
        // A holder not yet (or no longer) in the directory: an unregistered client, or one
        // on its way in; the introduced user wins, as hybrid lets it override unregistered ones.
        Some((h, None)) => NickVerdict::KillOld(h),
        Some((h, Some(old))) => {
            let same = *old.user == *c.user && *old.ip == *c.ip;
            match c.ts.cmp(&old.nick_ts) {
                std::cmp::Ordering::Equal => NickVerdict::KillBoth(h),
                std::cmp::Ordering::Less if same => NickVerdict::KillNew,
                std::cmp::Ordering::Greater if !same => NickVerdict::KillNew,
                _ => NickVerdict::KillOld(h),
            }
        }
    };
    st.nicks.unreserve(&c.nick);
    match verdict {
        NickVerdict::Introduce | NickVerdict::KillOld(_) => {
            if let Some(h) = holder {
                st.nicks.release(&c.nick, h);
            }
            st.nicks.claim(c.nick.clone(), c.uid);
        }
        NickVerdict::KillBoth(h) => st.nicks.release(&c.nick, h),
        NickVerdict::KillNew => {}
    }
    verdict
}

/// Owner side of [`Request::NickTs`].
pub fn on_nick_claim(st: &mut ShardState, out: &mut dyn Outbox, from: usize, conn: Conn, c: NickTsClaim) {
    let verdict = decide_nick(st, &c);
    out.to_shard(from, Env::Answer(Answer::NickTs { conn, claim: c, verdict }));
}

/// The verdict on a remote user's nick claim, at the link's shard: introduce it, or kill.
pub fn nick_verdict(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    conn: Conn,
    c: NickTsClaim,
    verdict: NickVerdict,
    now: std::time::Instant,
    unix: u64,
) {
    let reason = "Nick collision";
    if c.optimistic {
        // Introduced already: the link did not wait. A lost claim removes it everywhere.
        if let NickVerdict::KillOld(old) | NickVerdict::KillBoth(old) = verdict {
            kill_everywhere(st, out, old, reason, None);
        }
        if let NickVerdict::KillNew | NickVerdict::KillBoth(_) = verdict {
            kill_everywhere(st, out, c.uid, &format!("{reason} (new)"), None);
        }
        return;
    }
    if let Some(cl) = st.clients.get_mut(&conn) {
        if cl.wait == Some(Wait::Answer) {
            cl.wait = None;
        }
    }
    let pending = st.links.get_mut(&conn).and_then(|l| l.pending_user.take()).filter(|u| u.uid == c.uid);
    if let NickVerdict::KillOld(old) | NickVerdict::KillBoth(old) = verdict {
        kill_everywhere(st, out, old, reason, None);
    }
    match (verdict, pending) {
        // A nick change of a known user (NICK), or a new one (UID).
        (NickVerdict::Introduce | NickVerdict::KillOld(_), Some(user)) if st.directory.get(&user.uid).is_some() => {
            apply_nick(st, out, user.uid, &user.nick, user.nick_ts)
        }
        (NickVerdict::Introduce | NickVerdict::KillOld(_), Some(user)) => introduce_user(st, out, *user),
        (NickVerdict::KillNew | NickVerdict::KillBoth(_), _) => {
            // Back toward its server only: the rest of the network never heard of it.
            let line = kill_line(st, c.uid, &format!("{reason} (new)"));
            if st.links.contains_key(&conn) {
                write(st, out, conn, &line);
            }
        }
        // The link went meanwhile: the nick goes back.
        (_, None) => crate::commands::connection::release_nick(st, out, c.nick, c.uid),
    }
    crate::commands::connection::resume(st, out, conn, now, unix);
}

fn kill_line(st: &ShardState, uid: Uid, reason: &str) -> Vec<u8> {
    let path = format!("{} ({reason})", st.cfg.server.name);
    Line::new().source(our_sid(st)).verb("KILL").param(uid.as_str()).trailing(&path).finish()
}

/// A user is removed from the whole network by this server: the KILL to every link (it
/// carries the news; the victim's own server sends no QUIT), and its departure here.
pub fn kill_everywhere(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, reason: &str, except: Option<Sid>) {
    let Some(u) = st.directory.get(&uid) else {
        // A client of ours still registering holds the nick: it is overridden, as on hybrid
        // (the shard that allocated its UID holds its connection).
        if uid.sid() == our_sid(st) {
            let shard = uid.shard(st.cores);
            let reason: Arc<str> = "Overridden".into();
            if shard == st.me {
                crate::commands::oper::kill::kill_local(st, out, uid, &reason);
            } else {
                out.to_shard(shard, Env::Control(crate::commands::envelope::Control::Kill { target: uid, reason }));
            }
        }
        return;
    };
    let location = u.location;
    let line = kill_line(st, uid, reason);
    to_all_links(st, out, except, line.into());
    let why: Arc<str> = format!("Killed ({} ({reason}))", st.cfg.server.name).into();
    match location {
        Location::Local(s) if s as usize == st.me => crate::commands::oper::kill::kill_local(st, out, uid, &why),
        Location::Local(s) => out
            .to_shard(s as usize, Env::Control(crate::commands::envelope::Control::Kill { target: uid, reason: why })),
        Location::Link(s) if s as usize == st.me => depart_remote(st, out, uid, &why),
        Location::Link(s) => out
            .to_shard(s as usize, Env::Control(crate::commands::envelope::Control::Kill { target: uid, reason: why })),
    }
}

/// A user behind a link of this shard leaves the network (QUIT, KILL, split): its departure
/// runs as a local user's does, without a connection.
pub fn depart_remote(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, reason: &str) {
    let Some(u) = st.directory.get(&uid) else { return };
    let mask = u.mask();
    crate::commands::channel::depart_user(st, out, uid, &mask, reason, None);
}

/// A user behind the link joins the network: in this shard's directory, every other shard's
/// (through this shard's stream), and told to the other links.
fn introduce_user(st: &mut ShardState, out: &mut dyn Outbox, user: User) {
    let online = crate::commands::query::monitor::watched(st, &user.folded).then(|| (user.folded.clone(), user.mask()));
    super::relay::user_intro(st, out, &user);
    broadcast(st, out, || Env::Ordered(Ordered::UserIntro { user: Box::new(user.clone()), ack: None }));
    st.directory.insert(user);
    st.max_global = st.max_global.max(st.directory.len());
    if let Some((folded, mask)) = online {
        notify_online(st, out, &folded, &mask);
    }
}

/// `:<UID> QUIT :<reason>`.
pub fn quit(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(Source::User(uid)) = source(ctx, msg) else { return Ok(()) };
    let reason = msg.param(0).unwrap_or("");
    to_all_links(ctx.st, ctx.out, Some(Sid::of(&uid)), relayed(msg));
    // Hybrid's QUIT already carries the "Quit: " its user was shown.
    depart_remote(ctx.st, ctx.out, uid, reason);
    Ok(())
}

/// `:<S or U> KILL <UID> :<path (reason)>`.
pub fn kill(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(src) = source(ctx, msg) else { return Ok(()) };
    let Some(target) = Uid::parse(msg.params[0]).filter(|u| ctx.st.directory.get(u).is_some()) else {
        return Ok(());
    };
    let from = match src {
        Source::User(u) => ctx.st.directory.get(&u).map_or_else(|| u.to_string(), |x| x.nick.to_string()),
        Source::Server(s) => ctx.st.servers.get(&s).map_or_else(|| s.to_string(), |x| x.name.to_string()),
    };
    let path = msg.param(1).unwrap_or("");
    let reason: Arc<str> = format!(
        "Killed ({from} ({}))",
        path.split_once(' ').map_or(path, |(_, r)| r.trim_matches(|c| c == '(' || c == ')'))
    )
    .into();
    let from_peer = Some(peer(ctx));
    to_all_links(ctx.st, ctx.out, from_peer, relayed(msg));
    let location = ctx.st.directory.get(&target).map(|u| u.location);
    match location {
        Some(Location::Local(s)) if s as usize == ctx.st.me => {
            crate::commands::oper::kill::kill_local(ctx.st, ctx.out, target, &reason)
        }
        Some(Location::Local(s)) => {
            ctx.out.to_shard(s as usize, Env::Control(crate::commands::envelope::Control::Kill { target, reason }))
        }
        Some(Location::Link(_)) => depart_remote(ctx.st, ctx.out, target, &reason),
        None => {}
    }
    Ok(())
}

/// `:<UID> NICK <nick> :<ts>`: a remote user's nick change, claimed like an introduction.
pub fn nick(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(Source::User(uid)) = source(ctx, msg) else { return Ok(()) };
    // The NICK row takes no parameter for clients (431): a link's bare NICK is dropped here.
    let Some(new) = msg.param(0) else { return Ok(()) };
    if !crate::proto::names::valid_nick(new, 64) {
        return Ok(());
    }
    let ts = msg.param(1).and_then(|t| t.parse().ok()).unwrap_or(ctx.unix);
    let Some(u) = ctx.st.directory.get(&uid) else { return Ok(()) };
    let folded = ctx.st.cm.fold(new);
    if folded == u.folded {
        apply_nick(ctx.st, ctx.out, uid, new, ts);
        return Ok(());
    }
    let mut pending = u.clone();
    pending.nick = new.into();
    pending.folded = folded.clone();
    pending.nick_ts = ts;
    let c = NickTsClaim { nick: folded, uid, ts, user: u.user.clone(), ip: u.ip.clone(), optimistic: false };
    let conn = ctx.conn;
    if let Some(l) = ctx.st.links.get_mut(&conn) {
        l.pending_user = Some(Box::new(pending));
    }
    claim_nick(ctx.st, ctx.out, conn, c, ctx.now, ctx.unix);
    Ok(())
}

/// A remote user's nick change, granted: applied here, on every shard, and on the other links.
pub fn apply_nick(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, nick: &str, ts: u64) {
    let Some(u) = st.directory.get(&uid) else { return };
    let (old_folded, old_nick, mask) = (u.folded.clone(), u.nick.clone(), u.mask());
    let folded = st.cm.fold(nick);
    let nick: Arc<str> = nick.into();
    let body: Arc<[u8]> = Line::new().source(&mask).verb("NICK").param(&nick).finish().into();
    let line = Shared::with_meta(body, meta(st, &*out, Some(uid), None));
    crate::commands::inbox::nick_seen(st, out, uid, &line, ts);
    st.directory.rename(&uid, nick.clone(), folded.clone(), ts);
    if old_folded != folded {
        crate::commands::connection::release_nick(st, out, old_folded.clone(), uid);
        notify_offline(st, out, &old_folded, &old_nick);
        let mask = st.directory.get(&uid).map(|u| u.mask()).unwrap_or_default();
        notify_online(st, out, &folded, &mask);
    }
    super::relay::nick(st, out, uid, &nick, ts);
    broadcast(st, out, || {
        Env::Ordered(Ordered::UserNick {
            uid,
            nick: nick.clone(),
            folded: folded.clone(),
            ts,
            line: line.clone(),
            ack: None,
        })
    });
}

/// `:<UID> AWAY [:<message>]`.
pub fn away(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(Source::User(uid)) = source(ctx, msg) else { return Ok(()) };
    let away: Option<Arc<str>> = msg.param(0).filter(|m| !m.is_empty()).map(Into::into);
    if let Some(u) = ctx.st.directory.get_mut(&uid) {
        u.away = away.clone();
    }
    crate::commands::inbox::away_seen(ctx.st, ctx.out, uid);
    to_all_links(ctx.st, ctx.out, Some(Sid::of(&uid)), relayed(msg));
    broadcast(ctx.st, ctx.out, || Env::Ordered(Ordered::UserAway { uid, away: away.clone(), ack: None }));
    Ok(())
}

/// `:<UID> PRIVMSG|NOTICE <UID or nick> :<text>`: delivered to a user here, or passed on
/// toward it. (Channel targets come with channels across links.)
pub fn message(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(src) = source(ctx, msg) else { return Ok(()) };
    let tagmsg = msg.verb.eq_ignore_ascii_case("TAGMSG");
    let (Some(target), text) = (msg.param(0), msg.param(1)) else { return Ok(()) };
    if text.is_none() && !tagmsg {
        return Ok(());
    }
    // Client-only tags come from a peer that takes them (a rustircd server, `MTAGS`); a TAGMSG
    // without any is nothing, and reaches only clients with message-tags.
    let tags = msg.tags.and_then(|raw| crate::commands::message::keep_client_tags(raw).ok().flatten());
    if tagmsg && tags.is_none() {
        return Ok(());
    }
    let known = identity(msg);
    let need = if tagmsg { crate::commands::capabilities::bits::MESSAGE_TAGS } else { 0 };
    let build = |mask: &str, to: &str| {
        let l = Line::new().source(mask).verb(msg.verb).param(to);
        let l = match text {
            Some(t) => l.trailing(t),
            None => l,
        };
        let body: Arc<[u8]> = l.finish().into();
        body
    };
    let (from_uid, mask) = match src {
        Source::User(u) => (Some(u), ctx.st.directory.get(&u).map(|x| x.mask()).unwrap_or_default()),
        Source::Server(s) => (None, ctx.st.servers.get(&s).map(|x| x.name.to_string()).unwrap_or_default()),
    };
    let (min, chan) = match target.as_bytes().first() {
        Some(b'@') => (Status::OP, &target[1..]),
        Some(b'+') => (Status::VOICE, &target[1..]),
        _ => (Status::NONE, target),
    };
    if crate::proto::names::is_channel_name(chan) {
        let folded = ctx.st.cm.fold(chan);
        let Some(name) = ctx.st.channels.get(&folded).map(|v| v.ch.name.clone()) else { return Ok(()) };
        let shown: std::borrow::Cow<'_, str> =
            if min == Status::NONE { (&*name).into() } else { format!("{}{name}", &target[..1]).into() };
        let meta = meta_from(ctx.st, &*ctx.out, from_uid, tags, known);
        let line = Shared::with_meta(build(&mask, &shown), meta);
        let sender = from_uid.unwrap_or(ctx.me().uid);
        let m = ChanMsg { chan: folded, line, sender, min, need, at: ctx.now };
        crate::commands::delivery::to_channel(ctx.st, ctx.out, m);
        return Ok(());
    }
    let to = Uid::parse(target).or_else(|| ctx.st.directory.by_nick(&ctx.st.cm.fold(target)).map(|u| u.uid));
    let Some(to) = to.filter(|u| ctx.st.directory.get(u).is_some()) else {
        log::debug!("Link {}: {} to unknown {target} dropped", peer(ctx), msg.verb);
        return Ok(());
    };
    let tnick = ctx.st.directory.get(&to).map(|u| u.nick.clone()).expect("checked above");
    let line = Shared::with_meta(build(&mask, &tnick), meta_from(ctx.st, &*ctx.out, from_uid, tags, known));
    to_user(ctx.st, ctx.out, to, &line, need, ctx.now);
    if let Some(from) = from_uid {
        crate::commands::history::record::private(ctx.st, ctx.out, from, to, &line);
    }
    Ok(())
}

/// The msgid and time another rustircd server gave a message (`MTAGS` links send them), so
/// that it is the same message here; None when absent or malformed (a fresh one is made).
fn identity(msg: &Message<'_>) -> Option<(Box<str>, u64)> {
    let msgid = msg.tag("msgid").filter(|m| !m.is_empty() && m.len() <= 64 && !m.contains([' ', ';']))?;
    let time = msg.tag("time").and_then(|t| crate::clock::parse_iso_ms(&t))?;
    Some((msgid.into_owned().into(), time))
}

/// `:<UID> MODE <UID> :<+modes-modes>`: a remote user's own modes (channel modes come as
/// TMODE).
pub fn umode(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    if crate::proto::names::is_channel_name(msg.params[0]) {
        return super::channels::mode(ctx, msg);
    }
    let Some(Source::User(uid)) = source(ctx, msg) else { return Ok(()) };
    if msg.params[0] != uid.as_str() {
        return Ok(());
    }
    let Some(mut modes) = ctx.st.directory.get(&uid).map(|u| u.modes) else { return Ok(()) };
    let mut on = true;
    for c in msg.param(1).unwrap_or("").chars() {
        match c {
            '+' | '-' => on = c == '+',
            c => {
                if let Some(m) = UserModes::from_letter(c) {
                    modes.set(m, on);
                }
            }
        }
    }
    ctx.st.directory.set_modes(&uid, modes);
    to_all_links(ctx.st, ctx.out, Some(Sid::of(&uid)), relayed(msg));
    broadcast(ctx.st, ctx.out, || Env::Ordered(Ordered::UserModes { uid, modes, ack: None }));
    Ok(())
}

/// `:<UID> INVITE <UID> <chan> <ts>`: for a user here, or passed on toward it.
pub fn invite(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(Source::User(from)) = source(ctx, msg) else { return Ok(()) };
    let (Some(to), Some(chan)) = (msg.param(0).and_then(Uid::parse), msg.param(1)) else { return Ok(()) };
    let folded = ctx.st.cm.fold(chan);
    let ts: Option<u64> = msg.param(2).and_then(|t| t.parse().ok());
    let Some(view) = ctx.st.channels.get(&folded) else { return Ok(()) };
    if ts.is_some_and(|t| t > view.ch.created) {
        return Ok(());
    }
    let (Some(f), Some(t)) = (ctx.st.directory.get(&from), ctx.st.directory.get(&to)) else { return Ok(()) };
    let body: Arc<[u8]> =
        Line::new().source(&f.mask()).verb("INVITE").param(&t.nick).param(&view.ch.name).finish().into();
    let line = Shared::with_meta(body, meta(ctx.st, &*ctx.out, Some(from), None));
    crate::commands::delivery::to_invitee(ctx.st, ctx.out, to, &folded, &line);
    Ok(())
}

/// `:<UID> KNOCK <chan> [:<reason>]`: the channel's ops here are told, and the other links.
pub fn knock(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(Source::User(uid)) = source(ctx, msg) else { return Ok(()) };
    let Some(name) = ctx.st.channels.get(&ctx.st.cm.fold(msg.params[0])).map(|v| v.ch.name.clone()) else {
        return Ok(());
    };
    crate::commands::channel::knock::tell_ops(ctx.st, ctx.out, uid, &name, msg.param(1), ctx.now);
    to_all_links(ctx.st, ctx.out, Some(Sid::of(&uid)), relayed(msg));
    Ok(())
}

/// `:<UID> WALLOPS :<text>` (or a server's): to our `+w` users, and on to the other links.
pub fn wallops(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(src) = source(ctx, msg) else { return Ok(()) };
    let from = match src {
        Source::User(u) => ctx.st.directory.get(&u).map(|x| x.mask()).unwrap_or_default(),
        Source::Server(s) => ctx.st.servers.get(&s).map(|x| x.name.to_string()).unwrap_or_default(),
    };
    let line: Arc<[u8]> = Line::new().source(&from).verb("WALLOPS").trailing(msg.params[0]).finish().into();
    crate::commands::oper::wallops::deliver(ctx.st, ctx.out, &line);
    broadcast(ctx.st, ctx.out, || Env::Control(crate::commands::envelope::Control::Wallops { line: line.clone() }));
    let except = Some(peer(ctx));
    to_all_links(ctx.st, ctx.out, except, relayed(msg));
    Ok(())
}

/// `:<UID> WHOIS <our SID or nick> :<nick>`: a remote user's WHOIS of one of ours, answered with
/// numerics from our SID addressed to its UID (hybrid sends it when its user asks for idle time).
pub fn whois(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(Source::User(asker)) = source(ctx, msg) else { return Ok(()) };
    let nick = msg.param(1).unwrap_or(msg.params[0]);
    let name = ctx.st.cfg.server.name.clone();
    let lines = match ctx.st.directory.by_nick(&ctx.st.cm.fold(nick)).map(|u| u.uid) {
        Some(target) => crate::commands::query::whois::whois_lines(ctx.st, asker, asker.as_str(), target, ctx.now),
        None => {
            let mut b =
                crate::commands::numeric_line(&name, asker.as_str(), crate::proto::Numeric::ERR_NOSUCHNICK, &[nick]);
            b.extend_from_slice(&crate::commands::numeric_line(
                &name,
                asker.as_str(),
                crate::proto::Numeric::RPL_ENDOFWHOIS,
                &[nick],
            ));
            b
        }
    };
    // Between servers a numeric comes from our SID.
    let (ours, sid) = (format!(":{name} "), format!(":{} ", our_sid(ctx.st)));
    let text = String::from_utf8_lossy(&lines).replace(&ours, &sid);
    let conn = ctx.conn;
    write(ctx.st, ctx.out, conn, text.as_bytes());
    Ok(())
}

/// `:<UID> VERSION|TIME|ADMIN|MOTD|INFO :<server>` and `:<UID> LUSERS <mask> :<server>`: a
/// remote user's query of this server, answered with numerics from our SID to its UID (the
/// client command's own handler makes them); a query for another server goes on toward it.
pub fn query(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(Source::User(asker)) = source(ctx, msg) else { return Ok(()) };
    let Some(dest) = msg.params.last().copied() else { return Ok(()) };
    if !is_us(ctx.st, dest) {
        if let Some(sid) = ctx.st.servers.find(dest).map(|s| s.sid) {
            super::to_link(ctx.st, ctx.out, sid, relayed(msg));
        }
        return Ok(());
    }
    let Some(spec) = crate::commands::lookup(msg.verb) else { return Ok(()) };
    // The handler answers "the running client" (the link, `*`) into the reply buffer: taken
    // from there and readdressed.
    let local = Message {
        tags: None,
        source: None,
        verb: msg.verb,
        params: msg.params[..msg.params.len() - 1].iter().copied().collect(),
    };
    let held = std::mem::take(&mut ctx.st.reply);
    let result = (spec.client)(ctx, &local);
    let mut answer = std::mem::replace(&mut ctx.st.reply, held);
    if let Err(r) = result {
        let name = ctx.st.cfg.server.name.clone();
        r.write(&name, "*", &mut answer);
    }
    let (ours, sid) = (format!(":{} ", ctx.st.cfg.server.name), our_sid(ctx.st).to_string());
    let mut wire = Vec::with_capacity(answer.len());
    for line in String::from_utf8_lossy(&answer).split_inclusive('\n') {
        let Some(rest) = line.strip_prefix(&ours) else { continue };
        let mut parts = rest.splitn(3, ' ');
        let (verb, _target, tail) = (parts.next().unwrap_or(""), parts.next(), parts.next().unwrap_or("\r\n"));
        wire.extend_from_slice(format!(":{sid} {verb} {asker} {tail}").as_bytes());
    }
    let conn = ctx.conn;
    write(ctx.st, ctx.out, conn, &wire);
    Ok(())
}

/// A numeric from a link, for one of our users (answers to its remote WHOIS and queries):
/// shown from the server's name, to the user's nick. One for a user elsewhere goes on.
pub fn numeric(ctx: &mut Ctx<'_>, msg: &Message<'_>) {
    let Some(Source::Server(sid)) = source(ctx, msg) else { return };
    let Some(to) = msg.param(0).and_then(Uid::parse) else { return };
    let Some(u) = ctx.st.directory.get(&to) else { return };
    if !u.location.is_local() {
        let line = relayed(msg);
        super::to_link(ctx.st, ctx.out, Sid::of(&to), line);
        return;
    }
    let nick = u.nick.to_string();
    let server = ctx.st.servers.get(&sid).map_or_else(|| sid.to_string(), |s| s.name.to_string());
    let mut l = Line::new().source(&server).verb(msg.verb).param(&nick);
    let rest = &msg.params[1..];
    for (i, p) in rest.iter().enumerate() {
        l = if i + 1 == rest.len() { l.trailing(p) } else { l.param(p) };
    }
    let line = Shared::plain(l.finish().into());
    to_user(ctx.st, ctx.out, to, &line, 0, ctx.now);
}

/// `[:<S or U>] SQUIT <SID or name> :<reason>`: on a direct link, naming us or the peer, the
/// link is being closed; naming a server behind the peer, that part of the net is gone.
pub fn squit(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(src) = source(ctx, msg) else { return Ok(()) };
    let target = msg.params[0];
    let reason = msg.param(1).unwrap_or("").to_string();
    let p = peer(ctx);
    let found = ctx.st.servers.find(target).map(|s| s.sid);
    if is_us(ctx.st, target) || found == Some(p) {
        crate::commands::connection::close_later(ctx.st, ctx.conn, format!("SQUIT: {reason}"));
        return Ok(());
    }
    match found {
        Some(sid) if direction(ctx.st, sid) == Some(p) => super::split::lose(ctx.st, ctx.out, sid, &reason, Some(p)),
        // An operator's SQUIT of a server behind another of our links: we close our link when
        // it is our peer, else it goes on toward it (the server next to it closes, §7.1).
        Some(sid) => match src {
            Source::User(by) => {
                let shard = ctx.st.servers.get(&sid).map_or(ctx.st.me, |s| s.shard as usize);
                if shard == ctx.st.me {
                    crate::commands::oper::links::squit_here(ctx.st, ctx.out, sid, &reason, by);
                } else {
                    let c = crate::commands::envelope::Control::Squit { sid, reason: reason.as_str().into(), by };
                    ctx.out.to_shard(shard, Env::Control(c));
                }
            }
            Source::Server(_) => forward(ctx, msg, sid.as_str()),
        },
        None => log::debug!("Link {p}: SQUIT for unknown {target} ignored"),
    }
    Ok(())
}

/// Another shard's link split: the servers leave this shard's map.
pub fn split_seen(st: &mut ShardState, out: &mut dyn Outbox, sids: &[Sid]) {
    for sid in sids {
        st.servers.remove_subtree(*sid);
    }
    crate::commands::sasl::servers_gone(st, out, sids);
    crate::commands::history::sync::apart(st, out, sids);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::CaseMapping;

    fn claim(uid: &str, ts: u64, user: &str, ip: &str) -> NickTsClaim {
        NickTsClaim {
            nick: CaseMapping::Ascii.fold("dave"),
            uid: Uid::parse(uid).unwrap(),
            ts,
            user: user.into(),
            ip: ip.into(),
            optimistic: false,
        }
    }

    /// dave on this server (user daveA, TS 114); claims from 2BB by the table of §6.1.
    fn verdict(ts: u64, user: &str) -> (NickVerdict, Uid) {
        let mut sim = crate::sim::Sim::new(Arc::new(crate::config::Config::embedded()), 1, true);
        let c = sim.client(0, "dave");
        let st = &mut sim.shards[0].0;
        let old = st.clients[&c].uid;
        let u = st.directory.get_mut(&old).unwrap();
        u.nick_ts = 114;
        let (uname, ip) = (u.user.to_string(), u.ip.to_string());
        let same = user == "same";
        let cl = claim("2BBAAAAAB", ts, if same { &uname } else { user }, if same { &ip } else { "10.0.0.1" });
        (decide_nick(st, &cl), old)
    }

    #[test]
    fn a_peer_links_in_the_simulator_and_every_shard_agrees() {
        // What the dispatch fuzzer starts from: a TS6 peer with dave in #a, on shard 1.
        let mut sim = crate::sim::Sim::fuzz_config();
        let alice = sim.client(0, "alice");
        sim.feed(0, alice, b"JOIN #a\r\n");
        let link = sim.link_peer(1);
        let out = sim.text(1, link);
        assert!(out.contains("SERVER irc.fuzz.local 1 0FZ + :"), "{out}");
        assert!(out.contains(" UID alice 1 "), "{out}");
        for s in 0..2 {
            let st = &sim.shards[s].0;
            let dave = st.directory.by_nick(&CaseMapping::Ascii.fold("dave")).expect("dave everywhere");
            assert_eq!(dave.location, Location::Link(1));
            let chan = &st.channels[&CaseMapping::Ascii.fold("#a")].ch;
            assert_eq!(chan.members.len(), 2, "shard {s}");
            assert_eq!(st.servers.len(), 1);
        }
        // Equal TS (the simulator's clock says 1 too): merged, dave joins with his op.
        let seen = sim.text(0, alice);
        assert!(seen.contains(":dave!dave@h JOIN #a\r\n:peer.fuzz MODE #a +o dave\r\n"), "{seen}");
        // alice (shard 0) speaks to dave and to #a: one line each on the link (shard 1), each
        // timed in the link propagation histogram.
        sim.feed(0, alice, b"PRIVMSG dave :hi\r\nPRIVMSG #a :all\r\n");
        sim.pump();
        let out = sim.text(1, link);
        let uid = sim.shards[0].0.clients[&alice].uid;
        assert!(out.contains(&format!(":{uid} PRIVMSG 2FZAAAAAA :hi\r\n")), "{out}");
        assert_eq!(out.matches(&format!(":{uid} PRIVMSG #a :all\r\n")).count(), 1, "{out}");
        assert!(sim.shards[1].0.metrics.link_latency.quantile_us(0.5).is_some());
        sim.check_consistent();
    }

    #[test]
    fn a_link_that_stops_reading_is_dropped_at_its_class_sendq() {
        let text = crate::fuzzing::CONFIG.replace("hub_mask = [\"*\"]", "hub_mask = [\"*\"]\nclass = \"links\"")
            + "[[classes]]\nname = \"links\"\nhosts = []\nsendq = 4096\n";
        let cfg = Arc::new(crate::config::Config::parse("t", &text, None).unwrap());
        let mut sim = crate::sim::Sim::new(cfg, 1, true);
        let link = sim.connect(0);
        sim.feed(0, link, crate::fuzzing::LINK);
        assert!(sim.shards[0].0.peers.len() == 1, "linked");
        // Our users' introductions pile up unread on the link (the recorder never drains).
        for i in 0..60 {
            sim.client(0, &format!("user{i}"));
        }
        assert!(sim.shards[0].1.closed.contains(&link), "dropped past 4096 bytes");
        assert!(sim.shards[0].0.peers.is_empty() && sim.shards[0].0.servers.is_empty());
        assert!(sim.shards[0].0.metrics.c.sendq_exceeded >= 1);
    }

    #[test]
    fn a_link_not_yet_up_may_ping_and_pong_without_harm() {
        // PING and PONG run before a link is up (their rows are `Always`): a peer that says
        // CAPAB, then PONG or a routed PING, is answered or ignored — no panic, nothing routed.
        let mut sim = crate::sim::Sim::fuzz_config();
        let up = sim.link_peer(1);
        let early = sim.connect(1);
        sim.feed(1, early, b"CAPAB :EOB\r\nPONG peer.fuzz :irc.fuzz.local\r\nPING x :2FZ\r\nPING :tok\r\n");
        let out = sim.text(1, early);
        assert!(out.contains("PONG irc.fuzz.local :tok"), "{out}");
        assert!(!sim.text(1, up).contains("PING x"), "not routed from an unregistered link");
        assert!(!sim.shards[1].0.clients[&early].closing);
    }

    #[test]
    fn nick_collisions_follow_the_ts_table() {
        let (v, old) = verdict(114, "daveB");
        assert_eq!(v, NickVerdict::KillBoth(old), "equal TS: both");
        assert_eq!(verdict(116, "daveB").0, NickVerdict::KillNew, "another user, newer: the new one");
        let (v, old) = verdict(110, "daveB");
        assert_eq!(v, NickVerdict::KillOld(old), "another user, older: the old one");
        assert_eq!(verdict(110, "same").0, NickVerdict::KillNew, "the same user@ip, older: the new one");
        let (v, old) = verdict(116, "same");
        assert_eq!(v, NickVerdict::KillOld(old), "the same user@ip, newer (a ghost): the old one");
    }
}
