//! Server links in TS6 against the real binary: a scripted peer speaking hybrid 8.2's dialect
//! (the lines of `shared/ts6-captures`), and two rustircd processes linked to each other.

mod common;

use std::time::Duration;

use common::{link_block, server_config, Client, Msg, Server, BASE_CONFIG};

/// The base config with a `[[links]]` block for the scripted peer `peer.test` (SID 2BB).
fn config_with_peer(extra: &str) -> String {
    format!(
        "{BASE_CONFIG}
[[links]]
name = \"peer.test\"
sid = \"2BB\"
send_password = \"tothem\"
accept_password = \"tous\"
{extra}
"
    )
}

/// A scripted server connecting to `srv`; it says PASS/CAPAB/SERVER as hybrid does.
fn peer(srv: &Server, pass: &str, name: &str, sid: &str) -> Client {
    let mut p = Client::connect(srv.addr);
    p.nick = format!("peer {name}");
    p.send(&format!("PASS {pass} TS 6 :{sid}"));
    p.send("CAPAB :MLOCK KNOCK KLN TBURST RESYNC ENCAP UNKLN DLN UNDLN RHOST CLUSTER EOB HOP");
    p.send(&format!("SERVER {name} 1 {sid} + :scripted peer"));
    p
}

/// Reads the server's side of the handshake and burst up to its EOB; returns the burst lines.
fn handshake(p: &mut Client, srv_sid: &str) -> Vec<Msg> {
    let pass = p.expect_verb("PASS");
    assert_eq!(pass.p(0), "tothem");
    let capab = p.expect_verb("CAPAB");
    assert!(!capab.p(0).split(' ').any(|c| c == "AOP" || c == "QOP"), "{}", capab.raw);
    let server = p.expect_verb("SERVER");
    assert_eq!((server.p(0), server.p(1), server.p(2)), ("irc.test.local", "1", srv_sid));
    let svinfo = p.expect_verb("SVINFO");
    assert_eq!((svinfo.p(0), svinfo.p(1), svinfo.p(2)), ("6", "6", "0"));
    let mut burst = Vec::new();
    loop {
        let m = p.expect("burst line", |_| true);
        if m.verb == "EOB" {
            assert_eq!(m.source.as_deref(), Some(srv_sid));
            return burst;
        }
        burst.push(m);
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn a_peer_links_bursts_and_messages_cross_both_ways() {
    let srv = Server::with_config(2, &config_with_peer(""));
    let mut alice = srv.client("alice");
    let mut p = peer(&srv, "tous", "peer.test", "2BB");
    let burst = handshake(&mut p, "0TS");
    let alice_uid = burst
        .iter()
        .find(|m| m.verb == "UID" && m.p(0) == "alice")
        .unwrap_or_else(|| panic!("alice in the burst: {burst:#?}"))
        .p(8)
        .to_string();
    assert!(burst.iter().any(|m| m.verb == "PING" && m.p(0) == "0TS"), "{burst:#?}");
    let t = now();
    p.send(&format!(":2BB SVINFO 6 6 0 :{t}"));
    p.send(&format!(":2BB UID bob 1 {t} +i bob bob.host bob.host 127.0.0.2 2BBAAAAAA * :Bob Remote"));
    p.send(":2BB EOB");
    p.send("PING :2BB");
    let pong = p.expect_verb("PONG");
    assert_eq!((pong.source.as_deref(), pong.last()), (Some("0TS"), "2BB"));

    // Clients on both shards see bob and reach him: exactly one line on the link each.
    let mut more = srv.clients_on_both_shards("c", 1);
    for (c, _) in more.iter_mut() {
        c.send("WHOIS bob");
        let whois = c.expect_verb("311");
        assert_eq!((whois.p(1), whois.p(2), whois.p(3)), ("bob", "bob", "bob.host"));
        let server = c.expect_verb("312");
        assert_eq!(server.p(2), "peer.test", "{}", server.raw);
        c.send("PRIVMSG bob :hi from a shard");
    }
    // The clients registered after the link: the peer heard of each before its message, and
    // got one copy of each message.
    let (mut uids, mut senders) = (Vec::new(), Vec::new());
    while senders.len() < more.len() {
        let m = p.expect("a UID or a PRIVMSG", |m| m.verb == "UID" || m.verb == "PRIVMSG");
        if m.verb == "UID" {
            uids.push(m.p(8).to_string());
            continue;
        }
        assert_eq!((m.p(0), m.p(1)), ("2BBAAAAAA", "hi from a shard"));
        let from = m.source.clone().unwrap();
        assert!(uids.contains(&from) && !senders.contains(&from), "{} from {uids:?}", m.raw);
        senders.push(from);
    }
    alice.send("PRIVMSG bob :hello bob");
    let m = p.expect("alice's PRIVMSG", |m| m.verb == "PRIVMSG");
    assert_eq!((m.source.as_deref(), m.p(0), m.p(1)), (Some(alice_uid.as_str()), "2BBAAAAAA", "hello bob"));

    // And back: by UID, as TS6 sends it.
    p.send(&format!(":2BBAAAAAA PRIVMSG {alice_uid} :hello alice"));
    let m = alice.expect_verb("PRIVMSG");
    assert_eq!((m.source.as_deref(), m.p(0), m.p(1)), (Some("bob!bob@bob.host"), "alice", "hello alice"));

    // `WHOIS bob bob` asks bob's server (idle time); its numerics come back to alice.
    alice.send("WHOIS bob bob");
    let w = p.expect("the remote WHOIS", |m| m.verb == "WHOIS");
    assert_eq!((w.source.as_deref(), w.p(0), w.p(1)), (Some(alice_uid.as_str()), "2BBAAAAAA", "bob"));
    p.send(&format!(":2BB 311 {alice_uid} bob bob bob.host * :Bob Remote"));
    p.send(&format!(":2BB 317 {alice_uid} bob 42 {t} :seconds idle, signon time"));
    p.send(&format!(":2BB 318 {alice_uid} bob :End of /WHOIS list."));
    let idle = alice.expect("317", |m| m.verb == "317");
    assert_eq!((idle.source.as_deref(), idle.p(0), idle.p(1), idle.p(2)), (Some("peer.test"), "alice", "bob", "42"));
    alice.expect_verb("318");
    // A fake direction: a source the link does not lead to is dropped.
    p.send(&format!(":0TSAAAAAA PRIVMSG {alice_uid} :spoofed"));
    // bob quits; then nothing more reaches alice from him.
    p.send(":2BBAAAAAA QUIT :bye");
    alice.send("WHOIS bob");
    alice.expect("401 for bob after his QUIT", |m| m.verb == "401" || m.verb == "311");
    p.send(&format!(":2BB UID bob2 1 {t} +i bob bob.host bob.host 127.0.0.2 2BBAAAAAB * :Bob Again"));
    p.send("PING :2BB");
    p.expect_verb("PONG");
    // The peer goes away: its users leave the network everywhere.
    drop(p);
    for (c, _) in more.iter_mut() {
        let mut gone = false;
        for _ in 0..50 {
            c.send("WHOIS bob2");
            let m = c.expect("311 or 401", |m| m.verb == "401" || m.verb == "311");
            if m.verb == "401" {
                gone = true;
                break;
            }
            c.sync();
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(gone, "bob2 left with the split");
    }
    srv.wait_log(&["Link closed: peer.test"]);
    srv.wait_log(&["Netsplit: 1 server(s) and 1 user(s) lost behind 2BB"]);
    assert!(alice.read_line(Duration::from_millis(100)).is_none_or(|m| !m.raw.contains("spoofed")));
}

#[test]
fn a_peer_is_refused_with_a_clear_error() {
    let srv = Server::with_config(1, &config_with_peer(""));
    let cases = [
        ("wrong", "peer.test", "2BB", "Invalid password"),
        ("tous", "nobody.test", "2BB", "No connect {} block"),
        ("tous", "peer.test", "3CC", "Wrong SID"),
    ];
    for (pass, name, sid, why) in cases {
        let mut p = peer(&srv, pass, name, sid);
        let e = p.expect("an ERROR", |m| m.verb == "ERROR");
        assert!(e.p(0).contains(why), "{name}/{pass}: {}", e.raw);
        p.expect_closed();
    }
    // A charybdis-style three-argument SERVER needs the SID its PASS gives.
    let mut p = Client::connect(srv.addr);
    p.send("PASS tous TS 6");
    p.send("CAPAB :QS EX IE KLN UNKLN ENCAP TB SERVICES EUID EOPMOD MLOCK");
    p.send("SERVER peer.test 1 :atheme");
    let e = p.expect("an ERROR", |m| m.verb == "ERROR");
    assert!(e.p(0).contains("Invalid SID"), "{}", e.raw);
    // Four parameters is neither form.
    let mut p = Client::connect(srv.addr);
    p.send("PASS tous TS 6 :2BB");
    p.send("SERVER peer.test 1 2BB :desc");
    let e = p.expect("an ERROR", |m| m.verb == "ERROR");
    assert!(e.p(0).contains("Not enough parameters"), "{}", e.raw);
    // The same server twice: the second is refused, the first stays.
    let mut first = peer(&srv, "tous", "peer.test", "2BB");
    handshake(&mut first, "0TS");
    let mut second = peer(&srv, "tous", "peer.test", "2BB");
    let e = second.expect("an ERROR", |m| m.verb == "ERROR");
    assert!(e.p(0).contains("already exists"), "{}", e.raw);
    first.send("PING :2BB");
    first.expect_verb("PONG");
}

#[test]
fn nick_collisions_follow_the_ts_rules() {
    let srv = Server::with_config(2, &config_with_peer(""));
    let mut alice = srv.client("alice");
    let mut dave = srv.client("dave");
    let mut p = peer(&srv, "tous", "peer.test", "2BB");
    let burst = handshake(&mut p, "0TS");
    let uid_of = |n: &str| burst.iter().find(|m| m.verb == "UID" && m.p(0) == n).unwrap().p(8).to_string();
    let (alice_uid, dave_uid) = (uid_of("alice"), uid_of("dave"));
    let t = now();
    // Another user, newer: the incoming one loses, killed toward its own server only.
    p.send(&format!(":2BB UID alice 1 {} +i other other.host other.host 10.0.0.9 2BBAAAAAA * :x", t + 100));
    let k = p.expect_verb("KILL");
    assert_eq!(k.p(0), "2BBAAAAAA");
    assert!(k.p(1).contains("Nick collision"), "{}", k.raw);
    alice.send("PING :still");
    alice.expect_verb("PONG");
    // Another user, older: ours loses, everywhere.
    p.send(&format!(":2BB UID dave 1 {} +i other other.host other.host 10.0.0.9 2BBAAAAAB * :x", t - 1000));
    let k = p.expect_verb("KILL");
    assert_eq!(k.p(0), dave_uid);
    dave.expect("dave's ERROR", |m| m.verb == "ERROR" || m.verb == "KILL");
    let mut c = srv.client("watcher");
    c.send("WHOIS dave");
    let w = c.expect_verb("311");
    assert_eq!(w.p(2), "other", "the remote dave has the nick");
    let _ = alice_uid;
}

#[test]
fn two_servers_link_and_users_meet() {
    let b = Server::with_config(
        2,
        &(BASE_CONFIG.replace("irc.test.local", "irc.b.test").replace("0TS", "2BB")
            + "\n[[links]]\nname = \"irc.test.local\"\nsid = \"0TS\"\nsend_password = \"a2b\"\naccept_password = \"b2a\"\n"),
    );
    let a = Server::with_config(
        2,
        &format!(
            "{BASE_CONFIG}\n[[links]]\nname = \"irc.b.test\"\nsid = \"2BB\"\naddress = \"{}\"\nsend_password = \"b2a\"\naccept_password = \"a2b\"\nautoconnect = true\nreconnect_min = \"1s\"\nreconnect_max = \"2s\"\n",
            b.addr
        ),
    );
    a.wait_log(&["Link established: irc.b.test"]);
    b.wait_log(&["Link established: irc.test.local"]);
    let mut on_a = a.clients_on_both_shards("a", 1);
    let mut on_b = b.clients_on_both_shards("b", 1);
    for (c, _) in on_b.iter_mut() {
        c.sync();
    }
    // Every user of A reaches every user of B and back, whichever shard either is on.
    for (ca, _) in on_a.iter_mut() {
        for (cb, _) in on_b.iter_mut() {
            let mut found = false;
            for _ in 0..50 {
                ca.send(&format!("WHOIS {}", cb.nick));
                let m = ca.expect("311 or 401", |m| m.verb == "311" || m.verb == "401");
                if m.verb == "311" {
                    found = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(found, "{} sees {}", ca.nick, cb.nick);
            ca.send(&format!("PRIVMSG {} :hi from {}", cb.nick, ca.nick));
            let m = cb.expect_verb("PRIVMSG");
            assert_eq!(m.p(1), format!("hi from {}", ca.nick));
            assert!(m.source.as_deref().unwrap().starts_with(&format!("{}!", ca.nick)));
            cb.send(&format!("PRIVMSG {} :back", ca.nick));
            let m = ca.expect_verb("PRIVMSG");
            assert_eq!(m.p(1), "back");
        }
    }
    // B goes down hard: A splits, and its users lose B's.
    b.signal(9);
    a.wait_log(&["Link closed: irc.b.test"]);
    a.wait_log(&["Netsplit: 1 server(s) and"]);
    let (ca, _) = &mut on_a[0];
    let nick = on_b[0].0.nick.clone();
    let mut gone = false;
    for _ in 0..50 {
        ca.send(&format!("WHOIS {nick}"));
        if ca.expect("311 or 401", |m| m.verb == "311" || m.verb == "401").verb == "401" {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(gone);
    // Autoconnect keeps trying, backing off.
    a.wait_log(&["Link irc.b.test: next attempt in"]);
}

/// A scripted peer linked to `srv` with bob (2BBAAAAAA) behind it; returns the peer and our
/// burst.
fn linked_with_bob(srv: &Server) -> (Client, Vec<Msg>) {
    let mut p = peer(srv, "tous", "peer.test", "2BB");
    let burst = handshake(&mut p, "0TS");
    let t = now();
    p.send(&format!(":2BB SVINFO 6 6 0 :{t}"));
    p.send(&format!(":2BB UID bob 1 {t} +i bob bob.host bob.host 127.0.0.2 2BBAAAAAA * :Bob Remote"));
    (p, burst)
}

/// Reads until a line matching `pred`, failing on any line matching `never` meanwhile.
fn expect_without(c: &mut Client, what: &str, pred: impl Fn(&Msg) -> bool, never: impl Fn(&Msg) -> bool) -> Msg {
    c.expect(what, |m| {
        assert!(!never(m), "{what}: unexpected {}", m.raw);
        pred(m)
    })
}

#[test]
fn channels_cross_a_link() {
    let srv = Server::with_config(2, &config_with_peer(""));
    let mut members = srv.clients_on_both_shards("m", 1);
    for (c, _) in members.iter_mut() {
        c.send("JOIN #lab");
        c.expect_verb("366");
    }
    for (c, _) in members.iter_mut() {
        c.sync();
    }
    let (mut p, burst) = linked_with_bob(&srv);
    let sjoin = burst.iter().find(|m| m.verb == "SJOIN" && m.p(1) == "#lab").expect("#lab in the burst");
    assert_eq!(sjoin.source.as_deref(), Some("0TS"));
    let ts = sjoin.p(0).to_string();
    assert_eq!(sjoin.last().split(' ').count(), members.len(), "{}", sjoin.raw);
    assert!(sjoin.last().split(' ').any(|m| m.starts_with('@')), "the creator is opped: {}", sjoin.raw);
    // bob joins with the same TS: statuses merge, every member sees him once.
    p.send(&format!(":2BB SJOIN {ts} #lab +nt :@2BBAAAAAA"));
    for (c, _) in members.iter_mut() {
        let j = c.expect("bob's JOIN", |m| m.verb == "JOIN");
        assert_eq!((j.source.as_deref(), j.p(0)), (Some("bob!bob@bob.host"), "#lab"));
        let o = c.expect("bob's op", |m| m.verb == "MODE");
        assert_eq!((o.p(0), o.p(1), o.p(2)), ("#lab", "+o", "bob"));
    }
    // bob speaks: every member on both shards hears it once.
    p.send(":2BBAAAAAA PRIVMSG #lab :hello channel");
    for (c, _) in members.iter_mut() {
        let m = c.expect("bob's message", |m| m.verb == "PRIVMSG");
        assert_eq!((m.source.as_deref(), m.p(0), m.p(1)), (Some("bob!bob@bob.host"), "#lab", "hello channel"));
    }
    // Our members speak: one copy each at the peer, never echoed back to us.
    for (c, _) in members.iter_mut() {
        c.send("PRIVMSG #lab :from a member");
    }
    for _ in 0..members.len() {
        let m = p.expect("a member's message", |m| m.verb == "PRIVMSG");
        assert_eq!((m.p(0), m.p(1)), ("#lab", "from a member"));
    }
    // A new channel of ours reaches the peer as SJOIN, our join to an existing one as JOIN.
    let (c0, _) = &mut members[0];
    c0.send("JOIN #fresh");
    c0.expect("own JOIN", |m| m.verb == "JOIN");
    let s = p.expect("SJOIN #fresh", |m| m.verb == "SJOIN");
    assert_eq!((s.p(1), s.p(2)), ("#fresh", "+nt"));
    assert!(s.last().starts_with('@'), "{}", s.raw);
    // Their topic, a kick and a part reach our members.
    p.send(":2BBAAAAAA TOPIC #lab :remote topic");
    for (c, _) in members.iter_mut() {
        let t = c.expect("TOPIC", |m| m.verb == "TOPIC");
        assert_eq!((t.source.as_deref(), t.p(1)), (Some("bob!bob@bob.host"), "remote topic"));
    }
    p.send(&format!(":2BB TMODE {ts} #lab +m"));
    for (c, _) in members.iter_mut() {
        let m = c.expect("MODE +m", |m| m.verb == "MODE");
        assert_eq!((m.source.as_deref(), m.p(1)), (Some("peer.test"), "+m"));
    }
    // A TMODE with a newer TS is ignored.
    p.send(&format!(":2BB TMODE {} #lab +i", ts.parse::<u64>().unwrap() + 10));
    // Our op's mode change reaches the peer as TMODE with the channel TS.
    let (c0, _) = &mut members[0];
    c0.send("MODE #lab -m");
    let t = p.expect("TMODE", |m| m.verb == "TMODE");
    assert_eq!((t.p(0), t.p(1), t.p(2)), (ts.as_str(), "#lab", "-m"));
    for (c, _) in members.iter_mut() {
        expect_without(c, "MODE -m", |m| m.verb == "MODE" && m.p(1) == "-m", |m| m.verb == "MODE" && m.p(1) == "+i");
    }
    // The peer splits: bob's QUIT reaches each member once, with the servers' names.
    drop(p);
    for (c, _) in members.iter_mut() {
        let q = c.expect("bob's QUIT", |m| m.verb == "QUIT");
        assert_eq!((q.source.as_deref(), q.p(0)), (Some("bob!bob@bob.host"), "irc.test.local peer.test"));
        c.send("NAMES #lab");
        let names = c.expect_verb("353");
        assert!(!names.last().contains("bob"), "{}", names.raw);
        c.expect_verb("366");
        c.expect_silence(Duration::from_millis(50));
    }
}

#[test]
fn channel_ts_conflicts_follow_the_rules() {
    let srv = Server::with_config(2, &config_with_peer(""));
    let mut alice = srv.client("alice");
    alice.send("JOIN #tswar");
    alice.expect_verb("366");
    alice.send("MODE #tswar +s");
    alice.expect("MODE +s", |m| m.verb == "MODE");
    let (mut p, burst) = linked_with_bob(&srv);
    let ours: u64 = burst.iter().find(|m| m.verb == "SJOIN" && m.p(1) == "#tswar").unwrap().p(0).parse().unwrap();
    // Theirs is older: they win (the capture's #tswar).
    p.send(&format!(":2BB SJOIN {} #tswar +mnt :@2BBAAAAAA", ours - 2));
    let n = alice.expect("the TS notice", |m| m.verb == "NOTICE");
    assert_eq!(n.last(), format!("*** Notice -- TS for #tswar changed from {ours} to {}", ours - 2));
    let m = alice.expect("our op and modes go", |m| m.verb == "MODE");
    assert_eq!((m.p(1), m.p(2)), ("-o+m-s", "alice"), "{}", m.raw);
    alice.expect("bob's JOIN", |m| m.verb == "JOIN");
    alice.send("MODE #tswar");
    let modes = alice.expect_verb("324");
    assert_eq!(modes.p(2), "+mnt");
    alice.send("NAMES #tswar");
    let names = alice.expect_verb("353");
    let mut n: Vec<&str> = names.last().split(' ').collect();
    n.sort();
    assert_eq!(n, ["@bob", "alice"]);
    // A SJOIN with a newer TS joins without statuses.
    p.send(&format!(":2BB UID carol 1 {} +i carol c.host c.host 127.0.0.3 2BBAAAAAB * :Carol", now()));
    p.send(&format!(":2BB SJOIN {} #tswar +ik key :@2BBAAAAAB", ours + 50));
    let j = alice.expect("carol's JOIN", |m| m.verb == "JOIN");
    assert_eq!(j.source.as_deref(), Some("carol!carol@c.host"));
    alice.send("NAMES #tswar");
    let names = alice.expect_verb("353");
    assert!(names.last().split(' ').any(|x| x == "carol"), "{}", names.raw);
    alice.send("MODE #tswar");
    assert_eq!(alice.expect_verb("324").p(2), "+mnt");
    // A remote nick change is shown as one (not as a new user).
    p.send(&format!(":2BBAAAAAA NICK robert :{}", now()));
    let n = alice.expect("bob's NICK", |m| m.verb == "NICK" || m.verb == "JOIN");
    assert_eq!((n.verb.as_str(), n.source.as_deref(), n.p(0)), ("NICK", Some("bob!bob@bob.host"), "robert"));
}

/// Asks `c` for WHOIS of `nick` until it is `there` (or not), within about 5 s.
fn until_whois(c: &mut Client, nick: &str, there: bool) {
    for _ in 0..100 {
        c.send(&format!("WHOIS {nick}"));
        let m = c.expect("311 or 401", |m| m.verb == "311" || m.verb == "401");
        c.expect_verb("318");
        if (m.verb == "311") == there {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{}: WHOIS {nick} never became {there}", c.nick);
}

#[test]
fn three_servers_in_a_chain_chat_split_and_relink() {
    let b_links = link_block("irc.a.test", "1AA", None, false) + &link_block("irc.c.test", "3CC", None, false);
    let b = Server::with_config(2, &server_config("irc.b.test", "2BB", &b_links));
    let opers = "\n[[opers]]\nname = \"boss\"\npassword = \"pw\"\nallow_plaintext = true\nprivileges = [\"all\"]\n";
    let a_links = link_block("irc.b.test", "2BB", Some(b.addr), true) + opers;
    let a = Server::with_config(2, &server_config("irc.a.test", "1AA", &a_links));
    let c = Server::with_config(
        2,
        &server_config("irc.c.test", "3CC", &link_block("irc.b.test", "2BB", Some(b.addr), true)),
    );
    a.wait_log(&["Link established: irc.b.test"]);
    c.wait_log(&["Link established: irc.b.test"]);
    let mut on_a = a.clients_on_both_shards("a", 1);
    let mut on_c = c.clients_on_both_shards("c", 1);
    until_whois(&mut on_a[0].0, &on_c.last().unwrap().0.nick.clone(), true);
    until_whois(&mut on_c[0].0, &on_a.last().unwrap().0.nick.clone(), true);
    let w = {
        let nick = on_c[0].0.nick.clone();
        let ca = &mut on_a[0].0;
        ca.send(&format!("WHOIS {nick}"));
        ca.expect_verb("312")
    };
    assert_eq!(w.p(2), "irc.c.test", "{}", w.raw);

    // Everyone joins #chain (A's side first); each sees every other join once.
    let total = on_a.len() + on_c.len();
    for (cl, _) in on_a.iter_mut().chain(on_c.iter_mut()) {
        cl.send("JOIN #chain");
        cl.expect_verb("366");
    }
    for (cl, _) in on_a.iter_mut().chain(on_c.iter_mut()) {
        until_names(cl, "#chain", total);
    }
    // Every message reaches every other member exactly once, through B.
    for (cl, _) in on_a.iter_mut().chain(on_c.iter_mut()) {
        let text = format!("from {}", cl.nick);
        cl.send(&format!("PRIVMSG #chain :{text}"));
    }
    for (cl, _) in on_a.iter_mut().chain(on_c.iter_mut()) {
        let mut got = Vec::new();
        while got.len() < total - 1 {
            let m = cl.expect("a channel message", |m| m.verb == "PRIVMSG");
            assert!(!got.contains(&m.p(1).to_string()), "{} twice", m.raw);
            assert_ne!(m.p(1), format!("from {}", cl.nick), "own message echoed");
            got.push(m.p(1).to_string());
        }
    }

    let (a_nicks, c_nicks): (Vec<String>, Vec<String>) =
        (on_a.iter().map(|(x, _)| x.nick.clone()).collect(), on_c.iter().map(|(x, _)| x.nick.clone()).collect());
    // An operator on A squits C, two hops away: B, next to C, closes that link. Each side sees
    // the other's users leave once; C's autoconnect brings it back and the channel fills again.
    let mut op = a.client("opa");
    op.send("OPER boss pw");
    op.expect_verb("381");
    op.send("SQUIT irc.c.test :maintenance");
    expect_quits(&mut on_a, &c_nicks, "irc.b.test irc.c.test");
    expect_quits(&mut on_c, &a_nicks, "irc.b.test irc.a.test");
    c.wait_log(&["Netsplit: 2 server(s)"]);
    for (cl, _) in on_a.iter_mut().chain(on_c.iter_mut()) {
        until_names(cl, "#chain", total);
    }
    // B dies: A's members see each of C's users quit once, "irc.b.test irc.c.test", and the
    // other way round.
    b.signal(9);
    expect_quits(&mut on_a, &c_nicks, "irc.b.test irc.c.test");
    expect_quits(&mut on_c, &a_nicks, "irc.b.test irc.a.test");
    // B comes back on its port; A and C relink by themselves and meet again.
    let port = b.addr.to_string();
    drop(b);
    let b = Server::with_args(2, &server_config("irc.b.test", "2BB", &b_links), &["--listen", &port]);
    a.wait_log(&["Server burst: end of burst from irc.b.test"]);
    until_whois(&mut on_a[0].0, &c_nicks[0], true);
    until_whois(&mut on_c[0].0, &a_nicks[0], true);
    drop(b);
}

/// NAMES of `chan` until it has `n` members (within about 5 s).
fn until_names(c: &mut Client, chan: &str, n: usize) {
    let mut names = Vec::new();
    for _ in 0..100 {
        c.send(&format!("NAMES {chan}"));
        names.clear();
        loop {
            let m = c.expect("NAMES", |m| m.verb == "353" || m.verb == "366");
            if m.verb == "366" {
                break;
            }
            names.extend(m.last().split(' ').filter(|x| !x.is_empty()).map(str::to_string));
        }
        if names.len() == n {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{}: {chan} never had {n} members: {names:?}", c.nick);
}

#[test]
fn services_set_accounts_and_force_changes() {
    let config = format!(
        "{}\n[[links]]\nname = \"services.test\"\nsid = \"3SV\"\nsend_password = \"tothem\"\naccept_password = \"tous\"\n",
        config_with_peer("").replace("motd = \"test motd\"", "motd = \"test motd\"\nservices = [\"services.test\"]")
    );
    let srv = Server::with_config(2, &config);
    let mut alice = Client::connect(srv.addr);
    alice.register_caps("alice", "account-notify extended-join");
    let mut bob = srv.client("bob");
    for c in [&mut alice, &mut bob] {
        c.send("JOIN #acct");
        c.expect_verb("366");
    }
    alice.expect("bob's JOIN", |m| m.verb == "JOIN" && m.source.as_deref().unwrap().starts_with("bob!"));
    let mut s = peer(&srv, "tous", "services.test", "3SV");
    let burst = handshake(&mut s, "0TS");
    let b = burst.iter().find(|m| m.verb == "UID" && m.p(0) == "bob").unwrap();
    let (buid, bts) = (b.p(8).to_string(), b.p(2).to_string());
    s.send(&format!(":3SV UID NickServ 1 {} +io services services.test services.test 0.0.0.0 3SVAAAAAG * :Nickname Registration Service", now()));
    s.send(&format!(":3SV SVSACCOUNT {buid} {bts} bob"));
    s.send(&format!(":3SVAAAAAG SVSMODE {buid} {bts} +r"));
    let m = alice.expect("account-notify", |m| m.verb == "ACCOUNT");
    assert_eq!((m.source.as_deref(), m.p(0)), (Some("bob!~bob@127.0.0.1"), "bob"));
    let m = bob.expect("bob's +r", |m| m.verb == "MODE");
    assert_eq!(m.last(), "+r");
    alice.send("WHOIS bob");
    let w = alice.collect_until("318");
    assert!(w.iter().any(|m| m.verb == "330" && m.p(2) == "bob"), "{w:?}");
    // A server not named in `services` is not obeyed.
    let (mut p, _) = linked_with_bob_named(&srv, "peer.test", "2BB");
    p.send(&format!(":2BB SVSACCOUNT {buid} {bts} mallory"));
    p.send("PING :2BB");
    p.expect_verb("PONG");
    alice.send("WHOIS bob");
    let w = alice.collect_until("318");
    assert!(w.iter().any(|m| m.verb == "330" && m.p(2) == "bob"), "{w:?}");
    // Forced changes run as if bob had sent them.
    s.send(&format!(":3SV SVSJOIN {buid} #forced"));
    let j = bob.expect("the forced JOIN", |m| m.verb == "JOIN");
    assert_eq!(j.p(0), "#forced");
    s.send(&format!(":3SV SVSNICK {buid} {bts} bobby {}", now()));
    let n = bob.expect("the forced NICK", |m| m.verb == "NICK");
    assert_eq!(n.p(0), "bobby");
    let n = alice.expect("bob's NICK", |m| m.verb == "NICK");
    assert_eq!(n.p(0), "bobby");
    // Logging out.
    s.send(&format!(":3SV SVSACCOUNT {buid} 0 *"));
    let m = alice.expect("account-notify", |m| m.verb == "ACCOUNT");
    assert_eq!(m.p(0), "*");
}

/// A scripted peer of another name, with bob's twin `remote` behind it.
fn linked_with_bob_named(srv: &Server, name: &str, sid: &str) -> (Client, Vec<Msg>) {
    let mut p = peer(srv, "tous", name, sid);
    let burst = handshake(&mut p, "0TS");
    p.send(&format!(":{sid} SVINFO 6 6 0 :{}", now()));
    (p, burst)
}

/// Each client sees each of `others` quit exactly once, with `why`.
fn expect_quits(side: &mut [(Client, usize)], others: &[String], why: &str) {
    for (cl, _) in side.iter_mut() {
        let mut quit = Vec::new();
        while quit.len() < others.len() {
            let m = cl.expect("a QUIT", |m| m.verb == "QUIT");
            let nick = m.source.as_deref().unwrap().split('!').next().unwrap().to_string();
            assert!(others.contains(&nick) && !quit.contains(&nick), "{}", m.raw);
            assert_eq!(m.p(0), why);
            quit.push(nick);
        }
    }
}

#[test]
fn knock_crosses_a_link_both_ways() {
    let srv = Server::with_config(2, &config_with_peer(""));
    let mut alice = srv.client("alice");
    alice.send("JOIN #shut");
    alice.expect_verb("366");
    alice.send("MODE #shut +i");
    alice.expect("MODE +i", |m| m.verb == "MODE");
    let (mut p, _) = linked_with_bob(&srv);
    p.send(":2BBAAAAAA KNOCK #shut :let me in");
    let k = alice.expect("710", |m| m.verb == "710");
    assert_eq!((k.p(1), k.p(2), k.last()), ("#shut", "bob!bob@bob.host", "has asked for an invite (let me in)"));
    let mut carol = srv.client("carol");
    carol.send("KNOCK #shut :me too");
    carol.expect_verb("711");
    let k = p.expect("KNOCK", |m| m.verb == "KNOCK");
    assert_eq!((k.p(0), k.p(1)), ("#shut", "me too"));
}

#[test]
fn a_silent_link_times_out_and_splits() {
    let config = config_with_peer("class = \"links\"")
        + "\n[[classes]]\nname = \"links\"\nhosts = []\nping_frequency = \"1s\"\nsendq = \"1MiB\"\n";
    let srv = Server::with_config(2, &config);
    let mut alice = srv.client("alice");
    let (mut p, _) = linked_with_bob(&srv);
    p.send("PING :2BB");
    p.expect_verb("PONG");
    // The peer goes quiet: after a PING with no answer within the class's ping frequency, the
    // link is dropped and bob leaves.
    let ping = p.expect("our PING", |m| m.verb == "PING");
    assert_eq!(ping.p(0), "0TS");
    let e = p.expect("the ERROR", |m| m.verb == "ERROR");
    assert!(e.p(0).contains("Ping timeout"), "{}", e.raw);
    srv.wait_log(&["Link closed: peer.test", "Ping timeout"]);
    until_whois(&mut alice, "bob", false);
}

#[test]
fn server_queries_cross_a_link_both_ways() {
    let srv = Server::with_config(2, &config_with_peer(""));
    let mut alice = srv.client("alice");
    let (mut p, burst) = linked_with_bob(&srv);
    let alice_uid = burst.iter().find(|m| m.verb == "UID" && m.p(0) == "alice").unwrap().p(8).to_string();
    // bob asks our VERSION and TIME: numerics from our SID, to his UID.
    p.send(":2BBAAAAAA VERSION :0TS");
    let v = p.expect("351", |m| m.verb == "351");
    assert_eq!((v.source.as_deref(), v.p(0), v.p(2)), (Some("0TS"), "2BBAAAAAA", "irc.test.local"));
    p.send(":2BBAAAAAA TIME :irc.test.local");
    let t = p.expect("391", |m| m.verb == "391");
    assert_eq!((t.source.as_deref(), t.p(0)), (Some("0TS"), "2BBAAAAAA"));
    // alice asks the peer's: the query goes to it, its answer comes back to her.
    alice.send("VERSION peer.test");
    let q = p.expect("the VERSION query", |m| m.verb == "VERSION");
    assert_eq!((q.source.as_deref(), q.p(0)), (Some(alice_uid.as_str()), "2BB"));
    p.send(&format!(":2BB 351 {alice_uid} fake-1.0 peer.test :a scripted peer"));
    let v = alice.expect("351", |m| m.verb == "351");
    assert_eq!((v.source.as_deref(), v.p(0), v.p(1)), (Some("peer.test"), "alice", "fake-1.0"));
    alice.send("ADMIN nowhere.test");
    alice.expect_verb("402");
}

/// A link's channel lines are pipelined (many requests to their homes in flight at once); a
/// link lost while they are in flight must still take every user out of every channel it had
/// joined: each observer sees each burst user join and quit once, and no member is left behind.
#[test]
fn a_link_lost_mid_burst_leaves_no_member_behind() {
    let srv = Server::with_config(2, &config_with_peer(""));
    let mut observers = srv.clients_on_both_shards("o", 1);
    // 600 users: more than one piece of a split's departures (256 a turn).
    let chans: Vec<String> = (0..40).map(|i| format!("#mid{i}")).collect();
    for (c, _) in observers.iter_mut() {
        c.send(&format!("JOIN {}", chans.join(",")));
        for _ in &chans {
            c.expect_verb("366");
        }
    }
    let (mut p, _) = linked_with_bob_named(&srv, "peer.test", "2BB");
    let t = now();
    let users: Vec<String> = (0..600).map(|i| format!("mb{i}")).collect();
    let mut lines = Vec::new();
    for (i, u) in users.iter().enumerate() {
        lines.push(format!(":2BB UID {u} 1 {t} +i u h.example h.example 127.0.0.2 2BBA{i:05} * :mid burst"));
    }
    // Each channel gets 15 users; channels are older here (TS 1), so they join with status.
    for (i, c) in chans.iter().enumerate() {
        let members: Vec<String> = (0..15).map(|k| format!("@2BBA{:05}", i * 15 + k)).collect();
        lines.push(format!(":2BB SJOIN 1 {c} +nt :{}", members.join(" ")));
    }
    // The burst is written in one go and the link closed behind it, before any EOB.
    p.send(&lines.join("\r\n"));
    drop(p);
    for (c, _) in observers.iter_mut() {
        let (mut joined, mut quit) = (std::collections::HashSet::new(), std::collections::HashSet::new());
        while quit.len() < users.len() {
            let m = c.expect("a JOIN or QUIT of a burst user", |m| m.verb == "JOIN" || m.verb == "QUIT");
            let nick = m.source.as_deref().unwrap().split('!').next().unwrap().to_string();
            if m.verb == "JOIN" {
                assert!(!quit.contains(&nick), "{nick} joined after quitting");
                joined.insert(nick);
            } else {
                assert_eq!(m.p(0), "irc.test.local peer.test");
                assert!(joined.contains(&nick) && quit.insert(nick.clone()), "{}: {}", c.nick, m.raw);
            }
        }
    }
    srv.wait_log(&["Netsplit: 1 server(s) and 600 user(s) lost behind 2BB"]);
    let n = observers.len();
    for (c, _) in observers.iter_mut() {
        for ch in &chans {
            until_names(c, ch, n);
        }
    }
}

/// MONITOR sees users behind a link come and go, on both shards (their masks are only built
/// for a watched nick).
#[test]
fn monitor_sees_remote_users_come_and_go() {
    let srv = Server::with_config(2, &config_with_peer(""));
    let mut watchers = srv.clients_on_both_shards("w", 1);
    for (c, _) in watchers.iter_mut() {
        c.send("MONITOR + bob");
        c.expect_verb("731");
    }
    let (mut p, _) = linked_with_bob(&srv);
    for (c, _) in watchers.iter_mut() {
        let on = c.expect_verb("730");
        assert_eq!(on.last(), "bob!bob@bob.host", "{}", on.raw);
    }
    p.send(":2BBAAAAAA QUIT :bye");
    for (c, _) in watchers.iter_mut() {
        let off = c.expect_verb("731");
        assert_eq!(off.last(), "bob", "{}", off.raw);
    }
}

/// Two rustircd servers, `irc.test.local` (0TS, which dials) and `irc.b.test` (2BB), linked.
fn two_rustircd_servers() -> (Server, Server) {
    let b =
        Server::with_config(2, &server_config("irc.b.test", "2BB", &link_block("irc.test.local", "0TS", None, false)));
    let a = Server::with_config(
        2,
        &server_config("irc.test.local", "0TS", &link_block("irc.b.test", "2BB", Some(b.addr), false)),
    );
    a.wait_log(&["Link established: irc.b.test"]);
    b.wait_log(&["Link established: irc.test.local"]);
    (a, b)
}

/// Between two rustircd servers (both say `MTAGS` in CAPAB), client-only message tags ride with
/// PRIVMSG and TAGMSG crosses, privately and in a channel; a client without message-tags gets
/// the PRIVMSG bare and no TAGMSG. A hybrid-style peer (no `MTAGS`) never gets tags or TAGMSG.
#[test]
fn message_tags_and_tagmsg_cross_between_rustircd_servers() {
    let (a, b) = two_rustircd_servers();
    let mut alice = a.connect();
    alice.register_caps("alice", "message-tags");
    let mut tbob = b.connect();
    tbob.register_caps("tbob", "message-tags");
    let mut pbob = b.client("pbob");
    for c in [&mut alice, &mut tbob, &mut pbob] {
        c.send("JOIN #tags");
        c.expect_verb("366");
    }
    until_names(&mut alice, "#tags", 3);
    until_whois(&mut alice, "tbob", true);
    alice.send("@+draft/reply=abc;+x=1 PRIVMSG #tags :tagged hello");
    alice.send("@+typing=active TAGMSG #tags");
    alice.send("@+typing=paused TAGMSG tbob");
    alice.send("@+draft/react=ok PRIVMSG pbob :to the plain one");
    let m = tbob.expect("the channel PRIVMSG", |m| m.verb == "PRIVMSG");
    assert_eq!(m.p(1), "tagged hello");
    let tag = |m: &Msg, k: &str| m.tags.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
    assert_eq!((tag(&m, "+draft/reply").as_deref(), tag(&m, "+x").as_deref()), (Some("abc"), Some("1")), "{}", m.raw);
    let t = tbob.expect("the channel TAGMSG", |m| m.verb == "TAGMSG");
    assert_eq!((t.p(0), tag(&t, "+typing").as_deref()), ("#tags", Some("active")), "{}", t.raw);
    let t = tbob.expect("the private TAGMSG", |m| m.verb == "TAGMSG");
    assert_eq!((t.p(0), tag(&t, "+typing").as_deref()), ("tbob", Some("paused")), "{}", t.raw);
    // The plain client: the PRIVMSGs without tags, never a TAGMSG.
    let m = expect_without(&mut pbob, "the channel PRIVMSG", |m| m.verb == "PRIVMSG", |m| m.verb == "TAGMSG");
    assert!(m.raw.starts_with(':') && m.p(1) == "tagged hello", "{}", m.raw);
    let m = expect_without(&mut pbob, "the private PRIVMSG", |m| m.verb == "PRIVMSG", |m| m.verb == "TAGMSG");
    assert!(m.raw.starts_with(':') && m.p(1) == "to the plain one", "{}", m.raw);
    // And back from B to A.
    tbob.send("@+draft/reply=back TAGMSG alice");
    let t = alice.expect("TAGMSG from B", |m| m.verb == "TAGMSG");
    assert_eq!(
        (t.source.as_deref().map(|s| s.starts_with("tbob!")), tag(&t, "+draft/reply").as_deref()),
        (Some(true), Some("back"))
    );
}

/// A peer that did not say `MTAGS` (hybrid) gets messages without tags and no TAGMSG at all.
#[test]
fn a_peer_without_mtags_gets_no_tags() {
    let srv = Server::with_config(2, &config_with_peer(""));
    let mut alice = srv.connect();
    alice.register_caps("alice", "message-tags");
    let (mut p, _) = linked_with_bob(&srv);
    p.send("PING :2BB");
    p.expect_verb("PONG");
    alice.send("@+typing=active TAGMSG bob");
    alice.send("@+draft/reply=x PRIVMSG bob :plain for hybrid");
    let m = expect_without(&mut p, "the PRIVMSG", |m| m.verb == "PRIVMSG", |m| m.verb == "TAGMSG");
    assert!(m.raw.starts_with(':') && m.p(1) == "plain for hybrid", "{}", m.raw);
}

/// Atheme (protocol/charybdis) links in the charybdis form: its SID only in PASS, a 3-parameter
/// SERVER, `SVINFO 6 3`, a PING at once (scripts/atheme-lab.sh recorded these lines). With
/// `EUID` in its CAPAB (as Atheme's) users go both ways as EUID; without it as the 9-parameter
/// charybdis UID (a hybrid UID would have its real host read as the IP). Its clients become
/// users on both shards, and ours reach it in its form.
/// Asks `c` for WHOIS of `nick` until a line of the reply matches `want` (within about 5 s).
fn until_whois_line(c: &mut Client, nick: &str, want: impl Fn(&Msg) -> bool) {
    for _ in 0..100 {
        c.send(&format!("WHOIS {nick}"));
        let mut found = false;
        loop {
            let m = c.expect("the WHOIS reply", |_| true);
            found |= want(&m);
            if m.verb == "318" {
                break;
            }
        }
        if found {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{}: WHOIS {nick} never showed what was wanted", c.nick);
}

fn atheme_like_peer_links(euid: bool) {
    let config = format!(
        "{}\n[[links]]\nname = \"services.test\"\nsid = \"3SV\"\nsend_password = \"r2s\"\naccept_password = \"s2r\"\n",
        BASE_CONFIG.replace("motd = \"test motd\"", "motd = \"test motd\"\nservices = [\"services.test\"]")
    );
    let srv = Server::with_config(2, &config);
    let mut alice = srv.client("alice");
    let mut p = Client::connect(srv.addr);
    p.nick = "atheme".into();
    let t = now();
    let (intro, n) = if euid { ("EUID", 11) } else { ("UID", 9) };
    p.send("PASS s2r TS 6 :3SV");
    p.send(&format!("CAPAB :QS EX IE KLN UNKLN ENCAP TB SERVICES {}EOPMOD MLOCK", if euid { "EUID " } else { "" }));
    p.send("SERVER services.test 1 :Atheme for rustircd tests");
    p.send(&format!("SVINFO 6 3 0 :{t}"));
    p.send("PING :services.test");
    assert_eq!(p.expect_verb("PASS").p(0), "r2s");
    assert!(p.expect_verb("CAPAB").p(0).split(' ').any(|c| c == "EUID"));
    p.expect_verb("SERVER");
    p.expect_verb("SVINFO");
    let uid = p.expect("alice's introduction", |m| (m.verb == "UID" || m.verb == "EUID") && m.p(0) == "alice");
    assert_eq!((uid.verb.as_str(), uid.params.len()), (intro, n), "{}", uid.raw);
    assert_eq!((uid.p(5), uid.p(6)), ("127.0.0.1", "127.0.0.1"), "host, then the IP: {}", uid.raw);
    let pong = p.expect("the PONG", |m| m.verb == "PONG");
    assert_eq!(pong.last(), "services.test", "{}", pong.raw);
    let tail = if euid { " * *" } else { "" };
    p.send(&format!(":3SV {intro} NickServ 1 {t} +ioS NickServ services.test 0 3SVAAAAAB{tail} :Nickname Services"));
    p.send(&format!(
        ":3SV {intro} SaslServ 1 {t} +ioS SaslServ services.test 0 3SVAAAAAC{tail} :SASL Authentication Agent"
    ));
    let mut watchers: Vec<Client> = srv.clients_on_both_shards("w", 1).into_iter().map(|(c, _)| c).collect();
    for c in watchers.iter_mut() {
        until_whois(c, "NickServ", true);
        c.send("WHOIS SaslServ");
        let w = c.expect_verb("311");
        assert_eq!((w.p(2), w.p(3)), ("SaslServ", "services.test"), "{}", w.raw);
        let s = c.expect_verb("312");
        assert_eq!(s.p(2), "services.test");
        c.expect_verb("318");
    }
    // A user registering now is introduced to it in its form too.
    let _bob = srv.client("bob");
    let uid = p.expect("bob's introduction", |m| (m.verb == "UID" || m.verb == "EUID") && m.p(0) == "bob");
    assert_eq!((uid.verb.as_str(), uid.params.len()), (intro, n), "{}", uid.raw);
    alice.send("PRIVMSG NickServ :HELP");
    let m = p.expect("the PRIVMSG to NickServ", |m| m.verb == "PRIVMSG");
    assert_eq!((m.p(0), m.p(1)), ("3SVAAAAAB", "HELP"));
    let alice_uid = m.source.clone().unwrap();
    // NickServ IDENTIFY as Atheme answers it (SERVICES): ENCAP * SU; then a logout.
    let mut watcher = srv.connect();
    watcher.register_caps("watcher", "account-notify");
    for c in [&mut alice, &mut watcher] {
        c.send("JOIN #acct");
        c.expect_verb("366");
    }
    p.send(&format!(":3SV ENCAP * SU {alice_uid} alice"));
    let a = watcher.expect("account-notify", |m| m.verb == "ACCOUNT");
    assert_eq!((a.source.as_deref().map(|s| s.starts_with("alice!")), a.p(0)), (Some(true), "alice"));
    for c in watchers.iter_mut() {
        until_whois_line(c, "alice", |m| m.verb == "330" && m.p(2) == "alice");
    }
    p.send(&format!(":3SV ENCAP * SU {alice_uid}"));
    assert_eq!(watcher.expect("the logout", |m| m.verb == "ACCOUNT").p(0), "*");
    // For another server, or for a user who is not there: nothing (and no crash).
    p.send(&format!(":3SV ENCAP other.test SU {alice_uid} mallory"));
    p.send(":3SV ENCAP * SU 0TSZZZZZZ ghost");
    p.send(&format!(":3SV ENCAP * CHGHOST {alice_uid} cloak.example"));
    until_whois_line(&mut watcher, "alice", |m| m.verb == "311" && m.p(3) == "cloak.example");
    watcher.send("WHOIS alice");
    let acct = watcher.expect("no 330", |m| m.verb == "330" || m.verb == "318");
    assert_eq!(acct.verb, "318", "{}", acct.raw);
    if euid {
        // An EUID with an account: the user is logged in everywhere at once.
        p.send(&format!(":3SV EUID carol 1 {t} +i carol c.example 10.0.0.3 3SVAAAAAD real.example carol :Carol"));
        for c in watchers.iter_mut() {
            until_whois_line(c, "carol", |m| m.verb == "330" && m.p(2) == "carol");
        }
    }
}

#[test]
fn an_atheme_like_peer_links_with_euid() {
    atheme_like_peer_links(true);
}

#[test]
fn an_atheme_like_peer_links_with_the_charybdis_uid() {
    atheme_like_peer_links(false);
}

/// ENCAP to one server goes only toward it (SASL exchanges carry passwords), ENCAP to us goes
/// nowhere further, and a wildcard ENCAP reaches every other link.
#[test]
fn encap_to_one_server_is_routed_not_broadcast() {
    let config = format!(
        "{}\n[[links]]\nname = \"services.test\"\nsid = \"3SV\"\nsend_password = \"tothem\"\naccept_password = \"tous\"\n",
        config_with_peer("")
    );
    let srv = Server::with_config(2, &config);
    let (mut a, _) = linked_with_bob_named(&srv, "peer.test", "2BB");
    let (mut s, _) = linked_with_bob_named(&srv, "services.test", "3SV");
    for p in [&mut a, &mut s] {
        p.send(&format!(":{} EOB", if p.nick.contains("peer.test") { "2BB" } else { "3SV" }));
    }
    a.send(&format!(":2BB UID bob 1 {} +i bob bob.host bob.host 127.0.0.2 2BBAAAAAA * :Bob", now()));
    a.send(":2BB ENCAP services.test SASL 2BBAAAAAA * S PLAIN");
    a.send(":2BB ENCAP irc.test.local NOTHING for us");
    a.send(":2BB ENCAP *.test WIDE one");
    s.send(":3SV ENCAP peer.test SASL 3SVAAAAAC 2BBAAAAAA C +");
    let said = |m: &Msg| format!("{} {}", m.source.as_deref().unwrap_or(""), m.params.join(" "));
    let m = s.expect("the SASL line", |m| m.verb == "ENCAP");
    assert_eq!(said(&m), "2BB services.test SASL 2BBAAAAAA * S PLAIN");
    let m = s.expect("the wildcard ENCAP", |m| m.verb == "ENCAP");
    assert_eq!(said(&m), "2BB *.test WIDE one");
    let m = a.expect("the answer", |m| m.verb == "ENCAP");
    assert_eq!(said(&m), "3SV peer.test SASL 3SVAAAAAC 2BBAAAAAA C +");
    // Nothing else crossed: each side sees its own PING answered next.
    for (p, sid) in [(&mut a, "2BB"), (&mut s, "3SV")] {
        p.send(&format!("PING :{sid}"));
        expect_without(p, "PONG", |m| m.verb == "PONG", |m| m.verb == "ENCAP");
    }
}

/// A services peer that announced SASL mechanisms (hybrid form, `[server] services`).
fn sasl_services(srv: &Server) -> Client {
    let (mut p, _) = linked_with_bob_named(srv, "services.test", "3SV");
    p.send(":3SV EOB");
    p.send(":3SV ENCAP * MECHLIST :PLAIN,EXTERNAL");
    p.send("PING :3SV");
    p.expect_verb("PONG");
    p
}

fn sasl_config() -> String {
    format!(
        "{}\n[[links]]\nname = \"services.test\"\nsid = \"3SV\"\nsend_password = \"tothem\"\naccept_password = \"tous\"\n",
        BASE_CONFIG.replace("motd = \"test motd\"", "motd = \"test motd\"\nservices = [\"services.test\"]")
    )
}

/// An unregistered connection on shard `shard` that negotiated `sasl` (offered with the
/// mechanisms services announced), with NICK and USER sent.
fn sasl_client(srv: &Server, nick: &str, shard: usize) -> Client {
    srv.sasl_client(nick, shard, "PLAIN,EXTERNAL")
}

/// The next `ENCAP services.test SASL` line from us: (uid, agent, mode, data).
fn sasl_line(p: &mut Client) -> (String, String, String, String) {
    let m = p.expect("ENCAP SASL", |m| m.verb == "ENCAP" && m.p(1) == "SASL");
    assert_eq!(m.p(0), "services.test", "{}", m.raw);
    (m.p(2).to_string(), m.p(3).to_string(), m.p(4).to_string(), m.params[5..].join(" "))
}

/// SASL PLAIN for a client on each shard, relayed to scripted services as Atheme does it (the
/// lines of scripts/atheme-lab.sh's run): registration waits for the outcome, the account is
/// in the client's introduction to the network.
#[test]
fn sasl_plain_is_relayed_to_services_from_both_shards() {
    let srv = Server::with_config(2, &sasl_config());
    let mut p = sasl_services(&srv);
    let mut watcher = srv.client("watcher");
    for shard in 0..2 {
        let nick = format!("sa{shard}");
        let account = format!("acct{shard}");
        let mut c = sasl_client(&srv, &nick, shard);
        c.send("AUTHENTICATE PLAIN");
        let (uid, agent, mode, data) = sasl_line(&mut p);
        assert_eq!((agent.as_str(), mode.as_str()), ("*", "H"));
        assert!(data.starts_with("127.0.0.1 127.0.0.1 P"), "{data}");
        assert_eq!(sasl_line(&mut p), (uid.clone(), "*".into(), "S".into(), "PLAIN".into()));
        p.send(&format!(":3SV ENCAP irc.test.local SASL 3SVAAAAAC {uid} C +"));
        assert_eq!(c.expect_verb("AUTHENTICATE").p(0), "+");
        c.send("AUTHENTICATE AGFsaWNlAHMzY3JldFBhc3M=");
        assert_eq!(sasl_line(&mut p), (uid.clone(), "3SVAAAAAC".into(), "C".into(), "AGFsaWNlAHMzY3JldFBhc3M=".into()));
        p.send(&format!(":3SV ENCAP irc.test.local SVSLOGIN {uid} * * * {account}"));
        p.send(&format!(":3SV ENCAP irc.test.local SASL 3SVAAAAAC {uid} D S"));
        let logged = c.expect_verb("900");
        assert_eq!(
            (logged.p(0), logged.p(1), logged.p(2)),
            (nick.as_str(), &*format!("{nick}!~{nick}@127.0.0.1"), account.as_str())
        );
        c.expect_verb("903");
        c.send("CAP END");
        c.expect_verb("001");
        // The network hears of the user with its account.
        let intro = p.expect("the UID", |m| m.verb == "UID" && m.p(0) == nick);
        assert_eq!(intro.p(9), account, "{}", intro.raw);
        until_whois_line(&mut watcher, &nick, |m| m.verb == "330" && m.p(2) == account);
    }
}

/// SASL's failures: a wrong password (904), an unknown mechanism (908, 904), an abort (906 and
/// `D A` to services), a line over 400 bytes (905), AUTHENTICATE without the capability (904)
/// and after registration (907); none of them blocks registration.
#[test]
fn sasl_failures_get_their_numerics() {
    let srv = Server::with_config(2, &sasl_config());
    let mut p = sasl_services(&srv);
    let mut c = sasl_client(&srv, "fails", 1);
    c.send("AUTHENTICATE PLAIN");
    let (uid, ..) = sasl_line(&mut p);
    sasl_line(&mut p);
    p.send(&format!(":3SV ENCAP irc.test.local SASL 3SVAAAAAC {uid} C +"));
    c.expect_verb("AUTHENTICATE");
    c.send("AUTHENTICATE AGFsaWNlAHdyb25n");
    sasl_line(&mut p);
    p.send(&format!(":3SV ENCAP irc.test.local SASL 3SVAAAAAC {uid} D F"));
    c.expect_verb("904");
    c.send("AUTHENTICATE SCRAM-SHA-256");
    sasl_line(&mut p);
    assert_eq!(sasl_line(&mut p).3, "SCRAM-SHA-256");
    p.send(&format!(":3SV ENCAP irc.test.local SASL 3SVAAAAAC {uid} M PLAIN,EXTERNAL"));
    p.send(&format!(":3SV ENCAP irc.test.local SASL 3SVAAAAAC {uid} D F"));
    assert_eq!(c.expect_verb("908").p(1), "PLAIN,EXTERNAL");
    c.expect_verb("904");
    c.send("AUTHENTICATE PLAIN");
    sasl_line(&mut p);
    sasl_line(&mut p);
    c.send("AUTHENTICATE *");
    c.expect_verb("906");
    assert_eq!(sasl_line(&mut p).2, "D");
    c.send("AUTHENTICATE PLAIN");
    sasl_line(&mut p);
    sasl_line(&mut p);
    c.send(&format!("AUTHENTICATE {}", "A".repeat(401)));
    c.expect_verb("905");
    assert_eq!(sasl_line(&mut p).2, "D");
    // A long payload in 400-byte chunks: the chunk that passes 8 KiB fails the exchange (904,
    // `D A`); what follows is no mechanism name and starts nothing.
    c.send("AUTHENTICATE PLAIN");
    sasl_line(&mut p);
    sasl_line(&mut p);
    let chunk = "A".repeat(400);
    for _ in 0..23 {
        c.send(&format!("AUTHENTICATE {chunk}"));
    }
    c.expect_verb("904");
    c.expect_verb("904");
    c.expect_verb("904");
    let mut relayed = 0;
    loop {
        let (_, _, mode, _) = sasl_line(&mut p);
        if mode == "D" {
            break;
        }
        relayed += 1;
    }
    assert_eq!(relayed, 20, "8,000 of the bytes reach services, then the abort");
    // CAP END during an exchange aborts it (906, `D A`) and registers the client.
    c.send("AUTHENTICATE PLAIN");
    sasl_line(&mut p);
    sasl_line(&mut p);
    c.send("CAP END");
    c.expect_verb("906");
    assert_eq!(sasl_line(&mut p).2, "D");
    c.expect_verb("001");
    // After registration: SASL 3.2's (re)authentication.
    c.send("AUTHENTICATE PLAIN");
    assert_eq!(sasl_line(&mut p).2, "H");
    assert_eq!(sasl_line(&mut p).2, "S");
    p.send(&format!(":3SV ENCAP irc.test.local SASL 3SVAAAAAC {uid} C +"));
    c.expect_verb("AUTHENTICATE");
    c.send("AUTHENTICATE AGFsaWNlAHMzY3JldFBhc3M=");
    sasl_line(&mut p);
    p.send(&format!(":3SV ENCAP irc.test.local SVSLOGIN {uid} * * * later"));
    p.send(&format!(":3SV ENCAP irc.test.local SASL 3SVAAAAAC {uid} D S"));
    assert_eq!(c.expect_verb("900").p(2), "later");
    c.expect_verb("903");
    until_whois_line(&mut c, "fails", |m| m.verb == "330" && m.p(2) == "later");
    // An answer for a UID with no exchange is dropped.
    p.send(&format!(":3SV ENCAP irc.test.local SASL 3SVAAAAAC {uid} D S"));
    p.send("PING :3SV");
    p.expect_verb("PONG");
    c.send("PING :after");
    expect_without(&mut c, "PONG", |m| m.verb == "PONG", |m| m.verb == "903");
    let mut plain = srv.connect();
    plain.send("AUTHENTICATE PLAIN");
    plain.expect_verb("904");
}

/// SASL for a client of a second rustircd server: services are linked to A, the client is on
/// B; B learns the mechanisms through A (cap-notify clients hear `CAP NEW`), its SASL lines
/// reach services through A and the answers come back by B's name; when services split,
/// `CAP DEL sasl`.
#[test]
fn sasl_works_for_a_client_of_another_rustircd_server() {
    let with_services =
        |c: String| c.replace("motd = \"test motd\"", "motd = \"test motd\"\nservices = [\"services.test\"]");
    let b = Server::with_config(
        2,
        &with_services(server_config("irc.b.test", "2BB", &link_block("irc.test.local", "0TS", None, true))),
    );
    let a = Server::with_config(
        2,
        &with_services(server_config(
            "irc.test.local",
            "0TS",
            &(link_block("irc.b.test", "2BB", Some(b.addr), false)
                + "\n[[links]]\nname = \"services.test\"\nsid = \"3SV\"\nsend_password = \"tothem\"\naccept_password = \"tous\"\n"),
        )),
    );
    a.wait_log(&["Link established: irc.b.test"]);
    b.wait_log(&["Link established: irc.test.local"]);
    let mut notified = b.connect();
    notified.register_caps("notified", "cap-notify");
    let mut p = sasl_services(&a);
    let new = notified.expect("CAP NEW", |m| m.verb == "CAP");
    assert_eq!((new.p(1), new.last()), ("NEW", "sasl=PLAIN,EXTERNAL"), "{}", new.raw);
    let mut c = sasl_client(&b, "remote", 1);
    c.send("AUTHENTICATE PLAIN");
    let (uid, ..) = sasl_line(&mut p);
    assert!(uid.starts_with("2BB"), "{uid}");
    sasl_line(&mut p);
    p.send(&format!(":3SV ENCAP irc.b.test SASL 3SVAAAAAC {uid} C +"));
    assert_eq!(c.expect_verb("AUTHENTICATE").p(0), "+");
    c.send("AUTHENTICATE AGFsaWNlAHMzY3JldFBhc3M=");
    assert_eq!(sasl_line(&mut p).2, "C");
    p.send(&format!(":3SV ENCAP irc.b.test SVSLOGIN {uid} * * * faraway"));
    p.send(&format!(":3SV ENCAP irc.b.test SASL 3SVAAAAAC {uid} D S"));
    assert_eq!(c.expect_verb("900").p(2), "faraway");
    c.expect_verb("903");
    c.send("CAP END");
    c.expect_verb("001");
    let mut on_a = a.client("ona");
    until_whois_line(&mut on_a, "remote", |m| m.verb == "330" && m.p(2) == "faraway");
    drop(p);
    let del = notified.expect("CAP DEL", |m| m.verb == "CAP");
    assert_eq!((del.p(1), del.last()), ("DEL", "sasl"), "{}", del.raw);
}

/// The account extban: `+b $a:<mask>` keeps a matching account out (474) and quiet (404),
/// `+b $a` every logged-in user, on clients of both shards (005 says `EXTBAN=$,am`).
#[test]
fn the_account_extban_bans_by_account() {
    let srv = Server::with_config(2, &sasl_config());
    let mut op = srv.client("op");
    op.send("VERSION");
    let i = op.expect("005 with EXTBAN", |m| m.verb == "005" && m.params.iter().any(|p| p.starts_with("EXTBAN")));
    assert!(i.params.iter().any(|p| p == "EXTBAN=$,am"), "{}", i.raw);
    op.send("JOIN #acct");
    op.expect_verb("366");
    let (mut s, burst) = linked_with_bob_named(&srv, "services.test", "3SV");
    s.send(":3SV EOB");
    let mut users = Vec::new();
    for (shard, nick) in [(0, "acc0"), (1, "acc1")] {
        let mut c = loop {
            let c = srv.connect();
            if srv.shard_of(&c) == shard {
                break c;
            }
        };
        c.register(nick);
        let intro = s.expect("the UID", |m| m.verb == "UID" && m.p(0) == nick);
        s.send(&format!(":3SV SVSACCOUNT {} {} bad{nick}", intro.p(8), intro.p(2)));
        until_whois_line(&mut c, nick, |m| m.verb == "330");
        users.push(c);
    }
    drop(burst);
    op.send("MODE #acct +b $a:bad*");
    op.expect("the ban", |m| m.verb == "MODE" && m.last() == "$a:bad*");
    for c in users.iter_mut() {
        c.send("JOIN #acct");
        assert_eq!(c.expect("474", |m| m.verb == "474" || m.verb == "366").verb, "474");
    }
    // Not logged in: not matched. Then joined, and banned afterwards: quiet.
    let mut plain = srv.client("plain");
    plain.send("JOIN #acct");
    plain.expect_verb("366");
    op.send("MODE #acct -b+b $a:bad* $a");
    op.expect("the bans", |m| m.verb == "MODE" && m.last() == "$a");
    for c in users.iter_mut() {
        c.send("JOIN #acct");
        assert_eq!(c.expect("474", |m| m.verb == "474" || m.verb == "366").verb, "474");
    }
    op.send("MODE #acct -b $a");
    op.expect("unbanned", |m| m.verb == "MODE" && m.p(1) == "-b");
    for c in users.iter_mut() {
        c.send("JOIN #acct");
        c.expect_verb("366");
    }
    op.send("MODE #acct +b $a:badacc1");
    op.expect("the ban", |m| m.verb == "MODE" && m.last() == "$a:badacc1");
    users[1].send("PRIVMSG #acct :quiet?");
    assert_eq!(users[1].expect("404", |m| m.verb == "404").p(1), "#acct");
    users[0].send("PRIVMSG #acct :heard");
    let m = plain.expect("acc0's message", |m| m.verb == "PRIVMSG");
    assert_eq!(m.p(1), "heard");
}

/// Charybdis services' forced nick change (`ENCAP <server> RSFNC`, only while the user's nick
/// TS is the one it names) and nick hold (`ENCAP * NICKDELAY`).
#[test]
fn rsfnc_renames_and_nickdelay_holds() {
    let srv = Server::with_config(2, &sasl_config());
    let mut p = sasl_services(&srv);
    let mut victims = Vec::new();
    for (shard, nick) in [(0, "victim0"), (1, "victim1")] {
        let mut c = loop {
            let c = srv.connect();
            if srv.shard_of(&c) == shard {
                break c;
            }
        };
        c.register(nick);
        let intro = p.expect("the UID", |m| m.verb == "UID" && m.p(0) == nick);
        victims.push((c, intro.p(8).to_string(), intro.p(2).to_string()));
    }
    for (i, (c, uid, ts)) in victims.iter_mut().enumerate() {
        // A stale one (another nick TS) first: ignored.
        p.send(&format!(":3SV ENCAP irc.test.local RSFNC {uid} Stale{i} {} 1", now()));
        p.send(&format!(":3SV ENCAP irc.test.local RSFNC {uid} Guest{i} {} {ts}", now()));
        let n = c.expect("the forced NICK", |m| m.verb == "NICK");
        assert_eq!(n.p(0), format!("Guest{i}"), "{}", n.raw);
    }
    p.send(":3SV ENCAP * NICKDELAY 60 HeldNick");
    p.send("PING :3SV");
    p.expect_verb("PONG");
    // The hold goes to the nick's owner shard through the mesh: give it a moment.
    std::thread::sleep(Duration::from_millis(100));
    let mut c = srv.connect();
    c.nick = "held".into();
    let mut refused = false;
    for _ in 0..50 {
        c.send("NICK HeldNick");
        c.send("PING :x");
        let m = c.expect("433/437 or PONG", |m| m.verb == "433" || m.verb == "437" || m.verb == "PONG");
        if m.verb != "PONG" {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(refused, "HeldNick was not held");
}

/// extended-monitor: a watcher with `account-notify` hears the ACCOUNT of a nick it monitors
/// (without sharing a channel), once; one without `account-notify` hears nothing.
#[test]
fn extended_monitor_watchers_hear_account_changes() {
    let srv = Server::with_config(2, &sasl_config());
    let mut p = sasl_services(&srv);
    let mut watchers = Vec::new();
    for (nick, caps) in [("w1", "extended-monitor account-notify"), ("w2", "extended-monitor")] {
        let mut w = srv.connect();
        w.register_caps(nick, caps);
        w.send("MONITOR + target");
        w.expect_verb("731");
        watchers.push(w);
    }
    let mut target = srv.client("target");
    let intro = p.expect("the UID", |m| m.verb == "UID" && m.p(0) == "target");
    for w in watchers.iter_mut() {
        w.expect_verb("730");
    }
    p.send(&format!(":3SV SVSACCOUNT {} {} tacct", intro.p(8), intro.p(2)));
    until_whois_line(&mut target, "target", |m| m.verb == "330");
    let a = watchers[0].expect("ACCOUNT", |m| m.verb == "ACCOUNT");
    assert_eq!((a.source.as_deref().map(|s| s.starts_with("target!")), a.p(0)), (Some(true), "tacct"));
    watchers[1].send("PING :x");
    expect_without(&mut watchers[1], "PONG", |m| m.verb == "PONG", |m| m.verb == "ACCOUNT");
    watchers[0].send("PING :x");
    expect_without(&mut watchers[0], "PONG", |m| m.verb == "PONG", |m| m.verb == "ACCOUNT");
}

/// Charybdis topic bursts: `TB` (no channel TS) sets a topic only over none or a newer one
/// (the older topic wins) unless it comes from services; `ETB` follows TBURST's rules.
#[test]
fn tb_and_etb_set_topics_by_their_rules() {
    let config = format!(
        "{}\n[[links]]\nname = \"services.test\"\nsid = \"3SV\"\nsend_password = \"tothem\"\naccept_password = \"tous\"\n",
        config_with_peer("").replace("motd = \"test motd\"", "motd = \"test motd\"\nservices = [\"services.test\"]")
    );
    let srv = Server::with_config(2, &config);
    let mut members = srv.clients_on_both_shards("tm", 1);
    for (c, _) in members.iter_mut() {
        c.send("JOIN #tb");
        c.expect_verb("366");
    }
    members[0].0.send("TOPIC #tb :ours");
    for (c, _) in members.iter_mut() {
        assert_eq!(c.expect("TOPIC", |m| m.verb == "TOPIC").p(1), "ours");
    }
    let (mut peer, _) = linked_with_bob_named(&srv, "peer.test", "2BB");
    let (mut svc, _) = linked_with_bob_named(&srv, "services.test", "3SV");
    let t = now();
    // Newer than ours from a server: ignored. Older: it wins.
    peer.send(&format!(":2BB TB #tb {} someone :newer", t + 100));
    peer.send(&format!(":2BB TB #tb {} someone!x@y :older", t - 100));
    for (c, _) in members.iter_mut() {
        let m = c.expect("TOPIC", |m| m.verb == "TOPIC");
        assert_eq!(m.p(1), "older", "{}", m.raw);
    }
    // From services even a newer one wins; ETB with a newer channel TS does not (TBURST's rules)
    // unless from services.
    svc.send(&format!(":3SV TB #tb {} ChanServ :kept by services", t + 200));
    for (c, _) in members.iter_mut() {
        assert_eq!(c.expect("TOPIC", |m| m.verb == "TOPIC").p(1), "kept by services");
    }
    peer.send(&format!(":2BB ETB {} #tb {} someone :newer channel", t + 1000, t + 300));
    svc.send(&format!(":3SV ETB {} #tb {} ChanServ :etb from services", t + 1000, t + 300));
    for (c, _) in members.iter_mut() {
        let m = c.expect("TOPIC", |m| m.verb == "TOPIC");
        assert_eq!(m.p(1), "etb from services", "{}", m.raw);
    }
}

/// MLOCK: services lock mode letters of a channel (charybdis' form here); an op changing a
/// locked letter gets 742 on either shard, other letters change; a lock with a newer channel TS
/// is ignored; an empty lock unlocks. A hybrid peer (MLOCK in its CAPAB) hears the lock in its
/// form, with a lock TS.
#[test]
fn mlock_keeps_locked_modes() {
    let config = format!(
        "{}\n[[links]]\nname = \"services.test\"\nsid = \"3SV\"\nsend_password = \"tothem\"\naccept_password = \"tous\"\n",
        config_with_peer("").replace("motd = \"test motd\"", "motd = \"test motd\"\nservices = [\"services.test\"]")
    );
    let srv = Server::with_config(2, &config);
    let mut ops = srv.clients_on_both_shards("mo", 1);
    for (c, _) in ops.iter_mut() {
        c.send("JOIN #ml");
        c.expect_verb("366");
    }
    // The first joiner is op; it ops the others.
    let nicks: Vec<String> = ops.iter().skip(1).map(|(c, _)| c.nick.clone()).collect();
    for n in &nicks {
        ops[0].0.send(&format!("MODE #ml +o {n}"));
    }
    let (mut hyb, _) = linked_with_bob_named(&srv, "peer.test", "2BB");
    let (mut svc, burst) = linked_with_bob_named(&srv, "services.test", "3SV");
    let sj = burst.iter().find(|m| m.verb == "SJOIN" && m.p(1) == "#ml").expect("#ml in the burst");
    let ts: u64 = sj.p(0).parse().unwrap();
    svc.send(&format!(":3SV MLOCK {} #ml :tm", ts + 10));
    svc.send(&format!(":3SV MLOCK {ts} #ml :nt"));
    let relayed = hyb.expect("the MLOCK", |m| m.verb == "MLOCK");
    assert_eq!(
        (relayed.p(0), relayed.p(1), relayed.p(2), relayed.p(3)),
        (&*ts.to_string(), "#ml", "0", "nt"),
        "{}",
        relayed.raw
    );
    for (c, _) in ops.iter_mut() {
        // The lock reaches every shard through the mesh: until it is here, -t may pass.
        let mut locked = false;
        for _ in 0..50 {
            c.send("MODE #ml -t");
            let m = c.expect("742 or MODE", |m| m.verb == "742" || (m.verb == "MODE" && m.p(0) == "#ml"));
            if m.verb == "742" {
                assert_eq!((m.p(1), m.p(2), m.p(3)), ("#ml", "t", "nt"), "{}", m.raw);
                locked = true;
                break;
            }
            c.send("MODE #ml +t");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(locked, "{}: -t was never refused", c.nick);
    }
    // Unlocked letters still change; the newer lock (tm) was ignored: +m passes.
    ops[0].0.send("MODE #ml +m");
    ops[0].0.expect("+m", |m| m.verb == "MODE" && m.p(1) == "+m");
    svc.send(&format!(":3SV MLOCK {ts} #ml :"));
    let mut unlocked = false;
    for _ in 0..50 {
        ops[1].0.send("MODE #ml -n");
        let m = ops[1].0.expect("742 or MODE", |m| m.verb == "742" || (m.verb == "MODE" && m.p(1) == "-n"));
        if m.verb == "MODE" {
            unlocked = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(unlocked, "the empty MLOCK did not unlock");
}

/// A registered client that quits in the middle of a reauthentication: services hear `D A`.
#[test]
fn a_client_leaving_mid_reauthentication_aborts_it() {
    let srv = Server::with_config(2, &sasl_config());
    let mut p = sasl_services(&srv);
    let mut c = sasl_client(&srv, "leaver", 1);
    c.send("CAP END");
    c.expect_verb("001");
    c.send("AUTHENTICATE PLAIN");
    let (uid, ..) = sasl_line(&mut p);
    sasl_line(&mut p);
    c.send("QUIT :bye");
    let (u, _, mode, data) = sasl_line(&mut p);
    assert_eq!((u.as_str(), mode.as_str(), data.as_str()), (uid.as_str(), "D", "A"));
}

/// Between two rustircd servers a message keeps its msgid and time (MTAGS links carry them),
/// so both servers' histories hold the same message; a user's metadata crosses too.
#[test]
fn history_and_msgids_cross_between_rustircd_servers() {
    const CAPS: &str = "message-tags server-time echo-message batch draft/chathistory";
    let (a, b) = two_rustircd_servers();
    let mut alice = a.connect();
    alice.register_caps("alice", CAPS);
    let mut bob = b.connect();
    bob.register_caps("bob", CAPS);
    for c in [&mut alice, &mut bob] {
        c.send("JOIN #net");
        c.expect_verb("366");
    }
    until_names(&mut alice, "#net", 2);
    until_whois(&mut alice, "bob", true);
    let mut ids = Vec::new();
    for (text, to) in [("in the channel", "#net"), ("just for bob", "bob")] {
        alice.send(&format!("PRIVMSG {to} :{text}"));
        let echo = alice.expect_verb("PRIVMSG");
        let got = bob.expect_verb("PRIVMSG");
        assert_eq!(got.last(), text);
        assert_eq!(got.tag("msgid"), echo.tag("msgid"), "the same message on both servers");
        assert_eq!(got.tag("time"), echo.tag("time"));
        ids.push(echo.tag("msgid").unwrap().to_string());
    }
    let history = |c: &mut Client, target: &str| -> Vec<(String, String)> {
        c.send(&format!("CHATHISTORY LATEST {target} * 10"));
        c.expect_verb("BATCH");
        let mut lines = c.collect_until("BATCH");
        lines.pop();
        lines
            .iter()
            .filter(|m| m.verb == "PRIVMSG")
            .map(|m| (m.last().to_string(), m.tag("msgid").unwrap().to_string()))
            .collect()
    };
    assert_eq!(history(&mut bob, "#net"), [("in the channel".to_string(), ids[0].clone())]);
    // Without an account, bob's connection keeps its own conversation, with A's msgid.
    assert_eq!(history(&mut bob, "alice"), [("just for bob".to_string(), ids[1].clone())]);
    // A user's metadata set on A reaches B.
    bob.send("CAP REQ :draft/metadata-3");
    bob.expect_verb("CAP");
    bob.send("METADATA * SUB display-name");
    bob.expect_verb("770");
    alice.send("CAP REQ :draft/metadata-3");
    alice.expect_verb("CAP");
    alice.send("METADATA * SET display-name :Alice of A");
    alice.expect_verb("761");
    let told = bob.expect_verb("761");
    assert_eq!(told.params[1..], ["alice", "display-name", "*", "Alice of A"]);
}
