//! Message redaction (IRCv3 draft/message-redaction) against the real binary at `--cores 2`:
//! the log's keeper (a channel's home, a user key's owner) decides, the REDACT reaches those
//! with the capability on both shards, and the message is gone from the history.

mod common;

use common::{identified, services, services_config, Client, Msg, Server};

const CAPS: &str =
    "message-tags server-time echo-message batch labeled-response draft/chathistory draft/message-redaction";

fn texts_in_history(c: &mut Client, target: &str) -> Vec<String> {
    c.send(&format!("CHATHISTORY LATEST {target} * 50"));
    c.expect_verb("BATCH");
    let mut lines = c.collect_until("BATCH");
    lines.pop();
    lines.iter().filter(|m| m.verb == "PRIVMSG").map(|m| m.last().to_string()).collect()
}

fn say(from: &mut Client, to: &mut [&mut Client], target: &str, text: &str) -> String {
    from.send(&format!("PRIVMSG {target} :{text}"));
    let echo = from.expect_verb("PRIVMSG");
    for c in to.iter_mut() {
        assert_eq!(c.expect_verb("PRIVMSG").last(), text);
    }
    echo.tag("msgid").expect("msgid").to_string()
}

fn fail(c: &mut Client) -> Msg {
    c.expect("FAIL", |m| m.verb == "FAIL" || m.verb == "REDACT")
}

#[test]
fn senders_and_ops_redact_in_channels_from_either_shard() {
    let srv = Server::start();
    let mut op = srv.client_on_shard_caps("op", CAPS, 0);
    let mut user = srv.client_on_shard_caps("user", CAPS, 1);
    let mut old = srv.client_on_shard("oldclient", 1);
    // Names that hash to both homes.
    for chan in ["#red1", "#red2", "#red3"] {
        for c in [&mut op, &mut user, &mut old] {
            c.send(&format!("JOIN {chan}"));
            c.expect_verb("366");
        }
        op.sync();
        user.sync();
        let mine = say(&mut user, &mut [&mut op, &mut old], chan, "my own");
        let theirs = say(&mut op, &mut [&mut user, &mut old], chan, "the op's");
        let spam = say(&mut user, &mut [&mut op, &mut old], chan, "spam");
        // A member may not redact someone else's message, nor an unknown one.
        user.send(&format!("REDACT {chan} {theirs}"));
        let m = fail(&mut user);
        assert_eq!(m.params[..4], ["REDACT", "REDACT_FORBIDDEN", chan, theirs.as_str()], "{}", m.raw);
        user.send(&format!("REDACT {chan} nosuchid"));
        assert_eq!(fail(&mut user).p(1), "UNKNOWN_MSGID");
        // Its own: everyone with the capability sees it, the old client does not.
        user.send(&format!("REDACT {chan} {mine}"));
        for c in [&mut user, &mut op] {
            let r = c.expect_verb("REDACT");
            assert_eq!(r.params, [chan, mine.as_str()]);
            assert!(r.source.as_deref().is_some_and(|s| s.starts_with("user!")), "{}", r.raw);
        }
        // An op: anyone's, with a reason.
        op.send(&format!("REDACT {chan} {spam} :spam"));
        for c in [&mut op, &mut user] {
            assert_eq!(c.expect_verb("REDACT").params, [chan, spam.as_str(), "spam"]);
        }
        old.sync().iter().for_each(|m| assert_ne!(m.verb, "REDACT", "{}", m.raw));
        for c in [&mut op, &mut user] {
            assert_eq!(texts_in_history(c, chan), ["the op's"], "{chan}");
        }
    }
    // A channel one is not in.
    let mut outsider = srv.client_on_shard_caps("outsider", CAPS, 0);
    outsider.send("REDACT #red1 whatever");
    let m = fail(&mut outsider);
    assert_eq!((m.p(1), m.p(2)), ("INVALID_TARGET", "#red1"), "{}", m.raw);
}

#[test]
fn a_private_message_is_redacted_from_both_sides() {
    // Private history is kept for accounts.
    let srv = Server::with_config(2, &services_config());
    let mut s = services(&srv);
    let mut a = identified(&srv, &mut s, "ava", CAPS, 0, "ava");
    let mut b = identified(&srv, &mut s, "bea", CAPS, 1, "bea");
    say(&mut a, &mut [&mut b], "bea", "kept");
    let gone = say(&mut a, &mut [&mut b], "bea", "regretted");
    // Only the sender may take it back.
    b.send(&format!("REDACT ava {gone}"));
    assert_eq!(fail(&mut b).p(1), "REDACT_FORBIDDEN");
    a.send(&format!("REDACT bea {gone} :oops"));
    assert_eq!(a.expect_verb("REDACT").params, ["bea", gone.as_str(), "oops"]);
    assert_eq!(b.expect_verb("REDACT").params, ["bea", gone.as_str(), "oops"]);
    assert_eq!(texts_in_history(&mut a, "bea"), ["kept"]);
    assert_eq!(texts_in_history(&mut b, "ava"), ["kept"]);
}

/// A private REDACT reaches the other side of the conversation as it is now — the sessions of
/// the account it had, or the same user (by UID) under a new nick when it had none — and not
/// whoever has taken the nick the message was sent to. Sides on both shards.
#[test]
fn a_private_redaction_reaches_the_conversation_not_the_nick() {
    let srv = Server::with_config(2, &services_config());
    let mut s = services(&srv);
    let mut a = identified(&srv, &mut s, "ava", CAPS, 0, "ava");
    let mut b = identified(&srv, &mut s, "bea", CAPS, 1, "bea");
    let mut c = srv.client_on_shard_caps("cal", CAPS, 0);
    let to_b = say(&mut a, &mut [&mut b], "bea", "to bea");
    let to_c = say(&mut a, &mut [&mut c], "cal", "to cal");
    // Both move on to new nicks; others take the old ones (on the other shard).
    for (x, nick) in [(&mut b, "bea2"), (&mut c, "cal2")] {
        x.send(&format!("NICK {nick}"));
        x.expect_verb("NICK");
    }
    let mut fake_b = srv.client_on_shard_caps("bea", CAPS, 0);
    let mut fake_c = srv.client_on_shard_caps("cal", CAPS, 1);
    a.send(&format!("REDACT bea {to_b}"));
    assert_eq!(a.expect_verb("REDACT").params, ["bea", to_b.as_str()]);
    assert_eq!(b.expect_verb("REDACT").params, ["bea", to_b.as_str()]);
    a.send(&format!("REDACT cal {to_c}"));
    assert_eq!(a.expect_verb("REDACT").params, ["cal", to_c.as_str()]);
    assert_eq!(c.expect_verb("REDACT").params, ["cal", to_c.as_str()]);
    for x in [&mut fake_b, &mut fake_c] {
        x.sync().iter().for_each(|m| assert_ne!(m.verb, "REDACT", "{}", m.raw));
    }
    assert!(texts_in_history(&mut a, "bea").is_empty());
}
