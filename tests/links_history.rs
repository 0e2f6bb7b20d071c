//! History and the IRCv3 drafts across links between rustircd servers (`MTAGS` peers), against
//! the real binaries at `--cores 2`: a channel's messages reach every rustircd server, members
//! behind it or not, so each keeps the channel's history; redactions, channel metadata, and a
//! burst of metadata and read markers when servers link.

mod common;

use std::time::Duration;

use common::{identified, link_block, server_config, services, Client, Msg, Server};

const CAPS: &str = "message-tags server-time echo-message batch draft/chathistory draft/message-redaction";

/// Two rustircd servers, `irc.a.test` (1AA, which dials) and `irc.b.test` (2BB), linked.
fn two_servers() -> (Server, Server) {
    let b = Server::with_config(2, &server_config("irc.b.test", "2BB", &link_block("irc.a.test", "1AA", None, false)));
    let a = Server::with_config(
        2,
        &server_config("irc.a.test", "1AA", &link_block("irc.b.test", "2BB", Some(b.addr), false)),
    );
    a.wait_log(&["Link established: irc.b.test"]);
    b.wait_log(&["Link established: irc.a.test"]);
    (a, b)
}

/// `f` until it gives something (within about 5 s).
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..100 {
        if let Some(x) = f() {
            return x;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("never: {what}");
}

/// The messages of `target`'s history as `c` gets them: (verb, text, msgid).
fn history(c: &mut Client, target: &str) -> Vec<(String, String, String)> {
    c.send(&format!("CHATHISTORY LATEST {target} * 50"));
    c.expect_verb("BATCH");
    let mut lines = c.collect_until("BATCH");
    lines.pop();
    lines
        .iter()
        .filter(|m| ["PRIVMSG", "NOTICE", "TAGMSG"].contains(&m.verb.as_str()))
        .map(|m| {
            let text =
                if m.verb == "TAGMSG" { m.tag("+draft/react").unwrap_or("").to_string() } else { m.last().into() };
            (m.verb.clone(), text, m.tag("msgid").unwrap_or("").to_string())
        })
        .collect()
}

/// `c` joins `chan` and reads up to its 366.
fn join(c: &mut Client, chan: &str) {
    c.send(&format!("JOIN {chan}"));
    c.expect_verb("366");
}

/// What `from` says in a channel, with its echo's msgid.
fn say(from: &mut Client, line: &str) -> String {
    from.send(line);
    let verb = line.split(' ').find(|w| !w.starts_with('@')).unwrap();
    let me = format!("{}!", from.nick);
    let echo = from.expect(verb, |m| m.verb == verb && m.source.as_deref().is_some_and(|s| s.starts_with(&me)));
    echo.tag("msgid").expect("msgid").to_string()
}

/// A chain A ─ B ─ C of rustircd servers where only A has members of #far: B and C keep its
/// history all the same (B passes it on), each message once and with A's msgid; a typing
/// notice is not kept, a reaction is (replayed with event-playback). Nobody who is not a
/// member is shown anything.
#[test]
fn a_channel_history_reaches_servers_without_members() {
    const CAPS: &str = "message-tags server-time echo-message batch draft/chathistory draft/event-playback";
    let b_links = link_block("irc.a.test", "1AA", None, false) + &link_block("irc.c.test", "3CC", None, false);
    let b = Server::with_config(2, &server_config("irc.b.test", "2BB", &b_links));
    let a = Server::with_config(
        2,
        &server_config("irc.a.test", "1AA", &link_block("irc.b.test", "2BB", Some(b.addr), true)),
    );
    let c = Server::with_config(
        2,
        &server_config("irc.c.test", "3CC", &link_block("irc.b.test", "2BB", Some(b.addr), true)),
    );
    a.wait_log(&["Link established: irc.b.test"]);
    c.wait_log(&["Link established: irc.b.test"]);
    for from in ["irc.a.test", "irc.c.test"] {
        b.wait_log(&[&format!("Server burst: end of burst from {from}")]);
    }
    let mut alice = a.connect();
    alice.register_caps("alice", CAPS);
    let mut bystanders = [b.client_on_shard_caps("byb", CAPS, 0), c.client_on_shard_caps("byc", CAPS, 0)];
    join(&mut alice, "#far");
    let mut ids = vec![
        ("PRIVMSG", "first words".to_string(), say(&mut alice, "PRIVMSG #far :first words")),
        ("NOTICE", "a notice".to_string(), say(&mut alice, "NOTICE #far :a notice")),
    ];
    say(&mut alice, "@+typing=active TAGMSG #far");
    ids.push(("TAGMSG", "👍".to_string(), say(&mut alice, "@+draft/react=👍 TAGMSG #far")));
    ids.push(("PRIVMSG", "last words".to_string(), say(&mut alice, "PRIVMSG #far :last words")));
    let want: Vec<(String, String, String)> =
        ids.iter().map(|(v, t, i)| (v.to_string(), t.clone(), i.clone())).collect();
    assert_eq!(history(&mut alice, "#far"), want, "A's own history");
    for ((srv, nick), by) in [(&b, "lateb"), (&c, "latec")].into_iter().zip(bystanders.iter_mut()) {
        // A member on this server now: the log was kept before it came.
        let mut late = srv.client_on_shard_caps(nick, CAPS, 1);
        join(&mut late, "#far");
        let got = eventually("the history elsewhere", || {
            let h = history(&mut late, "#far");
            (h.len() >= want.len()).then_some(h)
        });
        assert_eq!(got, want, "the same messages, once each, on {}", srv.addr);
        // The bystander (in no channel) heard none of it.
        let heard: Vec<Msg> = by.sync();
        assert!(!heard.iter().any(|m| ["PRIVMSG", "NOTICE", "TAGMSG"].contains(&m.verb.as_str())), "{heard:?}");
    }
}

/// A REDACT accepted on A takes the message out of B's history too (B had no member when it
/// was said), and B's members with the capability see the REDACT.
#[test]
fn a_redaction_crosses_to_the_other_server() {
    let (a, b) = two_servers();
    let mut alice = a.connect();
    alice.register_caps("alice", CAPS);
    join(&mut alice, "#red");
    let oops = say(&mut alice, "PRIVMSG #red :oops");
    let fine = say(&mut alice, "PRIVMSG #red :fine");
    let mut bob = b.connect();
    bob.register_caps("bob", CAPS);
    join(&mut bob, "#red");
    let texts = |c: &mut Client| history(c, "#red").into_iter().map(|(_, t, _)| t).collect::<Vec<_>>();
    eventually("both on B", || (texts(&mut bob).len() == 2).then_some(()));
    // alice learns of bob's JOIN before she redacts, so B surely has her channel's state.
    alice.expect_verb("JOIN");
    alice.send(&format!("REDACT #red {oops} :typo"));
    let r = alice.expect_verb("REDACT");
    assert_eq!(r.params, ["#red", oops.as_str(), "typo"]);
    let r = bob.expect("the REDACT on B", |m| m.verb == "REDACT");
    assert_eq!(
        (r.params.clone(), r.source.unwrap().starts_with("alice!")),
        (vec!["#red".into(), oops, "typo".into()], true)
    );
    assert_eq!(texts(&mut bob), ["fine"]);
    assert_eq!(texts(&mut alice), ["fine"]);
    let _ = fine;
}

/// A channel's metadata set on A is seen on B (GET, and subscribed members are told), and
/// cleared on both.
#[test]
fn channel_metadata_crosses_a_link() {
    const MD: &str = "draft/metadata-3 batch";
    let (a, b) = two_servers();
    let mut op = a.connect();
    op.register_caps("op", MD);
    join(&mut op, "#meta");
    let mut bob = b.connect();
    bob.register_caps("bob", MD);
    bob.send("METADATA * SUB url");
    bob.expect_verb("770");
    join(&mut bob, "#meta");
    // bob's JOIN reached A: A's channel is on B.
    op.expect_verb("JOIN");
    op.send("METADATA #meta SET url :https://example.org");
    op.expect_verb("761");
    let told = bob.expect("761 from the change", |m| m.verb == "761");
    assert_eq!(told.params[1..], ["#meta", "url", "*", "https://example.org"]);
    let get = |c: &mut Client| {
        c.send("METADATA #meta GET url");
        c.expect("761 or 766", |m| m.verb == "761" || m.verb == "766")
    };
    assert_eq!(get(&mut bob).last(), "https://example.org");
    op.send("METADATA #meta SET url");
    op.expect_verb("766");
    bob.expect("766 from the change", |m| m.verb == "766");
    assert_eq!(get(&mut bob).verb, "766");
    // And the other way: an op on B (bob is not one: refused on B, nothing crosses).
    bob.send("METADATA #meta SET url :nope");
    bob.expect("FAIL", |m| m.verb == "FAIL" || m.verb == "482");
    assert_eq!(get(&mut op).verb, "766");
}

/// What was set before two servers linked crosses in the burst: an account's read markers,
/// a user's and a channel's metadata. B's session of the same account sees A's marker.
#[test]
fn a_later_link_learns_markers_and_metadata() {
    let with_services =
        |c: String| c.replace("motd = \"test motd\"", "motd = \"test motd\"\nservices = [\"services.test\"]");
    let svc = "\n[[links]]\nname = \"services.test\"\nsid = \"3SV\"\nsend_password = \"tothem\"\naccept_password = \"tous\"\n";
    let a = Server::with_config(
        2,
        &with_services(server_config("irc.a.test", "1AA", &(link_block("irc.b.test", "2BB", None, false) + svc))),
    );
    let mut s = services(&a);
    let caps = "draft/read-marker draft/metadata-3 batch";
    let mut alice = identified(&a, &mut s, "alice", caps, 0, "acct");
    let stamp = "2024-05-01T10:00:00.000Z";
    alice.send(&format!("MARKREAD #old timestamp={stamp}"));
    alice.expect_verb("MARKREAD");
    alice.send("METADATA * SET display-name :Alice of A");
    alice.expect_verb("761");
    join(&mut alice, "#meta");
    alice.send("METADATA #meta SET url :https://a.example");
    alice.expect_verb("761");

    let b = Server::with_config(
        2,
        &with_services(server_config("irc.b.test", "2BB", &link_block("irc.a.test", "1AA", Some(a.addr), true))),
    );
    b.wait_log(&["Server burst: end of burst from irc.a.test"]);
    let mut other = identified(&b, &mut s, "alice2", caps, 1, "acct");
    let marker = eventually("A's marker on B", || {
        other.send("MARKREAD #old");
        let m = other.expect_verb("MARKREAD");
        (m.p(1) != "*").then_some(m)
    });
    assert_eq!(marker.p(1), format!("timestamp={stamp}"));
    other.send("METADATA alice GET display-name");
    assert_eq!(other.expect("761", |m| m.verb == "761" || m.verb == "766").last(), "Alice of A");
    other.send("METADATA #meta GET url");
    assert_eq!(other.expect("761", |m| m.verb == "761" || m.verb == "766").last(), "https://a.example");
    // A marker raised on B after the link reaches A's session.
    let later = "2024-05-02T10:00:00.000Z";
    other.send(&format!("MARKREAD #old timestamp={later}"));
    other.expect_verb("MARKREAD");
    let told = alice.expect("the raised marker", |m| m.verb == "MARKREAD");
    assert_eq!(told.params, ["#old".to_string(), format!("timestamp={later}")]);
}

/// A private message between accounts on two servers is kept on both; its sender's REDACT on A
/// takes it out of both sides' logs on B too, and the other side (on B) sees the REDACT.
#[test]
fn a_private_redaction_crosses_to_the_other_server() {
    let (a, b, mut s) = linked_with_services();
    let mut ann = identified(&a, &mut s, "ann", CAPS, 0, "annacct");
    let mut ben = identified(&b, &mut s, "ben", CAPS, 1, "benacct");
    let gone = say(&mut ann, "PRIVMSG ben :regret this");
    say(&mut ann, "PRIVMSG ben :keep this");
    for _ in 0..2 {
        ben.expect_verb("PRIVMSG");
    }
    let texts = |c: &mut Client, with: &str| history(c, with).into_iter().map(|(_, t, _)| t).collect::<Vec<_>>();
    assert_eq!(texts(&mut ben, "ann"), ["regret this", "keep this"]);
    // ben goes by another nick since, and someone else took his: the REDACT reaches ben.
    ben.send("NICK benny");
    ben.expect_verb("NICK");
    let mut carl = b.client_on_shard_caps("ben", CAPS, 0);
    ann.send(&format!("REDACT ben {gone}"));
    assert_eq!(ann.expect_verb("REDACT").params, ["ben", gone.as_str()]);
    let r = ben.expect("the REDACT on B", |m| m.verb == "REDACT");
    assert_eq!(r.params, ["benny", gone.as_str()]);
    assert_eq!(texts(&mut ben, "ann"), ["keep this"]);
    carl.expect_silence(std::time::Duration::from_millis(200));
    // ann's own log on B (she comes to B later) has lost it too.
    let mut ann_b = identified(&b, &mut s, "ann2", CAPS, 0, "annacct");
    assert_eq!(texts(&mut ann_b, "ben"), ["keep this"]);
    assert_eq!(texts(&mut ann, "ben"), ["keep this"]);
}

/// Servers that were apart (here: not yet linked) catch up when they link: each channel's home
/// asks the peer for what it kept since its own latest entry, so a user on either side reads
/// what was said on the other meanwhile, with the same msgids, each message once.
#[test]
fn servers_that_link_later_catch_up_on_each_others_history() {
    let (a, b) = apart_pair();
    // Apart: A's #far and B's #near each hear a conversation, and #both hears one on each side.
    let mut alice = a.client_on_shard_caps("alice", CAPS, 0);
    let mut carol = b.client_on_shard_caps("carol", CAPS, 1);
    join(&mut alice, "#far");
    join(&mut alice, "#both");
    join(&mut carol, "#near");
    join(&mut carol, "#both");
    let far = [say(&mut alice, "PRIVMSG #far :one"), say(&mut alice, "PRIVMSG #far :two")];
    let near = say(&mut carol, "PRIVMSG #near :three");
    let both_a = say(&mut alice, "PRIVMSG #both :from a");
    // A later millisecond: the merged log is in time order (equal times keep arrival order).
    std::thread::sleep(Duration::from_millis(5));
    let both_b = say(&mut carol, "PRIVMSG #both :from b");
    // B's operator links them.
    let mut op = oper_links(&b);
    a.wait_log(&["Server burst: end of burst from irc.b.test"]);
    let mut bob = b.client_on_shard_caps("bob", CAPS, 0);
    let mut dave = a.client_on_shard_caps("dave", CAPS, 1);
    join(&mut bob, "#far");
    join(&mut dave, "#near");
    let want = |ids: &[(&str, &String)]| -> Vec<(String, String, String)> {
        ids.iter().map(|(t, i)| ("PRIVMSG".to_string(), t.to_string(), i.to_string())).collect()
    };
    let got = eventually("#far's history on B", || Some(history(&mut bob, "#far")).filter(|h| h.len() >= 2));
    assert_eq!(got, want(&[("one", &far[0]), ("two", &far[1])]));
    let got = eventually("#near's history on A", || Some(history(&mut dave, "#near")).filter(|h| !h.is_empty()));
    assert_eq!(got, want(&[("three", &near)]));
    // #both: each side gets the other's message, once, in time order.
    for c in [&mut alice, &mut carol] {
        let got = eventually("#both merged", || Some(history(c, "#both")).filter(|h| h.len() >= 2));
        assert_eq!(got, want(&[("from a", &both_a), ("from b", &both_b)]), "{}", c.nick);
    }
    // Split, a word on A meanwhile, linked again: only what B missed comes, once.
    op.send("SQUIT irc.a.test :maintenance");
    b.wait_log(&["Netsplit"]);
    let apart = say(&mut alice, "PRIVMSG #far :while apart");
    connect(&mut op, &b, 2);
    let got = eventually("#far caught up again", || Some(history(&mut bob, "#far")).filter(|h| h.len() >= 3));
    assert_eq!(got, want(&[("one", &far[0]), ("two", &far[1]), ("while apart", &apart)]));
}

/// Two rustircd servers that are not linked yet: B's operator `boss` (password `pw`) links
/// them with CONNECT ([`connect`]).
fn apart_pair() -> (Server, Server) {
    let a = Server::with_config(2, &server_config("irc.a.test", "1AA", &link_block("irc.b.test", "2BB", None, false)));
    let opers = "\n[[opers]]\nname = \"boss\"\npassword = \"pw\"\nallow_plaintext = true\nprivileges = [\"all\"]\n";
    let dial = format!(
        "\n[[links]]\nname = \"irc.a.test\"\nsid = \"1AA\"\nsend_password = \"pw\"\naccept_password = \"pw\"\naddress = \"{}\"\n",
        a.addr
    );
    let b = Server::with_config(2, &server_config("irc.b.test", "2BB", &(dial + opers)));
    (a, b)
}

/// B's operator `boss` links B to A (a first time): the operator's client, to link again.
fn oper_links(b: &Server) -> Client {
    let mut op = b.client("op");
    op.send("OPER boss pw");
    op.expect_verb("381");
    connect(&mut op, b, 1);
    op
}

/// B's operator `op` links B to A, for the `nth` time: back once B has A's burst.
fn connect(op: &mut Client, b: &Server, nth: usize) {
    op.send("CONNECT irc.a.test");
    eventually("the link", || {
        let log = b.log_lines();
        (log.iter().filter(|l| l.contains("end of burst from irc.a.test")).count() >= nth).then_some(())
    });
}

/// Messages redacted while the servers were apart stay gone when they link again, on both
/// sides: the side that redacted does not take the message back from the other's catch-up,
/// and tells the other to drop it.
#[test]
fn a_message_redacted_while_apart_stays_gone_on_both_sides() {
    let (a, b) = apart_pair();
    let mut op = oper_links(&b);
    let mut alice = a.client_on_shard_caps("alice", CAPS, 0);
    let mut carol = b.client_on_shard_caps("carol", CAPS, 1);
    join(&mut alice, "#r");
    join(&mut carol, "#r");
    let keep = say(&mut alice, "PRIVMSG #r :keep");
    let by_a = say(&mut alice, "PRIVMSG #r :A takes this back");
    let by_b = say(&mut carol, "PRIVMSG #r :B takes this back");
    for c in [&mut alice, &mut carol] {
        eventually("three on each side", || (history(c, "#r").len() == 3).then_some(()));
    }
    op.send("SQUIT irc.a.test :maintenance");
    b.wait_log(&["Netsplit"]);
    a.wait_log(&["Netsplit"]);
    for (c, id) in [(&mut alice, &by_a), (&mut carol, &by_b)] {
        c.send(&format!("REDACT #r {id}"));
        c.expect("the REDACT", |m| m.verb == "REDACT");
    }
    connect(&mut op, &b, 2);
    a.wait_log(&["Server burst: end of burst from irc.b.test"]);
    let want = vec![("PRIVMSG".to_string(), "keep".to_string(), keep)];
    for c in [&mut alice, &mut carol] {
        let got = eventually("both redactions on each side", || Some(history(c, "#r")).filter(|h| h.len() == 1));
        assert_eq!(got, want, "{}", c.nick);
    }
    // And they stay so once each side's catch-up is in (a resurrected line would come last).
    std::thread::sleep(Duration::from_millis(300));
    for c in [&mut alice, &mut carol] {
        assert_eq!(history(c, "#r"), want, "{}", c.nick);
    }
}

/// A catch-up cannot overflow the link: with many channels and a small sendq for the link,
/// what the peer is sent is cut short (and logged), and the link stays up.
#[test]
fn a_catch_up_stays_within_the_links_sendq() {
    let tight = "\n[[classes]]\nname = \"tight\"\nhosts = [\"192.0.2.1\"]\nsendq = \"64KiB\"\nrecvq = \"64KiB\"\n";
    let block = link_block("irc.b.test", "2BB", None, false) + "class = \"tight\"\n";
    let a = Server::with_config(2, &(server_config("irc.a.test", "1AA", &block) + tight));
    let opers = "\n[[opers]]\nname = \"boss\"\npassword = \"pw\"\nallow_plaintext = true\nprivileges = [\"all\"]\n";
    let dial = format!(
        "\n[[links]]\nname = \"irc.a.test\"\nsid = \"1AA\"\nsend_password = \"pw\"\naccept_password = \"pw\"\naddress = \"{}\"\n",
        a.addr
    );
    let b = Server::with_config(2, &server_config("irc.b.test", "2BB", &(dial + opers)));
    // About 140 KB of history on A: twice the link's sendq.
    let mut alice = a.client_on_shard_caps("alice", CAPS, 0);
    let text = "x".repeat(250);
    for i in 0..40 {
        join(&mut alice, &format!("#c{i}"));
        for _ in 0..10 {
            alice.send(&format!("PRIVMSG #c{i} :{text}"));
        }
    }
    alice.sync();
    let _op = oper_links(&b);
    a.wait_log(&["History: catch-up for irc.b.test cut short"]);
    // Still linked: a word on A reaches a member on B.
    let mut bob = b.client_on_shard_caps("bob", CAPS, 0);
    join(&mut bob, "#c0");
    alice.expect_verb("JOIN");
    say(&mut alice, "PRIVMSG #c0 :still here");
    bob.expect("alice's line", |m| m.verb == "PRIVMSG" && m.last() == "still here");
    assert!(!a.log_lines().iter().any(|l| l.contains("SendQ exceeded")), "{:?}", a.log_lines());
}

/// Two linked rustircd servers, B behind A, and scripted services (3SV) linked to A.
fn linked_with_services() -> (Server, Server, Client) {
    let with_services =
        |c: String| c.replace("motd = \"test motd\"", "motd = \"test motd\"\nservices = [\"services.test\"]");
    let svc = "\n[[links]]\nname = \"services.test\"\nsid = \"3SV\"\nsend_password = \"tothem\"\naccept_password = \"tous\"\n";
    let b = Server::with_config(
        2,
        &with_services(server_config("irc.b.test", "2BB", &link_block("irc.a.test", "1AA", None, true))),
    );
    let a = Server::with_config(
        2,
        &with_services(server_config(
            "irc.a.test",
            "1AA",
            &(link_block("irc.b.test", "2BB", Some(b.addr), false) + svc),
        )),
    );
    a.wait_log(&["Link established: irc.b.test"]);
    let s = services(&a);
    (a, b, s)
}

/// A conversation between two users of A is kept by A only; when one of them logs in to its
/// account on B too, B asks the network and the account's log there gets it (same msgids).
/// Another account on B gets nothing of it.
#[test]
fn an_accounts_private_history_follows_it_to_another_server() {
    let (a, b, mut s) = linked_with_services();
    let mut ann = identified(&a, &mut s, "ann", CAPS, 0, "annacct");
    let mut ben = identified(&a, &mut s, "ben", CAPS, 1, "benacct");
    let hi = say(&mut ann, "PRIVMSG ben :between us");
    ben.expect_verb("PRIVMSG");
    let back = say(&mut ben, "PRIVMSG ann :indeed");
    ann.expect_verb("PRIVMSG");
    let mut cat = identified(&b, &mut s, "cat", CAPS, 1, "catacct");
    let mut ann_b = identified(&b, &mut s, "ann2", CAPS, 0, "annacct");
    let got = eventually("ann's history on B", || Some(history(&mut ann_b, "ben")).filter(|h| h.len() >= 2));
    let want = |t: &str, id: &String| ("PRIVMSG".to_string(), t.to_string(), id.clone());
    assert_eq!(got, [want("between us", &hi), want("indeed", &back)]);
    assert!(history(&mut cat, "ben").is_empty());
    assert!(history(&mut cat, "ann").is_empty());
}
