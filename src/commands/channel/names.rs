//! NAMES: `NAMES [<channels>]` — 353 lines of members with prefixes, then 366.

use super::super::capabilities::bits;
use super::super::{CmdResult, Ctx};
use crate::proto::line::MAX_BODY;
use crate::proto::{Folded, Line, Message, Numeric};
use crate::state::channel::Flags;

pub fn names(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(targets) = msg.param(0) else {
        ctx.reply(Numeric::RPL_ENDOFNAMES, &["*"]);
        return Ok(());
    };
    // The members of every channel named, then one 366 for the whole list.
    let uid = ctx.me().uid;
    for name in targets.split(',').filter(|n| !n.is_empty()) {
        let folded = ctx.st.cm.fold(name);
        let visible =
            ctx.st.channels.get(&folded).is_some_and(|v| !v.ch.is_secret() || v.ch.members.contains_key(&uid));
        if visible {
            send_members(ctx, &folded);
        }
    }
    ctx.reply(Numeric::RPL_ENDOFNAMES, &[targets]);
    Ok(())
}

/// 353 lines and 366 for one channel (after a JOIN).
pub fn send_names(ctx: &mut Ctx<'_>, chan: &Folded) {
    send_members(ctx, chan);
    if let Some(view) = ctx.st.channels.get(chan) {
        let name = view.ch.name.to_string();
        ctx.reply(Numeric::RPL_ENDOFNAMES, &[&name]);
    }
}

/// 353 lines, as many as the 512-byte limit needs.
fn send_members(ctx: &mut Ctx<'_>, chan: &Folded) {
    let Some(view) = ctx.st.channels.get(chan) else { return };
    let name = view.ch.name.to_string();
    let symbol = if view.ch.flags.has(Flags::SECRET) {
        "@"
    } else if view.ch.flags.has(Flags::PRIVATE) {
        "*"
    } else {
        "="
    };
    let caps = ctx.me().caps;
    let (multi, userhost) = (caps & bits::MULTI_PREFIX != 0, caps & bits::USERHOST_IN_NAMES != 0);
    let mut entries: Vec<String> = view
        .ch
        .members
        .iter()
        .filter(|(uid, _)| !ctx.st.leaving.contains(*uid))
        .filter_map(|(uid, m)| {
            let u = ctx.st.directory.get(uid)?;
            let prefix = if multi { m.status.all_prefixes() } else { m.status.prefix() };
            Some(if userhost { format!("{prefix}{}", u.mask()) } else { format!("{prefix}{}", u.nick) })
        })
        .collect();
    entries.sort_unstable();
    let server = ctx.server().to_string();
    let me = ctx.me().target().to_string();
    let fixed = format!(":{server} 353 {me} {symbol} {name} :").len();
    let mut chunk = String::new();
    let flush = |ctx: &mut Ctx<'_>, chunk: &mut String| {
        let line =
            Line::new().source(&server).verb("353").param(&me).param(symbol).param(&name).trailing(chunk).finish();
        ctx.send(&line);
        chunk.clear();
    };
    for e in entries {
        if !chunk.is_empty() && fixed + chunk.len() + 1 + e.len() > MAX_BODY {
            flush(ctx, &mut chunk);
        }
        if !chunk.is_empty() {
            chunk.push(' ');
        }
        chunk.push_str(&e);
    }
    if !chunk.is_empty() {
        flush(ctx, &mut chunk);
    }
}
