//! Messages between shards. Each variant names its sender's role: requests to the owner of a
//! nick, replies to the requester, and events from a user's own shard to every shard.

use std::sync::Arc;

use shards::Envelope;

use super::Conn;
use crate::proto::Folded;
use crate::state::{Uid, User, UserModes};

pub enum Env {
    /// To the nick's owner shard: may `uid` (on the sender's connection `conn`) take `nick`?
    NickClaim {
        nick: Folded,
        uid: Uid,
        conn: Conn,
    },
    /// The owner's answer, back to the claiming shard.
    NickResult {
        nick: Folded,
        uid: Uid,
        conn: Conn,
        granted: bool,
    },
    /// To the nick's owner shard: `uid` no longer uses `nick`.
    NickRelease {
        nick: Folded,
        uid: Uid,
    },

    /// A user finished registering (to every other shard).
    UserIntro(Box<User>),
    /// A user changed nick; `line` is the NICK line observers receive.
    UserNick {
        uid: Uid,
        nick: Arc<str>,
        folded: Folded,
        ts: u64,
        line: Arc<[u8]>,
    },
    UserModes {
        uid: Uid,
        modes: UserModes,
    },
    UserAway {
        uid: Uid,
        away: Option<Arc<str>>,
    },
    /// A user left; `line` is the QUIT line observers receive.
    UserQuit {
        uid: Uid,
        line: Arc<[u8]>,
    },

    /// A line for one user of the receiving shard (private messages, notices, INVITE...).
    ToUser {
        uid: Uid,
        line: Arc<[u8]>,
    },

    /// Periodic per-shard connection counts (for LUSERS).
    Counts {
        unregistered: u32,
    },
}

impl Envelope for Env {
    fn weight(&self) -> usize {
        match self {
            Env::UserNick { line, .. } | Env::UserQuit { line, .. } | Env::ToUser { line, .. } => line.len() + 32,
            Env::UserIntro(_) => 160,
            _ => 32,
        }
    }
}
