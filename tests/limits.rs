//! Connection classes and their limits: per-IP and per-block connection counts and the
//! connection throttle (counted across both shards), exempt classes, flood control by fake lag,
//! and hostname/ident lookups.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// The base config with its class made untrusted and `settings` added to it.
fn limited(settings: &str) -> String {
    BASE_CONFIG.replace("exempt = true", &format!("exempt = false\n{settings}"))
}

/// Connects from `src` and returns the ERROR the server closed with, if it did at once.
fn refused_from(srv: &Server, src: &str) -> Option<String> {
    let mut c = srv.connect_from(src);
    // The server may have closed already (a refusal): the write may fail, the ERROR is there.
    let _ = std::io::Write::write_all(&mut c.stream, b"PING :probe\r\n");
    loop {
        let m = c.read_line(TIMEOUT)?;
        if m.verb == "ERROR" {
            return Some(m.last().to_string());
        }
        if m.verb == "PONG" {
            return None;
        }
    }
}

#[test]
fn per_ip_limit_holds_across_shards() {
    let srv = Server::with_config(2, &limited("max_per_ip = 3\nthrottle_count = 0"));
    // three connections from one address, wherever the kernel puts them
    let mut held: Vec<Client> = (0..3).map(|i| srv.client(&format!("ip{i}"))).collect();
    let shards: std::collections::BTreeSet<usize> = held.iter().map(|c| srv.shard_of(c)).collect();
    let err = refused_from(&srv, "127.0.0.1").expect("the fourth is refused");
    assert!(err.contains("Too many connections from your IP"), "{err}");
    // other addresses are not affected
    assert_eq!(refused_from(&srv, "127.0.0.5"), None);
    // one leaves: there is room again (the other shard hears of it over the mesh)
    held.pop().unwrap().send("QUIT");
    srv.wait_log(&["Client disconnected", "ip2"]);
    let mut tries = 0;
    let mut again = loop {
        let mut c = srv.connect();
        let _ = std::io::Write::write_all(&mut c.stream, b"PING :probe\r\n");
        match c.read_line(TIMEOUT) {
            Some(m) if m.verb == "PONG" => break c,
            other => {
                tries += 1;
                assert!(tries < 20, "no room after a departure: {other:?}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    again.register("ip3");
    assert!(shards.len() <= 2);
    // full again: refused whichever shard takes the connection
    let refused_on =
        |s: usize| srv.log_lines().iter().any(|l| l.contains("Client refused") && l.contains(&format!("shard={s} ")));
    let mut n = 0;
    while !(refused_on(0) && refused_on(1)) {
        let err = refused_from(&srv, "127.0.0.1").expect("still full");
        assert!(err.contains("Too many connections from your IP"));
        n += 1;
        assert!(n < 60, "refusals never reached both shards");
    }
}

#[test]
fn per_block_limit_and_exempt_classes() {
    let cfg = limited("max_per_ip = 0\nmax_per_cidr = 2\ncidr_v4 = 24\nthrottle_count = 0");
    // 127.0.9.0/24 is trusted: a class of its own, exempt, listed first
    let trusted =
        "[[classes]]\nname = \"trusted\"\nhosts = [\"127.0.9.*\"]\nexempt = true\n\n[[classes]]\nname = \"users\"";
    let cfg = cfg.replacen("[[classes]]\nname = \"users\"", trusted, 1);
    let srv = Server::with_config(2, &cfg);
    let mut a = srv.connect_from("127.0.0.1");
    a.register("a");
    let mut b = srv.connect_from("127.0.0.2");
    b.register("b");
    let err = refused_from(&srv, "127.0.0.3").expect("third in the /24 is refused");
    assert!(err.contains("Too many connections from your subnet"), "{err}");
    assert_eq!(refused_from(&srv, "127.0.1.1"), None, "another /24");
    let trusted: Vec<Client> = (0..5).map(|_| srv.connect_from("127.0.9.1")).collect();
    for mut t in trusted {
        t.sync();
    }
}

#[test]
fn connection_throttle_per_ip() {
    let srv = Server::with_config(2, &limited("max_per_ip = 0\nthrottle_count = 3\nthrottle_window = \"60s\""));
    for _ in 0..3 {
        assert_eq!(refused_from(&srv, "127.0.0.7"), None);
    }
    // A shard hears of the other's connections over the mesh: one that has not yet may admit
    // one more (`commands::admission`: at most one per other shard). At two shards, the
    // fourth or at the latest the fifth within the window is throttled.
    let err = (0..2).find_map(|_| refused_from(&srv, "127.0.0.7")).expect("throttled within the window");
    assert!(err.contains("throttled"), "{err}");
    assert_eq!(refused_from(&srv, "127.0.0.8"), None, "other addresses are not");
}

#[test]
fn flood_control_delays_commands_and_loses_none() {
    let srv = Server::with_config(2, &limited("max_per_ip = 0\nflood_burst = 5\nflood_rate = 20"));
    let mut fast = srv.client("fast");
    let mut peer = srv.client("peer");
    let start = Instant::now();
    let mut burst = String::new();
    for i in 0..45 {
        burst.push_str(&format!("PRIVMSG peer :{i}\r\n"));
    }
    fast.send_raw(burst.as_bytes());
    let told = fast.expect_verb("NOTICE");
    assert!(told.last().contains("too fast"), "{}", told.raw);
    for i in 0..45 {
        let m = peer.expect_verb("PRIVMSG");
        assert_eq!(m.last(), i.to_string(), "in order, none lost");
    }
    // 40 commands past the burst at 20 a second: about two seconds of fake lag
    assert!(start.elapsed() >= Duration::from_millis(1500), "{:?}", start.elapsed());
    fast.sync();
}

#[test]
fn excess_flood_ends_only_the_flooder() {
    let cfg =
        limited("max_per_ip = 0\nflood_burst = 5\nflood_rate = 1").replace("recvq = \"16KiB\"", "recvq = \"4KiB\"");
    let cfg = cfg + "\n[[opers]]\nname = \"boss\"\npassword = \"pw\"\nallow_plaintext = true\nprivileges = [\"all\"]\n";
    let srv = Server::with_config(2, &cfg);
    let mut op = srv.client("op");
    op.send("OPER boss pw");
    op.expect_verb("381");
    let mut flooder = srv.client("flooder");
    let mut line = String::new();
    for i in 0..200 {
        line.push_str(&format!("PRIVMSG op :line {i} padding padding padding\r\n"));
    }
    flooder.send_raw(line.as_bytes());
    let seen = flooder.expect_closed();
    assert!(seen.iter().any(|m| m.verb == "ERROR" && m.last().contains("Excess Flood")), "{seen:?}");
    op.expect("notice", |m| m.verb == "NOTICE" && m.last().contains("Excess Flood: flooder!"));
    op.sync();
}

#[test]
fn lookups_announce_themselves_and_never_hold_registration_past_the_timeout() {
    let cfg = BASE_CONFIG.to_string() + "\n[lookups]\ndns = true\nident = true\ntimeout = \"2s\"\n";
    let srv = Server::with_config(2, &cfg);
    let start = Instant::now();
    let mut c = srv.connect();
    let first = c.expect_verb("NOTICE");
    assert_eq!(first.last(), "*** Looking up your hostname...");
    c.expect("ident notice", |m| m.verb == "NOTICE" && m.last() == "*** Checking Ident");
    c.send("NICK looked");
    c.send("USER looked 0 * :x");
    let host = c.expect("host result", |m| m.verb == "NOTICE" && m.last().contains("hostname"));
    // no identd on this machine's port 113 (or one that does not know us): no ident
    c.expect("ident result", |m| m.verb == "NOTICE" && m.last().contains("Ident response"));
    c.expect_verb("001");
    assert!(start.elapsed() < Duration::from_secs(4), "{:?}", start.elapsed());
    c.send("WHOIS looked");
    let whois = c.expect_verb("311");
    // the server's answer agrees with a forward-confirmed lookup done here
    let expect = rustircd::lookup::reverse_confirmed("127.0.0.1".parse().unwrap());
    match expect {
        Some(name) => {
            assert_eq!(host.last(), "*** Found your hostname");
            assert_eq!(whois.p(3), name);
        }
        None => {
            assert_eq!(host.last(), "*** Couldn't look up your hostname");
            assert_eq!(whois.p(3), "127.0.0.1");
        }
    }
    // a second client from the same address gets the cached answer (on its shard)
    let hits = (0..6)
        .map(|i| {
            let mut d = srv.connect();
            d.expect_verb("NOTICE");
            let n = d.expect("host", |m| m.verb == "NOTICE" && m.last().contains("hostname"));
            d.send(&format!("NICK again{i}"));
            d.send("USER a 0 * :x");
            d.expect_verb("001");
            n.last().ends_with("(cached)") as usize
        })
        .sum::<usize>();
    assert!(hits >= 4, "at most one miss per shard: {hits} cached of 6");
}
