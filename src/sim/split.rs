//! Netsplits under random interleavings: a linked peer's users in channels of both homes, the
//! link lost while local users part, join, kick and op them, every mesh message delivered in
//! a random order (FIFO per pair of shards). A split departs all the users behind the link in
//! one departure (one request and one numbered part per home); whatever the interleaving,
//! every shard must end with none of them, agree on every channel, and show each observer
//! each departing user's QUIT at most once — exactly once to an observer that stayed in a
//! channel with the user and never kicked it. The departures go a piece at a time (two users
//! per piece under test), and a user killed while its piece waits quits once.

use std::sync::Arc;

use super::{Sim, SplitMix64};
use crate::commands::connection;
use crate::config::Config;
use crate::fuzzing::{CONFIG, LINK};

/// Two channel names, one homed on each of two shards.
fn names(sim: &Sim) -> (String, String) {
    let cm = sim.shards[0].0.cm;
    let at = |h: usize| (0..).map(|i| format!("#s{i}")).find(|n| cm.fold(n).owner(2) == h).expect("a name");
    (at(0), at(1))
}

/// Runs one interleaving; true when r3 was killed before the split took it.
fn run(seed: u64) -> bool {
    let cfg = Arc::new(Config::parse("split", CONFIG, None).expect("valid"));
    let mut sim = Sim::new(cfg, 2, true);
    let mut rng = SplitMix64::new(seed);
    let (a, b) = names(&sim);
    let stay = sim.client(1, "stay");
    let busy = sim.client(0, "busy");
    sim.feed(1, stay, format!("JOIN {a},{b}\r\n").as_bytes());
    sim.feed(0, busy, format!("OPER op pw\r\nJOIN {a},{b}\r\n").as_bytes());
    let link = sim.connect(1);
    let mut burst = LINK.to_vec();
    let remote: Vec<String> = (0..6).map(|i| format!("r{i}")).collect();
    for (i, r) in remote.iter().enumerate() {
        burst.extend(format!(":2FZ UID {r} 1 1 +i u h h 10.0.0.2 2FZAAAAB{i} * :R\r\n").as_bytes());
    }
    burst.extend(format!(":2FZ SJOIN 1 {a} +nt :2FZAAAAB0 2FZAAAAB1 2FZAAAAB2 2FZAAAAB3\r\n").as_bytes());
    burst.extend(format!(":2FZ SJOIN 1 {b} +nt :2FZAAAAB2 2FZAAAAB3 2FZAAAAB4 2FZAAAAB5\r\n").as_bytes());
    sim.feed(1, link, &burst);
    // `busy` acts around the split; `stay` only watches.
    let lines = [
        format!("MODE {a} +o r1\r\n"),
        format!("KICK {b} r5 :out\r\n"),
        format!("PART {a}\r\n"),
        format!("JOIN {a}\r\n"),
        format!("MODE {b} +v r2\r\n"),
        "KILL r3 :bye\r\n".to_string(),
    ];
    let split_at = rng.below(lines.len() + 1);
    for (i, line) in lines.iter().enumerate() {
        if i == split_at {
            split(&mut sim, link);
        }
        while rng.below(4) != 0 && sim.step_random(&mut rng) {}
        sim.feed_only(0, busy, line.as_bytes());
    }
    if split_at == lines.len() {
        split(&mut sim, link);
    }
    sim.settle_random(&mut rng);
    sim.check_consistent();
    for (s, (st, _)) in sim.shards.iter().enumerate() {
        assert!(st.directory.iter().all(|u| !u.uid.as_str().starts_with("2FZ")), "seed {seed}: shard {s} kept a user");
        assert!(st.quits.is_empty() && st.leaving.is_empty(), "seed {seed}: shard {s} has a departure left");
    }
    let (seen_stay, seen_busy) = (sim.text(1, stay), sim.text(0, busy));
    for r in &remote {
        // r3 is killed meanwhile: its one QUIT says so, unless the split took it first.
        let quit = format!(":{r}!u@h QUIT :");
        let kicked = *r == "r5" && seen_stay.contains(&format!(" KICK {b} r5 "));
        let n = seen_stay.matches(&quit).count();
        assert_eq!(n, usize::from(!kicked), "seed {seed}: stay saw {r}'s QUIT {n} times:\n{seen_stay}");
        assert!(seen_busy.matches(&quit).count() <= 1, "seed {seed}: busy saw {r}'s QUIT twice:\n{seen_busy}");
    }
    seen_stay.contains(":r3!u@h QUIT :Killed (busy (bye))")
}

fn split(sim: &mut Sim, link: crate::commands::Conn) {
    let (st, out) = &mut sim.shards[1];
    connection::disconnected(st, out, link, "Connection closed");
    connection::finish(st, out);
}

#[test]
fn a_split_under_random_interleavings_leaves_nobody_behind() {
    let killed = (0..400).filter(|&seed| run(seed)).count();
    // Both orders happen: the KILL first, and the split first.
    assert!(killed > 0 && killed < 400, "{killed} of 400");
}
