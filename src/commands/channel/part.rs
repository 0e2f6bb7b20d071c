//! PART: `PART <channels> [<reason>]`.

use std::sync::Arc;

use super::super::{CmdResult, Ctx, Reply};
use super::{submit, ChanRequest};
use crate::err;
use crate::proto::{Line, Message, Numeric};
use crate::state::channel::{Channel, Mutation};
use crate::state::Uid;

pub fn part(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let uid = ctx.me().uid;
    let Some(user) = ctx.st.directory.get(&uid) else { return Ok(()) };
    let mask: Arc<str> = user.mask().into();
    let reason = msg.param(1).filter(|r| !r.is_empty()).map(|r| r.chars().take(ctx.st.cfg.limits.kicklen).collect());
    let mut reqs = Vec::new();
    for name in msg.params[0].split(',').filter(|n| !n.is_empty()) {
        let folded = ctx.st.cm.fold(name);
        match ctx.st.channels.get(&folded) {
            None => ctx.reply(Numeric::ERR_NOSUCHCHANNEL, &[name]),
            Some(v) if !v.ch.members.contains_key(&uid) => ctx.reply(Numeric::ERR_NOTONCHANNEL, &[name]),
            Some(v) => {
                reqs.push(ChanRequest::Part { name: v.ch.name.clone(), mask: mask.clone(), reason: reason.clone() })
            }
        }
    }
    submit(ctx, reqs);
    Ok(())
}

pub fn decide(ch: &Channel, uid: Uid, mask: &str, reason: Option<&str>) -> Result<(Mutation, Arc<[u8]>), Vec<Reply>> {
    if !ch.members.contains_key(&uid) {
        return Err(vec![err!(ERR_NOTONCHANNEL, ch.name)]);
    }
    let mut l = Line::new().source(mask).verb("PART").param(&ch.name);
    if let Some(r) = reason {
        l = l.trailing(r);
    }
    Ok((Mutation::Leave { uid }, l.finish().into()))
}
