//! WHO: `WHO <mask> [o][%<fields>[,<token>]]` — 352 (or 354 with WHOX fields), then 315.
//! The mask is a channel, or matched against nick, user, host, server and realname. Invisible
//! users are listed only to those who share a channel with them.
//!
//! A long reply (`WHO *` on a big network: 5,000 rows, 340 KB) is written a piece at a time:
//! [`PIECE`] rows, then the rest waits until the client's queue has drained below
//! [`LOW_WATER`] (`Outbox::when_drained`), so no loop turn builds more than one piece and a
//! client that reads slowly holds little. The client's next command waits for the 315, and each
//! piece costs flood-control tokens (one per [`ROWS_PER_TOKEN`] rows). Users are listed as they
//! are when their piece is written; one who left meanwhile is skipped. A labeled command's
//! pieces are held and sent whole at the end, in its `labeled-response` batch.

use std::time::Instant;

use super::super::outbox::{Conn, Outbox};
use super::super::{CmdResult, Ctx};
use crate::commands::numeric_line;
use crate::local::client::Wait;
use crate::local::shard::ShardState;
use crate::proto::names::is_channel_name;
use crate::proto::{mask, Folded, Line, Message, Numeric};
use crate::state::channel::Status;
use crate::state::{Uid, User, UserModes};

/// Rows per piece of a long reply (about 12 KB).
const PIECE: usize = 150;
/// Users looked at per piece, listed or not: a mask that matches few of many users still
/// yields the loop.
const SCAN: usize = 4 * PIECE;
/// The next piece is written once at most this many bytes wait in the client's queue.
const LOW_WATER: usize = 8 * 1024;
/// A reply costs one flood-control token per this many rows, on top of its command's.
const ROWS_PER_TOKEN: usize = 50;

struct Whox {
    fields: String,
    token: String,
}

/// What is listed: a channel's members, or the users a mask matches.
enum Scope {
    /// `see_all`: the asker is a member, and sees invisible members too.
    Channel {
        folded: Folded,
        see_all: bool,
    },
    Mask {
        pattern: String,
    },
}

/// A WHO reply in progress.
pub struct Rest {
    target: String,
    scope: Scope,
    opers_only: bool,
    multi: bool,
    whox: Option<Whox>,
    /// The users to look at, by folded nick; `next` is the first not yet looked at.
    uids: Vec<Uid>,
    next: usize,
}

pub fn who(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let mut rest = Box::new(query(ctx, msg));
    if piece(ctx, &mut rest) {
        ctx.me_mut().wait = Some(Wait::Reply);
        ctx.me_mut().rare_mut().rest = Some(rest);
        ctx.out.when_drained(ctx.conn, LOW_WATER);
    }
    Ok(())
}

/// The client's queue drained: the next piece of its WHO reply; after the last, its waiting
/// commands run.
pub fn drained(st: &mut ShardState, out: &mut dyn Outbox, conn: Conn, now: Instant, unix: u64) {
    let Some(c) = st.clients.get_mut(&conn).filter(|c| !c.closing) else { return };
    let Some(mut rest) = c.rare_if_any().and_then(|r| r.rest.take()) else { return };
    let mut ctx = Ctx { st, out, conn, now, unix };
    let more = piece(&mut ctx, &mut rest);
    ctx.flush();
    if more {
        ctx.me_mut().rare_mut().rest = Some(rest);
        ctx.out.when_drained(conn, LOW_WATER);
        return;
    }
    if ctx.me().wait == Some(Wait::Reply) {
        ctx.me_mut().wait = None;
    }
    super::super::connection::resume(st, out, conn, now, unix);
}

/// Parses the request and lists the users to look at.
fn query(ctx: &Ctx<'_>, msg: &Message<'_>) -> Rest {
    let target = msg.param(0).unwrap_or("*");
    let opts = msg.param(1).unwrap_or("");
    let (flags, whox) = match opts.split_once('%') {
        Some((f, rest)) => {
            let (fields, token) = rest.split_once(',').unwrap_or((rest, ""));
            (f, Some(Whox { fields: fields.to_string(), token: token.chars().take(3).collect() }))
        }
        None => (opts, None),
    };
    let st = &*ctx.st;
    let me = ctx.me().uid;
    let (scope, uids) = if is_channel_name(target) {
        let folded = st.cm.fold(target);
        let (see_all, uids) = match st.channels.get(&folded) {
            Some(view) if view.ch.members.contains_key(&me) => (true, by_nick(st, view.ch.members.keys().copied())),
            Some(view) if !view.ch.is_secret() => (false, by_nick(st, view.ch.members.keys().copied())),
            _ => (false, Vec::new()),
        };
        (Scope::Channel { folded, see_all }, uids)
    } else {
        let pattern = if target == "0" { "*" } else { target }.to_string();
        (Scope::Mask { pattern }, by_nick(st, st.directory.iter().map(|u| u.uid)))
    };
    Rest {
        target: target.to_string(),
        scope,
        opers_only: flags.contains('o'),
        multi: ctx.me().caps & super::super::capabilities::bits::MULTI_PREFIX != 0,
        whox,
        uids,
        next: 0,
    }
}

/// These users, sorted by folded nick (compared in place: no key is copied).
fn by_nick(st: &ShardState, uids: impl Iterator<Item = Uid>) -> Vec<Uid> {
    let mut v: Vec<(&str, Uid)> = uids.filter_map(|u| st.directory.get(&u).map(|d| (d.folded.as_str(), u))).collect();
    v.sort_unstable_by(|a, b| a.0.cmp(b.0));
    v.into_iter().map(|(_, u)| u).collect()
}

/// Writes the next rows (at most [`PIECE`], looking at most at [`SCAN`] users), and 315 after
/// the last. True while users remain.
fn piece(ctx: &mut Ctx<'_>, rest: &mut Rest) -> bool {
    let mut rows = 0;
    let end = (rest.next + SCAN).min(rest.uids.len());
    while rest.next < end && rows < PIECE {
        let uid = rest.uids[rest.next];
        rest.next += 1;
        if let Some(line) = row(ctx, rest, &uid) {
            ctx.send(&line);
            rows += 1;
        }
    }
    super::super::flood::charge(ctx.st, ctx.conn, (rows / ROWS_PER_TOKEN) as u32);
    if rest.next < rest.uids.len() {
        return true;
    }
    ctx.reply(Numeric::RPL_ENDOFWHO, &[&rest.target]);
    false
}

/// The row for one user, if it is still listed.
fn row(ctx: &Ctx<'_>, rest: &Rest, uid: &Uid) -> Option<Vec<u8>> {
    let st = &*ctx.st;
    let u = st.directory.get(uid)?;
    let chan = match &rest.scope {
        Scope::Channel { folded, see_all } => {
            let view = st.channels.get(folded)?;
            let status = view.ch.members.get(uid)?.status;
            if !see_all && u.modes.has(UserModes::INVISIBLE) {
                return None;
            }
            Some((view.ch.name.to_string(), status))
        }
        Scope::Mask { pattern } => matched(ctx, pattern, u)?,
    };
    if rest.opers_only && !u.modes.has(UserModes::OPER) {
        return None;
    }
    let flags = flags(u, chan.as_ref().map(|(_, s)| s), rest.multi);
    let chan_name = chan.map_or("*".to_string(), |(n, _)| n);
    let server = &st.cfg.server.name;
    let (on, hops) = user_server(st, u);
    let me = ctx.me().target();
    Some(match &rest.whox {
        None => numeric_line(
            server,
            me,
            Numeric::RPL_WHOREPLY,
            &[&chan_name, &u.user, &u.host, &on, &u.nick, &flags, &format!("{hops} {}", u.realname)],
        ),
        Some(w) => whox_row(ctx, w, u, &chan_name, &flags),
    })
}

/// The server a user is on and how many hops away (ours: 0), from the network map.
pub fn user_server(st: &crate::local::shard::ShardState, u: &User) -> (String, u32) {
    match st.servers.get(&crate::state::servers::Sid::of(&u.uid)) {
        Some(s) => (s.name.to_string(), s.hop),
        None => (st.cfg.server.name.clone(), 0),
    }
}

/// Whether a mask lists `u` (None if not), and the channel shown beside it: its first channel
/// the asker may see.
fn matched(ctx: &Ctx<'_>, pattern: &str, u: &User) -> Option<Option<(String, Status)>> {
    let (st, me) = (&*ctx.st, ctx.me().uid);
    let cm = st.cm;
    let server = user_server(st, u).0;
    let hit =
        [&*u.nick, &*u.user, &*u.host, server.as_str(), &*u.realname].iter().any(|f| mask::matches(cm, pattern, f));
    if !hit {
        return None;
    }
    // Invisibility hides from masks, not from a search for the exact nick.
    let shares = || u.channels.iter().any(|c| st.channels.get(c).is_some_and(|v| v.ch.members.contains_key(&me)));
    if u.uid != me && !cm.eq(pattern, &u.nick) && u.modes.has(UserModes::INVISIBLE) && !shares() {
        return None;
    }
    Some(u.channels.iter().find_map(|c| {
        let v = st.channels.get(c)?;
        (!v.ch.is_secret() || v.ch.members.contains_key(&me))
            .then(|| (v.ch.name.to_string(), v.ch.status(&u.uid).unwrap_or_default()))
    }))
}

/// `H`/`G`, `*` for an operator, the channel prefix(es), `B` for a bot.
fn flags(u: &User, status: Option<&Status>, multi: bool) -> String {
    let mut fl = String::from(if u.away.is_some() { "G" } else { "H" });
    if u.modes.has(UserModes::OPER) {
        fl.push('*');
    }
    if let Some(s) = status {
        fl.push_str(if multi { s.all_prefixes() } else { s.prefix() });
    }
    if u.modes.has(UserModes::BOT) {
        fl.push('B');
    }
    fl
}

fn whox_row(ctx: &Ctx<'_>, w: &Whox, u: &User, chan: &str, flags: &str) -> Vec<u8> {
    let st = &*ctx.st;
    let server = st.cfg.server.name.to_string();
    let mut l = Line::new().source(&server).verb(Numeric::RPL_WHOSPCRPL.as_str()).param(ctx.me().target());
    let idle = st
        .local
        .get(&u.uid)
        .and_then(|c| st.clients.get(c))
        .map_or(0, |c| ctx.now.duration_since(c.last_spoke).as_secs());
    // The fields come back in this fixed order, whatever order they were asked in.
    let mut values: Vec<String> = Vec::new();
    for f in "tcuihsnfdlaor".chars() {
        if !w.fields.contains(f) {
            continue;
        }
        values.push(match f {
            't' => w.token.clone(),
            'c' => chan.to_string(),
            'u' => u.user.to_string(),
            'i' => u.ip.to_string(),
            'h' => u.host.to_string(),
            's' => user_server(st, u).0,
            'n' => u.nick.to_string(),
            'f' => flags.to_string(),
            'd' => user_server(st, u).1.to_string(),
            'l' => idle.to_string(),
            'a' => u.account.as_deref().unwrap_or("0").to_string(),
            'o' => "n/a".to_string(),
            _ => u.realname.to_string(),
        });
    }
    let last = values.len().saturating_sub(1);
    for (i, v) in values.iter().enumerate() {
        l = if i == last && w.fields.contains('r') { l.trailing(v) } else { l.param(v) };
    }
    l.finish()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::sim::Sim;

    /// A network of `n` users spread over two shards, and the one who asks on shard 0 (from
    /// 10.0.0.1: the embedded config's flood-controlled class).
    fn network(n: usize, caps: &str) -> (Sim, Conn) {
        let mut sim = Sim::new(Arc::new(Config::embedded()), 2, true);
        for i in 0..n {
            sim.client(i % 2, &format!("user{i:04}"));
        }
        let asker = sim.connect_from(0, "10.0.0.1:5000".parse().unwrap());
        let cap = if caps.is_empty() { String::new() } else { format!("CAP REQ :{caps}\r\nCAP END\r\n") };
        sim.feed(0, asker, format!("{cap}NICK asker\r\nUSER a 0 * :a\r\n").as_bytes());
        (sim, asker)
    }

    /// The lines received since `from` (a byte offset in the recorder's text).
    fn lines_after(sim: &Sim, conn: Conn, from: usize) -> Vec<String> {
        sim.text(0, conn)[from..].lines().map(str::to_string).collect()
    }

    #[test]
    fn a_long_reply_comes_in_pieces_each_user_once_315_last_and_the_next_command_waits() {
        let (mut sim, asker) = network(400, "");
        let start = sim.text(0, asker).len();
        let before = sim.shards[0].0.clients[&asker].tokens;
        {
            let (st, out) = &mut sim.shards[0];
            crate::commands::connection::data(st, out, asker, b"WHO *\r\nPING :after\r\n", Instant::now(), 1);
            crate::commands::connection::finish(st, out);
        }
        // One piece so far; the PING waits behind the rest.
        let first = lines_after(&sim, asker, start);
        assert_eq!(first.len(), PIECE, "{first:?}");
        assert_eq!(sim.shards[0].0.clients[&asker].wait, Some(Wait::Reply));
        assert_eq!(sim.shards[0].1.drains, vec![asker]);
        sim.pump();
        let lines = lines_after(&sim, asker, start);
        let rows: Vec<&str> =
            lines.iter().filter(|l| l.contains(" 352 ")).map(|l| l.split(' ').nth(7).unwrap()).collect();
        assert_eq!(rows.len(), 401, "every user, the asker included");
        let mut sorted = rows.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, rows, "each user once, in nick order");
        let n = lines.len();
        assert!(lines[n - 2].contains(" 315 asker * :"), "{:?}", &lines[n - 3..]);
        assert!(lines[n - 1].contains("PONG") && lines[n - 1].ends_with(":after"), "{:?}", &lines[n - 3..]);
        assert_eq!(sim.shards[0].0.clients[&asker].wait, None);
        // 401 rows: 8 tokens more than the command's own (3 + 3 + 2 for pieces of 150, 150, 101).
        let after = sim.shards[0].0.clients[&asker].tokens;
        assert!(after < before - 8.5, "tokens {before} -> {after}");
    }

    #[test]
    fn a_labeled_long_reply_is_one_batch() {
        let (mut sim, asker) = network(400, "labeled-response batch");
        let start = sim.text(0, asker).len();
        sim.feed(0, asker, b"@label=w1 WHO *\r\n");
        let lines = lines_after(&sim, asker, start);
        assert_eq!(lines.len(), 404, "BATCH +, 401 rows, 315, BATCH -");
        assert!(lines[0].starts_with("@label=w1 ") && lines[0].contains(" BATCH +"), "{}", lines[0]);
        let id = lines[0].rsplit(" +").next().unwrap().split(' ').next().unwrap().to_string();
        let tag = format!("@batch={id} ");
        assert!(lines[1..403].iter().all(|l| l.starts_with(&tag)), "every row in the batch");
        assert!(lines[402].contains(" 315 "), "{}", lines[402]);
        assert!(lines[403].ends_with(&format!("BATCH -{id}")), "{}", lines[403]);
    }

    #[test]
    fn a_short_reply_is_written_at_once() {
        let (mut sim, asker) = network(20, "");
        let start = sim.text(0, asker).len();
        {
            let (st, out) = &mut sim.shards[0];
            crate::commands::connection::data(st, out, asker, b"WHO user00*\r\n", Instant::now(), 1);
            crate::commands::connection::finish(st, out);
            assert!(out.drains.is_empty());
        }
        let lines = lines_after(&sim, asker, start);
        assert_eq!(lines.len(), 21, "{lines:?}");
        assert!(lines[20].contains(" 315 asker user00* :"));
    }
}
