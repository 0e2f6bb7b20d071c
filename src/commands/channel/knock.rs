//! KNOCK: `KNOCK <channel> [<message>]` asks the operators of an invite-only channel for an
//! invitation (710 to them, 711 to the knocker).

use std::sync::Arc;

use super::super::outgoing::Shared;
use super::super::{CmdResult, Ctx};
use crate::commands::delivery::to_channel;
use crate::commands::envelope::ChanMsg;
use crate::err;
use crate::proto::{Line, Message, Numeric};
use crate::state::channel::{Flags, Status};

pub fn knock(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let chan = msg.params[0];
    let folded = ctx.st.cm.fold(chan);
    let uid = ctx.me().uid;
    let Some(view) = ctx.st.channels.get(&folded) else {
        return Err(err!(ERR_NOSUCHCHANNEL, chan));
    };
    let name = view.ch.name.to_string();
    if view.ch.members.contains_key(&uid) {
        return Err(err!(ERR_KNOCKONCHAN, name));
    }
    if !view.ch.flags.has(Flags::INVITE_ONLY) && view.ch.key.is_none() && view.ch.limit.is_none() {
        return Err(err!(ERR_CHANOPEN, name));
    }
    let now = ctx.now;
    if ctx.me().rare().last_knock.is_some_and(|t| now.duration_since(t).as_secs() < 30) {
        return Err(err!(ERR_TOOMANYKNOCK, name));
    }
    ctx.me_mut().rare_mut().last_knock = Some(now);
    let reason = msg.param(1).filter(|r| !r.is_empty());
    tell_ops(ctx.st, ctx.out, uid, &name, reason, ctx.now);
    // The channel's ops on other servers hear it too (hybrid's KNOCK capability).
    let mut l = Line::new().source(uid.as_str()).verb("KNOCK").param(&name);
    if let Some(r) = reason {
        l = l.trailing(r);
    }
    crate::commands::link::to_all_links(ctx.st, ctx.out, None, l.finish().into());
    ctx.reply(Numeric::RPL_KNOCKDLVR, &[&name]);
    Ok(())
}

/// Tells the channel's operators (on every shard) that `uid` knocked.
pub fn tell_ops(
    st: &mut crate::local::shard::ShardState,
    out: &mut dyn crate::commands::Outbox,
    uid: crate::state::Uid,
    name: &str,
    reason: Option<&str>,
    now: std::time::Instant,
) {
    let Some(me) = st.directory.get(&uid) else { return };
    let text = match reason {
        Some(r) => format!("has asked for an invite ({r})"),
        None => "has asked for an invite".to_string(),
    };
    // As ircd-hybrid does: the numeric is addressed to the channel, so one line serves every op.
    let line: Arc<[u8]> = Line::new()
        .source(&st.cfg.server.name)
        .verb(Numeric::RPL_KNOCK.as_str())
        .param(name)
        .param(name)
        .param(&me.mask())
        .trailing(&text)
        .finish()
        .into();
    let chan = st.cm.fold(name);
    let msg = ChanMsg { chan, line: Shared::plain(line), sender: uid, min: Status::OP, need: 0, at: now };
    to_channel(st, out, msg);
}
