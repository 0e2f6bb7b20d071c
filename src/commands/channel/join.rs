//! JOIN: `JOIN <channels> [<keys>]` and `JOIN 0`.

use std::sync::Arc;
use std::time::Instant;

use super::super::outbox::{Conn, Outbox};
use super::super::{CmdResult, Ctx, Reply};
use super::{names, submit, ChanRequest};
use crate::err;
use crate::local::shard::ShardState;
use crate::proto::names::{is_channel_name, valid_channel};
use crate::proto::{mask, CaseMapping, Folded, Line, Message, Numeric};
use crate::state::channel::{Channel, ListEntry, Mutation, Status};
use crate::state::{Location, Uid};

pub fn join(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let targets = msg.params[0];
    let uid = ctx.me().uid;
    let Some(user) = ctx.st.directory.get(&uid) else { return Ok(()) };
    let mask: Arc<str> = user.mask().into();
    let ip_mask = format!("{}!{}@{}", user.nick, user.user, user.ip);
    let account = user.account.clone();
    if targets == "0" {
        let reqs = user
            .channels
            .iter()
            .filter_map(|f| ctx.st.channels.get(f))
            .map(|v| ChanRequest::Part { name: v.ch.name.clone(), mask: mask.clone(), reason: None })
            .collect();
        submit(ctx, reqs);
        return Ok(());
    }
    let mut in_count = user.channels.len();
    let keys: Vec<&str> = msg.param(1).map(|k| k.split(',').collect()).unwrap_or_default();
    let limits = ctx.st.cfg.limits.clone();
    let mut reqs = Vec::new();
    for (i, name) in targets.split(',').enumerate() {
        if name.is_empty() {
            continue;
        }
        if !valid_channel(name, limits.channellen) {
            // Not a channel at all: 403; a channel name with a forbidden character: 476.
            let n = if is_channel_name(name) { Numeric::ERR_BADCHANMASK } else { Numeric::ERR_NOSUCHCHANNEL };
            ctx.reply(n, &[name]);
            continue;
        }
        let folded = ctx.st.cm.fold(name);
        if ctx.st.channels.get(&folded).is_some_and(|v| v.ch.members.contains_key(&uid)) {
            continue;
        }
        if in_count >= limits.max_channels {
            ctx.reply(Numeric::ERR_TOOMANYCHANNELS, &[name]);
            continue;
        }
        in_count += 1;
        let invited = ctx.me().rare().invites.contains(&folded);
        let key = keys.get(i).filter(|k| !k.is_empty()).map(|k| k.to_string());
        let (mask, ip_mask, account) = (mask.clone(), ip_mask.clone(), account.clone());
        reqs.push(ChanRequest::Join { name: name.into(), key, mask, ip_mask, account, invited });
    }
    submit(ctx, reqs);
    Ok(())
}

/// Whether a user's masks match any entry of a list.
/// Whether a user with these masks (`nick!user@host`, `nick!user@ip`) and `account` is on a
/// ban, exception or invite-exception list. `$a` (any logged-in user) and `$a:<mask>` (an
/// account matching the mask) are the account extban (005 `EXTBAN=$,a`).
pub fn listed(cm: CaseMapping, list: &[ListEntry], masks: &[&str], account: Option<&str>) -> bool {
    list.iter().any(|e| match e.mask.strip_prefix("$a") {
        Some("") => account.is_some(),
        Some(rest) => match (rest.strip_prefix(':'), account) {
            (Some(pat), Some(acct)) => mask::matches(cm, pat, acct),
            _ => false,
        },
        None => masks.iter().any(|m| mask::matches(cm, &e.mask, m)),
    })
}

/// At the home: may this user join? The first to join an empty channel creates it and is
/// opped. An invitation passes `+i`, `+b`, `+k` and `+l`.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    ch: &mut Channel,
    cm: CaseMapping,
    uid: Uid,
    at: Location,
    key: Option<&str>,
    mask: &str,
    ip_mask: &str,
    account: Option<&str>,
    invited: bool,
    unix: u64,
) -> Result<(Mutation, Arc<[u8]>), Vec<Reply>> {
    if ch.members.contains_key(&uid) {
        return Err(Vec::new());
    }
    let (status, created) = if ch.members.is_empty() {
        ch.created = unix;
        (Status::OP, Some(unix))
    } else {
        if !invited {
            let masks = [mask, ip_mask];
            let name = ch.name.to_string();
            if ch.flags.has(crate::state::channel::Flags::INVITE_ONLY) && !listed(cm, &ch.invex, &masks, account) {
                return Err(vec![err!(ERR_INVITEONLYCHAN, name)]);
            }
            if listed(cm, &ch.bans, &masks, account) && !listed(cm, &ch.excepts, &masks, account) {
                return Err(vec![err!(ERR_BANNEDFROMCHAN, name)]);
            }
            if let Some(k) = &ch.key {
                if key != Some(k.as_ref()) {
                    return Err(vec![err!(ERR_BADCHANNELKEY, name)]);
                }
            }
            if ch.limit.is_some_and(|l| ch.members.len() >= l as usize) {
                return Err(vec![err!(ERR_CHANNELISFULL, name)]);
            }
        }
        (Status::NONE, None)
    };
    let line = Line::new().source(mask).verb("JOIN").param(&ch.name).finish().into();
    Ok((Mutation::Join { uid, status, created, at }, line))
}

/// After this shard applied its own user's JOIN: the topic and the names (returned, to go
/// out with the JOIN), and the invitation is used up.
pub fn after_join(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    conn: Conn,
    chan: &Folded,
    now: Instant,
    unix: u64,
) -> Vec<u8> {
    let mut ctx = Ctx { st, out, conn, now, unix };
    if let Some(r) = ctx.me_mut().rare_if_any() {
        r.invites.retain(|f| f != chan);
    }
    super::topic::send_topic(&mut ctx, chan, false);
    names::send_names(&mut ctx, chan);
    let lines = ctx.st.reply.clone();
    ctx.st.reply.clear();
    lines
}

#[cfg(test)]
mod tests {
    use super::listed;
    use crate::proto::CaseMapping;
    use crate::state::channel::ListEntry;

    fn list(masks: &[&str]) -> Vec<ListEntry> {
        masks.iter().map(|m| ListEntry { mask: (*m).into(), set_by: "op".into(), set_at: 0 }).collect()
    }

    #[test]
    fn the_account_extban_matches_accounts_and_only_them() {
        let cm = CaseMapping::Ascii;
        let masks = ["alice!~a@host", "alice!~a@10.0.0.1"];
        assert!(listed(cm, &list(&["$a"]), &masks, Some("alice")));
        assert!(!listed(cm, &list(&["$a"]), &masks, None));
        assert!(listed(cm, &list(&["$a:ALI*"]), &masks, Some("alice")));
        assert!(!listed(cm, &list(&["$a:bob"]), &masks, Some("alice")));
        assert!(!listed(cm, &list(&["$a:*"]), &masks, None));
        // Ordinary masks as before; an unknown extban matches nobody.
        assert!(listed(cm, &list(&["*!*@10.0.0.*"]), &masks, None));
        assert!(!listed(cm, &list(&["$x:alice"]), &masks, Some("alice")));
    }
}
