//! rustircd: a thread-per-core IRC server. See `docs/architecture.md` for the shape:
//! `main` → `server` (glue per shard) → `commands` → `state` → `proto`/`config`, on the
//! `shards` runtime.

pub mod certfp;
pub mod certpin;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod fuzzing;
pub mod glue;
pub mod history_db;
pub mod local;
pub mod logging;
pub mod lookup;
pub mod metrics;
pub mod password;
pub mod persist;
pub mod proto;
pub mod sim;
pub mod state;
pub mod websocket;
