//! KICK: `KICK <channel> <nick>[,<nick>...] [<reason>]`.

use std::sync::Arc;

use super::super::{CmdResult, Ctx, Reply};
use super::{submit, ChanRequest};
use crate::err;
use crate::proto::{Line, Message, Numeric};
use crate::state::channel::{Channel, Mutation};
use crate::state::Uid;

pub fn kick(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let uid = ctx.me().uid;
    let Some(me) = ctx.st.directory.get(&uid) else { return Ok(()) };
    let mask: Arc<str> = me.mask().into();
    let my_nick = me.nick.clone();
    let chans: Vec<&str> = msg.params[0].split(',').collect();
    let nicks: Vec<&str> = msg.params[1].split(',').filter(|n| !n.is_empty()).collect();
    let reason: String =
        msg.param(2).filter(|r| !r.is_empty()).unwrap_or(&my_nick).chars().take(ctx.st.cfg.limits.kicklen).collect();
    let max = ctx.st.cfg.limits.max_targets;
    let mut reqs = Vec::new();
    for (i, nick) in nicks.iter().enumerate() {
        if i >= max {
            ctx.reply(Numeric::ERR_TOOMANYTARGETS, &[nick]);
            continue;
        }
        // One channel for every nick, or channels and nicks in pairs.
        let chan = if chans.len() == nicks.len() { chans[i] } else { chans[0] };
        let folded = ctx.st.cm.fold(chan);
        let Some(view) = ctx.st.channels.get(&folded) else {
            ctx.reply(Numeric::ERR_NOSUCHCHANNEL, &[chan]);
            continue;
        };
        let name = view.ch.name.clone();
        match view.ch.status(&uid) {
            None => {
                ctx.reply(Numeric::ERR_NOTONCHANNEL, &[&name]);
                continue;
            }
            Some(s) if !s.is_op() => {
                ctx.reply(Numeric::ERR_CHANOPRIVSNEEDED, &[&name]);
                continue;
            }
            _ => {}
        }
        let Some(target) = ctx.st.directory.by_nick(&ctx.st.cm.fold(nick)) else {
            ctx.reply(Numeric::ERR_NOSUCHNICK, &[nick]);
            continue;
        };
        let (tuid, tnick) = (target.uid, target.nick.clone());
        if !view.ch.members.contains_key(&tuid) {
            ctx.reply(Numeric::ERR_USERNOTINCHANNEL, &[&tnick, &name]);
            continue;
        }
        reqs.push(ChanRequest::Kick {
            name,
            mask: mask.clone(),
            target: tuid,
            target_nick: tnick,
            reason: reason.clone(),
        });
    }
    submit(ctx, reqs);
    Ok(())
}

pub fn decide(
    ch: &Channel,
    uid: Uid,
    mask: &str,
    target: Uid,
    target_nick: &str,
    reason: &str,
) -> Result<(Mutation, Arc<[u8]>), Vec<Reply>> {
    match ch.status(&uid) {
        None => return Err(vec![err!(ERR_NOTONCHANNEL, ch.name)]),
        Some(s) if !s.is_op() => return Err(vec![err!(ERR_CHANOPRIVSNEEDED, ch.name)]),
        _ => {}
    }
    if !ch.members.contains_key(&target) {
        return Err(vec![err!(ERR_USERNOTINCHANNEL, target_nick, ch.name)]);
    }
    let line = Line::new().source(mask).verb("KICK").param(&ch.name).param(target_nick).trailing(reason).finish();
    Ok((Mutation::Leave { uid: target }, line.into()))
}
