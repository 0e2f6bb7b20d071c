//! CHATHISTORY (IRCv3 `draft/chathistory`, with `draft/event-playback`): LATEST, BEFORE, AFTER,
//! AROUND, BETWEEN and TARGETS. A channel's history is kept by its home shard, a user's private
//! conversations by the shard that owns the user's key (`a:account`, else the connection's
//! `u:UID`); a client
//! on another shard asks there and waits for the answer (its further input waits too, so its
//! replies stay in order). The answer comes back as entries and is rendered here, with the
//! asker's capabilities, in a `chathistory` batch. `record.rs`: what is kept, and where.

pub mod accounts;
pub mod codec;
pub mod record;
pub mod store;
pub mod sync;

use std::sync::Arc;
use std::time::Instant;

use store::{Bound, Entry, Query, Sub};

use super::capabilities::bits;
use super::envelope::{Answer, Env, Request};
use super::outbox::{Conn, Outbox};
use super::{CmdResult, Ctx};
use crate::local::client::Wait;
use crate::local::shard::ShardState;
use crate::proto::names::is_channel_name;
use crate::proto::{Folded, Line, Message};

/// Which log a query reads.
#[derive(Clone, Debug)]
pub enum Source {
    Channel(Folded),
    /// A user's log (its key), and the conversation with `peer` (folded nick or account).
    User {
        key: Folded,
        peer: Folded,
    },
}

/// A question for the shard that keeps a log.
#[derive(Clone, Debug)]
pub enum Ask {
    /// Entries of one target; `name`: the target as the client wrote it (the batch names it).
    Entries { source: Source, query: Query, name: Arc<str> },
    /// TARGETS: the asker's channels with their latest message (known to the asker's shard),
    /// and its private conversations, to be added by the owner of its key, within `(from, to)`.
    Targets { key: Option<Folded>, channels: Vec<(Arc<str>, u64)>, from: u64, to: u64, limit: usize, oldest: u64 },
}

/// What comes back.
#[derive(Debug)]
pub enum Found {
    Entries { name: Arc<str>, entries: Vec<Entry> },
    Targets(Vec<(Arc<str>, u64)>),
}

pub fn chathistory(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let sub = msg.params[0].to_ascii_uppercase();
    if !ctx.st.cfg.history.enabled {
        fail(ctx, "UNKNOWN_COMMAND", &[&sub], "History is not kept on this server");
        return Ok(());
    }
    let max = ctx.st.cfg.history.max_query;
    let oldest = oldest(ctx.st, ctx.out.unix_ms());
    let events = ctx.me().caps & bits::EVENT_PLAYBACK != 0;
    let p = |i: usize| msg.params.get(i).copied();
    let ask = match sub.as_str() {
        "TARGETS" => {
            let (Some(Bound::Time(a)), Some(Bound::Time(b)), Some(limit)) =
                (p(1).and_then(bound), p(2).and_then(bound), p(3).and_then(limit_of))
            else {
                return invalid_params(ctx, &sub);
            };
            let (from, to) = (a.min(b), a.max(b));
            let uid = ctx.me().uid;
            let channels = ctx
                .st
                .directory
                .get(&uid)
                .map(|u| u.channels.clone())
                .unwrap_or_default()
                .iter()
                .filter_map(|c| ctx.st.channels.get(c))
                .filter(|v| v.last_message > 0)
                .map(|v| (v.ch.name.clone(), v.last_message))
                .collect();
            let key = record::user_key(ctx.st, uid);
            Ask::Targets { key, channels, from, to, limit: limit.min(max), oldest }
        }
        "LATEST" | "BEFORE" | "AFTER" | "AROUND" | "BETWEEN" => {
            let between = sub == "BETWEEN";
            let (Some(target), Some(a)) = (p(1), p(2).and_then(bound)) else {
                return invalid_params(ctx, &sub);
            };
            let (b, limit) = if between { (p(3).and_then(bound), p(4)) } else { (Some(Bound::Star), p(3)) };
            let (Some(b), Some(limit)) = (b, limit.and_then(limit_of)) else {
                return invalid_params(ctx, &sub);
            };
            let sub_kind = match sub.as_str() {
                "LATEST" => Sub::Latest,
                "BEFORE" => Sub::Before,
                "AFTER" => Sub::After,
                "AROUND" => Sub::Around,
                _ => Sub::Between,
            };
            // `*` is LATEST's alone; the others need a point in the log.
            if (sub_kind != Sub::Latest && a == Bound::Star) || (between && b == Bound::Star) {
                return invalid_params(ctx, &sub);
            }
            let Some(source) = source_of(ctx, target) else {
                if !is_channel_name(target) && crate::proto::names::valid_nick(target, usize::MAX) {
                    // Without an account nothing private is kept: an empty answer.
                    let found = Found::Entries { name: target.into(), entries: Vec::new() };
                    let bytes = render(ctx.st, ctx.conn, found);
                    ctx.send(&bytes);
                    return Ok(());
                }
                fail(ctx, "INVALID_TARGET", &[&sub, target], "Messages could not be retrieved");
                return Ok(());
            };
            let query = Query { sub: sub_kind, a, b, limit: limit.min(max), events, oldest };
            // The batch names a channel as the channel is named.
            let name: Arc<str> = match &source {
                Source::Channel(c) => ctx.st.channels.get(c).map_or_else(|| target.into(), |v| v.ch.name.clone()),
                Source::User { .. } => target.into(),
            };
            Ask::Entries { source, query, name }
        }
        _ => {
            fail(ctx, "INVALID_PARAMS", &[&sub], "Unknown subcommand");
            return Ok(());
        }
    };
    let keeper = keeper(ctx.st, &ask);
    if keeper == ctx.st.me {
        let found = answer(ctx.st, ask);
        let bytes = render(ctx.st, ctx.conn, found);
        ctx.send(&bytes);
    } else {
        let conn = ctx.conn;
        ctx.out.to_shard(keeper, Env::Request(Request::History { conn, ask: Box::new(ask) }));
        ctx.me_mut().wait = Some(Wait::Answer);
    }
    Ok(())
}

/// Whose log a target names, if this client may read it: a channel it is in, or a nick.
fn source_of(ctx: &Ctx<'_>, target: &str) -> Option<Source> {
    let uid = ctx.me().uid;
    if is_channel_name(target) {
        let folded = ctx.st.cm.fold(target);
        let view = ctx.st.channels.get(&folded)?;
        view.ch.status(&uid)?;
        return Some(Source::Channel(folded));
    }
    if !crate::proto::names::valid_nick(target, usize::MAX) {
        return None;
    }
    let key = record::user_key(ctx.st, uid)?;
    Some(Source::User { key, peer: ctx.st.cm.fold(target) })
}

/// The shard that keeps what an ask reads.
fn keeper(st: &ShardState, ask: &Ask) -> usize {
    let key = match ask {
        Ask::Entries { source: Source::Channel(c), .. } => c,
        Ask::Entries { source: Source::User { key, .. }, .. } => key,
        Ask::Targets { key: Some(k), .. } => k,
        Ask::Targets { key: None, .. } => return st.me,
    };
    key.owner(st.cores)
}

/// Entries older than this (ms since the epoch) are no longer served.
pub fn oldest(st: &ShardState, now_ms: u64) -> u64 {
    let age = st.cfg.history.max_age.as_millis() as u64;
    if age == 0 {
        0
    } else {
        now_ms.saturating_sub(age)
    }
}

/// An ask answered from this shard's logs.
pub fn answer(st: &ShardState, ask: Ask) -> Found {
    match ask {
        Ask::Entries { source, query, name } => {
            let entries = match &source {
                Source::Channel(c) => st.history.channels.get(c).map(|l| l.select(&query, None)),
                Source::User { key, peer } => st.history.users.get(key).map(|l| l.select(&query, Some(peer))),
            };
            Found::Entries { name, entries: entries.unwrap_or_default() }
        }
        Ask::Targets { key, mut channels, from, to, limit, oldest } => {
            if let Some(log) = key.and_then(|k| st.history.users.get(&k)) {
                channels.extend(log.peers(oldest).into_iter().map(|(p, t)| (p.nick.clone(), t)));
            }
            channels.retain(|(_, t)| *t > from && *t < to && *t >= oldest);
            channels.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            channels.truncate(limit);
            Found::Targets(channels)
        }
    }
}

/// A request from another shard's client: answered back to it.
pub fn on_request(st: &mut ShardState, out: &mut dyn Outbox, from: usize, conn: Conn, ask: Ask) {
    let found = answer(st, ask);
    out.to_shard(from, Env::Answer(Answer::History { conn, found: Box::new(found) }));
}

/// The answer for a waiting client of this shard.
pub fn on_answer(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, found: Found, now: Instant, unix: u64) {
    let Some(c) = st.clients.get_mut(&conn) else { return };
    if c.wait == Some(Wait::Answer) {
        c.wait = None;
    }
    let bytes = render(st, conn, found);
    super::delivery::reply(st, out, conn, &bytes);
    super::connection::resume(st, out, conn, now, unix);
}

/// The reply: a `chathistory` (or `draft/chathistory-targets`) batch when the client has
/// `batch`, else the lines alone.
fn render(st: &mut ShardState, conn: Conn, found: Found) -> Vec<u8> {
    let Some(caps) = st.clients.get(&conn).map(|c| c.caps) else { return Vec::new() };
    let mut lines = Vec::new();
    match found {
        Found::Entries { name, entries } => {
            for e in entries {
                e.line.render(caps, &mut lines);
            }
            super::delivery::in_batch(st, conn, "ch", "chathistory", &[&name], &lines)
        }
        Found::Targets(targets) => {
            let server = st.cfg.server.name.clone();
            for (name, t) in targets {
                let time = crate::clock::format_iso_ms(t);
                let l = Line::after(lines).source(&server).verb("CHATHISTORY").param("TARGETS").param(&name);
                lines = l.param(&time).finish();
            }
            super::delivery::in_batch(st, conn, "ch", "draft/chathistory-targets", &[], &lines)
        }
    }
}

/// `*`, `msgid=...` or `timestamp=...`.
fn bound(p: &str) -> Option<Bound> {
    if p == "*" {
        return Some(Bound::Star);
    }
    let (kind, value) = p.split_once('=')?;
    match kind {
        "msgid" if !value.is_empty() => Some(Bound::Msgid(value.into())),
        "timestamp" => crate::clock::parse_iso_ms(value).map(Bound::Time),
        _ => None,
    }
}

fn limit_of(p: &str) -> Option<usize> {
    p.parse::<usize>().ok()
}

fn invalid_params(ctx: &mut Ctx<'_>, sub: &str) -> CmdResult {
    fail(ctx, "INVALID_PARAMS", &[sub], "Invalid parameters");
    Ok(())
}

fn fail(ctx: &mut Ctx<'_>, code: &str, context: &[&str], text: &str) {
    super::identity::fail(ctx, "CHATHISTORY", code, context, text);
}

/// The 005 tokens history adds.
pub fn isupport(cfg: &crate::config::Config) -> Vec<String> {
    if !cfg.history.enabled {
        return Vec::new();
    }
    vec![format!("CHATHISTORY={}", cfg.history.max_query), "MSGREFTYPES=msgid,timestamp".to_string()]
}
