//! REHASH, DIE and RESTART. The main thread owns the config file: REHASH asks it to re-read
//! and validate the whole file; the new config reaches every shard at once, or (on any error)
//! the old one stays and the oper is told why. DIE and RESTART work only where the config
//! allows them (`allow_die`, `allow_restart`).

use super::super::outbox::{Conn, Outbox, ToMain};
use super::super::{CmdResult, Ctx};
use super::snotice::snotice;
use crate::err;
use crate::local::shard::ShardState;
use crate::proto::{Line, Message, Numeric};

pub fn rehash(ctx: &mut Ctx<'_>, _msg: &Message<'_>) -> CmdResult {
    super::require(ctx, "rehash")?;
    let source = ctx.st.cfg.source.clone();
    ctx.reply(Numeric::RPL_REHASHING, &[&source]);
    let who = ctx.me().target().to_string();
    snotice(ctx.st, ctx.out, &format!("{who} is rehashing the server config"));
    let conn = ctx.conn;
    ctx.out.to_main(ToMain::Rehash { conn });
    Ok(())
}

/// The main thread's answer to this shard's REHASH.
pub fn rehashed(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, errors: Vec<String>) {
    let server = st.cfg.server.name.clone();
    let Some(c) = st.clients.get(&conn) else { return };
    let nick = c.target().to_string();
    let mut buf = Vec::new();
    let mut notice = |text: &str| {
        buf.extend_from_slice(&Line::new().source(&server).verb("NOTICE").param(&nick).trailing(text).finish())
    };
    if errors.is_empty() {
        notice("*** Configuration reloaded");
    } else {
        notice(&format!("*** Configuration NOT reloaded: {} error(s); the previous one stays", errors.len()));
        for e in &errors {
            notice(&format!("*** {e}"));
        }
    }
    super::super::delivery::to_conn(st, out, conn, &buf);
}

pub fn die(ctx: &mut Ctx<'_>, _msg: &Message<'_>) -> CmdResult {
    super::require(ctx, "die")?;
    if !ctx.st.cfg.server.allow_die {
        disabled(ctx, "DIE", "allow_die");
        return Err(err!(ERR_NOPRIVS, "die"));
    }
    let who = ctx.me().target().to_string();
    log::warn!("DIE by {who}");
    snotice(ctx.st, ctx.out, &format!("Server terminating by request of {who}"));
    ctx.out.request_stop();
    Ok(())
}

pub fn restart(ctx: &mut Ctx<'_>, _msg: &Message<'_>) -> CmdResult {
    super::require(ctx, "restart")?;
    if !ctx.st.cfg.server.allow_restart {
        disabled(ctx, "RESTART", "allow_restart");
        return Err(err!(ERR_NOPRIVS, "restart"));
    }
    let who = ctx.me().target().to_string();
    log::warn!("RESTART by {who}");
    snotice(ctx.st, ctx.out, &format!("Server restarting by request of {who}"));
    ctx.out.to_main(ToMain::Restart);
    Ok(())
}

/// Says why a command the oper may use is still refused: the config switches it off.
fn disabled(ctx: &mut Ctx<'_>, command: &str, key: &str) {
    let who = ctx.me().target().to_string();
    let text = format!("*** {command} is disabled on this server (set {key} = true in [server])");
    let line = Line::new().source(ctx.server()).verb("NOTICE").param(&who).trailing(&text).finish();
    ctx.send(&line);
}
