//! PING and PONG: a client's keep-alive. (The server's own PINGs to a silent client, and the
//! ping timeout, are in `timers.rs`; any line counts as an answer, see `connection::data`.)

use super::{CmdResult, Ctx};
use crate::proto::{Line, Message};

/// `PING <token>`: answered with PONG carrying the token.
pub fn ping(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(token) = msg.param(0) else {
        return Err(crate::err!(ERR_NOORIGIN));
    };
    let server = ctx.server().to_string();
    let line = Line::new().source(&server).verb("PONG").param(&server).trailing(token).finish();
    ctx.send(&line);
    Ok(())
}

/// `PONG`: any line already counts as life; nothing more to do.
pub fn pong(_ctx: &mut Ctx<'_>, _msg: &Message<'_>) -> CmdResult {
    Ok(())
}
