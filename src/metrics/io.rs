//! What the runtime moved, as the IRC core reads it: plain copies the glue makes of the
//! runtime's own counters, so that nothing above the glue names the runtime's types.

use std::time::Duration;

/// A shard's I/O counters (the runtime's `IoStats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoFigures {
    pub accepted: u64,
    pub refused_full: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub mesh_msgs_out: u64,
    pub mesh_msgs_in: u64,
    /// Mesh batches other shards handed to this shard that wait to be handled.
    pub mesh_batches_waiting: u64,
    /// Lines queued for connections.
    pub records_out: u64,
    /// Sends refused because the connection was gone or closing.
    pub dropped_sends: u64,
    pub handshake_failures: u64,
    /// WebSocket upgrades that failed, timed out or were refused (a foreign Origin).
    pub upgrade_failures: u64,
    /// Connections asleep now (quiet, without a task of their own; see the shards crate).
    pub asleep: u64,
    /// How late the last periodic tick ran.
    pub tick_lateness: Duration,
}

/// What one connection moved so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub bytes_in: u64,
    /// Bytes queued for the connection (written, or still in its queue).
    pub bytes_out: u64,
    pub records_out: u64,
    /// Bytes queued and not yet accepted by the kernel.
    pub queued: u64,
}
