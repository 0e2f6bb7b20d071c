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
///
/// The variants with data box it, so that `Option<Wait>` takes 16 bytes in every [`Client`]
/// (56 with the data inline), though most clients wait for nothing most of the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// The nick's owner shard has to grant this nick (as [`Client::nick`] will hold it).
    Nick(Box<(Arc<str>, Folded)>),
    /// A channel's home has to accept a request, and this shard to apply the change.
    Chan,
    /// An answer is on its way: from another shard (WHOIS of its user, STATS reports) or from
    /// a blocking job of this one (OPER's password check). ("Remote" will mean behind a server
    /// link.)
    Answer,
    /// The client's own change was sent to every shard (see [`Barrier`]).
    Barrier(Box<Barrier>),
    /// A long reply (WHO) is being written a piece at a time as the client reads it.
    Reply,
    /// Ban changes of this client are on their way to the ban file: what it is owed meanwhile
    /// waits in `held`, in order, a slot per change filled in once the change is on disk.
    /// Further ban commands run meanwhile (a pipelined burst shares one write); other lines wait.
    Saving { held: Box<VecDeque<Held>> },
}

/// A client's own change was sent to every shard; `held` (its own view of the change) goes out
/// once `remaining` shards have applied it, so that whatever the client does next, or tells
/// others out of band, every shard already knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Barrier {
    pub remaining: usize,
    pub held: Vec<u8>,
    /// What reaches the client meanwhile from others (their changes, messages), sent after
    /// `held`, so the client sees its own change where its shard applied it — not after changes
    /// that came after it (found by the simulator's reordering tests).
    pub later: Vec<u8>,
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
///
/// Every connection holds one (boxed), registered or not, idle or not: what only a few clients
/// or only rare moments use is in [`Rare`], allocated on first use, so an idle client does not
/// pay for it (see the size test below).
pub struct Client {
    pub conn: Conn,
    /// A client or a server link: the command table's handler slot the dispatcher uses.
    pub kind: Kind,
    pub uid: Uid,
    pub addr: SocketAddr,
    /// `addr` as users see it ([`display_ip`]); `host` shares it until a hostname is found.
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
    /// CAP LS or REQ was sent before registration: registration waits for CAP END.
    pub cap_negotiating: bool,
    pub cap_version: u16,
    pub caps: u64,
    pub framer: Framer,
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
    /// Last delivery stamp: an event shown once per observer marks who has seen it.
    pub stamp: u64,
    /// BATCH references handed out so far.
    pub batches: u64,
    /// Flood control: command tokens left, refilled at the class's rate up to its burst.
    pub tokens: f32,
    pub refilled: Instant,
    /// Commands are held for flood control; the client was told once.
    pub throttled: bool,
    /// The client was told its commands are held (once per episode).
    pub lag_told: bool,
    /// Its socket is not read while its input waits for another shard (TCP back-pressure).
    pub paused: bool,
    /// Lines received (STATS l; bytes are counted by the runtime).
    pub lines_in: u64,
    /// What only some clients or some moments use: None while all of it is at its default.
    /// Read with [`Client::rare`], written with [`Client::rare_mut`].
    rare: Option<Box<Rare>>,
}

/// The part of a [`Client`] that only a few clients, or only rare moments, use: allocated on
/// first use ([`Client::rare_mut`]) and dropped again once all of it is back at its default
/// ([`Client::tidy`], after each command and once queued input has run).
///
/// Measured on x86_64: `Client` was 720 bytes with these fields inline (and `Wait`'s data
/// unboxed) and is 344 without; this box is 352. An idle registered client holds none of it,
/// unless it is an oper, has a MONITOR list, a pending invite, a client certificate, failed
/// OPER, or knocked. What stays in `Client` is used on every line (framing, flood control, the
/// wait, the activity times) or by every registered client (nick, user, host, caps).
pub struct Rare {
    // Until registration.
    /// PASS's password (read at registration, or by a server link's handshake).
    pub pass: Option<String>,
    /// Hostname/ident lookups are running; registration waits for them until this deadline.
    pub looking_up: Option<Instant>,
    /// The ident reply, if one came (the username then goes without `~`).
    pub ident: Option<Arc<str>>,
    /// A SASL exchange with services (`commands::sasl`), until registration (or a
    /// reauthentication after it).
    pub sasl: Option<Box<Sasl>>,

    // While input waits.
    /// Lines received while `wait` is set (or flood control holds them), processed in order
    /// once it clears.
    pub queue: VecDeque<Box<[u8]>>,
    pub queued_bytes: usize,
    /// Further channel requests of the running command (JOIN #a,#b...), sent one at a time.
    pub chan_queue: VecDeque<crate::commands::channel::ChanRequest>,
    /// A request to send once the running change is applied everywhere (a RENAME's last
    /// step). Unlike `chan_queue`, a departure does not drop it: the channel is in flight.
    pub then: Option<Box<crate::commands::channel::ChanRequest>>,
    /// The rest of a long WHO reply, written as the client's queue drains (`Wait::Reply`).
    pub rest: Option<Box<crate::commands::query::who::Rest>>,

    // During a labeled command.
    /// The label of the running command (labeled-response), and the replies held for it.
    pub label: Option<String>,
    pub labeled: Vec<u8>,
    /// A multiline message being gathered (`BATCH +id draft/multiline`).
    pub multiline: Option<Box<crate::commands::multiline::Gathering>>,
    /// The metadata keys this connection subscribed to (METADATA * SUB).
    pub subs: Vec<Box<str>>,
    /// Metadata set before registration (`before-connect`): the user starts with it.
    pub early_metadata: crate::state::Metadata,

    // Leaving.
    /// The socket is gone; the user's departure waits for a channel request in flight.
    pub departing: Option<String>,
    /// The ERROR line for a graceful close, held until the departure is everywhere.
    pub farewell: Option<Vec<u8>>,

    // For the session, of the few clients that use them.
    /// The oper block this client is logged in with (OPER).
    pub oper: Option<String>,
    /// Wrong or refused OPER attempts (see `commands::oper::limit`).
    pub oper_failures: u8,
    /// Channels this client was invited to (folded names), used up by the next JOIN.
    pub invites: Vec<Folded>,
    /// MONITOR list (folded nicks).
    pub monitor: Vec<Folded>,
    pub last_knock: Option<Instant>,
    /// The SHA-256 of its TLS client certificate (lower-case hex), if it presented one.
    pub certfp: Option<Box<str>>,
}

/// What [`Client::rare`] shows a client that has no [`Rare`].
static NO_RARE: Rare = Rare::NONE;

impl Rare {
    /// Every field at its default.
    const NONE: Rare = Rare {
        pass: None,
        looking_up: None,
        ident: None,
        sasl: None,
        queue: VecDeque::new(),
        queued_bytes: 0,
        chan_queue: VecDeque::new(),
        then: None,
        rest: None,
        label: None,
        labeled: Vec::new(),
        multiline: None,
        subs: Vec::new(),
        early_metadata: None,
        departing: None,
        farewell: None,
        oper: None,
        oper_failures: 0,
        invites: Vec::new(),
        monitor: Vec::new(),
        last_knock: None,
        certfp: None,
    };

    /// Every field at its default: the box can go.
    fn unused(&self) -> bool {
        // Destructured so that a new field cannot be forgotten here.
        let Rare {
            pass,
            looking_up,
            ident,
            sasl,
            queue,
            queued_bytes,
            chan_queue,
            then,
            rest,
            label,
            labeled,
            multiline,
            subs,
            early_metadata,
            departing,
            farewell,
            oper,
            oper_failures,
            invites,
            monitor,
            last_knock,
            certfp,
        } = self;
        pass.is_none()
            && looking_up.is_none()
            && ident.is_none()
            && sasl.is_none()
            && queue.is_empty()
            && *queued_bytes == 0
            && chan_queue.is_empty()
            && then.is_none()
            && rest.is_none()
            && label.is_none()
            && multiline.is_none()
            && subs.is_empty()
            && early_metadata.is_none()
            && labeled.is_empty()
            && departing.is_none()
            && farewell.is_none()
            && oper.is_none()
            && *oper_failures == 0
            && invites.is_empty()
            && monitor.is_empty()
            && last_knock.is_none()
            && certfp.is_none()
    }
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
            cap_negotiating: false,
            cap_version: 0,
            caps: 0,
            framer: Framer::default(),
            wait: None,
            connected_at: now,
            last_active: now,
            ping_sent: None,
            last_spoke: now,
            signon: unix,
            closing: false,
            stamp: 0,
            lines_in: 0,
            batches: 0,
            tokens: f32::MAX,
            refilled: now,
            throttled: false,
            paused: false,
            lag_told: false,
            rare: None,
        }
    }

    /// The rarely used fields ([`Rare`]); all at their defaults when the client has none.
    pub fn rare(&self) -> &Rare {
        self.rare.as_deref().unwrap_or(&NO_RARE)
    }

    /// The rarely used fields, to change: allocated on first use.
    pub fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(|| Box::new(Rare::NONE))
    }

    /// The rarely used fields if the client has them: for taking or clearing one without
    /// allocating the rest.
    pub fn rare_if_any(&mut self) -> Option<&mut Rare> {
        self.rare.as_deref_mut()
    }

    /// Drops the rarely used fields once all of them are back at their defaults (called after
    /// each command, and once queued input has run), so an idle client holds none.
    pub fn tidy(&mut self) {
        if self.rare.as_ref().is_some_and(|r| r.unused()) {
            self.rare = None;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection holds a `Client`, registered or not, idle or not: its size is memory
    /// per idle client (720 bytes before `Rare` and the boxed `Wait` data, 344 after, on
    /// x86_64). A field that only some clients or some moments use belongs in `Rare`.
    #[test]
    fn client_stays_small() {
        assert!(size_of::<Client>() <= 352, "Client is {} bytes", size_of::<Client>());
        assert!(size_of::<Option<Wait>>() <= 16, "Option<Wait> is {} bytes", size_of::<Option<Wait>>());
    }
}
