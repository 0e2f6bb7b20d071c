//! WHOWAS history: departed nicks, newest first, bounded by `[database] user_cache_size`
//! entries and `user_cache_ttl_seconds`. Every shard sees every quit and nick change, so each
//! keeps the whole network's history and answers WHOWAS alone.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::proto::Folded;

#[derive(Clone, Debug)]
pub struct WasEntry {
    pub folded: Folded,
    pub nick: Arc<str>,
    pub user: Arc<str>,
    pub host: Arc<str>,
    pub realname: Arc<str>,
    pub server: Arc<str>,
    pub when: u64,
}

impl WasEntry {
    /// What WHOWAS keeps of a user of `server` at `when`.
    pub fn of(u: &super::User, server: &str, when: u64) -> WasEntry {
        WasEntry {
            folded: u.folded.clone(),
            nick: u.nick.clone(),
            user: u.user.clone(),
            host: u.host.clone(),
            realname: u.realname.clone(),
            server: server.into(),
            when,
        }
    }
}

pub struct Whowas {
    entries: VecDeque<WasEntry>,
    max: usize,
    ttl: u64,
}

impl Whowas {
    pub fn new(max: usize, ttl_secs: u64) -> Self {
        Whowas { entries: VecDeque::new(), max, ttl: ttl_secs }
    }

    pub fn configure(&mut self, max: usize, ttl_secs: u64) {
        self.max = max;
        self.ttl = ttl_secs;
        self.entries.truncate(max);
    }

    pub fn record(&mut self, e: WasEntry) {
        if self.max == 0 {
            return;
        }
        self.entries.push_front(e);
        self.entries.truncate(self.max);
    }

    /// Entries for a nick, newest first, at most `count` (0 = all), none older than the TTL.
    pub fn lookup(&self, folded: &Folded, count: usize, now: u64) -> Vec<&WasEntry> {
        let limit = if count == 0 { usize::MAX } else { count };
        self.entries
            .iter()
            .filter(|e| &e.folded == folded && now.saturating_sub(e.when) <= self.ttl)
            .take(limit)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::CaseMapping;

    fn e(nick: &str, when: u64) -> WasEntry {
        WasEntry {
            folded: CaseMapping::Ascii.fold(nick),
            nick: nick.into(),
            user: "u".into(),
            host: "h".into(),
            realname: "r".into(),
            server: "s".into(),
            when,
        }
    }

    #[test]
    fn newest_first_bounded_and_expiring() {
        let mut w = Whowas::new(3, 100);
        w.record(e("Bob", 1));
        w.record(e("alice", 2));
        w.record(e("bob", 3));
        w.record(e("carol", 4));
        assert_eq!(w.len(), 3);
        let f = CaseMapping::Ascii.fold("BOB");
        let got: Vec<u64> = w.lookup(&f, 0, 10).iter().map(|e| e.when).collect();
        assert_eq!(got, vec![3], "the oldest Bob fell off the end");
        assert!(w.lookup(&f, 0, 1000).is_empty(), "expired");
    }
}
