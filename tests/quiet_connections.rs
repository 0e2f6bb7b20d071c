//! Quiet connections sleep (issue 15, memory): a plain client that has sent nothing for
//! `[runtime] sleep_after` (1 s here, 15 s by default) gives up its task and waits in its
//! shard's epoll. Every way a sleeping
//! connection can be reached must still work, on both shards: channel traffic written to it,
//! its own input, a KILL, its peer hanging up, a burst larger than its socket takes at once.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// The watcher operator, and connections that sleep after one quiet second.
fn config(sleep_after: &str) -> String {
    format!("{BASE_CONFIG}{WATCHER_OPER}\n[runtime]\nsleep_after = \"{sleep_after}\"\n")
}

/// The operator who reads STATS S; it asks often enough never to fall asleep itself.
fn oper_watcher(server: &Server) -> Client {
    let mut watcher = server.client("watcher");
    watcher.send("OPER watcher pw");
    watcher.expect_verb("381");
    watcher
}

/// The nick of a line's source.
fn nick_of(m: &Msg) -> &str {
    m.source.as_deref().unwrap_or("").split('!').next().unwrap()
}

/// Connections asleep on each shard, from STATS S (`N connections (M asleep)`).
fn asleep(watcher: &mut Client) -> [usize; 2] {
    watcher.send("STATS S");
    let lines = watcher.collect_until("219");
    let mut out = [usize::MAX; 2];
    for l in lines.iter().filter(|m| m.verb == "249") {
        let text = l.last();
        let shard: usize = text.strip_prefix("shard ").unwrap().split(' ').next().unwrap().parse().unwrap();
        let n = text.split(" connections (").nth(1).and_then(|t| t.split(' ').next()).unwrap();
        out[shard] = n.parse().unwrap();
    }
    out
}

/// Waits until STATS S shows `want` connections asleep on each shard.
fn wait_asleep(watcher: &mut Client, want: [usize; 2]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = asleep(watcher);
        if now == want {
            return;
        }
        assert!(Instant::now() < deadline, "asleep per shard: {now:?}, expected {want:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn sleeping_connections_are_served_on_every_path() {
    let server = Server::with_config(2, &config("1s"));
    let mut watcher = oper_watcher(&server);
    watcher.send("JOIN #quiet");
    watcher.expect_verb("366");
    let mut sleepers: Vec<(Client, usize)> = server.clients_on_both_shards("q", 2);
    for (c, _) in sleepers.iter_mut() {
        c.send("JOIN #quiet");
        c.expect_verb("366");
    }
    for (c, _) in sleepers.iter_mut() {
        c.sync();
    }
    let per_shard = |list: &[(Client, usize)]| {
        let mut n = [0usize; 2];
        for (_, s) in list {
            n[*s] += 1;
        }
        n
    };
    // The watcher asks every 300 ms, so it stays awake; every other client falls asleep.
    wait_asleep(&mut watcher, per_shard(&sleepers));

    // Channel traffic reaches sleepers (the shard's writer, no task woken).
    watcher.send("PRIVMSG #quiet :while you sleep");
    for (c, _) in sleepers.iter_mut() {
        let m = c.expect_verb("PRIVMSG");
        assert_eq!(m.last(), "while you sleep", "{}", c.nick);
    }

    // A sleeper's own input wakes it: it is answered, and what it says reaches the others.
    let speaker = sleepers[0].0.nick.clone();
    sleepers[0].0.send("PING :awake");
    let pong = sleepers[0].0.expect_verb("PONG");
    assert_eq!(pong.last(), "awake");
    sleepers[0].0.send("PRIVMSG #quiet :good morning");
    for (c, _) in sleepers.iter_mut().skip(1) {
        let m = c.expect_verb("PRIVMSG");
        assert_eq!((nick_of(&m), m.last()), (speaker.as_str(), "good morning"));
    }
    watcher.expect("the speaker's message", |m| m.verb == "PRIVMSG" && m.last() == "good morning");
    // ...and it sleeps again once quiet.
    wait_asleep(&mut watcher, per_shard(&sleepers));

    // More than the sockets take at once (600 lines of ~400 bytes, read only after all were
    // sent; below the 256 KiB sendq): what the writer cannot send wakes the connection, whose
    // task waits for the socket to drain. Nothing is lost and the order holds.
    let big = "x".repeat(380);
    for i in 0..600 {
        watcher.send(&format!("PRIVMSG #quiet :{i} {big}"));
    }
    watcher.sync();
    for (c, _) in sleepers.iter_mut() {
        for i in 0..600 {
            let m = c.expect_verb("PRIVMSG");
            assert_eq!(m.last(), format!("{i} {big}"), "{}", c.nick);
        }
    }
    wait_asleep(&mut watcher, per_shard(&sleepers));

    // KILL of a sleeper on each shard: it hears why and is closed; the channel sees it go.
    for shard in 0..2 {
        let at = sleepers.iter().position(|(_, s)| *s == shard).unwrap();
        let (mut victim, _) = sleepers.remove(at);
        watcher.send(&format!("KILL {} :bedtime", victim.nick));
        let seen = victim.expect_closed();
        assert!(seen.iter().any(|m| m.verb == "ERROR" && m.last().contains("bedtime")), "{seen:?}");
        watcher.expect("the victim's QUIT", |m| m.verb == "QUIT" && nick_of(m) == victim.nick);
    }

    // A sleeper whose peer hangs up: the server notices and the channel sees it quit.
    wait_asleep(&mut watcher, per_shard(&sleepers));
    for (gone, _) in sleepers.drain(..) {
        let nick = gone.nick.clone();
        drop(gone);
        let quit = watcher.expect("a hung-up sleeper's QUIT", |m| m.verb == "QUIT" && nick_of(m) == nick);
        assert!(!quit.last().is_empty(), "{}", quit.raw);
    }
    wait_asleep(&mut watcher, [0, 0]);
    server.stop();
}

/// A server asked to stop while its clients sleep wakes them to say goodbye and exits at once.
#[test]
fn stopping_wakes_sleeping_connections() {
    let server = Server::with_config(2, &config("1s"));
    let mut watcher = oper_watcher(&server);
    let mut sleepers = server.clients_on_both_shards("z", 1);
    let mut want = [0usize; 2];
    for (_, s) in &sleepers {
        want[*s] += 1;
    }
    wait_asleep(&mut watcher, want);
    let started = Instant::now();
    let status = server.stop();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "stopping took {:?}", started.elapsed());
    for (c, _) in sleepers.iter_mut() {
        let seen = c.expect_closed();
        assert!(seen.iter().any(|m| m.verb == "ERROR"), "{}: {seen:?}", c.nick);
    }
}

/// `sleep_after = "0s"`: nobody sleeps, however quiet.
#[test]
fn sleep_after_zero_keeps_every_connection_awake() {
    let server = Server::with_config(2, &config("0s"));
    let mut watcher = oper_watcher(&server);
    let mut quiet = server.clients_on_both_shards("k", 1);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(asleep(&mut watcher), [0, 0]);
    for (c, _) in quiet.iter_mut() {
        c.sync();
    }
}
