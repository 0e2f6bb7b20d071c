//! Operator commands: OPER, KILL, WALLOPS, REHASH, DIE, RESTART, KLINE/UNKLINE, DLINE/UNDLINE,
//! CONNECT and SQUIT, and the server notices operators with `+s` receive.

pub mod bans;
pub mod kill;
pub mod limit;
pub mod links;
#[allow(clippy::module_inception)] // OPER, beside KILL, WALLOPS...: one file per command family
pub mod oper;
pub mod process;
pub mod snotice;
pub mod wallops;

use super::{CmdResult, Ctx};
use crate::err;
use crate::state::UserModes;

/// The running client's oper block, if it is an operator with `privilege`; else the refusal
/// (481 for non-operators, 723 ERR_NOPRIVS for a missing privilege).
pub fn require(ctx: &Ctx<'_>, privilege: &str) -> CmdResult {
    let me = ctx.me();
    let is_oper = ctx.st.directory.get(&me.uid).is_some_and(|u| u.modes.has(UserModes::OPER));
    let Some(name) = me.rare().oper.as_ref().filter(|_| is_oper) else {
        return Err(err!(ERR_NOPRIVILEGES));
    };
    match ctx.st.cfg.opers.iter().find(|o| &o.name == name) {
        Some(o) if o.may(privilege) => Ok(()),
        _ => Err(err!(ERR_NOPRIVS, privilege)),
    }
}
