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

/// IRCv3 metadata of a user or a channel: key → value, in key order (LIST shows them so).
/// Boxed and absent when empty: most users and channels have none.
pub type Metadata = Option<Box<std::collections::BTreeMap<Box<str>, Box<str>>>>;

/// Sets (`Some`) or removes (`None`) a key; whether anything changed.
pub fn set_metadata(m: &mut Metadata, key: &str, value: Option<&str>) -> bool {
    match value {
        Some(v) => {
            let map = m.get_or_insert_with(Default::default);
            map.insert(key.into(), v.into()).is_none_or(|old| &*old != v)
        }
        None => {
            let removed = m.as_mut().is_some_and(|map| map.remove(key).is_some());
            if m.as_ref().is_some_and(|map| map.is_empty()) {
                *m = None;
            }
            removed
        }
    }
}

pub use directory::Directory;
pub use location::Location;
pub use nicks::NickAuthority;
pub use uid::{Uid, UidAllocator};
pub use user::{User, UserModes};
