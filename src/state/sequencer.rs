//! Sequence numbers for channel changes. Each shard numbers the changes to the channels it is
//! home to (one counter per home shard, for all its channels). Every shard applies each home's
//! changes in that order: an event carries at most one number, of one home, and is applied
//! only when that home's previous number has been applied here.
//!
//! One number, never several: an event that needed a number from each of two homes could be
//! numbered A: U1 before U2 and B: U2 before U1, and then wait for itself through the other
//! (issue 11's wedge). A change that spans homes is sent as one event per home instead.

/// (home shard, sequence number at that home)
pub type Dep = (u16, u64);

pub struct Sequencer {
    /// The last sequence number applied here, per home shard.
    applied: Vec<u64>,
    /// The last number this shard issued as a home.
    issued: u64,
}

impl Sequencer {
    pub fn new(shards: usize) -> Self {
        Sequencer { applied: vec![0; shards], issued: 0 }
    }

    /// The next number for a change to a channel homed here.
    pub fn issue(&mut self) -> u64 {
        self.issued += 1;
        self.issued
    }

    pub fn ready(&self, dep: Option<Dep>) -> bool {
        dep.is_none_or(|(h, s)| self.applied[h as usize] + 1 == s)
    }

    pub fn advance(&mut self, dep: Option<Dep>) {
        if let Some((h, s)) = dep {
            debug_assert_eq!(self.applied[h as usize] + 1, s);
            self.applied[h as usize] = s;
        }
    }

    pub fn applied(&self, home: usize) -> u64 {
        self.applied[home]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_per_home() {
        let mut s = Sequencer::new(2);
        assert!(s.ready(None));
        assert!(!s.ready(Some((0, 2))));
        assert!(s.ready(Some((0, 1))));
        s.advance(Some((0, 1)));
        assert!(s.ready(Some((0, 2))) && s.ready(Some((1, 1))));
        assert!(!s.ready(Some((1, 2))));
        s.advance(Some((0, 2)));
        s.advance(Some((1, 1)));
        assert_eq!((s.applied(0), s.applied(1)), (2, 1));
        assert_eq!(s.issue(), 1);
        assert_eq!(s.issue(), 2);
    }
}
