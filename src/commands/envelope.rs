//! Messages between shards, grouped by how the receiver orders them: requests to an owner or
//! a home, their answers, the ordered events and deliveries of a shard's users, and control.

use std::sync::Arc;

use super::channel::{ChanRequest, Outcome, Sequenced};
use super::outgoing::Shared;
use super::Conn;
use crate::proto::Folded;
use crate::state::channel::Status;
use crate::state::servers::{Server, Sid};
use crate::state::{Uid, User, UserModes};

/// A message between shards, in one of four groups; the group says how the receiver orders it
/// ([`Env::order`]), so each rule is written once.
pub enum Env {
    /// To the owner of a nick or the home of a channel (or the shard of a user): decided on
    /// arrival.
    Request(Request),
    /// Answers to this shard's requests and the results of its own jobs: on arrival.
    Answer(Answer),
    /// Events and deliveries of the sender's users: in the order the sender sent them.
    Ordered(Ordered),
    /// Network-wide control and counts: on arrival.
    Control(Control),
}

pub enum Request {
    /// To the nick's owner shard: may `uid` (on the sender's connection `conn`) take `nick`?
    NickClaim { nick: Folded, uid: Uid, conn: Conn },
    /// To the nick's owner shard: `uid` no longer uses `nick`.
    NickRelease { nick: Folded, uid: Uid },
    /// To the nicks' owner shard: keep `nicks` from local clients until `until` (unix seconds),
    /// their users were lost in a netsplit.
    NickReserve { nicks: Vec<Folded>, until: u64 },
    /// To a channel's home shard: a request of a user of the sending shard.
    Chan { conn: Conn, uid: Uid, req: ChanRequest },
    /// To each home of departing users' channels: remove each from these (one user, or all
    /// those a netsplit takes).
    Quit { users: Vec<(Uid, Vec<Folded>)> },
    /// WHOIS of a user of the receiving shard, for `asker` on the sending shard's `conn`
    /// (`metadata`: the asker negotiated the metadata capability, so is shown 760s).
    Whois { conn: Conn, asker: Uid, asker_nick: Arc<str>, target: Uid, metadata: bool },
    /// STATS of the sending shard's client `conn`: this shard's report, please.
    Stats {
        conn: Conn,
        /// Include one entry per connection (STATS l for an operator).
        with_conns: bool,
    },
    /// To shard 0 (the register of the network's servers): may the link `conn` of the sending
    /// shard bring in this server?
    ServerClaim { conn: Conn, sid: Sid, name: Arc<str> },
    /// To shard 0: these servers left the network.
    ServerRelease { sids: Vec<Sid> },
    /// To the nick's owner shard: a user introduced (or renamed) by a server link of the
    /// sending shard wants `nick`; the owner applies the TS rules (docs/ts6 §6.1).
    NickTs { conn: Conn, claim: NickTsClaim },
    /// To the shard that keeps a log (a channel's home, a user key's owner): CHATHISTORY of
    /// the sending shard's client `conn`.
    History { conn: Conn, ask: Box<super::history::Ask> },
    /// To the shard that keeps a log: REDACT of the sending shard's client `conn`.
    Redact { conn: Conn, ask: Box<super::redact::Ask> },
    /// To the shard that keeps a log: a redacted message leaves it.
    HistoryRemove { log: super::history::codec::LogKey, msgid: Box<str> },
    /// To a user key's owner: keep this private message in the key's log.
    HistoryAdd { key: Folded, entry: Box<super::history::store::Entry> },
    /// To a name's home: the rename that reserved it was refused; the name is free again.
    Unreserve { name: Folded },
    /// To every shard: a rustircd peer ended its burst; ask it what our channels missed
    /// (`history::sync`).
    HistoryAsk { peer: Sid },
    /// To a channel's home: a peer asks for the channel's history from `from` (ms).
    HistoryServe { chan: Folded, from: u64, to: Sid },
    /// To a channel's home: an entry a peer kept, for the log unless it is there already.
    HistoryBackfill { chan: Folded, entry: Box<super::history::store::Entry> },
    /// To an account's log keeper: another server's user `uid` logged in to it, and asks for
    /// its history (`history::accounts`).
    HistoryAccount { key: Folded, uid: crate::state::Uid },
    /// To an account's log keeper: an entry another server kept of it, unless there already.
    HistoryAccountEntry { key: Folded, entry: Box<super::history::store::Entry> },
}

/// A remote user's claim on a nick, with what the TS rules compare.
#[derive(Clone, Debug)]
pub struct NickTsClaim {
    pub nick: Folded,
    pub uid: Uid,
    pub ts: u64,
    pub user: Arc<str>,
    pub ip: Arc<str>,
    /// The user was introduced already (this shard's copy showed the nick free): a verdict
    /// against it is carried out as a collision found afterwards, by KILLs.
    pub optimistic: bool,
}

/// The owner's verdict on a [`NickTsClaim`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NickVerdict {
    /// The nick is free (or was the claimant's): introduce it.
    Introduce,
    /// The claimant loses: it is killed toward the link it came from only.
    KillNew,
    /// The holder loses (killed everywhere); the claimant has the nick.
    KillOld(Uid),
    /// Equal TS: both are killed.
    KillBoth(Uid),
}

pub enum Answer {
    /// The nick owner's answer, back to the claiming shard.
    Nick {
        nick: Folded,
        uid: Uid,
        conn: Conn,
        granted: bool,
    },
    /// The home's answer, back to the requesting shard.
    Chan {
        conn: Conn,
        uid: Uid,
        outcome: Outcome,
    },
    /// The home's answer to a departure: the one sequence number it gave the removal of them all.
    Quit {
        uids: Vec<Uid>,
        home: u16,
        seq: u64,
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
    Stats {
        conn: Conn,
        report: Box<crate::metrics::ShardReport>,
    },
    /// The keeper's verdict on a REDACT of the receiving shard's client.
    Redacted {
        conn: Conn,
        ask: Box<super::redact::Ask>,
        verdict: super::redact::Verdict,
    },
    /// What a log's keeper found for a CHATHISTORY of the receiving shard's client.
    History {
        conn: Conn,
        found: Box<super::history::Found>,
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
    /// Shard 0's answer to a [`Request::ServerClaim`]: Err says why not (the peer's ERROR).
    ServerClaim {
        conn: Conn,
        sid: Sid,
        result: Result<(), &'static str>,
    },
    /// The nick owner's verdict on a [`Request::NickTs`].
    NickTs {
        conn: Conn,
        claim: NickTsClaim,
        verdict: NickVerdict,
    },
}

pub enum Ordered {
    /// A sequenced channel change (or a departure), from the shard that made it to every other.
    Chan(Box<Sequenced>),
    /// A user finished registering (to every other shard). With `ack`, the receiver answers
    /// [`Answer::Applied`] once applied (the user's 001 waits for every shard).
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
    /// A user's metadata key set (`Some`) or removed.
    UserMetadata {
        uid: Uid,
        key: Box<str>,
        value: Option<Box<str>>,
    },
    /// A user's new realname (SETNAME).
    UserRealname {
        uid: Uid,
        realname: Arc<str>,
        ack: Option<Conn>,
    },
    /// A line for one user of the receiving shard (private messages, notices...).
    ToUser {
        uid: Uid,
        line: Shared,
        /// Capabilities the recipient needs (TAGMSG: message-tags).
        need: u64,
        /// When the message reached the server (latency metrics).
        at: std::time::Instant,
    },
    /// A channel message for the receiving shard's members.
    ChanMsg(ChanMsg),
    /// An INVITE for a user of the receiving shard.
    Invite {
        target: Uid,
        chan: Folded,
        line: Shared,
    },
    /// Services logged a user in (`Some`) or out (SVSACCOUNT).
    UserAccount {
        uid: Uid,
        account: Option<Arc<str>>,
    },
    /// Services changed a user's visible host (SVSHOST).
    UserHost {
        uid: Uid,
        host: Arc<str>,
    },
    /// A server joined the network behind a link of the sending shard.
    ServerIntro(Box<Server>),
    /// These servers left the network (a split seen by the sending shard), children first.
    /// (The links heard the SQUIT before, through `ToLinks`.)
    ServerSplit {
        sids: Vec<Sid>,
    },
    /// The SASL mechanisms services announced (`ENCAP * MECHLIST`), and which server.
    Mechlist {
        sid: Sid,
        mechs: Arc<str>,
    },
    /// A line for the one server link of the receiving shard that leads toward `toward`.
    ToLink {
        toward: Sid,
        line: Arc<[u8]>,
    },
    /// A line for every server link of the receiving shard except the one toward `except`
    /// (a remote change the links must hear, already in TS6 form).
    ToLinks {
        except: Option<Sid>,
        line: Arc<[u8]>,
    },
}

/// A line for a channel's members of at least `min` status (`@#chan`/`+#chan`) with the
/// capabilities `need` (TAGMSG: message-tags), except the sender; `at`: when the message
/// reached the server (latency metrics).
#[derive(Clone)]
pub struct ChanMsg {
    pub chan: Folded,
    pub line: Shared,
    pub sender: Uid,
    pub min: Status,
    pub need: u64,
    pub at: std::time::Instant,
}

pub enum Control {
    /// From the shard holding the services link to the client's: services answered a SASL
    /// exchange (`ENCAP <us> SASL <agent> <uid> <mode> <data>`).
    Sasl {
        uid: Uid,
        agent: Box<str>,
        mode: Box<str>,
        data: Box<str>,
    },
    /// Services logged a client in during its SASL exchange (`ENCAP <us> SVSLOGIN`).
    SaslLogin {
        uid: Uid,
        account: Arc<str>,
    },
    /// To itself, for a later turn: the next piece of a netsplit's departures.
    SplitMore,
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
    /// A user key's read marker for a target was raised (`name`: the target as written).
    ReadMarker {
        key: Folded,
        target: Folded,
        name: Box<str>,
        ms: u64,
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
    /// Services make a user of the receiving shard do something (SVSNICK, SVSJOIN, SVSPART):
    /// `line` runs as if the user had sent it.
    RunAs {
        target: Uid,
        line: Box<[u8]>,
    },
    /// A server notice for the receiving shard's +s operators.
    Snotice {
        text: Arc<str>,
    },
    /// An operator's CONNECT, for the shard that dials the `[[links]]` block `name`
    /// (`link::dial::dialer`), to `addr` (the block's, or with the operator's port).
    Connect {
        name: Arc<str>,
        addr: std::net::SocketAddr,
        by: Uid,
    },
    /// An operator's SQUIT of `sid`, for the shard holding the link toward it: a direct peer's
    /// link is closed, a server further away gets the SQUIT routed toward it.
    Squit {
        sid: Sid,
        reason: Arc<str>,
        by: Uid,
    },
    /// Periodic per-shard connection counts (for LUSERS).
    Counts {
        unregistered: u32,
        /// Connections per class on the sending shard.
        classes: Vec<u32>,
    },
}

macro_rules! group {
    ($($g:ident),*) => {$(
        impl From<$g> for Env {
            fn from(m: $g) -> Env {
                Env::$g(m)
            }
        }
    )*};
}
group!(Request, Answer, Ordered, Control);

/// How a receiving shard orders a message; `inbox::receive` dispatches on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Requests, answers, results of this shard's own jobs, control and counts: handled on
    /// arrival, never held behind anything.
    OnArrival,
    /// Events and deliveries of the sender's users: applied strictly in the order the sender
    /// sent them; when one must wait for its sequence turn, those behind it from the same
    /// shard wait too (each user's events reach every observer in the order it made them).
    SenderStream,
}

impl Env {
    pub fn order(&self) -> Order {
        match self {
            Env::Ordered(_) => Order::SenderStream,
            Env::Request(_) | Env::Answer(_) | Env::Control(_) => Order::OnArrival,
        }
    }
}
