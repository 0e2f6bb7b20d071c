//! KILL: `KILL <nick> [<reason>]` — the user is disconnected with
//! `Killed (<oper> (<reason>))`, wherever it is.

use std::sync::Arc;

use super::super::connection::close_later;
use super::super::envelope::Env;
use super::super::outbox::Outbox;
use super::super::{CmdResult, Ctx};
use super::snotice::snotice;
use crate::commands::envelope::Control;
use crate::err;
use crate::local::shard::ShardState;
use crate::proto::Message;
use crate::state::Uid;

pub fn kill(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    super::require(ctx, "kill")?;
    let nick = msg.params[0];
    let Some(target) = ctx.st.directory.by_nick(&ctx.st.cm.fold(nick)) else {
        return Err(err!(ERR_NOSUCHNICK, nick));
    };
    let (tuid, tnick, tshard) = (target.uid, target.nick.clone(), target.location.shard());
    let me = ctx.me().target().to_string();
    let why = msg.param(1).filter(|r| !r.is_empty()).unwrap_or("No reason given");
    let reason: Arc<str> = format!("Killed ({me} ({why}))").into();
    snotice(ctx.st, ctx.out, &format!("Received KILL message for {tnick} from {me} ({why})"));
    log::info!("Kill: {tnick} by {me} ({why})");
    if tshard == ctx.st.me {
        kill_local(ctx.st, ctx.out, tuid, &reason);
    } else {
        ctx.out.to_shard(tshard, Env::Control(Control::Kill { target: tuid, reason }));
    }
    Ok(())
}

/// Ends a user of this shard for a KILL.
pub fn kill_local(st: &mut ShardState, _out: &mut dyn Outbox, uid: Uid, reason: &str) {
    if let Some(&conn) = st.local.get(&uid) {
        close_later(st, conn, reason);
    }
}
