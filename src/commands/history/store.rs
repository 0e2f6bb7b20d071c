//! The history a shard keeps: a log per channel it is home to, and a log per user key (account
//! or nick) it owns, of that user's private conversations. Entries are the lines as delivered
//! (a [`Shared`]: body, time, msgid, tags), kept in time order; the queries are
//! draft/chathistory's, answered from a log in memory.

use std::collections::VecDeque;
use std::sync::Arc;

use ahash::AHashMap;

use super::codec::LogKey;
use crate::commands::outgoing::Shared;
use crate::proto::Folded;
use crate::state::channel::Closed;
use crate::state::Uid;

/// What an entry is, for the client that asks: messages always replay; TAGMSG and channel
/// events (JOIN, TOPIC, QUIT...) only with `draft/event-playback`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Message,
    Tagmsg,
    Event,
}

/// The other side of a private conversation, as it was when the message passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its nick as written (what TARGETS shows).
    pub nick: Arc<str>,
    pub folded: Folded,
    pub account: Option<Folded>,
    /// The user then (in memory only, not on disk: a UID names one connection, which a
    /// restart ends). A REDACT reaches an accountless peer by it, not by a nick since passed on.
    pub uid: Option<Uid>,
}

impl Peer {
    /// Whether a CHATHISTORY target (folded) names this peer: its nick then, or its account.
    fn is(&self, target: &Folded) -> bool {
        &self.folded == target || self.account.as_ref() == Some(target)
    }
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub line: Shared,
    pub kind: Kind,
    /// In a user's log: the other side (itself for a message to itself).
    pub peer: Option<Arc<Peer>>,
}

impl Entry {
    pub fn time_ms(&self) -> u64 {
        self.line.meta.as_ref().map_or(0, |m| m.time_ms)
    }

    pub fn msgid(&self) -> Option<&str> {
        self.line.meta.as_ref().map(|m| &*m.msgid)
    }
}

/// A point in a log, as a client names it: `*`, `msgid=...` or `timestamp=...` (in ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bound {
    Star,
    Msgid(Box<str>),
    Time(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sub {
    Latest,
    Before,
    After,
    Around,
    Between,
}

#[derive(Clone, Debug)]
pub struct Query {
    pub sub: Sub,
    pub a: Bound,
    /// BETWEEN's second bound.
    pub b: Bound,
    pub limit: usize,
    /// `draft/event-playback`: TAGMSG and events too.
    pub events: bool,
    /// Entries older than this (ms since the epoch) are gone.
    pub oldest: u64,
}

/// The entries of one target, in time order (arrival order for equal times).
#[derive(Default, Debug)]
pub struct Log {
    entries: VecDeque<Entry>,
    /// The latest redactions (when, msgid), oldest first: a server that was apart may still
    /// hold those messages, and its catch-up must not bring them back (`sync`).
    redacted: VecDeque<(u64, Box<str>)>,
    /// A channel's: what closed the channel as the disk has it (None: nothing written yet).
    closed: Option<Closed>,
}

/// Redactions a log remembers: more than a split's worth in all but a flood of them.
const REDACTED_KEPT: usize = 256;

impl Log {
    /// Adds an entry where its time puts it (nearly always at the end: lines from other shards
    /// can arrive a millisecond behind), then drops the oldest past `max` or older than `oldest`;
    /// returns those dropped.
    pub fn push(&mut self, e: Entry, max: usize, oldest: u64) -> Vec<Entry> {
        let t = e.time_ms();
        let at = self.entries.iter().rposition(|x| x.time_ms() <= t).map_or(0, |i| i + 1);
        self.entries.insert(at, e);
        let mut dropped = Vec::new();
        while self.entries.len() > max || self.entries.front().is_some_and(|x| x.time_ms() < oldest) {
            dropped.extend(self.entries.pop_front());
        }
        dropped
    }

    /// The entries, oldest first.
    pub fn into_entries(self) -> VecDeque<Entry> {
        self.entries
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// The entry with this msgid (in a user's log: of the conversation with `peer`).
    pub fn find(&self, msgid: &str, peer: Option<&Folded>) -> Option<&Entry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.msgid() == Some(msgid) && peer.is_none_or(|p| e.peer.as_ref().is_some_and(|x| x.is(p))))
    }

    /// Takes the entry with this msgid out, and remembers that it was redacted at `now_ms`
    /// (whether this log had it or not: a peer may bring it later).
    pub fn redact(&mut self, msgid: &str, now_ms: u64) -> Option<Entry> {
        if !self.was_redacted(msgid) {
            if self.redacted.len() == REDACTED_KEPT {
                self.redacted.pop_front();
            }
            self.redacted.push_back((now_ms, msgid.into()));
        }
        let i = self.entries.iter().rposition(|e| e.msgid() == Some(msgid))?;
        self.entries.remove(i)
    }

    pub fn was_redacted(&self, msgid: &str) -> bool {
        self.redacted.iter().any(|(_, m)| &**m == msgid)
    }

    /// The msgids redacted at or after `from_ms`.
    pub fn redacted_since(&self, from_ms: u64) -> impl Iterator<Item = &str> {
        self.redacted.iter().filter(move |(t, _)| *t >= from_ms).map(|(_, m)| &**m)
    }

    /// The entries a query selects, oldest first; `peer`: only those of one conversation.
    pub fn select(&self, q: &Query, peer: Option<&Folded>) -> Vec<Entry> {
        let v: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.time_ms() >= q.oldest)
            .filter(|e| q.events || e.kind == Kind::Message)
            .filter(|e| peer.is_none_or(|p| e.peer.as_ref().is_some_and(|x| x.is(p))))
            .collect();
        let range = window(&v, q);
        v[range].iter().map(|e| (*e).clone()).collect()
    }

    /// The latest entry of each conversation in a user's log: (peer, time ms).
    pub fn peers(&self, oldest: u64) -> Vec<(Arc<Peer>, u64)> {
        let mut last: AHashMap<&Folded, (Arc<Peer>, u64)> = AHashMap::default();
        for e in self.entries.iter().filter(|e| e.time_ms() >= oldest && e.kind == Kind::Message) {
            if let Some(p) = &e.peer {
                // A later entry may know the peer by a newer nick: the latest wins.
                last.insert(&p.folded, (p.clone(), e.time_ms()));
            }
        }
        last.into_values().collect()
    }
}

/// The range of `v` (in time order) a query selects.
fn window(v: &[&Entry], q: &Query) -> std::ops::Range<usize> {
    let n = v.len();
    let limit = q.limit;
    let last = |r: std::ops::Range<usize>| r.end.saturating_sub(limit).max(r.start)..r.end;
    let first = |r: std::ops::Range<usize>| r.start..r.end.min(r.start + limit);
    match q.sub {
        Sub::Latest => last(after(v, &q.a).unwrap_or(0)..n),
        Sub::Before => match before(v, &q.a) {
            Some(end) => last(0..end),
            None => 0..0,
        },
        Sub::After => match after(v, &q.a) {
            Some(start) => first(start..n),
            None => 0..0,
        },
        Sub::Around => {
            let Some(c) = at_or_after(v, &q.a) else { return 0..0 };
            let start = c.saturating_sub(limit.saturating_sub(1) / 2);
            let end = (start + limit).min(n);
            end.saturating_sub(limit)..end
        }
        Sub::Between => {
            let (Some(pa), Some(pb)) = (at_or_after(v, &q.a), at_or_after(v, &q.b)) else { return 0..0 };
            let forward = (pa, key(&q.a)) <= (pb, key(&q.b));
            let (lo, hi) = if forward { (&q.a, &q.b) } else { (&q.b, &q.a) };
            let (Some(s), Some(e)) = (after(v, lo), before(v, hi)) else { return 0..0 };
            if s >= e {
                return 0..0;
            }
            // Backwards, the entries nearest the first bound are the latest ones.
            if forward {
                first(s..e)
            } else {
                last(s..e)
            }
        }
    }
}

fn key(b: &Bound) -> u64 {
    match b {
        Bound::Time(t) => *t,
        _ => 0,
    }
}

/// The index of the entry a msgid names.
fn position(v: &[&Entry], id: &str) -> Option<usize> {
    v.iter().rposition(|e| e.msgid() == Some(id))
}

/// The first index strictly after the bound (`*`: the start). None: an unknown msgid.
fn after(v: &[&Entry], b: &Bound) -> Option<usize> {
    match b {
        Bound::Star => Some(0),
        Bound::Msgid(id) => position(v, id).map(|i| i + 1),
        Bound::Time(t) => Some(v.partition_point(|e| e.time_ms() <= *t)),
    }
}

/// The end (exclusive) of the entries strictly before the bound (`*`: the end).
fn before(v: &[&Entry], b: &Bound) -> Option<usize> {
    match b {
        Bound::Star => Some(v.len()),
        Bound::Msgid(id) => position(v, id),
        Bound::Time(t) => Some(v.partition_point(|e| e.time_ms() < *t)),
    }
}

/// The entry a bound names, or the first after its time.
fn at_or_after(v: &[&Entry], b: &Bound) -> Option<usize> {
    match b {
        Bound::Star => None,
        Bound::Msgid(id) => position(v, id),
        Bound::Time(t) => Some(v.partition_point(|e| e.time_ms() < *t)),
    }
}

/// A change for the store on disk (`crate::history_db`), made on a shard, written by the
/// store's own thread.
pub enum DbOp {
    Put(LogKey, Entry),
    Delete(LogKey, u64, Box<str>),
    /// A user key's read marker for a target.
    Marker(Folded, Folded, u64),
    /// A user key's read marker for a target that is no more (a renamed channel).
    MarkerGone(Folded, Folded),
    /// What closes a channel, kept with its log (None: the log is gone, and the record too).
    Closed(Folded, Option<Closed>),
}

/// A shard's history: the channels it is home to, and the user keys it owns.
#[derive(Default)]
pub struct Store {
    pub channels: AHashMap<Folded, Log>,
    pub users: AHashMap<Folded, Log>,
    /// Where changes go to be kept across a restart (None: in memory only).
    pub sink: Option<crossbeam_channel::Sender<DbOp>>,
    /// When each server split from us (unix ms): what it missed since then is asked for when
    /// it links again (`sync`).
    pub apart: AHashMap<crate::state::servers::Sid, u64>,
    /// What this shard sent each peer for its latest catch-up: (since, bytes) (`sync::serve`).
    pub served: AHashMap<crate::state::servers::Sid, (u64, usize)>,
}

impl Store {
    /// Drops entries older than `oldest` from every log, and the logs left empty (a log only
    /// trims itself when written to); what goes is deleted from the disk too.
    pub fn sweep(&mut self, oldest: u64) {
        if oldest == 0 {
            return;
        }
        let sink = self.sink.clone();
        for (logs, channel) in [(&mut self.channels, true), (&mut self.users, false)] {
            logs.retain(|name, log| {
                while log.entries.front().is_some_and(|e| e.time_ms() < oldest) {
                    let Some(e) = log.entries.pop_front() else { break };
                    if let Some(sink) = &sink {
                        let key = if channel { LogKey::Channel(name.clone()) } else { LogKey::User(name.clone()) };
                        let _ = sink.send(DbOp::Delete(key, e.time_ms(), e.msgid().unwrap_or("").into()));
                    }
                }
                if log.entries.is_empty() && channel && log.closed.is_some() {
                    if let Some(sink) = &sink {
                        let _ = sink.send(DbOp::Closed(name.clone(), None));
                    }
                }
                !log.entries.is_empty()
            });
        }
    }

    /// A channel's log is gone (the channel ended, or moved): the record of its modes goes too.
    pub fn channel_log_gone(&self, chan: &Folded, log: &Log) {
        if let (Some(sink), Some(_)) = (&self.sink, log.closed) {
            let _ = sink.send(DbOp::Closed(chan.clone(), None));
        }
    }

    /// What closes a channel now, for its log on disk: written when it changes (a channel
    /// opened or closed), never per message. Nothing when the channel has no log: its first
    /// entry writes it ([`Store::add`]'s answer).
    pub fn channel_closed(&mut self, chan: &Folded, closed: Closed) {
        let Some(log) = self.channels.get_mut(chan) else { return };
        if log.closed == Some(closed) {
            return;
        }
        log.closed = Some(closed);
        if let Some(sink) = &self.sink {
            let _ = sink.send(DbOp::Closed(chan.clone(), Some(closed)));
        }
    }

    /// Where changes of `log` go to the disk: nowhere for a connection's log, or in memory only.
    pub fn sink_for(&self, log: &LogKey) -> Option<&crossbeam_channel::Sender<DbOp>> {
        self.sink.as_ref().filter(|_| log.persisted())
    }

    /// Adds an entry to a log; what it pushes out of the log is deleted from the disk too.
    /// `stored`: the entry came from the disk (it is not written again; a channel's log on
    /// the disk was open, as only open channels' logs are loaded: `history_db`). True when a
    /// channel's log has no record yet of what closes the channel: the caller, which knows the
    /// channel, writes it ([`Store::channel_closed`]), once per log and not per message.
    pub fn add(&mut self, log: LogKey, e: Entry, max: usize, oldest: u64, stored: bool) -> bool {
        let (logs, channel) = match &log {
            LogKey::Channel(_) => (&mut self.channels, true),
            LogKey::User(_) => (&mut self.users, false),
        };
        let put = (!stored).then(|| e.clone());
        let l = logs.entry(log.name().clone()).or_default();
        if channel && stored {
            l.closed = Some(Closed::OPEN);
        }
        let unrecorded = channel && l.closed.is_none();
        let dropped = l.push(e, max, oldest);
        let Some(sink) = self.sink_for(&log) else { return unrecorded };
        if let Some(e) = put {
            let _ = sink.send(DbOp::Put(log.clone(), e));
        }
        for d in dropped {
            let _ = sink.send(DbOp::Delete(log.clone(), d.time_ms(), d.msgid().unwrap_or_default().into()));
        }
        unrecorded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::outgoing::Meta;

    fn entry(i: u64, kind: Kind) -> Entry {
        let meta = Meta {
            time_ms: 1000 + i * 10,
            msgid: format!("m{i}").into(),
            client_tags: None,
            account: None,
            bot: false,
            sender: None,
        };
        Entry { line: Shared::with_meta(format!("x{i}\r\n").into_bytes().into(), Arc::new(meta)), kind, peer: None }
    }

    fn log(n: u64) -> Log {
        let mut l = Log::default();
        for i in 0..n {
            l.push(entry(i, Kind::Message), 100, 0);
        }
        l
    }

    fn ids(l: &Log, sub: Sub, a: Bound, b: Bound, limit: usize) -> Vec<u64> {
        let q = Query { sub, a, b, limit, events: false, oldest: 0 };
        l.select(&q, None).iter().map(|e| (e.time_ms() - 1000) / 10).collect()
    }

    fn m(i: u64) -> Bound {
        Bound::Msgid(format!("m{i}").into())
    }

    fn t(i: u64) -> Bound {
        Bound::Time(1000 + i * 10)
    }

    #[test]
    fn latest_before_after() {
        let l = log(10);
        assert_eq!(ids(&l, Sub::Latest, Bound::Star, Bound::Star, 20), (0..10).collect::<Vec<_>>());
        assert_eq!(ids(&l, Sub::Latest, Bound::Star, Bound::Star, 5), (5..10).collect::<Vec<_>>());
        assert_eq!(ids(&l, Sub::Latest, m(4), Bound::Star, 20), (5..10).collect::<Vec<_>>());
        assert_eq!(ids(&l, Sub::Latest, t(4), Bound::Star, 20), (5..10).collect::<Vec<_>>());
        assert_eq!(ids(&l, Sub::Before, m(6), Bound::Star, 20), (0..6).collect::<Vec<_>>());
        assert_eq!(ids(&l, Sub::Before, t(6), Bound::Star, 2), vec![4, 5]);
        assert_eq!(ids(&l, Sub::After, m(3), Bound::Star, 20), (4..10).collect::<Vec<_>>());
        assert_eq!(ids(&l, Sub::After, t(3), Bound::Star, 3), vec![4, 5, 6]);
        assert_eq!(ids(&l, Sub::After, Bound::Msgid("nope".into()), Bound::Star, 3), Vec::<u64>::new());
    }

    #[test]
    fn around_and_between() {
        let l = log(10);
        assert_eq!(ids(&l, Sub::Around, m(7), Bound::Star, 1), vec![7]);
        assert_eq!(ids(&l, Sub::Around, m(7), Bound::Star, 3), vec![6, 7, 8]);
        assert!(ids(&l, Sub::Around, t(7), Bound::Star, 3).contains(&7));
        assert_eq!(ids(&l, Sub::Around, m(9), Bound::Star, 4), vec![6, 7, 8, 9]);
        assert_eq!(ids(&l, Sub::Between, m(0), m(9), 20), (1..9).collect::<Vec<_>>());
        assert_eq!(ids(&l, Sub::Between, m(9), m(0), 20), (1..9).collect::<Vec<_>>());
        assert_eq!(ids(&l, Sub::Between, m(0), m(9), 3), vec![1, 2, 3]);
        assert_eq!(ids(&l, Sub::Between, m(9), m(0), 3), vec![6, 7, 8]);
        assert_eq!(ids(&l, Sub::Between, t(0), t(9), 3), vec![1, 2, 3]);
        assert_eq!(ids(&l, Sub::Between, t(9), t(0), 3), vec![6, 7, 8]);
    }

    #[test]
    fn bounded_by_length_and_age_and_kept_in_time_order() {
        let mut l = Log::default();
        for i in [0, 1, 3, 2, 4] {
            let _ = l.push(entry(i, Kind::Message), 4, 0);
        }
        assert_eq!(ids(&l, Sub::Latest, Bound::Star, Bound::Star, 10), vec![1, 2, 3, 4]);
        assert_eq!(l.push(entry(5, Kind::Message), 10, 1000 + 30).len(), 2);
        assert_eq!(ids(&l, Sub::Latest, Bound::Star, Bound::Star, 10), vec![3, 4, 5]);
        assert!(l.find("m4", None).is_some());
        assert_eq!(l.redact("m4", 5000).map(|e| e.time_ms()), Some(1040));
        assert!(l.redact("m4", 5001).is_none());
        assert!(l.was_redacted("m4") && !l.was_redacted("m3"));
        // Remembered once, with the first time; bounded.
        assert_eq!(l.redacted_since(5000).collect::<Vec<_>>(), ["m4"]);
        assert_eq!(l.redacted_since(5001).count(), 0);
        for i in 0..REDACTED_KEPT {
            l.redact(&format!("x{i}"), 6000);
        }
        assert!(!l.was_redacted("m4") && l.was_redacted("x0"));
        assert_eq!(ids(&l, Sub::Latest, Bound::Star, Bound::Star, 10), vec![3, 5]);
        let mut store = Store::default();
        store.channels.insert(crate::proto::CaseMapping::Ascii.fold("#c"), l);
        store.sweep(1000 + 45);
        assert_eq!(
            ids(
                &store.channels[&crate::proto::CaseMapping::Ascii.fold("#c")],
                Sub::Latest,
                Bound::Star,
                Bound::Star,
                10
            ),
            vec![5]
        );
        store.sweep(1000 + 60);
        assert!(store.channels.is_empty(), "an emptied log goes");
    }

    #[test]
    fn events_replay_only_when_asked() {
        let mut l = Log::default();
        l.push(entry(0, Kind::Message), 10, 0);
        l.push(entry(1, Kind::Event), 10, 0);
        l.push(entry(2, Kind::Tagmsg), 10, 0);
        let mut q = Query { sub: Sub::Latest, a: Bound::Star, b: Bound::Star, limit: 10, events: false, oldest: 0 };
        assert_eq!(l.select(&q, None).len(), 1);
        q.events = true;
        assert_eq!(l.select(&q, None).len(), 3);
    }
}
