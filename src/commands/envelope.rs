//! Messages between shards. Each variant names its sender's role: requests to the owner of a
//! nick, replies to the requester, and events from a user's own shard to every shard.

use std::sync::Arc;

use shards::Envelope;

use super::channel::{ChanRequest, Outcome, Sequenced};
use super::outgoing::Shared;
use super::Conn;
use crate::proto::Folded;
use crate::state::channel::Status;
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

    /// A user finished registering (to every other shard). With `ack`, the receiver answers
    /// [`Env::Applied`] once applied (the user's 001 waits for every shard).
    UserIntro {
        user: Box<User>,
        ack: Option<Conn>,
    },
    /// A user changed nick; `line` is the NICK line observers receive.
    UserNick {
        uid: Uid,
        nick: Arc<str>,
        folded: Folded,
        ts: u64,
        line: Shared,
        ack: Option<Conn>,
    },
    UserModes {
        uid: Uid,
        modes: UserModes,
        ack: Option<Conn>,
    },
    UserAway {
        uid: Uid,
        away: Option<Arc<str>>,
        ack: Option<Conn>,
    },

    /// To a channel's home shard: a request of a user of the sending shard.
    ChanReq {
        conn: Conn,
        uid: Uid,
        req: ChanRequest,
    },
    /// The home's answer, back to the requesting shard.
    ChanAck {
        conn: Conn,
        uid: Uid,
        outcome: Outcome,
    },
    /// A sequenced change (or a departure), from the shard that made it to every other shard.
    Event(Box<Sequenced>),
    /// To each home of a departing user's channels: remove it from these.
    QuitReq {
        uid: Uid,
        chans: Vec<Folded>,
    },
    /// The home's answer: the sequence number it gave the removal.
    QuitAck {
        uid: Uid,
        home: u16,
        seq: u64,
    },
    /// A channel message for the receiving shard's members of `chan` (of at least `min`
    /// status, for `@#chan`/`+#chan`), except the sender.
    ChanMsg {
        chan: Folded,
        line: Shared,
        sender: Uid,
        min: Status,
        /// Capabilities a recipient needs (TAGMSG: message-tags).
        need: u64,
        /// When the message reached the server (latency metrics).
        at: std::time::Instant,
    },
    /// An INVITE for a user of the receiving shard.
    Invite {
        target: Uid,
        chan: Folded,
        line: Shared,
    },
    /// A user's new realname (SETNAME).
    UserRealname {
        uid: Uid,
        realname: Arc<str>,
        ack: Option<Conn>,
    },

    /// A line for one user of the receiving shard (private messages, notices, INVITE...).
    ToUser {
        uid: Uid,
        line: Shared,
        /// Capabilities the recipient needs (TAGMSG: message-tags).
        need: u64,
        /// When the message reached the server (latency metrics).
        at: std::time::Instant,
    },

    /// WHOIS of a user of the receiving shard, for `asker` on the sending shard's `conn`.
    WhoisReq {
        conn: Conn,
        asker: Uid,
        asker_nick: Arc<str>,
        target: Uid,
    },
    /// The receiver applied the event that asked for this acknowledgement (for `conn` of the
    /// shard it goes to).
    Applied {
        conn: Conn,
    },
    /// Reply lines for a client of the receiving shard that waits for them.
    Replies {
        conn: Conn,
        bytes: Vec<u8>,
    },

    /// A connection from `ip` opened (`up`) or closed on the sending shard (per-IP limits).
    IpEvent {
        ip: std::net::IpAddr,
        up: bool,
    },
    /// A K-line or D-line was added: every shard applies and enforces it.
    Ban(crate::state::bans::Ban),
    Unban {
        kind: crate::state::bans::BanKind,
        mask: Arc<str>,
    },
    /// KILL of a user of the receiving shard.
    Kill {
        target: Uid,
        reason: Arc<str>,
    },
    /// A WALLOPS line for the receiving shard's +w users.
    Wallops {
        line: Arc<[u8]>,
    },
    /// A server notice for the receiving shard's +s operators.
    Snotice {
        text: Arc<str>,
    },
    /// The result of checking an OPER password (a blocking job of this shard).
    OperChecked {
        conn: Conn,
        name: String,
        ok: bool,
    },
    /// The result of this shard's host and ident lookups for a new client.
    Looked {
        conn: Conn,
        ip: std::net::IpAddr,
        dns: bool,
        host: Option<String>,
        ident: Option<String>,
    },
    /// This shard's write of ban changes is done (its blocking job): `Err` says why it failed.
    BansSaved {
        result: Result<(), String>,
    },

    /// STATS of the sending shard's client `conn`: this shard's report, please.
    StatsReq {
        conn: Conn,
        /// Include one entry per connection (STATS l for an operator).
        with_conns: bool,
    },
    StatsReport {
        conn: Conn,
        report: Box<crate::metrics::ShardReport>,
    },

    /// Periodic per-shard connection counts (for LUSERS).
    Counts {
        unregistered: u32,
        /// Connections per class on the sending shard.
        classes: Vec<u32>,
    },
}

/// How a receiving shard orders a message: the rule of each variant, written once
/// ([`Env::order`]); `mesh::on_mesh` dispatches on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Requests to an owner or a home, their answers, results of this shard's own jobs,
    /// control and counts: handled on arrival, never held behind anything.
    OnArrival,
    /// Events and deliveries of the sender's users: applied strictly in the order the sender
    /// sent them; when one must wait for its sequence turn, those behind it from the same
    /// shard wait too (each user's events reach every observer in the order it made them).
    SenderStream,
}

impl Env {
    pub fn order(&self) -> Order {
        match self {
            Env::Event(_)
            | Env::UserIntro { .. }
            | Env::UserNick { .. }
            | Env::UserModes { .. }
            | Env::UserAway { .. }
            | Env::UserRealname { .. }
            | Env::ToUser { .. }
            | Env::ChanMsg { .. }
            | Env::Invite { .. } => Order::SenderStream,
            Env::NickClaim { .. }
            | Env::NickResult { .. }
            | Env::NickRelease { .. }
            | Env::ChanReq { .. }
            | Env::ChanAck { .. }
            | Env::QuitReq { .. }
            | Env::QuitAck { .. }
            | Env::WhoisReq { .. }
            | Env::Applied { .. }
            | Env::Replies { .. }
            | Env::IpEvent { .. }
            | Env::Ban(_)
            | Env::Unban { .. }
            | Env::Kill { .. }
            | Env::Wallops { .. }
            | Env::Snotice { .. }
            | Env::OperChecked { .. }
            | Env::Looked { .. }
            | Env::BansSaved { .. }
            | Env::StatsReq { .. }
            | Env::StatsReport { .. }
            | Env::Counts { .. } => Order::OnArrival,
        }
    }
}

impl Envelope for Env {
    fn weight(&self) -> usize {
        match self {
            Env::UserNick { line, .. }
            | Env::ToUser { line, .. }
            | Env::ChanMsg { line, .. }
            | Env::Invite { line, .. } => line.len() + 64,
            Env::Event(_) => 256,
            Env::UserIntro { .. } => 160,
            _ => 32,
        }
    }
}
