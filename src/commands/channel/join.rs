//! JOIN: `JOIN <channels> [<keys>]` and `JOIN 0`.

use std::sync::Arc;
use std::time::Instant;

use super::super::outbox::{Conn, Outbox};
use super::super::{CmdResult, Ctx, Reply};
use super::extban::listed;
use super::{names, submit, ChanRequest};
use crate::err;
use crate::local::shard::ShardState;
use crate::proto::names::{is_channel_name, valid_channel};
use crate::proto::{CaseMapping, Folded, Line, Message, Numeric};
use crate::state::channel::{Channel, Flags, Mutation, Status};
use crate::state::user::UserModes;
use crate::state::{Location, Uid};

pub fn join(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let targets = msg.params[0];
    let uid = ctx.me().uid;
    let Some(user) = ctx.st.directory.get(&uid) else { return Ok(()) };
    let mask: Arc<str> = user.mask().into();
    let ip_mask = format!("{}!{}@{}", user.nick, user.user, user.ip);
    let account = user.account.clone();
    let secure = user.modes.has(UserModes::SECURE);
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
        reqs.push(ChanRequest::Join { name: name.into(), key, mask, ip_mask, account, secure, invited });
    }
    submit(ctx, reqs);
    Ok(())
}

/// Who asks to join, as its own shard knows it.
pub struct Joiner<'a> {
    /// `nick!user@host`, and `nick!user@ip` (bans match either).
    pub mask: &'a str,
    pub ip_mask: &'a str,
    /// Its account (the account extban, `+R`).
    pub account: Option<&'a str>,
    /// Connected over TLS (user mode `+Z`; `+S`).
    pub secure: bool,
    /// Holds an invitation to the channel.
    pub invited: bool,
}

/// At the home: may this user join? The first to join an empty channel creates it and is
/// opped. An invitation passes `+i`, `+b`, `+k` and `+l`, but not `+S` or `+R`, which say
/// what kind of connection or user the channel takes (as on ircd-hybrid).
pub fn decide(
    ch: &mut Channel,
    cm: CaseMapping,
    uid: Uid,
    at: Location,
    key: Option<&str>,
    who: &Joiner<'_>,
    unix: u64,
) -> Result<(Mutation, Arc<[u8]>), Vec<Reply>> {
    if ch.members.contains_key(&uid) {
        return Err(Vec::new());
    }
    let (status, created) = if ch.members.is_empty() {
        ch.created = unix;
        (Status::OP, Some(unix))
    } else {
        let name = ch.name.to_string();
        if ch.flags.has(Flags::TLS_ONLY) && !who.secure {
            return Err(vec![err!(ERR_SECUREONLYCHAN, name, "Cannot join channel (+S) - you need a TLS connection")]);
        }
        if ch.flags.has(Flags::ACCOUNT_JOIN) && who.account.is_none() {
            return Err(vec![err!(
                ERR_NEEDREGGEDNICK,
                name,
                "Cannot join channel (+R) - you need to be logged in to an account"
            )]);
        }
        if !who.invited {
            let masks = [who.mask, who.ip_mask];
            let account = who.account;
            if ch.flags.has(Flags::INVITE_ONLY) && !listed(cm, &ch.invex, &masks, account) {
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
    let line = Line::new().source(who.mask).verb("JOIN").param(&ch.name).finish().into();
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
    // draft/read-marker: the joiner's marker, before NAMES.
    let name = ctx.st.channels.get(chan).map(|v| v.ch.name.clone());
    if let Some(line) = name.and_then(|n| crate::commands::read_marker::on_join(ctx.st, conn, &n, chan)) {
        ctx.send(&line);
    }
    names::send_names(&mut ctx, chan);
    // Metadata the joiner subscribed to, of the channel and its members.
    let metadata = crate::commands::metadata::on_join(ctx.st, conn, chan);
    ctx.send(&metadata);
    let lines = ctx.st.reply.clone();
    ctx.st.reply.clear();
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Numeric;
    use crate::state::channel::{ListEntry, ListKind, ModeChange};
    use crate::state::UidAllocator;

    fn joiner(account: Option<&str>, secure: bool, invited: bool) -> Joiner<'_> {
        Joiner { mask: "j!~j@host", ip_mask: "j!~j@10.0.0.1", account, secure, invited }
    }

    /// A channel with its op, these flags, and the joiner's UID.
    fn chan(flags: &[(Flags, char)]) -> (Channel, Uid) {
        let mut a = UidAllocator::new("0RC", 0, 1);
        let (op, joiner) = (a.allocate(), a.allocate());
        let cm = CaseMapping::Ascii;
        let mut ch = Channel::new("#c".into(), cm.fold("#c"), 1, 1);
        ch.apply(&Mutation::Join { uid: op, status: Status::OP, created: Some(1), at: Location::local(0) });
        ch.apply(&Mutation::Modes(flags.iter().map(|(f, l)| ModeChange::Flag(*f, *l, true)).collect()));
        (ch, joiner)
    }

    fn refused(ch: &mut Channel, uid: Uid, who: &Joiner<'_>) -> Option<Numeric> {
        decide(ch, CaseMapping::Ascii, uid, Location::local(0), None, who, 5).err().map(|e| e[0].numeric)
    }

    #[test]
    fn tls_only_takes_tls_connections_invited_or_not() {
        let (mut ch, uid) = chan(&[(Flags::TLS_ONLY, 'S')]);
        assert_eq!(refused(&mut ch, uid, &joiner(Some("acct"), false, false)), Some(Numeric::ERR_SECUREONLYCHAN));
        assert_eq!(refused(&mut ch, uid, &joiner(None, false, true)), Some(Numeric::ERR_SECUREONLYCHAN));
        assert_eq!(refused(&mut ch, uid, &joiner(None, true, false)), None);
    }

    #[test]
    fn account_join_takes_logged_in_users_invited_or_not() {
        let (mut ch, uid) = chan(&[(Flags::ACCOUNT_JOIN, 'R')]);
        assert_eq!(refused(&mut ch, uid, &joiner(None, true, false)), Some(Numeric::ERR_NEEDREGGEDNICK));
        assert_eq!(refused(&mut ch, uid, &joiner(None, true, true)), Some(Numeric::ERR_NEEDREGGEDNICK));
        assert_eq!(refused(&mut ch, uid, &joiner(Some("acct"), false, false)), None);
    }

    #[test]
    fn a_mute_keeps_nobody_out_but_a_ban_does() {
        let (mut ch, uid) = chan(&[]);
        let ban = |m: &str| {
            ModeChange::List(ListKind::Ban, true, ListEntry { mask: m.into(), set_by: "o".into(), set_at: 0 })
        };
        ch.apply(&Mutation::Modes(vec![ban("$m:j!*@*")]));
        let mut muted = ch.clone();
        assert_eq!(refused(&mut muted, uid, &joiner(None, false, false)), None);
        ch.apply(&Mutation::Modes(vec![ban("j!*@*")]));
        assert_eq!(refused(&mut ch, uid, &joiner(None, false, false)), Some(Numeric::ERR_BANNEDFROMCHAN));
        // The first to join a channel (a new one) meets none of its modes.
        let mut empty = Channel::new("#new".into(), CaseMapping::Ascii.fold("#new"), 0, 1);
        empty.flags = Flags::TABLE.iter().fold(Flags::default(), |mut f, (_, x)| {
            f.set(*x, true);
            f
        });
        assert_eq!(refused(&mut empty, uid, &joiner(None, false, false)), None);
    }
}
