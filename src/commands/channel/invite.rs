//! INVITE: `INVITE <nick> <channel>` (341, and the INVITE to the target), `INVITE` alone
//! lists the invitations the user holds (336, 337).

use std::sync::Arc;

use super::super::capabilities::bits;
use super::super::delivery::{meta, to_channel, to_invitee};
use super::super::outgoing::Shared;
use super::super::{CmdResult, Ctx};
use crate::commands::envelope::ChanMsg;
use crate::err;
use crate::proto::{Line, Message, Numeric};
use crate::state::channel::{Flags, Status};

pub fn invite(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    if msg.params.len() < 2 {
        if !msg.params.is_empty() {
            return Err(err!(ERR_NEEDMOREPARAMS, "INVITE"));
        }
        let invites = ctx.me().rare().invites.clone();
        for f in invites {
            let name = ctx.st.channels.get(&f).map_or(f.to_string(), |v| v.ch.name.to_string());
            ctx.reply(Numeric::RPL_INVITELIST, &[&name]);
        }
        ctx.reply(Numeric::RPL_ENDOFINVITELIST, &[]);
        return Ok(());
    }
    let (nick, chan) = (msg.params[0], msg.params[1]);
    let uid = ctx.me().uid;
    let Some(target) = ctx.st.directory.by_nick(&ctx.st.cm.fold(nick)) else {
        return Err(err!(ERR_NOSUCHNICK, nick));
    };
    let (tuid, tnick, away) = (target.uid, target.nick.clone(), target.away.clone());
    let folded = ctx.st.cm.fold(chan);
    let mut name = chan.to_string();
    if let Some(view) = ctx.st.channels.get(&folded) {
        name = view.ch.name.to_string();
        match view.ch.status(&uid) {
            None => return Err(err!(ERR_NOTONCHANNEL, name)),
            Some(s) if view.ch.flags.has(Flags::INVITE_ONLY) && !s.is_op() => {
                return Err(err!(ERR_CHANOPRIVSNEEDED, name));
            }
            _ => {}
        }
        if view.ch.members.contains_key(&tuid) {
            return Err(err!(ERR_USERONCHANNEL, tnick, name));
        }
    }
    let Some(me) = ctx.st.directory.get(&uid) else { return Ok(()) };
    let body: Arc<[u8]> = Line::new().source(&me.mask()).verb("INVITE").param(&tnick).param(&name).finish().into();
    let line = Shared::with_meta(body, meta(ctx.st, &*ctx.out, Some(uid), None));
    ctx.reply(Numeric::RPL_INVITING, &[&tnick, &name]);
    if let Some(a) = away {
        ctx.reply(Numeric::RPL_AWAY, &[&tnick, &a]);
    }
    to_invitee(ctx.st, ctx.out, tuid, &folded, &line);
    // invite-notify: members who could have invited (ops, on a +i channel) hear of it too.
    if let Some(view) = ctx.st.channels.get(&folded) {
        let min = if view.ch.flags.has(Flags::INVITE_ONLY) { Status::OP } else { Status::NONE };
        let msg = ChanMsg { chan: folded, line, sender: uid, min, need: bits::INVITE_NOTIFY, at: ctx.now };
        to_channel(ctx.st, ctx.out, msg);
    }
    Ok(())
}
