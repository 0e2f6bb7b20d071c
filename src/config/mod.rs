//! Configuration: TOML read once, validated whole into a runtime [`Config`]. The default
//! (`config/rustircd.toml`) is compiled in, so the server starts with no file at all. A bad
//! file yields every error found, each naming the file, key, line and reason; the caller keeps
//! the previous config (REHASH) or refuses to start.

mod reader;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use reader::ConfigError;
use reader::{Doc, Tbl};

use crate::proto::mask;
use crate::proto::names;
use crate::proto::CaseMapping;

/// The default configuration, as shipped in `config/rustircd.toml`.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config/rustircd.toml");
pub const EMBEDDED_NAME: &str = "<embedded config/rustircd.toml>";

#[derive(Clone, Debug)]
pub struct Config {
    /// Where it came from: a path, or [`EMBEDDED_NAME`].
    pub source: String,
    pub server: ServerInfo,
    pub limits: Limits,
    pub listen: Vec<Listen>,
    pub classes: Vec<Class>,
    pub database: Database,
    pub history: History,
    pub batch: Batch,
    pub netsplit: Netsplit,
    pub opers: Vec<Oper>,
    pub links: Vec<Link>,
    pub logging: Logging,
    pub runtime: RuntimeTuning,
    pub tls: Option<Tls>,
    pub lookups: Lookups,
    pub metrics: Metrics,
    pub websocket: WebSocket,
}

/// `[websocket]`: settings of every `websocket` listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSocket {
    /// Origins (glob patterns: `*`, `?`) whose pages may connect; empty: any
    /// (`crate::websocket::origin_allowed`).
    pub allowed_origins: Vec<String>,
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metrics {
    /// Where `/metrics` is served; None: off (the default).
    pub listen: Option<SocketAddr>,
}

#[derive(Clone, Debug)]
pub struct ServerInfo {
    pub name: String,
    pub sid: String,
    pub network: String,
    pub description: String,
    pub casemapping: CaseMapping,
    /// Connection password every client must send with PASS, if set.
    pub password: Option<String>,
    pub motd: Option<Vec<String>>,
    pub admin_location: String,
    pub admin_location2: String,
    pub admin_email: String,
    /// Where K-lines and D-lines are kept (created on first use).
    pub data_dir: PathBuf,
    pub allow_die: bool,
    pub allow_restart: bool,
    /// Server names (services such as Anope) whose SVS* commands are honoured; from any other
    /// server they are dropped, as hybrid does.
    pub services: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Limits {
    pub nicklen: usize,
    pub channellen: usize,
    pub topiclen: usize,
    pub kicklen: usize,
    pub awaylen: usize,
    pub userlen: usize,
    pub realnamelen: usize,
    /// Targets per PRIVMSG/NOTICE/JOIN... (`TARGMAX`, `MAXTARGETS`).
    pub max_targets: usize,
    /// Channels a user may be in (`CHANLIMIT`).
    pub max_channels: usize,
    /// Entries per ban/exception/invite-exception list (`MAXLIST`).
    pub max_list_entries: usize,
    /// Mode changes with a parameter per MODE command (`MODES`).
    pub max_modes: usize,
    /// Entries per MONITOR list (`MONITOR`).
    pub monitor: usize,
}

#[derive(Clone, Debug)]
pub struct Listen {
    pub address: SocketAddr,
    /// TLS settings (certificate and key loaded) for a TLS listener.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Its clients speak IRC over WebSocket (IRCv3 `websocket`; `wss://` with `tls`).
    pub websocket: bool,
}

#[derive(Clone, Debug)]
pub struct Tls {
    /// Default certificate chain and key (PEM) for TLS listeners that name none.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Advertise the `sts` policy to plain-text clients.
    pub sts: bool,
    pub sts_duration: Duration,
    /// The port `sts` sends clients to (default: the first TLS listener's).
    pub sts_port: Option<u16>,
}

#[derive(Clone, Debug)]
pub struct Class {
    pub name: String,
    /// Masks on the client's IP address (or `*`); the first class that matches takes it.
    pub hosts: Vec<String>,
    pub sendq: usize,
    pub recvq: usize,
    pub ping_frequency: Duration,
    /// Time allowed to complete registration.
    pub connection_timeout: Duration,
    pub max_clients: usize,
    /// Connections from one IP address, and from one CIDR block, across all shards (0: no limit).
    pub max_per_ip: usize,
    pub max_per_cidr: usize,
    pub cidr_v4: u8,
    pub cidr_v6: u8,
    /// Connection throttle: at most `throttle_count` new connections per IP per `throttle_window`.
    pub throttle_count: usize,
    pub throttle_window: Duration,
    /// Command rate: a burst of `flood_burst` commands, then `flood_rate` per second; beyond,
    /// commands wait (fake lag) and the client is told; past recvq, Excess Flood.
    pub flood_burst: u32,
    pub flood_rate: u32,
    /// Trusted hosts (a load tester): no throttle, per-IP limit or fake lag.
    pub exempt: bool,
}

#[derive(Clone, Debug)]
pub struct Database {
    /// WHOWAS history entries kept per shard.
    pub user_cache_size: usize,
    pub user_cache_ttl: Duration,
    pub channel_cache_ttl: Duration,
}

/// `[history]`: what CHATHISTORY can replay (docs/architecture.md, "History").
#[derive(Clone, Debug)]
pub struct History {
    /// Off: nothing is kept and `draft/chathistory` is not offered.
    pub enabled: bool,
    /// Messages (and events) kept per channel.
    pub channel_length: usize,
    /// Messages kept per account (its private conversations together).
    pub private_length: usize,
    /// Messages kept per connection without an account, while it lasts (0: none kept).
    pub session_length: usize,
    /// Older entries are dropped (0: kept until pushed out by the lengths).
    pub max_age: Duration,
    /// Most entries one CHATHISTORY answer gives (005 `CHATHISTORY`).
    pub max_query: usize,
    /// Kept across restarts in `<data_dir>/history.redb` (read at start; REHASH cannot change it).
    pub persist: bool,
}

#[derive(Clone, Debug)]
pub struct Batch {
    pub max_batch_size: usize,
    pub max_batch_delay: Duration,
    pub max_batch_bytes: usize,
}

#[derive(Clone, Debug)]
pub struct Netsplit {
    /// How long the nick of a user lost in a netsplit is kept from local clients (the split may
    /// heal and bring the user back).
    pub split_user_grace_period: Duration,
}

#[derive(Clone, Debug)]
pub struct Oper {
    pub name: String,
    /// An argon2 (`$argon2id$...`) or bcrypt (`$2b$...`) hash; plain text only with
    /// `allow_plaintext`.
    pub password: String,
    pub allow_plaintext: bool,
    /// `user@host` masks the oper may come from.
    pub hosts: Vec<String>,
    pub privileges: Vec<String>,
}

/// What operators may be given.
pub const PRIVILEGES: &[&str] =
    &["kill", "wallops", "rehash", "die", "restart", "kline", "dline", "snotice", "stats", "connect", "squit"];

impl Oper {
    pub fn may(&self, privilege: &str) -> bool {
        self.privileges.iter().any(|p| p == privilege || p == "all")
    }
}

#[derive(Clone, Debug)]
pub struct Lookups {
    /// Reverse DNS with forward confirmation for new clients.
    pub dns: bool,
    /// RFC 1413 ident queries for new clients.
    pub ident: bool,
    /// Registration never waits longer than this for either.
    pub timeout: Duration,
}

/// A `[[links]]` block: a TS6 peer that may connect to us, and that we connect to when it has
/// an `address`.
#[derive(Clone, Debug)]
pub struct Link {
    /// The peer's server name, as its SERVER line gives it.
    pub name: String,
    /// The SID the peer must announce, if set.
    pub sid: Option<String>,
    /// Where to connect; None: the peer connects to us.
    pub address: Option<SocketAddr>,
    /// What our PASS sends, and what the peer's PASS must carry. One token each.
    pub send_password: String,
    pub accept_password: String,
    /// Connect, and reconnect after a failure or split, while no link to it is up.
    pub autoconnect: bool,
    /// Index into `Config.classes`: the link's sendq and ping frequency. None: a class's
    /// defaults (what a `[[classes]]` block that sets nothing gets).
    pub class: Option<usize>,
    /// Masks of server names the peer may introduce behind it; empty: a leaf, it may introduce
    /// none.
    pub hub_mask: Vec<String>,
    /// Masks of server names it may not introduce, even when `hub_mask` matches.
    pub leaf_mask: Vec<String>,
    /// Connect over TLS (outbound only: needs `address`).
    pub tls: bool,
    /// SHA-256 of the peer's certificate (DER), the one certificate a TLS link accepts
    /// (required with `tls`).
    pub fingerprint: Option<crate::certpin::Fingerprint>,
    /// The wait before reconnecting grows from `reconnect_min` to `reconnect_max`, so a peer
    /// that is down is not redialled in a loop.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
}

#[derive(Clone, Debug)]
pub struct Logging {
    pub file: Option<PathBuf>,
    pub level: String,
}

#[derive(Clone, Debug)]
pub struct RuntimeTuning {
    pub mesh_capacity: usize,
    pub preempt_timer: Duration,
    pub spin_before_park: Duration,
    /// A plain client connection quiet this long sleeps without a task (0: never).
    pub sleep_after: Duration,
}

const SECOND: Duration = Duration::from_secs(1);
const DAY: Duration = Duration::from_secs(86400);

impl Config {
    /// The embedded default.
    pub fn embedded() -> Config {
        Config::parse(EMBEDDED_NAME, EMBEDDED_DEFAULT, None).expect("the embedded default config is valid")
    }

    /// Reads and validates a file; relative paths inside it (motd_file) are relative to it.
    pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
        let label = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError {
                file: label.clone(),
                line: None,
                key: String::new(),
                reason: format!("cannot read: {e}"),
            }]
        })?;
        Config::parse(&label, &text, path.parent())
    }

    /// Validates config text; `base` resolves relative file names.
    pub fn parse(label: &str, text: &str, base: Option<&Path>) -> Result<Config, Vec<ConfigError>> {
        let (root, syntax) = toml::de::DeTable::parse_recoverable(text);
        let mut doc = Doc::new(label, text);
        for e in syntax {
            let span = e.span();
            doc.error(span.as_ref(), "", format!("TOML syntax: {}", e.message()));
        }
        let mut top = Tbl::root(&root);
        let cfg = read_all(&mut doc, &mut top, base);
        top.finish(&mut doc);
        if doc.errors.is_empty() {
            Ok(cfg)
        } else {
            Err(doc.errors)
        }
    }

    /// The port `sts` points plain-text clients to: `[tls] sts_port`, else the first TLS
    /// listener's (IRC over TLS: not a `wss://` one). None when there is no TLS listener or
    /// the policy is off.
    pub fn tls_port(&self) -> Option<u16> {
        let first = self.listen.iter().find(|l| l.tls.is_some() && !l.websocket)?.address.port();
        match &self.tls {
            Some(t) if !t.sts => None,
            Some(t) => Some(t.sts_port.unwrap_or(first)),
            None => Some(first),
        }
    }

    /// The class for a new connection from `ip`: the first whose host masks match.
    pub fn class_for(&self, ip: &str) -> Option<usize> {
        self.classes.iter().position(|c| c.hosts.iter().any(|m| mask::matches(CaseMapping::Ascii, m, ip)))
    }
}

fn read_all(doc: &mut Doc<'_>, top: &mut Tbl<'_, '_>, base: Option<&Path>) -> Config {
    let server = read_server(doc, top, base);
    let limits = read_limits(doc, top);
    let tls = read_tls(doc, top, base);
    let listen = read_listen(doc, top, tls.as_ref(), base);
    let classes = read_classes(doc, top);
    let database = read_database(doc, top);
    let history = read_history(doc, top);
    let batch = read_batch(doc, top);
    let netsplit = read_netsplit(doc, top);
    let opers = read_opers(doc, top);
    let links = read_links(doc, top, &server, &classes);
    let logging = read_logging(doc, top, base);
    let runtime = read_runtime(doc, top);
    let lookups = read_lookups(doc, top);
    let metrics = read_metrics(doc, top);
    let websocket = read_websocket(doc, top);
    Config {
        metrics,
        websocket,
        source: doc.file.clone(),
        server,
        limits,
        listen,
        classes,
        database,
        history,
        batch,
        netsplit,
        opers,
        links,
        logging,
        runtime,
        tls,
        lookups,
    }
}

// The optional sections below read through `Tbl::section`: an absent one reads as empty, so
// each default is written once, in its getter call (`config/rustircd.toml` documents them; the
// test `embedded_file_matches_code_defaults` holds the two together).

fn read_database(doc: &mut Doc<'_>, top: &mut Tbl<'_, '_>) -> Database {
    let mut t = top.section(doc, "database");
    let d = Database {
        user_cache_size: t.int(doc, "user_cache_size", 10_000, 0, 10_000_000) as usize,
        user_cache_ttl: Duration::from_secs(t.int(doc, "user_cache_ttl_seconds", 86_400, 0, 365 * 86_400) as u64),
        channel_cache_ttl: Duration::from_secs(t.int(doc, "channel_cache_ttl_seconds", 3_600, 0, 365 * 86_400) as u64),
    };
    t.finish(doc);
    d
}

fn read_history(doc: &mut Doc<'_>, top: &mut Tbl<'_, '_>) -> History {
    let mut t = top.section(doc, "history");
    let h = History {
        enabled: t.bool(doc, "enabled", true),
        channel_length: t.int(doc, "channel_length", 1000, 1, 1_000_000) as usize,
        private_length: t.int(doc, "private_length", 1000, 1, 1_000_000) as usize,
        session_length: t.int(doc, "session_length", 256, 0, 1_000_000) as usize,
        max_age: t.duration(
            doc,
            "max_age",
            Duration::from_secs(7 * 86_400),
            Duration::ZERO,
            Duration::from_secs(3650 * 86_400),
        ),
        max_query: t.int(doc, "max_query", 100, 1, 10_000) as usize,
        persist: t.bool(doc, "persist", true),
    };
    t.finish(doc);
    h
}

fn read_batch(doc: &mut Doc<'_>, top: &mut Tbl<'_, '_>) -> Batch {
    let mut t = top.section(doc, "batch");
    let b = Batch {
        max_batch_size: t.int(doc, "max_batch_size", 1024, 1, 1 << 20) as usize,
        max_batch_delay: t.duration(doc, "max_batch_delay", Duration::ZERO, Duration::ZERO, SECOND),
        max_batch_bytes: t.size(doc, "max_batch_bytes", 256 * 1024, 512, 64 << 20),
    };
    t.finish(doc);
    b
}

fn read_netsplit(doc: &mut Doc<'_>, top: &mut Tbl<'_, '_>) -> Netsplit {
    let mut t = top.section(doc, "netsplit");
    let n = Netsplit {
        split_user_grace_period: t.duration(
            doc,
            "split_user_grace_period",
            Duration::from_secs(30),
            Duration::ZERO,
            DAY,
        ),
    };
    // The burst optimisation these keys configured is not part of rustircd: a link always gets
    // the full burst (hybrid's peers need it, and a rustircd peer's costs the same). Said
    // plainly rather than silently ignored.
    for key in ["burst_optimization_enabled", "burst_optimization_window"] {
        t.removed(doc, key, "no longer a setting: every link gets the full burst (remove the key)");
    }
    t.finish(doc);
    n
}

fn read_logging(doc: &mut Doc<'_>, top: &mut Tbl<'_, '_>, base: Option<&Path>) -> Logging {
    let mut t = top.section(doc, "logging");
    let file = t.opt_str(doc, "file").map(|f| resolve(base, &f));
    let level = t.str(doc, "level", "info");
    if !matches!(level.as_str(), "error" | "warn" | "info" | "debug" | "trace" | "off") {
        doc.error(
            t.value_span("level").as_ref(),
            "logging.level",
            "must be one of error, warn, info, debug, trace, off",
        );
    }
    t.finish(doc);
    Logging { file, level }
}

fn read_runtime(doc: &mut Doc<'_>, top: &mut Tbl<'_, '_>) -> RuntimeTuning {
    let mut t = top.section(doc, "runtime");
    let r = RuntimeTuning {
        mesh_capacity: t.int(doc, "mesh_capacity", 1024, 2, 1 << 20) as usize,
        preempt_timer: t.duration(doc, "preempt_timer", Duration::from_millis(2), Duration::from_micros(100), SECOND),
        spin_before_park: t.duration(doc, "spin_before_park", Duration::ZERO, Duration::ZERO, SECOND),
        sleep_after: t.duration(doc, "sleep_after", Duration::from_secs(15), Duration::ZERO, DAY),
    };
    t.finish(doc);
    r
}

fn read_lookups(doc: &mut Doc<'_>, top: &mut Tbl<'_, '_>) -> Lookups {
    let mut t = top.section(doc, "lookups");
    let l = Lookups {
        dns: t.bool(doc, "dns", false),
        ident: t.bool(doc, "ident", false),
        timeout: t.duration(
            doc,
            "timeout",
            Duration::from_secs(3),
            Duration::from_millis(100),
            Duration::from_secs(30),
        ),
    };
    t.finish(doc);
    l
}

fn read_metrics(doc: &mut Doc<'_>, top: &mut Tbl<'_, '_>) -> Metrics {
    let mut t = top.section(doc, "metrics");
    let enabled = t.bool(doc, "enabled", false);
    let address = t.str(doc, "address", "127.0.0.1:9477");
    let allow_remote = t.bool(doc, "allow_remote", false);
    let mut listen = None;
    match address.parse::<SocketAddr>() {
        Ok(a) if !a.ip().is_loopback() && !allow_remote => doc.error(
            t.value_span("address").as_ref(),
            "metrics.address",
            format!("{a} is not a loopback address; set allow_remote = true to serve metrics beyond this host"),
        ),
        Ok(a) => listen = enabled.then_some(a),
        Err(_) => doc.error(
            t.value_span("address").as_ref(),
            "metrics.address",
            format!("{address:?} is not HOST:PORT (an IP address and a port)"),
        ),
    }
    t.finish(doc);
    Metrics { listen }
}

fn read_websocket(doc: &mut Doc<'_>, top: &mut Tbl<'_, '_>) -> WebSocket {
    let mut t = top.section(doc, "websocket");
    let allowed_origins = t.str_list(doc, "allowed_origins", &[]);
    if allowed_origins.iter().any(|o| o.trim().is_empty()) {
        doc.error(
            t.value_span("allowed_origins").as_ref(),
            "websocket.allowed_origins",
            "an empty origin matches nothing; leave the list empty to allow any origin",
        );
    }
    t.finish(doc);
    WebSocket { allowed_origins }
}

fn resolve(base: Option<&Path>, f: &str) -> PathBuf {
    let p = PathBuf::from(f);
    match base {
        Some(b) if p.is_relative() => b.join(p),
        _ => p,
    }
}

fn read_server(doc: &mut Doc<'_>, top: &mut Tbl<'_, '_>, base: Option<&Path>) -> ServerInfo {
    let Some(mut t) = top.table(doc, "server") else {
        doc.error(Some(top.span()), "server", "the [server] section is required");
        // A placeholder, never used: the config is refused.
        return ServerInfo {
            name: String::new(),
            sid: String::new(),
            network: String::new(),
            description: String::new(),
            casemapping: CaseMapping::Ascii,
            password: None,
            motd: None,
            admin_location: String::new(),
            admin_location2: String::new(),
            admin_email: String::new(),
            data_dir: PathBuf::new(),
            allow_die: false,
            allow_restart: false,
            services: Vec::new(),
        };
    };
    let name = t.req_str(doc, "name");
    if !name.is_empty() && !names::valid_server_name(&name) {
        doc.error(
            t.value_span("name").as_ref(),
            "server.name",
            format!("{name:?} is not a valid server name (it needs a dot, letters, digits, '-')"),
        );
    }
    let sid = t.str(doc, "sid", "0RC");
    if !names::valid_sid(&sid) {
        doc.error(
            t.value_span("sid").as_ref(),
            "server.sid",
            format!("{sid:?} is not a TS6 SID (a digit, then two digits or uppercase letters)"),
        );
    }
    let network = t.str(doc, "network", "RustNet");
    if network.is_empty() || network.contains(' ') {
        doc.error(t.value_span("network").as_ref(), "server.network", "must be one word");
    }
    let description = t.str(doc, "description", "rustircd");
    let cm = t.str(doc, "casemapping", "ascii");
    let casemapping = CaseMapping::parse(&cm).unwrap_or_else(|| {
        doc.error(
            t.value_span("casemapping").as_ref(),
            "server.casemapping",
            format!("{cm:?} is not \"ascii\" or \"rfc1459\""),
        );
        CaseMapping::Ascii
    });
    // Checked here, where the key's line is known; the links are read later.
    if casemapping != CaseMapping::Ascii && top.has("links") {
        doc.error(
            t.value_span("casemapping").as_ref(),
            "server.casemapping",
            "must be \"ascii\" when [[links]] are configured: TS6 peers (ircd-hybrid) fold nicks in ascii, \
             and another mapping would decide nick collisions differently on each side",
        );
    }
    let password = t.opt_str(doc, "password");
    let motd_text = t.opt_str(doc, "motd");
    let motd_file = t.opt_str(doc, "motd_file");
    let motd = match (motd_text, motd_file) {
        (Some(_), Some(_)) => {
            doc.error(t.value_span("motd_file").as_ref(), "server.motd_file", "set either motd or motd_file, not both");
            None
        }
        (Some(text), None) => Some(text.lines().map(str::to_string).collect()),
        (None, Some(f)) => {
            let path = resolve(base, &f);
            match std::fs::read_to_string(&path) {
                Ok(text) => Some(text.lines().map(str::to_string).collect()),
                Err(e) => {
                    doc.error(
                        t.value_span("motd_file").as_ref(),
                        "server.motd_file",
                        format!("cannot read {}: {e}", path.display()),
                    );
                    None
                }
            }
        }
        (None, None) => None,
    };
    let data_dir = resolve(base, &t.str(doc, "data_dir", "rustircd-data"));
    let allow_die = t.bool(doc, "allow_die", false);
    let allow_restart = t.bool(doc, "allow_restart", false);
    let services = t.str_list(doc, "services", &[]);
    for s in &services {
        if !names::valid_ts6_server_name(s) {
            doc.error(t.value_span("services").as_ref(), "server.services", not_server_name(s));
        }
    }
    let mut a = t.section(doc, "admin");
    let loc = a.str(doc, "location", "");
    let loc2 = a.str(doc, "location2", "");
    let email = a.str(doc, "email", "");
    a.finish(doc);
    t.finish(doc);
    ServerInfo {
        name,
        sid,
        network,
        description,
        casemapping,
        password,
        motd,
        admin_location: loc,
        admin_location2: loc2,
        admin_email: email,
        data_dir,
        allow_die,
        allow_restart,
        services,
    }
}

fn read_limits(doc: &mut Doc<'_>, top: &mut Tbl<'_, '_>) -> Limits {
    let mut t = top.section(doc, "limits");
    let l = Limits {
        nicklen: t.int(doc, "nicklen", 30, 9, 64) as usize,
        channellen: t.int(doc, "channellen", 50, 2, 200) as usize,
        topiclen: t.int(doc, "topiclen", 390, 1, 450) as usize,
        kicklen: t.int(doc, "kicklen", 390, 1, 450) as usize,
        awaylen: t.int(doc, "awaylen", 390, 1, 450) as usize,
        userlen: t.int(doc, "userlen", 10, 1, 64) as usize,
        realnamelen: t.int(doc, "realnamelen", 150, 1, 390) as usize,
        max_targets: t.int(doc, "max_targets", 4, 1, 512) as usize,
        max_channels: t.int(doc, "max_channels", 50, 1, 10_000) as usize,
        max_list_entries: t.int(doc, "max_list_entries", 100, 1, 10_000) as usize,
        max_modes: t.int(doc, "max_modes", 4, 1, 100) as usize,
        monitor: t.int(doc, "monitor", 100, 0, 10_000) as usize,
    };
    t.finish(doc);
    l
}

/// How long clients keep the STS policy when `[tls] sts_duration` does not say (also with no
/// `[tls]` section at all: a TLS listener alone still offers STS).
pub const DEFAULT_STS_DURATION: Duration = Duration::from_secs(30 * 86_400);

fn read_tls(doc: &mut Doc<'_>, top: &mut Tbl<'_, '_>, base: Option<&Path>) -> Option<Tls> {
    let mut t = top.table(doc, "tls")?;
    let tls = Tls {
        cert: t.opt_str(doc, "cert").map(|f| resolve(base, &f)),
        key: t.opt_str(doc, "key").map(|f| resolve(base, &f)),
        sts: t.bool(doc, "sts", true),
        sts_duration: t.duration(
            doc,
            "sts_duration",
            DEFAULT_STS_DURATION,
            Duration::ZERO,
            Duration::from_secs(366 * 86_400),
        ),
        sts_port: if t.has("sts_port") { Some(t.int(doc, "sts_port", 6697, 1, 65535) as u16) } else { None },
    };
    t.finish(doc);
    Some(tls)
}

fn read_listen(doc: &mut Doc<'_>, top: &mut Tbl<'_, '_>, tls: Option<&Tls>, base: Option<&Path>) -> Vec<Listen> {
    let mut out = Vec::new();
    for mut t in top.tables(doc, "listen") {
        let addr = t.req_str(doc, "address");
        let wants_tls = t.bool(doc, "tls", false);
        let websocket = t.bool(doc, "websocket", false);
        let cert = t.opt_str(doc, "cert").map(|f| resolve(base, &f)).or_else(|| tls.and_then(|x| x.cert.clone()));
        let key = t.opt_str(doc, "key").map(|f| resolve(base, &f)).or_else(|| tls.and_then(|x| x.key.clone()));
        let mut server = None;
        if wants_tls {
            match (cert, key) {
                (Some(c), Some(k)) => match load_tls(&c, &k) {
                    Ok(cfg) => server = Some(cfg),
                    Err((file, reason)) => doc.error(
                        t.value_span("tls").as_ref(),
                        &format!("{}.tls", t.path),
                        format!("{}: {reason}", file.display()),
                    ),
                },
                _ => doc.error(
                    t.value_span("tls").as_ref(),
                    &format!("{}.tls", t.path),
                    "a TLS listener needs cert and key (here, or in [tls])",
                ),
            }
        }
        match addr.parse::<SocketAddr>() {
            Ok(a) => out.push(Listen { address: a, tls: server, websocket }),
            Err(_) if addr.is_empty() => {}
            Err(_) => doc.error(
                t.value_span("address").as_ref(),
                &format!("{}.address", t.path),
                format!("{addr:?} is not HOST:PORT (an IP address and a port)"),
            ),
        }
        t.finish(doc);
    }
    out
}

/// Reads a PEM certificate chain and private key into a rustls server configuration. An
/// error names the file at fault.
pub fn load_tls(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, (PathBuf, String)> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| (cert.to_path_buf(), format!("cannot read the certificate: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| (cert.to_path_buf(), format!("not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err((cert.to_path_buf(), "no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| (key.to_path_buf(), format!("cannot read the private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // A client certificate is asked for, never required (CertFP: `certfp.rs`).
    let clients = crate::certfp::AnyClientCert::new(provider.clone());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| (cert.to_path_buf(), e.to_string()))?
        .with_client_cert_verifier(clients)
        .with_single_cert(certs, key)
        .map_err(|e| (cert.to_path_buf(), format!("certificate and key do not go together: {e}")))?;
    Ok(Arc::new(cfg))
}

fn read_classes(doc: &mut Doc<'_>, top: &mut Tbl<'_, '_>) -> Vec<Class> {
    let mut out: Vec<Class> = Vec::new();
    for mut t in top.tables(doc, "classes") {
        let name = t.req_str(doc, "name");
        if out.iter().any(|c| c.name == name) {
            doc.error(
                t.value_span("name").as_ref(),
                &format!("{}.name", t.path),
                format!("class {name:?} is defined twice"),
            );
        }
        let c = read_class(doc, &mut t, name);
        t.finish(doc);
        out.push(c);
    }
    if out.is_empty() {
        // No [[classes]]: one class of defaults, for everyone.
        let mut t = Tbl::empty("classes".into(), top.span().clone());
        out.push(read_class(doc, &mut t, "default".into()));
    }
    out
}

/// A class's settings but its name (read by the caller, or "default").
fn read_class(doc: &mut Doc<'_>, t: &mut Tbl<'_, '_>, name: String) -> Class {
    Class {
        name,
        hosts: t.str_list(doc, "hosts", &["*"]),
        sendq: t.size(doc, "sendq", 1 << 20, 512, 1 << 30),
        recvq: t.size(doc, "recvq", 16 * 1024, 512, 1 << 30),
        ping_frequency: t.duration(doc, "ping_frequency", Duration::from_secs(90), SECOND, DAY),
        connection_timeout: t.duration(
            doc,
            "connection_timeout",
            Duration::from_secs(30),
            SECOND,
            Duration::from_secs(3600),
        ),
        max_clients: t.int(doc, "max_clients", 50_000, 0, 10_000_000) as usize,
        max_per_ip: t.int(doc, "max_per_ip", 20, 0, 10_000_000) as usize,
        max_per_cidr: t.int(doc, "max_per_cidr", 100, 0, 10_000_000) as usize,
        cidr_v4: t.int(doc, "cidr_v4", 24, 8, 32) as u8,
        cidr_v6: t.int(doc, "cidr_v6", 64, 16, 128) as u8,
        throttle_count: t.int(doc, "throttle_count", 10, 0, 1_000_000) as usize,
        throttle_window: t.duration(doc, "throttle_window", Duration::from_secs(10), SECOND, Duration::from_secs(3600)),
        flood_burst: t.int(doc, "flood_burst", 20, 1, 1_000_000) as u32,
        flood_rate: t.int(doc, "flood_rate", 5, 1, 1_000_000) as u32,
        exempt: t.bool(doc, "exempt", false),
    }
}

fn read_opers(doc: &mut Doc<'_>, top: &mut Tbl<'_, '_>) -> Vec<Oper> {
    let mut out: Vec<Oper> = Vec::new();
    for mut t in top.tables(doc, "opers") {
        let o = Oper {
            name: t.req_str(doc, "name"),
            password: t.req_str(doc, "password"),
            allow_plaintext: t.bool(doc, "allow_plaintext", false),
            hosts: t.str_list(doc, "hosts", &["*@*"]),
            privileges: t.str_list(doc, "privileges", &[]),
        };
        let hashed = o.password.starts_with("$argon2") || o.password.starts_with("$2");
        if !hashed && !o.allow_plaintext && !o.password.is_empty() {
            doc.error(
                t.value_span("password").as_ref(),
                &format!("{}.password", t.path),
                "is not an argon2 or bcrypt hash (make one with `rustircd --mkpasswd`, or set allow_plaintext = true)",
            );
        }
        for p in &o.privileges {
            if p != "all" && !PRIVILEGES.contains(&p.as_str()) {
                doc.error(
                    t.value_span("privileges").as_ref(),
                    &format!("{}.privileges", t.path),
                    format!("unknown privilege {p:?} (known: all, {})", PRIVILEGES.join(", ")),
                );
            }
        }
        if out.iter().any(|p| p.name == o.name) {
            doc.error(
                t.value_span("name").as_ref(),
                &format!("{}.name", t.path),
                format!("oper {:?} is defined twice", o.name),
            );
        }
        t.finish(doc);
        out.push(o);
    }
    out
}

fn read_links(doc: &mut Doc<'_>, top: &mut Tbl<'_, '_>, server: &ServerInfo, classes: &[Class]) -> Vec<Link> {
    let mut out: Vec<Link> = Vec::new();
    for mut t in top.tables(doc, "links") {
        let l = read_link(doc, &mut t, classes);
        check_link(doc, &t, &l, server, &out);
        t.finish(doc);
        out.push(l);
    }
    out
}

/// One `[[links]]` block, each key checked on its own; [`check_link`] checks them together.
fn read_link(doc: &mut Doc<'_>, t: &mut Tbl<'_, '_>, classes: &[Class]) -> Link {
    let name = t.req_str(doc, "name");
    if t.has("name") && !names::valid_ts6_server_name(&name) {
        key_error(doc, t, "name", not_server_name(&name));
    }
    let sid = t.opt_str(doc, "sid");
    if let Some(s) = sid.as_ref().filter(|s| !names::valid_sid(s)) {
        key_error(doc, t, "sid", format!("{s:?} is not a TS6 SID (a digit, then two digits or uppercase letters)"));
    }
    let address = t.opt_str(doc, "address").and_then(|a| match a.parse::<SocketAddr>() {
        Ok(x) => Some(x),
        Err(_) => {
            key_error(doc, t, "address", format!("{a:?} is not HOST:PORT (an IP address and a port)"));
            None
        }
    });
    let send_password = read_link_password(doc, t, "send_password");
    let accept_password = read_link_password(doc, t, "accept_password");
    let autoconnect = t.bool(doc, "autoconnect", false);
    let class = t.opt_str(doc, "class").and_then(|c| {
        let i = classes.iter().position(|k| k.name == c);
        if i.is_none() {
            let known: Vec<&str> = classes.iter().map(|k| k.name.as_str()).collect();
            key_error(doc, t, "class", format!("no [[classes]] block is named {c:?} (known: {})", known.join(", ")));
        }
        i
    });
    Link {
        name,
        sid,
        address,
        send_password,
        accept_password,
        autoconnect,
        class,
        hub_mask: read_server_masks(doc, t, "hub_mask"),
        leaf_mask: read_server_masks(doc, t, "leaf_mask"),
        tls: t.bool(doc, "tls", false),
        fingerprint: t.opt_str(doc, "fingerprint").and_then(|f| {
            let fp = crate::certpin::parse(&f);
            if fp.is_none() {
                key_error(
                    doc,
                    t,
                    "fingerprint",
                    format!("{f:?} is not a SHA-256 fingerprint (64 hex digits, colons optional)"),
                );
            }
            fp
        }),
        reconnect_min: t.duration(doc, "reconnect_min", Duration::from_secs(5), Duration::ZERO, DAY),
        reconnect_max: t.duration(doc, "reconnect_max", Duration::from_secs(300), Duration::ZERO, DAY),
    }
}

/// TS6 `PASS` carries the password as one middle parameter: a space would cut it, a leading
/// `:` would swallow the rest of the line, and an empty one cannot be sent.
fn read_link_password(doc: &mut Doc<'_>, t: &mut Tbl<'_, '_>, key: &str) -> String {
    let p = t.req_str(doc, key);
    let one_token = !p.is_empty() && !p.starts_with(':') && !p.chars().any(|c| c.is_whitespace() || c.is_control());
    if t.has(key) && !one_token {
        key_error(doc, t, key, "must be one word for TS6 PASS: not empty, no spaces, not starting with ':'");
    }
    p
}

/// `hub_mask`/`leaf_mask`: glob masks on server names (`*`, `?`).
fn read_server_masks(doc: &mut Doc<'_>, t: &mut Tbl<'_, '_>, key: &str) -> Vec<String> {
    let masks = t.str_list(doc, key, &[]);
    for m in masks.iter().filter(|m| m.is_empty() || m.contains(char::is_whitespace)) {
        key_error(doc, t, key, format!("{m:?} is not a mask of server names (empty, or with a space)"));
    }
    masks
}

/// What one block's keys say together, and against our own `[server]` and the blocks before.
fn check_link(doc: &mut Doc<'_>, t: &Tbl<'_, '_>, l: &Link, server: &ServerInfo, before: &[Link]) {
    if l.address.is_none() && !t.has("address") {
        if l.autoconnect {
            key_error(doc, t, "autoconnect", "needs an address to connect to");
        }
        if l.tls {
            key_error(doc, t, "tls", "needs an address (TLS applies to the connections we open)");
        }
    }
    if l.tls && !t.has("fingerprint") {
        key_error(
            doc,
            t,
            "tls",
            "needs a fingerprint: the SHA-256 of the peer's certificate (`rustircd --fingerprint cert.pem` prints it)",
        );
    }
    if !l.tls && t.has("fingerprint") {
        key_error(doc, t, "fingerprint", "is only checked over TLS: set tls = true");
    }
    if l.reconnect_min.is_zero() {
        key_error(doc, t, "reconnect_min", "must be more than 0 (a peer that is down would be redialled in a loop)");
    } else if l.reconnect_min > l.reconnect_max {
        let key = if t.has("reconnect_min") { "reconnect_min" } else { "reconnect_max" };
        key_error(
            doc,
            t,
            key,
            format!("reconnect_min ({:?}) is more than reconnect_max ({:?})", l.reconnect_min, l.reconnect_max),
        );
    }
    if l.name.is_empty() {
        return;
    }
    if l.name.eq_ignore_ascii_case(&server.name) {
        key_error(doc, t, "name", format!("{:?} is this server's own name ([server] name)", l.name));
    } else if before.iter().any(|b| b.name.eq_ignore_ascii_case(&l.name)) {
        key_error(doc, t, "name", format!("a link to {:?} is defined twice", l.name));
    }
    if let Some(sid) = &l.sid {
        if *sid == server.sid {
            key_error(doc, t, "sid", format!("{sid:?} is this server's own SID ([server] sid)"));
        } else if before.iter().any(|b| b.sid.as_ref() == Some(sid)) {
            key_error(doc, t, "sid", format!("SID {sid:?} is given to two links"));
        }
    }
}

fn not_server_name(name: &str) -> String {
    format!("{name:?} is not a valid server name (a dot; letters, digits, '.', '-'; at most 63 characters)")
}

/// An error on `key` of this table, at the key's line (the block's when the key is absent).
fn key_error(doc: &mut Doc<'_>, t: &Tbl<'_, '_>, key: &str, reason: impl Into<String>) {
    let span = t.value_span(key).unwrap_or_else(|| t.span().clone());
    doc.error(Some(&span), &format!("{}.{key}", t.path), reason);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_listeners_and_allowed_origins() {
        let base = "[server]\nname = \"irc.test.net\"\n[[listen]]\naddress = \"127.0.0.1:6667\"\n";
        let c = Config::parse("t.toml", base, None).unwrap();
        assert!(!c.listen[0].websocket);
        assert!(c.websocket.allowed_origins.is_empty(), "no list: any origin");

        let text = format!(
            "{base}[[listen]]\naddress = \"127.0.0.1:8097\"\nwebsocket = true\n\
             [websocket]\nallowed_origins = [\"https://chat.example\", \"https://*.example.org\"]\n"
        );
        let c = Config::parse("t.toml", &text, None).unwrap();
        assert_eq!((c.listen[1].websocket, c.listen[1].tls.is_none()), (true, true));
        assert_eq!(c.websocket.allowed_origins, ["https://chat.example", "https://*.example.org"]);
        // sts names an IRC port over TLS: a plain WebSocket listener is none
        assert_eq!(c.tls_port(), None);

        let errs =
            Config::parse("t.toml", &format!("{base}[websocket]\nallowed_origins = [\"\"]\n"), None).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key, "websocket.allowed_origins");
        let errs = Config::parse("t.toml", &format!("{base}[websocket]\norigins = [\"*\"]\n"), None).unwrap_err();
        assert_eq!(errs[0].key, "websocket.origins", "an unknown key is an error: {errs:?}");
    }

    #[test]
    fn embedded_default_is_valid() {
        let c = Config::embedded();
        assert_eq!(c.listen[0].address.port(), 6667);
        assert!(!c.classes.is_empty());
        assert!(c.server.motd.is_some());
    }

    #[test]
    fn minimal_config() {
        let c = Config::parse("t.toml", "[server]\nname = \"irc.test.net\"\n", None).unwrap();
        assert_eq!(c.server.sid, "0RC");
        assert_eq!(c.classes[0].name, "default");
        assert!(c.listen.is_empty());
    }

    #[test]
    fn every_error_names_file_key_line_and_reason() {
        let text = "[server]\nname = \"irc.test.net\"\nsid = \"xyz\"\nbogus = 1\n\n[[classes]]\nname = \"a\"\nsendq = \"lots\"\nping_frequency = true\nmax_clients = -5\n\n[limits]\nnicklen = 3\n";
        let errs = Config::parse("t.toml", text, None).unwrap_err();
        let shown: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        let want = [
            "t.toml:3: server.sid:",
            "t.toml:4: server.bogus: unknown key",
            "t.toml:8: classes[0].sendq: is not a size",
            "t.toml:9: classes[0].ping_frequency: expected a duration",
            "t.toml:10: classes[0].max_clients: -5 is out of range",
            "t.toml:13: limits.nicklen: 3 is out of range",
        ];
        for w in want {
            assert!(shown.iter().any(|s| s.starts_with(w)), "missing {w:?} in {shown:#?}");
        }
        assert_eq!(shown.len(), want.len(), "{shown:#?}");
    }

    #[test]
    fn syntax_errors_have_lines() {
        let errs = Config::parse("t.toml", "[server]\nname = \"x.y\"\nsid = \n", None).unwrap_err();
        assert!(errs[0].to_string().starts_with("t.toml:3: TOML syntax"), "{errs:?}");
    }

    #[test]
    fn missing_server_section() {
        let errs = Config::parse("t.toml", "", None).unwrap_err();
        assert!(errs.iter().any(|e| e.key == "server"), "{errs:?}");
    }

    /// Every key `config/rustircd.toml` sets, dropped from the file one at a time: most make no
    /// difference, so the file shows the code's default; the others are the file's deliberate
    /// choices (or required), listed here. A default changed on one side only fails this.
    #[test]
    fn embedded_file_matches_code_defaults() {
        use std::ops::Range;
        use toml::de::{DeTable, DeValue};

        fn keys(t: &DeTable<'_>, path: &str, out: &mut Vec<(String, Range<usize>)>) {
            for (k, v) in t.iter() {
                let p = if path.is_empty() { k.get_ref().to_string() } else { format!("{path}.{}", k.get_ref()) };
                match v.get_ref() {
                    DeValue::Table(t) => keys(t, &p, out),
                    DeValue::Array(a) if a.iter().all(|i| i.get_ref().as_table().is_some()) => {
                        for (i, item) in a.iter().enumerate() {
                            keys(item.get_ref().as_table().unwrap(), &format!("{p}[{i}]"), out);
                        }
                    }
                    _ => out.push((p, k.span().start..v.span().end)),
                }
            }
        }
        let mut all = Vec::new();
        keys(DeTable::parse(EMBEDDED_DEFAULT).unwrap().get_ref(), "", &mut all);
        all.sort_by_key(|(_, span)| span.start);
        assert!(all.len() > 50, "{all:?}");

        let embedded = format!("{:?}", Config::embedded());
        let (mut differs, mut required) = (Vec::new(), Vec::new());
        for (key, span) in &all {
            let mut text = EMBEDDED_DEFAULT.to_string();
            text.replace_range(span.clone(), "");
            match Config::parse(EMBEDDED_NAME, &text, None) {
                Ok(c) if format!("{c:?}") == embedded => {}
                Ok(_) => differs.push(key.as_str()),
                Err(_) => required.push(key.as_str()),
            }
        }
        assert_eq!(required, ["server.name", "listen[0].address", "classes[0].name", "classes[1].name"]);
        let chosen = [
            "server.description",
            "server.motd",
            "server.admin.location",
            "server.admin.location2",
            "server.admin.email",
            // the trusted loopback class; the "users" class is all defaults
            "classes[0].hosts",
            "classes[0].sendq",
            "classes[0].recvq",
            "classes[0].max_clients",
            "classes[0].exempt",
        ];
        assert_eq!(differs, chosen);

        // An absent section reads as the file's: the same defaults, and the class given when
        // there is no [[classes]] is the file's "users" class under another name.
        let min = Config::parse("t.toml", "[server]\nname = \"irc.test.net\"\n", None).unwrap();
        let file = Config::embedded();
        assert_eq!(format!("{:?}", min.limits), format!("{:?}", file.limits));
        assert_eq!(format!("{:?}", min.database), format!("{:?}", file.database));
        assert_eq!(format!("{:?}", min.batch), format!("{:?}", file.batch));
        assert_eq!(format!("{:?}", min.netsplit), format!("{:?}", file.netsplit));
        assert_eq!(format!("{:?}", min.logging), format!("{:?}", file.logging));
        assert_eq!(format!("{:?}", min.runtime), format!("{:?}", file.runtime));
        assert_eq!(format!("{:?}", min.lookups), format!("{:?}", file.lookups));
        assert_eq!(min.metrics, Metrics { listen: None });
        assert_eq!(file.metrics, Metrics { listen: None });
        let users = Class { name: "default".into(), ..file.classes[1].clone() };
        assert_eq!(format!("{:?}", min.classes), format!("{:?}", [users]));
    }

    /// `[server]` for the link tests: our name irc.test.net, SID 0RC, and two classes.
    const LINKED: &str = "[server]\nname = \"irc.test.net\"\nsid = \"0RC\"\n\
        [[classes]]\nname = \"users\"\n[[classes]]\nname = \"servers\"\nhosts = []\n";

    /// `LINKED` with one more `[server]` key.
    fn linked_with(server_key: &str) -> String {
        LINKED.replacen("sid = \"0RC\"\n", &format!("sid = \"0RC\"\n{server_key}\n"), 1)
    }

    /// A valid link block, with `extra` lines added to it.
    fn link(name: &str, sid: &str, extra: &str) -> String {
        format!(
            "[[links]]\nname = \"{name}\"\nsid = \"{sid}\"\nsend_password = \"out\"\naccept_password = \"in\"\n{extra}"
        )
    }

    /// The errors of `LINKED` + `text`, as shown.
    fn link_errors(text: &str) -> Vec<String> {
        let errs = Config::parse("t.toml", &format!("{LINKED}{text}"), None).unwrap_err();
        errs.iter().map(|e| e.to_string()).collect()
    }

    /// Exactly one error, with a line, on `key`, whose reason contains `reason`.
    fn one_link_error(text: &str, key: &str, reason: &str) {
        let shown = link_errors(text);
        assert_eq!(shown.len(), 1, "{shown:#?}");
        let (line, rest) = shown[0].strip_prefix("t.toml:").unwrap().split_once(": ").unwrap();
        assert!(line.parse::<usize>().is_ok(), "{shown:#?}");
        assert!(rest.starts_with(&format!("{key}: ")) && rest.contains(reason), "{shown:#?}");
    }

    #[test]
    fn link_with_every_key() {
        let text = format!(
            "{}{}",
            linked_with("services = []"),
            link(
                "hub.example.net",
                "1HB",
                &format!(
                    "address = \"127.0.0.1:7000\"\nautoconnect = true\nclass = \"servers\"\n\
                     hub_mask = [\"*\"]\nleaf_mask = [\"*.evil.net\", \"x.y\"]\ntls = true\n\
                     fingerprint = \"{FP}\"\nreconnect_min = \"2s\"\nreconnect_max = 60\n"
                )
            )
        );
        let c = Config::parse("t.toml", &text, None).unwrap();
        let l = &c.links[0];
        assert_eq!((l.name.as_str(), l.sid.as_deref()), ("hub.example.net", Some("1HB")));
        assert_eq!(l.address, Some("127.0.0.1:7000".parse().unwrap()));
        assert_eq!((l.send_password.as_str(), l.accept_password.as_str()), ("out", "in"));
        assert!(l.autoconnect && l.tls);
        assert_eq!(l.fingerprint, crate::certpin::parse(FP));
        assert_eq!(l.class, Some(1));
        assert_eq!(c.classes[1].name, "servers");
        assert_eq!(l.hub_mask, ["*"]);
        assert_eq!(l.leaf_mask, ["*.evil.net", "x.y"]);
        assert_eq!((l.reconnect_min, l.reconnect_max), (Duration::from_secs(2), Duration::from_secs(60)));
    }

    #[test]
    fn link_defaults() {
        let text =
            format!("{LINKED}[[links]]\nname = \"leaf.example.net\"\nsend_password = \"a\"\naccept_password = \"b\"\n");
        let c = Config::parse("t.toml", &text, None).unwrap();
        let l = &c.links[0];
        assert_eq!((l.sid.as_deref(), l.address, l.autoconnect, l.tls), (None, None, false, false));
        assert_eq!(l.class, None);
        assert!(l.hub_mask.is_empty() && l.leaf_mask.is_empty(), "a leaf by default");
        assert_eq!((l.reconnect_min, l.reconnect_max), (Duration::from_secs(5), Duration::from_secs(300)));
        assert!(c.server.services.is_empty());
    }

    #[test]
    fn link_class_must_exist() {
        one_link_error(
            &link("a.net", "1AA", "class = \"nope\"\n"),
            "links[0].class",
            "no [[classes]] block is named \"nope\" (known: users, servers)",
        );
        // With no [[classes]], the one class there is is called "default".
        let c = Config::parse(
            "t.toml",
            &format!("[server]\nname = \"irc.test.net\"\n{}", link("a.net", "1AA", "class = \"default\"\n")),
            None,
        )
        .unwrap();
        assert_eq!(c.links[0].class, Some(0));
    }

    #[test]
    fn link_masks_are_not_empty() {
        one_link_error(&link("a.net", "1AA", "hub_mask = [\"*\", \"\"]\n"), "links[0].hub_mask", "\"\" is not a mask");
        one_link_error(&link("a.net", "1AA", "leaf_mask = [\"a b\"]\n"), "links[0].leaf_mask", "\"a b\" is not a mask");
        let shown = link_errors(&link("a.net", "1AA", "hub_mask = [1]\n"));
        assert!(shown[0].contains("links[0].hub_mask[0]: expected a string"), "{shown:#?}");
    }

    #[test]
    fn link_tls_and_autoconnect_need_an_address() {
        one_link_error(
            &link("a.net", "1AA", &format!("tls = true\nfingerprint = \"{FP}\"\n")),
            "links[0].tls",
            "needs an address",
        );
        one_link_error(&link("a.net", "1AA", "autoconnect = true\n"), "links[0].autoconnect", "needs an address");
        // A bad address is reported once, as itself.
        one_link_error(
            &link("a.net", "1AA", "address = \"a.net\"\nautoconnect = true\n"),
            "links[0].address",
            "is not HOST:PORT",
        );
    }

    /// A fingerprint as `openssl x509 -fingerprint -sha256` prints one.
    const FP: &str = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

    #[test]
    fn link_tls_needs_a_fingerprint() {
        let at = "address = \"127.0.0.1:7000\"\n";
        one_link_error(&link("a.net", "1AA", &format!("{at}tls = true\n")), "links[0].tls", "needs a fingerprint");
        one_link_error(
            &link("a.net", "1AA", &format!("{at}tls = true\nfingerprint = \"AB:CD\"\n")),
            "links[0].fingerprint",
            "is not a SHA-256 fingerprint",
        );
        one_link_error(
            &link("a.net", "1AA", &format!("{at}tls = true\nfingerprint = \"{}\"\n", FP.replace('A', "X"))),
            "links[0].fingerprint",
            "64 hex digits",
        );
        one_link_error(
            &link("a.net", "1AA", &format!("{at}fingerprint = \"{FP}\"\n")),
            "links[0].fingerprint",
            "only checked over TLS",
        );
        let bare = FP.replace(':', "").to_lowercase();
        let c = Config::parse(
            "t.toml",
            &format!("{LINKED}{}", link("a.net", "1AA", &format!("{at}tls = true\nfingerprint = \"{bare}\"\n"))),
            None,
        )
        .unwrap();
        assert_eq!(c.links[0].fingerprint, crate::certpin::parse(FP));
        assert_eq!(c.links[0].fingerprint.unwrap()[..3], [0xAB, 0xCD, 0xEF]);
    }

    #[test]
    fn link_reconnect_bounds() {
        one_link_error(&link("a.net", "1AA", "reconnect_min = 0\n"), "links[0].reconnect_min", "must be more than 0");
        one_link_error(
            &link("a.net", "1AA", "reconnect_min = \"10m\"\n"),
            "links[0].reconnect_min",
            "is more than reconnect_max (300s)",
        );
        one_link_error(
            &link("a.net", "1AA", "reconnect_max = \"1s\"\n"),
            "links[0].reconnect_max",
            "reconnect_min (5s) is more than",
        );
        one_link_error(
            &link("a.net", "1AA", "reconnect_max = \"soon\"\n"),
            "links[0].reconnect_max",
            "is not a duration",
        );
        let c = Config::parse(
            "t.toml",
            &format!("{LINKED}{}", link("a.net", "1AA", "reconnect_min = \"1s\"\nreconnect_max = \"1s\"\n")),
            None,
        )
        .unwrap();
        assert_eq!(c.links[0].reconnect_max, SECOND);
    }

    #[test]
    fn link_names_are_ts6_server_names() {
        for bad in ["localhost", "irc_b.lab", "*.lab", ""] {
            one_link_error(&link(bad, "1AA", ""), "links[0].name", "is not a valid server name");
        }
        let long = format!("{}.net", "x".repeat(60));
        one_link_error(&link(&long, "1AA", ""), "links[0].name", "at most 63 characters");
        one_link_error(&link("a.net", "AAA", ""), "links[0].sid", "is not a TS6 SID");
        let shown = link_errors("[[links]]\nsend_password = \"a\"\naccept_password = \"b\"\n");
        assert_eq!(shown, ["t.toml:9: links[0].name: is required"]);
    }

    #[test]
    fn links_are_unique_and_not_ourselves() {
        let two = format!("{}{}", link("hub.example.net", "1HB", ""), link("HUB.Example.NET", "2HB", ""));
        one_link_error(&two, "links[1].name", "a link to \"HUB.Example.NET\" is defined twice");
        let two = format!("{}{}", link("a.net", "1AA", ""), link("b.net", "1AA", ""));
        one_link_error(&two, "links[1].sid", "SID \"1AA\" is given to two links");
        one_link_error(&link("IRC.test.net", "1AA", ""), "links[0].name", "this server's own name");
        one_link_error(&link("a.net", "0RC", ""), "links[0].sid", "this server's own SID");
        // No SID given twice: fine.
        let two = format!(
            "{}{}",
            link("a.net", "1AA", "").replace("sid = \"1AA\"\n", ""),
            link("b.net", "1BB", "").replace("sid = \"1BB\"\n", "")
        );
        assert_eq!(Config::parse("t.toml", &format!("{LINKED}{two}"), None).unwrap().links.len(), 2);
    }

    #[test]
    fn link_passwords_are_one_token() {
        one_link_error(
            &link("a.net", "1AA", "").replace("\"out\"", "\"two words\""),
            "links[0].send_password",
            "must be one word",
        );
        one_link_error(&link("a.net", "1AA", "").replace("\"out\"", "\"\""), "links[0].send_password", "not empty");
        one_link_error(
            &link("a.net", "1AA", "").replace("\"in\"", "\":colon\""),
            "links[0].accept_password",
            "not starting with ':'",
        );
        one_link_error(
            &link("a.net", "1AA", "").replace("\"in\"", "\"tab\\tin\""),
            "links[0].accept_password",
            "no spaces",
        );
        let shown = link_errors("[[links]]\nname = \"a.net\"\n");
        assert_eq!(
            shown,
            ["t.toml:9: links[0].send_password: is required", "t.toml:9: links[0].accept_password: is required"]
        );
    }

    #[test]
    fn services_are_server_names() {
        let text = "[server]\nname = \"irc.test.net\"\nservices = [\"services.example.net\", \"x.y\"]\n";
        assert_eq!(Config::parse("t.toml", text, None).unwrap().server.services, ["services.example.net", "x.y"]);
        let text = "[server]\nname = \"irc.test.net\"\nservices = [\"services.example.net\", \"services\"]\n";
        let shown: Vec<String> =
            Config::parse("t.toml", text, None).unwrap_err().iter().map(|e| e.to_string()).collect();
        assert_eq!(shown.len(), 1, "{shown:#?}");
        assert!(
            shown[0].starts_with("t.toml:3: server.services: \"services\" is not a valid server name"),
            "{shown:#?}"
        );
    }

    #[test]
    fn links_need_ascii_casemapping() {
        let rfc = linked_with("casemapping = \"rfc1459\"");
        let shown: Vec<String> = Config::parse("t.toml", &format!("{rfc}{}", link("a.net", "1AA", "")), None)
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(shown.len(), 1, "{shown:#?}");
        assert!(
            shown[0].starts_with("t.toml:4: server.casemapping: must be \"ascii\" when [[links]] are configured"),
            "{shown:#?}"
        );
        // Without links, rfc1459 is fine; with links, ascii (also the default) is.
        assert!(Config::parse("t.toml", &rfc, None).is_ok());
        let ascii = linked_with("casemapping = \"ascii\"");
        assert!(Config::parse("t.toml", &format!("{ascii}{}", link("a.net", "1AA", "")), None).is_ok());
        assert!(Config::parse("t.toml", &format!("{LINKED}{}", link("a.net", "1AA", "")), None).is_ok());
    }

    /// The commented `[[links]]` example and `services` line of `config/rustircd.toml`, taken
    /// in, parse: the documentation names the keys the code reads.
    #[test]
    fn embedded_link_example_parses() {
        let mut text = String::new();
        let mut in_links = false;
        for line in EMBEDDED_DEFAULT.lines() {
            in_links = line == "# [[links]]" || (in_links && !line.is_empty());
            let example = in_links || line.starts_with("# services = ");
            let line = if example { line.strip_prefix("# ").unwrap() } else { line };
            // The example is a plain link; its fingerprint line is for tls = true.
            text.push_str(if line.starts_with("tls = false") { "tls = true" } else { line });
            text.push('\n');
        }
        text.push_str("[[classes]]\nname = \"servers\"\nhosts = []\n");
        let c = Config::parse(EMBEDDED_NAME, &text, None).unwrap();
        assert_eq!(c.server.services, ["services.example.net"]);
        let l = &c.links[0];
        assert_eq!((l.name.as_str(), l.class), ("hub.example.net", Some(2)));
        assert_eq!((l.reconnect_min, l.reconnect_max), (Duration::from_secs(5), Duration::from_secs(300)));
        assert_eq!((l.hub_mask.len(), l.leaf_mask.len(), l.tls, l.autoconnect), (1, 0, true, false));
        assert!(l.fingerprint.is_some());
    }

    #[test]
    fn class_selection_by_ip() {
        let text = "[server]\nname = \"irc.test.net\"\n[[classes]]\nname = \"local\"\nhosts = [\"127.*\"]\n[[classes]]\nname = \"all\"\n";
        let c = Config::parse("t.toml", text, None).unwrap();
        assert_eq!(c.class_for("127.0.0.1"), Some(0));
        assert_eq!(c.class_for("10.1.2.3"), Some(1));
    }
}
