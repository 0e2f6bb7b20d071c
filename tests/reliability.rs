//! Regressions of issue 11: what an attacker with ordinary clients could do to the server.

mod common;

use std::time::Duration;

use common::*;

/// A channel name whose home is `shard` (the server's owner rule: FNV-1a of the folded name
/// modulo the shard count).
fn homed_at(shard: usize, cores: usize) -> String {
    let fnv = |s: &str| s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    (0..).map(|i| format!("#w{i}")).find(|n| fnv(n) as usize % cores == shard).expect("a name")
}

/// Waves of clients join two channels with different homes, then all leave at once (QUIT or a
/// dropped socket), the next wave joining at once. Every JOIN must be answered, and afterwards
/// nobody is left behind as a ghost (issue 11, item 1: a cycle between two homes' numbers
/// wedged every later JOIN).
#[test]
fn departures_from_channels_of_two_homes_never_wedge_joins() {
    let server = Server::start();
    let (a, b) = (homed_at(0, 2), homed_at(1, 2));
    let mut watcher = server.client("watcher");
    watcher.send(&format!("JOIN {a},{b}"));
    watcher.sync();
    for wave in 0..30 {
        let mut clients: Vec<Client> = (0..12).map(|_| server.connect()).collect();
        for (i, c) in clients.iter_mut().enumerate() {
            c.nick = format!("w{wave}x{i}");
            c.send(&format!("NICK {}\r\nUSER u 0 * :wave", c.nick));
        }
        for c in &mut clients {
            c.expect("001", |m| m.verb == "001");
            c.send(&format!("JOIN {a},{b}\r\nPING joined"));
        }
        for c in &mut clients {
            let nick = c.nick.clone();
            c.expect(&format!("wave {wave}: {nick}'s JOINs answered"), |m| m.verb == "PONG" && m.last() == "joined");
        }
        for (i, mut c) in clients.into_iter().enumerate() {
            if i % 2 == 0 {
                c.send("QUIT :wave over");
            }
            drop(c);
        }
    }
    // Every departure completed: only the watcher is left, everywhere.
    let mut probe = server.client("probe");
    probe.send(&format!("JOIN #fresh\r\nNAMES {a}\r\nNAMES {b}"));
    probe.expect("JOIN answered", |m| m.verb == "366" && m.p(1) == "#fresh");
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        probe.send(&format!("NAMES {a}\r\nNAMES {b}\r\nLUSERS"));
        let lines = probe.collect_until("266");
        let names: Vec<&str> =
            lines.iter().filter(|m| m.verb == "353").map(|m| m.last().trim_start_matches('@')).collect();
        let users = lines.iter().find(|m| m.verb == "251").map(|m| m.last().to_string()).unwrap_or_default();
        if names == ["watcher", "watcher"] && users.starts_with("There are 2 users") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "ghosts left: NAMES {names:?}, LUSERS {users:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Their nicks are free again.
    let mut again = server.client("w0x0");
    again.sync();
}

/// A client sends JOIN and at once 1.2 MB of channel messages (an exempt class: no flood
/// control). Its input waits while the JOIN goes to the channel's home, but that must not
/// count against its 16 KiB recvq: the server stops reading the socket meanwhile (TCP
/// back-pressure) and then handles every line (issue 11, "also seen": it was dropped for
/// Excess Flood within milliseconds).
#[test]
fn input_held_during_a_join_is_pushed_back_not_dropped() {
    let server = Server::start();
    let mut c = server.client("talker");
    let chan = homed_at(1 - server.shard_of(&c), 2);
    let n = 13_000;
    let mut burst = format!("JOIN {chan}\r\n").into_bytes();
    for i in 0..n {
        burst.extend_from_slice(format!("PRIVMSG {chan} :message {i:05} {}\r\n", "x".repeat(80)).as_bytes());
    }
    assert!(burst.len() > 1_200_000);
    c.send_raw(&burst);
    c.send("PING done");
    let seen = c.collect_until("PONG");
    assert!(seen.iter().all(|m| m.verb != "ERROR"), "{:?}", seen.iter().map(|m| &m.raw).collect::<Vec<_>>());
    // Every line was handled: STATS m counts the PRIVMSGs over both shards.
    c.send("STATS m");
    let stats = c.collect_until("219");
    let privmsg = stats.iter().find(|m| m.verb == "212" && m.p(1) == "PRIVMSG").expect("PRIVMSG in STATS m");
    assert_eq!(privmsg.p(2), n.to_string(), "{}", privmsg.raw);
}
