//! A connection of this shard, as the core sees it: an opaque handle the runtime gave it.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Conn(pub u64);
