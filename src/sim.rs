//! The whole server without sockets or threads: N shards' states, each with a [`Recorder`]
//! for an outbox, and a pump that delivers mesh messages between them in FIFO order per pair
//! of shards — exactly what the runtime guarantees. Benchmarks measure the IRC core with it;
//! unit tests can drive whole conversations.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::commands::outbox::Recorder;
use crate::commands::{connection, inbox, Conn, Env};
use crate::config::Config;
use crate::local::shard::ShardState;

pub struct Sim {
    pub shards: Vec<(ShardState, Recorder)>,
    next_conn: u64,
}

impl Sim {
    /// `cores` shards; `keep` keeps every byte sent (tests) instead of counting (benchmarks).
    pub fn new(cfg: Arc<Config>, cores: usize, keep: bool) -> Sim {
        let shards = (0..cores)
            .map(|s| (ShardState::new(cfg.clone(), s, cores, 0, "the beginning".into()), Recorder::new(s, cores, keep)))
            .collect();
        Sim { shards, next_conn: 1 }
    }

    /// Two shards with the fuzzers' config (`fuzzing::CONFIG`), recording everything sent.
    pub fn fuzz_config() -> Sim {
        let cfg = Arc::new(Config::parse("fuzz", crate::fuzzing::CONFIG, None).unwrap());
        Sim::new(cfg, 2, true)
    }

    /// The fuzzers' TS6 peer (`fuzzing::LINK`: peer.fuzz, 2FZ, dave in #a) linked on `shard`.
    pub fn link_peer(&mut self, shard: usize) -> Conn {
        let link = self.connect(shard);
        self.feed(shard, link, crate::fuzzing::LINK);
        self.pump();
        link
    }

    /// A new connection on `shard`, from loopback.
    pub fn connect(&mut self, shard: usize) -> Conn {
        self.connect_from(shard, "127.0.0.1:40000".parse().expect("address"))
    }

    /// A new connection on `shard` from `peer`.
    pub fn connect_from(&mut self, shard: usize, peer: SocketAddr) -> Conn {
        let conn = Conn(self.next_conn);
        self.next_conn += 1;
        let (st, out) = &mut self.shards[shard];
        connection::accept(st, out, conn, peer, peer, false, Instant::now(), 0);
        connection::finish(st, out);
        conn
    }

    /// Bytes from a client, then every mesh message that follows, until all is quiet.
    pub fn feed(&mut self, shard: usize, conn: Conn, bytes: &[u8]) {
        let (st, out) = &mut self.shards[shard];
        connection::data(st, out, conn, bytes, Instant::now(), 1);
        connection::finish(st, out);
        self.pump();
    }

    /// Bytes from a client, leaving the mesh messages that follow undelivered, so that a test
    /// can choose the interleaving with [`Sim::deliver_until`].
    pub fn feed_only(&mut self, shard: usize, conn: Conn, bytes: &[u8]) {
        let (st, out) = &mut self.shards[shard];
        connection::data(st, out, conn, bytes, Instant::now(), 1);
        connection::finish(st, out);
    }

    /// Delivers the messages waiting from `from` to `to`, oldest first (the pair stays FIFO),
    /// up to and including the first that `last` picks. False when none was picked.
    pub fn deliver_until(&mut self, from: usize, to: usize, last: impl Fn(&Env) -> bool) -> bool {
        let Some(end) = self.shards[from].1.mesh.iter().filter(|(t, _)| *t == to).position(|(_, e)| last(e)) else {
            return false;
        };
        let waiting = std::mem::take(&mut self.shards[from].1.mesh);
        let (mut now, mut rest, mut taken) = (Vec::new(), Vec::new(), 0);
        for (t, env) in waiting {
            if t == to && taken <= end {
                taken += 1;
                now.push(env);
            } else {
                rest.push((t, env));
            }
        }
        self.shards[from].1.mesh = rest;
        for env in now {
            let (st, out) = &mut self.shards[to];
            inbox::receive(st, out, from, env, Instant::now(), 1);
            connection::finish(st, out);
        }
        true
    }

    /// Delivers mesh messages, and the drained queues long replies wait for (a recorder's
    /// client reads at once), until none is left.
    pub fn pump(&mut self) {
        loop {
            let mut moved = false;
            for (st, out) in &mut self.shards {
                for conn in std::mem::take(&mut out.drains) {
                    moved = true;
                    crate::commands::query::who::drained(st, out, conn, Instant::now(), 1);
                    connection::finish(st, out);
                }
            }
            for from in 0..self.shards.len() {
                let batch: Vec<(usize, Env)> = std::mem::take(&mut self.shards[from].1.mesh);
                for (to, env) in batch {
                    moved = true;
                    let (st, out) = &mut self.shards[to];
                    inbox::receive(st, out, from, env, Instant::now(), 1);
                    connection::finish(st, out);
                }
            }
            if !moved {
                break;
            }
        }
    }

    /// Delivers the oldest message waiting from `from` to `to`. False when none waits.
    pub fn deliver_one(&mut self, from: usize, to: usize) -> bool {
        let Some(i) = self.shards[from].1.mesh.iter().position(|(t, _)| *t == to) else { return false };
        let (_, env) = self.shards[from].1.mesh.remove(i);
        let (st, out) = &mut self.shards[to];
        inbox::receive(st, out, from, env, Instant::now(), 1);
        connection::finish(st, out);
        true
    }

    /// Tells the oldest connection of `shard` waiting to hear that its queue drained (a long
    /// reply's next piece, as [`Sim::pump`] does). False when none waits.
    pub fn drain_one(&mut self, shard: usize) -> bool {
        let (st, out) = &mut self.shards[shard];
        if out.drains.is_empty() {
            return false;
        }
        let conn = out.drains.remove(0);
        crate::commands::query::who::drained(st, out, conn, Instant::now(), 1);
        connection::finish(st, out);
        true
    }

    /// What may happen next: a delivery for each (from, to) pair with messages waiting (the
    /// oldest of the pair; a blocking job's result is a message from a shard to itself) and a
    /// drain for each shard with connections waiting for one.
    pub fn pending(&self) -> Vec<Pending> {
        let mut v = Vec::new();
        for (from, (_, out)) in self.shards.iter().enumerate() {
            for to in 0..self.shards.len() {
                if out.mesh.iter().any(|(t, _)| *t == to) {
                    v.push(Pending::Deliver { from, to });
                }
            }
            if !out.drains.is_empty() {
                v.push(Pending::Drain(from));
            }
        }
        v
    }

    /// Does one thing [`Sim::pending`] offers, chosen by `rng`. False when nothing waits.
    pub fn step_random(&mut self, rng: &mut SplitMix64) -> bool {
        let p = self.pending();
        if p.is_empty() {
            return false;
        }
        match p[rng.below(p.len())] {
            Pending::Deliver { from, to } => self.deliver_one(from, to),
            Pending::Drain(shard) => self.drain_one(shard),
        }
    }

    /// Like [`Sim::pump`], but in an order `rng` chooses: FIFO within each pair of shards,
    /// anything across pairs.
    pub fn settle_random(&mut self, rng: &mut SplitMix64) {
        while self.step_random(rng) {}
    }

    /// Feeds `script` in order, each step with [`Sim::feed_only`], with a random number of
    /// random deliveries ([`Sim::step_random`]) before each step and all of them after the
    /// last. `seed` picks everything, so a run replays exactly. A seed also picks how eagerly
    /// messages go between inputs: from inputs piling up with most messages still in flight
    /// to a nearly quiet mesh before each line.
    pub fn run_script(&mut self, seed: u64, script: &[Step]) {
        let mut rng = SplitMix64::new(seed);
        // Out of 16: the chance, before each step, of delivering one more message first.
        let eager = [4, 10, 14, 15][rng.below(4)];
        for step in script {
            while rng.below(16) < eager && self.step_random(&mut rng) {}
            self.feed_only(step.shard, step.conn, step.line.as_bytes());
        }
        self.settle_random(&mut rng);
    }

    /// A registered client called `nick` on `shard`.
    pub fn client(&mut self, shard: usize, nick: &str) -> Conn {
        let c = self.connect(shard);
        self.feed(shard, c, format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n").as_bytes());
        c
    }

    /// Panics unless every shard, now that all is delivered, holds the same users (uid, nick,
    /// modes) and the same channels (members and their status, modes, topic), and no shard
    /// still holds events back.
    pub fn check_consistent(&self) {
        let (first, _) = &self.shards[0];
        let users = |st: &ShardState| {
            let mut v: Vec<String> =
                st.directory.iter().map(|u| format!("{} {} {}", u.uid, u.nick, u.modes.to_mode_string())).collect();
            v.sort();
            v
        };
        let chans = |st: &ShardState| {
            let mut v: Vec<String> = st
                .channels
                .values()
                .filter(|view| !view.ch.members.is_empty())
                .map(|view| {
                    let c = &view.ch;
                    let mut m: Vec<String> =
                        c.members.iter().map(|(u, m)| format!("{u}{}", m.status.all_prefixes())).collect();
                    m.sort();
                    let topic = c.topic.as_ref().map(|t| t.text.to_string()).unwrap_or_default();
                    format!("{} {:?} {topic:?} {}", c.name, c.mode_string(true), m.join(","))
                })
                .collect();
            v.sort();
            v
        };
        let (u0, c0) = (users(first), chans(first));
        for (i, (st, _)) in self.shards.iter().enumerate() {
            assert!(st.blocked.iter().all(|q| q.events.is_empty()), "shard {i} still holds events back");
            assert_eq!(users(st), u0, "shard {i} disagrees with shard 0 on users");
            assert_eq!(chans(st), c0, "shard {i} disagrees with shard 0 on channels");
        }
    }

    /// What `conn` on `shard` received so far (with `keep`).
    pub fn text(&self, shard: usize, conn: Conn) -> String {
        self.shards[shard].1.text(conn)
    }
}

/// Something [`Sim::step_random`] may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    /// The oldest message waiting from `from` to `to`.
    Deliver { from: usize, to: usize },
    /// The oldest drain a connection of this shard waits for.
    Drain(usize),
}

/// One step of a script for [`Sim::run_script`]: `conn` on `shard` sends `line` (bytes as they
/// come from the socket: one or more lines ending in CRLF).
#[derive(Clone, Debug)]
pub struct Step {
    pub shard: usize,
    pub conn: Conn,
    pub line: String,
}

/// A small deterministic PRNG (splitmix64): schedules and scripts that replay from a seed.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

#[cfg(test)]
mod rename;
#[cfg(test)]
mod reorder;
#[cfg(test)]
mod split;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_across_two_shards() {
        let mut sim = Sim::new(Arc::new(Config::embedded()), 2, true);
        let a = sim.client(0, "alice");
        let b = sim.client(1, "bob");
        assert!(sim.text(0, a).contains(" 001 alice "));
        sim.feed(0, a, b"JOIN #c\r\n");
        sim.feed(1, b, b"JOIN #c\r\n");
        sim.feed(0, a, b"PRIVMSG #c :hi bob\r\n");
        assert!(sim.text(1, b).contains(":alice!~alice@127.0.0.1 PRIVMSG #c :hi bob"), "{}", sim.text(1, b));
        assert!(sim.text(0, a).contains(":bob!~bob@127.0.0.1 JOIN #c"));
        sim.feed(1, b, b"QUIT :bye\r\n");
        assert!(sim.text(0, a).contains(":bob!~bob@127.0.0.1 QUIT :Quit: bye"));
        assert!(sim.text(1, b).contains("ERROR :Closing Link"));
    }

    /// Issue 11, item 2: a departure must not rebuild the server-notice list from every local
    /// user (15,000 departures at once were quadratic). A list made stale on purpose (the
    /// operator's `+s` taken away behind its back) shows that departures keep using it.
    #[test]
    fn departures_do_not_rebuild_the_server_notice_list() {
        use crate::state::UserModes;
        let mut sim = Sim::new(Arc::new(Config::embedded()), 1, true);
        let op = sim.client(0, "op");
        let users: Vec<Conn> = (0..3).map(|i| sim.client(0, &format!("u{i}"))).collect();
        let st = &mut sim.shards[0].0;
        let uid = st.clients[&op].uid;
        let mut modes = st.directory.get(&uid).unwrap().modes;
        modes.set(UserModes::OPER, true);
        modes.set(UserModes::SNOTICE, true);
        st.directory.set_modes(&uid, modes);
        st.snotice_targets = None;
        sim.feed(0, users[0], b"QUIT\r\n");
        assert!(sim.text(0, op).contains("Client exiting: u0"), "{}", sim.text(0, op));
        let st = &mut sim.shards[0].0;
        modes.set(UserModes::SNOTICE, false);
        st.directory.set_modes(&uid, modes);
        sim.feed(0, users[1], b"QUIT\r\n");
        assert!(sim.text(0, op).contains("Client exiting: u1"), "the list was rebuilt by a departure");
        // An operator who leaves is taken out of the list.
        sim.feed(0, op, b"QUIT\r\n");
        assert_eq!(sim.shards[0].0.snotice_targets, Some(Vec::new()));
        sim.feed(0, users[2], b"QUIT\r\n");
    }

    /// A channel name whose home is `shard` (of `cores`).
    fn homed_at(sim: &Sim, shard: usize, cores: usize) -> String {
        let cm = sim.shards[0].0.cm;
        (0..).map(|i| format!("#h{i}")).find(|n| cm.fold(n).owner(cores) == shard).expect("some name")
    }

    /// Issue 11's wedge: two users on different shards leave channels of two homes at once, and
    /// the homes number their departures in opposite orders. Each departure must still
    /// complete, and channel changes after them too.
    #[test]
    fn crossed_departures_from_two_homes_do_not_wedge() {
        let mut sim = Sim::new(Arc::new(Config::embedded()), 2, true);
        let (a, b) = (homed_at(&sim, 0, 2), homed_at(&sim, 1, 2));
        let u1 = sim.client(0, "u1");
        let u2 = sim.client(1, "u2");
        let w0 = sim.client(0, "watcher0");
        let w1 = sim.client(1, "watcher1");
        for (s, c) in [(0, u1), (1, u2), (0, w0), (1, w1)] {
            sim.feed(s, c, format!("JOIN {a},{b}\r\n").as_bytes());
        }
        sim.feed_only(0, u1, b"QUIT :one\r\n");
        sim.feed_only(1, u2, b"QUIT :two\r\n");
        let quit_req = |e: &Env| matches!(e, Env::Request(crate::commands::envelope::Request::Quit { .. }));
        // Home 0 hears u1 first, home 1 hears u2 first.
        assert!(sim.deliver_until(0, 0, quit_req));
        assert!(sim.deliver_until(1, 0, quit_req));
        assert!(sim.deliver_until(1, 1, quit_req));
        assert!(sim.deliver_until(0, 1, quit_req));
        sim.pump();
        for (s, _) in &sim.shards {
            assert!(s.directory.iter().all(|u| u.nick.as_ref() != "u1" && u.nick.as_ref() != "u2"), "ghost users");
        }
        sim.check_consistent();
        for (s, w) in [(0, w0), (1, w1)] {
            let t = sim.text(s, w);
            assert_eq!(t.matches(":u1!~u1@127.0.0.1 QUIT :Quit: one").count(), 1, "{t}");
            assert_eq!(t.matches(":u2!~u2@127.0.0.1 QUIT :Quit: two").count(), 1, "{t}");
        }
        assert!(sim.text(0, u1).contains("ERROR :Closing Link"));
        assert!(sim.text(1, u2).contains("ERROR :Closing Link"));
        // Channel changes still complete, on both homes, and the nicks are free again.
        sim.feed(0, w0, b"JOIN #fresh\r\n");
        assert!(sim.text(0, w0).contains(" 366 watcher0 #fresh "), "{}", sim.text(0, w0));
        let again = sim.client(1, "u1");
        assert!(sim.text(1, again).contains(" 001 u1 "), "{}", sim.text(1, again));
        sim.check_consistent();
    }
}
