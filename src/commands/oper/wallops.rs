//! WALLOPS: `WALLOPS :<text>` — to every user with `+w`, on every shard.

use std::sync::Arc;

use super::super::delivery::{broadcast, to_conn};
use super::super::envelope::Env;
use super::super::outbox::{Conn, Outbox};
use super::super::{CmdResult, Ctx};
use crate::commands::envelope::Control;
use crate::local::shard::ShardState;
use crate::proto::{Line, Message};
use crate::state::UserModes;

pub fn wallops(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    super::require(ctx, "wallops")?;
    let uid = ctx.me().uid;
    let Some(u) = ctx.st.directory.get(&uid) else { return Ok(()) };
    let line: Arc<[u8]> = Line::new().source(&u.mask()).verb("WALLOPS").trailing(msg.params[0]).finish().into();
    deliver(ctx.st, ctx.out, &line);
    broadcast(ctx.st, ctx.out, || Env::Control(Control::Wallops { line: line.clone() }));
    crate::commands::link::relay::wallops(ctx.st, ctx.out, uid, msg.params[0]);
    Ok(())
}

/// Shows a WALLOPS line to this shard's `+w` users.
pub fn deliver(st: &mut ShardState, out: &mut dyn Outbox, line: &[u8]) {
    let targets: Vec<Conn> = st
        .local
        .iter()
        .filter(|(uid, _)| st.directory.get(uid).is_some_and(|u| u.modes.has(UserModes::WALLOPS)))
        .map(|(_, c)| *c)
        .collect();
    for conn in targets {
        to_conn(st, out, conn, line);
    }
}
