//! Commands: one module per family, one table that says for each verb how many parameters it
//! needs, when it is allowed, and which handler runs it for each kind of connection (a client,
//! a server link). The dispatcher checks that once (451, 462, 461), so handlers hold only the
//! command's meaning. Handlers write to the reply sink in [`Ctx`] and send [`Env`] messages to
//! other shards; they never touch a socket.

pub mod admission;
pub mod barrier;
pub mod cap;
pub mod capabilities;
pub mod channel;
pub mod connection;
pub mod context;
pub mod delivery;
pub mod envelope;
pub mod flood;
pub mod help;
pub mod history;
pub mod identity;
pub mod inbox;
pub mod info;
pub mod link;
pub mod message;
pub mod metadata;
pub mod multiline;
pub mod oper;
pub mod outbox;
pub mod outgoing;
pub mod ping;
pub mod query;
pub mod quit;
pub mod read_marker;
pub mod redact;
pub mod registration;
pub mod report;
pub mod sasl;
pub mod stats;
pub mod timers;
pub mod user_mode;

use std::sync::OnceLock;

use ahash::AHashMap;

pub use context::{numeric_line, CmdResult, Ctx, Reply};
pub use envelope::Env;
pub use outbox::{Conn, Outbox};

use crate::local::kind::Kind;
use crate::proto::line::MAX_BODY;
use crate::proto::message::{Message, ParseError};
use crate::proto::Numeric;

/// Longest tag section a client may send, `@` and the space included (IRCv3 message-tags).
const CLIENT_TAGS: usize = 4096;

/// When a command may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Before and after registration.
    Always,
    /// Only before registration (462 after).
    Unregistered,
    /// Only after registration (451 before).
    Registered,
}

pub type HandlerFn = fn(&mut Ctx<'_>, &Message<'_>) -> CmdResult;

/// A row of the command table: a handler slot per kind of connection, as Solanum's
/// `m_join`/`ms_join`. `min_params` applies to both; `when` (registration) to clients only.
pub struct Spec {
    pub name: &'static str,
    pub min_params: usize,
    pub when: When,
    /// What runs the command for a client.
    pub client: HandlerFn,
    /// What runs it for a server link; None: ignored from a server (Solanum's `mg_ignore`).
    pub server: Option<HandlerFn>,
    /// A client may use it (false: a server's command, unknown to clients, left out of HELP).
    pub for_clients: bool,
}

impl Spec {
    /// The same row with a handler for server links.
    pub const fn with_server(self, run: HandlerFn) -> Spec {
        Spec { server: Some(run), ..self }
    }

    /// The handler for a connection of `kind` (None: the command is ignored from it).
    #[inline]
    pub fn handler(&self, kind: Kind) -> Option<HandlerFn> {
        match kind {
            Kind::Client => Some(self.client),
            Kind::Server => self.server,
        }
    }
}

/// A row with a client handler; `.with_server(h)` adds a server link's.
const fn spec(name: &'static str, min_params: usize, when: When, client: HandlerFn) -> Spec {
    Spec { name, min_params, when, client, server: None, for_clients: true }
}

/// A server's command: from a client it is unknown (421, as on hybrid).
const fn link_only(name: &'static str, min_params: usize, when: When, server: HandlerFn) -> Spec {
    Spec { name, min_params, when, client: link::not_for_clients, server: Some(server), for_clients: false }
}

/// Every command the server knows. A server link's handlers are in `link/` (`s2s.rs` for what a
/// linked peer sends, `handshake.rs` for registering one); a row without one is ignored from a
/// link. For a link, `when` says whether the row runs before it is up (`Unregistered`,
/// `Always`) or only after (`Registered`).
pub static COMMANDS: &[Spec] = &[
    // registration (registration.rs, cap.rs), keep-alive (ping.rs), leaving (quit.rs)
    spec("CAP", 1, When::Always, cap::cap),
    spec("AUTHENTICATE", 1, When::Always, sasl::authenticate),
    spec("PASS", 1, When::Unregistered, registration::pass).with_server(registration::pass),
    spec("NICK", 0, When::Always, registration::nick).with_server(link::s2s::nick),
    spec("USER", 4, When::Unregistered, registration::user),
    spec("PING", 0, When::Always, ping::ping).with_server(link::s2s::ping),
    spec("PONG", 0, When::Always, ping::pong).with_server(link::s2s::pong),
    spec("QUIT", 0, When::Always, quit::quit).with_server(link::s2s::quit),
    // server links (link/*.rs): a new connection's CAPAB or SERVER makes it one
    spec("CAPAB", 1, When::Unregistered, link::handshake::capab).with_server(link::handshake::capab),
    spec("SERVER", 1, When::Unregistered, link::handshake::server).with_server(link::handshake::server),
    link_only("SVINFO", 4, When::Registered, link::handshake::svinfo),
    link_only("ERROR", 0, When::Always, link::handshake::error),
    link_only("SID", 5, When::Registered, link::s2s::sid),
    link_only("UID", 9, When::Registered, link::s2s::uid),
    link_only("EUID", 11, When::Registered, link::s2s::uid),
    link_only("TB", 3, When::Registered, link::channels::tb),
    link_only("ETB", 5, When::Registered, link::channels::etb),
    link_only("MLOCK", 3, When::Registered, link::channels::mlock),
    link_only("EOB", 0, When::Registered, link::s2s::eob),
    link_only("SJOIN", 4, When::Registered, link::channels::sjoin),
    link_only("TMODE", 3, When::Registered, link::channels::tmode),
    link_only("BMASK", 4, When::Registered, link::channels::bmask),
    link_only("TBURST", 5, When::Registered, link::channels::tburst),
    // services (link/services.rs): obeyed from `[server] services` servers only
    link_only("SVSACCOUNT", 3, When::Registered, link::services::svsaccount),
    link_only("SVSMODE", 3, When::Registered, link::services::svsmode),
    link_only("SVSHOST", 3, When::Registered, link::services::svshost),
    link_only("SVSNICK", 3, When::Registered, link::services::svsnick),
    link_only("SVSJOIN", 2, When::Registered, link::services::svsjoin),
    link_only("SVSPART", 2, When::Registered, link::services::svspart),
    link_only("SVSKILL", 1, When::Registered, link::services::svskill),
    link_only("SVSTAG", 1, When::Registered, link::services::pass_through),
    link_only("RESV", 1, When::Registered, link::services::pass_through),
    link_only("ENCAP", 2, When::Registered, link::services::encap),
    // channels (channel/*.rs)
    spec("JOIN", 1, When::Registered, channel::join::join).with_server(link::channels::join),
    spec("PART", 1, When::Registered, channel::part::part).with_server(link::channels::part),
    spec("KICK", 2, When::Registered, channel::kick::kick).with_server(link::channels::kick),
    spec("TOPIC", 1, When::Registered, channel::topic::topic).with_server(link::channels::topic),
    spec("MODE", 1, When::Registered, channel::mode::mode).with_server(link::s2s::umode),
    spec("NAMES", 0, When::Registered, channel::names::names),
    spec("LIST", 0, When::Registered, channel::list::list),
    spec("INVITE", 0, When::Registered, channel::invite::invite).with_server(link::s2s::invite),
    spec("KNOCK", 1, When::Registered, channel::knock::knock).with_server(link::s2s::knock),
    spec("RENAME", 2, When::Registered, channel::rename::rename),
    // messages (message.rs)
    spec("PRIVMSG", 0, When::Registered, message::privmsg).with_server(link::s2s::message),
    spec("NOTICE", 0, When::Registered, message::notice).with_server(link::s2s::message),
    spec("TAGMSG", 1, When::Registered, message::tagmsg).with_server(link::s2s::message),
    spec("BATCH", 1, When::Registered, multiline::batch),
    spec("SETNAME", 1, When::Registered, identity::setname),
    spec("METADATA", 2, When::Always, metadata::metadata),
    // history (history/*.rs)
    spec("CHATHISTORY", 1, When::Registered, history::chathistory),
    spec("MARKREAD", 0, When::Registered, read_marker::markread),
    spec("REDACT", 2, When::Registered, redact::redact),
    // queries about users (query/*.rs)
    spec("WHO", 0, When::Registered, query::who::who),
    spec("WHOIS", 1, When::Registered, query::whois::whois).with_server(link::s2s::whois),
    spec("WHOWAS", 1, When::Registered, query::whowas::whowas),
    spec("ISON", 1, When::Registered, query::userhost::ison),
    spec("USERHOST", 1, When::Registered, query::userhost::userhost),
    spec("AWAY", 0, When::Registered, query::away::away).with_server(link::s2s::away),
    spec("MONITOR", 1, When::Registered, query::monitor::monitor),
    // operators (oper/*.rs)
    spec("OPER", 1, When::Registered, oper::oper::oper),
    spec("KILL", 1, When::Registered, oper::kill::kill).with_server(link::s2s::kill),
    spec("WALLOPS", 1, When::Registered, oper::wallops::wallops).with_server(link::s2s::wallops),
    spec("REHASH", 0, When::Registered, oper::process::rehash),
    spec("DIE", 0, When::Registered, oper::process::die),
    spec("RESTART", 0, When::Registered, oper::process::restart),
    spec("KLINE", 1, When::Registered, oper::bans::kline),
    spec("UNKLINE", 1, When::Registered, oper::bans::unkline),
    spec("DLINE", 1, When::Registered, oper::bans::dline),
    spec("UNDLINE", 1, When::Registered, oper::bans::undline),
    spec("CONNECT", 1, When::Registered, oper::links::connect),
    spec("SQUIT", 1, When::Registered, oper::links::squit).with_server(link::s2s::squit),
    // server queries (info.rs)
    spec("MOTD", 0, When::Registered, info::motd).with_server(link::s2s::query),
    spec("LUSERS", 0, When::Registered, info::lusers).with_server(link::s2s::query),
    spec("VERSION", 0, When::Registered, info::version).with_server(link::s2s::query),
    spec("TIME", 0, When::Registered, info::time).with_server(link::s2s::query),
    spec("ADMIN", 0, When::Registered, info::admin).with_server(link::s2s::query),
    spec("INFO", 0, When::Registered, info::info).with_server(link::s2s::query),
    spec("LINKS", 0, When::Registered, info::links),
    spec("MAP", 0, When::Registered, info::map),
    spec("STATS", 0, When::Registered, stats::stats),
    spec("HELP", 0, When::Registered, help::help),
    spec("HELPOP", 0, When::Registered, help::help),
];

fn table() -> &'static AHashMap<&'static str, usize> {
    static TABLE: OnceLock<AHashMap<&'static str, usize>> = OnceLock::new();
    TABLE.get_or_init(|| COMMANDS.iter().enumerate().map(|(i, s)| (s.name, i)).collect())
}

/// Looks a verb up, case-insensitively, without allocating.
pub fn lookup(verb: &str) -> Option<&'static Spec> {
    lookup_index(verb).map(|i| &COMMANDS[i])
}

/// The index in [`COMMANDS`] of a verb (case-insensitive).
pub fn lookup_index(verb: &str) -> Option<usize> {
    let mut buf = [0u8; 16];
    let b = verb.as_bytes();
    if b.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(b) {
        *d = s.to_ascii_uppercase();
    }
    let upper = std::str::from_utf8(&buf[..b.len()]).ok()?;
    table().get(upper).copied()
}

/// Runs one complete line from a connection: a client's, or a server link's.
pub fn run_line(ctx: &mut Ctx<'_>, raw: &[u8]) {
    // `from_utf8` checks ASCII a word at a time; `from_utf8_lossy` goes byte by byte even
    // when nothing needs replacing (most lines).
    let text = match std::str::from_utf8(raw) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(raw),
    };
    let utf8 = matches!(text, std::borrow::Cow::Borrowed(_));
    let msg = match Message::parse(&text) {
        Ok(m) => m,
        Err(ParseError::Empty) => return,
        Err(ParseError::NoVerb) => {
            ctx.st.metrics.c.parse_errors += 1;
            return;
        }
    };
    let me = ctx.me();
    let (kind, registered, caps) = (me.kind, me.registered, me.caps);
    // labeled-response: every reply to this command carries the label (delivery::reply holds
    // them until the command is complete).
    if delivery::labels(caps) {
        if let Some(label) = msg.tag("label").filter(|l| !l.is_empty()) {
            ctx.me_mut().rare_mut().label = Some(label.into_owned());
        }
    }
    // Measured on the bytes received (the text may have grown where invalid UTF-8 was
    // replaced). Clients may send 4096 bytes of tags ('@' and the space included); the
    // server's own tags can take the rest of the 8191.
    let tag_part = match raw.first() {
        Some(b'@') => raw.iter().position(|&b| b == b' ').map_or(raw.len(), |i| i + 1),
        _ => 0,
    };
    let body_len = raw.len() - tag_part;
    if body_len > MAX_BODY || tag_part > CLIENT_TAGS {
        ctx.st.metrics.c.parse_errors += 1;
        if kind == Kind::Server {
            return ignored(ctx, "an over-long line", msg.verb);
        }
        ctx.reply(Numeric::ERR_INPUTTOOLONG, &[]);
        return;
    }
    if !utf8 && kind == Kind::Client && !msg.verb.eq_ignore_ascii_case("QUIT") {
        return refuse_non_utf8(ctx, msg.verb);
    }
    let Some(index) = lookup_index(msg.verb) else {
        if kind == Kind::Server && registered && msg.verb.len() == 3 && msg.verb.bytes().all(|b| b.is_ascii_digit()) {
            // A numeric: an answer for one of our users (a remote WHOIS).
            return link::s2s::numeric(ctx, &msg);
        }
        ctx.st.metrics.c.unknown_commands += 1;
        if kind == Kind::Server {
            return ignored(ctx, "an unknown command", msg.verb);
        }
        ctx.reply(Numeric::ERR_UNKNOWNCOMMAND, &[msg.verb]);
        return;
    };
    ctx.st.metrics.command(index, raw.len() + 2);
    dispatch_as(ctx, &COMMANDS[index], &msg, kind, registered);
}

/// UTF8ONLY (005): a client's line that is not UTF-8 is refused whole, before it runs, with
/// the IRCv3 utf8-only `FAIL <command> INVALID_UTF8`, so none of it reaches anyone and the
/// client knows. Only QUIT runs anyway (its bad bytes read as U+FFFD): a client on its way out
/// is not kept. A server link's line is read with U+FFFD in place of the bad bytes instead (no
/// one there to tell), so what we pass on to clients is UTF-8 either way.
#[cold]
fn refuse_non_utf8(ctx: &mut Ctx<'_>, verb: &str) {
    let verb = if !verb.is_empty() && verb.bytes().all(|b| b.is_ascii_alphanumeric()) {
        verb.to_ascii_uppercase()
    } else {
        "*".to_string()
    };
    let why = "Message rejected, your IRC software MUST use UTF-8 encoding on this network";
    identity::fail(ctx, &verb, "INVALID_UTF8", &[], why);
}

/// Runs a known command with the handler for the connection's kind. A client's is checked
/// against its registration (451, 462) and the parameter count (461); refusals are answered.
/// A server link's runs only if its row has a server handler and is otherwise ignored, as
/// Solanum ignores what it has no handler for; too few parameters drop the link (Solanum's
/// "Insufficient parameters"), and a refusal is logged (a numeric is no answer to a server).
pub fn dispatch(ctx: &mut Ctx<'_>, spec: &Spec, msg: &Message<'_>) {
    let me = ctx.me();
    let (kind, registered) = (me.kind, me.registered);
    dispatch_as(ctx, spec, msg, kind, registered);
}

/// [`dispatch`] for a connection of `kind`, registered or not (as `run_line` read them).
#[inline]
fn dispatch_as(ctx: &mut Ctx<'_>, spec: &Spec, msg: &Message<'_>, kind: Kind, registered: bool) {
    if kind == Kind::Server {
        return from_server(ctx, spec, msg);
    }
    if !spec.for_clients {
        ctx.st.metrics.c.unknown_commands += 1;
        return ctx.reply(Numeric::ERR_UNKNOWNCOMMAND, &[spec.name]);
    }
    match (spec.when, registered) {
        (When::Registered, false) => return ctx.reply(Numeric::ERR_NOTREGISTERED, &[]),
        (When::Unregistered, true) => return ctx.reply(Numeric::ERR_ALREADYREGISTERED, &[]),
        _ => {}
    }
    if msg.params.len() < spec.min_params {
        return ctx.reply(Numeric::ERR_NEEDMOREPARAMS, &[spec.name]);
    }
    if let Err(r) = (spec.client)(ctx, msg) {
        ctx.reply_err(&r);
    }
}

/// A server link's command (see [`dispatch`]).
#[cold]
fn from_server(ctx: &mut Ctx<'_>, spec: &Spec, msg: &Message<'_>) {
    let Some(run) = spec.handler(Kind::Server) else {
        return ignored(ctx, "a command with no server handler", spec.name);
    };
    if spec.when == When::Registered && !ctx.me().registered {
        return ignored(ctx, "a command before the link is up", spec.name);
    }
    if msg.params.len() < spec.min_params {
        let why =
            format!("Insufficient parameters ({} < {}) for command '{}'", msg.params.len(), spec.min_params, spec.name);
        log::warn!("Server link [{}] dropped: {why}", ctx.me().addr);
        connection::close_later(ctx.st, ctx.conn, why);
        return;
    }
    if let Err(r) = run(ctx, msg) {
        log::debug!("Server link [{}]: {} refused with {}", ctx.me().addr, spec.name, r.numeric.as_str());
    }
}

/// What a server link sent and nothing handles: logged, not answered (an error reply to a
/// server could start an error loop between the two).
#[cold]
fn ignored(ctx: &Ctx<'_>, what: &str, verb: &str) {
    log::debug!("Server link [{}]: {what} ignored: {verb}", ctx.me().addr);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive_and_bounded() {
        assert_eq!(lookup("nick").unwrap().name, "NICK");
        assert_eq!(lookup("PiNg").unwrap().name, "PING");
        assert!(lookup("FOOBAR").is_none());
        assert!(lookup(&"X".repeat(100)).is_none());
    }

    fn client_slot(ctx: &mut Ctx<'_>, _msg: &Message<'_>) -> CmdResult {
        ctx.send(b"client slot\r\n");
        Ok(())
    }

    fn server_slot(ctx: &mut Ctx<'_>, _msg: &Message<'_>) -> CmdResult {
        ctx.send(b"server slot\r\n");
        Ok(())
    }

    /// A row with a handler in each slot, one parameter needed.
    const BOTH: Spec = spec("TEST", 1, When::Always, client_slot).with_server(server_slot);

    /// One shard, one connection (registered as `alice` when `register`), of `kind`.
    fn one(kind: Kind, register: bool) -> (crate::sim::Sim, Conn) {
        let mut sim = crate::sim::Sim::new(std::sync::Arc::new(crate::config::Config::embedded()), 1, true);
        let c = if register { sim.client(0, "alice") } else { sim.connect(0) };
        sim.shards[0].0.clients.get_mut(&c).expect("connected").kind = kind;
        sim.shards[0].1.out.clear();
        (sim, c)
    }

    /// Dispatches `line` to `row` for `conn` on shard 0, as `run_line` does after the lookup.
    fn dispatch_to(sim: &mut crate::sim::Sim, conn: Conn, row: &Spec, line: &str) {
        let (st, out) = &mut sim.shards[0];
        let mut ctx = Ctx { st, out, conn, now: std::time::Instant::now(), unix: 1 };
        dispatch(&mut ctx, row, &Message::parse(line).expect("a line"));
        ctx.flush();
    }

    #[test]
    fn slots_by_kind() {
        assert!(BOTH.handler(Kind::Client).is_some() && BOTH.handler(Kind::Server).is_some());
        assert!(spec("X", 0, When::Always, client_slot).handler(Kind::Server).is_none());
        // The client-only commands have no server handler.
        assert!(lookup("USER").unwrap().server.is_none() && lookup("LIST").unwrap().server.is_none());
    }

    #[test]
    fn a_client_runs_the_client_slot() {
        let (mut sim, c) = one(Kind::Client, true);
        dispatch_to(&mut sim, c, &BOTH, "TEST x");
        assert_eq!(sim.shards[0].1.text(c), "client slot\r\n");
    }

    #[test]
    fn a_server_link_runs_the_server_slot() {
        // Unregistered as a client: `when` is a client's rule, not a link's.
        let (mut sim, c) = one(Kind::Server, false);
        dispatch_to(&mut sim, c, &BOTH, "TEST x");
        assert_eq!(sim.shards[0].1.text(c), "server slot\r\n");
    }

    #[test]
    fn too_few_parameters_drop_a_server_link() {
        let (mut sim, c) = one(Kind::Server, true);
        dispatch_to(&mut sim, c, &BOTH, "TEST");
        let st = &sim.shards[0].0;
        assert!(st.clients[&c].closing);
        assert!(st.to_close.iter().any(|(k, why, _)| *k == c && why.starts_with("Insufficient parameters")));
        // From a client, the same line is answered with 461.
        let (mut sim, c) = one(Kind::Client, true);
        dispatch_to(&mut sim, c, &BOTH, "TEST");
        assert!(sim.shards[0].1.text(c).contains(" 461 alice TEST "));
    }

    #[test]
    fn a_server_link_gets_no_answer_where_nothing_handles() {
        // The whole input path: known commands with no server handler, an unknown one, a
        // client's command before registration. Nothing is answered, nothing runs, the link
        // stays.
        let (mut sim, c) = one(Kind::Server, true);
        let unknown = sim.shards[0].0.metrics.c.unknown_commands;
        sim.feed(0, c, b"FOOBAR y\r\nJOIN #a\r\nUSER a b c d\r\n");
        let (st, out) = &sim.shards[0];
        assert_eq!(out.text(c), "");
        assert!(!st.clients[&c].closing && !out.closed.contains(&c));
        assert!(st.channels.is_empty());
        assert_eq!(st.metrics.c.unknown_commands, unknown + 1);
    }

    #[test]
    fn a_client_is_answered_as_before() {
        let (mut sim, c) = one(Kind::Client, true);
        sim.feed(0, c, b"PING :x\r\nFOOBAR y\r\n");
        let text = sim.shards[0].1.text(c);
        let (pong, unknown) = (text.find(" PONG "), text.find(" 421 alice FOOBAR "));
        assert!(pong.is_some() && unknown.is_some() && pong < unknown, "{text}");
    }

    #[test]
    fn table_has_no_duplicates() {
        let mut names: Vec<_> = COMMANDS.iter().map(|s| s.name).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len());
    }
}
