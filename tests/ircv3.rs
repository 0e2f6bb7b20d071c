//! IRCv3 capabilities against the real binary at `--cores 2`, each checked with the sender and
//! the receiver on different shards: what a capability adds must arrive exactly as it would on
//! one shard.

mod common;

use common::{Client, Server};

/// Two clients with these capabilities, on different shards, both in `chan` (if given).
fn pair(srv: &Server, caps: &str, chan: Option<&str>) -> (Client, Client) {
    let mut a = srv.connect();
    a.register_caps("alice", caps);
    let sa = srv.shard_of(&a);
    let mut i = 0;
    let b = loop {
        let mut b = srv.connect();
        if srv.shard_of(&b) != sa {
            b.register_caps(&format!("bob{i}"), caps);
            break b;
        }
        i += 1;
        assert!(i < 64, "no connection reached the other shard");
    };
    let (mut a, mut b) = (a, b);
    if let Some(c) = chan {
        a.send(&format!("JOIN {c}"));
        a.expect_verb("366");
        b.send(&format!("JOIN {c}"));
        b.expect_verb("366");
        a.expect_verb("JOIN");
    }
    (a, b)
}

#[test]
fn ls_lists_the_capabilities() {
    let srv = Server::start();
    let mut c = srv.connect();
    let ls = c.cap_ls();
    for cap in ["message-tags", "server-time", "echo-message", "labeled-response", "batch", "multi-prefix", "setname"] {
        assert!(ls.split(' ').any(|x| x == cap), "{cap} missing: {ls}");
    }
    // no TLS listener: no sts
    assert!(!ls.split(' ').any(|x| x.starts_with("sts")), "{ls}");
    c.send("CAP REQ :sts");
    assert_eq!(c.expect_verb("CAP").p(1), "NAK");
}

#[test]
fn tags_time_msgid_and_echo_cross_shards() {
    let srv = Server::start();
    let (mut a, mut b) = pair(&srv, "message-tags server-time echo-message", Some("#v3"));
    a.send("@+draft/reply=abc;+example.com/x=1\\s2 PRIVMSG #v3 :tagged");
    let echo = a.expect_verb("PRIVMSG");
    let got = b.expect_verb("PRIVMSG");
    assert_eq!(got.last(), "tagged");
    assert_eq!(got.tag("+draft/reply"), Some("abc"));
    assert_eq!(got.tag("+example.com/x"), Some("1 2"));
    let msgid = got.tag("msgid").expect("msgid");
    assert_eq!(echo.tag("msgid"), Some(msgid), "the echo carries the same msgid");
    let time = got.tag("time").expect("time");
    assert!(time.len() == 24 && time.ends_with('Z'), "{time}");
    // TAGMSG reaches those with message-tags, across shards
    a.send("@+typing=active TAGMSG #v3");
    let t = b.expect_verb("TAGMSG");
    assert_eq!(t.tag("+typing"), Some("active"));
    // private messages too
    a.send(&format!("@+x=y PRIVMSG {} :direct", b.nick));
    let d = b.expect_verb("PRIVMSG");
    assert_eq!((d.last(), d.tag("+x")), ("direct", Some("y")));
}

#[test]
fn without_the_capabilities_nothing_extra_arrives() {
    let srv = Server::start();
    let mut a = srv.connect();
    a.register_caps("tagger", "message-tags");
    let mut plain = srv.client("plain");
    a.send("JOIN #plain");
    a.expect_verb("366");
    plain.send("JOIN #plain");
    plain.expect_verb("366");
    a.expect_verb("JOIN");
    a.send("@+secret=1 TAGMSG #plain");
    a.send("@+secret=1 PRIVMSG #plain :hello");
    let m = plain.expect_verb("PRIVMSG");
    assert!(m.tags.is_empty(), "{}", m.raw);
    assert!(!plain.sync().iter().any(|m| m.verb == "TAGMSG"));
}

#[test]
fn labeled_responses() {
    let srv = Server::start();
    let mut c = srv.connect();
    c.register_caps("labeler", "labeled-response batch");
    c.send("@label=one PING :x");
    let p = c.expect_verb("PONG");
    assert_eq!(p.tag("label"), Some("one"));
    // several replies: a batch, every line tagged with it
    c.send("@label=two JOIN #lab");
    let open = c.expect_verb("BATCH");
    assert_eq!((open.tag("label"), open.p(1)), (Some("two"), "labeled-response"));
    let id = open.p(0).trim_start_matches('+').to_string();
    let lines = c.collect_until("BATCH");
    let close = lines.last().unwrap();
    assert_eq!(close.p(0), format!("-{id}"));
    let inner = &lines[..lines.len() - 1];
    assert!(inner.iter().any(|m| m.verb == "JOIN") && inner.iter().any(|m| m.verb == "366"), "{inner:?}");
    assert!(inner.iter().all(|m| m.tag("batch") == Some(id.as_str())), "{inner:?}");
    // no reply at all: ACK
    c.send("@label=three PONG :nothing");
    let ack = c.expect_verb("ACK");
    assert_eq!(ack.tag("label"), Some("three"));
    // an error is a reply too
    c.send("@label=four PRIVMSG nosuchnick :hi");
    let e = c.expect_verb("401");
    assert_eq!(e.tag("label"), Some("four"));
}

#[test]
fn extended_join_away_notify_and_setname_cross_shards() {
    let srv = Server::start();
    let (mut a, mut b) = pair(&srv, "extended-join away-notify setname", Some("#ext"));
    // b's extended JOIN as a saw it
    let mut c = srv.connect();
    c.register("carol");
    c.send("AWAY :gone fishing");
    c.expect_verb("306");
    c.send("JOIN #ext");
    c.expect_verb("366");
    let j = a.expect_verb("JOIN");
    assert_eq!((j.p(0), j.p(1), j.p(2)), ("#ext", "*", "Real carol"), "{}", j.raw);
    let aw = a.expect_verb("AWAY");
    assert_eq!(aw.last(), "gone fishing");
    c.send("AWAY");
    c.expect_verb("305");
    let back = b.expect("AWAY", |m| m.verb == "AWAY" && m.params.is_empty());
    assert!(back.source.as_deref().unwrap().starts_with("carol!"));
    b.send("SETNAME :A New Name");
    let own = b.expect_verb("SETNAME");
    assert_eq!(own.last(), "A New Name");
    assert_eq!(a.expect_verb("SETNAME").last(), "A New Name");
    b.send("SETNAME :");
    b.expect_verb("FAIL");
}

#[test]
fn multi_prefix_userhost_in_names_and_invite_notify() {
    let srv = Server::start();
    let (mut a, mut b) = pair(&srv, "multi-prefix userhost-in-names invite-notify", Some("#np"));
    a.send(&format!("MODE #np +v {}", b.nick));
    b.expect_verb("MODE");
    a.send(&format!("MODE #np +o {}", b.nick));
    b.expect_verb("MODE");
    a.send("NAMES #np");
    let n = a.expect_verb("353");
    assert!(n.last().split(' ').any(|e| e.starts_with(&format!("@+{}!", b.nick))), "{}", n.raw);
    a.send("WHO #np");
    let w = a.collect_until("315");
    assert!(w.iter().any(|m| m.verb == "352" && m.p(6).contains("@+")), "{w:?}");
    let mut d = srv.client("dave");
    a.send("INVITE dave #np");
    a.expect_verb("341");
    d.expect_verb("INVITE");
    let seen = b.expect_verb("INVITE");
    assert_eq!((seen.p(0), seen.p(1)), ("dave", "#np"));
}

#[test]
fn bot_mode() {
    let srv = Server::start();
    let (mut a, mut b) = pair(&srv, "message-tags", Some("#bots"));
    a.send(&format!("MODE {} +B", a.nick));
    assert_eq!(a.expect_verb("MODE").last(), "+B");
    a.send("PRIVMSG #bots :beep");
    let m = b.expect_verb("PRIVMSG");
    assert!(m.tags.iter().any(|(k, _)| k == "bot"), "{}", m.raw);
    b.send(&format!("WHOIS {}", a.nick));
    let lines = b.collect_until("318");
    assert!(lines.iter().any(|m| m.verb == "335"), "{lines:?}");
    b.send("VERSION");
    let v = b.collect_until("005");
    let _ = v;
}

#[test]
fn extended_monitor_sees_away() {
    let srv = Server::start();
    let mut w = srv.connect();
    w.register_caps("watcher", "extended-monitor away-notify");
    let mut t = srv.client("watched");
    w.send("MONITOR + watched");
    w.expect_verb("730");
    t.send("AWAY :brb");
    t.expect_verb("306");
    let a = w.expect_verb("AWAY");
    assert_eq!(a.last(), "brb");
}

/// UTF8ONLY (005): a client line that is not UTF-8 is refused whole with `FAIL <command>
/// INVALID_UTF8` (labeled when asked), across shards nothing of it arrives, and the
/// connection goes on; before registration too; a QUIT is obeyed anyway.
#[test]
fn non_utf8_lines_are_refused_with_fail() {
    let srv = Server::start();
    let (mut a, mut b) = pair(&srv, "labeled-response batch", Some("#utf8"));
    let bnick = b.nick.clone();
    for target in ["#utf8", bnick.as_str()] {
        let mut line = format!("@label=bad PRIVMSG {target} :caf").into_bytes();
        line.extend_from_slice(b"\xe9\r\n");
        a.send_raw(&line);
        let f = a.expect_verb("FAIL");
        assert_eq!((f.p(0), f.p(1)), ("PRIVMSG", "INVALID_UTF8"), "{}", f.raw);
        assert_eq!(f.tag("label"), Some("bad"));
        a.send(&format!("PRIVMSG {target} :café"));
        let m = b.expect_verb("PRIVMSG");
        assert_eq!(m.last(), "café", "the refused line never arrived: {}", m.raw);
    }
    // An unknown verb is answered the same way; the parser goes on with the next line.
    a.send_raw(b"\xff\xfe WHAT\r\nPING :next\r\n");
    assert_eq!((a.expect_verb("FAIL").p(0), a.expect_verb("PONG").last()), ("*", "next"));
    // Before registration: USER is refused and may come again.
    let mut c = srv.connect();
    c.nick = "late".into();
    c.send("NICK late");
    c.send_raw(b"USER late 0 * :r\xe9al\r\n");
    let f = c.expect_verb("FAIL");
    assert_eq!((f.p(0), f.p(1)), ("USER", "INVALID_UTF8"), "{}", f.raw);
    c.send("USER late 0 * :real");
    c.expect_verb("001");
    // QUIT with a bad reason still quits, the bad byte shown as U+FFFD.
    b.send_raw(b"QUIT :au revoir \xe0 tous\r\n");
    let q = a.expect_verb("QUIT");
    assert!(q.last().ends_with("au revoir \u{FFFD} tous"), "{}", q.raw);
}
