//! PRIVMSG and NOTICE: to nicks, to channels, to `@#chan`/`+#chan` (STATUSMSG), several
//! targets at once. A channel message is built once and leaves this shard as one envelope per
//! shard that has members, never one per member.

use std::sync::Arc;

use super::delivery::{to_conn, to_user};
use super::envelope::Env;
use super::{CmdResult, Ctx};
use crate::err;
use crate::proto::names::is_channel_name;
use crate::proto::{Folded, Line, Message, Numeric};
use crate::state::channel::{Flags, Status};
use crate::state::Uid;

pub fn privmsg(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    send_message(ctx, msg, "PRIVMSG")
}

pub fn notice(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    send_message(ctx, msg, "NOTICE")
}

fn send_message(ctx: &mut Ctx<'_>, msg: &Message<'_>, verb: &str) -> CmdResult {
    let notice = verb == "NOTICE";
    let Some(targets) = msg.param(0).filter(|t| !t.is_empty()) else {
        return if notice { Ok(()) } else { Err(err!(ERR_NORECIPIENT, format!("No recipient given ({verb})"))) };
    };
    let Some(text) = msg.param(1).filter(|t| !t.is_empty()) else {
        return if notice { Ok(()) } else { Err(err!(ERR_NOTEXTTOSEND)) };
    };
    let uid = ctx.me().uid;
    let Some(me) = ctx.st.directory.get(&uid) else { return Ok(()) };
    let mask = me.mask();
    ctx.me_mut().last_spoke = ctx.now;
    let max = ctx.st.cfg.limits.max_targets;
    for (i, target) in targets.split(',').filter(|t| !t.is_empty()).enumerate() {
        if i >= max {
            if !notice {
                ctx.reply(Numeric::ERR_TOOMANYTARGETS, &[target, &format!("Too many targets; at most {max}")]);
            }
            continue;
        }
        let (min, chan_name) = match target.as_bytes()[0] {
            b'@' if is_channel_name(&target[1..]) => (Status::OP, &target[1..]),
            b'+' if is_channel_name(&target[1..]) => (Status::VOICE, &target[1..]),
            _ => (Status::NONE, target),
        };
        if is_channel_name(chan_name) {
            let folded = ctx.st.cm.fold(chan_name);
            match can_send(ctx, &folded, uid) {
                Err(()) if ctx.st.channels.contains_key(&folded) => {
                    if !notice {
                        ctx.reply(Numeric::ERR_CANNOTSENDTOCHAN, &[chan_name]);
                    }
                }
                Err(()) => {
                    if !notice {
                        ctx.reply(Numeric::ERR_NOSUCHCHANNEL, &[chan_name]);
                    }
                }
                Ok(()) => {
                    let line: Arc<[u8]> =
                        Line::new().source(&mask).verb(verb).param(target).trailing(text).finish().into();
                    to_channel(ctx, &folded, &line, uid, min, false);
                }
            }
            continue;
        }
        let Some(u) = ctx.st.directory.by_nick(&ctx.st.cm.fold(target)) else {
            if !notice {
                ctx.reply(Numeric::ERR_NOSUCHNICK, &[target]);
            }
            continue;
        };
        let (tuid, tnick, away) = (u.uid, u.nick.clone(), u.away.clone());
        let line: Arc<[u8]> = Line::new().source(&mask).verb(verb).param(&tnick).trailing(text).finish().into();
        to_user(ctx.st, ctx.out, tuid, &line);
        if let (Some(a), false) = (away, notice) {
            ctx.reply(Numeric::RPL_AWAY, &[&tnick, &a]);
        }
    }
    Ok(())
}

/// May `uid` speak in the channel? Err when it does not exist or refuses (+n, +m, +b).
fn can_send(ctx: &Ctx<'_>, chan: &Folded, uid: Uid) -> Result<(), ()> {
    let view = ctx.st.channels.get(chan).ok_or(())?;
    let status = view.ch.status(&uid);
    if status.is_some_and(|s| s.can_speak()) {
        return Ok(());
    }
    if status.is_none() && view.ch.flags.has(Flags::NO_EXTERNAL) {
        return Err(());
    }
    if view.ch.flags.has(Flags::MODERATED) {
        return Err(());
    }
    let u = ctx.st.directory.get(&uid).ok_or(())?;
    let masks = [u.mask(), format!("{}!{}@{}", u.nick, u.user, u.ip)];
    let masks: Vec<&str> = masks.iter().map(String::as_str).collect();
    let cm = ctx.st.cm;
    if super::channel::join::listed(cm, &view.ch.bans, &masks)
        && !super::channel::join::listed(cm, &view.ch.excepts, &masks)
    {
        return Err(());
    }
    Ok(())
}

/// Delivers a line to a channel's members of at least `min` status: locally, and one envelope
/// to each other shard that has members. The sender gets it only if `echo`.
pub fn to_channel(ctx: &mut Ctx<'_>, chan: &Folded, line: &Arc<[u8]>, sender: Uid, min: Status, echo: bool) {
    let Some(view) = ctx.st.channels.get(chan) else { return };
    let me = ctx.st.me;
    let shards: smallvec::SmallVec<[usize; 4]> =
        view.ch.per_shard.iter().enumerate().filter(|(s, n)| *s != me && **n > 0).map(|(s, _)| s).collect();
    deliver_local(ctx.st, ctx.out, chan, line, sender, min, echo);
    for s in shards {
        ctx.out.mesh(s, Env::ChanMsg { chan: chan.clone(), line: line.clone(), sender, min });
    }
}

/// Delivers a channel line to this shard's members of `chan` (of at least `min` status).
pub fn deliver_local(
    st: &mut crate::state::shard::ShardState,
    out: &mut dyn super::Outbox,
    chan: &Folded,
    line: &[u8],
    sender: Uid,
    min: Status,
    echo: bool,
) {
    let Some(view) = st.channels.get(chan) else { return };
    let targets: smallvec::SmallVec<[super::Conn; 16]> = view
        .local
        .iter()
        .filter(|(u, _)| {
            (echo || *u != sender) && (min == Status::NONE || view.ch.status(u).is_some_and(|s| at_least(s, min)))
        })
        .map(|(_, c)| *c)
        .collect();
    for conn in targets {
        to_conn(st, out, conn, line);
    }
}

fn at_least(s: Status, min: Status) -> bool {
    if min.is_op() {
        s.is_op()
    } else {
        s.can_speak()
    }
}
