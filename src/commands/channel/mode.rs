//! MODE on a channel: `MODE <channel>` (324, 329), list queries (`MODE #c b`), and changes,
//! decided at the channel's home. User modes are in `commands::user_mode`.

use std::sync::Arc;

use super::super::{CmdResult, Ctx, Reply};
use super::{submit, ChanRequest};
use crate::err;
use crate::proto::mask::normalize_ban_mask;
use crate::proto::modes::{parse_channel_modes, ModeKind, RawChange};
use crate::proto::names::is_channel_name;
use crate::proto::{Line, Message, Numeric};
use crate::state::channel::{render_changes, Channel, Flags, ListEntry, ListKind, ModeChange, Mutation, Status};
use crate::state::Uid;

/// A change as sent to the home: the raw change and, for `o`/`v`, the member it names.
#[derive(Clone, Debug)]
pub struct Requested {
    pub raw: RawChange,
    pub target: Option<(Uid, Arc<str>)>,
}

/// `MODE <target> ...`: channels here, users in `user_mode`.
pub fn mode(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    if is_channel_name(msg.params[0]) {
        channel_mode(ctx, msg)
    } else {
        super::super::user_mode::user_mode(ctx, msg)
    }
}

fn channel_mode(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let folded = ctx.st.cm.fold(msg.params[0]);
    let uid = ctx.me().uid;
    let Some(view) = ctx.st.channels.get(&folded) else {
        return Err(err!(ERR_NOSUCHCHANNEL, msg.params[0]));
    };
    let name = view.ch.name.to_string();
    let status = view.ch.status(&uid);
    let Some(modestr) = msg.param(1) else {
        let (m, params) = view.ch.mode_string(status.is_some());
        let created = view.ch.created.to_string();
        let mut p: Vec<&str> = vec![&name, &m];
        p.extend(params.iter().map(String::as_str));
        ctx.reply(Numeric::RPL_CHANNELMODEIS, &p);
        ctx.reply(Numeric::RPL_CREATIONTIME, &[&name, &created]);
        return Ok(());
    };
    let rest: Vec<&str> = msg.params[2..].to_vec();
    let (changes, unknown) = parse_channel_modes(modestr, &rest);
    for c in unknown {
        ctx.reply(Numeric::ERR_UNKNOWNMODE, &[&c.to_string()]);
    }
    let mut wanted = Vec::new();
    let mut denied = false;
    for ch in changes {
        if ch.kind == ModeKind::List && ch.param.is_none() {
            send_list(ctx, &folded, ListKind::from_letter(ch.letter).expect("list letter"));
            continue;
        }
        // A mode that needs a parameter and has none is dropped (`-l` and `-k` need none).
        let needs_param = match ch.kind {
            ModeKind::Prefix => true,
            ModeKind::SetParam | ModeKind::Key => ch.add,
            _ => false,
        };
        if needs_param && ch.param.is_none() {
            continue;
        }
        if !status.is_some_and(|s| s.is_op()) {
            denied = true;
            continue;
        }
        let mut target = None;
        if ch.kind == ModeKind::Prefix {
            let nick = ch.param.as_deref().unwrap_or("");
            let view = ctx.st.channels.get(&folded).expect("checked");
            match ctx.st.directory.by_nick(&ctx.st.cm.fold(nick)) {
                None => {
                    ctx.reply(Numeric::ERR_NOSUCHNICK, &[nick]);
                    continue;
                }
                Some(u) if !view.ch.members.contains_key(&u.uid) => {
                    let n = u.nick.clone();
                    ctx.reply(Numeric::ERR_USERNOTINCHANNEL, &[&n, &name]);
                    continue;
                }
                Some(u) => target = Some((u.uid, u.nick.clone())),
            }
        }
        wanted.push(Requested { raw: ch, target });
    }
    if denied {
        ctx.reply(Numeric::ERR_CHANOPRIVSNEEDED, &[&name]);
    }
    if !wanted.is_empty() {
        let Some(me) = ctx.st.directory.get(&uid) else { return Ok(()) };
        let mask: Arc<str> = me.mask().into();
        submit(ctx, vec![ChanRequest::Mode { name: name.into(), mask, changes: wanted }]);
    }
    Ok(())
}

/// 367/368, 348/349 or 346/347.
fn send_list(ctx: &mut Ctx<'_>, chan: &crate::proto::Folded, kind: ListKind) {
    let Some(view) = ctx.st.channels.get(chan) else { return };
    let name = view.ch.name.to_string();
    let entries = view.ch.list(kind).clone();
    let (item, end) = match kind {
        ListKind::Ban => (Numeric::RPL_BANLIST, Numeric::RPL_ENDOFBANLIST),
        ListKind::Except => (Numeric::RPL_EXCEPTLIST, Numeric::RPL_ENDOFEXCEPTLIST),
        ListKind::Invex => (Numeric::RPL_INVEXLIST, Numeric::RPL_ENDOFINVEXLIST),
    };
    for e in &entries {
        let at = e.set_at.to_string();
        let line = Line::new()
            .source(ctx.server())
            .verb(item.as_str())
            .param(ctx.me().target())
            .param(&name)
            .param(&e.mask)
            .param(&e.set_by)
            .param(&at)
            .finish();
        ctx.send(&line);
    }
    ctx.reply(end, &[&name]);
}

/// A key is 1–23 printable characters without spaces or commas (RFC 2812).
fn valid_key(k: &str) -> bool {
    !k.is_empty() && k.len() <= 23 && k.bytes().all(|b| b.is_ascii_graphic() && b != b',')
}

/// At the home: the changes that take effect, the line members see, and numerics for what did
/// not. Nothing is numbered when nothing changes.
pub fn decide(
    ch: &Channel,
    uid: Uid,
    mask: &str,
    wanted: &[Requested],
    max_list: usize,
    max_modes: usize,
    unix: u64,
) -> Result<(Mutation, Arc<[u8]>, Vec<Reply>), Vec<Reply>> {
    if !ch.status(&uid).is_some_and(|s| s.is_op()) {
        return Err(vec![err!(ERR_CHANOPRIVSNEEDED, ch.name)]);
    }
    let name = ch.name.to_string();
    let mut notes = Vec::new();
    let mut out: Vec<ModeChange> = Vec::new();
    // What the channel will look like after the changes so far (so `+k a +k b` is decided in order).
    let mut flags = ch.flags;
    let mut key = ch.key.clone();
    let mut limit = ch.limit;
    let mut lists: [Vec<ListEntry>; 3] = [ch.bans.clone(), ch.excepts.clone(), ch.invex.clone()];
    let mut statuses: Vec<(Uid, Status)> = Vec::new();
    let mut with_param = 0;
    for w in wanted {
        let r = &w.raw;
        if r.param.is_some() {
            with_param += 1;
            if with_param > max_modes {
                continue;
            }
        }
        match r.kind {
            ModeKind::Flag => {
                let f = Flags::from_letter(r.letter).expect("flag letter");
                if flags.has(f) != r.add {
                    flags.set(f, r.add);
                    out.push(ModeChange::Flag(f, r.letter, r.add));
                }
            }
            ModeKind::Key => {
                if r.add {
                    let k = r.param.as_deref().unwrap_or("");
                    if !valid_key(k) {
                        notes.push(err!(ERR_INVALIDMODEPARAM, name, "k", "*", "Invalid key"));
                        continue;
                    }
                    // RFC 2812: a key is removed before another is set.
                    if key.is_some() {
                        notes.push(err!(ERR_KEYSET, name));
                        continue;
                    }
                    key = Some(k.into());
                    out.push(ModeChange::Key(key.clone()));
                } else if key.is_some() {
                    key = None;
                    out.push(ModeChange::Key(None));
                }
            }
            ModeKind::SetParam => {
                if r.add {
                    let p = r.param.as_deref().unwrap_or("");
                    match p.parse::<u32>() {
                        Ok(n) if n > 0 => {
                            if limit != Some(n) {
                                limit = Some(n);
                                out.push(ModeChange::Limit(limit));
                            }
                        }
                        _ => notes.push(err!(
                            ERR_INVALIDMODEPARAM,
                            name,
                            "l",
                            if p.is_empty() { "*" } else { p },
                            "Invalid limit"
                        )),
                    }
                } else if limit.is_some() {
                    limit = None;
                    out.push(ModeChange::Limit(None));
                }
            }
            ModeKind::List => {
                let kind = ListKind::from_letter(r.letter).expect("list letter");
                let idx = match kind {
                    ListKind::Ban => 0,
                    ListKind::Except => 1,
                    ListKind::Invex => 2,
                };
                let m = normalize_ban_mask(r.param.as_deref().unwrap_or(""));
                let list = &mut lists[idx];
                let pos = list.iter().position(|e| e.mask.eq_ignore_ascii_case(&m));
                if r.add {
                    if pos.is_some() {
                        continue;
                    }
                    if list.len() >= max_list {
                        notes.push(err!(ERR_BANLISTFULL, name, r.letter.to_string()));
                        continue;
                    }
                    let e = ListEntry { mask: m.into(), set_by: mask.into(), set_at: unix };
                    list.push(e.clone());
                    out.push(ModeChange::List(kind, true, e));
                } else if let Some(i) = pos {
                    let e = list.remove(i);
                    out.push(ModeChange::List(kind, false, e));
                }
            }
            ModeKind::Prefix => {
                let Some((target, nick)) = &w.target else { continue };
                let Some(cur) =
                    statuses.iter().find(|(u, _)| u == target).map(|(_, s)| *s).or_else(|| ch.status(target))
                else {
                    notes.push(err!(ERR_USERNOTINCHANNEL, nick, name));
                    continue;
                };
                let s = Status::from_mode(r.letter).expect("prefix letter");
                if cur.has(s) != r.add {
                    let mut next = cur;
                    next.set(s, r.add);
                    statuses.retain(|(u, _)| u != target);
                    statuses.push((*target, next));
                    out.push(ModeChange::Member(s, r.letter, r.add, *target));
                }
            }
        }
    }
    if out.is_empty() {
        return Err(notes);
    }
    let nick_of =
        |u: &Uid| wanted.iter().find_map(|w| w.target.as_ref().filter(|(t, _)| t == u).map(|(_, n)| n.to_string()));
    let (modes, params) = render_changes(&out, |u| nick_of(u).unwrap_or_default());
    let mut l = Line::new().source(mask).verb("MODE").param(&ch.name).param(&modes);
    for p in &params {
        l = l.param(p);
    }
    Ok((Mutation::Modes(out), l.finish().into(), notes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::CaseMapping;
    use crate::state::UidAllocator;

    fn setup() -> (Channel, Uid, Uid) {
        let mut a = UidAllocator::new("0RC", 0, 1);
        let (op, user) = (a.allocate(), a.allocate());
        let mut ch = Channel::new("#c".into(), CaseMapping::Ascii.fold("#c"), 1, 1);
        ch.apply(&Mutation::Join { uid: op, status: Status::OP, created: Some(1) }, |_| 0);
        ch.apply(&Mutation::Join { uid: user, status: Status::NONE, created: None }, |_| 0);
        (ch, op, user)
    }

    fn req(s: &str, params: &[&str], target: Option<(Uid, &str)>) -> Vec<Requested> {
        let (raw, _) = parse_channel_modes(s, params);
        raw.into_iter().map(|r| Requested { raw: r, target: target.map(|(u, n)| (u, n.into())) }).collect()
    }

    #[test]
    fn only_ops_change_modes() {
        let (ch, _, user) = setup();
        let e = decide(&ch, user, "u!u@h", &req("+m", &[], None), 100, 4, 0).unwrap_err();
        assert_eq!(e[0].numeric, Numeric::ERR_CHANOPRIVSNEEDED);
    }

    #[test]
    fn effective_changes_only_and_rendering() {
        let (ch, op, user) = setup();
        // +n is already set: not shown; +o names the member.
        let (m, line, notes) = decide(&ch, op, "o!o@h", &req("+nmo", &["u"], Some((user, "u"))), 100, 4, 0).unwrap();
        assert!(notes.is_empty());
        assert_eq!(String::from_utf8_lossy(&line), ":o!o@h MODE #c +mo u\r\n");
        match m {
            Mutation::Modes(v) => assert_eq!(v.len(), 2),
            _ => panic!(),
        }
        // nothing effective: refused with no numeric
        assert!(decide(&ch, op, "o!o@h", &req("+n", &[], None), 100, 4, 0).unwrap_err().is_empty());
    }

    #[test]
    fn keys_limits_and_lists() {
        let (ch, op, _) = setup();
        let e = decide(&ch, op, "o", &req("+k", &["has space"], None), 100, 4, 0).unwrap_err();
        assert_eq!(e[0].numeric, Numeric::ERR_INVALIDMODEPARAM);
        let (_, line, _) = decide(&ch, op, "o", &req("+lk", &["5", "pw"], None), 100, 4, 0).unwrap();
        assert_eq!(String::from_utf8_lossy(&line), ":o MODE #c +lk 5 pw\r\n");
        let (_, _, notes) = decide(&ch, op, "o", &req("+bb", &["a", "b"], None), 1, 4, 0).unwrap();
        assert_eq!(notes[0].numeric, Numeric::ERR_BANLISTFULL);
    }
}
