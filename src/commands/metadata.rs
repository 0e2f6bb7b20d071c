//! METADATA (IRCv3 draft metadata): key/value pairs on users and channels — GET, LIST, SET,
//! CLEAR, SUB, UNSUB, SUBS, SYNC — and notifications to subscribers.
//!
//! A user's metadata lives in its directory entry, so every shard answers GET and LIST from
//! its copy; a change goes from the user's shard to every other (as AWAY does), and each
//! tells its own clients that share a channel with the user and subscribed to the key. A
//! channel's metadata is channel state: operators change it through the channel's home like
//! a TOPIC (numbered, applied on every shard in the home's order), and each shard tells its
//! own members that subscribed. Subscriptions belong to the connection. Changes and what a
//! subscriber hears are `761 RPL_KEYVALUE` / `766 RPL_KEYNOTSET`.

use std::sync::Arc;

use super::capabilities::bits;
use super::channel::{submit, ChanRequest};
use super::envelope::{Env, Ordered};
use super::outbox::{Conn, Outbox};
use super::{numeric_line, CmdResult, Ctx, Reply};
use crate::local::shard::ShardState;
use crate::proto::names::is_channel_name;
use crate::proto::{Folded, Line, Message, Numeric};
use crate::state::channel::{Channel, Flags, Mutation};
use crate::state::Uid;

/// Subscriptions per connection, keys per target, and bytes per value (the capability's value).
pub const MAX_SUBS: usize = 100;
pub const MAX_KEYS: usize = 100;
pub const MAX_VALUE_BYTES: usize = 300;

/// What METADATA is about.
enum Target {
    User(Uid, Arc<str>),
    Channel(Folded, Arc<str>),
}

pub fn metadata(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let (target, sub) = (msg.params[0], msg.params[1].to_ascii_uppercase());
    let rest = &msg.params[2..];
    match sub.as_str() {
        "SUB" => return subscribe(ctx, rest, true),
        "UNSUB" => return subscribe(ctx, rest, false),
        "SUBS" => {
            // In a `metadata-subs` batch (no parameters), even when empty (the spec's SUBS).
            let subs = ctx.me().rare().subs.clone();
            let mut lines = Vec::new();
            for chunk in subs.chunks(10) {
                let mut p: Vec<&str> = chunk.iter().map(|k| &**k).collect();
                p.push("");
                lines.extend(numeric_line(
                    ctx.server(),
                    ctx.me().target(),
                    Numeric::RPL_METADATASUBS,
                    &p[..p.len() - 1],
                ));
            }
            let batch = super::delivery::in_batch(ctx.st, ctx.conn, "ms", "metadata-subs", &[], &lines);
            ctx.send(&batch);
            return Ok(());
        }
        _ => {}
    }
    if !ctx.me().registered {
        return before_connect(ctx, target, &sub, rest);
    }
    let uid = ctx.me().uid;
    let Some(t) = resolve(ctx.st, uid, target) else {
        fail(ctx, "INVALID_TARGET", &[target], "Invalid metadata target");
        return Ok(());
    };
    let name = match &t {
        Target::User(_, n) | Target::Channel(_, n) => n.clone(),
    };
    match sub.as_str() {
        "GET" | "LIST" | "SYNC" => {
            if !may_read(ctx.st, uid, &t) {
                let key = if sub == "GET" { rest.first().copied().unwrap_or("*") } else { "*" };
                fail(ctx, "KEY_NO_PERMISSION", &[&name, key], "You may not see that");
                return Ok(());
            }
            let map = values(ctx.st, &t);
            let me = ctx.me().target().to_string();
            let server = ctx.server().to_string();
            let mut lines = Vec::new();
            match sub.as_str() {
                "GET" => {
                    for key in rest {
                        if !valid_key(key) {
                            fail(ctx, "KEY_INVALID", &[key], "Invalid key");
                            continue;
                        }
                        match map.get(*key) {
                            Some(v) => lines.extend(key_value(&server, &me, &name, key, v)),
                            None => lines.extend(key_not_set(&server, &me, &name, key)),
                        }
                    }
                }
                "LIST" => {
                    for (k, v) in &map {
                        lines.extend(key_value(&server, &me, &name, k, v));
                    }
                }
                _ => {
                    // SYNC: the subscribed keys of the target (and of a channel's members, for
                    // a member: NAMES shows an outsider no +i member either).
                    let subs = ctx.me().rare().subs.clone();
                    lines = match &t {
                        Target::Channel(c, _) if ctx.st.channels.get(c).and_then(|v| v.ch.status(&uid)).is_none() => {
                            let own = values(ctx.st, &t);
                            own.iter()
                                .filter(|(k, _)| subs.iter().any(|s| s == *k))
                                .flat_map(|(k, v)| key_value(&server, &me, &name, k, v))
                                .collect()
                        }
                        _ => sync_lines(ctx.st, &server, &me, &t, &subs, None),
                    };
                }
            }
            let batch = in_batch(ctx.st, ctx.conn, &name, lines);
            ctx.send(&batch);
        }
        "SET" | "CLEAR" => set(ctx, t, &name, sub == "CLEAR", rest.first().copied(), rest.get(1).copied()),
        _ => fail(ctx, "SUBCOMMAND_INVALID", &[&sub], "Unknown METADATA subcommand"),
    }
    Ok(())
}

/// Before registration (`before-connect`): the client's own keys (`*`), kept on the connection
/// until the user exists, which then starts with them.
fn before_connect(ctx: &mut Ctx<'_>, target: &str, sub: &str, rest: &[&str]) -> CmdResult {
    if target != "*" {
        fail(ctx, "INVALID_TARGET", &[target], "Only * before registration");
        return Ok(());
    }
    let (server, me) = (ctx.server().to_string(), ctx.me().target().to_string());
    let map = ctx.me().rare().early_metadata.as_deref().cloned().unwrap_or_default();
    match sub {
        "GET" | "LIST" => {
            let mut lines = Vec::new();
            for (k, v) in map.iter().filter(|(k, _)| sub == "LIST" || rest.contains(&&***k)) {
                lines.extend(key_value(&server, &me, "*", k, v));
            }
            if sub == "GET" {
                for k in rest.iter().filter(|k| !map.contains_key(**k)) {
                    lines.extend(key_not_set(&server, &me, "*", k));
                }
            }
            let batch = in_batch(ctx.st, ctx.conn, "*", lines);
            ctx.send(&batch);
        }
        "SET" => {
            let (Some(key), value) = (rest.first().copied(), rest.get(1).copied().filter(|v| !v.is_empty())) else {
                fail(ctx, "KEY_INVALID", &["*"], "Invalid key");
                return Ok(());
            };
            if !valid_key(key) {
                fail(ctx, "KEY_INVALID", &[key], "Invalid key");
            } else if value.is_some_and(|v| v.len() > MAX_VALUE_BYTES) {
                fail(ctx, "INVALID_VALUE", &[key], "Value too long");
            } else if value.is_some() && !map.contains_key(key) && map.len() >= MAX_KEYS {
                fail(ctx, "LIMIT_REACHED", &["*"], "Too many keys");
            } else if value.is_none() && !map.contains_key(key) {
                fail(ctx, "KEY_NOT_SET", &["*", key], "Key not set");
            } else {
                crate::state::set_metadata(&mut ctx.me_mut().rare_mut().early_metadata, key, value);
                let line = match value {
                    Some(v) => key_value(&server, &me, "*", key, v),
                    None => key_not_set(&server, &me, "*", key),
                };
                ctx.send(&line);
            }
        }
        "CLEAR" => {
            let lines: Vec<u8> = map.keys().flat_map(|k| key_not_set(&server, &me, "*", k)).collect();
            ctx.me_mut().rare_mut().early_metadata = None;
            let batch = in_batch(ctx.st, ctx.conn, "*", lines);
            ctx.send(&batch);
        }
        _ => fail(ctx, "SUBCOMMAND_INVALID", &[sub], "Not before registration"),
    }
    Ok(())
}

/// A user's keys, to the other servers of the network (`ENCAP * METADATA`, as a change is).
pub fn announce(st: &mut ShardState, out: &mut dyn Outbox, u: &crate::state::user::User) {
    for (k, v) in u.metadata.iter().flat_map(|m| m.iter()) {
        let line = Line::new().source(u.uid.as_str()).verb("ENCAP").param("*").param("METADATA").param(k).trailing(v);
        super::link::to_all_links(st, out, None, line.finish().into());
    }
}

/// At registration, for a client with the capability: its keys (those set before it), in a
/// `metadata` batch named for its nick — an empty batch when it has none, as the spec says.
/// Nothing for a client without the capability.
pub fn own_keys(st: &mut ShardState, conn: Conn, u: &crate::state::user::User) -> Vec<u8> {
    if st.clients.get(&conn).is_none_or(|c| c.caps & bits::METADATA == 0) {
        return Vec::new();
    }
    let server = st.cfg.server.name.clone();
    let map = u.metadata.iter().flat_map(|m| m.iter());
    let lines: Vec<u8> = map.flat_map(|(k, v)| key_value(&server, &u.nick, &u.nick, k, v)).collect();
    in_batch(st, conn, &u.nick, lines)
}

fn resolve(st: &ShardState, me: Uid, target: &str) -> Option<Target> {
    if target == "*" {
        let u = st.directory.get(&me)?;
        return Some(Target::User(me, u.nick.clone()));
    }
    if is_channel_name(target) {
        let folded = st.cm.fold(target);
        let v = st.channels.get(&folded)?;
        // A secret or private channel does not exist for those outside it.
        let hidden = [Flags::SECRET, Flags::PRIVATE].into_iter().any(|f| v.ch.flags.has(f));
        if hidden && v.ch.status(&me).is_none() {
            return None;
        }
        return Some(Target::Channel(folded, v.ch.name.clone()));
    }
    let u = st.directory.by_nick(&st.cm.fold(target))?;
    Some(Target::User(u.uid, u.nick.clone()))
}

/// A channel's metadata is for its members, and for anyone when the channel is public.
fn may_read(st: &ShardState, uid: Uid, t: &Target) -> bool {
    match t {
        Target::User(..) => true,
        Target::Channel(c, _) => st.channels.get(c).is_some_and(|v| {
            v.ch.status(&uid).is_some()
                || ![Flags::SECRET, Flags::PRIVATE, Flags::INVITE_ONLY].into_iter().any(|f| v.ch.flags.has(f))
        }),
    }
}

fn values(st: &ShardState, t: &Target) -> std::collections::BTreeMap<Box<str>, Box<str>> {
    let m = match t {
        Target::User(uid, _) => st.directory.get(uid).and_then(|u| u.metadata.as_deref()),
        Target::Channel(c, _) => st.channels.get(c).and_then(|v| v.ch.metadata.as_deref()),
    };
    m.cloned().unwrap_or_default()
}

/// Keys are lower-case letters, digits and `_ . / : -`, not starting with `:` (the spec's rule).
pub fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with(':')
        && k.len() <= 64
        && k.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'/' | b':' | b'-'))
}

fn key_value(server: &str, to: &str, target: &str, key: &str, value: &str) -> Vec<u8> {
    numeric_line(server, to, Numeric::RPL_KEYVALUE, &[target, key, "*", value])
}

fn key_not_set(server: &str, to: &str, target: &str, key: &str) -> Vec<u8> {
    numeric_line(server, to, Numeric::RPL_KEYNOTSET, &[target, key])
}

/// Lines in a `metadata` batch for a client with `batch` (else as they are).
fn in_batch(st: &mut ShardState, conn: Conn, target: &str, lines: Vec<u8>) -> Vec<u8> {
    super::delivery::in_batch(st, conn, "md", "metadata", &[target], &lines)
}

fn subscribe(ctx: &mut Ctx<'_>, keys: &[&str], on: bool) -> CmdResult {
    let mut done = Vec::new();
    for key in keys {
        if !valid_key(key) {
            fail(ctx, "KEY_INVALID", &[key], "Invalid key");
            continue;
        }
        let subs = &mut ctx.me_mut().rare_mut().subs;
        let has = subs.iter().any(|k| &**k == *key);
        if on && !has {
            if subs.len() >= MAX_SUBS {
                fail(ctx, "TOO_MANY_SUBS", &[key], "Too many subscriptions");
                continue;
            }
            subs.push((*key).into());
        } else if !on && has {
            subs.retain(|k| &**k != *key);
        }
        done.push(*key);
    }
    if !done.is_empty() {
        let n = if on { Numeric::RPL_METADATASUBOK } else { Numeric::RPL_METADATAUNSUBOK };
        let mut p = done.clone();
        p.push("");
        let line = numeric_line(ctx.server(), ctx.me().target(), n, &p[..p.len() - 1]);
        ctx.send(&line);
    }
    Ok(())
}

fn set(ctx: &mut Ctx<'_>, t: Target, name: &str, clear: bool, key: Option<&str>, value: Option<&str>) {
    let uid = ctx.me().uid;
    let key_shown = if clear { "*" } else { key.unwrap_or("*") };
    let allowed = match &t {
        Target::User(u, _) => *u == uid,
        Target::Channel(c, _) => ctx.st.channels.get(c).and_then(|v| v.ch.status(&uid)).is_some_and(|s| s.is_op()),
    };
    if !allowed {
        fail(ctx, "KEY_NO_PERMISSION", &[name, key_shown], "You may not change that");
        return;
    }
    let changes: Vec<(Box<str>, Option<Box<str>>)> = if clear {
        values(ctx.st, &t).into_keys().map(|k| (k, None)).collect()
    } else {
        let Some(key) = key.filter(|k| valid_key(k)) else {
            fail(ctx, "KEY_INVALID", &[key.unwrap_or("*")], "Invalid key");
            return;
        };
        let value = value.filter(|v| !v.is_empty());
        if value.is_some_and(|v| v.len() > MAX_VALUE_BYTES) {
            fail(ctx, "INVALID_VALUE", &[key], "Value too long");
            return;
        }
        let map = values(ctx.st, &t);
        if value.is_some() && !map.contains_key(key) && map.len() >= MAX_KEYS {
            fail(ctx, "LIMIT_REACHED", &[name], "Too many keys");
            return;
        }
        // Removing a key that is not there fails (a channel's, as this shard knows it now).
        if value.is_none() && !map.contains_key(key) {
            fail(ctx, "KEY_NOT_SET", &[name, key], "Key not set");
            return;
        }
        vec![(key.into(), value.map(Into::into))]
    };
    let me = ctx.me().target().to_string();
    let server = ctx.server().to_string();
    match t {
        Target::User(..) => {
            let mut lines = Vec::new();
            for (k, v) in &changes {
                user_changed(ctx.st, ctx.out, uid, k, v.as_deref());
                super::delivery::broadcast(ctx.st, ctx.out, || {
                    Env::Ordered(Ordered::UserMetadata { uid, key: k.clone(), value: v.clone() })
                });
                // The other servers of the network (rustircd ones take it; others pass it on).
                let l = Line::new().source(uid.as_str()).verb("ENCAP").param("*").param("METADATA").param(k);
                let l = match v {
                    Some(v) => l.trailing(v),
                    None => l,
                };
                super::link::to_all_links(ctx.st, ctx.out, None, l.finish().into());
                match v {
                    Some(v) => lines.extend(key_value(&server, &me, name, k, v)),
                    None => lines.extend(key_not_set(&server, &me, name, k)),
                }
            }
            let lines = if clear { in_batch(ctx.st, ctx.conn, name, lines) } else { lines };
            ctx.send(&lines);
        }
        Target::Channel(..) => {
            let Some(mask) = ctx.st.directory.get(&uid).map(|u| Arc::<str>::from(u.mask())) else { return };
            if clear {
                // The answer now (a batch: one 766 per key), the change through the home.
                let lines: Vec<u8> = changes.iter().flat_map(|(k, _)| key_not_set(&server, &me, name, k)).collect();
                let lines = in_batch(ctx.st, ctx.conn, name, lines);
                ctx.send(&lines);
            }
            if !changes.is_empty() {
                submit(ctx, vec![ChanRequest::Metadata { name: name.into(), mask, changes, answer: !clear }]);
            }
        }
    }
}

/// A channel change decided: the mutation, the line its members see, the setter's answer.
type Decided = Result<(Mutation, Arc<[u8]>, Vec<Reply>), Vec<Reply>>;

/// At a channel's home: may this user change the channel's metadata? The change, and the
/// setter's answer (`answer`: 761 or 766 for each key).
pub fn decide(ch: &Channel, uid: Uid, changes: Vec<(Box<str>, Option<Box<str>>)>, answer: bool) -> Decided {
    if !ch.status(&uid).is_some_and(|s| s.is_op()) {
        return Err(vec![crate::err!(ERR_CHANOPRIVSNEEDED, ch.name)]);
    }
    let notes = if answer {
        changes
            .iter()
            .map(|(k, v)| match v {
                Some(v) => Reply::new(Numeric::RPL_KEYVALUE, &[&ch.name, k, "*", v]),
                None => Reply::new(Numeric::RPL_KEYNOTSET, &[&ch.name, k]),
            })
            .collect()
    } else {
        Vec::new()
    };
    // Nobody is shown a line: subscribers are told by each shard as it applies the change.
    Ok((Mutation::Metadata(changes), Arc::from(&b""[..]), notes))
}

/// A user's metadata changed (here, or on its shard): the copy updated, and this shard's
/// subscribers who share a channel with it told.
pub fn user_changed(st: &mut ShardState, out: &mut dyn Outbox, uid: Uid, key: &str, value: Option<&str>) {
    let Some(u) = st.directory.get_mut(&uid) else { return };
    if !crate::state::set_metadata(&mut u.metadata, key, value) {
        return;
    }
    let nick = u.nick.clone();
    let observers = super::inbox::observers(st, uid, bits::METADATA);
    tell(st, out, &observers, &nick, key, value);
}

/// A channel's metadata changed here: its members who subscribed are told (but the setter,
/// which has its answer).
pub fn channel_changed(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    chan: &Folded,
    changes: &[(Box<str>, Option<Box<str>>)],
    skip: Option<Conn>,
) {
    let Some(view) = st.channels.get(chan) else { return };
    let name = view.ch.name.clone();
    let members: Vec<Conn> = view.local.iter().map(|(_, c)| *c).filter(|c| Some(*c) != skip).collect();
    for (k, v) in changes {
        tell(st, out, &members, &name, k, v.as_deref());
    }
}

fn tell(st: &mut ShardState, out: &mut dyn Outbox, conns: &[Conn], target: &str, key: &str, value: Option<&str>) {
    let server = st.cfg.server.name.clone();
    for &conn in conns {
        let Some(c) = st.clients.get(&conn) else { continue };
        if c.caps & bits::METADATA == 0 || !c.rare().subs.iter().any(|k| &**k == key) {
            continue;
        }
        let me = c.target().to_string();
        let line = match value {
            Some(v) => key_value(&server, &me, target, key, v),
            None => key_not_set(&server, &me, target, key),
        };
        super::delivery::to_conn(st, out, conn, &line);
    }
}

/// The subscribed keys of a target: a user's, or a channel's and its members' (but `skip`'s).
fn sync_lines(st: &ShardState, server: &str, me: &str, t: &Target, subs: &[Box<str>], skip: Option<Uid>) -> Vec<u8> {
    let mut lines = Vec::new();
    let mut add = |target: &str, m: Option<&std::collections::BTreeMap<Box<str>, Box<str>>>| {
        for (k, v) in m.into_iter().flatten() {
            if subs.iter().any(|s| s == k) {
                lines.extend(key_value(server, me, target, k, v));
            }
        }
    };
    match t {
        Target::User(uid, nick) => add(nick, st.directory.get(uid).and_then(|u| u.metadata.as_deref())),
        Target::Channel(c, name) => {
            let Some(v) = st.channels.get(c) else { return lines };
            add(name, v.ch.metadata.as_deref());
            for uid in v.ch.members.keys().filter(|u| Some(**u) != skip) {
                if let Some(u) = st.directory.get(uid) {
                    add(&u.nick, u.metadata.as_deref());
                }
            }
        }
    }
    lines
}

/// After a JOIN: what the joiner subscribed to of the channel and its members, in a batch.
pub fn on_join(st: &mut ShardState, conn: Conn, chan: &Folded) -> Vec<u8> {
    let Some(c) = st.clients.get(&conn) else { return Vec::new() };
    if c.caps & bits::METADATA == 0 || c.rare().subs.is_empty() {
        return Vec::new();
    }
    let (me, subs, uid) = (c.target().to_string(), c.rare().subs.clone(), c.uid);
    let Some(view) = st.channels.get(chan) else { return Vec::new() };
    let t = Target::Channel(chan.clone(), view.ch.name.clone());
    let server = st.cfg.server.name.clone();
    // Not its own keys: it knows them.
    let lines = sync_lines(st, &server, &me, &t, &subs, Some(uid));
    if lines.is_empty() {
        return lines;
    }
    let name = view_name(st, chan);
    in_batch(st, conn, &name, lines)
}

fn view_name(st: &ShardState, chan: &Folded) -> String {
    st.channels.get(chan).map_or_else(|| chan.as_str().to_string(), |v| v.ch.name.to_string())
}

/// WHOIS: 760 for each key of the user's metadata.
pub fn whois_lines(st: &ShardState, server: &str, asker: &str, target: Uid) -> Vec<u8> {
    let Some(u) = st.directory.get(&target) else { return Vec::new() };
    let mut out = Vec::new();
    for (k, v) in u.metadata.iter().flat_map(|m| m.iter()) {
        out.extend(numeric_line(server, asker, Numeric::RPL_WHOISKEYVALUE, &[&u.nick, k, "*", v]));
    }
    out
}

fn fail(ctx: &mut Ctx<'_>, code: &str, context: &[&str], text: &str) {
    super::identity::fail(ctx, "METADATA", code, context, text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_spec() {
        for ok in ["display-name", "avatar", "a.b/c:d_e-1"] {
            assert!(valid_key(ok), "{ok}");
        }
        for bad in ["", "Display", "a b", ":x", "ü", &"k".repeat(65)] {
            assert!(!valid_key(bad), "{bad}");
        }
    }

    #[test]
    fn metadata_sets_and_removes() {
        let mut m: crate::state::Metadata = None;
        assert!(crate::state::set_metadata(&mut m, "a", Some("1")));
        assert!(!crate::state::set_metadata(&mut m, "a", Some("1")));
        assert!(crate::state::set_metadata(&mut m, "a", Some("2")));
        assert!(crate::state::set_metadata(&mut m, "a", None));
        assert!(m.is_none(), "an empty map is dropped");
        assert!(!crate::state::set_metadata(&mut m, "a", None));
    }
}
