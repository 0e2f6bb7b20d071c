//! User modes: `MODE <nick> [<modes>]` — 221 to read; `i`, `w`, `s` to set; `o` only to drop
//! (OPER sets it). Other users' modes are not anyone else's business (502).

use super::delivery::broadcast;
use super::envelope::Env;
use super::{CmdResult, Ctx};
use crate::commands::envelope::Ordered;
use crate::err;
use crate::proto::{Line, Message, Numeric};
use crate::state::UserModes;

pub fn user_mode(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let uid = ctx.me().uid;
    let target = msg.params[0];
    let Some(u) = ctx.st.directory.by_nick(&ctx.st.cm.fold(target)) else {
        return Err(err!(ERR_NOSUCHNICK, target));
    };
    if u.uid != uid {
        return Err(err!(ERR_USERSDONTMATCH));
    }
    let before = u.modes;
    let Some(changes) = msg.param(1) else {
        ctx.reply(Numeric::RPL_UMODEIS, &[&before.to_mode_string()]);
        return Ok(());
    };
    let mut modes = before;
    let mut add = true;
    let mut unknown = false;
    for c in changes.chars() {
        match c {
            '+' => add = true,
            '-' => add = false,
            'i' | 'w' | 'B' => modes.set(UserModes::from_letter(c).expect("known"), add),
            // Server notices are for operators only.
            's' => {
                if !add || modes.has(UserModes::OPER) {
                    modes.set(UserModes::SNOTICE, add)
                }
            }
            'o' => {
                if !add {
                    modes.set(UserModes::OPER, false);
                    modes.set(UserModes::SNOTICE, false);
                }
            }
            // Set by the server only.
            'Z' => {}
            _ => unknown = true,
        }
    }
    if unknown {
        ctx.reply(Numeric::ERR_UMODEUNKNOWNFLAG, &[]);
    }
    if modes == before {
        return Ok(());
    }
    let mut diff = String::new();
    for (on, sign) in [(true, '+'), (false, '-')] {
        let letters: String = UserModes::TABLE
            .iter()
            .filter(|(_, m)| modes.has(*m) == on && before.has(*m) != on)
            .map(|(c, _)| *c)
            .collect();
        if !letters.is_empty() {
            diff.push(sign);
            diff.push_str(&letters);
        }
    }
    ctx.st.directory.set_modes(&uid, modes);
    crate::commands::link::relay::umodes(ctx.st, ctx.out, uid, before, modes);
    ctx.st.snotice_targets = None;
    let nick = ctx.me().target().to_string();
    let line = Line::new().source(&nick).verb("MODE").param(&nick).trailing(&diff).finish();
    let ack = Some(ctx.conn);
    broadcast(ctx.st, ctx.out, || Env::Ordered(Ordered::UserModes { uid, modes, ack }));
    super::registration::hold_until_applied(ctx, line);
    Ok(())
}
