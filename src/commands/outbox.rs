//! What the IRC core needs from the runtime, as a trait: the core is written and unit-tested
//! against this; the server glue implements it over `shards::Io`.

use std::time::Instant;

use super::envelope::Env;

/// A connection of this shard, as the core sees it: an opaque handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Conn(pub u64);

pub trait Outbox {
    fn now(&self) -> Instant;
    fn shard(&self) -> usize;
    fn cores(&self) -> usize;
    /// Queues bytes; returns what is now queued for the connection (None if it is gone).
    fn send(&mut self, conn: Conn, bytes: &[u8]) -> Option<usize>;
    /// Closes after the queued output is written.
    fn close(&mut self, conn: Conn);
    /// Closes at once, discarding queued output (a client that stopped reading).
    fn abort(&mut self, conn: Conn);
    fn mesh(&mut self, to: usize, env: Env);
    /// Asks the process to stop (DIE).
    fn request_stop(&mut self);
}
