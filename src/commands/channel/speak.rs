//! Who may speak in a channel, and what may be said there: `+n`, `+m`, `+M`, `+C`, `+c`, bans
//! and the mute extban. Decided on the sender's shard from its view of the channel, like every
//! message check (`docs/architecture.md`, "Messages"), so a message costs no round trip.

use super::extban::{listed, muted};
use crate::commands::Reply;
use crate::err;
use crate::proto::text::{has_colour, is_ctcp_request};
use crate::proto::CaseMapping;
use crate::state::channel::{Channel, Flags};
use crate::state::User;

/// Why a message to a channel is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `+n` and the sender is not in the channel.
    NoExternal,
    /// `+m` and the sender has no voice.
    Moderated,
    /// `+M` and the sender is logged in to no account.
    NeedAccount,
    /// A `+b` matches the sender and no `+e` does.
    Banned,
    /// A `+b $m:<mask>` matches the sender and no `+e $m:<mask>` does.
    Muted,
    /// `+C` and the message is a CTCP other than ACTION.
    NoCtcp,
    /// `+c` and the message has colour codes.
    NoColour,
}

impl Refusal {
    /// What the sender is told: 404 ERR_CANNOTSENDTOCHAN with the reason, as InspIRCd and
    /// Solanum give one; 477 ERR_NEEDREGGEDNICK for `+M`, as InspIRCd and ircd-hybrid send.
    pub fn reply(self, chan: &str) -> Reply {
        let why = match self {
            Refusal::NoExternal => "Cannot send to channel (+n) - you are not in it",
            Refusal::Moderated => "Cannot send to channel (+m) - you need voice",
            Refusal::Banned => "Cannot send to channel (+b) - you are banned",
            Refusal::Muted => "Cannot send to channel ($m) - you are muted",
            Refusal::NoCtcp => "Cannot send CTCP to channel (+C)",
            Refusal::NoColour => "Cannot send colour codes to channel (+c)",
            Refusal::NeedAccount => {
                return err!(
                    ERR_NEEDREGGEDNICK,
                    chan,
                    "Cannot send to channel (+M) - you need to be logged in to an account"
                )
            }
        };
        err!(ERR_CANNOTSENDTOCHAN, chan, why)
    }
}

/// May `user` send `text` to `ch` (`text` None: a TAGMSG, which has none)?
///
/// `+C` and `+c` hold for everyone, ops included, as on InspIRCd and ircd-hybrid: they are
/// about what the channel carries, not who says it. Voice or op passes the rest: `+n`, `+m`,
/// `+M`, bans and mutes (a voiced user is not muted, as irctest's mute tests expect).
///
/// `+c` refuses a message with colour rather than stripping the colour as Solanum does: a
/// stripped message is not what its sender wrote, and the sender is never told it was changed
/// (with echo-message it would even see its own copy differ from everyone else's). InspIRCd's
/// `+c` and ircd-hybrid's refuse too, so the sender knows and can send it again plainly.
pub fn may_speak(cm: CaseMapping, ch: &Channel, user: &User, text: Option<&str>) -> Result<(), Refusal> {
    if let Some(t) = text {
        if ch.flags.has(Flags::NO_CTCP) && is_ctcp_request(t) {
            return Err(Refusal::NoCtcp);
        }
        if ch.flags.has(Flags::NO_COLOUR) && has_colour(t) {
            return Err(Refusal::NoColour);
        }
    }
    let status = ch.status(&user.uid);
    if status.is_some_and(|s| s.can_speak()) {
        return Ok(());
    }
    if status.is_none() && ch.flags.has(Flags::NO_EXTERNAL) {
        return Err(Refusal::NoExternal);
    }
    if ch.flags.has(Flags::MODERATED) {
        return Err(Refusal::Moderated);
    }
    let account = user.account.as_deref();
    if ch.flags.has(Flags::ACCOUNT_SPEAK) && account.is_none() {
        return Err(Refusal::NeedAccount);
    }
    if ch.bans.is_empty() {
        return Ok(());
    }
    let masks = [user.mask(), format!("{}!{}@{}", user.nick, user.user, user.ip)];
    let masks = [masks[0].as_str(), masks[1].as_str()];
    if listed(cm, &ch.bans, &masks, account) && !listed(cm, &ch.excepts, &masks, account) {
        return Err(Refusal::Banned);
    }
    if muted(cm, &ch.bans, &ch.excepts, &masks, account) {
        return Err(Refusal::Muted);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Numeric;
    use crate::state::channel::{ListEntry, ListKind, ModeChange, Mutation, Status};
    use crate::state::{Location, UidAllocator, UserModes};

    fn user(a: &mut UidAllocator, nick: &str, account: Option<&str>) -> User {
        let cm = CaseMapping::Ascii;
        User {
            uid: a.allocate(),
            nick: nick.into(),
            folded: cm.fold(nick),
            nick_ts: 0,
            user: "~u".into(),
            host: "host".into(),
            ip: "10.0.0.1".into(),
            realname: "r".into(),
            modes: UserModes::default(),
            away: None,
            account: account.map(Into::into),
            location: Location::local(0),
            signon: 0,
            channels: Vec::new(),
            metadata: None,
        }
    }

    fn set(ch: &mut Channel, changes: Vec<ModeChange>) {
        ch.apply(&Mutation::Modes(changes));
    }

    fn flag(f: Flags, l: char, on: bool) -> ModeChange {
        ModeChange::Flag(f, l, on)
    }

    fn entry(kind: ListKind, mask: &str) -> ModeChange {
        ModeChange::List(kind, true, ListEntry { mask: mask.into(), set_by: "op".into(), set_at: 0 })
    }

    /// A `+nt` channel with an op, a voiced member and a plain one; and an outsider.
    fn setup() -> (Channel, [User; 4]) {
        let mut a = UidAllocator::new("0RC", 0, 1);
        let us = [
            user(&mut a, "op", None),
            user(&mut a, "vo", None),
            user(&mut a, "plain", None),
            user(&mut a, "out", None),
        ];
        let cm = CaseMapping::Ascii;
        let mut ch = Channel::new("#c".into(), cm.fold("#c"), 1, 1);
        for (u, s) in us.iter().zip([Status::OP, Status::VOICE, Status::NONE]) {
            ch.apply(&Mutation::Join { uid: u.uid, status: s, created: None, at: Location::local(0) });
        }
        (ch, us)
    }

    #[test]
    fn no_ctcp_and_no_colour_hold_for_everyone_but_actions_pass() {
        let cm = CaseMapping::Ascii;
        let (mut ch, us) = setup();
        set(&mut ch, vec![flag(Flags::NO_CTCP, 'C', true), flag(Flags::NO_COLOUR, 'c', true)]);
        for u in &us[..3] {
            assert_eq!(may_speak(cm, &ch, u, Some("\x01PING 1\x01")), Err(Refusal::NoCtcp), "{}", u.nick);
            assert_eq!(may_speak(cm, &ch, u, Some("\x034red")), Err(Refusal::NoColour), "{}", u.nick);
            assert_eq!(may_speak(cm, &ch, u, Some("\x01ACTION waves\x01")), Ok(()));
            assert_eq!(may_speak(cm, &ch, u, Some("\x02bold\x02")), Ok(()));
            assert_eq!(may_speak(cm, &ch, u, None), Ok(()), "a TAGMSG has no text to refuse");
        }
        set(&mut ch, vec![flag(Flags::NO_CTCP, 'C', false)]);
        assert_eq!(may_speak(cm, &ch, &us[2], Some("\x01PING 1\x01")), Ok(()));
    }

    #[test]
    fn account_speak_lets_accounts_and_voices_speak() {
        let cm = CaseMapping::Ascii;
        let (mut ch, mut us) = setup();
        set(&mut ch, vec![flag(Flags::ACCOUNT_SPEAK, 'M', true)]);
        assert_eq!(may_speak(cm, &ch, &us[2], Some("hi")), Err(Refusal::NeedAccount));
        assert_eq!(may_speak(cm, &ch, &us[1], Some("hi")), Ok(()), "voice passes +M");
        us[2].account = Some("plain".into());
        assert_eq!(may_speak(cm, &ch, &us[2], Some("hi")), Ok(()));
        assert_eq!(Refusal::NeedAccount.reply("#c").numeric, Numeric::ERR_NEEDREGGEDNICK);
        assert_eq!(Refusal::NoCtcp.reply("#c").numeric, Numeric::ERR_CANNOTSENDTOCHAN);
        assert_eq!(Refusal::NoCtcp.reply("#c").params.len(), 2, "the channel and the reason");
    }

    #[test]
    fn mutes_silence_but_voice_and_mute_exceptions_lift_them() {
        let cm = CaseMapping::Ascii;
        let (mut ch, us) = setup();
        set(&mut ch, vec![entry(ListKind::Ban, "$m:plain!*@*"), entry(ListKind::Ban, "$m:vo!*@*")]);
        assert_eq!(may_speak(cm, &ch, &us[2], Some("hi")), Err(Refusal::Muted));
        assert_eq!(may_speak(cm, &ch, &us[1], Some("hi")), Ok(()), "voice passes a mute");
        set(&mut ch, vec![entry(ListKind::Except, "$m:*!~u@*")]);
        assert_eq!(may_speak(cm, &ch, &us[2], Some("hi")), Ok(()));
        // Plain bans as before, and +n, +m.
        set(&mut ch, vec![entry(ListKind::Ban, "*!*@10.0.0.1")]);
        assert_eq!(may_speak(cm, &ch, &us[2], Some("hi")), Err(Refusal::Banned));
        assert_eq!(may_speak(cm, &ch, &us[3], Some("hi")), Err(Refusal::NoExternal));
        set(&mut ch, vec![flag(Flags::MODERATED, 'm', true)]);
        assert_eq!(may_speak(cm, &ch, &us[2], Some("hi")), Err(Refusal::Moderated));
        assert_eq!(may_speak(cm, &ch, &us[0], Some("hi")), Ok(()));
    }
}
