//! NAMES: `NAMES [<channels>]` — 353 lines of members with prefixes, then 366.

use std::borrow::Cow;

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

/// 353 lines, as many as the 512-byte limit needs. Built from borrowed nicks (no string per
/// member: a 1000-member NAMES was 1,000 `format!`s and a sort of 1,000 strings), sorted as the
/// `prefix + nick` text sorts.
fn send_members(ctx: &mut Ctx<'_>, chan: &Folded) {
    let mut out = Vec::new();
    {
        let st = &*ctx.st;
        let Some(view) = st.channels.get(chan) else { return };
        let name: &str = &view.ch.name;
        let symbol = if view.ch.flags.has(Flags::SECRET) {
            "@"
        } else if view.ch.flags.has(Flags::PRIVATE) {
            "*"
        } else {
            "="
        };
        let Some(me) = st.clients.get(&ctx.conn) else { return };
        let (multi, userhost) = (me.caps & bits::MULTI_PREFIX != 0, me.caps & bits::USERHOST_IN_NAMES != 0);
        let mut entries: Vec<(&'static str, Cow<'_, str>)> = view
            .ch
            .members
            .iter()
            .filter(|(uid, _)| !st.leaving.contains(*uid))
            .filter_map(|(uid, m)| {
                let u = st.directory.get(uid)?;
                let prefix = if multi { m.status.all_prefixes() } else { m.status.prefix() };
                Some((prefix, if userhost { Cow::Owned(u.mask()) } else { Cow::Borrowed(&*u.nick) }))
            })
            .collect();
        entries.sort_unstable_by(|a, b| a.0.bytes().chain(a.1.bytes()).cmp(b.0.bytes().chain(b.1.bytes())));
        let server: &str = &st.cfg.server.name;
        let me = me.target();
        // ":server 353 me symbol name :" and CRLF-less body.
        let fixed = 1 + server.len() + 5 + me.len() + 1 + symbol.len() + 1 + name.len() + 2;
        let mut chunk = String::new();
        let flush = |out: &mut Vec<u8>, chunk: &mut String| {
            *out = Line::after(std::mem::take(out))
                .source(server)
                .verb("353")
                .param(me)
                .param(symbol)
                .param(name)
                .trailing(chunk)
                .finish();
            chunk.clear();
        };
        for (prefix, nick) in &entries {
            let len = prefix.len() + nick.len();
            if !chunk.is_empty() && fixed + chunk.len() + 1 + len > MAX_BODY {
                flush(&mut out, &mut chunk);
            }
            if !chunk.is_empty() {
                chunk.push(' ');
            }
            chunk.push_str(prefix);
            chunk.push_str(nick);
        }
        if !chunk.is_empty() {
            flush(&mut out, &mut chunk);
        }
    }
    ctx.send(&out);
}
