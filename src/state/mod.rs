//! Network state, socket-free: the data every shard replicates — users (the directory), nickname
//! ownership, channels, bans, the sequencer, UIDs, WHOWAS. It imports nothing above it; what
//! one shard holds of its own (connections' sessions, pending requests) is in `local`. Who owns what across shards is written down in `docs/architecture.md`.

pub mod bans;
pub mod channel;
pub mod directory;
pub mod location;
pub mod nicks;
pub mod sequencer;
pub mod servers;
pub mod uid;
pub mod user;
pub mod whowas;

pub use directory::Directory;
pub use location::Location;
pub use nicks::NickAuthority;
pub use uid::{Uid, UidAllocator};
pub use user::{User, UserModes};
