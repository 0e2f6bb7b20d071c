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

/// The first 16 bytes of `prefix + nick` as a big-endian number (zero-padded): numbers order
/// as the texts do, except between texts that share those 16 bytes. Sorting by it compares
/// integers instead of calling `memcmp` (the sort was three quarters of a 1000-member NAMES,
/// measured with callgrind).
fn sort_key(prefix: &str, nick: &str) -> u128 {
    let mut key = [0u8; 16];
    let (p, n) = (prefix.as_bytes(), nick.as_bytes());
    let pl = p.len().min(16);
    key[..pl].copy_from_slice(&p[..pl]);
    let nl = n.len().min(16 - pl);
    key[pl..pl + nl].copy_from_slice(&n[..nl]);
    u128::from_be_bytes(key)
}

/// The texts' own order, for members whose keys are equal.
fn text_order(a: (&str, &str), b: (&str, &str)) -> std::cmp::Ordering {
    a.0.bytes().chain(a.1.bytes()).cmp(b.0.bytes().chain(b.1.bytes()))
}

/// 353 lines, as many as the 512-byte limit needs. Built from borrowed nicks (no string per
/// member: a 1000-member NAMES was 1,000 `format!`s and a sort of 1,000 strings), sorted as the
/// `prefix + nick` text sorts.
fn send_members(ctx: &mut Ctx<'_>, chan: &Folded) {
    let mut out: Vec<u8> = Vec::new();
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
        let none_leaving = st.leaving.is_empty();
        // Sized once: collected from a filter, the list grew by doubling (callgrind).
        let mut entries: Vec<(u128, &'static str, Cow<'_, str>)> = Vec::with_capacity(view.ch.members.len());
        entries.extend(
            view.ch.members.iter().filter(|(uid, _)| none_leaving || !st.leaving.contains(*uid)).filter_map(
                |(uid, m)| {
                    let u = st.directory.get(uid)?;
                    let prefix = if multi { m.status.all_prefixes() } else { m.status.prefix() };
                    let shown = if userhost { Cow::Owned(u.mask()) } else { Cow::Borrowed(&*u.nick) };
                    Some((sort_key(prefix, &shown), prefix, shown))
                },
            ),
        );
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| text_order((a.1, &a.2), (b.1, &b.2))));
        let server: &str = &st.cfg.server.name;
        let me = me.target();
        // ":server 353 me symbol name :" and CRLF-less body.
        let fixed = 1 + server.len() + 5 + me.len() + 1 + symbol.len() + 1 + name.len() + 2;
        let mut chunk = String::with_capacity(MAX_BODY);
        let body: usize = entries.iter().map(|e| e.1.len() + e.2.len() + 1).sum();
        out.reserve(body + (body / MAX_BODY.saturating_sub(fixed).max(1) + 1) * (fixed + 2));
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
        for (_, prefix, nick) in &entries {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Members are ordered exactly as their `prefix + nick` texts would sort, nicks longer
    /// than the key and sharing its bytes included.
    #[test]
    fn members_sort_as_their_text() {
        let prefixes = ["", "+", "@", "%", "@+", "~@%+"];
        let nicks = [
            "alice",
            "Bob",
            "@x",
            "a",
            "ab",
            "zed",
            "[m]",
            "+plus",
            "_u",
            "alicE",
            "a_rather_long_nick_1",
            "a_rather_long_nick_2",
            "a_rather_long_nick",
            "a_rather_long_nicK_0",
        ];
        let mut entries: Vec<(u128, &'static str, &str)> = Vec::new();
        for p in prefixes {
            for n in nicks {
                entries.push((sort_key(p, n), p, n));
            }
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| text_order((a.1, a.2), (b.1, b.2))));
        let sorted: Vec<String> = entries.iter().map(|(_, p, n)| format!("{p}{n}")).collect();
        let mut text = sorted.clone();
        text.sort();
        assert_eq!(sorted, text);
    }
}
