//! The operator surface of server links against the real binary: LINKS, MAP, STATS l/c,
//! CONNECT, SQUIT and the link metrics — with a scripted TS6 peer (hybrid 8.2's dialect), and
//! with two rustircd processes.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Msg, Server, BASE_CONFIG};

const OPERS: &str = r#"
[[opers]]
name = "boss"
password = "pw"
allow_plaintext = true
privileges = ["all"]

[[opers]]
name = "helper"
password = "pw"
allow_plaintext = true
privileges = ["wallops"]
"#;

/// The base config with operators and a `[[links]]` block for the scripted hub `peer.test`
/// (SID 2BB), which may bring servers behind it.
fn config_with_peer(extra: &str) -> String {
    format!(
        "{BASE_CONFIG}{OPERS}
[[links]]
name = \"peer.test\"
sid = \"2BB\"
send_password = \"tothem\"
accept_password = \"tous\"
hub_mask = [\"*\"]
{extra}
"
    )
}

fn oper_up(c: &mut Client, name: &str) {
    c.send(&format!("OPER {name} pw"));
    c.expect_verb("381");
}

/// Operators, one on each shard (in shard order), and any more clients made on the way there
/// (kept connected).
fn opers_per_shard(srv: &Server) -> (Vec<(Client, usize)>, Vec<Client>) {
    let mut all = srv.clients_on_both_shards("op", 1);
    let mut ops = Vec::new();
    for shard in 0..2 {
        let i = all.iter().position(|(_, s)| *s == shard).unwrap();
        let (mut o, s) = all.remove(i);
        oper_up(&mut o, "boss");
        ops.push((o, s));
    }
    (ops, all.into_iter().map(|(c, _)| c).collect())
}

/// A scripted server connecting to `srv` as hybrid does (PASS/CAPAB/SERVER).
fn peer(srv: &Server) -> Client {
    let mut p = Client::connect(srv.addr);
    p.nick = "peer peer.test".into();
    p.send("PASS tous TS 6 :2BB");
    p.send("CAPAB :MLOCK KNOCK KLN TBURST RESYNC ENCAP UNKLN DLN UNDLN RHOST CLUSTER EOB HOP");
    p.send("SERVER peer.test 1 2BB + :scripted peer");
    p
}

/// The server's side of the handshake and burst, up to its EOB: the burst lines.
fn handshake(p: &mut Client) -> Vec<Msg> {
    for verb in ["PASS", "CAPAB", "SERVER", "SVINFO"] {
        p.expect_verb(verb);
    }
    let mut burst = Vec::new();
    loop {
        let m = p.expect("burst line", |_| true);
        if m.verb == "EOB" {
            return burst;
        }
        burst.push(m);
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// The peer's burst: itself with bob, a leaf `leaf.test` (4LL) with carol, a hidden
/// `hidden.test` (3HH); then a PING whose PONG says every line before it was taken.
fn peer_burst(p: &mut Client) {
    let t = now();
    p.send(&format!(":2BB SVINFO 6 6 0 :{t}"));
    p.send(":2BB SID leaf.test 2 4LL + :a leaf");
    p.send(":2BB SID hidden.test 2 3HH +h :a hidden one");
    p.send(&format!(":2BB UID bob 1 {t} +i bob bob.host bob.host 127.0.0.2 2BBAAAAAA * :Bob"));
    p.send(&format!(":4LL UID carol 2 {t} +i carol c.host c.host 127.0.0.3 4LLAAAAAA * :Carol"));
    p.send(":4LL EOB");
    p.send(":3HH EOB");
    p.send(":2BB EOB");
    p.send("PING :2BB");
    p.expect_verb("PONG");
}

/// Everything up to the line with `end`.
fn ask(c: &mut Client, line: &str, end: &str) -> Vec<Msg> {
    c.send(line);
    c.collect_until(end)
}

fn numerics<'a>(lines: &'a [Msg], verb: &str) -> Vec<&'a Msg> {
    lines.iter().filter(|m| m.verb == verb).collect()
}

/// LINKS rows as (name, uplink, "hops description").
fn links(c: &mut Client, args: &str) -> Vec<(String, String, String)> {
    let lines = ask(c, format!("LINKS {args}").trim_end(), "365");
    numerics(&lines, "364").iter().map(|m| (m.p(1).into(), m.p(2).into(), m.p(3).into())).collect()
}

/// The NOTICE text a server sends the client next (skipping server notices).
fn notice(c: &mut Client) -> String {
    c.expect("a NOTICE", |m| m.verb == "NOTICE" && !m.last().starts_with("*** Notice")).last().to_string()
}

/// Waits until `n` log lines contain every needle.
fn wait_log_count(srv: &Server, needles: &[&str], n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = srv.log_lines().iter().filter(|l| needles.iter().all(|x| l.contains(x))).count();
        if found >= n {
            return;
        }
        assert!(Instant::now() < deadline, "fewer than {n} log lines with {needles:?}: {:#?}", srv.log_lines());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn links_map_and_stats_show_the_network_on_every_shard() {
    let srv = Server::with_config(2, &config_with_peer(""));
    let mut users = srv.clients_on_both_shards("u", 1);
    let mut ops = srv.clients_on_both_shards("op", 1);
    for (o, _) in ops.iter_mut() {
        oper_up(o, "boss");
    }
    let mut p = peer(&srv);
    handshake(&mut p);
    peer_burst(&mut p);
    let users_here = users.len() + ops.len();

    for (u, shard) in users.iter_mut() {
        let rows = links(u, "");
        assert_eq!(
            rows,
            [
                ("irc.test.local".into(), "irc.test.local".into(), "0 test server".into()),
                ("peer.test".into(), "irc.test.local".into(), "1 scripted peer".into()),
                ("leaf.test".into(), "peer.test".into(), "2 a leaf".into()),
            ],
            "a user on shard {shard}: the hidden server left out"
        );
        // A mask narrows it; MAP is for operators.
        let rows = links(u, "*.test");
        assert_eq!(rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["peer.test", "leaf.test"]);
        u.send("MAP");
        u.expect_verb("481");
    }
    for (o, shard) in ops.iter_mut() {
        let rows = links(o, "");
        let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(names, ["irc.test.local", "peer.test", "hidden.test", "leaf.test"], "an operator on shard {shard}");
        assert_eq!(rows[2], ("hidden.test".into(), "peer.test".into(), "2 (H) a hidden one".into()));

        // MAP: the tree with SIDs and user counts (4 users and 2 opers here, bob, carol).
        let lines = ask(o, "MAP", "017");
        let map: Vec<&str> = numerics(&lines, "015").iter().map(|m| m.last()).collect();
        assert_eq!(map.len(), 4, "{map:#?}");
        let total = users_here + 2;
        let pct = |n: usize| {
            let f = (1000 * n + total / 2) / total;
            format!("({:>2}.{}%)", f / 10, f % 10)
        };
        let expect = [
            ("irc.test.local[0TS]", users_here),
            (" `- peer.test[2BB]", 1),
            ("     |- hidden.test[3HH]", 0),
            ("     `- leaf.test[4LL]", 1),
        ];
        for (line, (head, n)) in map.iter().zip(expect) {
            assert!(line.starts_with(&format!("{head} --")), "{line:?} starts with {head:?}");
            assert_eq!(line.find(" | Users:"), Some(50), "{line:?}: the column");
            assert!(line.ends_with(&format!("| Users: {n:>5} {}", pct(n))), "{line:?}: {n} users");
        }
        assert_eq!(lines.last().unwrap().last(), "End of /MAP");
    }

    // STATS l: the link, for everyone; its address and every connection for operators.
    let (u, _) = &mut users[0];
    let l = ask(u, "STATS l", "219");
    let rows = numerics(&l, "211");
    assert_eq!(rows.len(), 1, "{l:#?}");
    assert_eq!(rows[0].p(1), "peer.test");
    let (o, _) = &mut ops[1];
    let l = ask(o, "STATS l", "219");
    let rows = numerics(&l, "211");
    assert_eq!(rows.len(), 1 + users_here, "the link, then every client: {l:#?}");
    let link = rows[0];
    assert_eq!(link.p(1), "peer.test[127.0.0.1]", "{}", link.raw);
    let sent: u64 = link.p(3).parse().unwrap();
    let received: u64 = link.p(5).parse().unwrap();
    // We sent at least PASS CAPAB SERVER SVINFO, our users, PING, EOB and a PONG; the peer
    // sent 12 lines.
    assert!(sent >= 7 + users_here as u64, "{}", link.raw);
    assert!(received >= 12, "{}", link.raw);
    assert!(link.p(7).parse::<u64>().is_ok());
    assert!(link.last().starts_with("up, synced in ") && link.last().contains("caps: MLOCK KNOCK"), "{}", link.raw);
    let narrowed = ask(o, "STATS l peer.*", "219");
    assert_eq!(numerics(&narrowed, "211").len(), 1);

    // STATS c: the block (no address: the peer connects to us).
    let c = ask(o, "STATS c", "219");
    let blocks = numerics(&c, "213");
    assert_eq!(blocks.len(), 1);
    assert_eq!(&blocks[0].params[1..], ["C", "*", "*", "peer.test", "0", "default"]);
}

#[test]
fn squit_closes_a_direct_link_and_routes_toward_a_farther_server() {
    let srv = Server::with_config(2, &config_with_peer(""));
    let (mut ops, _others) = opers_per_shard(&srv);
    let mut helper = srv.client("helper");
    oper_up(&mut helper, "helper");
    let mut user = srv.client("plain");
    let mut p = peer(&srv);
    let burst = handshake(&mut p);
    let uid_of = |nick: &str| burst.iter().find(|m| m.verb == "UID" && m.p(0) == nick).unwrap().p(8).to_string();
    peer_burst(&mut p);

    // Refusals: not an operator, no privilege, no such server, this server.
    user.send("SQUIT leaf.test :no");
    user.expect_verb("481");
    helper.send("SQUIT leaf.test :no");
    assert_eq!(helper.expect_verb("723").p(1), "squit");
    let (o0, _) = &mut ops[0];
    o0.send("SQUIT nowhere.test :x");
    assert_eq!(o0.expect_verb("402").p(1), "nowhere.test");
    o0.send("SQUIT irc.test.local :x");
    assert!(notice(o0).contains("cannot SQUIT this server"));

    // Every operator in turn: a server behind the peer gets the SQUIT routed toward it; the
    // peer's answer (the split) takes it out of the network.
    for (i, (o, _)) in ops.iter_mut().enumerate() {
        let reason = format!("away {i}");
        o.send(&format!("SQUIT leaf.test :{reason}"));
        let sq = p.expect_verb("SQUIT");
        assert_eq!(sq.source.as_deref(), Some(uid_of(&o.nick).as_str()), "{}", sq.raw);
        assert_eq!((sq.p(0), sq.p(1)), ("4LL", reason.as_str()));
        let sn = o.expect("the server notice", |m| m.verb == "NOTICE" && m.last().contains(&format!("({reason})")));
        assert!(sn.last().contains(&format!("Remote SQUIT leaf.test from {}!", o.nick)), "{}", sn.raw);
        assert!(sn.last().ends_with(&format!("{{boss}} ({reason})")), "{}", sn.raw);
        if i == 0 {
            // The first time the peer does not obey: the server stays.
            p.send("PING :2BB");
            p.expect_verb("PONG");
            continue;
        }
        p.send(&format!(":2BB SQUIT 4LL :{reason}"));
        p.send("PING :2BB");
        p.expect_verb("PONG");
    }
    srv.wait_log(&["Netsplit: 1 server(s) and 1 user(s) lost behind 4LL"]);
    for (o, _) in ops.iter_mut() {
        let names: Vec<String> = links(o, "").into_iter().map(|r| r.0).collect();
        assert_eq!(names, ["irc.test.local", "peer.test", "hidden.test"]);
    }

    // The direct peer, by an operator on the shard that does not hold the link (whichever it
    // is, one of the two): the peer hears `:<oper> SQUIT <our SID>` then ERROR, and is closed.
    let holder = srv.wait_log(&["Link established: peer.test"]);
    let holder: usize = holder.split("shard=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    let (o, _) = ops.iter_mut().find(|(_, s)| *s != holder).unwrap();
    o.send("SQUIT peer.test :maintenance");
    let sq = p.expect_verb("SQUIT");
    assert_eq!(sq.source.as_deref(), Some(uid_of(&o.nick).as_str()));
    assert_eq!((sq.p(0), sq.p(1)), ("0TS", "maintenance"));
    let e = p.expect_verb("ERROR");
    assert!(e.last().contains("(maintenance)"), "{}", e.raw);
    p.expect_closed();
    let line = srv.wait_log(&["Link closed: peer.test", "reason=maintenance"]);
    assert!(line.contains(&format!("shard={holder}")), "{line}");
    srv.wait_log(&["Netsplit: 2 server(s) and 1 user(s) lost behind 2BB"]);
    srv.wait_log(&["Squit: peer.test (2BB) by ", "(maintenance)"]);
    o.expect("the split notice", |m| {
        m.verb == "NOTICE" && m.last().contains("Server peer.test split from us: maintenance")
    });
    for (o, _) in ops.iter_mut() {
        assert_eq!(links(o, "").len(), 1, "only this server is left");
    }
}

/// Two rustircd processes, A (2 shards, can dial B) and B (no address for A), linked and
/// unlinked by operators on either shard of A.
#[test]
fn connect_and_squit_between_two_servers() {
    let b = Server::with_config(
        2,
        &(BASE_CONFIG.replace("irc.test.local", "irc.b.test").replace("0TS", "2BB")
            + OPERS
            + "\n[[links]]\nname = \"irc.test.local\"\nsid = \"0TS\"\nsend_password = \"a2b\"\naccept_password = \"b2a\"\n"),
    );
    let a = Server::with_config(
        2,
        &format!(
            "{BASE_CONFIG}{OPERS}\n[[links]]\nname = \"irc.b.test\"\nsid = \"2BB\"\naddress = \"{}\"\nsend_password = \"b2a\"\naccept_password = \"a2b\"\n",
            b.addr
        ),
    );
    let (mut ops, others) = opers_per_shard(&a);
    let on_a = ops.len() + others.len();
    let mut ob = b.client("opb");
    oper_up(&mut ob, "boss");
    let mut bob = b.client("bob");

    // Refusals.
    ob.send("CONNECT irc.test.local");
    assert_eq!(notice(&mut ob), "Connect: irc.test.local has no address: it connects to us");
    let (o0, _) = &mut ops[0];
    o0.send("CONNECT nowhere.test");
    assert_eq!(notice(o0), "Connect: Host nowhere.test not listed in the configuration");
    o0.send("CONNECT irc.b.test 0");
    assert_eq!(notice(o0), "Connect: Illegal port number 0");
    bob.send("CONNECT irc.test.local");
    bob.expect_verb("481");

    for round in 0..2 {
        // CONNECT from one shard's operator, SQUIT from the other's; then the other way round.
        let (ci, si) = (round, 1 - round);
        let o = &mut ops[ci].0;
        o.send("CONNECT irc.b.test");
        assert_eq!(notice(o), format!("Connecting to irc.b.test[127.0.0.1].{}", b.addr.port()));
        wait_log_count(&a, &["Link established: irc.b.test", "outbound"], round + 1);
        wait_log_count(&b, &["Link established: irc.test.local", "inbound"], round + 1);
        // B's users are seen from A once B's burst is in.
        let mut seen = false;
        for _ in 0..100 {
            o.send("WHOIS bob");
            if o.expect("311 or 401", |m| m.verb == "311" || m.verb == "401").verb == "311" {
                seen = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(seen, "bob is seen from A");
        o.send("CONNECT irc.b.test");
        assert_eq!(notice(o), "Connect: Server irc.b.test already present from irc.b.test");
        let names: Vec<String> = links(&mut bob, "").into_iter().map(|r| r.0).collect();
        assert_eq!(names, ["irc.b.test", "irc.test.local"]);
        let map = ask(o, "MAP", "017");
        let rows: Vec<&str> = numerics(&map, "015").iter().map(|m| m.last()).collect();
        assert_eq!(rows.len(), 2, "{rows:#?}");
        assert!(
            rows[0].starts_with("irc.test.local[0TS] ") && rows[0].contains(&format!("| Users: {on_a:>5} ")),
            "{}",
            rows[0]
        );
        assert!(rows[1].starts_with(" `- irc.b.test[2BB] ") && rows[1].contains("| Users:     2 "), "{}", rows[1]);

        let o = &mut ops[si].0;
        let reason = format!("maintenance {round}");
        o.send(&format!("SQUIT irc.b.test :{reason}"));
        wait_log_count(&a, &["Link closed: irc.b.test", &format!("reason={reason}")], 1);
        wait_log_count(&b, &["Link closed: irc.test.local", &format!("reason=SQUIT: {reason}")], 1);
        wait_log_count(&a, &["Netsplit: 1 server(s) and 2 user(s) lost behind 2BB"], round + 1);
        wait_log_count(&b, &[&format!("Netsplit: 1 server(s) and {on_a} user(s) lost behind 0TS")], round + 1);
        let mut gone = false;
        for _ in 0..100 {
            if links(&mut bob, "").len() == 1 && links(o, "").len() == 1 {
                gone = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone, "each side lists only itself");
    }
    // No autoconnect: nothing relinks by itself.
    std::thread::sleep(Duration::from_millis(1500));
    wait_log_count(&a, &["Link established: irc.b.test"], 2);
    assert_eq!(a.log_lines().iter().filter(|l| l.contains("Link established")).count(), 2);
}

#[test]
fn link_metrics_count_servers_links_bursts_and_splits() {
    let srv = Server::with_config(2, &config_with_peer("[metrics]\nenabled = true\naddress = \"127.0.0.1:0\"\n"));
    let line = srv.wait_log(&["Metrics on http://"]);
    let url = line.split("Metrics on ").nth(1).unwrap().trim().to_string();
    let scrape = || ureq::get(&url).timeout(Duration::from_secs(10)).call().unwrap().into_string().unwrap();
    let series = |text: &str, name: &str| -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')).map(|v| v.parse().unwrap())
    };
    let text = scrape();
    assert_eq!(series(&text, "rustircd_servers"), Some(0.0));
    assert_eq!(series(&text, "rustircd_server_links"), Some(0.0));
    assert_eq!(series(&text, "rustircd_netsplits_total"), Some(0.0));
    assert_eq!(series(&text, "rustircd_burst_duration_seconds_count"), Some(0.0));

    let mut p = peer(&srv);
    handshake(&mut p);
    peer_burst(&mut p);
    // The report is taken at each shard's next tick: wait for it.
    let wait_for = |name: &str, want: f64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = scrape();
            if series(&text, name) == Some(want) {
                return text;
            }
            assert!(Instant::now() < deadline, "{name} never {want}: {text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let text = wait_for("rustircd_servers", 3.0);
    assert_eq!(series(&text, "rustircd_server_links"), Some(1.0));
    assert_eq!(series(&text, "rustircd_burst_duration_seconds_count"), Some(1.0), "the peer's EOB");
    assert_eq!(series(&text, "rustircd_burst_duration_seconds_bucket{le=\"+Inf\"}"), Some(1.0));
    p.send(":2BB SQUIT 4LL :gone");
    p.send("PING :2BB");
    p.expect_verb("PONG");
    let text = wait_for("rustircd_servers", 2.0);
    assert_eq!(series(&text, "rustircd_netsplits_total"), Some(1.0));
    drop(p);
    let text = wait_for("rustircd_servers", 0.0);
    assert_eq!(series(&text, "rustircd_netsplits_total"), Some(2.0));
    assert_eq!(series(&text, "rustircd_server_links"), Some(0.0));
}
