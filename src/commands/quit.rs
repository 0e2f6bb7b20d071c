//! QUIT: the client leaves. The close itself (ERROR, the QUIT others see, the nick released)
//! is the connection's life, in `connection.rs`.

use super::connection::close_later;
use super::{CmdResult, Ctx};
use crate::proto::Message;

/// `QUIT [:reason]`
pub fn quit(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let reason = match msg.param(0) {
        Some(r) if !r.is_empty() => format!("Quit: {r}"),
        _ => "Client Quit".to_string(),
    };
    let conn = ctx.conn;
    close_later(ctx.st, conn, reason);
    Ok(())
}
