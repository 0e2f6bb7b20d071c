//! Nickname ownership. The shard that owns `fold(nick)` (see [`crate::proto::Folded::owner`])
//! keeps that nick's entry and decides every claim on it, one at a time: two clients on
//! different shards racing for a nick are ordered here, and exactly one wins.

use ahash::AHashMap;

use super::uid::Uid;
use crate::proto::Folded;

#[derive(Default)]
pub struct NickAuthority {
    owners: AHashMap<Folded, Uid>,
    /// Nicks of users lost in a netsplit, kept from local clients until this time (unix
    /// seconds): the user's server may come back with it (IRCnet's nick delay).
    reserved: AHashMap<Folded, u64>,
}

impl NickAuthority {
    /// Keeps `nick` from local claims until `until` (a split user's nick).
    pub fn reserve_all(&mut self, nicks: Vec<Folded>, until: u64) {
        self.reserved.extend(nicks.into_iter().map(|n| (n, until)));
    }

    /// Whether a local client may not take `nick` now (reserved after a split).
    pub fn is_reserved(&mut self, nick: &Folded, now: u64) -> bool {
        match self.reserved.get(nick) {
            Some(&until) if until > now => true,
            Some(_) => {
                self.reserved.remove(nick);
                false
            }
            None => false,
        }
    }

    /// A server brought a user with the nick: the reservation has served.
    pub fn unreserve(&mut self, nick: &Folded) {
        self.reserved.remove(nick);
    }

    /// Grants `nick` to `uid` unless someone else holds it. A user re-claiming its own nick
    /// (a case change) succeeds.
    pub fn claim(&mut self, nick: Folded, uid: Uid) -> bool {
        match self.owners.get(&nick) {
            Some(holder) if *holder != uid => false,
            _ => {
                self.owners.insert(nick, uid);
                true
            }
        }
    }

    /// Releases `nick` if `uid` holds it (a late release never frees a newer owner's nick).
    pub fn release(&mut self, nick: &Folded, uid: Uid) {
        if self.owners.get(nick) == Some(&uid) {
            self.owners.remove(nick);
        }
    }

    pub fn holder(&self, nick: &Folded) -> Option<Uid> {
        self.owners.get(nick).copied()
    }

    pub fn len(&self) -> usize {
        self.owners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::CaseMapping;
    use crate::state::UidAllocator;

    #[test]
    fn a_reserved_nick_lapses() {
        let cm = CaseMapping::Ascii;
        let mut n = NickAuthority::default();
        n.reserve_all(vec![cm.fold("Dave")], 100);
        assert!(n.is_reserved(&cm.fold("dave"), 99));
        assert!(!n.is_reserved(&cm.fold("dave"), 100));
        n.reserve_all(vec![cm.fold("dave")], 200);
        n.unreserve(&cm.fold("DAVE"));
        assert!(!n.is_reserved(&cm.fold("dave"), 0));
    }

    #[test]
    fn exactly_one_claim_wins() {
        let cm = CaseMapping::Ascii;
        let mut a = UidAllocator::new("0RC", 0, 1);
        let (u1, u2) = (a.allocate(), a.allocate());
        let mut n = NickAuthority::default();
        assert!(n.claim(cm.fold("Bob"), u1));
        assert!(!n.claim(cm.fold("BOB"), u2));
        assert!(n.claim(cm.fold("bob"), u1), "case change by the holder");
        n.release(&cm.fold("bob"), u2);
        assert_eq!(n.holder(&cm.fold("bob")), Some(u1));
        n.release(&cm.fold("bob"), u1);
        assert!(n.claim(cm.fold("bob"), u2));
    }
}
