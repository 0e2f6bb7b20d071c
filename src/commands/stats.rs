//! STATS: `STATS <letter>` — one report per letter, always ended by 219 (also for letters the
//! server does not know). Ban and operator listings are for operators only, as in ircd-hybrid.
//!
//! - `k`: K-lines (216), `d`: D-lines (225), `o`: oper blocks (243), `u`: uptime (242).

use super::{CmdResult, Ctx};
use crate::proto::{Message, Numeric};
use crate::state::bans::{Ban, BanKind};
use crate::state::UserModes;

pub fn stats(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(letter) = msg.param(0).and_then(|p| p.chars().next()) else {
        return Err(crate::err!(ERR_NEEDMOREPARAMS, "STATS"));
    };
    let oper_only = matches!(letter, 'k' | 'K' | 'd' | 'D' | 'o' | 'O');
    if oper_only && !is_oper(ctx) {
        ctx.reply(Numeric::ERR_NOPRIVILEGES, &[]);
    } else {
        match letter {
            'k' | 'K' => bans(ctx, BanKind::K),
            'd' | 'D' => bans(ctx, BanKind::D),
            'o' | 'O' => opers(ctx),
            'u' => uptime(ctx),
            _ => {}
        }
    }
    ctx.reply(Numeric::RPL_ENDOFSTATS, &[&letter.to_string()]);
    Ok(())
}

fn is_oper(ctx: &Ctx<'_>) -> bool {
    ctx.st.directory.get(&ctx.me().uid).is_some_and(|u| u.modes.has(UserModes::OPER))
}

fn bans(ctx: &mut Ctx<'_>, kind: BanKind) {
    let list: Vec<Ban> = ctx.st.bans.iter().filter(|b| b.kind == kind && b.live(ctx.unix)).cloned().collect();
    for b in list {
        let reason = describe(&b, ctx.unix);
        match kind {
            BanKind::K => {
                let (user, host) = b.mask.split_once('@').unwrap_or(("*", &b.mask));
                ctx.reply(Numeric::RPL_STATSKLINE, &["K", host, "*", user, &reason]);
            }
            BanKind::D => ctx.reply(Numeric::RPL_STATSDLINE, &["D", &b.mask, &reason]),
        }
    }
}

/// The reason with who set the ban, and how long it has left when temporary.
fn describe(b: &Ban, now: u64) -> String {
    let left = if b.expires > 0 {
        format!(", {} min. left", b.expires.saturating_sub(now).div_ceil(60))
    } else {
        String::new()
    };
    format!("{} (set by {} at {}{left})", b.reason, b.setter, crate::clock::format_utc(b.set_at))
}

fn opers(ctx: &mut Ctx<'_>) {
    let blocks: Vec<(String, String, String)> = ctx
        .st
        .cfg
        .opers
        .iter()
        .flat_map(|o| o.hosts.iter().map(|h| (h.clone(), o.name.clone(), o.privileges.join(","))))
        .collect();
    for (host, name, privs) in blocks {
        ctx.reply(Numeric::RPL_STATSOLINE, &["O", &host, "*", &name, &privs]);
    }
}

fn uptime(ctx: &mut Ctx<'_>) {
    let up = ctx.unix.saturating_sub(ctx.st.started_unix);
    let text = format!("Server Up {} days, {}:{:02}:{:02}", up / 86_400, up % 86_400 / 3600, up % 3600 / 60, up % 60);
    ctx.reply(Numeric::RPL_STATSUPTIME, &[&text]);
}
