//! The types of the channel protocol between shards: a user's request to a channel's home,
//! the home's answer, and the sequenced events every shard applies.

use std::sync::Arc;

use super::*;
use crate::commands::context::Reply;
use crate::commands::outbox::Conn;
use crate::commands::outgoing::Shared;
use crate::proto::Folded;
use crate::state::channel::Mutation;
use crate::state::sequencer::Dep;
use crate::state::servers::Sid;
use crate::state::Uid;

/// A user's request to a channel's home. `mask` is the user's `nick!user@host`.
#[derive(Clone, Debug)]
pub enum ChanRequest {
    Join {
        name: Arc<str>,
        key: Option<String>,
        mask: Arc<str>,
        ip_mask: String,
        /// The joiner's account, as its own shard knows it (the account extban).
        account: Option<Arc<str>>,
        /// Connected over TLS (`+S`).
        secure: bool,
        invited: bool,
    },
    Part {
        name: Arc<str>,
        mask: Arc<str>,
        reason: Option<String>,
    },
    Kick {
        name: Arc<str>,
        mask: Arc<str>,
        target: Uid,
        target_nick: Arc<str>,
        reason: String,
    },
    Topic {
        name: Arc<str>,
        mask: Arc<str>,
        text: String,
    },
    Mode {
        name: Arc<str>,
        mask: Arc<str>,
        changes: Vec<mode::Requested>,
    },
    /// IRCv3 metadata keys set or removed by an operator; `answer`: the setter is told each
    /// key's value (SET), else it was answered already (CLEAR).
    Metadata {
        name: Arc<str>,
        mask: Arc<str>,
        changes: Vec<(Box<str>, Option<Box<str>>)>,
        answer: bool,
    },
    /// A change a server link brought: decided by the TS rules, not by a user's rights.
    Remote(Box<remote::RemoteChan>),
    /// RENAME, step one, to the new name's home: keep `name` free for the channel `old`.
    Reserve {
        name: Arc<str>,
        old: Arc<str>,
        mask: Arc<str>,
        reason: Arc<str>,
    },
    /// RENAME, step two, to the old name's home (`name` is the old name): hand the channel
    /// over to `new`'s home.
    Rename {
        name: Arc<str>,
        new: Arc<str>,
        mask: Arc<str>,
        reason: Arc<str>,
    },
    /// RENAME, step three, to the new name's home: take the channel in under `name`, with
    /// its history.
    Arrive(Box<rename::Handover>),
}

impl ChanRequest {
    pub fn name(&self) -> &Arc<str> {
        match self {
            ChanRequest::Join { name, .. }
            | ChanRequest::Part { name, .. }
            | ChanRequest::Kick { name, .. }
            | ChanRequest::Topic { name, .. }
            | ChanRequest::Mode { name, .. }
            | ChanRequest::Metadata { name, .. }
            | ChanRequest::Reserve { name, .. }
            | ChanRequest::Rename { name, .. } => name,
            ChanRequest::Arrive(h) => &h.state.name,
            ChanRequest::Remote(r) => r.name(),
        }
    }
}

/// The home's answer to a request.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The change, its number, the line its members see, and numerics for the requester.
    Accepted {
        home: u16,
        seq: u64,
        chan: Folded,
        name: Arc<str>,
        mutation: Mutation,
        line: Arc<[u8]>,
        notes: Vec<Reply>,
        /// A request to send once the change is applied everywhere (a rename's last step).
        then: Option<Box<ChanRequest>>,
    },
    Refused(Vec<Reply>),
    /// Refused with a standard reply: `FAIL <command> <code> <context..> :<text>`.
    Fail {
        command: &'static str,
        code: &'static str,
        context: Vec<Arc<str>>,
        text: &'static str,
    },
    /// No change yet: send `next` to its home now (a rename's reservation is made).
    Proceed(Box<ChanRequest>),
}

/// An event applied by every shard in sequence order: after the previous number of `dep`'s
/// home (an event needs at most one home's number; see `state::sequencer`).
#[derive(Clone, Debug)]
pub struct Sequenced {
    pub dep: Option<Dep>,
    pub ev: ChanEvent,
    /// Answer [`Answer::Applied`] to the sending shard for this connection once applied.
    pub ack: Option<Conn>,
}

#[derive(Clone, Debug)]
pub enum ChanEvent {
    /// A change to one channel; its members see `line`. `via`: the server link it came
    /// through (None: made here), which is not told it again.
    Change { chan: Folded, name: Arc<str>, mutation: Mutation, line: Shared, actor: Uid, via: Option<Sid> },
    /// Users leaving the network leave the channels of one home: one user as a rule, every
    /// user behind a lost server in a netsplit (one event per home, not one per user).
    Quit { parts: Vec<QuitPart> },
}

/// One user's part of a departure: the channels of one home (`chans`); with the `last` part
/// the user is gone. Observers see `line` once, with the first part applied on their shard.
#[derive(Clone, Debug)]
pub struct QuitPart {
    pub uid: Uid,
    pub line: Shared,
    pub chans: Vec<Folded>,
    pub last: bool,
}
