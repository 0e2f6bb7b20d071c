//! SETNAME (IRCv3 setname): `SETNAME :<realname>` changes the realname; everyone sharing a
//! channel with the user who negotiated setname sees it, and so does the user.

use std::sync::Arc;

use super::capabilities::bits;
use super::delivery::broadcast;
use super::envelope::Env;
use super::inbox::realname_seen;
use super::registration::hold_until_applied;
use super::{CmdResult, Ctx};
use crate::commands::envelope::Ordered;
use crate::proto::{Line, Message};

/// `FAIL <command> <code> [context] :<description>` (IRCv3 standard-replies).
pub fn fail(ctx: &mut Ctx<'_>, command: &str, code: &str, context: &[&str], text: &str) {
    let line = fail_line(ctx.server(), command, code, context, text);
    ctx.send(&line);
}

/// `:<server> FAIL <command> <code> [<context>...] :<text>` (IRCv3 standard replies).
pub fn fail_line<S: AsRef<str>>(server: &str, command: &str, code: &str, context: &[S], text: &str) -> Vec<u8> {
    let mut l = Line::new().source(server).verb("FAIL").param(command).param(code);
    for c in context {
        l = l.param(c.as_ref());
    }
    l.trailing(text).finish()
}

pub fn setname(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let realname = msg.params[0];
    let max = ctx.st.cfg.limits.realnamelen;
    if realname.is_empty() || realname.chars().count() > max {
        fail(ctx, "SETNAME", "INVALID_REALNAME", &[], &format!("Realname must be 1 to {max} characters"));
        return Ok(());
    }
    let uid = ctx.me().uid;
    let realname: Arc<str> = realname.into();
    if let Some(u) = ctx.st.directory.get_mut(&uid) {
        u.realname = realname.clone();
    }
    if let Some((_, r)) = ctx.me_mut().user.as_mut() {
        *r = realname.clone();
    }
    realname_seen(ctx.st, ctx.out, uid);
    let ack = Some(ctx.conn);
    broadcast(ctx.st, ctx.out, || Env::Ordered(Ordered::UserRealname { uid, realname: realname.clone(), ack }));
    let mut own = Vec::new();
    if ctx.me().caps & bits::SETNAME != 0 {
        let mask = ctx.st.directory.get(&uid).map(|u| u.mask()).unwrap_or_default();
        own = Line::new().source(&mask).verb("SETNAME").trailing(&realname).finish();
    }
    hold_until_applied(ctx, own);
    Ok(())
}
