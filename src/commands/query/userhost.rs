//! ISON and USERHOST.

use super::super::{CmdResult, Ctx};
use crate::proto::{Message, Numeric};
use crate::state::UserModes;

/// `ISON <nick>...`: 303 with those online, in the case they use.
pub fn ison(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let mut online = Vec::new();
    for nick in msg.params.iter().flat_map(|p| p.split(' ')).filter(|n| !n.is_empty()) {
        if let Some(u) = ctx.st.directory.by_nick(&ctx.st.cm.fold(nick)) {
            online.push(u.nick.to_string());
        }
    }
    ctx.reply(Numeric::RPL_ISON, &[&online.join(" ")]);
    Ok(())
}

/// `USERHOST <nick>...` (at most 5): 302 with `nick[*]=±user@host` for each that exists.
pub fn userhost(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let me = ctx.me().uid;
    let mut out = Vec::new();
    for nick in msg.params.iter().take(5) {
        if let Some(u) = ctx.st.directory.by_nick(&ctx.st.cm.fold(nick)) {
            let oper = if u.modes.has(UserModes::OPER) { "*" } else { "" };
            let away = if u.away.is_some() { '-' } else { '+' };
            // A user sees its own real address; others see the displayed host.
            let host = if u.uid == me { &u.ip } else { &u.host };
            out.push(format!("{}{oper}={away}{}@{host}", u.nick, u.user));
        }
    }
    ctx.reply(Numeric::RPL_USERHOST, &[&out.join(" ")]);
    Ok(())
}
