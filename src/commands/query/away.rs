//! AWAY: `AWAY [:<message>]` — 306 when set, 305 when cleared; every shard learns it.

use std::sync::Arc;

use super::super::delivery::broadcast;
use super::super::envelope::Env;
use super::super::registration::hold_until_applied;
use super::super::{CmdResult, Ctx};
use crate::commands::envelope::Ordered;
use crate::proto::{Message, Numeric};

pub fn away(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let uid = ctx.me().uid;
    let away: Option<Arc<str>> = msg
        .param(0)
        .filter(|m| !m.is_empty())
        .map(|m| m.chars().take(ctx.st.cfg.limits.awaylen).collect::<String>().into());
    if let Some(u) = ctx.st.directory.get_mut(&uid) {
        u.away = away.clone();
    }
    super::super::inbox::away_seen(ctx.st, ctx.out, uid);
    crate::commands::link::relay::away(ctx.st, ctx.out, uid, away.as_deref());
    let ack = Some(ctx.conn);
    broadcast(ctx.st, ctx.out, || Env::Ordered(Ordered::UserAway { uid, away: away.clone(), ack }));
    // The answer waits until every shard knows (so a USERHOST right after is right anywhere).
    ctx.reply(if away.is_some() { Numeric::RPL_NOWAWAY } else { Numeric::RPL_UNAWAY }, &[]);
    let held = std::mem::take(&mut ctx.st.reply);
    hold_until_applied(ctx, held);
    Ok(())
}
