//! Channels across shards. A channel's *home* (the owner of its folded name) holds the
//! authoritative state and decides every change, giving it the next number of its sequence.
//! The requesting shard then applies the change to its own view, shows it to its members, and
//! sends it to every other shard, which apply it in sequence order. Messages and every other
//! event of a user leave from the user's own shard, so each observer sees them in the order the
//! user made them. `docs/architecture.md` has the whole argument.

pub mod extban;
pub mod invite;
pub mod join;
pub mod kick;
pub mod knock;
pub mod list;
pub mod mode;
pub mod names;
pub mod part;
pub mod remote;
pub mod rename;
pub mod speak;
pub mod stall;
pub mod topic;

mod apply;
mod depart;
mod home;
mod request;
mod types;

pub use apply::{apply_event, apply_ready, local_members, try_event, Effect};
pub use depart::{depart_user, depart_users, leave_network, on_quit_ack, quit_line};
pub use home::{at_home, quit_at_home};
pub use request::{continue_client, on_ack, settle, submit};
pub use types::{ChanEvent, ChanRequest, Outcome, QuitPart, Sequenced};
