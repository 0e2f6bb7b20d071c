//! A connection of this shard, registered or not.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::conn::Conn;
use super::kind::Kind;
use crate::proto::framer::Framer;
use crate::proto::Folded;
use crate::state::Uid;

/// What a client is waiting for before its next line is processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// The nick's owner shard has to grant `nick`.
    Nick { nick: Arc<str>, folded: Folded },
    /// A channel's home has to accept a request, and this shard to apply the change.
    Chan,
    /// An answer is on its way: from another shard (WHOIS of its user, STATS reports) or from
    /// a blocking job of this one (OPER's password check). ("Remote" will mean behind a server
    /// link.)
    Answer,
    /// The client's own change was sent to every shard; `held` (its own view of the change)
    /// goes out once `remaining` shards have applied it, so that whatever the client does
    /// next, or tells others out of band, every shard already knows.
    ///
    /// `later`: what reaches the client meanwhile from others (their changes, messages),
    /// sent after `held`, so the client sees its own change where its shard applied it — not
    /// after changes that came after it (found by the simulator's reordering tests).
    Barrier { remaining: usize, held: Vec<u8>, later: Vec<u8> },
    /// A long reply (WHO) is being written a piece at a time as the client reads it.
    Reply,
    /// Ban changes of this client are on their way to the ban file: what it is owed meanwhile
    /// waits in `held`, in order, a slot per change filled in once the change is on disk.
    /// Further ban commands run meanwhile (a pipelined burst shares one write); other lines wait.
    Saving { held: VecDeque<Held> },
}

/// Part of what a client waiting in [`Wait::Saving`] is owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// Replies, as they will be sent.
    Bytes(Vec<u8>),
    /// The answer to a ban change, not yet on disk.
    Ban,
}

/// A connection's session. Its `kind` says whether a user or a server link is at the other end;
/// what follows is a client's (a server link's own state comes with the link protocol).
pub struct Client {
    pub conn: Conn,
    /// A client or a server link: the command table's handler slot the dispatcher uses.
    pub kind: Kind,
    pub uid: Uid,
    pub addr: SocketAddr,
    pub ip: Arc<str>,
    pub host: Arc<str>,
    /// Index into `config.classes`.
    pub class: usize,
    /// Connected over TLS (user mode +Z, 671 in WHOIS).
    pub secure: bool,
    pub registered: bool,
    /// The nick held (granted by its owner), registered or not.
    pub nick: Option<(Arc<str>, Folded)>,
    /// USER's username (already cleaned, `~`-prefixed) and realname.
    pub user: Option<(Arc<str>, Arc<str>)>,
    pub pass: Option<String>,
    /// CAP LS or REQ was sent before registration: registration waits for CAP END.
    pub cap_negotiating: bool,
    pub cap_version: u16,
    pub caps: u64,
    pub framer: Framer,
    /// Lines received while `wait` is set, processed in order once it clears.
    pub queue: VecDeque<Box<[u8]>>,
    pub queued_bytes: usize,
    pub wait: Option<Wait>,
    pub connected_at: Instant,
    /// Last line received (any line counts as proof of life).
    pub last_active: Instant,
    pub ping_sent: Option<Instant>,
    /// Last PRIVMSG/NOTICE sent (WHOIS idle time).
    pub last_spoke: Instant,
    pub signon: u64,
    /// Set once the connection is being closed: nothing more is processed.
    pub closing: bool,
    /// The socket is gone; the user's departure waits for a channel request in flight.
    pub departing: Option<String>,
    /// Further channel requests of the running command (JOIN #a,#b...), sent one at a time.
    pub chan_queue: VecDeque<crate::commands::channel::ChanRequest>,
    /// Channels this client was invited to (folded names), used up by the next JOIN.
    pub invites: Vec<Folded>,
    /// Last delivery stamp: an event shown once per observer marks who has seen it.
    pub stamp: u64,
    /// MONITOR list (folded nicks).
    pub monitor: Vec<Folded>,
    pub last_knock: Option<Instant>,
    /// The ERROR line for a graceful close, held until the departure is everywhere.
    pub farewell: Option<Vec<u8>>,
    /// The label of the running command (labeled-response), and the replies held for it.
    pub label: Option<String>,
    pub labeled: Vec<u8>,
    /// BATCH references handed out so far.
    pub batches: u64,
    /// The oper block this client is logged in with (OPER).
    pub oper: Option<String>,
    /// Wrong or refused OPER attempts (see `commands::oper::limit`).
    pub oper_failures: u8,
    /// Flood control: command tokens left, refilled at the class's rate up to its burst.
    pub tokens: f32,
    pub refilled: Instant,
    /// Commands are held for flood control; the client was told once.
    pub throttled: bool,
    /// The client was told its commands are held (once per episode).
    pub lag_told: bool,
    /// Its socket is not read while its input waits for another shard (TCP back-pressure).
    pub paused: bool,
    /// Hostname/ident lookups are running; registration waits for them until this deadline.
    pub looking_up: Option<Instant>,
    /// The ident reply, if one came (the username then goes without `~`).
    pub ident: Option<Arc<str>>,
    /// Lines received (STATS l; bytes are counted by the runtime).
    pub lines_in: u64,
    /// The rest of a long WHO reply, written as the client's queue drains (`Wait::Reply`).
    pub rest: Option<Box<crate::commands::query::who::Rest>>,
    /// A SASL exchange with services (`commands::sasl`), until registration.
    pub sasl: Option<Box<Sasl>>,
    /// The SHA-256 of its TLS client certificate (lower-case hex), if it presented one.
    pub certfp: Option<Box<str>>,
}

/// A client's SASL exchange with services, relayed over the links (`commands::sasl`).
#[derive(Debug)]
pub struct Sasl {
    pub started: Instant,
    /// The services client that answers (its UID), once it has.
    pub agent: Option<Box<str>>,
    /// What the client sent in this exchange (bytes of AUTHENTICATE payload).
    pub bytes: usize,
    /// The account services logged it in as (SVSLOGIN), kept for registration.
    pub account: Option<Arc<str>>,
    /// It succeeded (903): registration may go on, a new AUTHENTICATE gets 907.
    pub done: bool,
}

impl Client {
    pub fn new(conn: Conn, uid: Uid, addr: SocketAddr, class: usize, now: Instant, unix: u64) -> Self {
        let ip: Arc<str> = display_ip(addr).into();
        Client {
            conn,
            kind: Kind::Client,
            uid,
            addr,
            host: ip.clone(),
            ip,
            class,
            secure: false,
            registered: false,
            nick: None,
            user: None,
            pass: None,
            cap_negotiating: false,
            cap_version: 0,
            caps: 0,
            framer: Framer::default(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            wait: None,
            connected_at: now,
            last_active: now,
            ping_sent: None,
            last_spoke: now,
            signon: unix,
            closing: false,
            departing: None,
            chan_queue: VecDeque::new(),
            invites: Vec::new(),
            stamp: 0,
            monitor: Vec::new(),
            last_knock: None,
            farewell: None,
            label: None,
            lines_in: 0,
            labeled: Vec::new(),
            batches: 0,
            oper: None,
            oper_failures: 0,
            tokens: f32::MAX,
            refilled: now,
            throttled: false,
            paused: false,
            lag_told: false,
            looking_up: None,
            ident: None,
            rest: None,
            sasl: None,
            certfp: None,
        }
    }

    /// The nick for numerics: the held nick, or `*` before one is granted.
    pub fn target(&self) -> &str {
        self.nick.as_ref().map_or("*", |(n, _)| n)
    }

    pub fn mask(&self) -> String {
        let user = self.user.as_ref().map_or("*", |(u, _)| u);
        format!("{}!{}@{}", self.target(), user, self.host)
    }
}

/// The client's address as IRC shows it: IPv6 addresses starting with `:` get a leading `0`
/// so they can stand in `nick!user@host` and as a parameter.
pub fn display_ip(addr: SocketAddr) -> String {
    display_ip_addr(addr.ip())
}

/// An address as users see it (see [`display_ip`]).
pub fn display_ip_addr(ip: std::net::IpAddr) -> String {
    let ip = match ip {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        ip => ip.to_string(),
    };
    if ip.starts_with(':') {
        format!("0{ip}")
    } else {
        ip
    }
}
