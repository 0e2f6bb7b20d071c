//! Multiline messages (IRCv3 draft/multiline) against the real binary at `--cores 2`: a batch
//! from a client on one shard reaches members on both, as a batch to those with the capability
//! and as separate messages to the others; the limits and malformed batches get FAIL BATCH.

mod common;

use common::{Client, Msg, Server};

const BASE: &str = "message-tags batch echo-message server-time labeled-response";

fn ml(c: &mut Client, id: &str, target: &str, lines: &[(&str, bool)]) {
    c.send(&format!("@label=L{id} BATCH +{id} draft/multiline {target}"));
    for (text, concat) in lines {
        let tags = if *concat { format!("@batch={id};draft/multiline-concat") } else { format!("@batch={id}") };
        c.send(&format!("{tags} PRIVMSG {target} :{text}"));
    }
    c.send(&format!("BATCH -{id}"));
}

/// A `draft/multiline` batch as received: its opening line and its lines.
fn batch_of(c: &mut Client) -> (Msg, Vec<Msg>) {
    let open = c.expect_verb("BATCH");
    assert_eq!(open.p(1), "draft/multiline", "{}", open.raw);
    let id = open.p(0).trim_start_matches('+').to_string();
    let mut lines = c.collect_until("BATCH");
    let close = lines.pop().unwrap();
    assert_eq!(close.p(0), format!("-{id}"));
    for l in &lines {
        assert_eq!(l.tag("batch"), Some(id.as_str()), "{}", l.raw);
        assert_eq!(l.tag("msgid"), None, "{}", l.raw);
    }
    (open, lines)
}

#[test]
fn a_batch_reaches_both_shards_as_a_batch_or_as_lines() {
    let srv = Server::start();
    let caps = format!("{BASE} draft/multiline");
    let mut alice = srv.client_on_shard_caps("alice", &caps, 0);
    let mut bob = srv.client_on_shard_caps("bob", &caps, 1);
    let mut carl = srv.client_on_shard_caps("carl", BASE, 1);
    let mut dora = srv.client_on_shard_caps("dora", BASE, 0);
    for c in [&mut alice, &mut bob, &mut carl, &mut dora] {
        c.send("JOIN #ml");
        c.expect_verb("366");
    }
    for c in [&mut alice, &mut bob, &mut carl, &mut dora] {
        c.sync();
    }
    ml(&mut alice, "1", "#ml", &[("hello", false), ("", false), ("#how is ", false), ("everyone?", true)]);
    let (echo, lines) = batch_of(&mut alice);
    assert_eq!(echo.tag("label"), Some("L1"), "the label answers the batch: {}", echo.raw);
    assert_eq!(echo.p(2), "#ml");
    let (msgid, time) = (echo.tag("msgid").unwrap().to_string(), echo.tag("time").unwrap().to_string());
    assert_eq!(lines.iter().map(Msg::last).collect::<Vec<_>>(), ["hello", "", "#how is ", "everyone?"]);
    assert!(lines[3].tag("draft/multiline-concat").is_some());
    let (open, got) = batch_of(&mut bob);
    assert_eq!((open.tag("msgid"), open.tag("time")), (Some(msgid.as_str()), Some(time.as_str())));
    assert!(open.source.as_deref().is_some_and(|s| s.starts_with("alice!")));
    assert_eq!(
        got.iter().map(|m| (m.last(), m.tag("draft/multiline-concat").is_some())).collect::<Vec<_>>(),
        [("hello", false), ("", false), ("#how is ", false), ("everyone?", true)]
    );
    for c in [&mut carl, &mut dora] {
        let plain: Vec<Msg> = c.sync();
        assert_eq!(
            plain.iter().map(|m| (m.verb.as_str(), m.last())).collect::<Vec<_>>(),
            [("PRIVMSG", "hello"), ("PRIVMSG", "#how is "), ("PRIVMSG", "everyone?")]
        );
        assert_eq!(plain.iter().map(|m| m.tag("msgid")).collect::<Vec<_>>(), [Some(msgid.as_str()), None, None]);
        assert!(plain
            .iter()
            .all(|m| m.tag("time") == Some(time.as_str()) && m.tag("draft/multiline-concat").is_none()));
    }
    // To a nick on the other shard.
    ml(&mut alice, "2", "bob", &[("private", false), ("lines", false)]);
    batch_of(&mut alice);
    let (open, got) = batch_of(&mut bob);
    assert_eq!(open.p(2), "bob");
    assert_eq!(got.len(), 2);
}

#[test]
fn malformed_and_oversized_batches_fail() {
    let srv = Server::start();
    let mut c = srv.client_on_shard_caps("writer", &format!("{BASE} draft/multiline"), 1);
    c.send("JOIN #ml");
    c.expect_verb("366");
    let fail = |c: &mut Client| {
        let m = c.expect("FAIL BATCH", |m| m.verb == "FAIL" || m.verb == "BATCH");
        assert_eq!((m.verb.as_str(), m.p(0)), ("FAIL", "BATCH"), "{}", m.raw);
        (m.p(1).to_string(), m.p(2).to_string())
    };
    ml(&mut c, "a", "#ml", &[("hi", false), ("", true)]);
    assert_eq!(fail(&mut c).0, "MULTILINE_INVALID");
    c.send("BATCH +b draft/multiline #ml");
    for _ in 0..101 {
        c.send("@batch=b PRIVMSG #ml :x");
    }
    assert_eq!(fail(&mut c), ("MULTILINE_MAX_LINES".into(), "100".into()));
    c.send("@batch=b PRIVMSG #ml :x");
    assert_eq!(fail(&mut c).0, "MULTILINE_INVALID", "the batch was dropped");
    c.send("BATCH +c draft/multiline #ml");
    let long = "y".repeat(400);
    for _ in 0..11 {
        c.send(&format!("@batch=c PRIVMSG #ml :{long}"));
    }
    assert_eq!(fail(&mut c), ("MULTILINE_MAX_BYTES".into(), "4096".into()));
    c.send("BATCH +d draft/multiline #ml");
    c.send("@batch=zzz PRIVMSG #ml :wrong batch");
    assert_eq!(fail(&mut c).0, "MULTILINE_INVALID");
    // Nothing reached the channel; the next plain message does.
    let mut other = srv.client_on_shard("other", 0);
    other.send("JOIN #ml");
    other.expect_verb("366");
    c.sync();
    c.send("PRIVMSG #ml :plain");
    assert_eq!(other.expect_verb("PRIVMSG").last(), "plain");
}

#[test]
fn history_replays_a_multiline_message_as_it_was_sent() {
    let srv = Server::start();
    let caps = format!("{BASE} draft/multiline draft/chathistory");
    let mut a = srv.client_on_shard_caps("ann", &caps, 0);
    let mut b = srv.client_on_shard_caps("ben", &format!("{BASE} draft/chathistory"), 1);
    for c in [&mut a, &mut b] {
        c.send("JOIN #mlh");
        c.expect_verb("366");
    }
    a.sync();
    ml(&mut a, "h", "#mlh", &[("one", false), ("two", false)]);
    batch_of(&mut a);
    b.sync();
    a.send("CHATHISTORY LATEST #mlh * 10");
    let outer = a.expect_verb("BATCH");
    assert_eq!(outer.p(1), "chathistory");
    let (open, lines) = batch_of(&mut a);
    assert_eq!(open.tag("batch"), Some(outer.p(0).trim_start_matches('+')));
    assert_eq!(lines.iter().map(Msg::last).collect::<Vec<_>>(), ["one", "two"]);
    b.send("CHATHISTORY LATEST #mlh * 10");
    b.expect_verb("BATCH");
    let got = b.collect_until("BATCH");
    let texts: Vec<&str> = got.iter().filter(|m| m.verb == "PRIVMSG").map(|m| m.last()).collect();
    assert_eq!(texts, ["one", "two"]);
}
