//! A channel's state, and the one function that changes it: [`Channel::apply`]. The home shard
//! applies each [`Mutation`] to its authoritative copy when it accepts a request; every shard
//! applies the same mutations, in the home's sequence order, to its own copy (its *view*). The
//! same code on the same input keeps every copy equal.

use std::sync::Arc;

use ahash::AHashMap;
use smallvec::SmallVec;

use super::location::Location;
use super::servers::Sid;
use super::uid::Uid;
use crate::proto::Folded;

/// A member's prefix status as bit flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status(u8);

impl Status {
    pub const NONE: Status = Status(0);
    pub const VOICE: Status = Status(1);
    pub const OP: Status = Status(2);

    pub fn has(self, s: Status) -> bool {
        self.0 & s.0 != 0
    }
    pub fn set(&mut self, s: Status, on: bool) {
        if on {
            self.0 |= s.0
        } else {
            self.0 &= !s.0
        }
    }
    pub fn is_op(self) -> bool {
        self.has(Status::OP)
    }
    /// Voiced or better.
    pub fn can_speak(self) -> bool {
        self.0 != 0
    }
    /// The highest prefix (`@`, `+` or nothing).
    pub fn prefix(self) -> &'static str {
        if self.has(Status::OP) {
            "@"
        } else if self.has(Status::VOICE) {
            "+"
        } else {
            ""
        }
    }
    /// Every prefix, highest first (multi-prefix).
    pub fn all_prefixes(self) -> &'static str {
        match (self.has(Status::OP), self.has(Status::VOICE)) {
            (true, true) => "@+",
            (true, false) => "@",
            (false, true) => "+",
            (false, false) => "",
        }
    }
    pub fn from_mode(c: char) -> Option<Status> {
        match c {
            'o' => Some(Status::OP),
            'v' => Some(Status::VOICE),
            _ => None,
        }
    }
}

/// Channel flag modes (type D) as bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags(u16);

impl Flags {
    pub const INVITE_ONLY: Flags = Flags(1 << 0); // i
    pub const MODERATED: Flags = Flags(1 << 1); // m
    pub const NO_EXTERNAL: Flags = Flags(1 << 2); // n
    pub const PRIVATE: Flags = Flags(1 << 3); // p
    pub const SECRET: Flags = Flags(1 << 4); // s
    pub const TOPIC_OPS: Flags = Flags(1 << 5); // t
    /// No CTCP but ACTION to the channel.
    pub const NO_CTCP: Flags = Flags(1 << 6); // C
    /// Only users logged in to an account may speak (voice and ops still may).
    pub const ACCOUNT_SPEAK: Flags = Flags(1 << 7); // M
    /// Only users logged in to an account may join.
    pub const ACCOUNT_JOIN: Flags = Flags(1 << 8); // R
    /// Only users connected over TLS may join.
    pub const TLS_ONLY: Flags = Flags(1 << 9); // S
    /// No colour codes.
    pub const NO_COLOUR: Flags = Flags(1 << 10); // c

    /// Letters in display order (ASCII, as `324` shows them).
    pub const TABLE: [(char, Flags); 11] = [
        ('C', Flags::NO_CTCP),
        ('M', Flags::ACCOUNT_SPEAK),
        ('R', Flags::ACCOUNT_JOIN),
        ('S', Flags::TLS_ONLY),
        ('c', Flags::NO_COLOUR),
        ('i', Flags::INVITE_ONLY),
        ('m', Flags::MODERATED),
        ('n', Flags::NO_EXTERNAL),
        ('p', Flags::PRIVATE),
        ('s', Flags::SECRET),
        ('t', Flags::TOPIC_OPS),
    ];

    pub fn has(self, f: Flags) -> bool {
        self.0 & f.0 != 0
    }
    pub fn set(&mut self, f: Flags, on: bool) {
        if on {
            self.0 |= f.0
        } else {
            self.0 &= !f.0
        }
    }
    pub fn from_letter(c: char) -> Option<Flags> {
        Flags::TABLE.iter().find(|(l, _)| *l == c).map(|(_, f)| *f)
    }
}

/// What closes a channel to whoever comes along next: the modes that restrict who may join
/// (`+i`, `+k`, `+R`, `+S`, a ban on everyone) or hide it (`+s`, `+p`). History kept across a
/// restart is handed back only for a channel that had none of them (`history_db`): the first to
/// create it again could not have joined the old one, or known it was there. `+l` limits how
/// many, not who, and a ban on some is not a closed door.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Closed {
    flags: Flags,
    key: bool,
    banned_all: bool,
}

impl Closed {
    pub const OPEN: Closed = Closed { flags: Flags(0), key: false, banned_all: false };
    /// The flag modes that close a channel.
    const FLAGS: Flags =
        Flags(Flags::INVITE_ONLY.0 | Flags::PRIVATE.0 | Flags::SECRET.0 | Flags::ACCOUNT_JOIN.0 | Flags::TLS_ONLY.0);

    pub fn of(ch: &Channel) -> Closed {
        Closed {
            flags: Flags(ch.flags.0 & Closed::FLAGS.0),
            key: ch.key.is_some(),
            banned_all: ch.bans.iter().any(|b| bans_everyone(&b.mask)),
        }
    }

    pub fn is_open(self) -> bool {
        self == Closed::OPEN
    }

    /// The letters that close it, flags in the order `324` shows them, then `k` and `b`
    /// (empty when open).
    pub fn letters(self) -> String {
        let mut s: String = Flags::TABLE.iter().filter(|(_, f)| self.flags.has(*f)).map(|(l, _)| *l).collect();
        if self.key {
            s.push('k');
        }
        if self.banned_all {
            s.push('b');
        }
        s
    }
}

/// A ban mask every user matches (`*!*@*`, `*`); an extban (`$a`, `$m:`...) is something else.
fn bans_everyone(mask: &str) -> bool {
    !mask.is_empty() && mask.chars().all(|c| matches!(c, '*' | '!' | '@'))
}

/// Which list a list mode edits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    Ban,
    Except,
    Invex,
}

impl ListKind {
    pub fn letter(self) -> char {
        match self {
            ListKind::Ban => 'b',
            ListKind::Except => 'e',
            ListKind::Invex => 'I',
        }
    }
    pub fn from_letter(c: char) -> Option<ListKind> {
        match c {
            'b' => Some(ListKind::Ban),
            'e' => Some(ListKind::Except),
            'I' => Some(ListKind::Invex),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    pub mask: Arc<str>,
    pub set_by: Arc<str>,
    pub set_at: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topic {
    pub text: Arc<str>,
    pub set_by: Arc<str>,
    pub set_at: u64,
}

/// One effective mode change, as applied and as shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModeChange {
    Flag(Flags, char, bool),
    Key(Option<Arc<str>>),
    Limit(Option<u32>),
    List(ListKind, bool, ListEntry),
    Member(Status, char, bool, Uid),
}

/// A change to a channel. Produced by the home shard, applied everywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// `created` is set when this join creates the channel (its TS).
    Join {
        uid: Uid,
        status: Status,
        created: Option<u64>,
        /// Where the member is (its shard counts it for fan-out).
        at: Location,
    },
    /// Part, kick or quit: the member leaves.
    Leave {
        uid: Uid,
    },
    Modes(Vec<ModeChange>),
    Topic(Option<Topic>),
    /// Services lock (or unlock, `None`) mode letters (TS6 `MLOCK`); nobody is shown it.
    Mlock(Option<Arc<str>>),
    /// IRCv3 metadata keys set (`Some`) or removed.
    Metadata(Vec<(Box<str>, Option<Box<str>>)>),
    /// Users of another server join at once (a TS6 `SJOIN`, or `JOIN` with a TS), as the home
    /// decided by the channel TS rules: `ts` is the channel's new TS when theirs was lower (or
    /// the channel is new), `modes` what changes first (our statuses, lists and modes cleared
    /// when we lost; their modes), `clear_topic` when we lost, then `joins`.
    Burst {
        ts: Option<u64>,
        modes: Vec<ModeChange>,
        clear_topic: bool,
        joins: Vec<(Uid, Status, Location)>,
    },
    /// RENAME, first half, numbered by the old name's home: the channel leaves that name and
    /// that home. Nobody is shown it; every shard drops its view (the second half shows it).
    Moved {
        to: Arc<str>,
    },
    /// RENAME, second half, numbered by the new name's home: the channel as the old home
    /// handed it over, under its new name (`from`: the old one).
    Arrived {
        from: Arc<str>,
        reason: Arc<str>,
        state: Box<Channel>,
    },
}

/// A channel member: its status, and where it is (which shard's count it is in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub status: Status,
    pub at: Location,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    pub name: Arc<str>,
    pub folded: Folded,
    pub created: u64,
    pub flags: Flags,
    pub key: Option<Arc<str>>,
    pub limit: Option<u32>,
    pub topic: Option<Topic>,
    /// IRCv3 metadata (draft/metadata), set by operators.
    pub metadata: super::Metadata,
    pub bans: Vec<ListEntry>,
    pub excepts: Vec<ListEntry>,
    pub invex: Vec<ListEntry>,
    pub members: AHashMap<Uid, Member>,
    /// Members each shard delivers to (fan-out goes to shards with a non-zero count).
    pub per_shard: SmallVec<[u32; 4]>,
    /// Members behind server links, counted by their server (no zero entries): the links a
    /// channel message must cross are found from these, not from a scan of the members.
    pub per_server: SmallVec<[(Sid, u32); 2]>,
    /// The mode letters services locked (TS6 `MLOCK`): users may not change them.
    pub mlock: Option<Arc<str>>,
    /// When it was last renamed (unix seconds; 0: never): renames are rate-limited.
    pub renamed: u64,
}

impl Channel {
    pub fn new(name: Arc<str>, folded: Folded, created: u64, shards: usize) -> Self {
        Channel {
            name,
            folded,
            created,
            // New channels are +nt, as on most networks.
            flags: Flags(Flags::NO_EXTERNAL.0 | Flags::TOPIC_OPS.0),
            key: None,
            limit: None,
            topic: None,
            bans: Vec::new(),
            excepts: Vec::new(),
            invex: Vec::new(),
            members: AHashMap::default(),
            per_shard: smallvec::smallvec![0; shards],
            per_server: SmallVec::new(),
            mlock: None,
            metadata: None,
            renamed: 0,
        }
    }

    /// Counts a member of another server in or out of [`Channel::per_server`].
    fn count_server(&mut self, uid: &Uid, at: Location, delta: i32) {
        if at.is_local() {
            return;
        }
        let sid = Sid::of(uid);
        match self.per_server.iter().position(|(s, _)| *s == sid) {
            Some(i) => {
                let n = &mut self.per_server[i].1;
                *n = n.saturating_add_signed(delta);
                if *n == 0 {
                    self.per_server.swap_remove(i);
                }
            }
            None if delta > 0 => self.per_server.push((sid, delta as u32)),
            None => {}
        }
    }

    pub fn list(&self, k: ListKind) -> &Vec<ListEntry> {
        match k {
            ListKind::Ban => &self.bans,
            ListKind::Except => &self.excepts,
            ListKind::Invex => &self.invex,
        }
    }

    fn list_mut(&mut self, k: ListKind) -> &mut Vec<ListEntry> {
        match k {
            ListKind::Ban => &mut self.bans,
            ListKind::Except => &mut self.excepts,
            ListKind::Invex => &mut self.invex,
        }
    }

    pub fn status(&self, uid: &Uid) -> Option<Status> {
        self.members.get(uid).map(|m| m.status)
    }

    pub fn is_secret(&self) -> bool {
        self.flags.has(Flags::SECRET) || self.flags.has(Flags::PRIVATE)
    }

    /// `+ntk key` style, with parameters when `show_key` (members see the key).
    pub fn mode_string(&self, show_params: bool) -> (String, Vec<String>) {
        let mut m = String::from("+");
        let mut params = Vec::new();
        for (c, f) in Flags::TABLE {
            if self.flags.has(f) {
                m.push(c);
            }
        }
        if let Some(k) = &self.key {
            m.push('k');
            if show_params {
                params.push(k.to_string());
            }
        }
        if let Some(l) = self.limit {
            m.push('l');
            if show_params {
                params.push(l.to_string());
            }
        }
        (m, params)
    }

    /// Applies a mutation. Returns false when the channel is left empty (the caller then
    /// forgets it).
    pub fn apply(&mut self, m: &Mutation) -> bool {
        match m {
            Mutation::Join { uid, status, at, .. } => {
                if self.members.insert(*uid, Member { status: *status, at: *at }).is_none() {
                    if let Some(n) = self.per_shard.get_mut(at.shard()) {
                        *n += 1;
                    }
                    self.count_server(uid, *at, 1);
                }
            }
            Mutation::Leave { uid } => {
                if let Some(left) = self.members.remove(uid) {
                    if let Some(n) = self.per_shard.get_mut(left.at.shard()) {
                        *n -= 1;
                    }
                    self.count_server(uid, left.at, -1);
                }
            }
            Mutation::Modes(changes) => {
                for c in changes {
                    match c {
                        ModeChange::Flag(f, _, on) => self.flags.set(*f, *on),
                        ModeChange::Key(k) => self.key = k.clone(),
                        ModeChange::Limit(l) => self.limit = *l,
                        ModeChange::List(kind, true, e) => self.list_mut(*kind).push(e.clone()),
                        ModeChange::List(kind, false, e) => self.list_mut(*kind).retain(|x| x.mask != e.mask),
                        ModeChange::Member(s, _, on, uid) => {
                            if let Some(m) = self.members.get_mut(uid) {
                                m.status.set(*s, *on);
                            }
                        }
                    }
                }
            }
            Mutation::Topic(t) => self.topic = t.clone(),
            Mutation::Mlock(m) => self.mlock = m.clone(),
            Mutation::Metadata(changes) => {
                for (key, value) in changes {
                    super::set_metadata(&mut self.metadata, key, value.as_deref());
                }
            }
            Mutation::Moved { .. } => return false,
            Mutation::Arrived { state, .. } => *self = (**state).clone(),
            Mutation::Burst { ts, modes, clear_topic, joins } => {
                if let Some(ts) = ts {
                    self.created = *ts;
                }
                self.apply(&Mutation::Modes(modes.clone()));
                if *clear_topic {
                    self.topic = None;
                }
                for (uid, status, at) in joins {
                    self.apply(&Mutation::Join { uid: *uid, status: *status, created: None, at: *at });
                }
            }
        }
        !self.members.is_empty()
    }
}

/// The `+ov-k nick nick2 key` text of a list of changes; `nick_of` names members.
pub fn render_changes(changes: &[ModeChange], nick_of: impl Fn(&Uid) -> String) -> (String, Vec<String>) {
    let mut modes = String::new();
    let mut params = Vec::new();
    let mut sign: Option<bool> = None;
    let mut push = |on: bool, c: char, modes: &mut String| {
        if sign != Some(on) {
            modes.push(if on { '+' } else { '-' });
            sign = Some(on);
        }
        modes.push(c);
    };
    for c in changes {
        match c {
            ModeChange::Flag(_, l, on) => push(*on, *l, &mut modes),
            ModeChange::Key(k) => {
                push(k.is_some(), 'k', &mut modes);
                params.push(k.as_deref().unwrap_or("*").to_string());
            }
            ModeChange::Limit(l) => {
                push(l.is_some(), 'l', &mut modes);
                if let Some(l) = l {
                    params.push(l.to_string());
                }
            }
            ModeChange::List(kind, on, e) => {
                push(*on, kind.letter(), &mut modes);
                params.push(e.mask.to_string());
            }
            ModeChange::Member(_, l, on, uid) => {
                push(*on, *l, &mut modes);
                params.push(nick_of(uid));
            }
        }
    }
    (modes, params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::CaseMapping;
    use crate::state::UidAllocator;

    fn chan() -> Channel {
        Channel::new("#Test".into(), CaseMapping::Ascii.fold("#Test"), 100, 2)
    }

    #[test]
    fn joins_and_leaves_track_per_shard_counts() {
        let mut a0 = UidAllocator::new("0RC", 0, 2);
        let mut a1 = UidAllocator::new("0RC", 1, 2);
        let (u0, u1) = (a0.allocate(), a1.allocate());
        let mut c = chan();
        let (at0, at1) = (Location::local(0), Location::Link(1));
        assert!(c.apply(&Mutation::Join { uid: u0, status: Status::OP, created: Some(100), at: at0 }));
        assert!(c.apply(&Mutation::Join { uid: u1, status: Status::NONE, created: None, at: at1 }));
        // joining twice changes nothing
        c.apply(&Mutation::Join { uid: u1, status: Status::NONE, created: None, at: at1 });
        assert_eq!(&c.per_shard[..], &[1, 1]);
        assert!(c.apply(&Mutation::Leave { uid: u0 }));
        assert!(!c.apply(&Mutation::Leave { uid: u1 }), "empty after the last leaves");
        assert_eq!(&c.per_shard[..], &[0, 0]);
    }

    #[test]
    fn members_behind_links_are_counted_by_server() {
        let uid = |s: &str| Uid::parse(s).unwrap();
        let (b1, b2, c1) = (uid("2BBAAAAAA"), uid("2BBAAAAAB"), uid("3CCAAAAAA"));
        let local = UidAllocator::new("0RC", 0, 2).allocate();
        let mut c = chan();
        let join = |u: Uid, at: Location| Mutation::Join { uid: u, status: Status::NONE, created: None, at };
        c.apply(&join(local, Location::local(0)));
        c.apply(&join(b1, Location::Link(1)));
        c.apply(&join(b2, Location::Link(1)));
        c.apply(&join(b2, Location::Link(1)));
        c.apply(&join(c1, Location::Link(0)));
        let count = |c: &Channel, s: &str| c.per_server.iter().find(|(x, _)| x.as_str() == s).map(|(_, n)| *n);
        assert_eq!(c.per_server.len(), 2, "our own users are not counted");
        assert_eq!((count(&c, "2BB"), count(&c, "3CC")), (Some(2), Some(1)));
        c.apply(&Mutation::Leave { uid: b1 });
        c.apply(&Mutation::Leave { uid: c1 });
        c.apply(&Mutation::Leave { uid: c1 });
        assert_eq!((count(&c, "2BB"), count(&c, "3CC")), (Some(1), None), "no zero entries");
        c.apply(&Mutation::Burst {
            ts: None,
            modes: vec![],
            clear_topic: false,
            joins: vec![(b1, Status::OP, Location::Link(1))],
        });
        c.apply(&Mutation::Leave { uid: local });
        assert_eq!(count(&c, "2BB"), Some(2));
    }

    #[test]
    fn modes_apply_and_render() {
        let mut a = UidAllocator::new("0RC", 0, 1);
        let u = a.allocate();
        let mut c = chan();
        c.apply(&Mutation::Join { uid: u, status: Status::NONE, created: None, at: Location::local(0) });
        let e = ListEntry { mask: "*!*@bad".into(), set_by: "op".into(), set_at: 1 };
        let changes = vec![
            ModeChange::Flag(Flags::MODERATED, 'm', true),
            ModeChange::Member(Status::OP, 'o', true, u),
            ModeChange::Key(Some("sekrit".into())),
            ModeChange::Flag(Flags::TOPIC_OPS, 't', false),
            ModeChange::List(ListKind::Ban, true, e.clone()),
        ];
        c.apply(&Mutation::Modes(changes.clone()));
        assert!(c.flags.has(Flags::MODERATED) && !c.flags.has(Flags::TOPIC_OPS));
        assert!(c.status(&u).unwrap().is_op());
        assert_eq!(c.bans, vec![e.clone()]);
        let (m, p) = render_changes(&changes, |_| "nick".into());
        assert_eq!(m, "+mok-t+b");
        assert_eq!(p, ["nick", "sekrit", "*!*@bad"]);
        assert_eq!(c.mode_string(true), ("+mnk".to_string(), vec!["sekrit".to_string()]));
        c.apply(&Mutation::Modes(vec![ModeChange::List(ListKind::Ban, false, e)]));
        assert!(c.bans.is_empty());
    }

    #[test]
    fn closing_modes_are_those_that_restrict_who_joins_or_sees() {
        let mut a = UidAllocator::new("0RC", 0, 1);
        let u = a.allocate();
        let mut c = chan();
        c.apply(&Mutation::Join { uid: u, status: Status::OP, created: None, at: Location::local(0) });
        assert!(Closed::of(&c).is_open(), "+nt is open");
        assert_eq!(Closed::of(&c).letters(), "");
        // Modes that restrict speech, colour, size or some users leave it open.
        let ban = |m: &str| ListEntry { mask: m.into(), set_by: "op".into(), set_at: 1 };
        c.apply(&Mutation::Modes(vec![
            ModeChange::Flag(Flags::MODERATED, 'm', true),
            ModeChange::Flag(Flags::ACCOUNT_SPEAK, 'M', true),
            ModeChange::Flag(Flags::NO_CTCP, 'C', true),
            ModeChange::Flag(Flags::NO_COLOUR, 'c', true),
            ModeChange::Limit(Some(1)),
            ModeChange::List(ListKind::Ban, true, ban("*!*@spam")),
            ModeChange::List(ListKind::Ban, true, ban("$m:*!*@*")),
            ModeChange::List(ListKind::Invex, true, ban("*!*@*")),
        ]));
        assert!(Closed::of(&c).is_open(), "{:?}", Closed::of(&c));
        for (change, letters) in [
            (ModeChange::Flag(Flags::INVITE_ONLY, 'i', true), "i"),
            (ModeChange::Flag(Flags::PRIVATE, 'p', true), "p"),
            (ModeChange::Flag(Flags::SECRET, 's', true), "s"),
            (ModeChange::Flag(Flags::ACCOUNT_JOIN, 'R', true), "R"),
            (ModeChange::Flag(Flags::TLS_ONLY, 'S', true), "S"),
            (ModeChange::Key(Some("k".into())), "k"),
            (ModeChange::List(ListKind::Ban, true, ban("*!*@*")), "b"),
        ] {
            let mut closed = c.clone();
            closed.apply(&Mutation::Modes(vec![change]));
            assert!(!Closed::of(&closed).is_open(), "{letters}");
            assert_eq!(Closed::of(&closed).letters(), letters);
        }
        let mut all = c.clone();
        all.apply(&Mutation::Modes(vec![
            ModeChange::Key(Some("k".into())),
            ModeChange::Flag(Flags::SECRET, 's', true),
            ModeChange::Flag(Flags::INVITE_ONLY, 'i', true),
            ModeChange::Flag(Flags::TLS_ONLY, 'S', true),
        ]));
        assert_eq!(Closed::of(&all).letters(), "Sisk");
        // Opened again: open.
        all.apply(&Mutation::Modes(vec![
            ModeChange::Key(None),
            ModeChange::Flag(Flags::SECRET, 's', false),
            ModeChange::Flag(Flags::INVITE_ONLY, 'i', false),
            ModeChange::Flag(Flags::TLS_ONLY, 'S', false),
        ]));
        assert!(Closed::of(&all).is_open());
    }

    #[test]
    fn every_flag_letter_round_trips_and_shows_in_order() {
        let mut c = chan();
        let mut seen = 0u16;
        for (l, f) in Flags::TABLE {
            assert_eq!(Flags::from_letter(l), Some(f));
            assert_eq!(seen & f.0, 0, "{l} shares a bit");
            seen |= f.0;
        }
        let on = |f, l| ModeChange::Flag(f, l, true);
        c.apply(&Mutation::Modes(vec![
            on(Flags::NO_COLOUR, 'c'),
            on(Flags::TLS_ONLY, 'S'),
            on(Flags::NO_CTCP, 'C'),
            on(Flags::ACCOUNT_JOIN, 'R'),
            on(Flags::ACCOUNT_SPEAK, 'M'),
        ]));
        assert_eq!(c.mode_string(false).0, "+CMRScnt");
    }
}
