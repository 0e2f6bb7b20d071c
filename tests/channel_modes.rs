//! The channel modes and extbans of issue 16 against the real binary at `--cores 2`: `+C` (no
//! CTCP), `+c` (no colour), `+R` and `+M` (accounts, set by a scripted services server), the
//! mute extban `$m:<mask>`, and what 005 and HELP say of them. Each is set by an op on one
//! shard and met by a user on the other, both ways round. (`+S` is in `tests/tls.rs`.)

mod common;

use common::{identified, services, services_config, Client, Msg, Server};

/// The two shards, each in turn the op's: the user under test is always on the other.
const SIDES: [(usize, usize); 2] = [(0, 1), (1, 0)];

/// `op` (on one shard) makes `chan` and sets `modes`; `user` (on the other) joins before or
/// after, as `join_first` says; both have seen everything when this returns.
fn channel(op: &mut Client, user: &mut Client, chan: &str, modes: &str, join_first: bool) {
    op.send(&format!("JOIN {chan}"));
    op.expect_verb("366");
    if join_first {
        join(op, user, chan);
    }
    op.send(&format!("MODE {chan} {modes}"));
    op.expect("the MODE", |m| m.verb == "MODE" && m.p(0) == chan);
    if join_first {
        user.expect("the MODE", |m| m.verb == "MODE" && m.p(0) == chan);
    } else {
        join(op, user, chan);
    }
}

/// `user` joins `chan`, and `op`, in it, has seen the JOIN.
fn join(op: &mut Client, user: &mut Client, chan: &str) {
    user.send(&format!("JOIN {chan}"));
    user.expect_verb("366");
    let from = format!("{}!", user.nick);
    op.expect("the JOIN", |m| m.verb == "JOIN" && m.source.as_deref().unwrap_or("").starts_with(&from));
}

/// `from` sends `text` to `chan`; the numeric it gets back (404 or 477).
fn refused(from: &mut Client, chan: &str, text: &str) -> Msg {
    from.send(&format!("PRIVMSG {chan} :{text}"));
    let m = from.expect("a refusal", |m| m.verb == "404" || m.verb == "477" || m.verb == "PRIVMSG");
    assert_ne!(m.verb, "PRIVMSG", "{}: {text:?} went through", from.nick);
    assert_eq!((m.p(0), m.p(1)), (from.nick.as_str(), chan), "{}", m.raw);
    m
}

/// `from` sends `text` to `chan` and `to` receives exactly it (nothing refused came first).
fn heard(from: &mut Client, to: &mut Client, chan: &str, text: &str) {
    from.send(&format!("PRIVMSG {chan} :{text}"));
    let m = to.expect_verb("PRIVMSG");
    assert_eq!((m.p(0), m.last()), (chan, text), "{}", m.raw);
    let replies = from.sync();
    assert!(replies.is_empty(), "{}: {replies:?}", from.nick);
}

#[test]
fn no_ctcp_refuses_ctcp_but_actions_from_either_shard() {
    let srv = Server::start();
    for (a, b) in SIDES {
        let chan = format!("#noctcp{a}");
        let mut op = srv.client_on_shard(&format!("op{a}"), a);
        let mut user = srv.client_on_shard(&format!("user{a}"), b);
        channel(&mut op, &mut user, &chan, "+C", true);
        heard(&mut user, &mut op, &chan, "\x01ACTION waves\x01");
        let m = refused(&mut user, &chan, "\x01PING 123\x01");
        assert_eq!(m.verb, "404");
        assert!(m.last().contains("+C"), "the reason names the mode: {}", m.raw);
        // The op too: +C is about the channel's content.
        assert_eq!(refused(&mut op, &chan, "\x01VERSION\x01").verb, "404");
        // A CTCP reply by NOTICE is dropped without a word.
        user.send(&format!("NOTICE {chan} :\x01VERSION me 1.0\x01"));
        assert!(user.sync().is_empty());
        heard(&mut user, &mut op, &chan, "plain after");
        op.send(&format!("MODE {chan}"));
        assert_eq!(op.expect_verb("324").p(2), "+Cnt");
        op.send(&format!("MODE {chan} -C"));
        user.expect_verb("MODE");
        heard(&mut user, &mut op, &chan, "\x01PING 456\x01");
    }
}

#[test]
fn no_colour_refuses_colour_codes_but_not_formatting() {
    let srv = Server::start();
    for (a, b) in SIDES {
        let chan = format!("#nocolour{a}");
        let mut op = srv.client_on_shard(&format!("op{a}"), a);
        let mut user = srv.client_on_shard(&format!("user{a}"), b);
        channel(&mut op, &mut user, &chan, "+c", false);
        let m = refused(&mut user, &chan, "\x034red\x03 text");
        assert_eq!(m.verb, "404");
        assert!(m.last().contains("+c"), "{}", m.raw);
        assert_eq!(refused(&mut op, &chan, "\x0312,4blue").verb, "404");
        heard(&mut user, &mut op, &chan, "\x02bold\x02 and \x1ditalic\x1d");
    }
}

#[test]
fn the_mute_extban_lets_a_user_join_but_not_speak() {
    let srv = Server::start();
    for (a, b) in SIDES {
        let chan = format!("#mute{a}");
        let mut op = srv.client_on_shard(&format!("op{a}"), a);
        let mut user = srv.client_on_shard(&format!("mutee{a}"), b);
        op.send(&format!("JOIN {chan}"));
        op.expect_verb("366");
        // A mask is completed as a ban's is.
        op.send(&format!("MODE {chan} +b $m:mutee{a}"));
        let m = op.expect_verb("MODE");
        assert_eq!(m.last(), format!("$m:mutee{a}!*@*"));
        join(&mut op, &mut user, &chan);
        user.send(&format!("MODE {chan} +b"));
        let list = user.collect_until("368");
        assert!(list.iter().any(|m| m.verb == "367" && m.p(2) == format!("$m:mutee{a}!*@*")), "{list:?}");
        let m = refused(&mut user, &chan, "hello?");
        assert_eq!(m.verb, "404");
        assert!(m.last().contains("muted"), "{}", m.raw);
        // Voice lifts it, and so does a mute exception.
        op.send(&format!("MODE {chan} +v {}", user.nick));
        user.expect_verb("MODE");
        heard(&mut user, &mut op, &chan, "voiced");
        op.send(&format!("MODE {chan} -v+e {} $m:*!*mutee*@*", user.nick));
        user.expect_verb("MODE");
        heard(&mut user, &mut op, &chan, "excepted");
        op.send(&format!("MODE {chan} -e $m:*!*mutee*@*"));
        user.expect_verb("MODE");
        assert_eq!(refused(&mut user, &chan, "again?").verb, "404");
        // Removed whatever the case it is named in.
        op.send(&format!("MODE {chan} -b $m:MUTEE{a}"));
        user.expect_verb("MODE");
        heard(&mut user, &mut op, &chan, "free");
    }
}

#[test]
fn account_only_join_and_speech() {
    let srv = Server::with_config(2, &services_config());
    let mut s = services(&srv);
    for (a, b) in SIDES {
        let (chan, quiet) = (format!("#reg{a}"), format!("#quiet{a}"));
        let mut op = srv.client_on_shard(&format!("op{a}"), a);
        let mut anon = srv.client_on_shard(&format!("anon{a}"), b);
        let mut known = identified(&srv, &mut s, &format!("known{a}"), "", b, &format!("acct{a}"));
        // +R: only users logged in to an account join, invited or not.
        channel(&mut op, &mut known, &chan, "+R", false);
        op.send(&format!("INVITE {} {chan}", anon.nick));
        anon.expect_verb("INVITE");
        anon.send(&format!("JOIN {chan}"));
        let m = anon.expect("477", |m| m.verb == "477" || m.verb == "JOIN");
        assert_eq!((m.verb.as_str(), m.p(1)), ("477", chan.as_str()), "{}", m.raw);
        assert!(m.last().contains("+R"), "{}", m.raw);
        // +M: everyone joins; only they (and the voiced) speak.
        channel(&mut op, &mut anon, &quiet, "+M", false);
        join(&mut op, &mut known, &quiet);
        let m = refused(&mut anon, &quiet, "may I?");
        assert_eq!(m.verb, "477");
        assert!(m.last().contains("+M"), "{}", m.raw);
        heard(&mut known, &mut op, &quiet, "I may");
        op.send(&format!("MODE {quiet} +v {}", anon.nick));
        anon.expect_verb("MODE");
        heard(&mut anon, &mut op, &quiet, "voiced, I may");
    }
}

#[test]
fn isupport_and_help_name_the_modes() {
    let srv = Server::start();
    let mut c = srv.connect();
    c.nick = "reader".into();
    c.send("NICK reader");
    c.send("USER reader 0 * :r");
    let lines = c.collect_until("376");
    let tokens: Vec<&str> = lines
        .iter()
        .filter(|m| m.verb == "005")
        .flat_map(|m| m.params[1..m.params.len() - 1].iter())
        .map(String::as_str)
        .collect();
    for want in ["CHANMODES=beI,k,l,CMRScimnpst", "EXTBAN=$,am", "ACCOUNTEXTBAN=a", "UTF8ONLY"] {
        assert!(tokens.contains(&want), "{want} not in {tokens:?}");
    }
    let myinfo = lines.iter().find(|m| m.verb == "004").unwrap();
    assert!("CMRSc".chars().all(|l| myinfo.p(4).contains(l)), "{}", myinfo.raw);
    c.send("HELP CMODE");
    let help = c.collect_until("706");
    let text: Vec<&str> = help.iter().filter(|m| m.verb == "705").map(|m| m.last()).collect();
    for want in ["C no CTCP", "c no colour", "M only", "R only", "S only TLS", "$m:<mask>"] {
        assert!(text.iter().any(|l| l.contains(want)), "{want} not in {text:#?}");
    }
}
