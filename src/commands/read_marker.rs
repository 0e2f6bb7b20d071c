//! MARKREAD (IRCv3 `draft/read-marker`): the time up to which a user has read a target, kept
//! per user key (`a:account`, else `n:nick`, as history) and target, only ever increasing. A
//! user's devices share it: every shard keeps a copy of every marker (a few bytes each, set by
//! people, not by traffic), so a JOIN can show the joiner its marker before 366 without
//! asking anyone; a change goes to every shard, and each tells its own sessions of that key.
//! Markers are kept on disk with the history.

use ahash::AHashMap;

use super::capabilities::bits;
use super::envelope::{Control, Env};
use super::history::codec::is_session;
use super::history::store::DbOp;
use super::outbox::{Conn, Outbox};
use super::{CmdResult, Ctx};
use crate::local::shard::ShardState;
use crate::proto::names::is_channel_name;
use crate::proto::{Folded, Line, Message};
use crate::state::Uid;

/// Markers one key keeps.
pub const MAX_TARGETS: usize = 1000;

/// Every key's markers, by target.
#[derive(Default)]
pub struct Markers(AHashMap<Folded, AHashMap<Folded, u64>>);

impl Markers {
    pub fn get(&self, key: &Folded, target: &Folded) -> Option<u64> {
        self.0.get(key)?.get(target).copied()
    }

    /// Raises a marker; the value kept (never lower than before). A key keeps at most
    /// [`MAX_TARGETS`]: past it, its oldest marker goes.
    pub fn raise(&mut self, key: Folded, target: Folded, ms: u64) -> u64 {
        let targets = self.0.entry(key).or_default();
        if targets.len() >= MAX_TARGETS && !targets.contains_key(&target) {
            if let Some(oldest) = targets.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone()) {
                targets.remove(&oldest);
            }
        }
        let slot = targets.entry(target).or_insert(0);
        *slot = (*slot).max(ms);
        *slot
    }
}

impl Markers {
    /// A channel renamed: every key's marker for `from` becomes (or raises) its marker for
    /// `to`; the markers moved, as kept under `to`.
    pub fn rename(&mut self, from: &Folded, to: &Folded) -> Vec<(Folded, u64)> {
        let mut moved = Vec::new();
        for (key, targets) in self.0.iter_mut() {
            if let Some(ms) = targets.remove(from) {
                let slot = targets.entry(to.clone()).or_insert(0);
                *slot = (*slot).max(ms);
                moved.push((key.clone(), *slot));
            }
        }
        moved
    }
}

/// A channel renamed (on every shard, as its new name arrives): its readers' markers follow
/// it. The new name's home writes the change to the disk.
pub fn renamed(st: &mut ShardState, from: &Folded, to: &Folded) {
    if from == to {
        return;
    }
    let moved = st.read_markers.rename(from, to);
    if to.owner(st.cores) != st.me {
        return;
    }
    if let Some(sink) = &st.history.sink {
        for (key, ms) in moved.into_iter().filter(|(k, _)| !is_session(k)) {
            let _ = sink.send(DbOp::MarkerGone(key.clone(), from.clone()));
            let _ = sink.send(DbOp::Marker(key, to.clone(), ms));
        }
    }
}

pub fn markread(ctx: &mut Ctx<'_>, msg: &Message<'_>) -> CmdResult {
    let Some(target) = msg.params.first().copied().filter(|t| !t.is_empty()) else {
        super::identity::fail(ctx, "MARKREAD", "NEED_MORE_PARAMS", &[], "Missing parameters");
        return Ok(());
    };
    let uid = ctx.me().uid;
    let valid = if is_channel_name(target) { true } else { crate::proto::names::valid_nick(target, usize::MAX) };
    let Some(key) = marker_key(ctx.st, uid).filter(|_| valid) else {
        super::identity::fail(ctx, "MARKREAD", "INVALID_TARGET", &[target], "Invalid target");
        return Ok(());
    };
    let folded = ctx.st.cm.fold(target);
    let ms = match msg.params.get(1) {
        None => ctx.st.read_markers.get(&key, &folded),
        Some(p) => {
            let Some(ms) = p.strip_prefix("timestamp=").and_then(crate::clock::parse_iso_ms) else {
                super::identity::fail(ctx, "MARKREAD", "INVALID_PARAMS", &[target, p], "Invalid timestamp");
                return Ok(());
            };
            let kept = ctx.st.read_markers.raise(key.clone(), folded.clone(), ms);
            // A session's own marker (no account) stays on its shard and dies with it.
            if kept == ms && !is_session(&key) {
                set_elsewhere(ctx.st, ctx.out, ctx.conn, &key, &folded, target, ms);
            }
            Some(kept)
        }
    };
    let line = marker_line(ctx.server(), target, ms);
    ctx.send(&line);
    Ok(())
}

/// Whose markers these are: an account's (`a:<account>`, shared by its sessions, kept on disk,
/// network-wide), or, without an account, this connection's (`u:<UID>`: a nick passes to
/// whoever takes it next, a UID never does; forgotten when the user leaves).
fn marker_key(st: &ShardState, uid: Uid) -> Option<Folded> {
    let u = st.directory.get(&uid)?;
    Some(match &u.account {
        Some(a) => super::history::record::account_key(st.cm, a),
        None => st.cm.fold(&format!("u:{uid}")),
    })
}

/// A user left: its session's markers go.
pub fn forget(st: &mut ShardState, uid: Uid) {
    let key = st.cm.fold(&format!("u:{uid}"));
    st.read_markers.0.remove(&key);
}

/// `MARKREAD <target> timestamp=<time>`, or `*` when none is kept.
pub fn marker_line(server: &str, target: &str, ms: Option<u64>) -> Vec<u8> {
    let value = ms.map_or_else(|| "*".to_string(), |ms| format!("timestamp={}", crate::clock::format_iso_ms(ms)));
    Line::new().source(server).verb("MARKREAD").param(target).param(&value).finish()
}

/// A raised marker: to the disk, to every other shard, to the other servers of the network
/// (`ENCAP * MARKREAD`, which other rustircd servers take and other servers pass on), and to
/// this shard's other sessions.
fn set_elsewhere(
    st: &mut ShardState,
    out: &mut dyn Outbox,
    from: Conn,
    key: &Folded,
    target: &Folded,
    name: &str,
    ms: u64,
) {
    spread(st, out, key, target, name, ms);
    let line = encap_line(crate::commands::link::our_sid(st), key, name, ms);
    crate::commands::link::to_all_links(st, out, None, line.into());
    tell_sessions(st, out, Some(from), key, name, ms);
}

/// `:<SID> ENCAP * MARKREAD <key> <target> <ms>`: a marker for the other servers.
fn encap_line(sid: &str, key: &Folded, name: &str, ms: u64) -> Vec<u8> {
    let l = Line::new().source(sid).verb("ENCAP").param("*").param("MARKREAD").param(key.as_str()).param(name);
    l.param(&ms.to_string()).finish()
}

/// A link's burst between rustircd servers: every account's markers (each server keeps them
/// all; the peer keeps those it had not seen, or higher).
pub fn burst(st: &ShardState, sid: &str, b: &mut Vec<u8>) {
    for (key, targets) in st.read_markers.0.iter().filter(|(k, _)| !is_session(k)) {
        for (target, ms) in targets {
            b.extend_from_slice(&encap_line(sid, key, target.as_str(), *ms));
        }
    }
}

/// To the disk and to every other shard.
fn spread(st: &mut ShardState, out: &mut dyn Outbox, key: &Folded, target: &Folded, name: &str, ms: u64) {
    if let Some(sink) = &st.history.sink {
        let _ = sink.send(DbOp::Marker(key.clone(), target.clone(), ms));
    }
    super::delivery::broadcast(st, out, || {
        Env::Control(Control::ReadMarker { key: key.clone(), target: target.clone(), name: name.into(), ms })
    });
}

/// `ENCAP * MARKREAD <key> <target> <ms>` from another rustircd server (already passed on).
pub fn from_link(st: &mut ShardState, out: &mut dyn Outbox, args: &[&str]) {
    let (Some(key), Some(name), Some(ms)) = (args.first(), args.get(1), args.get(2).and_then(|m| m.parse().ok()))
    else {
        return;
    };
    if !key.starts_with("a:") {
        return;
    }
    let (key, target) = (st.cm.fold(key), st.cm.fold(name));
    // Only a rise is news: a burst brings back markers this server already has.
    if st.read_markers.get(&key, &target).is_some_and(|kept| kept >= ms) {
        return;
    }
    if st.read_markers.raise(key.clone(), target.clone(), ms) == ms {
        spread(st, out, &key, &target, name, ms);
        tell_sessions(st, out, None, &key, name, ms);
    }
}

/// Another shard raised a marker.
pub fn on_marker(st: &mut ShardState, out: &mut dyn Outbox, key: Folded, target: Folded, name: &str, ms: u64) {
    let kept = st.read_markers.raise(key.clone(), target, ms);
    if kept == ms {
        tell_sessions(st, out, None, &key, name, ms);
    }
}

/// This shard's sessions of `key` with the capability (but `except`) hear the new marker. Only
/// an account can have several sessions; a nick key has its one.
fn tell_sessions(st: &mut ShardState, out: &mut dyn Outbox, except: Option<Conn>, key: &Folded, name: &str, ms: u64) {
    let Some(account) = key.as_str().strip_prefix("a:") else { return };
    // Compared in place: no key is built per local user.
    let cm = st.cm;
    let conns: Vec<Conn> = st
        .local
        .iter()
        .filter(|(uid, conn)| {
            Some(**conn) != except
                && st.clients.get(conn).is_some_and(|c| c.caps & bits::READ_MARKER != 0)
                && st.directory.get(uid).and_then(|u| u.account.as_deref()).is_some_and(|a| cm.eq(a, account))
        })
        .map(|(_, c)| *c)
        .collect();
    let line = marker_line(&st.cfg.server.name, name, Some(ms));
    for conn in conns {
        super::delivery::to_conn(st, out, conn, &line);
    }
}

/// After a JOIN: the joiner's marker for the channel (before NAMES ends), with the capability.
pub fn on_join(st: &ShardState, conn: Conn, chan_name: &str, chan: &Folded) -> Option<Vec<u8>> {
    let c = st.clients.get(&conn)?;
    if c.caps & bits::READ_MARKER == 0 {
        return None;
    }
    let key = marker_key(st, c.uid)?;
    Some(marker_line(&st.cfg.server.name, chan_name, st.read_markers.get(&key, chan)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::CaseMapping;

    #[test]
    fn a_rename_moves_every_keys_marker_and_keeps_the_higher() {
        let cm = CaseMapping::Rfc1459;
        let f = |s: &str| cm.fold(s);
        let mut m = Markers::default();
        m.raise(f("a:kim"), f("#old"), 50);
        m.raise(f("a:lee"), f("#old"), 10);
        m.raise(f("a:lee"), f("#new"), 20);
        m.raise(f("a:max"), f("#other"), 5);
        let mut moved = m.rename(&f("#old"), &f("#new"));
        moved.sort_by_key(|(k, _)| k.as_str().to_string());
        assert_eq!(moved, [(f("a:kim"), 50), (f("a:lee"), 20)]);
        assert_eq!((m.get(&f("a:kim"), &f("#old")), m.get(&f("a:kim"), &f("#new"))), (None, Some(50)));
        assert_eq!(m.get(&f("a:max"), &f("#other")), Some(5));
    }

    #[test]
    fn markers_only_increase() {
        let cm = CaseMapping::Rfc1459;
        let mut m = Markers::default();
        let (k, t) = (cm.fold("a:acct"), cm.fold("#c"));
        assert_eq!(m.get(&k, &t), None);
        assert_eq!(m.raise(k.clone(), t.clone(), 50), 50);
        assert_eq!(m.raise(k.clone(), t.clone(), 10), 50);
        assert_eq!(m.raise(k.clone(), t.clone(), 70), 70);
        assert_eq!(m.get(&k, &t), Some(70));
    }

    #[test]
    fn a_burst_carries_account_markers_and_only_a_rise_is_news() {
        let cfg = std::sync::Arc::new(crate::config::Config::embedded());
        let mut sim = crate::sim::Sim::new(cfg, 2, true);
        let (st, out) = &mut sim.shards[0];
        let cm = st.cm;
        st.read_markers.raise(cm.fold("a:acct"), cm.fold("#c"), 50);
        st.read_markers.raise(cm.fold("u:0AAAAAAAB"), cm.fold("#c"), 60);
        let mut b = Vec::new();
        burst(st, "0AA", &mut b);
        assert_eq!(String::from_utf8(b).unwrap(), ":0AA ENCAP * MARKREAD a:acct #c 50\r\n", "no session's marker");
        // The same marker back (the peer's burst) tells no shard; a higher one does.
        from_link(st, out, &["a:acct", "#c", "50"]);
        from_link(st, out, &["a:acct", "#c", "40"]);
        assert!(out.mesh.is_empty());
        from_link(st, out, &["a:acct", "#c", "70"]);
        assert_eq!(out.mesh.len(), 1);
        assert_eq!(st.read_markers.get(&cm.fold("a:acct"), &cm.fold("#c")), Some(70));
    }
}
