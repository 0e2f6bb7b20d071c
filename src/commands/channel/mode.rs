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
        // Letters services locked (MLOCK) stay as they are.
        let lock = ctx.st.channels.get(&folded).and_then(|v| v.ch.mlock.clone());
        if let Some(lock) = lock.filter(|l| l.contains(ch.letter)) {
            ctx.reply(Numeric::ERR_MLOCKRESTRICTED, &[&name, &ch.letter.to_string(), &lock]);
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

/// A MODE that changes something: the mutation, the line members see, and numerics for the
/// changes that did not take effect.
pub type Decided = (Mutation, Arc<[u8]>, Vec<Reply>);

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
) -> Result<Decided, Vec<Reply>> {
    if !ch.status(&uid).is_some_and(|s| s.is_op()) {
        return Err(vec![err!(ERR_CHANOPRIVSNEEDED, ch.name)]);
    }
    let mut draft = Draft::new(ch, mask, max_list, unix);
    for w in within_max_modes(wanted, max_modes) {
        draft.take(w);
    }
    if draft.out.is_empty() {
        return Err(draft.notes);
    }
    let line = mode_line(ch, mask, &draft.out, wanted);
    Ok((Mutation::Modes(draft.out), line, draft.notes))
}

/// The changes in order, less those with a parameter beyond the first `max_modes` of them.
fn within_max_modes(wanted: &[Requested], max_modes: usize) -> impl Iterator<Item = &Requested> {
    let mut with_param = 0;
    wanted.iter().filter(move |w| {
        if w.raw.param.is_none() {
            return true;
        }
        with_param += 1;
        with_param <= max_modes
    })
}

/// The channel as the changes decided so far leave it (so `+k a +k b` is decided in order),
/// the changes that take effect, and the numerics for those that do not.
struct Draft<'a> {
    ch: &'a Channel,
    /// Who sets list entries, and when.
    setter: &'a str,
    unix: u64,
    max_list: usize,
    flags: Flags,
    key: Option<Arc<str>>,
    limit: Option<u32>,
    lists: [Vec<ListEntry>; 3],
    statuses: Vec<(Uid, Status)>,
    out: Vec<ModeChange>,
    notes: Vec<Reply>,
}

impl<'a> Draft<'a> {
    fn new(ch: &'a Channel, setter: &'a str, max_list: usize, unix: u64) -> Self {
        Draft {
            ch,
            setter,
            unix,
            max_list,
            flags: ch.flags,
            key: ch.key.clone(),
            limit: ch.limit,
            lists: [ch.bans.clone(), ch.excepts.clone(), ch.invex.clone()],
            statuses: Vec::new(),
            out: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Decides one change by its mode letter's kind.
    fn take(&mut self, w: &Requested) {
        let r = &w.raw;
        let param = r.param.as_deref().unwrap_or("");
        match r.kind {
            ModeKind::Flag => self.flag(r),
            ModeKind::Key if r.add => self.set_key(param),
            ModeKind::Key => self.unset_key(),
            ModeKind::SetParam if r.add => self.set_limit(param),
            ModeKind::SetParam => self.unset_limit(),
            ModeKind::List => self.list(r, param),
            ModeKind::Prefix => {
                if let Some((target, nick)) = &w.target {
                    self.member(r, *target, nick);
                }
            }
        }
    }

    /// `+m`, `-t`...: a change only where the flag differs.
    fn flag(&mut self, r: &RawChange) {
        let f = Flags::from_letter(r.letter).expect("flag letter");
        if self.flags.has(f) != r.add {
            self.flags.set(f, r.add);
            self.out.push(ModeChange::Flag(f, r.letter, r.add));
        }
    }

    fn set_key(&mut self, k: &str) {
        if !valid_key(k) {
            self.notes.push(err!(ERR_INVALIDMODEPARAM, self.ch.name, "k", "*", "Invalid key"));
        } else if self.key.is_some() {
            // RFC 2812: a key is removed before another is set.
            self.notes.push(err!(ERR_KEYSET, self.ch.name));
        } else {
            self.key = Some(k.into());
            self.out.push(ModeChange::Key(self.key.clone()));
        }
    }

    fn unset_key(&mut self) {
        if self.key.take().is_some() {
            self.out.push(ModeChange::Key(None));
        }
    }

    /// `+l <n>`: a positive number; the same limit again is no change.
    fn set_limit(&mut self, p: &str) {
        match p.parse::<u32>() {
            Ok(n) if n > 0 => {
                if self.limit != Some(n) {
                    self.limit = Some(n);
                    self.out.push(ModeChange::Limit(self.limit));
                }
            }
            _ => self.notes.push(err!(
                ERR_INVALIDMODEPARAM,
                self.ch.name,
                "l",
                if p.is_empty() { "*" } else { p },
                "Invalid limit"
            )),
        }
    }

    fn unset_limit(&mut self) {
        if self.limit.take().is_some() {
            self.out.push(ModeChange::Limit(None));
        }
    }

    /// `+b <mask>` (and `e`, `I`): a mask not yet listed, while the list has room; `-b` one
    /// that is.
    fn list(&mut self, r: &RawChange, param: &str) {
        let kind = ListKind::from_letter(r.letter).expect("list letter");
        let idx = match kind {
            ListKind::Ban => 0,
            ListKind::Except => 1,
            ListKind::Invex => 2,
        };
        let m = normalize_ban_mask(param);
        let list = &mut self.lists[idx];
        let pos = list.iter().position(|e| e.mask.eq_ignore_ascii_case(&m));
        if r.add {
            if pos.is_some() {
                return;
            }
            if list.len() >= self.max_list {
                self.notes.push(err!(ERR_BANLISTFULL, self.ch.name, r.letter.to_string()));
                return;
            }
            let e = ListEntry { mask: m.into(), set_by: self.setter.into(), set_at: self.unix };
            list.push(e.clone());
            self.out.push(ModeChange::List(kind, true, e));
        } else if let Some(i) = pos {
            let e = list.remove(i);
            self.out.push(ModeChange::List(kind, false, e));
        }
    }

    /// `+o <nick>`, `-v <nick>`...: on a member, as the changes so far left its status.
    fn member(&mut self, r: &RawChange, target: Uid, nick: &str) {
        let now = self.statuses.iter().find(|(u, _)| *u == target).map(|(_, s)| *s);
        let Some(cur) = now.or_else(|| self.ch.status(&target)) else {
            self.notes.push(err!(ERR_USERNOTINCHANNEL, nick, self.ch.name));
            return;
        };
        let s = Status::from_mode(r.letter).expect("prefix letter");
        if cur.has(s) != r.add {
            let mut next = cur;
            next.set(s, r.add);
            self.statuses.retain(|(u, _)| *u != target);
            self.statuses.push((target, next));
            self.out.push(ModeChange::Member(s, r.letter, r.add, target));
        }
    }
}

/// `:setter MODE #chan +modes params...`, members named by the nick the requester gave.
fn mode_line(ch: &Channel, setter: &str, out: &[ModeChange], wanted: &[Requested]) -> Arc<[u8]> {
    let nick_of =
        |u: &Uid| wanted.iter().find_map(|w| w.target.as_ref().filter(|(t, _)| t == u).map(|(_, n)| n.to_string()));
    let (modes, params) = render_changes(out, |u| nick_of(u).unwrap_or_default());
    let mut l = Line::new().source(setter).verb("MODE").param(&ch.name).param(&modes);
    for p in &params {
        l = l.param(p);
    }
    l.finish().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::CaseMapping;
    use crate::state::{Location, UidAllocator};

    fn setup() -> (Channel, Uid, Uid) {
        let mut a = UidAllocator::new("0RC", 0, 1);
        let (op, user) = (a.allocate(), a.allocate());
        let mut ch = Channel::new("#c".into(), CaseMapping::Ascii.fold("#c"), 1, 1);
        ch.apply(&Mutation::Join { uid: op, status: Status::OP, created: Some(1), at: Location::local(0) });
        ch.apply(&Mutation::Join { uid: user, status: Status::NONE, created: None, at: Location::local(0) });
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
