//! What the server counts, and how it is read.
//!
//! Every shard keeps its own figures in plain fields of its state ([`ShardMetrics`]): the hot
//! path adds to a `u64` it alone owns, with no atomic and no lock. Readers ask: `STATS` on one
//! shard gathers a [`ShardReport`] from every shard over the mesh, and the Prometheus endpoint
//! (`http.rs`, its own thread) sends each shard a control message and renders the reports it
//! gets back (`prometheus.rs`).

pub mod histogram;
pub mod http;
pub mod io;
pub mod prometheus;
pub mod report;
pub mod shard;

pub use histogram::Histogram;
pub use io::{IoFigures, Traffic};
pub use report::{ConnReport, LinkReport, ShardReport};
pub use shard::{Counters, ShardMetrics, Usage};
