//! Commands: one module per family, one table that says for each verb how many parameters it
//! needs and when it is allowed. The dispatcher checks that once (451, 461, 481), so handlers
//! hold only the command's meaning. Handlers write to the reply sink in [`Ctx`] and send
//! [`Env`] messages to other shards; they never touch a socket.

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
pub mod identity;
pub mod mesh;
pub mod message;
pub mod oper;
pub mod outbox;
pub mod outgoing;
pub mod query;
pub mod registration;
pub mod report;
pub mod server_info;
pub mod stats;
pub mod timers;
pub mod user_mode;

use std::sync::OnceLock;

use ahash::AHashMap;

pub use context::{numeric_line, CmdResult, Ctx, Reply};
pub use envelope::Env;
pub use outbox::{Conn, Outbox};

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

pub struct Spec {
    pub name: &'static str,
    pub min_params: usize,
    pub when: When,
    pub run: HandlerFn,
}

const fn spec(name: &'static str, min_params: usize, when: When, run: HandlerFn) -> Spec {
    Spec { name, min_params, when, run }
}

/// Every command the server knows.
pub static COMMANDS: &[Spec] = &[
    // registration and connection (registration.rs, cap.rs, connection.rs)
    spec("CAP", 1, When::Always, cap::cap),
    spec("PASS", 1, When::Unregistered, registration::pass),
    spec("NICK", 0, When::Always, registration::nick),
    spec("USER", 4, When::Unregistered, registration::user),
    spec("PING", 0, When::Always, connection::ping),
    spec("PONG", 0, When::Always, connection::pong),
    spec("QUIT", 0, When::Always, connection::quit),
    // channels (channel/*.rs)
    spec("JOIN", 1, When::Registered, channel::join::join),
    spec("PART", 1, When::Registered, channel::part::part),
    spec("KICK", 2, When::Registered, channel::kick::kick),
    spec("TOPIC", 1, When::Registered, channel::topic::topic),
    spec("MODE", 1, When::Registered, channel::mode::mode),
    spec("NAMES", 0, When::Registered, channel::names::names),
    spec("LIST", 0, When::Registered, channel::list::list),
    spec("INVITE", 0, When::Registered, channel::invite::invite),
    spec("KNOCK", 1, When::Registered, channel::knock::knock),
    // messages (message.rs)
    spec("PRIVMSG", 0, When::Registered, message::privmsg),
    spec("NOTICE", 0, When::Registered, message::notice),
    spec("TAGMSG", 1, When::Registered, message::tagmsg),
    spec("SETNAME", 1, When::Registered, identity::setname),
    // queries about users (query/*.rs)
    spec("WHO", 0, When::Registered, query::who::who),
    spec("WHOIS", 1, When::Registered, query::whois::whois),
    spec("WHOWAS", 1, When::Registered, query::whowas::whowas),
    spec("ISON", 1, When::Registered, query::userhost::ison),
    spec("USERHOST", 1, When::Registered, query::userhost::userhost),
    spec("AWAY", 0, When::Registered, query::away::away),
    spec("MONITOR", 1, When::Registered, query::monitor::monitor),
    // operators (oper/*.rs)
    spec("OPER", 1, When::Registered, oper::oper::oper),
    spec("KILL", 1, When::Registered, oper::kill::kill),
    spec("WALLOPS", 1, When::Registered, oper::wallops::wallops),
    spec("REHASH", 0, When::Registered, oper::server::rehash),
    spec("DIE", 0, When::Registered, oper::server::die),
    spec("RESTART", 0, When::Registered, oper::server::restart),
    spec("KLINE", 1, When::Registered, oper::bans::kline),
    spec("UNKLINE", 1, When::Registered, oper::bans::unkline),
    spec("DLINE", 1, When::Registered, oper::bans::dline),
    spec("UNDLINE", 1, When::Registered, oper::bans::undline),
    // server queries (server_info.rs)
    spec("MOTD", 0, When::Registered, server_info::motd),
    spec("LUSERS", 0, When::Registered, server_info::lusers),
    spec("VERSION", 0, When::Registered, server_info::version),
    spec("TIME", 0, When::Registered, server_info::time),
    spec("ADMIN", 0, When::Registered, server_info::admin),
    spec("INFO", 0, When::Registered, server_info::info),
    spec("LINKS", 0, When::Registered, server_info::links),
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

/// Runs one complete line from a client.
pub fn run_line(ctx: &mut Ctx<'_>, raw: &[u8]) {
    let text = String::from_utf8_lossy(raw);
    let msg = match Message::parse(&text) {
        Ok(m) => m,
        Err(ParseError::Empty) => return,
        Err(ParseError::NoVerb) => {
            ctx.st.metrics.c.parse_errors += 1;
            return;
        }
    };
    // labeled-response: every reply to this command carries the label (delivery::reply holds
    // them until the command is complete).
    if delivery::labels(ctx.me().caps) {
        if let Some(label) = msg.tag("label").filter(|l| !l.is_empty()) {
            ctx.me_mut().label = Some(label.into_owned());
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
        ctx.reply(Numeric::ERR_INPUTTOOLONG, &[]);
        return;
    }
    let Some(index) = lookup_index(msg.verb) else {
        ctx.st.metrics.c.unknown_commands += 1;
        ctx.reply(Numeric::ERR_UNKNOWNCOMMAND, &[msg.verb]);
        return;
    };
    let spec = &COMMANDS[index];
    ctx.st.metrics.command(index, raw.len() + 2);
    let registered = ctx.me().registered;
    match (spec.when, registered) {
        (When::Registered, false) => return ctx.reply(Numeric::ERR_NOTREGISTERED, &[]),
        (When::Unregistered, true) => return ctx.reply(Numeric::ERR_ALREADYREGISTERED, &[]),
        _ => {}
    }
    if msg.params.len() < spec.min_params {
        return ctx.reply(Numeric::ERR_NEEDMOREPARAMS, &[spec.name]);
    }
    if let Err(r) = (spec.run)(ctx, &msg) {
        ctx.reply_err(&r);
    }
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

    #[test]
    fn table_has_no_duplicates() {
        let mut names: Vec<_> = COMMANDS.iter().map(|s| s.name).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len());
    }
}
