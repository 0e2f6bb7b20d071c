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
    if ctx.me().last_knock.is_some_and(|t| now.duration_since(t).as_secs() < 30) {
        return Err(err!(ERR_TOOMANYKNOCK, name));
    }
    ctx.me_mut().last_knock = Some(now);
    let Some(me) = ctx.st.directory.get(&uid) else { return Ok(()) };
    let mut text = "has asked for an invite".to_string();
    if let Some(reason) = msg.param(1).filter(|r| !r.is_empty()) {
        text = format!("has asked for an invite ({reason})");
    }
    // As ircd-hybrid does: the numeric is addressed to the channel, so one line serves every op.
    let line: Arc<[u8]> = Line::new()
        .source(ctx.server())
        .verb(Numeric::RPL_KNOCK.as_str())
        .param(&name)
        .param(&name)
        .param(&me.mask())
        .trailing(&text)
        .finish()
        .into();
    let msg = ChanMsg { chan: folded, line: Shared::plain(line), sender: uid, min: Status::OP, need: 0, at: ctx.now };
    to_channel(ctx.st, ctx.out, msg);
    ctx.reply(Numeric::RPL_KNOCKDLVR, &[&name]);
    Ok(())
}
