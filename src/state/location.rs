//! Where a user is, which every routing decision reads: on a client connection of one of this
//! server's shards, or behind a server link that one shard holds. Either way one shard
//! delivers to the user; only that shard's last hop differs (a connection, or the link).

/// A user's place in the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    /// On a client connection of the given shard.
    Local(u16),
    /// A user of another server, behind the link the given shard holds.
    Link(u16),
}

impl Location {
    /// The shard that delivers to the user.
    pub fn shard(self) -> usize {
        match self {
            Location::Local(s) | Location::Link(s) => s as usize,
        }
    }

    /// A user of this server (its connection is one of ours).
    pub fn is_local(self) -> bool {
        matches!(self, Location::Local(_))
    }

    pub fn local(shard: usize) -> Location {
        Location::Local(shard as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_kinds_name_the_delivering_shard() {
        assert_eq!(Location::local(3).shard(), 3);
        assert_eq!(Location::Link(1).shard(), 1);
        assert!(Location::local(0).is_local() && !Location::Link(0).is_local());
    }
}
