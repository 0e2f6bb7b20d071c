//! Registration and connection life against the real binary at `--cores 2`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{Server, BASE_CONFIG};
use rustircd::proto::CaseMapping;

/// A nick whose owner shard (of 2) is `shard`.
fn nick_owned_by(prefix: &str, shard: usize) -> String {
    (0..).map(|i| format!("{prefix}{i}")).find(|n| CaseMapping::Ascii.fold(n).owner(2) == shard).unwrap()
}

#[test]
fn welcome_burst_has_every_part() {
    let srv = Server::start();
    let mut c = srv.connect();
    c.nick = "alice".into();
    c.send("NICK alice");
    c.send("USER alice 0 * :Alice Liddell");
    let lines = c.collect_until("376");
    let verbs: Vec<&str> = lines.iter().map(|m| m.verb.as_str()).collect();
    for v in ["001", "002", "003", "004", "005", "251", "255", "265", "266", "375", "372", "376"] {
        assert!(verbs.contains(&v), "missing {v} in {verbs:?}");
    }
    let w = &lines[0];
    assert_eq!(w.verb, "001");
    assert_eq!(w.source.as_deref(), Some("irc.test.local"));
    assert_eq!(w.p(0), "alice");
    assert!(w.last().contains("alice!~alice@127.0.0.1"), "{}", w.raw);
    let myinfo = lines.iter().find(|m| m.verb == "004").unwrap();
    assert_eq!(myinfo.p(1), "irc.test.local");
    let isupport: Vec<&str> = lines
        .iter()
        .filter(|m| m.verb == "005")
        .flat_map(|m| m.params[1..m.params.len() - 1].iter().map(String::as_str))
        .collect();
    for t in ["CASEMAPPING=ascii", "NETWORK=TestNet", "NICKLEN=30", "CHANTYPES=#", "PREFIX=(ov)@+", "LINELEN=512"] {
        assert!(isupport.contains(&t), "missing {t} in {isupport:?}");
    }
    // the MOTD from the config
    assert!(lines.iter().any(|m| m.verb == "372" && m.last().contains("test motd")));
}

#[test]
fn clients_on_both_shards_and_global_lusers() {
    let srv = Server::start();
    let mut clients = srv.clients_on_both_shards("spread", 2);
    let n = clients.len();
    // an unregistered connection on each shard counts as unknown everywhere
    let mut unknown = [srv.connect(), srv.connect()];
    let mut tries = 0;
    while srv.shard_of(&unknown[0]) == srv.shard_of(&unknown[1]) {
        tries += 1;
        assert!(tries < 64, "no connection reached the other shard");
        unknown[1] = srv.connect();
    }
    std::thread::sleep(Duration::from_millis(1500)); // shards share their counts each second
                                                     // Every client, whichever shard holds it, sees the global counts.
    for (c, _) in clients.iter_mut() {
        c.send("LUSERS");
        let lines = c.collect_until("266");
        let total = lines.iter().find(|m| m.verb == "251").unwrap();
        assert!(total.last().contains(&format!("There are {n} users")), "{}", total.raw);
        let unk = lines.iter().find(|m| m.verb == "253").expect("253");
        assert_eq!(unk.p(1), "2", "{}", unk.raw);
        let global = lines.iter().find(|m| m.verb == "266").unwrap();
        assert_eq!(global.p(1), n.to_string(), "{}", global.raw);
    }
    // the server logs which shard holds each client, and both are used
    let shards: std::collections::HashSet<usize> = clients.iter().map(|(_, s)| *s).collect();
    assert_eq!(shards.len(), 2);
}

#[test]
fn nick_in_use_across_shards_case_insensitively() {
    let srv = Server::start();
    let clients = srv.clients_on_both_shards("holder", 1);
    let (holder, hs) = &clients[0];
    let _ = holder;
    // a client on the other shard asks for the same nick in another case
    let other = clients.iter().position(|(_, s)| s != hs).unwrap();
    let mut clients = clients;
    let taken = clients[0].0.nick.to_uppercase();
    let c = &mut clients[other].0;
    c.send(&format!("NICK {taken}"));
    let m = c.expect_verb("433");
    assert_eq!(m.p(1), taken);
    // and an unregistered client too
    let mut u = srv.connect();
    u.send(&format!("NICK {taken}"));
    let m = u.expect_verb("433");
    assert_eq!(m.p(0), "*");
}

#[test]
fn racing_for_one_nick_exactly_one_wins() {
    let srv = Server::start();
    for round in 0..10 {
        // one client on each shard, both unregistered, both ask for the same nick at once
        let mut a = srv.connect();
        let mut b = srv.connect();
        let mut tries = 0;
        while srv.shard_of(&a) == srv.shard_of(&b) {
            tries += 1;
            assert!(tries < 64, "no connection reached the other shard");
            b = srv.connect();
        }
        let nick = format!("race{round}");
        let burst = format!("NICK {nick}\r\nUSER x 0 * :x\r\n");
        a.send_raw(burst.as_bytes());
        b.send_raw(burst.as_bytes());
        let mut wins = 0;
        for c in [&mut a, &mut b] {
            c.nick = nick.clone();
            let m = c.expect("001 or 433", |m| m.verb == "001" || m.verb == "433");
            if m.verb == "001" {
                wins += 1;
            }
        }
        assert_eq!(wins, 1, "round {round}");
    }
}

#[test]
fn nick_changes_and_release() {
    let srv = Server::start();
    let mut a = srv.client("first");
    // change to a nick owned by each shard, so both the local and remote claim paths run
    for shard in [0, 1] {
        let new = nick_owned_by(&format!("moved{shard}x"), shard);
        a.send(&format!("NICK {new}"));
        let m = a.expect_verb("NICK");
        assert_eq!(m.p(0), new);
        assert!(m.source.as_deref().unwrap().starts_with(&format!("{}!", a.nick)));
        a.nick = new;
    }
    // the old nick is free again
    let mut b = srv.client("first");
    // a case change by the holder is no collision
    b.send("NICK FIRST");
    assert_eq!(b.expect_verb("NICK").p(0), "FIRST");
    // taking a nick in use fails and keeps the old one
    b.send(&format!("NICK {}", a.nick));
    assert_eq!(b.expect_verb("433").p(1), a.nick);
    b.send("NICK");
    b.expect_verb("431");
}

#[test]
fn bad_input_gets_numerics_and_the_connection_stays() {
    let srv = Server::start();
    let mut bystander = srv.client("bystander");
    let mut c = srv.connect();
    c.nick = "*".into();
    c.send("MOTD");
    assert_eq!(c.expect_verb("451").p(0), "*");
    c.send("FROBNICATE now");
    assert_eq!(c.expect_verb("421").p(1), "FROBNICATE");
    c.send("USER onlyone");
    assert_eq!(c.expect_verb("461").p(1), "USER");
    c.send("NICK 1nvalid");
    assert_eq!(c.expect_verb("432").p(1), "1nvalid");
    c.send("NICK a,b");
    c.expect_verb("432");
    c.send(&format!("PRIVMSG x :{}", "y".repeat(600)));
    c.expect_verb("417");
    c.send_raw(&vec![b'z'; 9000]);
    c.send("");
    c.expect_verb("417");
    // Not UTF-8 (UTF8ONLY): refused whole, the verb unreadable.
    c.send_raw(b"\xff\xfe garbage \x00\x01\r\n");
    let f = c.expect_verb("FAIL");
    assert_eq!((f.p(0), f.p(1)), ("*", "INVALID_UTF8"), "{}", f.raw);
    c.send_raw(b"\r\r\n\n   \r\n:only.a.prefix\r\n@only=tags\r\n");
    c.send("PING");
    c.expect_verb("409");
    // still alive, and registers fine
    c.register("survivor");
    c.send("PING :still-here");
    assert_eq!(c.expect_verb("PONG").last(), "still-here");
    c.send("USER again 0 * :x");
    c.expect_verb("462");
    // the other client never noticed
    bystander.send("PING :ok");
    assert_eq!(bystander.expect_verb("PONG").last(), "ok");
}

#[test]
fn quit_gets_error_and_close() {
    let srv = Server::start();
    let mut c = srv.client("leaver");
    c.send("QUIT :see you");
    let seen = c.expect_closed();
    let err = seen.iter().find(|m| m.verb == "ERROR").expect("ERROR line");
    assert!(err.last().contains("Quit: see you"), "{}", err.raw);
    let line = srv.wait_log(&["Client disconnected", "leaver!"]);
    assert!(line.contains("reason=Quit: see you") && line.contains("shard="), "{line}");
    // before registration, too
    let mut u = srv.connect();
    u.send("QUIT");
    assert!(u.expect_closed().iter().any(|m| m.verb == "ERROR"));
}

#[test]
fn cap_negotiation_holds_registration_until_end() {
    let srv = Server::start();
    let mut c = srv.connect();
    c.nick = "capper".into();
    assert!(c.cap_ls().contains("message-tags"));
    c.send("NICK capper");
    c.send("USER capper 0 * :c");
    c.send("CAP REQ :no-such-cap");
    let nak = c.expect_verb("CAP");
    assert_eq!((nak.p(1), nak.last()), ("NAK", "no-such-cap"));
    // not registered yet: a PING answers, but no 001 came before it
    let before = c.sync();
    assert!(!before.iter().any(|m| m.verb == "001"), "{before:?}");
    c.send("CAP LIST");
    assert_eq!(c.expect_verb("CAP").p(1), "LIST");
    c.send("CAP BOGUS");
    c.expect_verb("410");
    c.send("CAP END");
    c.expect_verb("001");
}

#[test]
fn connection_password() {
    let cfg = BASE_CONFIG.replace("motd = \"test motd\"", "motd = \"test motd\"\npassword = \"sesame\"");
    let srv = Server::with_config(2, &cfg);
    let mut bad = srv.connect();
    bad.send("PASS wrong");
    bad.send("NICK bad");
    bad.send("USER bad 0 * :b");
    let seen = bad.expect_closed();
    assert!(seen.iter().any(|m| m.verb == "464"), "{seen:?}");
    let mut good = srv.connect();
    good.send("PASS sesame");
    good.register("good");
}

#[test]
fn ping_timeout_and_registration_timeout() {
    let cfg = BASE_CONFIG
        .replace("ping_frequency = \"90s\"", "ping_frequency = \"1s\"")
        .replace("connection_timeout = \"30s\"", "connection_timeout = \"1s\"");
    let srv = Server::with_config(2, &cfg);
    let mut idle = srv.client("sleepy");
    let mut lively = srv.client("lively");
    // the server pings after a second of silence; one who answers stays. It keeps answering
    // on its own thread while the silent one times out (with a 1 s ping, a test that waited
    // for that timeout without answering the next PING could lose the lively one too).
    let ping = lively.expect_verb("PING");
    lively.send(&format!("PONG :{}", ping.last()));
    let stop = Arc::new(AtomicBool::new(false));
    let keeper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(m) = lively.read_line(Duration::from_millis(50)) {
                    assert_ne!(m.verb, "ERROR", "the one who answers was dropped: {}", m.raw);
                    if m.verb == "PING" {
                        lively.send(&format!("PONG :{}", m.last()));
                    }
                }
            }
            lively
        })
    };
    let ping = idle.expect_verb("PING");
    assert_eq!(ping.last(), "irc.test.local");
    let seen = idle.expect_closed();
    let err = seen.iter().find(|m| m.verb == "ERROR").expect("ERROR");
    assert!(err.last().contains("Ping timeout: ") && err.last().ends_with(" seconds)"), "{}", err.raw);
    stop.store(true, Ordering::Relaxed);
    let mut lively = keeper.join().expect("the lively client's keeper");
    lively.send("PING :alive");
    let pong = lively.expect("PONG alive", |m| m.verb == "PONG" && m.last() == "alive" || m.verb == "ERROR");
    assert_eq!(pong.verb, "PONG", "{}", pong.raw);
    // a connection that never registers is dropped
    let mut lurker = srv.connect();
    let seen = lurker.expect_closed();
    assert!(seen.iter().any(|m| m.verb == "ERROR" && m.last().contains("Registration timed out")), "{seen:?}");
}

#[test]
fn input_waiting_for_a_nick_claim_is_pushed_back_not_dropped() {
    let cfg = BASE_CONFIG.replace("recvq = \"16KiB\"", "recvq = \"2KiB\"");
    let srv = Server::with_config(2, &cfg);
    let mut bystander = srv.client("calm");
    // A NICK owned by the other shard makes the client wait for an answer. What it sends
    // meanwhile (8 KiB, beyond the 2 KiB recvq) is not read from its socket until the answer
    // came (TCP back-pressure): nothing is dropped, and the client is not either. Overflowing
    // recvq with commands held by flood control is `limits::excess_flood_ends_only_the_flooder`.
    let mut flooder = srv.connect();
    let shard = srv.shard_of(&flooder);
    flooder.nick = "flooder".into();
    let nick = nick_owned_by("flood", 1 - shard);
    let mut burst = format!("NICK {nick}\r\n");
    let mut pings = 0;
    while burst.len() < 8192 {
        burst.push_str(&format!("PING :flood{pings}\r\n"));
        pings += 1;
    }
    flooder.send_raw(burst.as_bytes());
    for i in 0..pings {
        let m = flooder.expect("PONG", |m| m.verb == "PONG" || m.verb == "ERROR");
        assert_eq!((m.verb.as_str(), m.last()), ("PONG", format!("flood{i}").as_str()), "{}", m.raw);
    }
    bystander.send("PING :fine");
    assert_eq!(bystander.expect_verb("PONG").last(), "fine");
}

#[test]
fn sendq_overflow_closes_only_the_slow_reader() {
    let motd = "x".repeat(300);
    let motd_lines = vec![motd; 40].join("\n");
    let cfg = BASE_CONFIG
        .replace("motd = \"test motd\"", &format!("motd = \"\"\"\n{motd_lines}\n\"\"\""))
        .replace("sendq = \"256KiB\"", "sendq = \"64KiB\"");
    let srv = Server::with_config(2, &cfg);
    let mut bystander = srv.client("reader");
    let mut slow = srv.client("slowpoke");
    // ~12 KB per MOTD; 2000 of them is far beyond the socket buffers and the 64 KiB sendq.
    for _ in 0..20 {
        // (the server may already have dropped it: a failed write is expected then)
        let _ = std::io::Write::write_all(&mut slow.stream, "MOTD\r\n".repeat(100).as_bytes());
        std::thread::sleep(Duration::from_millis(5));
    }
    srv.wait_log(&["Client disconnected", "slowpoke!", "SendQ exceeded"]);
    bystander.send("PING :unaffected");
    assert_eq!(bystander.expect_verb("PONG").last(), "unaffected");
}

#[test]
fn graceful_stop_says_goodbye_to_everyone() {
    let srv = Server::start();
    let mut clients = srv.clients_on_both_shards("bye", 1);
    let status = srv.stop();
    assert!(status.success(), "exit status {status:?}");
    for (c, _) in clients.iter_mut() {
        let seen = c.expect_closed();
        let err = seen.iter().find(|m| m.verb == "ERROR").unwrap_or_else(|| panic!("no ERROR in {seen:?}"));
        assert!(err.last().starts_with("Closing Link"), "{}", err.raw);
    }
}

#[test]
fn server_queries() {
    let srv = Server::start();
    let mut c = srv.client("asker");
    c.send("VERSION");
    let v = c.expect_verb("351");
    assert!(v.p(1).starts_with("rustircd-"));
    c.send("TIME");
    assert_eq!(c.expect_verb("391").p(1), "irc.test.local");
    c.send("ADMIN");
    c.expect_verb("256");
    assert_eq!(c.expect_verb("257").last(), "here");
    c.expect_verb("259");
    c.send("INFO");
    c.expect_verb("374");
    c.send("MOTD other.server");
    c.expect_verb("402");
    c.send("MOTD");
    c.expect_verb("376");
}

#[test]
fn class_max_clients_counts_every_shard() {
    let cfg = BASE_CONFIG.replace("connection_timeout = \"30s\"", "connection_timeout = \"30s\"\nmax_clients = 3");
    let srv = Server::with_config(2, &cfg);
    // three registered clients, wherever the kernel puts them
    let mut held: Vec<_> = (0..3).map(|i| srv.client(&format!("held{i}"))).collect();
    let mut extra = srv.connect();
    let seen = extra.expect_closed();
    assert!(
        seen.iter().any(|m| m.verb == "ERROR" && m.last().contains("Too many connections in your class")),
        "{seen:?}"
    );
    // one leaves: room again
    held.pop().unwrap().send("QUIT");
    srv.wait_log(&["Client disconnected", "held2!"]);
    std::thread::sleep(Duration::from_millis(100));
    let mut again = srv.connect();
    again.register("again");
    held[0].send("PING :ok");
    assert_eq!(held[0].expect_verb("PONG").last(), "ok");
}
