//! Channel changes brought by server links, decided at the channel's home by the TS rules
//! (docs/ts6 §6.2) instead of a user's rights: the peer already checked those. A lower channel
//! TS wins (our statuses, lists, modes and topic go; theirs stay), an equal one merges, a
//! higher one joins its users without their statuses. The lines our members see are made here,
//! as hybrid shows them.

use std::sync::Arc;

use crate::proto::Line;
use crate::state::channel::{render_changes, Channel, Flags, ListEntry, ListKind, ModeChange, Mutation, Status};
use crate::state::{Location, Uid};

/// A channel's simple modes as a TS6 line carries them (`+ntk key`, `+l 10`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimpleModes {
    pub flags: Flags,
    pub key: Option<Arc<str>>,
    pub limit: Option<u32>,
}

impl SimpleModes {
    /// `+ntkl key 10` with its parameters in letter order. Unknown letters are skipped.
    pub fn parse(modes: &str, args: &[&str]) -> SimpleModes {
        let mut m = SimpleModes::default();
        let mut args = args.iter();
        for c in modes.chars().skip_while(|c| *c == '+') {
            match c {
                'k' => m.key = args.next().map(|k| Arc::from(*k)),
                'l' => m.limit = args.next().and_then(|l| l.parse().ok()),
                c => {
                    if let Some(f) = Flags::from_letter(c) {
                        m.flags.set(f, true)
                    }
                }
            }
        }
        m
    }
}

/// A user of another server joining (SJOIN member or JOIN), with what its join line needs: the
/// home may not have heard of the user yet (its introduction travels in another stream).
#[derive(Clone, Debug)]
pub struct Joiner {
    pub uid: Uid,
    pub status: Status,
    pub mask: Arc<str>,
    pub at: Location,
}

impl Joiner {
    fn nick(&self) -> &str {
        self.mask.split('!').next().unwrap_or(&self.mask)
    }
}

/// A channel change from a server link. `source` is who the members see doing it: a user's
/// `nick!user@host` or a server's name.
#[derive(Clone, Debug)]
pub enum RemoteChan {
    /// SJOIN (with the sender's modes) or JOIN (`modes` None: a JOIN carries none).
    Sjoin {
        name: Arc<str>,
        ts: u64,
        modes: Option<SimpleModes>,
        members: Vec<Joiner>,
        source: Arc<str>,
    },
    Part {
        name: Arc<str>,
        uid: Uid,
        mask: Arc<str>,
        reason: Option<String>,
    },
    Kick {
        name: Arc<str>,
        source: Arc<str>,
        by: Option<Uid>,
        target: Uid,
        target_nick: Arc<str>,
        reason: String,
    },
    /// TOPIC, or TBURST (`burst`: the rules of §3.5 decide).
    Topic {
        name: Arc<str>,
        source: Arc<str>,
        by: Option<Uid>,
        text: String,
        setter: Arc<str>,
        at: u64,
        burst: Option<TopicBurst>,
    },
    /// TMODE or BMASK: ignored when `ts` is newer than ours.
    Modes {
        name: Arc<str>,
        source: Arc<str>,
        by: Option<Uid>,
        ts: u64,
        changes: Vec<ModeChange>,
        nicks: Vec<(Uid, Arc<str>)>,
    },
    /// MLOCK: services lock mode letters; ignored when `ts` is newer than ours.
    Mlock {
        name: Arc<str>,
        ts: u64,
        letters: String,
    },
    /// Channel metadata from a rustircd server: ignored when `ts` is newer than ours.
    Metadata {
        name: Arc<str>,
        ts: u64,
        by: Option<Uid>,
        changes: Vec<(Box<str>, Option<Box<str>>)>,
    },
}

/// What decides a topic burst: TBURST and ETB (the channel's TS decides, then the newer
/// topic), or charybdis' TB (`chan_ts: None`: only over no topic or a newer one — the older
/// topic wins).
#[derive(Clone, Copy, Debug)]
pub struct TopicBurst {
    pub chan_ts: Option<u64>,
    /// From a `[server] services` server: always wins.
    pub from_service: bool,
}

impl RemoteChan {
    pub fn name(&self) -> &Arc<str> {
        match self {
            RemoteChan::Sjoin { name, .. }
            | RemoteChan::Part { name, .. }
            | RemoteChan::Kick { name, .. }
            | RemoteChan::Topic { name, .. }
            | RemoteChan::Modes { name, .. }
            | RemoteChan::Mlock { name, .. }
            | RemoteChan::Metadata { name, .. } => name,
        }
    }

    /// The user making the change, if a user makes it (the change's actor).
    pub fn by(&self) -> Option<Uid> {
        match self {
            RemoteChan::Sjoin { members, .. } => members.first().map(|j| j.uid),
            RemoteChan::Part { uid, .. } => Some(*uid),
            RemoteChan::Kick { by, .. }
            | RemoteChan::Topic { by, .. }
            | RemoteChan::Modes { by, .. }
            | RemoteChan::Metadata { by, .. } => *by,
            RemoteChan::Mlock { .. } => None,
        }
    }
}

/// The home's decision: the mutation and the lines members see, or nothing to do.
pub fn decide(
    ch: &mut Channel,
    r: RemoteChan,
    server: &str,
    nick_of: &dyn Fn(&Uid) -> String,
) -> Option<(Mutation, Vec<u8>)> {
    match r {
        RemoteChan::Sjoin { ts, modes, members, source, .. } => {
            Some(sjoin(ch, ts, modes.as_ref(), &members, &source, server, nick_of))
        }
        RemoteChan::Part { uid, mask, reason, .. } => ch.members.contains_key(&uid).then(|| {
            let mut l = Line::new().source(&mask).verb("PART").param(&ch.name);
            if let Some(r) = &reason {
                l = l.trailing(r);
            }
            (Mutation::Leave { uid }, l.finish())
        }),
        RemoteChan::Kick { source, target, target_nick, reason, .. } => ch.members.contains_key(&target).then(|| {
            let line =
                Line::new().source(&source).verb("KICK").param(&ch.name).param(&target_nick).trailing(&reason).finish();
            (Mutation::Leave { uid: target }, line)
        }),
        RemoteChan::Mlock { ts, letters, .. } => {
            if ts > ch.created {
                return None;
            }
            let lock = (!letters.is_empty()).then(|| Arc::<str>::from(letters.as_str()));
            (ch.mlock != lock).then(|| (Mutation::Mlock(lock), Vec::new()))
        }
        RemoteChan::Metadata { ts, changes, .. } => {
            let kept = ch.metadata.as_deref();
            // A new key past our limit is not taken (a link's state cannot grow without bound).
            let full =
                |k: &str| kept.is_some_and(|m| !m.contains_key(k) && m.len() >= crate::commands::metadata::MAX_KEYS);
            let changes: Vec<_> = changes
                .into_iter()
                .filter(|(k, v)| kept.and_then(|m| m.get(k)) != v.as_ref() && (v.is_none() || !full(k)))
                .collect();
            // Subscribers are told by each shard as it applies the change: no line.
            (ts <= ch.created && !changes.is_empty()).then(|| (Mutation::Metadata(changes), Vec::new()))
        }
        RemoteChan::Topic { source, text, setter, at, burst, .. } => {
            if let Some(b) = burst {
                let wins = match b.chan_ts {
                    Some(ts) => {
                        ts < ch.created || (ts == ch.created && ch.topic.as_ref().is_none_or(|t| at > t.set_at))
                    }
                    None => ch.topic.as_ref().is_none_or(|t| at < t.set_at),
                };
                if !(b.from_service || wins) {
                    return None;
                }
            }
            let same =
                ch.topic.as_ref().map(|t| &*t.text) == Some(text.as_str()) || (ch.topic.is_none() && text.is_empty());
            let topic = (!text.is_empty()).then(|| crate::state::channel::Topic {
                text: text.as_str().into(),
                set_by: setter,
                set_at: at,
            });
            let line = if same {
                Vec::new()
            } else {
                Line::new().source(&source).verb("TOPIC").param(&ch.name).trailing(&text).finish()
            };
            Some((Mutation::Topic(topic), line))
        }
        RemoteChan::Modes { source, ts, changes, nicks, .. } => {
            if ts > ch.created {
                return None;
            }
            let kept = effective(ch, changes);
            if kept.is_empty() {
                return None;
            }
            let named = |u: &Uid| nicks.iter().find(|(x, _)| x == u).map_or_else(|| nick_of(u), |(_, n)| n.to_string());
            let line = mode_lines(&source, &ch.name, &kept, &named);
            Some((Mutation::Modes(kept), line))
        }
    }
}

/// The changes that change something: statuses of members, new list entries, removals of
/// present ones; flags, key and limit as given.
fn effective(ch: &Channel, changes: Vec<ModeChange>) -> Vec<ModeChange> {
    changes
        .into_iter()
        .filter(|c| match c {
            ModeChange::Member(_, _, _, uid) => ch.members.contains_key(uid),
            ModeChange::List(kind, true, e) => !ch.list(*kind).iter().any(|x| x.mask == e.mask),
            ModeChange::List(kind, false, e) => ch.list(*kind).iter().any(|x| x.mask == e.mask),
            _ => true,
        })
        .collect()
}

/// `:<source> MODE <chan> ...` lines, four changes with parameters at most per line.
pub fn mode_lines(source: &str, chan: &str, changes: &[ModeChange], nick_of: &dyn Fn(&Uid) -> String) -> Vec<u8> {
    let mut out = Vec::new();
    let mut group: Vec<ModeChange> = Vec::new();
    let mut with_params = 0;
    let flush = |group: &mut Vec<ModeChange>, out: &mut Vec<u8>| {
        if group.is_empty() {
            return;
        }
        let (modes, params) = render_changes(group, nick_of);
        let mut l = Line::new().source(source).verb("MODE").param(chan).param(&modes);
        for p in &params {
            l = l.param(p);
        }
        out.extend_from_slice(&l.finish());
        group.clear();
    };
    for c in changes {
        let param = !matches!(c, ModeChange::Flag(..) | ModeChange::Limit(None));
        if param && with_params == 4 {
            flush(&mut group, &mut out);
            with_params = 0;
        }
        with_params += param as usize;
        group.push(c.clone());
    }
    flush(&mut group, &mut out);
    out
}

/// The simple-mode changes that turn `from` into `to`.
fn diff(from: &SimpleModes, to: &SimpleModes) -> Vec<ModeChange> {
    let mut out = Vec::new();
    for (c, f) in Flags::TABLE {
        if from.flags.has(f) != to.flags.has(f) {
            out.push(ModeChange::Flag(f, c, to.flags.has(f)));
        }
    }
    if from.key != to.key {
        out.push(ModeChange::Key(to.key.clone()));
    }
    if from.limit != to.limit {
        out.push(ModeChange::Limit(to.limit));
    }
    out
}

fn current(ch: &Channel) -> SimpleModes {
    SimpleModes { flags: ch.flags, key: ch.key.clone(), limit: ch.limit }
}

/// SJOIN or JOIN at the home (docs/ts6 §6.2).
fn sjoin(
    ch: &mut Channel,
    ts: u64,
    modes: Option<&SimpleModes>,
    members: &[Joiner],
    source: &str,
    server: &str,
    nick_of: &dyn Fn(&Uid) -> String,
) -> (Mutation, Vec<u8>) {
    let new = ch.members.is_empty();
    let ours = ch.created;
    let lower = !new && ts < ours;
    // Their statuses count unless our TS is older.
    let theirs_count = new || ts <= ours;
    let mut changes = Vec::new();
    let mut lines = Vec::new();
    if lower {
        let notice = format!("*** Notice -- TS for {} changed from {ours} to {ts}", ch.name);
        lines.extend_from_slice(&Line::new().source(server).verb("NOTICE").param(&ch.name).trailing(&notice).finish());
        let mut ours: Vec<(&Uid, Status)> = ch.members.iter().map(|(u, m)| (u, m.status)).collect();
        ours.sort_by_key(|(u, _)| **u);
        for (uid, status) in ours {
            for (s, c) in [(Status::OP, 'o'), (Status::VOICE, 'v')] {
                if status.has(s) {
                    changes.push(ModeChange::Member(s, c, false, *uid));
                }
            }
        }
        for kind in [ListKind::Ban, ListKind::Except, ListKind::Invex] {
            for e in ch.list(kind) {
                changes.push(ModeChange::List(kind, false, e.clone()));
            }
        }
    }
    let target = match (modes, new || lower, ts == ours) {
        // New, or we lost: their modes replace ours (a JOIN brings none).
        (m, true, _) => Some(m.cloned().unwrap_or_default()),
        // Equal TS: the union, the larger limit, the key that sorts higher.
        (Some(m), false, true) => {
            let cur = current(ch);
            let mut u = cur.clone();
            for (_, f) in Flags::TABLE {
                if m.flags.has(f) {
                    u.flags.set(f, true);
                }
            }
            u.limit = match (cur.limit, m.limit) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            u.key = match (&cur.key, &m.key) {
                (Some(a), Some(b)) => Some(if b > a { b.clone() } else { a.clone() }),
                (a, b) => a.clone().or_else(|| b.clone()),
            };
            Some(u)
        }
        _ => None,
    };
    if let Some(t) = target {
        changes.extend(diff(&current(ch), &t));
    }
    lines.extend_from_slice(&mode_lines(source, &ch.name, &changes, nick_of));
    let joins: Vec<(Uid, Status, Location)> = members
        .iter()
        .filter(|j| !ch.members.contains_key(&j.uid))
        .map(|j| (j.uid, if theirs_count { j.status } else { Status::NONE }, j.at))
        .collect();
    let mut granted = Vec::new();
    for j in members.iter().filter(|j| joins.iter().any(|(u, _, _)| *u == j.uid)) {
        lines.extend_from_slice(&Line::new().source(&j.mask).verb("JOIN").param(&ch.name).finish());
        if theirs_count {
            for (s, c) in [(Status::OP, 'o'), (Status::VOICE, 'v')] {
                if j.status.has(s) {
                    granted.push(ModeChange::Member(s, c, true, j.uid));
                }
            }
        }
    }
    let joined_nick =
        |u: &Uid| members.iter().find(|j| j.uid == *u).map_or_else(|| nick_of(u), |j| j.nick().to_string());
    lines.extend_from_slice(&mode_lines(source, &ch.name, &granted, &joined_nick));
    let ts = (new || lower).then_some(ts);
    (Mutation::Burst { ts, modes: changes, clear_topic: lower, joins }, lines)
}

/// A list entry as a TS6 line gives it: set by the line's source, now.
pub fn entry(mask: &str, by: &str, at: u64) -> ListEntry {
    ListEntry { mask: mask.into(), set_by: by.into(), set_at: at }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::CaseMapping;

    fn uid(s: &str) -> Uid {
        Uid::parse(s).unwrap()
    }

    /// #tswar on our side: created at 116, +s (and +nt), bob (ours) opped.
    fn ours() -> Channel {
        let mut ch = Channel::new("#tswar".into(), CaseMapping::Ascii.fold("#tswar"), 116, 2);
        ch.flags.set(Flags::SECRET, true);
        ch.apply(&Mutation::Join { uid: uid("2BBAAAAAA"), status: Status::OP, created: None, at: Location::local(0) });
        ch.apply(&Mutation::Modes(vec![ModeChange::List(ListKind::Ban, true, entry("x!*@*", "bob", 1))]));
        ch
    }

    fn alice(status: Status) -> Joiner {
        Joiner { uid: uid("1AAAAAAAA"), status, mask: "alice!alice@127.0.0.1".into(), at: Location::Link(1) }
    }

    fn nick(u: &Uid) -> String {
        if u.as_str() == "2BBAAAAAA" {
            "bob".into()
        } else {
            u.to_string()
        }
    }

    /// `sjoin`, applied as the home then does.
    fn burst(ch: &mut Channel, ts: u64, modes: Option<&SimpleModes>, j: &[Joiner]) -> (Mutation, Vec<u8>) {
        let (m, lines) = sjoin(ch, ts, modes, j, "irc.a.lab", "irc.b.lab", &nick);
        ch.apply(&m);
        (m, lines)
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn a_lower_ts_wins_and_strips_our_side() {
        // The capture's #tswar: A's +mnt at 114 against our +nst at 116.
        let mut ch = ours();
        let modes = SimpleModes::parse("+mnt", &[]);
        let (m, lines) = burst(&mut ch, 114, Some(&modes), &[alice(Status::OP)]);
        let t = text(&lines);
        assert!(t.contains("NOTICE #tswar :*** Notice -- TS for #tswar changed from 116 to 114"), "{t}");
        assert!(t.contains(":irc.a.lab MODE #tswar -ob+m-s bob x!*@*\r\n"), "{t}");
        assert!(t.contains(":alice!alice@127.0.0.1 JOIN #tswar\r\n:irc.a.lab MODE #tswar +o alice\r\n"), "{t}");
        assert!(matches!(m, Mutation::Burst { ts: Some(114), clear_topic: true, .. }));
        assert_eq!(ch.created, 114);
        assert_eq!(ch.mode_string(false).0, "+mnt");
        assert_eq!(ch.status(&uid("2BBAAAAAA")), Some(Status::NONE));
        assert_eq!(ch.status(&uid("1AAAAAAAA")), Some(Status::OP));
        assert!(ch.bans.is_empty());
    }

    #[test]
    fn a_higher_ts_joins_without_statuses_or_modes() {
        let mut ch = ours();
        let modes = SimpleModes::parse("+mi", &[]);
        let (_, lines) = burst(&mut ch, 200, Some(&modes), &[alice(Status::OP)]);
        assert_eq!(text(&lines), ":alice!alice@127.0.0.1 JOIN #tswar\r\n");
        assert_eq!(ch.created, 116);
        assert_eq!(ch.mode_string(false).0, "+nst");
        assert_eq!(ch.status(&uid("1AAAAAAAA")), Some(Status::NONE));
        assert_eq!(ch.status(&uid("2BBAAAAAA")), Some(Status::OP));
    }

    #[test]
    fn an_equal_ts_merges() {
        let mut ch = ours();
        ch.apply(&Mutation::Modes(vec![ModeChange::Key(Some("aaa".into())), ModeChange::Limit(Some(5))]));
        let modes = SimpleModes::parse("+mkl", &["zzz", "3"]);
        let (_, lines) = burst(&mut ch, 116, Some(&modes), &[alice(Status::OP)]);
        assert_eq!(ch.mode_string(true), ("+mnstkl".to_string(), vec!["zzz".to_string(), "5".to_string()]));
        assert!(text(&lines).contains("MODE #tswar +mk zzz\r\n"), "{}", text(&lines));
        assert_eq!(ch.status(&uid("1AAAAAAAA")), Some(Status::OP));
        assert_eq!(ch.status(&uid("2BBAAAAAA")), Some(Status::OP));
    }

    #[test]
    fn a_new_channel_takes_their_ts_and_modes() {
        let mut ch = Channel::new("#new".into(), CaseMapping::Ascii.fold("#new"), 0, 2);
        let modes = SimpleModes::parse("+nt", &[]);
        let (m, lines) = burst(&mut ch, 99, Some(&modes), &[alice(Status::OP)]);
        assert!(matches!(m, Mutation::Burst { ts: Some(99), .. }));
        assert_eq!(ch.created, 99);
        assert_eq!(text(&lines), ":alice!alice@127.0.0.1 JOIN #new\r\n:irc.a.lab MODE #new +o alice\r\n");
        // A JOIN for an unknown channel makes it with no modes.
        let mut ch = Channel::new("#j".into(), CaseMapping::Ascii.fold("#j"), 0, 2);
        burst(&mut ch, 98, None, &[alice(Status::NONE)]);
        assert_eq!(ch.mode_string(false).0, "+");
    }

    #[test]
    fn tmode_with_a_newer_ts_is_ignored() {
        let mut ch = ours();
        let m = |ts| RemoteChan::Modes {
            name: "#tswar".into(),
            source: "irc.a.lab".into(),
            by: None,
            ts,
            changes: vec![ModeChange::Flag(Flags::MODERATED, 'm', true)],
            nicks: Vec::new(),
        };
        assert!(decide(&mut ch, m(117), "irc.b.lab", &nick).is_none());
        let (_, line) = decide(&mut ch, m(116), "irc.b.lab", &nick).unwrap();
        assert_eq!(text(&line), ":irc.a.lab MODE #tswar +m\r\n");
    }
}
