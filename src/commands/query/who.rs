//! WHO: `WHO <mask> [o][%<fields>[,<token>]]` — 352 (or 354 with WHOX fields), then 315.
//! The mask is a channel, or matched against nick, user, host, server and realname. Invisible
//! users are listed only to those who share a channel with them.

use super::super::{CmdResult, Ctx};
use crate::proto::names::is_channel_name;
use crate::proto::{mask, Line, Message, Numeric};
use crate::state::channel::Status;
use crate::state::{Uid, User, UserModes};

struct Whox {
    fields: String,
    token: String,
}

pub fn who(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let target = msg.param(0).unwrap_or("*");
    let opts = msg.param(1).unwrap_or("");
    let (flags, whox) = match opts.split_once('%') {
        Some((f, rest)) => {
            let (fields, token) = rest.split_once(',').unwrap_or((rest, ""));
            (f, Some(Whox { fields: fields.to_string(), token: token.chars().take(3).collect() }))
        }
        None => (opts, None),
    };
    let opers_only = flags.contains('o');
    let multi = ctx.me().caps & super::super::cap::bits::MULTI_PREFIX != 0;
    let me = ctx.me().uid;
    let mut rows: Vec<(Uid, Option<(String, Status)>)> = Vec::new();
    if is_channel_name(target) {
        let folded = ctx.st.cm.fold(target);
        if let Some(view) = ctx.st.channels.get(&folded) {
            let member = view.ch.members.contains_key(&me);
            if member || !view.ch.is_secret() {
                for (uid, st) in &view.ch.members {
                    let Some(u) = ctx.st.directory.get(uid) else { continue };
                    if !member && u.modes.has(UserModes::INVISIBLE) {
                        continue;
                    }
                    rows.push((*uid, Some((view.ch.name.to_string(), *st))));
                }
            }
        }
    } else {
        let pattern = if target == "0" { "*" } else { target };
        let server = ctx.server().to_string();
        let shares = |u: &User| {
            u.channels.iter().any(|c| ctx.st.channels.get(c).is_some_and(|v| v.ch.members.contains_key(&me)))
        };
        let cm = ctx.st.cm;
        for u in ctx.st.directory.iter() {
            let matched = mask::matches(cm, pattern, &u.nick)
                || mask::matches(cm, pattern, &u.user)
                || mask::matches(cm, pattern, &u.host)
                || mask::matches(cm, pattern, &server)
                || mask::matches(cm, pattern, &u.realname);
            if !matched {
                continue;
            }
            // Invisibility hides from masks, not from a search for the exact nick.
            let exact = cm.eq(pattern, &u.nick);
            if u.uid != me && !exact && u.modes.has(UserModes::INVISIBLE) && !shares(u) {
                continue;
            }
            // A user's first visible channel stands in the channel column.
            let chan = u.channels.iter().find_map(|c| {
                let v = ctx.st.channels.get(c)?;
                (!v.ch.is_secret() || v.ch.members.contains_key(&me))
                    .then(|| (v.ch.name.to_string(), v.ch.status(&u.uid).unwrap_or_default()))
            });
            rows.push((u.uid, chan));
        }
    }
    rows.sort_by_key(|(u, _)| ctx.st.directory.get(u).map(|u| u.folded.clone()));
    for (uid, chan) in rows {
        let Some(u) = ctx.st.directory.get(&uid).cloned() else { continue };
        if opers_only && !u.modes.has(UserModes::OPER) {
            continue;
        }
        let mut fl = String::from(if u.away.is_some() { "G" } else { "H" });
        if u.modes.has(UserModes::OPER) {
            fl.push('*');
        }
        if let Some((_, s)) = &chan {
            fl.push_str(if multi { s.all_prefixes() } else { s.prefix() });
        }
        if u.modes.has(UserModes::BOT) {
            fl.push('B');
        }
        let chan_name = chan.map_or("*".to_string(), |(n, _)| n);
        match &whox {
            None => {
                let server = ctx.server().to_string();
                ctx.reply(
                    Numeric::RPL_WHOREPLY,
                    &[&chan_name, &u.user, &u.host, &server, &u.nick, &fl, &format!("0 {}", u.realname)],
                );
            }
            Some(w) => whox_row(ctx, w, &u, &chan_name, &fl),
        }
    }
    ctx.reply(Numeric::RPL_ENDOFWHO, &[target]);
    Ok(())
}

fn whox_row(ctx: &mut Ctx<'_>, w: &Whox, u: &User, chan: &str, flags: &str) {
    let server = ctx.server().to_string();
    let mut l = Line::new().source(&server).verb(Numeric::RPL_WHOSPCRPL.as_str()).param(ctx.me().target());
    let idle = if ctx.st.local.contains_key(&u.uid) {
        ctx.st
            .local
            .get(&u.uid)
            .and_then(|c| ctx.st.clients.get(c))
            .map_or(0, |c| ctx.now.duration_since(c.last_spoke).as_secs())
    } else {
        0
    };
    // The fields come back in this fixed order, whatever order they were asked in.
    let mut values: Vec<String> = Vec::new();
    for f in "tcuihsnfdlaor".chars() {
        if !w.fields.contains(f) {
            continue;
        }
        values.push(match f {
            't' => w.token.clone(),
            'c' => chan.to_string(),
            'u' => u.user.to_string(),
            'i' => u.ip.to_string(),
            'h' => u.host.to_string(),
            's' => server.clone(),
            'n' => u.nick.to_string(),
            'f' => flags.to_string(),
            'd' => "0".to_string(),
            'l' => idle.to_string(),
            'a' => u.account.as_deref().unwrap_or("0").to_string(),
            'o' => "n/a".to_string(),
            _ => u.realname.to_string(),
        });
    }
    let last = values.len().saturating_sub(1);
    for (i, v) in values.iter().enumerate() {
        l = if i == last && w.fields.contains('r') { l.trailing(v) } else { l.param(v) };
    }
    let line = l.finish();
    ctx.send(&line);
}
