//! The user directory every shard keeps: every registered user, by UID and by casefolded nick.
//! Entries change only through events from the user's own shard, which arrive in order, so the
//! copies agree once quiet. The nick index tolerates the brief overlap of a released nick being
//! taken again before the rename reaches this shard: an index entry is removed only by the
//! user it points to.

use ahash::AHashMap;

use super::uid::Uid;
use super::user::{User, UserModes};
use crate::proto::Folded;

#[derive(Default)]
pub struct Directory {
    /// Boxed for the same reason as `ShardState::clients`: spare table slots stay small.
    by_uid: AHashMap<Uid, Box<User>>,
    by_nick: AHashMap<Folded, Uid>,
    invisible: usize,
    opers: usize,
    /// Users of this server (on any shard), as opposed to those behind server links.
    locals: usize,
}

impl Directory {
    pub fn insert(&mut self, u: User) {
        if let Some(old) = self.by_uid.remove(&u.uid) {
            self.unindex(&old);
        }
        self.by_nick.insert(u.folded.clone(), u.uid);
        self.count(&u, true);
        self.by_uid.insert(u.uid, Box::new(u));
    }

    pub fn remove(&mut self, uid: &Uid) -> Option<User> {
        let u = self.by_uid.remove(uid)?;
        self.unindex(&u);
        Some(*u)
    }

    fn unindex(&mut self, u: &User) {
        if self.by_nick.get(&u.folded) == Some(&u.uid) {
            self.by_nick.remove(&u.folded);
        }
        self.count(u, false);
    }

    fn count(&mut self, u: &User, add: bool) {
        let d = |n: &mut usize| if add { *n += 1 } else { *n -= 1 };
        if u.modes.has(UserModes::INVISIBLE) {
            d(&mut self.invisible);
        }
        if u.modes.has(UserModes::OPER) {
            d(&mut self.opers);
        }
        if u.location.is_local() {
            d(&mut self.locals);
        }
    }

    pub fn get(&self, uid: &Uid) -> Option<&User> {
        self.by_uid.get(uid).map(|u| &**u)
    }

    pub fn by_nick(&self, folded: &Folded) -> Option<&User> {
        self.by_nick.get(folded).and_then(|u| self.by_uid.get(u)).map(|u| &**u)
    }

    pub fn rename(&mut self, uid: &Uid, nick: std::sync::Arc<str>, folded: Folded, ts: u64) {
        let Some(u) = self.by_uid.get_mut(uid) else {
            return;
        };
        if self.by_nick.get(&u.folded) == Some(uid) {
            self.by_nick.remove(&u.folded);
        }
        u.nick = nick;
        u.folded = folded.clone();
        u.nick_ts = ts;
        self.by_nick.insert(folded, *uid);
    }

    /// Applies a change to a user's modes, keeping the counts right.
    pub fn set_modes(&mut self, uid: &Uid, modes: UserModes) {
        let Some(old) = self.by_uid.get(uid).cloned() else {
            return;
        };
        self.count(&old, false);
        let u = self.by_uid.get_mut(uid).expect("present above");
        u.modes = modes;
        let u = u.clone();
        self.count(&u, true);
    }

    pub fn get_mut(&mut self, uid: &Uid) -> Option<&mut User> {
        self.by_uid.get_mut(uid).map(|u| &mut **u)
    }

    pub fn len(&self) -> usize {
        self.by_uid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_uid.is_empty()
    }

    pub fn invisible(&self) -> usize {
        self.invisible
    }

    pub fn opers(&self) -> usize {
        self.opers
    }

    /// Users of this server (LUSERS' "local").
    pub fn locals(&self) -> usize {
        self.locals
    }

    pub fn iter(&self) -> impl Iterator<Item = &User> {
        self.by_uid.values().map(|u| &**u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::CaseMapping;
    use crate::state::UidAllocator;
    use std::sync::Arc;

    fn user(a: &mut UidAllocator, nick: &str) -> User {
        User {
            uid: a.allocate(),
            nick: nick.into(),
            folded: CaseMapping::Ascii.fold(nick),
            nick_ts: 0,
            user: "u".into(),
            host: "h".into(),
            ip: "127.0.0.1".into(),
            realname: "r".into(),
            modes: UserModes::INVISIBLE,
            away: None,
            account: None,
            location: crate::state::Location::local(0),
            signon: 0,
            channels: Vec::new(),
            metadata: None,
        }
    }

    #[test]
    fn a_late_rename_does_not_unindex_the_new_owner() {
        let cm = CaseMapping::Ascii;
        let mut a = UidAllocator::new("0RC", 0, 1);
        let mut d = Directory::default();
        let alice = user(&mut a, "Alice");
        let auid = alice.uid;
        d.insert(alice);
        // Another shard's user took "alice" after it was released; its intro arrives first.
        let other = user(&mut a, "alice");
        let ouid = other.uid;
        d.insert(other);
        // Then Alice's rename arrives: the index must keep pointing at the new owner.
        d.rename(&auid, Arc::from("Alicia"), cm.fold("Alicia"), 1);
        assert_eq!(d.by_nick(&cm.fold("ALICE")).unwrap().uid, ouid);
        assert_eq!(d.by_nick(&cm.fold("alicia")).unwrap().uid, auid);
        assert_eq!(d.invisible(), 2);
        d.remove(&ouid);
        assert!(d.by_nick(&cm.fold("alice")).is_none());
        assert_eq!(d.invisible(), 1);
    }
}
