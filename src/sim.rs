//! The whole server without sockets or threads: N shards' states, each with a [`Recorder`]
//! for an outbox, and a pump that delivers mesh messages between them in FIFO order per pair
//! of shards — exactly what the runtime guarantees. Benchmarks measure the IRC core with it;
//! unit tests can drive whole conversations.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::commands::outbox::Recorder;
use crate::commands::{connection, mesh, Conn, Env};
use crate::config::Config;
use crate::state::shard::ShardState;

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
                    mesh::on_mesh(st, out, from, env, Instant::now(), 1);
                    connection::finish(st, out);
                }
            }
            if !moved {
                break;
            }
        }
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
                        c.members.iter().map(|(u, s)| format!("{u}{}", s.all_prefixes())).collect();
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
            assert!(st.blocked.iter().all(|q| q.is_empty()), "shard {i} still holds events back");
            assert_eq!(users(st), u0, "shard {i} disagrees with shard 0 on users");
            assert_eq!(chans(st), c0, "shard {i} disagrees with shard 0 on channels");
        }
    }

    /// What `conn` on `shard` received so far (with `keep`).
    pub fn text(&self, shard: usize, conn: Conn) -> String {
        self.shards[shard].1.text(conn)
    }
}

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
}
