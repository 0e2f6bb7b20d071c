//! WHOWAS: `WHOWAS <nick>[,<nick>] [<count>]` — 314 and 312 per entry, 406 when none, 369.

use super::super::{CmdResult, Ctx};
use crate::proto::{Message, Numeric};

pub fn whowas(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let count = msg.param(1).and_then(|c| c.parse::<i64>().ok()).filter(|c| *c > 0).unwrap_or(0) as usize;
    for nick in msg.params[0].split(',').filter(|n| !n.is_empty()) {
        let entries: Vec<_> =
            ctx.st.whowas.lookup(&ctx.st.cm.fold(nick), count, ctx.unix).into_iter().cloned().collect();
        if entries.is_empty() {
            ctx.st.metrics.c.whowas_misses += 1;
        } else {
            ctx.st.metrics.c.whowas_hits += 1;
        }
        if entries.is_empty() {
            ctx.reply(Numeric::ERR_WASNOSUCHNICK, &[nick]);
        }
        for e in entries {
            ctx.reply(Numeric::RPL_WHOWASUSER, &[&e.nick, &e.user, &e.host, "*", &e.realname]);
            ctx.reply(Numeric::RPL_WHOISSERVER, &[&e.nick, &e.server, &crate::clock::format_utc(e.when)]);
        }
        ctx.reply(Numeric::RPL_ENDOFWHOWAS, &[nick]);
    }
    Ok(())
}
