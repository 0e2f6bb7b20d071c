//! KILL: `KILL <nick> [<reason>]` — the user is disconnected with
//! `Killed (<oper> (<reason>))`, wherever it is.

use std::sync::Arc;

use super::super::connection::close_later;
use super::super::envelope::Env;
use super::super::outbox::Outbox;
use super::super::{CmdResult, Ctx};
use super::snotice::snotice;
use crate::commands::envelope::Control;
use crate::err;
use crate::local::shard::ShardState;
use crate::proto::Message;
use crate::state::Uid;

pub fn kill(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    super::require(ctx, "kill")?;
    let nick = msg.params[0];
    let Some(target) = ctx.st.directory.by_nick(&ctx.st.cm.fold(nick)) else {
        return Err(err!(ERR_NOSUCHNICK, nick));
    };
    let (tuid, tnick, tshard) = (target.uid, target.nick.clone(), target.location.shard());
    let me = ctx.me().target().to_string();
    let why = msg.param(1).filter(|r| !r.is_empty()).unwrap_or("No reason given");
    let reason: Arc<str> = format!("Killed ({me} ({why}))").into();
    snotice(ctx.st, ctx.out, &format!("Received KILL message for {tnick} from {me} ({why})"));
    log::info!("Kill: {tnick} by {me} ({why})");
    // The network hears the KILL (hybrid's path: server!host!user!nick); the victim's
    // departure sends no QUIT to the links.
    let (host, user) = (ctx.me().host.to_string(), ctx.me().user.as_ref().map_or("*".into(), |u| u.0.to_string()));
    let path = format!("{}!{host}!{user}!{me} ({why})", ctx.st.cfg.server.name);
    let oper = ctx.me().uid;
    let line =
        crate::proto::Line::new().source(oper.as_str()).verb("KILL").param(tuid.as_str()).trailing(&path).finish();
    crate::commands::link::to_all_links(ctx.st, ctx.out, None, line.into());
    if tshard == ctx.st.me {
        kill_local(ctx.st, ctx.out, tuid, &reason);
    } else {
        ctx.out.to_shard(tshard, Env::Control(Control::Kill { target: tuid, reason }));
    }
    Ok(())
}

/// Ends a user of this shard for a KILL: its connection, or, for a user behind a link of this
/// shard, its departure (the KILL went to the links already).
pub fn kill_local(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, reason: &str) {
    if let Some(&conn) = st.local.get(&uid) {
        close_later(st, conn, reason);
    } else if st.directory.get(&uid).is_some_and(|u| u.location == crate::state::Location::Link(st.me as u16)) {
        crate::commands::link::s2s::depart_remote(st, out, uid, reason);
    } else if let Some(conn) = st.clients.iter().find(|(_, c)| c.uid == uid && !c.registered).map(|(k, _)| *k) {
        // Not registered yet (a nick collision overrides it): its nick is someone else's now.
        if let Some(c) = st.clients.get_mut(&conn) {
            c.nick = None;
        }
        close_later(st, conn, reason);
    }
}
