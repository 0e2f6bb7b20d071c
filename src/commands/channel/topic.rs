//! TOPIC: `TOPIC <channel> [<topic>]` — 331/332/333 to read, a change to set.

use std::sync::Arc;

use super::super::{CmdResult, Ctx, Reply};
use super::{submit, ChanRequest};
use crate::err;
use crate::proto::{Folded, Line, Message, Numeric};
use crate::state::channel::{Channel, Flags, Mutation, Topic};
use crate::state::Uid;

pub fn topic(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let name = msg.params[0];
    let folded = ctx.st.cm.fold(name);
    let uid = ctx.me().uid;
    let Some(view) = ctx.st.channels.get(&folded) else {
        return Err(err!(ERR_NOSUCHCHANNEL, name));
    };
    let status = view.ch.status(&uid);
    let name = view.ch.name.clone();
    let Some(text) = msg.param(1) else {
        if status.is_none() && view.ch.is_secret() {
            return Err(err!(ERR_NOTONCHANNEL, name));
        }
        send_topic(ctx, &folded, true);
        return Ok(());
    };
    match status {
        None => return Err(err!(ERR_NOTONCHANNEL, name)),
        Some(s) if view.ch.flags.has(Flags::TOPIC_OPS) && !s.is_op() => return Err(err!(ERR_CHANOPRIVSNEEDED, name)),
        _ => {}
    }
    let text: String = text.chars().take(ctx.st.cfg.limits.topiclen).collect();
    let Some(me) = ctx.st.directory.get(&uid) else { return Ok(()) };
    let mask: Arc<str> = me.mask().into();
    submit(ctx, vec![ChanRequest::Topic { name, mask, text }]);
    Ok(())
}

/// 332 and 333, or 331 when there is none (and `always` asks for an answer either way).
pub fn send_topic(ctx: &mut Ctx<'_>, chan: &Folded, always: bool) {
    let Some(view) = ctx.st.channels.get(chan) else { return };
    let name = view.ch.name.to_string();
    match view.ch.topic.clone() {
        Some(t) => {
            ctx.reply(Numeric::RPL_TOPIC, &[&name, &t.text]);
            ctx.reply(Numeric::RPL_TOPICWHOTIME, &[&name, &t.set_by, &t.set_at.to_string()]);
        }
        None if always => ctx.reply(Numeric::RPL_NOTOPIC, &[&name]),
        None => {}
    }
}

pub fn decide(ch: &Channel, uid: Uid, mask: &str, text: &str, unix: u64) -> Result<(Mutation, Arc<[u8]>), Vec<Reply>> {
    match ch.status(&uid) {
        None => return Err(vec![err!(ERR_NOTONCHANNEL, ch.name)]),
        Some(s) if ch.flags.has(Flags::TOPIC_OPS) && !s.is_op() => {
            return Err(vec![err!(ERR_CHANOPRIVSNEEDED, ch.name)])
        }
        _ => {}
    }
    let topic = (!text.is_empty()).then(|| Topic { text: text.into(), set_by: mask.into(), set_at: unix });
    let line = Line::new().source(mask).verb("TOPIC").param(&ch.name).trailing(text).finish();
    Ok((Mutation::Topic(topic), line.into()))
}
