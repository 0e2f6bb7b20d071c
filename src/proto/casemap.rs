//! Casemapping: how nicknames and channel names compare. One mapping is chosen per server
//! (config `server.casemapping`), advertised in `CASEMAPPING`, and used for every comparison:
//! uniqueness, ban matching, and which shard owns a name.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CaseMapping {
    /// `A-Z` fold to `a-z`; what ircd-hybrid and Ergo advertise.
    #[default]
    Ascii,
    /// ASCII plus `[]\~` folding to `{}|^` (RFC 1459).
    Rfc1459,
}

impl CaseMapping {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ascii" => Some(CaseMapping::Ascii),
            "rfc1459" => Some(CaseMapping::Rfc1459),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CaseMapping::Ascii => "ascii",
            CaseMapping::Rfc1459 => "rfc1459",
        }
    }

    #[inline]
    pub fn fold_byte(self, b: u8) -> u8 {
        match (self, b) {
            (_, b'A'..=b'Z') => b + 32,
            (CaseMapping::Rfc1459, b'[') => b'{',
            (CaseMapping::Rfc1459, b']') => b'}',
            (CaseMapping::Rfc1459, b'\\') => b'|',
            (CaseMapping::Rfc1459, b'~') => b'^',
            _ => b,
        }
    }

    /// The folded form of a name, used as the key of every name-indexed table.
    pub fn fold(self, s: &str) -> Folded {
        if !s.bytes().any(|b| self.fold_byte(b) != b) {
            return Folded(s.into());
        }
        // Folding maps ASCII to ASCII only, so the result stays valid UTF-8.
        let bytes: Vec<u8> = s.bytes().map(|b| self.fold_byte(b)).collect();
        Folded(String::from_utf8(bytes).expect("ASCII folding keeps UTF-8 valid").into())
    }

    pub fn eq(self, a: &str, b: &str) -> bool {
        a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| self.fold_byte(x) == self.fold_byte(y))
    }
}

/// A casefolded name. Only [`CaseMapping::fold`] makes one, so two `Folded` compare equal
/// exactly when their names are the same under the server's casemapping. Shared (`Arc`): a
/// name is cloned into requests, events, indexes and departures far more often than made
/// (a netsplit cloned each user's channel list three times, an allocation per name each).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Folded(std::sync::Arc<str>);

impl Folded {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A stable hash (FNV-1a): the same on every shard and across restarts, so it can decide
    /// ownership.
    pub fn stable_hash(&self) -> u64 {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in self.0.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        h
    }

    /// The shard that owns this name (the nick directory entry, or the channel's home).
    pub fn owner(&self, shards: usize) -> usize {
        (self.stable_hash() % shards as u64) as usize
    }
}

impl fmt::Debug for Folded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Folded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_folds_letters_only() {
        let m = CaseMapping::Ascii;
        assert_eq!(m.fold("NiCK[]").as_str(), "nick[]");
        assert!(m.eq("FOO", "foo"));
        assert!(!m.eq("foo[", "foo{"));
    }

    #[test]
    fn rfc1459_folds_brackets() {
        let m = CaseMapping::Rfc1459;
        assert_eq!(m.fold("Nick[\\]~").as_str(), "nick{|}^");
        assert!(m.eq("a[b]", "A{B}"));
    }

    #[test]
    fn non_ascii_is_untouched() {
        let m = CaseMapping::Ascii;
        assert_eq!(m.fold("ÉtÉ").as_str(), "ÉtÉ");
    }

    #[test]
    fn ownership_is_stable_and_case_blind() {
        let m = CaseMapping::Ascii;
        let a = m.fold("SomeNick");
        let b = m.fold("somenick");
        assert_eq!(a.owner(4), b.owner(4));
        // FNV-1a of "a" is fixed: ownership must never depend on process state.
        assert_eq!(m.fold("a").stable_hash(), 0xaf63dc4c8601ec8c);
    }
}
