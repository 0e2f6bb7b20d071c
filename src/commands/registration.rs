//! PASS, NICK and USER; nick claims at the owner shard; the welcome burst.

use std::sync::Arc;

use super::connection::{close_later, release_nick, resume};
use super::delivery::broadcast;
use super::envelope::Env;
use super::inbox::nick_seen;
use super::outbox::{Conn, Outbox};
use super::query::monitor::{notify_offline, notify_online};
use super::{info, CmdResult, Ctx};
use crate::commands::envelope::{Ordered, Request};
use crate::err;
use crate::local::client::Wait;
use crate::local::shard::ShardState;
use crate::proto::names::{clean_username, valid_nick};
use crate::proto::{Folded, Line, Message, Numeric};
use crate::state::{Location, User, UserModes};

/// `PASS <password>` (before registration); `PASS <password> TS 6 :<SID>` is a server's.
pub fn pass(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    ctx.me_mut().rare_mut().pass = msg.param(0).map(str::to_string);
    if msg.param(1).is_some_and(|t| t.eq_ignore_ascii_case("TS")) {
        return crate::commands::link::handshake::pass(ctx, msg);
    }
    Ok(())
}

/// `USER <username> <mode> <unused> :<realname>` (before registration).
pub fn user(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    if ctx.me().user.is_some() {
        return Err(err!(ERR_ALREADYREGISTERED));
    }
    let limits = &ctx.st.cfg.limits;
    let (userlen, namelen) = (limits.userlen, limits.realnamelen);
    // An empty username or realname is refused; one with nothing usable in it (all
    // non-ASCII, say) gets a stand-in rather than an endless wait.
    if msg.params[0].is_empty() || msg.params[3].is_empty() {
        return Err(err!(ERR_NEEDMOREPARAMS, "USER"));
    }
    let username = clean_username(msg.params[0], userlen).unwrap_or_else(|| "user".to_string());
    let realname: String = msg.params[3].chars().take(namelen).collect();
    // No ident lookup vouches for the name: it carries the customary `~`.
    let username = format!("~{username}");
    ctx.me_mut().user = Some((username.into(), realname.into()));
    try_register(ctx);
    Ok(())
}

/// `NICK <nick>`: before registration it reserves the nick; after, it changes it.
pub fn nick(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(new) = msg.param(0).filter(|n| !n.is_empty()) else {
        return Err(err!(ERR_NONICKNAMEGIVEN));
    };
    if !valid_nick(new, ctx.st.cfg.limits.nicklen) {
        return Err(err!(ERR_ERRONEUSNICKNAME, new));
    }
    let folded = ctx.st.cm.fold(new);
    let me = ctx.me();
    let uid = me.uid;
    if let Some((cur, cur_folded)) = &me.nick {
        if **cur == *new {
            return Ok(());
        }
        if *cur_folded == folded {
            // A case change keeps the same nick entry: nothing to claim.
            nick_granted(ctx, new.into(), folded);
            return Ok(());
        }
    }
    // This shard's copy of the directory answers most collisions without a round trip.
    if ctx.st.directory.by_nick(&folded).is_some_and(|u| u.uid != uid) {
        return Err(err!(ERR_NICKNAMEINUSE, new));
    }
    let owner = folded.owner(ctx.st.cores);
    if owner == ctx.st.me {
        if !ctx.st.nicks.is_reserved(&folded, ctx.unix) && ctx.st.nicks.claim(folded.clone(), uid) {
            nick_granted(ctx, new.into(), folded);
            Ok(())
        } else {
            Err(err!(ERR_NICKNAMEINUSE, new))
        }
    } else {
        let conn = ctx.conn;
        ctx.out.to_shard(owner, Env::Request(Request::NickClaim { nick: folded.clone(), uid, conn }));
        ctx.me_mut().wait = Some(Wait::Nick(Box::new((new.into(), folded))));
        Ok(())
    }
}

/// The owner shard's answer to a claim made by `conn`.
#[allow(clippy::too_many_arguments)]
pub fn nick_result(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    conn: Conn,
    folded: Folded,
    uid: crate::state::Uid,
    granted: bool,
    now: std::time::Instant,
    unix: u64,
) {
    let waiting = st.clients.get(&conn).filter(|c| c.uid == uid).and_then(|c| match &c.wait {
        Some(Wait::Nick(n)) if n.1 == folded => Some(n.0.clone()),
        _ => None,
    });
    let Some(nick) = waiting else {
        // The client left (or moved on) meanwhile: give the nick back.
        if granted {
            release_nick(st, out, folded, uid);
        }
        return;
    };
    let mut ctx = Ctx { st, out, conn, now, unix };
    ctx.me_mut().wait = None;
    if granted {
        nick_granted(&mut ctx, nick, folded);
    } else {
        ctx.reply(Numeric::ERR_NICKNAMEINUSE, &[&nick]);
    }
    ctx.flush();
    resume(st, out, conn, now, unix);
}

/// The nick is ours: take it (before registration) or change to it (after).
fn nick_granted(ctx: &mut Ctx<'_>, nick: Arc<str>, folded: Folded) {
    let me = ctx.me();
    let uid = me.uid;
    let old = me.nick.clone();
    if !me.registered {
        if let Some((_, old_folded)) = old {
            if old_folded != folded {
                release_nick(ctx.st, ctx.out, old_folded, uid);
            }
        }
        ctx.me_mut().nick = Some((nick, folded));
        try_register(ctx);
        return;
    }
    let body: Arc<[u8]> = Line::new().source(&ctx.me().mask()).verb("NICK").param(&nick).finish().into();
    let line = super::outgoing::Shared::with_meta(body, super::delivery::meta(ctx.st, &*ctx.out, Some(uid), None));
    // A change of case keeps the nick's TS (hybrid does: it is the same nick).
    let same = old.as_ref().is_some_and(|(_, f)| *f == folded);
    let ts = if same { ctx.st.directory.get(&uid).map_or(ctx.unix, |u| u.nick_ts) } else { ctx.unix };
    ctx.me_mut().nick = Some((nick.clone(), folded.clone()));
    nick_seen(ctx.st, ctx.out, uid, &line, ts);
    let old_nick = ctx.st.directory.get(&uid).map(|u| (u.folded.clone(), u.nick.clone()));
    ctx.st.directory.rename(&uid, nick.clone(), folded.clone(), ts);
    crate::commands::link::relay::nick(ctx.st, ctx.out, uid, &nick, ts);
    if let Some((of, on)) = old_nick {
        if of != folded {
            notify_offline(ctx.st, ctx.out, &of, &on);
            let mask = ctx.me().mask();
            notify_online(ctx.st, ctx.out, &folded, &mask);
        }
    }
    // The old nick is freed before the change goes out: once every shard applied it (the
    // barrier below), the owner has freed the old nick too.
    if let Some((_, old_folded)) = old {
        if old_folded != folded {
            release_nick(ctx.st, ctx.out, old_folded, uid);
        }
    }
    let ack = Some(ctx.conn);
    broadcast(ctx.st, ctx.out, || {
        Env::Ordered(Ordered::UserNick { uid, nick: nick.clone(), folded: folded.clone(), ts, line: line.clone(), ack })
    });
    let mut own = Vec::new();
    line.render(ctx.me().caps, &mut own);
    hold_until_applied(ctx, own);
}

/// Completes registration once NICK, USER and any CAP negotiation are done.
pub fn try_register(ctx: &mut Ctx<'_>) {
    let me = ctx.me();
    if me.registered
        || me.nick.is_none()
        || me.user.is_none()
        || me.cap_negotiating
        || me.wait.is_some()
        || me.rare().looking_up.is_some()
        || me.rare().sasl.as_ref().is_some_and(|s| !s.done)
    {
        // (A SASL exchange under way holds registration until services answer or it times out.)
        return;
    }
    if let Some(want) = &ctx.st.cfg.server.password {
        if me.rare().pass.as_deref() != Some(want.as_str()) {
            ctx.reply(Numeric::ERR_PASSWDMISMATCH, &[]);
            let conn = ctx.conn;
            close_later(ctx.st, conn, "Bad Password");
            return;
        }
    }
    let (nick, folded) = me.nick.clone().expect("checked above");
    let (mut username, realname) = me.user.clone().expect("checked above");
    if let Some(ident) = &me.rare().ident {
        // An ident reply vouches for the name: it goes without the `~`.
        username = ident.clone();
    }
    let banned = super::oper::bans::kline_for(ctx.st, &username, &me.host, &me.ip, ctx.unix)
        .map(|b| (b.reason.clone(), format!("K-line active for {nick}!{username}@{}: connection refused", me.host)));
    if let Some((reason, text)) = banned {
        ctx.reply(Numeric::ERR_YOUREBANNEDCREEP, &[]);
        let conn = ctx.conn;
        close_later(ctx.st, conn, format!("K-lined: {reason}"));
        super::oper::snotice::snotice(ctx.st, ctx.out, &text);
        return;
    }
    let user = User {
        uid: me.uid,
        nick,
        folded,
        nick_ts: ctx.unix,
        user: username,
        host: me.host.clone(),
        ip: me.ip.clone(),
        realname,
        modes: if me.secure { UserModes::SECURE } else { UserModes::default() },
        away: None,
        account: me.rare().sasl.as_ref().and_then(|s| s.account.clone()),
        location: Location::local(ctx.st.me),
        signon: me.signon,
        channels: Vec::new(),
        metadata: None,
    };
    let uid = user.uid;
    log::info!("Client registered: {} [{}] shard={} uid={uid}", user.mask(), me.addr, ctx.st.me);
    let mut user = user;
    user.metadata = ctx.me_mut().rare_if_any().and_then(|r| r.early_metadata.take());
    ctx.me_mut().user = Some((user.user.clone(), user.realname.clone()));
    ctx.me_mut().registered = true;
    if let Some(r) = ctx.me_mut().rare_if_any() {
        // Read only until now: the password and the ident reply go (the box of rare fields
        // with them, unless something else holds it).
        r.pass = None;
        r.ident = None;
        if let Some(s) = r.sasl.take() {
            ctx.st.sasl_clients.remove(&uid);
            debug_assert!(s.done);
        }
    }
    ctx.me_mut().tidy();
    ctx.st.local.insert(uid, ctx.conn);
    ctx.st.directory.insert(user.clone());
    crate::commands::link::relay::user_intro(ctx.st, ctx.out, &user);
    let ack = Some(ctx.conn);
    broadcast(ctx.st, ctx.out, || Env::Ordered(Ordered::UserIntro { user: Box::new(user.clone()), ack }));
    if let Some(fp) = ctx.me().rare().certfp.clone() {
        // Services remember certificates (NickServ CERT, SASL EXTERNAL later on); after the introduction,
        // which every link hears first (the other shards' in the same stream).
        let line = Line::new().source(uid.as_str()).verb("ENCAP").param("*").param("CERTFP").trailing(&fp).finish();
        crate::commands::link::to_all_links(ctx.st, ctx.out, None, line.into());
    }
    if user.account.is_some() {
        crate::commands::history::accounts::logged_in(ctx.st, ctx.out, uid);
    }
    notify_online(ctx.st, ctx.out, &user.folded, &user.mask());
    ctx.st.max_global = ctx.st.max_global.max(ctx.st.directory.len());
    ctx.st.max_local = ctx.st.max_local.max(ctx.st.directory.locals());
    let class = ctx.st.cfg.classes[ctx.me().class].name.clone();
    let text = format!(
        "Client connecting: {} ({}@{}) [{}] {{{class}}} [{}]",
        user.nick, user.user, user.host, user.ip, user.realname
    );
    super::oper::snotice::snotice(ctx.st, ctx.out, &text);
    welcome(ctx, &user);
    // Metadata set before registration (draft metadata, before-connect) is told to the rest of
    // the network; the client saw its keys in the burst.
    super::metadata::announce(ctx.st, ctx.out, &user);
    let burst = std::mem::take(&mut ctx.st.reply);
    hold_until_applied(ctx, burst);
}

/// The client's own view of a change it just sent to every shard waits behind the client
/// barrier ([`super::barrier`]), or goes out now when there is nothing to wait for.
pub fn hold_until_applied(ctx: &mut Ctx<'_>, held: Vec<u8>) {
    if let Some(ready) = super::barrier::hold(ctx.st, ctx.conn, held) {
        ctx.send(&ready);
    }
}

/// 001–005, the client's own metadata (with the capability), LUSERS and MOTD.
fn welcome(ctx: &mut Ctx<'_>, u: &User) {
    let cfg = ctx.st.cfg.clone();
    let s = &cfg.server;
    let version = info::version_string();
    ctx.reply(
        Numeric::RPL_WELCOME,
        &[&format!("Welcome to the {} Internet Relay Chat Network {}", s.network, u.mask())],
    );
    ctx.reply(Numeric::RPL_YOURHOST, &[&format!("Your host is {}, running version {version}", s.name)]);
    let created = ctx.st.created.clone();
    ctx.reply(Numeric::RPL_CREATED, &[&format!("This server was created {created}")]);
    ctx.send(
        &Line::new()
            .source(&s.name)
            .verb(Numeric::RPL_MYINFO.as_str())
            .param(&u.nick)
            .param(&s.name)
            .param(&version)
            .param(info::USER_MODES)
            .param(info::CHANNEL_MODES)
            .param(info::CHANNEL_MODES_WITH_PARAM)
            .finish(),
    );
    info::send_isupport(ctx);
    // The spec wants this `metadata` batch (empty when there are no keys) in the burst, before
    // the end of the MOTD; after 005 as Ergo sends it.
    let own = super::metadata::own_keys(ctx.st, ctx.conn, u);
    ctx.send(&own);
    info::send_lusers(ctx);
    info::send_motd(ctx);
}
