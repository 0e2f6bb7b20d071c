//! The network map every shard keeps: each server of the network other than this one, where it
//! hangs in the spanning tree and through which of our links it is reached. Changes arrive from
//! the shard holding that link, in its order, so the copies agree once quiet. Users name their
//! server through their UID (a TS6 UID starts with its server's SID).

use std::fmt;
use std::sync::Arc;

use ahash::AHashMap;

use super::uid::Uid;

/// A TS6 server ID: `[0-9][A-Z0-9][A-Z0-9]`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid([u8; 3]);

impl Sid {
    pub fn parse(s: &str) -> Option<Sid> {
        if !crate::proto::names::valid_sid(s) {
            return None;
        }
        let mut a = [0u8; 3];
        a.copy_from_slice(s.as_bytes());
        Some(Sid(a))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("SIDs are ASCII")
    }

    /// The server a user is on.
    pub fn of(uid: &Uid) -> Sid {
        // No check again: a `Uid` is only made from a valid SID (per message, this is hot).
        Sid(uid.sid_bytes())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A server of the network (not this one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub sid: Sid,
    pub name: Arc<str>,
    /// Hops from this server: 1 for a direct peer.
    pub hop: u32,
    pub desc: Arc<str>,
    /// `+h`: left out of LINKS and MAP for users.
    pub hidden: bool,
    /// The server it hangs from; None: it is our direct peer.
    pub uplink: Option<Sid>,
    /// Our direct peer it is reached through (itself for a peer): hybrid's "from".
    pub via: Sid,
    /// The shard holding the link to `via`.
    pub shard: u16,
    /// It finished its burst (EOB, or the PONG to our post-burst PING).
    pub synced: bool,
    /// A direct peer that said `MTAGS` (a rustircd server): it keeps channels' history, so
    /// channel messages go to it whether members are behind it or not.
    pub tags: bool,
}

#[derive(Default)]
pub struct Servers {
    by_sid: AHashMap<Sid, Server>,
    by_name: AHashMap<Box<str>, Sid>,
}

/// Server names compare case-insensitively (they are host names).
fn key(name: &str) -> Box<str> {
    name.to_ascii_lowercase().into()
}

impl Servers {
    /// Adds a server. Refused (false) when its SID or name is known, or its uplink is not.
    pub fn insert(&mut self, s: Server) -> bool {
        if self.by_sid.contains_key(&s.sid) || self.by_name.contains_key(&key(&s.name)) {
            return false;
        }
        if s.uplink.is_some_and(|u| !self.by_sid.contains_key(&u)) {
            return false;
        }
        self.by_name.insert(key(&s.name), s.sid);
        self.by_sid.insert(s.sid, s);
        true
    }

    pub fn get(&self, sid: &Sid) -> Option<&Server> {
        self.by_sid.get(sid)
    }

    pub fn get_mut(&mut self, sid: &Sid) -> Option<&mut Server> {
        self.by_sid.get_mut(sid)
    }

    pub fn by_name(&self, name: &str) -> Option<&Server> {
        self.by_name.get(&key(name)).and_then(|s| self.by_sid.get(s))
    }

    /// A server by SID or by name (operators and routed PINGs use either).
    pub fn find(&self, sid_or_name: &str) -> Option<&Server> {
        Sid::parse(sid_or_name).and_then(|s| self.get(&s)).or_else(|| self.by_name(sid_or_name))
    }

    /// `sid` and every server behind it, children before their parent (the order a split
    /// removes them in).
    pub fn subtree(&self, sid: Sid) -> Vec<Sid> {
        let mut out = Vec::new();
        if self.by_sid.contains_key(&sid) {
            self.collect(sid, &mut out);
        }
        out
    }

    fn collect(&self, sid: Sid, out: &mut Vec<Sid>) {
        let mut kids: Vec<Sid> = self.by_sid.values().filter(|s| s.uplink == Some(sid)).map(|s| s.sid).collect();
        kids.sort();
        for k in kids {
            self.collect(k, out);
        }
        out.push(sid);
    }

    /// Removes `sid` and everything behind it; returns them, children first.
    pub fn remove_subtree(&mut self, sid: Sid) -> Vec<Server> {
        self.subtree(sid)
            .into_iter()
            .filter_map(|s| {
                let gone = self.by_sid.remove(&s)?;
                self.by_name.remove(&key(&gone.name));
                Some(gone)
            })
            .collect()
    }

    /// Servers in tree order: each after its uplink (a burst introduces them so).
    pub fn in_tree_order(&self) -> Vec<&Server> {
        let mut out: Vec<&Server> = self.by_sid.values().collect();
        out.sort_by_key(|s| (s.hop, s.sid));
        out
    }

    pub fn len(&self) -> usize {
        self.by_sid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_sid.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Server> {
        self.by_sid.values()
    }
}

/// The network's SIDs and names as one shard (shard 0) registers them: every link's new
/// servers are claimed here first, so two links on different shards cannot both bring in the
/// same SID or name (each shard's map learns of a server only after the claim).
#[derive(Default)]
pub struct Register {
    names: AHashMap<Sid, Box<str>>,
    sids: AHashMap<Box<str>, Sid>,
}

impl Register {
    /// Registers a server, or says why not (hybrid's words, which the peer sees in ERROR).
    pub fn claim(&mut self, sid: Sid, name: &str) -> Result<(), &'static str> {
        if self.sids.contains_key(&key(name)) {
            return Err("Server already exists");
        }
        if self.names.contains_key(&sid) {
            return Err("Server ID already exists");
        }
        self.names.insert(sid, key(name));
        self.sids.insert(key(name), sid);
        Ok(())
    }

    pub fn release(&mut self, sid: Sid) {
        if let Some(name) = self.names.remove(&sid) {
            self.sids.remove(&name);
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(s: &str) -> Sid {
        Sid::parse(s).unwrap()
    }

    fn server(s: &str, name: &str, uplink: Option<&str>, hop: u32) -> Server {
        let via = uplink.map_or(sid(s), |_| sid("1AA"));
        Server {
            sid: sid(s),
            name: name.into(),
            hop,
            desc: "d".into(),
            hidden: false,
            uplink: uplink.map(sid),
            via,
            shard: 0,
            synced: false,
            tags: false,
        }
    }

    /// 1AA (peer) ─ 2BB ─ 4DD, and 1AA ─ 3SV.
    fn map() -> Servers {
        let mut m = Servers::default();
        assert!(m.insert(server("1AA", "irc.a.lab", None, 1)));
        assert!(m.insert(server("2BB", "irc.b.lab", Some("1AA"), 2)));
        assert!(m.insert(server("3SV", "services.lab", Some("1AA"), 2)));
        assert!(m.insert(server("4DD", "irc.d.lab", Some("2BB"), 3)));
        m
    }

    #[test]
    fn duplicates_and_orphans_are_refused() {
        let mut m = map();
        assert!(!m.insert(server("2BB", "other.lab", Some("1AA"), 2)), "SID in use");
        assert!(!m.insert(server("5EE", "IRC.B.LAB", Some("1AA"), 2)), "name in use, any case");
        assert!(!m.insert(server("5EE", "e.lab", Some("9ZZ"), 2)), "unknown uplink");
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn a_split_removes_the_subtree_children_first() {
        let mut m = map();
        assert_eq!(m.subtree(sid("2BB")), vec![sid("4DD"), sid("2BB")]);
        let gone: Vec<Sid> = m.remove_subtree(sid("1AA")).iter().map(|s| s.sid).collect();
        assert_eq!(gone, vec![sid("4DD"), sid("2BB"), sid("3SV"), sid("1AA")]);
        assert!(m.is_empty() && m.by_name("irc.b.lab").is_none());
        assert!(m.remove_subtree(sid("1AA")).is_empty());
    }

    #[test]
    fn the_register_refuses_a_name_or_sid_twice() {
        let mut r = Register::default();
        assert_eq!(r.claim(sid("1AA"), "irc.a.lab"), Ok(()));
        assert_eq!(r.claim(sid("2BB"), "IRC.A.lab"), Err("Server already exists"));
        assert_eq!(r.claim(sid("1AA"), "irc.b.lab"), Err("Server ID already exists"));
        r.release(sid("1AA"));
        assert_eq!(r.claim(sid("1AA"), "irc.b.lab"), Ok(()));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn lookup_by_sid_or_name_and_tree_order() {
        let m = map();
        assert_eq!(m.find("services.LAB").unwrap().sid, sid("3SV"));
        assert_eq!(m.find("4DD").unwrap().name.as_ref(), "irc.d.lab");
        assert!(m.find("nowhere").is_none());
        let order: Vec<&str> = m.in_tree_order().iter().map(|s| s.sid.as_str()).collect();
        assert_eq!(order, ["1AA", "2BB", "3SV", "4DD"]);
        let uid = Uid::parse("3SVAAAAAG").unwrap();
        assert_eq!(Sid::of(&uid), sid("3SV"));
    }
}
