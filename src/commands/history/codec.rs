//! History entries as bytes, for the store on disk: an entry's value (version 1; a value of
//! another version is skipped on load, never misread), the records and frames of the segment
//! files that hold them ("Batches" below), and the keys in `history.redb`: a read marker per
//! user key and target (`r`), and per channel log what closed the channel (`s`, see
//! [`closed_key`]). The per-entry keys ([`key`], [`log_of`]) are those of the previous format,
//! one redb key per entry, which is read once to be migrated.

use std::sync::Arc;

use super::store::{Entry, Kind, Peer};
use crate::commands::outgoing::{Meta, Multi, Shared};
use crate::proto::{CaseMapping, Folded};
use crate::state::channel::Closed;

const VERSION: u8 = 1;

/// Which log an entry belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LogKey {
    Channel(Folded),
    /// A user key: an account's (`a:<account>`) or a connection's (`u:<UID>`).
    User(Folded),
}

impl LogKey {
    pub fn name(&self) -> &Folded {
        match self {
            LogKey::Channel(f) | LogKey::User(f) => f,
        }
    }

    /// Whether the log is kept on disk: not a connection's, which ends with it.
    pub fn persisted(&self) -> bool {
        !matches!(self, LogKey::User(k) if is_session(k))
    }
}

/// Whether a user key is a connection's (`u:<UID>`, `record::session_key`), not an account's:
/// its private history and read markers end with the connection.
pub fn is_session(key: &Folded) -> bool {
    key.as_str().starts_with("u:")
}

/// The store's key of one entry: `e`, the time big-endian, the msgid, NUL, `c` or `u`, the
/// log's name. Time first, so that new entries of every log go to the B-tree's right edge and
/// the oldest, which the logs push out, sit together at the left; loading reads everything,
/// and in time order each log's entries come oldest first. (Tried against the log-first order
/// to cut the writer's cost: no change measured, 1,194 vs 1,181 instructions per delivered
/// message under callgrind; docs/performance.md.)
pub fn key(log: &LogKey, time_ms: u64, msgid: &str) -> Vec<u8> {
    let (tag, name) = match log {
        LogKey::Channel(f) => (b'c', f),
        LogKey::User(f) => (b'u', f),
    };
    let mut k = Vec::with_capacity(1 + 8 + msgid.len() + 2 + name.as_str().len());
    k.push(b'e');
    k.extend_from_slice(&time_ms.to_be_bytes());
    k.extend_from_slice(msgid.as_bytes());
    k.push(0);
    k.push(tag);
    k.extend_from_slice(name.as_str().as_bytes());
    k
}

/// The store's key of a read marker: `r`, the user key, NUL, the target.
pub fn marker_key(key: &Folded, target: &Folded) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.as_str().len() + target.as_str().len() + 2);
    k.push(b'r');
    k.extend_from_slice(key.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(target.as_str().as_bytes());
    k
}

/// A read marker back from its key and value (the time, little-endian).
pub fn marker_of(k: &[u8], v: &[u8], cm: CaseMapping) -> Option<(Folded, Folded, u64)> {
    let rest = k.strip_prefix(b"r")?;
    let end = rest.iter().position(|&b| b == 0)?;
    let key = cm.fold(std::str::from_utf8(&rest[..end]).ok()?);
    let target = cm.fold(std::str::from_utf8(&rest[end + 1..]).ok()?);
    Some((key, target, u64::from_le_bytes(v.try_into().ok()?)))
}

/// The store's key of what closes a channel (its log's one record of the channel's modes):
/// `s`, the channel's name.
pub fn closed_key(chan: &Folded) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + chan.as_str().len());
    k.push(b's');
    k.extend_from_slice(chan.as_str().as_bytes());
    k
}

/// Its value: the version, then the letters that close the channel (none: it is open).
pub fn encode_closed(closed: Closed) -> Vec<u8> {
    let letters = closed.letters();
    let mut v = Vec::with_capacity(1 + letters.len());
    v.push(VERSION);
    v.extend_from_slice(letters.as_bytes());
    v
}

/// A channel and the letters that closed it (empty: open) back from a key and value; None for
/// another version or damage. Letters stay letters: one this version does not know (a later
/// version's) still closes the channel.
pub fn closed_of(k: &[u8], v: &[u8], cm: CaseMapping) -> Option<(Folded, Box<str>)> {
    let chan = cm.fold(std::str::from_utf8(k.strip_prefix(b"s")?).ok()?);
    let (&version, letters) = v.split_first()?;
    if version != VERSION || chan.as_str().is_empty() {
        return None;
    }
    Some((chan, std::str::from_utf8(letters).ok()?.into()))
}

/// The log a stored entry's key belongs to.
pub fn log_of(k: &[u8], cm: CaseMapping) -> Option<LogKey> {
    let rest = k.strip_prefix(b"e")?.get(8..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    let (&tag, name) = rest[end + 1..].split_first()?;
    let name = cm.fold(std::str::from_utf8(name).ok()?);
    match tag {
        b'c' => Some(LogKey::Channel(name)),
        b'u' => Some(LogKey::User(name)),
        _ => None,
    }
}

pub fn encode(e: &Entry) -> Vec<u8> {
    let mut v = Vec::with_capacity(e.line.body.len() + 96);
    encode_into(&mut v, e);
    v
}

/// [`encode`], appended to `v`.
pub fn encode_into(v: &mut Vec<u8>, e: &Entry) {
    let meta = e.line.meta.as_deref();
    v.push(VERSION);
    v.push(match e.kind {
        Kind::Message => 0,
        Kind::Tagmsg => 1,
        Kind::Event => 2,
    });
    v.extend_from_slice(&meta.map_or(0, |m| m.time_ms).to_le_bytes());
    let mut flags = 0u8;
    if meta.is_some_and(|m| m.bot) {
        flags |= 1;
    }
    let tags = meta.and_then(|m| m.client_tags.as_deref());
    let account = meta.and_then(|m| m.account.as_deref());
    for (bit, present) in [(2, tags.is_some()), (4, account.is_some()), (8, e.peer.is_some())] {
        if present {
            flags |= bit;
        }
    }
    if e.peer.as_ref().is_some_and(|p| p.account.is_some()) {
        flags |= 16;
    }
    if e.line.multi.is_some() {
        flags |= 32;
    }
    v.push(flags);
    put(v, meta.map_or("", |m| &m.msgid).as_bytes());
    put(v, &e.line.body);
    for s in [tags, account].into_iter().flatten() {
        put(v, s.as_bytes());
    }
    if let Some(p) = &e.peer {
        put(v, p.nick.as_bytes());
        if let Some(a) = &p.account {
            put(v, a.as_str().as_bytes());
        }
    }
    // A multiline message: its lines and their concat flags (the body is only the fallback).
    if let Some(m) = &e.line.multi {
        for s in [&m.source, &m.verb, &m.target] {
            put(v, s.as_bytes());
        }
        v.extend_from_slice(&(m.lines.len() as u32).to_le_bytes());
        for (text, concat) in &m.lines {
            put(v, text.as_bytes());
            v.push(u8::from(*concat));
        }
    }
}

fn put(v: &mut Vec<u8>, b: &[u8]) {
    v.extend_from_slice(&(b.len() as u32).to_le_bytes());
    v.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        self.take(n)
    }
    fn text(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
}

/// An entry back from its bytes; None for another version or damaged bytes.
pub fn decode(v: &[u8], cm: CaseMapping) -> Option<Entry> {
    let mut r = Reader(v);
    if r.byte()? != VERSION {
        return None;
    }
    let kind = match r.byte()? {
        0 => Kind::Message,
        1 => Kind::Tagmsg,
        2 => Kind::Event,
        _ => return None,
    };
    let time_ms = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let flags = r.byte()?;
    let msgid: Box<str> = r.text()?.into();
    let body: Arc<[u8]> = r.bytes()?.into();
    let client_tags = if flags & 2 != 0 { Some(r.text()?.into()) } else { None };
    let account = if flags & 4 != 0 { Some(r.text()?.into()) } else { None };
    let peer = if flags & 8 != 0 {
        let nick: Arc<str> = r.text()?.into();
        let account = if flags & 16 != 0 { Some(cm.fold(r.text()?)) } else { None };
        Some(Arc::new(Peer { folded: cm.fold(&nick), nick, account, uid: None }))
    } else {
        None
    };
    let multi = if flags & 32 != 0 {
        let (source, verb, target) = (r.text()?.into(), r.text()?.into(), r.text()?.into());
        let n = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
        let mut lines = Vec::with_capacity(n.min(256));
        for _ in 0..n {
            lines.push((Box::<str>::from(r.text()?), r.byte()? != 0));
        }
        Some(Arc::new(Multi { source, verb, target, lines }))
    } else {
        None
    };
    if !r.0.is_empty() {
        return None;
    }
    let meta = Meta { time_ms, msgid, client_tags, account, bot: flags & 1 != 0, sender: None };
    let mut line = Shared::with_meta(body, Arc::new(meta));
    line.multi = multi;
    Some(Entry { line, kind, peer })
}

// Batches (`crate::history_db`, format 2): the writer appends each commit's changes as one
// frame (`[length u32][check u64][records]`) to a segment file; a record adds an entry to a
// log (`P`) or takes one out (`D`), the log named in the record, the entry's bytes those of
// [`encode`].

/// The first bytes of a segment file (its format).
pub const SEGMENT_MAGIC: &[u8; 8] = b"rircHB2\n";
const FRAME_HEAD: usize = 12;

/// A log as a record names it: `c` or `u`, and the folded name's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LogRef<'a> {
    pub tag: u8,
    pub name: &'a [u8],
}

impl LogKey {
    pub fn as_ref(&self) -> LogRef<'_> {
        match self {
            LogKey::Channel(f) => LogRef { tag: b'c', name: f.as_str().as_bytes() },
            LogKey::User(f) => LogRef { tag: b'u', name: f.as_str().as_bytes() },
        }
    }
}

impl LogRef<'_> {
    pub fn to_key(self, cm: CaseMapping) -> Option<LogKey> {
        let name = cm.fold(std::str::from_utf8(self.name).ok()?);
        match self.tag {
            b'c' => Some(LogKey::Channel(name)),
            b'u' => Some(LogKey::User(name)),
            _ => None,
        }
    }
}

/// One record of a batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// An entry added to a log (or replacing the one of the same time and msgid).
    Put { log: LogRef<'a>, time_ms: u64, msgid: &'a [u8], entry: &'a [u8] },
    /// The entry of that time and msgid taken out of a log.
    Delete { log: LogRef<'a>, time_ms: u64, msgid: &'a [u8] },
}

fn put_log(buf: &mut Vec<u8>, op: u8, l: LogRef) {
    buf.push(op);
    buf.push(l.tag);
    buf.extend_from_slice(&(l.name.len() as u16).to_le_bytes());
    buf.extend_from_slice(l.name);
}

/// Appends a `P` record: `P`, the log (tag, name length u16, name), the entry's length (u32)
/// and bytes.
pub fn put_record(buf: &mut Vec<u8>, log: &LogKey, e: &Entry) {
    put_log(buf, b'P', log.as_ref());
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    encode_into(buf, e);
    let n = (buf.len() - at - 4) as u32;
    buf[at..at + 4].copy_from_slice(&n.to_le_bytes());
}

/// Appends a `P` record of an entry already encoded (a store of the previous format's value).
pub fn put_record_bytes(buf: &mut Vec<u8>, log: LogRef, entry: &[u8]) {
    put_log(buf, b'P', log);
    put(buf, entry);
}

/// Appends a `D` record: `D`, the log, the time (u64), the msgid (length u16, bytes).
pub fn delete_record(buf: &mut Vec<u8>, log: &LogKey, time_ms: u64, msgid: &str) {
    put_log(buf, b'D', log.as_ref());
    buf.extend_from_slice(&time_ms.to_le_bytes());
    buf.extend_from_slice(&(msgid.len() as u16).to_le_bytes());
    buf.extend_from_slice(msgid.as_bytes());
}

/// The records of a batch, each with its bytes; stops at the first damaged one (`damaged`).
pub struct Records<'a> {
    rest: &'a [u8],
    pub damaged: bool,
}

pub fn records(batch: &[u8]) -> Records<'_> {
    Records { rest: batch, damaged: false }
}

impl<'a> Records<'a> {
    fn parse(&mut self) -> Option<(Record<'a>, &'a [u8])> {
        let all = self.rest;
        let mut r = Reader(all);
        let op = r.byte()?;
        let tag = r.byte()?;
        let n = u16::from_le_bytes(r.take(2)?.try_into().ok()?) as usize;
        let log = LogRef { tag, name: r.take(n)? };
        let rec = match op {
            b'P' => {
                let entry = r.bytes()?;
                // The entry's time and msgid (`encode`: version, kind, time, flags, msgid).
                let mut e = Reader(entry);
                e.take(2)?;
                let time_ms = u64::from_le_bytes(e.take(8)?.try_into().ok()?);
                e.take(1)?;
                Record::Put { log, time_ms, msgid: e.bytes()?, entry }
            }
            b'D' => {
                let time_ms = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
                let n = u16::from_le_bytes(r.take(2)?.try_into().ok()?) as usize;
                Record::Delete { log, time_ms, msgid: r.take(n)? }
            }
            _ => return None,
        };
        let used = all.len() - r.0.len();
        self.rest = r.0;
        Some((rec, &all[..used]))
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = (Record<'a>, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.damaged {
            return None;
        }
        let got = self.parse();
        self.damaged = got.is_none();
        got
    }
}

/// A check of a frame's bytes (against a torn or damaged write, not an adversary): eight
/// bytes at a time, so it costs little beside the write.
pub fn check(b: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mix = |h: u64, w: u64| (h ^ w).wrapping_mul(K).rotate_left(29);
    let mut h = K ^ b.len() as u64;
    let mut words = b.chunks_exact(8);
    for w in &mut words {
        h = mix(h, u64::from_le_bytes(w.try_into().unwrap_or_default()));
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    h = mix(h, u64::from_le_bytes(tail));
    h ^ (h >> 31)
}

/// Appends a frame holding `batch`.
pub fn frame(out: &mut Vec<u8>, batch: &[u8]) {
    out.extend_from_slice(&(batch.len() as u32).to_le_bytes());
    out.extend_from_slice(&check(batch).to_le_bytes());
    out.extend_from_slice(batch);
}

/// The batches of a segment file (after its magic), in order; stops at the first frame that
/// is cut short or fails its check (a write a crash interrupted), setting `torn`.
pub struct Frames<'a> {
    rest: &'a [u8],
    pub torn: bool,
}

/// The frames of a segment file; None if it is not one (another format).
pub fn frames(file: &[u8]) -> Option<Frames<'_>> {
    Some(Frames { rest: file.strip_prefix(SEGMENT_MAGIC.as_slice())?, torn: false })
}

impl<'a> Iterator for Frames<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() || self.torn {
            return None;
        }
        let head = self.rest.get(..FRAME_HEAD);
        let batch = head.and_then(|h| {
            let n = u32::from_le_bytes(h[..4].try_into().ok()?) as usize;
            let sum = u64::from_le_bytes(h[4..].try_into().ok()?);
            let batch = self.rest.get(FRAME_HEAD..FRAME_HEAD.checked_add(n)?)?;
            (check(batch) == sum).then_some(batch)
        });
        match batch {
            Some(b) => {
                self.rest = &self.rest[FRAME_HEAD + b.len()..];
                Some(b)
            }
            None => {
                self.torn = true;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_as_written() {
        let cm = CaseMapping::Rfc1459;
        let meta = Meta {
            time_ms: 1_795_784_873_123,
            msgid: "0TSabc".into(),
            client_tags: Some("+draft/reply=x".into()),
            account: Some("Acct".into()),
            bot: true,
            sender: None,
        };
        let peer = Peer { nick: "Bob".into(), folded: cm.fold("Bob"), account: Some(cm.fold("bobacct")), uid: None };
        let e = Entry {
            line: Shared::with_meta(b":a!b@c PRIVMSG Bob :hi\r\n".to_vec().into(), Arc::new(meta)),
            kind: Kind::Message,
            peer: Some(Arc::new(peer)),
        };
        let back = decode(&encode(&e), cm).expect("decodes");
        assert_eq!(back.line.body, e.line.body);
        assert_eq!(back.line.meta, e.line.meta);
        assert_eq!(back.peer, e.peer);
        assert_eq!(back.kind, Kind::Message);
        let plain = Entry { peer: None, kind: Kind::Event, ..e.clone() };
        assert_eq!(decode(&encode(&plain), cm).expect("decodes").peer, None);
        let mut multi = plain.clone();
        let m = Multi {
            source: "a!b@c".into(),
            verb: "PRIVMSG".into(),
            target: "#c".into(),
            lines: vec![("one".into(), false), ("".into(), false), ("two".into(), true)],
        };
        multi.line.multi = Some(Arc::new(m.clone()));
        assert_eq!(decode(&encode(&multi), cm).expect("decodes").line.multi.as_deref(), Some(&m));
        let mut bad = encode(&e);
        bad.pop();
        assert!(decode(&bad, cm).is_none());
        bad[0] = 2;
        assert!(decode(&bad, cm).is_none());
    }

    #[test]
    fn what_closed_a_channel_reads_back_as_written() {
        use crate::state::channel::{Channel, ModeChange, Mutation};
        let cm = CaseMapping::Rfc1459;
        let chan = cm.fold("#Priv[1]");
        let k = closed_key(&chan);
        assert_eq!(k, b"s#priv{1}");
        assert_eq!(closed_of(&k, &encode_closed(Closed::OPEN), cm), Some((chan.clone(), "".into())));
        let mut ch = Channel::new("#Priv[1]".into(), chan.clone(), 1, 1);
        ch.apply(&Mutation::Modes(vec![ModeChange::Key(Some("pw".into()))]));
        let v = encode_closed(Closed::of(&ch));
        assert_eq!(closed_of(&k, &v, cm), Some((chan.clone(), "k".into())));
        // A letter this version does not know still reads as closed.
        assert_eq!(closed_of(&k, &[VERSION, b'O'], cm), Some((chan, "O".into())));
        // Another version, damage, or another kind of key: not read.
        assert_eq!(closed_of(&k, &[2, b'k'], cm), None);
        assert_eq!(closed_of(&k, &[], cm), None);
        assert_eq!(closed_of(&k, &[VERSION, 0xff], cm), None);
        assert_eq!(closed_of(b"s", &v, cm), None);
        assert_eq!(closed_of(&marker_key(&cm.fold("a:x"), &cm.fold("#c")), &v, cm), None);
        // Not an entry's key, and apart from them (entries `e`, markers `r`).
        assert_eq!(log_of(&k, cm), None);
        assert!(key(&LogKey::Channel(cm.fold("#priv{1}")), u64::MAX, "z").as_slice() < k.as_slice());
    }

    #[test]
    fn keys_sort_by_time_and_name_their_log() {
        let cm = CaseMapping::Rfc1459;
        let a = LogKey::Channel(cm.fold("#a"));
        let b = LogKey::User(cm.fold("n:bob"));
        let (k1, k2, k3) = (key(&b, 1, "m"), key(&a, 5, "z"), key(&a, 300, "a"));
        assert!(k1 < k2 && k2 < k3);
        assert_eq!(log_of(&k1, cm), Some(b.clone()));
        assert_eq!(log_of(&k3, cm), Some(a));
        // The same message in two logs (a private one): two keys.
        assert_ne!(key(&b, 1, "m"), key(&LogKey::User(cm.fold("n:ann")), 1, "m"));
        assert_eq!(log_of(b"x#a\0", cm), None);
        assert_eq!(log_of(b"e\0\0", cm), None);
        let (u, t) = (cm.fold("a:acct"), cm.fold("#chan"));
        let mk = marker_key(&u, &t);
        assert_eq!(marker_of(&mk, &77u64.to_le_bytes(), cm), Some((u, t, 77)));
        assert_eq!(log_of(&mk, cm), None);
    }

    fn entry(time_ms: u64, msgid: &str, text: &str) -> Entry {
        let meta = Meta { time_ms, msgid: msgid.into(), client_tags: None, account: None, bot: false, sender: None };
        let body = format!(":a!b@c PRIVMSG #c :{text}\r\n");
        Entry { line: Shared::with_meta(body.into_bytes().into(), Arc::new(meta)), kind: Kind::Message, peer: None }
    }

    #[test]
    fn batches_read_back_as_written() {
        let cm = CaseMapping::Rfc1459;
        let (c, u) = (LogKey::Channel(cm.fold("#chan")), LogKey::User(cm.fold("a:acct")));
        let e = entry(1_700_000_000_123, "msg1", "hello");
        let mut batch = Vec::new();
        put_record(&mut batch, &c, &e);
        delete_record(&mut batch, &u, 42, "gone");
        let mut rs = records(&batch);
        let Some((Record::Put { log, time_ms, msgid, entry: bytes }, raw)) = rs.next() else { panic!("a put") };
        assert_eq!((log.to_key(cm), time_ms, msgid), (Some(c.clone()), e.time_ms(), b"msg1".as_slice()));
        assert_eq!(decode(bytes, cm).expect("decodes").line.body, e.line.body);
        assert_eq!(rs.next().map(|r| r.0), Some(Record::Delete { log: u.as_ref(), time_ms: 42, msgid: b"gone" }));
        assert!(rs.next().is_none() && !rs.damaged);
        // A record's bytes are the record: copied into another batch, it reads the same.
        let mut copy = Vec::new();
        copy.extend_from_slice(raw);
        assert!(matches!(records(&copy).next(), Some((Record::Put { .. }, _))));
        // Cut short: what precedes the cut reads, then damage.
        let mut rs = records(&batch[..batch.len() - 1]);
        assert!(rs.next().is_some() && rs.next().is_none() && rs.damaged);
    }

    #[test]
    fn a_torn_frame_ends_the_segment() {
        let mut file = SEGMENT_MAGIC.to_vec();
        frame(&mut file, b"first batch");
        frame(&mut file, b"second batch");
        let whole = file.len();
        frame(&mut file, b"third batch, cut short");
        let mut f = frames(&file[..file.len() - 3]).expect("a segment");
        assert_eq!(f.by_ref().collect::<Vec<_>>(), [b"first batch".as_slice(), b"second batch"]);
        assert!(f.torn);
        // A damaged byte inside a frame: its check fails.
        let mut bad = file[..whole].to_vec();
        bad[whole - 2] ^= 1;
        let mut f = frames(&bad).expect("a segment");
        assert_eq!(f.by_ref().count(), 1);
        assert!(f.torn);
        let mut f = frames(&file).expect("a segment");
        assert_eq!(f.by_ref().count(), 3);
        assert!(!f.torn);
        assert!(frames(b"not a segment").is_none());
    }
}
