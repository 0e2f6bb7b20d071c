//! The wire protocol, socket-free: message parsing and serialization (with IRCv3 tags),
//! numerics, casemapping, name validation, mask matching, line framing, and what a message's
//! text carries (CTCP, colour codes).

pub mod casemap;
pub mod framer;
pub mod line;
pub mod mask;
pub mod message;
pub mod modes;
pub mod names;
pub mod numeric;
pub mod tags;
pub mod text;
pub mod ts6;

pub use casemap::{CaseMapping, Folded};
pub use line::Line;
pub use message::Message;
pub use numeric::Numeric;
