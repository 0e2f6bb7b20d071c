//! PRIVMSG, NOTICE and TAGMSG: to nicks, to channels, to `@#chan`/`+#chan` (STATUSMSG), several
//! targets at once. A channel message is built once and leaves this shard as one envelope per
//! shard that has members, never one per member. Client-only tags travel with the message to
//! recipients with message-tags; echo-message sends the sender its own copy.

use std::sync::Arc;

use super::capabilities::bits;
use super::channel::speak::may_speak;
use super::delivery::{meta, reply, to_channel, to_user};
use super::envelope::ChanMsg;
use super::outgoing::{Multi, Shared};
use super::{CmdResult, Ctx};
use crate::err;
use crate::proto::framer::MAX_TAGS;
use crate::proto::names::is_channel_name;
use crate::proto::{Line, Message, Numeric};
use crate::state::channel::Status;

/// Client-only tags (`+name`) may take this many bytes (IRCv3 message-tags).
const MAX_CLIENT_TAGS: usize = 4094;

pub fn privmsg(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    send_message(ctx, msg, "PRIVMSG")
}

pub fn notice(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    send_message(ctx, msg, "NOTICE")
}

pub fn tagmsg(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    send_message(ctx, msg, "TAGMSG")
}

/// The client-only tags of a message, as written (escaped), if the sender may send them.
fn client_tags(ctx: &Ctx<'_>, msg: &Message<'_>) -> Result<Option<Box<str>>, ()> {
    if ctx.me().caps & bits::MESSAGE_TAGS == 0 {
        return Ok(None);
    }
    let Some(raw) = msg.tags else { return Ok(None) };
    keep_client_tags(raw)
}

/// The client-only (`+`) tags of a raw tag section, as written; Err when they are too long.
/// (A client's, or a linked rustircd server's: links pass them on as received.) The error
/// carries nothing: each caller answers it its own way.
#[allow(clippy::result_unit_err)]
pub fn keep_client_tags(raw: &str) -> Result<Option<Box<str>>, ()> {
    let kept: Vec<&str> = raw
        .split(';')
        .filter(|t| t.starts_with('+') && crate::proto::tags::valid_key(t.split('=').next().unwrap_or("")))
        .collect();
    if kept.is_empty() {
        return Ok(None);
    }
    let joined = kept.join(";");
    if joined.len() > MAX_CLIENT_TAGS.min(MAX_TAGS) {
        return Err(());
    }
    Ok(Some(joined.into()))
}

fn send_message(ctx: &mut Ctx<'_>, msg: &Message<'_>, verb: &str) -> CmdResult {
    // A line of a draft/multiline batch is gathered, not sent.
    if ctx.me().caps & bits::MULTILINE != 0 && super::multiline::take_line(ctx, msg, verb) {
        return Ok(());
    }
    let quiet = verb != "PRIVMSG"; // NOTICE and TAGMSG are never answered with errors
    let tagmsg = verb == "TAGMSG";
    let Some(targets) = msg.param(0).filter(|t| !t.is_empty()) else {
        return if quiet { Ok(()) } else { Err(err!(ERR_NORECIPIENT, format!("No recipient given ({verb})"))) };
    };
    let text = msg.param(1).filter(|t| !t.is_empty());
    if text.is_none() && !tagmsg {
        return if quiet { Ok(()) } else { Err(err!(ERR_NOTEXTTOSEND)) };
    }
    let Ok(tags) = client_tags(ctx, msg) else {
        return Err(err!(ERR_INPUTTOOLONG));
    };
    if tagmsg && tags.is_none() {
        return Ok(());
    }
    send_to(ctx, verb, targets, Content::Line(text), tags)
}

/// A closed draft/multiline batch: one message of several lines, to its target.
pub fn send_multiline(
    ctx: &mut Ctx<'_>,
    verb: &str,
    target: &str,
    lines: Vec<(Box<str>, bool)>,
    tags: Option<Box<str>>,
) -> CmdResult {
    send_to(ctx, verb, target, Content::Lines(lines), tags)
}

/// What a message says: one line (none for TAGMSG), or a multiline message's lines.
enum Content<'a> {
    Line(Option<&'a str>),
    Lines(Vec<(Box<str>, bool)>),
}

impl Content<'_> {
    /// The first refusal `check` gives a line's text (the channel's +C, +c): each line of a
    /// multiline message is checked, without a list of them on every message.
    fn first_refusal<R>(&self, mut check: impl FnMut(Option<&str>) -> Option<R>) -> Option<R> {
        match self {
            Content::Line(t) => check(*t),
            Content::Lines(l) => l.iter().filter(|(t, _)| !t.is_empty()).find_map(|(t, _)| check(Some(t))),
        }
    }
}

fn send_to(ctx: &mut Ctx<'_>, verb: &str, targets: &str, content: Content<'_>, tags: Option<Box<str>>) -> CmdResult {
    let quiet = verb != "PRIVMSG";
    // TAGMSG only reaches those who understand tags.
    let need = if verb == "TAGMSG" { bits::MESSAGE_TAGS } else { 0 };
    let uid = ctx.me().uid;
    let Some(me) = ctx.st.directory.get(&uid) else { return Ok(()) };
    let mask = me.mask();
    let echo = ctx.me().caps & bits::ECHO_MESSAGE != 0;
    ctx.me_mut().last_spoke = ctx.now;
    let max = ctx.st.cfg.limits.max_targets;
    for (i, target) in targets.split(',').filter(|t| !t.is_empty()).enumerate() {
        if i >= max {
            if !quiet {
                ctx.reply(Numeric::ERR_TOOMANYTARGETS, &[target, &format!("Too many targets; at most {max}")]);
            }
            continue;
        }
        let (min, chan_name) = match target.as_bytes()[0] {
            b'@' if is_channel_name(&target[1..]) => (Status::OP, &target[1..]),
            b'+' if is_channel_name(&target[1..]) => (Status::VOICE, &target[1..]),
            _ => (Status::NONE, target),
        };
        let build = |ctx: &mut Ctx<'_>, to: &str| {
            let meta = meta(ctx.st, &*ctx.out, Some(uid), tags.clone());
            match &content {
                Content::Line(text) => {
                    let mut l = Line::new().source(&mask).verb(verb).param(to);
                    if let Some(t) = text {
                        l = l.trailing(t);
                    }
                    Shared::with_meta(l.finish().into(), meta)
                }
                Content::Lines(lines) => {
                    let multi = Multi {
                        source: mask.as_str().into(),
                        verb: verb.into(),
                        target: to.into(),
                        lines: lines.clone(),
                    };
                    let mut line = Shared::with_meta(multi.fallback().into(), meta);
                    line.multi = Some(Arc::new(multi));
                    line
                }
            }
        };
        if is_channel_name(chan_name) {
            let folded = ctx.st.cm.fold(chan_name);
            let refused = match (ctx.st.channels.get(&folded), ctx.st.directory.get(&uid)) {
                (Some(view), Some(me)) => {
                    content.first_refusal(|t| may_speak(ctx.st.cm, &view.ch, me, t).err()).map(|r| r.reply(chan_name))
                }
                (Some(_), None) => continue,
                (None, _) => Some(err!(ERR_NOSUCHCHANNEL, chan_name)),
            };
            match refused {
                Some(r) if !quiet => ctx.reply_err(&r),
                Some(_) => {}
                None => {
                    let line = build(ctx, target);
                    let msg = ChanMsg { chan: folded, line: line.clone(), sender: uid, min, need, at: ctx.now };
                    to_channel(ctx.st, ctx.out, msg);
                    if echo {
                        echo_back(ctx, &line);
                    }
                }
            }
            continue;
        }
        let Some(u) = ctx.st.directory.by_nick(&ctx.st.cm.fold(target)) else {
            if !quiet {
                ctx.reply(Numeric::ERR_NOSUCHNICK, &[target]);
            }
            continue;
        };
        let (tuid, tnick, away) = (u.uid, u.nick.clone(), u.away.clone());
        let line = build(ctx, &tnick);
        to_user(ctx.st, ctx.out, tuid, &line, need, ctx.now);
        super::history::record::private(ctx.st, ctx.out, uid, tuid, &line);
        if echo {
            echo_back(ctx, &line);
        }
        if let (Some(a), false) = (away, quiet) {
            ctx.reply(Numeric::RPL_AWAY, &[&tnick, &a]);
        }
    }
    Ok(())
}

/// echo-message: the sender's own copy, as its capabilities want it, among its replies.
fn echo_back(ctx: &mut Ctx<'_>, line: &Shared) {
    let caps = ctx.me().caps;
    let mut buf = Vec::new();
    line.render(caps, &mut buf);
    // Replies gathered so far go first, then the echo, in order.
    ctx.flush();
    let conn = ctx.conn;
    reply(ctx.st, ctx.out, conn, &buf);
}
