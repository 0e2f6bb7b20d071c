//! What one shard holds of its own, above the replicated network state (`state`): its
//! connections' sessions (`Client`: its `Kind` — a client or a server link —, registration,
//! queued input, waits, capabilities) and the shard's whole world (`ShardState`: its clients,
//! its copy of the network state, requests and changes in flight, counters). The command
//! handlers act on it; only its shard's thread touches it.

pub mod client;
pub mod conn;
pub mod kind;
pub mod link;
pub mod shard;
