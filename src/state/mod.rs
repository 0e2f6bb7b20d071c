//! Network state, socket-free: users (a replicated directory), nickname ownership, and
//! channels. Who owns what across shards is written down in `docs/architecture.md`.

pub mod bans;
pub mod channel;
pub mod client;
pub mod directory;
pub mod nicks;
pub mod sequencer;
pub mod shard;
pub mod uid;
pub mod user;
pub mod whowas;

pub use directory::Directory;
pub use nicks::NickAuthority;
pub use uid::{Uid, UidAllocator};
pub use user::{User, UserModes};
