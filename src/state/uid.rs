//! TS6 user IDs: the server's SID and six characters, the first `[A-Z]`, the rest `[A-Z0-9]`.
//! Each shard allocates from its own residue class of the 26×36⁵ ID space (value ≡ shard mod
//! shards), so IDs are unique without coordination and the shard can be read back from the ID.

use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uid([u8; 9]);

const SPACE: u64 = 26 * 36 * 36 * 36 * 36 * 36;

fn digit36(v: u64) -> u8 {
    let v = v as u8;
    if v < 26 {
        b'A' + v
    } else {
        b'0' + (v - 26)
    }
}

fn value36(c: u8) -> Option<u64> {
    match c {
        b'A'..=b'Z' => Some((c - b'A') as u64),
        b'0'..=b'9' => Some((c - b'0') as u64 + 26),
        _ => None,
    }
}

impl Uid {
    pub fn parse(s: &str) -> Option<Uid> {
        let b = s.as_bytes();
        if b.len() != 9 || !s.get(..3).is_some_and(crate::proto::names::valid_sid) || !b[3].is_ascii_uppercase() {
            return None;
        }
        if !b[4..].iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
            return None;
        }
        let mut a = [0u8; 9];
        a.copy_from_slice(b);
        Some(Uid(a))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("UIDs are ASCII")
    }

    pub fn sid(&self) -> &str {
        &self.as_str()[..3]
    }

    /// The SID's three bytes (valid: every `Uid` starts with a checked SID).
    pub fn sid_bytes(&self) -> [u8; 3] {
        [self.0[0], self.0[1], self.0[2]]
    }

    /// The number encoded by the six ID characters.
    fn value(&self) -> u64 {
        let first = (self.0[3] - b'A') as u64;
        self.0[4..].iter().fold(first, |acc, &c| acc * 36 + value36(c).unwrap_or(0))
    }

    /// The shard that allocated this ID (for IDs of this server).
    pub fn shard(&self, shards: usize) -> usize {
        (self.value() % shards as u64) as usize
    }
}

impl fmt::Debug for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A shard's UID source. IDs are never reused while the process lives (26×36⁵/shards each).
pub struct UidAllocator {
    sid: [u8; 3],
    shard: u64,
    shards: u64,
    next: u64,
}

impl UidAllocator {
    pub fn new(sid: &str, shard: usize, shards: usize) -> Self {
        let mut s = [0u8; 3];
        s.copy_from_slice(&sid.as_bytes()[..3]);
        UidAllocator { sid: s, shard: shard as u64, shards: shards as u64, next: 0 }
    }

    pub fn allocate(&mut self) -> Uid {
        let v = (self.next * self.shards + self.shard) % SPACE;
        self.next += 1;
        let mut a = [0u8; 9];
        a[..3].copy_from_slice(&self.sid);
        let mut rest = v;
        for i in (4..9).rev() {
            a[i] = digit36(rest % 36);
            rest /= 36;
        }
        a[3] = b'A' + (rest % 26) as u8;
        Uid(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multibyte_character_is_refused_not_a_panic() {
        assert_eq!(Uid::parse("12\u{e9}AAAAAA"), None);
        assert_eq!(Uid::parse("0RCAAAAAB").map(|u| u.to_string()), Some("0RCAAAAAB".to_string()));
    }
    use std::collections::HashSet;

    #[test]
    fn unique_across_shards_and_shard_recoverable() {
        let mut seen = HashSet::new();
        for shard in 0..3 {
            let mut a = UidAllocator::new("0RC", shard, 3);
            for _ in 0..1000 {
                let u = a.allocate();
                assert!(Uid::parse(u.as_str()).is_some(), "{u}");
                assert_eq!(u.shard(3), shard);
                assert_eq!(u.sid(), "0RC");
                assert!(seen.insert(u));
            }
        }
    }

    #[test]
    fn first_ids() {
        let mut a = UidAllocator::new("0RC", 0, 1);
        assert_eq!(a.allocate().as_str(), "0RCAAAAAA");
        assert_eq!(a.allocate().as_str(), "0RCAAAAAB");
        assert!(Uid::parse("0RCaAAAAA").is_none());
        assert!(Uid::parse("0RC1AAAAA").is_none());
    }
}
