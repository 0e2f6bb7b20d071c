//! Everything one shard holds, in one struct: its connections, its copy of the user directory,
//! the nicks it owns, and counters. Only the shard's own thread touches it.

use std::sync::Arc;

use ahash::AHashMap;

use super::client::Client;
use crate::state::channel::Channel;
use crate::state::sequencer::Sequencer;
use crate::state::whowas::Whowas;
use crate::state::{Directory, NickAuthority, Uid, UidAllocator};
use std::collections::VecDeque;

use super::conn::Conn;
use crate::commands::channel::Sequenced;
use crate::commands::envelope::Ordered;
use crate::config::Config;
use crate::proto::{CaseMapping, Folded};

pub struct ShardState {
    pub cfg: Arc<Config>,
    pub me: usize,
    pub cores: usize,
    pub cm: CaseMapping,
    /// Boxed: a hash table keeps spare slots, and an idle connection should not pay for a
    /// spare 500-byte slot.
    pub clients: AHashMap<Conn, Box<Client>>,
    /// Registered users of this shard.
    pub local: AHashMap<Uid, Conn>,
    pub uids: UidAllocator,
    pub directory: Directory,
    pub nicks: NickAuthority,
    /// Unregistered connections on each shard (this one's is counted live).
    pub unregistered: Vec<u32>,
    /// Connections per class on this shard.
    pub class_counts: Vec<usize>,
    pub max_global: usize,
    /// The most users this server had at once (LUSERS' local maximum).
    pub max_local: usize,
    /// Lines for the client whose command is running, sent in one piece when it finishes.
    pub reply: Vec<u8>,
    /// Connections to close once the current event is handled: reason, and whether to
    /// discard their queued output.
    pub to_close: Vec<(Conn, String, bool)>,
    pub started_unix: u64,
    pub created: String,
    /// The RPL_ISUPPORT tokens, in lines of at most 13.
    /// The 005 tokens, one line's worth each; shared, so a welcome does not copy them.
    pub isupport: Arc<Vec<Vec<String>>>,
    /// The last unregistered count this shard broadcast.
    pub sent_unregistered: u32,
    /// The last per-class connection counts this shard broadcast, and those of the others.
    pub sent_classes: Vec<u32>,
    pub classes_elsewhere: Vec<Vec<u32>>,
    /// This shard's copy (view) of every channel, with its local members for delivery.
    pub channels: AHashMap<Folded, View>,
    /// The authoritative state of the channels this shard is home to.
    pub homes: AHashMap<Folded, Channel>,
    /// Names of this home kept free for a channel being renamed to them (`channel::rename`).
    pub reserved: ahash::AHashSet<Folded>,
    pub seq: Sequencer,
    /// Events from each shard held (in arrival order) until their turn comes.
    pub blocked: Vec<HeldEvents>,
    /// This shard's own accepted changes waiting for their turn to be applied and sent out.
    pub mine: Vec<Mine>,
    /// Users whose departure has begun here (its first part applied, its QUIT shown) and whose
    /// last part has not: NAMES leaves them out.
    pub leaving: ahash::AHashSet<Uid>,
    /// Departing users whose channels' homes have not all been applied here.
    pub quits: AHashMap<Uid, QuitState>,
    /// The services server SASL goes to and its mechanisms (`ENCAP * MECHLIST`), while linked.
    pub sasl_mechs: Option<(crate::state::servers::Sid, Arc<str>)>,
    /// Unregistered clients of this shard with a SASL exchange under way, by UID (services
    /// answer by UID).
    pub sasl_clients: AHashMap<Uid, Conn>,
    /// Netsplits whose users are still departing, a piece per turn (`link::split`).
    pub splitting: std::collections::VecDeque<super::link::Splitting>,
    pub whowas: Whowas,
    /// Counter for "once per observer" deliveries (see `Client::stamp`).
    pub stamp: u64,
    /// Local MONITOR watchers per folded nick.
    pub monitors: AHashMap<Folded, Vec<Conn>>,
    /// Messages this shard has numbered (msgid).
    pub msgids: u64,
    /// K-lines and D-lines (the same list on every shard).
    pub bans: Vec<crate::state::bans::Ban>,
    /// The ban file's writer, shared by every shard (None: nothing is written, as in `Sim`).
    pub ban_store: Option<Arc<crate::persist::BanStore>>,
    /// This shard's ban changes on their way to the ban file.
    pub ban_saves: crate::commands::oper::bans::Saves,
    /// Connections per IP and per address block, on every shard (for the class limits).
    pub ip_counts: AHashMap<std::net::IpAddr, u32>,
    pub block_counts: AHashMap<(std::net::IpAddr, u8), u32>,
    /// Recent connection times per IP (the throttle), pruned as they age out.
    pub recent: AHashMap<std::net::IpAddr, VecDeque<std::time::Instant>>,
    /// This shard's `+s` operators, computed when needed and forgotten whenever a local user's
    /// modes change; a departing user is taken out of it (server notices are frequent,
    /// operators few, and a rebuild scans every local user).
    pub snotice_targets: Option<Vec<Conn>>,
    /// Clients whose socket is not read while their input waits (`Client::paused`).
    pub paused: Vec<Conn>,
    /// Clients whose commands wait for flood-control tokens.
    pub lagged: Vec<Conn>,
    /// OPER's guards: budgets per address, and the queue of password checks.
    pub oper_limit: crate::commands::oper::limit::OperLimit,
    /// Hostnames found for IPs (reverse DNS, forward-confirmed; `None`: none), with when.
    pub host_cache: AHashMap<std::net::IpAddr, (Option<Arc<str>>, std::time::Instant)>,
    /// This shard's counters and latency histograms.
    pub metrics: crate::metrics::ShardMetrics,
    /// The CPU the shard is pinned to.
    pub cpu: Option<usize>,
    /// STATS requests of this shard's clients waiting for the other shards' reports.
    pub stats_waits: AHashMap<Conn, crate::commands::stats::Pending>,
    /// Departed clients whose ERROR line waits for this many shards to apply the departure.
    pub farewells: AHashMap<Conn, (usize, Vec<u8>)>,
    /// The other servers of the network (every shard's copy).
    pub servers: crate::state::servers::Servers,
    /// Shard 0 only: the register every new server is claimed in first.
    pub register: crate::state::servers::Register,
    /// This shard's server links, by connection (registering or up).
    pub links: AHashMap<Conn, super::link::Link>,
    /// This shard's links that are up, by the peer's SID.
    pub peers: AHashMap<crate::state::servers::Sid, Conn>,
    /// Outgoing links this shard opens (`[[links]]` blocks with an address, by block index):
    /// the connection being tried, and when to try again.
    pub dials: AHashMap<usize, super::link::Dial>,
    /// The channel logs this shard keeps as their home, and the private logs of the user keys
    /// it owns (`commands::history`).
    pub history: crate::commands::history::store::Store,
    /// Every user key's read markers (the same on every shard).
    pub read_markers: crate::commands::read_marker::Markers,
}

/// A channel as this shard sees it: the state, and which of its members are local.
pub struct View {
    pub ch: Channel,
    pub local: Vec<(Uid, Conn)>,
    /// When the channel's latest message passed through this shard (ms since the epoch; 0:
    /// none since it had members here): CHATHISTORY TARGETS.
    pub last_message: u64,
}

/// Events from one shard held until their turn comes, and since when the first of them has
/// not moved (for the stall guard, `commands::channel::stall`).
#[derive(Default)]
pub struct HeldEvents {
    pub events: VecDeque<Ordered>,
    pub since: Option<std::time::Instant>,
    /// The stall of the event now first was logged.
    pub noted: bool,
}

impl HeldEvents {
    pub fn hold(&mut self, env: Ordered, now: std::time::Instant) {
        if self.events.is_empty() {
            self.since = Some(now);
            self.noted = false;
        }
        self.events.push_back(env);
    }

    /// The first event was applied: the next one (if any) starts its wait.
    pub fn moved(&mut self, now: std::time::Instant) {
        self.since = (!self.events.is_empty()).then_some(now);
        self.noted = false;
    }
}

/// An accepted change of this shard's own, waiting to be applied in sequence.
pub struct Mine {
    pub event: Sequenced,
    /// The client that asked (None for departures).
    pub conn: Option<Conn>,
    /// Numerics for the requester that the home attached.
    pub notes: Vec<crate::commands::Reply>,
    /// A departing client's ERROR line, sent once every shard applied the departure.
    pub farewell: Option<(Conn, Vec<u8>)>,
    /// When it was accepted, and whether its stall was logged.
    pub since: std::time::Instant,
    pub noted: bool,
}

/// A departing user of this shard: its QUIT line, and its channels grouped by home, one part
/// per home, each left out once its departure event has been applied here.
pub struct QuitState {
    pub line: crate::commands::outgoing::Shared,
    pub parts: Vec<(u16, Vec<Folded>)>,
    pub farewell: Option<(Conn, Vec<u8>)>,
}

impl ShardState {
    pub fn new(cfg: Arc<Config>, me: usize, cores: usize, started_unix: u64, created: String) -> Self {
        let isupport = Arc::new(crate::commands::info::isupport(&cfg));
        let cfg_whowas = (cfg.database.user_cache_size, cfg.database.user_cache_ttl.as_secs());
        ShardState {
            cm: cfg.server.casemapping,
            uids: UidAllocator::new(&cfg.server.sid, me, cores),
            class_counts: vec![0; cfg.classes.len()],
            cfg,
            me,
            cores,
            clients: AHashMap::default(),
            local: AHashMap::default(),
            directory: Directory::default(),
            nicks: NickAuthority::default(),
            unregistered: vec![0; cores],
            max_global: 0,
            max_local: 0,
            reply: Vec::with_capacity(4096),
            to_close: Vec::new(),
            started_unix,
            created,
            whowas: Whowas::new(cfg_whowas.0, cfg_whowas.1),
            isupport,
            sent_unregistered: 0,
            sent_classes: Vec::new(),
            classes_elsewhere: vec![Vec::new(); cores],
            channels: AHashMap::default(),
            homes: AHashMap::default(),
            reserved: Default::default(),
            seq: Sequencer::new(cores),
            blocked: (0..cores).map(|_| HeldEvents::default()).collect(),
            mine: Vec::new(),
            quits: AHashMap::default(),
            sasl_mechs: None,
            sasl_clients: AHashMap::default(),
            splitting: Default::default(),
            leaving: Default::default(),
            stamp: 0,
            monitors: AHashMap::default(),
            farewells: AHashMap::default(),
            msgids: 0,
            bans: Vec::new(),
            ban_store: None,
            ban_saves: Default::default(),
            ip_counts: AHashMap::default(),
            block_counts: AHashMap::default(),
            recent: AHashMap::default(),
            host_cache: AHashMap::default(),
            lagged: Vec::new(),
            paused: Vec::new(),
            oper_limit: Default::default(),
            snotice_targets: None,
            metrics: crate::metrics::ShardMetrics::new(crate::commands::COMMANDS.len()),
            cpu: None,
            stats_waits: AHashMap::default(),
            servers: Default::default(),
            register: Default::default(),
            links: AHashMap::default(),
            peers: AHashMap::default(),
            history: Default::default(),
            read_markers: Default::default(),
            dials: AHashMap::default(),
        }
    }

    pub fn server_name(&self) -> &str {
        &self.cfg.server.name
    }

    /// Unregistered connections on this shard.
    pub fn local_unregistered(&self) -> usize {
        self.clients.len() - self.local.len() - self.peers.len()
    }
}

impl ShardState {
    /// Takes a new configuration (validated whole by the caller). A connection keeps its class
    /// when a class of that name still exists; otherwise it moves to the class its address
    /// selects now (or the first).
    pub fn reload(&mut self, cfg: Arc<Config>) {
        for c in self.clients.values_mut() {
            let name = &self.cfg.classes[c.class].name;
            c.class = cfg.classes.iter().position(|k| &k.name == name).or_else(|| cfg.class_for(&c.ip)).unwrap_or(0);
        }
        self.class_counts = vec![0; cfg.classes.len()];
        for c in self.clients.values() {
            self.class_counts[c.class] += 1;
        }
        self.isupport = Arc::new(crate::commands::info::isupport(&cfg));
        self.whowas.configure(cfg.database.user_cache_size, cfg.database.user_cache_ttl.as_secs());
        self.cfg = cfg;
    }
}
