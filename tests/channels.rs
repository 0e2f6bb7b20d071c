//! Channels and messaging against the real binary at `--cores 2`, with the members of every
//! tested channel spread over both shards.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Client, Server, BASE_CONFIG};

/// `n` registered clients, at least two on each shard, all in `chan`, with everything up to now
/// read (so each test starts from silence).
fn members(srv: &Server, prefix: &str, n: usize, chan: &str) -> Vec<Client> {
    let mut spread = srv.clients_on_both_shards(prefix, 2);
    let mut i = spread.len();
    while spread.len() < n {
        let c = srv.client(&format!("{prefix}{i}"));
        let s = srv.shard_of(&c);
        spread.push((c, s));
        i += 1;
    }
    let mut clients: Vec<Client> = spread.into_iter().map(|(c, _)| c).collect();
    let nicks: Vec<String> = clients.iter().map(|c| c.nick.clone()).collect();
    for c in clients.iter_mut() {
        c.send(&format!("JOIN {chan}"));
        c.expect_verb("366");
    }
    // Everyone has seen everyone who joined after them: nothing is still in flight.
    for (i, c) in clients.iter_mut().enumerate() {
        for later in &nicks[i + 1..] {
            let from = format!("{later}!");
            c.expect("a later JOIN", |m| m.verb == "JOIN" && m.source.as_deref().unwrap_or("").starts_with(&from));
        }
        c.sync();
    }
    clients
}

/// Lines `c` receives up to `marker` (a PRIVMSG text), which its sender sent after the events
/// under test: every user's events arrive in order, so nothing of theirs can come later.
fn until_marker(c: &mut Client, marker: &str) -> Vec<common::Msg> {
    let mut seen = Vec::new();
    loop {
        let m = c.expect("marker", |_| true);
        if m.verb == "PRIVMSG" && m.last() == marker {
            return seen;
        }
        seen.push(m);
    }
}

fn texts(c: &mut Client, verb: &str, want: usize) -> Vec<(String, String)> {
    let mut got = Vec::new();
    while got.len() < want {
        let m = c.expect(verb, |m| m.verb == verb);
        let nick = m.source.as_deref().unwrap_or("").split('!').next().unwrap_or("").to_string();
        got.push((nick, m.last().to_string()));
    }
    got
}

#[test]
fn channel_messages_exactly_once_and_in_sender_order_across_shards() {
    let srv = Server::start();
    let mut cs = members(&srv, "m", 6, "#order");
    const K: usize = 30;
    // every member sends K numbered messages, all at once
    for c in cs.iter_mut() {
        let burst: String = (0..K).map(|i| format!("PRIVMSG #order :{} {i}\r\n", c.nick)).collect();
        c.send_raw(burst.as_bytes());
    }
    let n = cs.len();
    let nicks: Vec<String> = cs.iter().map(|c| c.nick.clone()).collect();
    for c in cs.iter_mut() {
        let got = texts(c, "PRIVMSG", (n - 1) * K);
        let mut next: HashMap<String, usize> = HashMap::new();
        for (from, text) in got {
            assert_ne!(from, c.nick, "a sender got its own message back");
            let i: usize = text.split(' ').nth(1).unwrap().parse().unwrap();
            let want = next.entry(from.clone()).or_insert(0);
            assert_eq!(i, *want, "{} got {from}'s message {i} out of order", c.nick);
            *want += 1;
        }
        for nick in &nicks {
            if *nick != c.nick {
                assert_eq!(next.get(nick), Some(&K), "{} missed messages from {nick}", c.nick);
            }
        }
        // and nothing more (no duplicates)
        let extra = c.sync();
        assert!(extra.iter().all(|m| m.verb != "PRIVMSG"), "duplicates: {extra:?}");
    }
}

#[test]
fn join_part_kick_seen_once_by_every_member() {
    let srv = Server::start();
    let mut cs = members(&srv, "j", 5, "#jpk");
    let mut late = srv.client("latecomer");
    late.send("JOIN #jpk");
    late.expect_verb("366");
    for c in cs.iter_mut() {
        let m = c.expect_verb("JOIN");
        assert!(m.source.as_deref().unwrap().starts_with("latecomer!"));
    }
    late.send("PART #jpk :so long");
    let p = late.expect_verb("PART");
    assert_eq!((p.p(0), p.last()), ("#jpk", "so long"));
    for c in cs.iter_mut() {
        let m = c.expect_verb("PART");
        assert_eq!(m.last(), "so long");
    }
    // the first member created the channel and is op: it kicks the last one
    let victim = cs.last().unwrap().nick.clone();
    cs[0].send(&format!("KICK #jpk {victim} :out"));
    for c in cs.iter_mut() {
        let m = c.expect_verb("KICK");
        assert_eq!((m.p(1), m.last()), (victim.as_str(), "out"));
    }
    cs[0].send("PRIVMSG #jpk :after-kick");
    let n = cs.len();
    for c in cs[1..n - 1].iter_mut() {
        let rest = until_marker(c, "after-kick");
        assert!(rest.iter().all(|m| !matches!(m.verb.as_str(), "JOIN" | "PART" | "KICK")), "{rest:?}");
    }
    // the kicked member is out: its message bounces (+n)
    let last = cs.last_mut().unwrap();
    last.send("PRIVMSG #jpk :still here?");
    assert_eq!(last.expect_verb("404").p(1), "#jpk");
}

#[test]
fn nick_and_quit_seen_once_per_observer_sharing_two_channels() {
    let srv = Server::start();
    let mut cs = members(&srv, "q", 4, "#one");
    for c in cs.iter_mut() {
        c.send("JOIN #two");
        c.expect_verb("366");
    }
    for c in cs.iter_mut() {
        c.sync();
    }
    let (first, rest) = cs.split_first_mut().unwrap();
    first.send("NICK renamed");
    first.expect_verb("NICK");
    first.send("PRIVMSG #one :after-nick");
    for c in rest.iter_mut() {
        let seen = until_marker(c, "after-nick");
        let nicks: Vec<_> = seen.iter().filter(|m| m.verb == "NICK").collect();
        assert_eq!(nicks.len(), 1, "{}: {seen:?}", c.nick);
        assert_eq!(nicks[0].p(0), "renamed");
    }
    first.send("QUIT :gone");
    for c in rest.iter_mut() {
        let q = c.expect_verb("QUIT");
        assert!(q.source.as_deref().unwrap().starts_with("renamed!"));
        assert_eq!(q.last(), "Quit: gone");
    }
    // a second QUIT line would come before anything the others say afterwards
    rest[0].send("PRIVMSG #two :after-quit");
    for c in rest[1..].iter_mut() {
        let seen = until_marker(c, "after-quit");
        assert!(seen.iter().all(|m| m.verb != "QUIT"), "{seen:?}");
    }
    // both channels forgot the quitter
    rest[0].send("NAMES #two");
    let names = rest[0].expect_verb("353");
    assert!(!names.last().contains("renamed"), "{}", names.raw);
}

#[test]
fn topic_with_setter_and_time() {
    let srv = Server::start();
    let mut cs = members(&srv, "t", 4, "#topic");
    cs[0].send("TOPIC #topic :the topic");
    for c in cs.iter_mut() {
        let m = c.expect_verb("TOPIC");
        assert_eq!(m.last(), "the topic");
    }
    // +t: a non-op may not change it
    cs[1].send("TOPIC #topic :mine now");
    assert_eq!(cs[1].expect_verb("482").p(1), "#topic");
    let mut newcomer = srv.client("reader");
    newcomer.send("JOIN #topic");
    let t = newcomer.expect_verb("332");
    assert_eq!((t.p(1), t.last()), ("#topic", "the topic"));
    let w = newcomer.expect_verb("333");
    assert!(w.p(2).starts_with(&format!("{}!", cs[0].nick)), "{}", w.raw);
    assert!(w.p(3).parse::<u64>().unwrap() > 1_700_000_000);
    newcomer.send("TOPIC #topic");
    newcomer.expect_verb("332");
    // clearing it
    cs[0].send("TOPIC #topic :");
    cs[0].expect_verb("TOPIC");
    newcomer.expect_verb("TOPIC");
    newcomer.send("TOPIC #topic");
    newcomer.expect_verb("331");
}

#[test]
fn channel_modes_and_their_numerics() {
    let srv = Server::start();
    let mut cs = members(&srv, "md", 4, "#modes");
    let op = cs[0].nick.clone();
    let other = cs[1].nick.clone();
    // query: +nt by default, creation time
    cs[0].send("MODE #modes");
    assert_eq!(cs[0].expect_verb("324").p(2), "+nt");
    cs[0].expect_verb("329");
    // a non-op may not change modes
    cs[1].send("MODE #modes +m");
    assert_eq!(cs[1].expect_verb("482").p(1), "#modes");
    // +o and +v are shown to everyone with the target's nick
    cs[0].send(&format!("MODE #modes +v {other}"));
    for c in cs.iter_mut() {
        let m = c.expect_verb("MODE");
        assert_eq!((m.p(1), m.p(2)), ("+v", other.as_str()));
    }
    // unknown mode, unknown nick, nick not in channel
    cs[0].send("MODE #modes +X");
    assert_eq!(cs[0].expect_verb("472").p(1), "X");
    cs[0].send("MODE #modes +o nosuchnick");
    cs[0].expect_verb("401");
    let mut outsider = srv.client("outsider");
    cs[0].send("MODE #modes +o outsider");
    cs[0].expect_verb("441");
    // +n: outsiders cannot send
    outsider.send("PRIVMSG #modes :hello?");
    assert_eq!(outsider.expect_verb("404").p(1), "#modes");
    // +m: only voiced and ops speak
    cs[0].send("MODE #modes +m");
    for c in cs.iter_mut() {
        c.expect_verb("MODE");
    }
    cs[2].send("PRIVMSG #modes :muted");
    cs[2].expect_verb("404");
    cs[1].send("PRIVMSG #modes :voiced");
    let m = cs[3].expect_verb("PRIVMSG");
    assert_eq!(m.last(), "voiced");
    // +k
    cs[0].send("MODE #modes +k secret");
    cs[0].expect_verb("MODE");
    cs[0].send("MODE #modes +k another");
    assert_eq!(cs[0].expect_verb("467").p(1), "#modes");
    outsider.send("JOIN #modes");
    assert_eq!(outsider.expect_verb("475").p(1), "#modes");
    outsider.send("JOIN #modes wrong");
    outsider.expect_verb("475");
    outsider.send("JOIN #modes secret");
    outsider.expect_verb("366");
    outsider.send("PART #modes");
    outsider.expect_verb("PART");
    cs[0].send("MODE #modes +k :has space");
    assert_eq!(cs[0].expect_verb("696").p(2), "k");
    cs[0].send("MODE #modes -k *");
    cs[0].expect_verb("MODE");
    // +l
    cs[0].send("MODE #modes +l 4");
    cs[0].expect_verb("MODE");
    outsider.send("JOIN #modes");
    assert_eq!(outsider.expect_verb("471").p(1), "#modes");
    cs[0].send("MODE #modes -l");
    cs[0].expect_verb("MODE");
    // +i, then INVITE lets one in (and is used up)
    cs[0].send("MODE #modes +i");
    cs[0].expect_verb("MODE");
    outsider.send("JOIN #modes");
    assert_eq!(outsider.expect_verb("473").p(1), "#modes");
    cs[2].send("INVITE outsider #modes");
    assert_eq!(cs[2].expect_verb("482").p(1), "#modes");
    cs[0].send("INVITE outsider #modes");
    let inv = cs[0].expect_verb("341");
    assert_eq!((inv.p(1), inv.p(2)), ("outsider", "#modes"));
    let got = outsider.expect_verb("INVITE");
    assert!(got.source.as_deref().unwrap().starts_with(&format!("{op}!")));
    outsider.send("JOIN #modes");
    outsider.expect_verb("366");
    cs[0].send(&format!("INVITE {other} #modes"));
    assert_eq!(cs[0].expect_verb("443").p(1), other);
    outsider.send("PART #modes");
    outsider.expect_verb("PART");
    outsider.send("JOIN #modes");
    outsider.expect_verb("473");
}

#[test]
fn bans_exceptions_and_casemapping() {
    let cfg = BASE_CONFIG.replace("[[classes]]", "[limits]\nmax_list_entries = 3\n\n[[classes]]");
    let srv = Server::with_config(2, &cfg);
    let mut cs = members(&srv, "b", 4, "#bans");
    let mut bad = srv.client("BadGuy");
    // a ban in another case still matches
    cs[0].send("MODE #bans +b BADGUY");
    let m = cs[0].expect_verb("MODE");
    assert_eq!((m.p(1), m.p(2)), ("+b", "BADGUY!*@*"));
    bad.send("JOIN #bans");
    assert_eq!(bad.expect_verb("474").p(1), "#bans");
    // the list shows who set it and when
    cs[1].send("MODE #bans +b");
    let e = cs[1].expect_verb("367");
    assert_eq!(e.p(2), "BADGUY!*@*");
    assert!(e.p(3).starts_with(&format!("{}!", cs[0].nick)));
    assert!(e.p(4).parse::<u64>().is_ok());
    cs[1].expect_verb("368");
    // an exception lets the banned user in
    cs[0].send("MODE #bans +e badguy!*@127.0.0.1");
    cs[0].expect_verb("MODE");
    cs[0].send("MODE #bans e");
    assert_eq!(cs[0].expect_verb("348").p(2), "badguy!*@127.0.0.1");
    cs[0].expect_verb("349");
    bad.send("JOIN #bans");
    bad.expect_verb("366");
    // without the exception, a banned member cannot speak
    cs[0].send("MODE #bans -e badguy!*@127.0.0.1");
    cs[0].expect_verb("MODE");
    bad.expect_verb("MODE");
    bad.send("PRIVMSG #bans :let me talk");
    assert_eq!(bad.expect_verb("404").p(1), "#bans");
    // invite exceptions
    cs[0].send("MODE #bans +I *!*@127.0.0.1");
    cs[0].expect_verb("MODE");
    cs[0].send("MODE #bans I");
    cs[0].expect_verb("346");
    cs[0].expect_verb("347");
    // the list is bounded (3 entries here): 478
    cs[0].send("MODE #bans +bbb a b c");
    let seen = cs[0].sync();
    assert!(seen.iter().any(|m| m.verb == "478"), "{seen:?}");
}

#[test]
fn refusals_have_their_numerics() {
    let cfg = BASE_CONFIG.replace("[[classes]]", "[limits]\nmax_channels = 2\n\n[[classes]]");
    let srv = Server::with_config(2, &cfg);
    let mut a = srv.client("refused");
    let mut b = srv.client("other");
    a.send("PRIVMSG nobody :hi");
    assert_eq!(a.expect_verb("401").p(1), "nobody");
    a.send("PRIVMSG #nowhere :hi");
    assert_eq!(a.expect_verb("403").p(1), "#nowhere");
    a.send("PART #nowhere");
    a.expect_verb("403");
    a.send("JOIN nochannel");
    a.expect_verb("403");
    a.send_raw(b"JOIN #bell\x07\r\n");
    a.expect_verb("476");
    b.send("JOIN #b1");
    b.expect_verb("366");
    a.send("PART #b1");
    assert_eq!(a.expect_verb("442").p(1), "#b1");
    a.send("KICK #b1 other");
    a.expect_verb("442");
    a.send("TOPIC #b1 :x");
    a.expect_verb("442");
    a.send("JOIN #a1,#a2,#a3");
    a.expect_verb("405");
    a.send("MODE other +i");
    a.expect_verb("502");
    a.send("MODE refused +Q");
    a.expect_verb("501");
    a.send("PRIVMSG");
    a.expect_verb("411");
    a.send("PRIVMSG other");
    a.expect_verb("412");
    a.send("PRIVMSG a,b,c,d,e :x");
    a.expect_verb("407");
    a.send("KICK #a1 other");
    assert_eq!(a.expect_verb("441").p(1), "other");
    a.send("JOIN #a1");
    a.send("KNOCK #a1");
    a.expect_verb("714");
    a.send("KNOCK #b1");
    a.expect_verb("713");
}

#[test]
fn names_list_and_statusmsg() {
    let srv = Server::start();
    let mut cs = members(&srv, "n", 4, "#names");
    let op = cs[0].nick.clone();
    cs[0].send("MODE #names +s");
    for c in cs.iter_mut() {
        c.expect_verb("MODE");
    }
    cs[1].send("NAMES #names");
    let n = cs[1].expect_verb("353");
    assert_eq!(n.p(1), "@");
    assert!(n.last().split(' ').any(|x| x == format!("@{op}")), "{}", n.raw);
    for c in &cs {
        assert!(n.last().split(' ').any(|x| x.trim_start_matches('@') == c.nick), "{} missing", c.nick);
    }
    // a secret channel is invisible to outsiders
    let mut outsider = srv.client("lister");
    outsider.send("NAMES #names");
    assert_eq!(outsider.expect_verb("366").p(1), "#names");
    outsider.send("LIST");
    let lines = outsider.collect_until("323");
    assert!(lines.iter().all(|m| m.verb != "322"), "{lines:?}");
    cs[0].send("MODE #names -s");
    cs[0].expect_verb("MODE");
    outsider.sync();
    outsider.send("LIST >2");
    let lines = outsider.collect_until("323");
    let row = lines.iter().find(|m| m.verb == "322").expect("322");
    assert_eq!((row.p(1), row.p(2)), ("#names", cs.len().to_string().as_str()));
    outsider.send("LIST <3");
    assert!(outsider.collect_until("323").iter().all(|m| m.verb != "322"));
    // STATUSMSG: @#chan reaches ops only
    cs[1].send("PRIVMSG @#names :ops only");
    assert_eq!(cs[0].expect_verb("PRIVMSG").p(0), "@#names");
    for c in cs[2..].iter_mut() {
        assert!(c.sync().iter().all(|m| m.verb != "PRIVMSG"));
    }
}

#[test]
fn user_queries_across_shards() {
    let srv = Server::start();
    let mut cs = members(&srv, "w", 4, "#who");
    // pick a pair on different shards
    let shards: Vec<usize> = cs.iter().map(|c| srv.shard_of(c)).collect();
    let j = (1..cs.len()).find(|&j| shards[j] != shards[0]).unwrap();
    let target = cs[j].nick.clone();
    cs[j].send("AWAY :out to lunch");
    assert_eq!(cs[j].expect_verb("306").p(0), target);
    std::thread::sleep(Duration::from_millis(100));
    // WHOIS of a user on the other shard, idle time included
    cs[0].send(&format!("WHOIS {target}"));
    let lines = cs[0].collect_until("318");
    let verbs: Vec<&str> = lines.iter().map(|m| m.verb.as_str()).collect();
    for v in ["311", "319", "312", "301", "317", "318"] {
        assert!(verbs.contains(&v), "missing {v} in {verbs:?}");
    }
    assert_eq!(lines.iter().find(|m| m.verb == "301").unwrap().last(), "out to lunch");
    assert!(lines.iter().find(|m| m.verb == "319").unwrap().last().contains("#who"));
    // messages to an away user get 301
    cs[0].send(&format!("PRIVMSG {target} :hi"));
    cs[0].expect_verb("301");
    assert_eq!(cs[j].expect_verb("PRIVMSG").last(), "hi");
    cs[j].send("AWAY");
    cs[j].expect_verb("305");
    // WHO on the channel, plain and WHOX
    cs[0].send("WHO #who");
    let rows = cs[0].collect_until("315");
    assert_eq!(rows.iter().filter(|m| m.verb == "352").count(), cs.len());
    cs[0].send("WHO #who %tnf,42");
    let rows = cs[0].collect_until("315");
    let x = rows.iter().find(|m| m.verb == "354").unwrap();
    assert_eq!(x.p(1), "42");
    // ISON and USERHOST
    cs[0].send(&format!("ISON {} nobodyhere", target.to_uppercase()));
    assert_eq!(cs[0].expect_verb("303").last(), target);
    cs[0].send(&format!("USERHOST {target}"));
    assert!(cs[0].expect_verb("302").last().starts_with(&format!("{target}=+")));
    // WHOWAS after a nick change on the other shard
    cs[j].send("NICK whowasme");
    cs[j].expect_verb("NICK");
    cs[0].expect_verb("NICK");
    cs[0].send(&format!("WHOWAS {target}"));
    assert_eq!(cs[0].expect_verb("314").p(1), target);
    cs[0].expect_verb("369");
    cs[0].send("WHOWAS neverexisted");
    cs[0].expect_verb("406");
}

#[test]
fn monitor_sees_arrivals_and_departures() {
    let srv = Server::start();
    let mut w = srv.client("watcher");
    w.send("MONITOR + target1,target2");
    let off = w.expect_verb("731");
    assert!(off.last().contains("target1"));
    let mut t = srv.client("target1");
    let on = w.expect_verb("730");
    assert!(on.last().starts_with("target1!"));
    t.send("QUIT");
    assert_eq!(w.expect_verb("731").last(), "target1");
    w.send("MONITOR L");
    let l = w.collect_until("733");
    assert!(l.iter().any(|m| m.verb == "732" && m.last().contains("target2")));
    w.send("MONITOR C");
    w.send("MONITOR S");
    assert!(w.sync().iter().all(|m| m.verb != "730" && m.verb != "731"));
}

#[test]
fn a_thousand_member_channel() {
    let srv = Server::start();
    let n = 1000;
    // register everyone at once, then join everyone at once
    let mut cs: Vec<Client> = (0..n).map(|_| srv.connect()).collect();
    for (i, c) in cs.iter_mut().enumerate() {
        c.nick = format!("k{i}");
        c.send(&format!("NICK k{i}\r\nUSER k 0 * :k"));
    }
    for c in cs.iter_mut() {
        c.expect_verb("001");
        c.expect_verb("376");
    }
    for c in cs.iter_mut() {
        c.send("JOIN #big");
    }
    for c in cs.iter_mut() {
        c.expect_verb("366");
    }
    let on: std::collections::HashSet<usize> = cs.iter().take(40).map(|c| srv.shard_of(c)).collect();
    assert_eq!(on.len(), 2, "members on both shards");
    let mut last = Client::connect(srv.addr);
    last.register("bigjoiner");
    last.send("JOIN #big");
    let names = last.collect_until("366");
    let listed: usize = names.iter().filter(|m| m.verb == "353").map(|m| m.last().split(' ').count()).sum();
    assert_eq!(listed, n + 1);
    last.send("PRIVMSG #big :to everyone");
    for c in cs.iter_mut() {
        c.expect("the big message", |m| m.verb == "PRIVMSG" && m.last() == "to everyone");
    }
}

/// Causal order across shards: once a sender has heard back from the server after a message
/// (its PONG), anyone on another shard who then asks the server anything gets the message
/// first. (irctest's no-external test does this with a non-member; it lost the race.)
#[test]
fn a_message_arrives_before_anything_said_after_it() {
    let srv = Server::start();
    for round in 0..60 {
        let mut op = srv.client(&format!("op{round}"));
        op.send(&format!("JOIN #c{round}"));
        op.expect_verb("366");
        let mut baz = srv.client(&format!("baz{round}"));
        op.send(&format!("MODE #c{round} -n"));
        op.expect_verb("MODE");
        baz.send(&format!("PRIVMSG #c{round} :outside"));
        baz.sync();
        let got = op.sync();
        assert!(
            got.iter().any(|m| m.verb == "PRIVMSG" && m.last() == "outside"),
            "round {round}: op (shard {}) had not the message of baz (shard {}) before its PONG",
            srv.shard_of(&op),
            srv.shard_of(&baz)
        );
        op.send("QUIT");
        baz.send("QUIT");
    }
}
