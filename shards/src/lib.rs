//! Thread-per-core runtime: one pinned glommio executor per core, a full mesh of SPSC queues
//! between them, SO_REUSEPORT listeners, outbound connects, and per-connection I/O with
//! coalesced writes.
//!
//! This crate knows nothing of IRC. A service plugs in through [`Handler`]: the runtime calls it
//! with bytes read, mesh messages, ticks and control messages, and the handler answers through
//! [`Io`] (queue bytes for a connection, close one, open one, send to another shard). Everything
//! a handler does is synchronous; the runtime owns every future.

mod accept;
mod conn;
mod conn_task;
mod handshake;
mod io;
mod jobs;
mod limits;
mod listener;
mod mesh;
mod mesh_tasks;
mod notify;
mod nudge;
mod outbound;
mod runtime;
mod shard;
mod sleep;
mod start;
mod stream;
mod writer;
mod ws;

pub use conn::{ConnId, ConnInfo, Disconnect, Origin, Traffic};
pub use io::{Io, IoStats};
pub use limits::{raise_nofile_limit, FdLimits};
pub use mesh::{BatchPolicy, Batcher};
pub use runtime::allowed_cpus;
pub use runtime::{Controller, Handler, ListenSpec, Runtime, RuntimeConfig, RuntimeError, StartError};
pub use ws::{WsAnswer, WsRequest};

/// Index of a shard, `0..cores`.
pub type ShardId = usize;

/// A message that crosses the mesh. `weight` is its size in bytes for the batch byte budget.
pub trait Envelope: Send + 'static {
    fn weight(&self) -> usize {
        0
    }
}
