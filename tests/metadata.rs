//! Metadata (IRCv3 draft metadata) against the real binary at `--cores 2`: user keys read
//! from either shard, channel keys set by operators through the channel's home, and
//! subscribers on the other shard told of changes and shown the keys when they join.

mod common;

use common::{Client, Msg, Server};

const CAPS: &str = "draft/metadata-3 batch";

/// The lines of a `metadata` batch (the reply to one command).
fn batch(c: &mut Client, line: &str) -> Vec<Msg> {
    batch_of(c, line, "metadata")
}

/// The lines of a batch of this type (the reply to one command).
fn batch_of(c: &mut Client, line: &str, kind: &str) -> Vec<Msg> {
    c.send(line);
    let open = c.expect("BATCH or FAIL", |m| m.verb == "BATCH" || m.verb == "FAIL");
    assert_eq!((open.verb.as_str(), open.p(1)), ("BATCH", kind), "{line}: {}", open.raw);
    let mut lines = c.collect_until("BATCH");
    lines.pop();
    lines
}

fn fail(c: &mut Client, line: &str) -> Msg {
    c.send(line);
    let m = c.expect("FAIL", |m| m.verb == "FAIL" || m.verb == "761" || m.verb == "BATCH");
    assert_eq!((m.verb.as_str(), m.p(0)), ("FAIL", "METADATA"), "{line}: {}", m.raw);
    m
}

fn join(cs: &mut [&mut Client], chan: &str) {
    for c in cs.iter_mut() {
        c.send(&format!("JOIN {chan}"));
        c.expect_verb("366");
    }
    for c in cs.iter_mut() {
        c.sync();
    }
}

#[test]
fn user_metadata_is_read_from_both_shards_and_told_to_subscribers() {
    let srv = Server::start();
    let mut foo = srv.client_on_shard_caps("foo", CAPS, 0);
    let mut bar = srv.client_on_shard_caps("bar", CAPS, 1);
    bar.send("METADATA * SUB display-name avatar");
    let ok = bar.expect_verb("770");
    assert_eq!(ok.params[1..], ["display-name", "avatar"]);
    // Not sharing a channel: nothing told.
    foo.send("METADATA * SET display-name :Foo The First");
    let m = foo.expect_verb("761");
    assert_eq!(m.params, ["foo", "foo", "display-name", "*", "Foo The First"]);
    bar.expect_silence(std::time::Duration::from_millis(200));
    // Joining, the subscriber is shown what it subscribed to.
    foo.send("JOIN #md");
    foo.expect_verb("366");
    bar.send("JOIN #md");
    let lines = bar.collect_until("366");
    let mut rest = bar.sync();
    rest.extend(lines);
    let kv: Vec<&Msg> = rest.iter().filter(|m| m.verb == "761").collect();
    assert_eq!(kv.len(), 1, "{rest:?}");
    assert_eq!(kv[0].params[1..], ["foo", "display-name", "*", "Foo The First"]);
    foo.sync();
    // A change is told; GET from the other shard sees it.
    foo.send("METADATA * SET display-name :Foo The Second");
    foo.expect_verb("761");
    assert_eq!(bar.expect_verb("761").last(), "Foo The Second");
    let got = batch(&mut bar, "METADATA foo GET display-name avatar");
    assert_eq!(got.iter().map(|m| m.verb.as_str()).collect::<Vec<_>>(), ["761", "766"]);
    assert_eq!(got[0].last(), "Foo The Second");
    // WHOIS shows it.
    bar.send("WHOIS foo");
    let whois = bar.collect_until("318");
    let kv: Vec<&Msg> = whois.iter().filter(|m| m.verb == "760").collect();
    assert_eq!(kv.len(), 1);
    assert_eq!(kv[0].params[1..], ["foo", "display-name", "*", "Foo The Second"]);
    // Another user's keys are not ours to change.
    let m = fail(&mut bar, "METADATA foo SET display-name :Not Foo");
    assert_eq!(m.params[1..4], ["KEY_NO_PERMISSION", "foo", "display-name"]);
    let m = fail(&mut bar, "METADATA foo CLEAR");
    assert_eq!(m.params[1..4], ["KEY_NO_PERMISSION", "foo", "*"]);
    // Unset: told as 766; CLEAR answers a batch of what it removed.
    foo.send("METADATA * SET display-name");
    assert_eq!(foo.expect_verb("766").p(2), "display-name");
    assert_eq!(bar.expect_verb("766").p(2), "display-name");
    foo.send("METADATA * SET avatar :https://example.com/a.png");
    foo.expect_verb("761");
    bar.expect_verb("761");
    let cleared = batch(&mut foo, "METADATA * CLEAR");
    assert_eq!(cleared.iter().map(|m| (m.verb.as_str(), m.p(2))).collect::<Vec<_>>(), [("766", "avatar")]);
    assert!(batch(&mut bar, "METADATA foo LIST").is_empty());
    // Bad keys, values and targets.
    assert_eq!(fail(&mut foo, "METADATA * SET Bad-Key :x").p(1), "KEY_INVALID");
    assert_eq!(fail(&mut foo, &format!("METADATA * SET k :{}", "v".repeat(301))).p(1), "INVALID_VALUE");
    assert_eq!(fail(&mut foo, "METADATA nobody LIST").params[1..3], ["INVALID_TARGET", "nobody"]);
}

#[test]
fn channel_metadata_is_set_by_operators_and_told_on_both_shards() {
    let srv = Server::start();
    let mut op = srv.client_on_shard_caps("op", CAPS, 0);
    let mut member = srv.client_on_shard_caps("member", CAPS, 1);
    let mut later = srv.client_on_shard_caps("later", CAPS, 1);
    member.send("METADATA * SUB display-name");
    member.expect_verb("770");
    later.send("METADATA * SUB display-name");
    later.expect_verb("770");
    // Channel names with both homes.
    for chan in ["#mc1", "#mc2", "#mc3"] {
        join(&mut [&mut op, &mut member], chan);
        let m = fail(&mut member, &format!("METADATA {chan} SET display-name :Mine"));
        assert_eq!(m.params[1..4], ["KEY_NO_PERMISSION", chan, "display-name"]);
        op.send(&format!("METADATA {chan} SET display-name :Hash Channel"));
        let m = op.expect_verb("761");
        assert_eq!(m.params, ["op", chan, "display-name", "*", "Hash Channel"]);
        let told = member.expect_verb("761");
        assert_eq!(told.params[1..], [chan, "display-name", "*", "Hash Channel"]);
        op.send(&format!("METADATA {chan} SET avatar :https://example.com/c.png"));
        op.expect_verb("761");
        let list = batch(&mut member, &format!("METADATA {chan} LIST"));
        assert_eq!(
            list.iter().map(|m| (m.p(2), m.last())).collect::<Vec<_>>(),
            [("avatar", "https://example.com/c.png"), ("display-name", "Hash Channel")]
        );
        // Joining later: shown the channel's subscribed key.
        later.send(&format!("JOIN {chan}"));
        let mut lines = later.collect_until("366");
        lines.extend(later.sync());
        let kv: Vec<(&str, &str)> = lines.iter().filter(|m| m.verb == "761").map(|m| (m.p(1), m.last())).collect();
        assert_eq!(kv, [(chan, "Hash Channel")]);
        // CLEAR by the op: a batch of 766s; the members told.
        let cleared = batch(&mut op, &format!("METADATA {chan} CLEAR"));
        let mut keys: Vec<&str> = cleared.iter().map(|m| m.p(2)).collect();
        keys.sort();
        assert_eq!(keys, ["avatar", "display-name"]);
        assert_eq!(member.expect_verb("766").p(2), "display-name");
        assert_eq!(later.expect_verb("766").p(2), "display-name");
        assert!(batch(&mut member, &format!("METADATA {chan} LIST")).is_empty());
    }
    // An invite-only channel's keys are for its members.
    join(&mut [&mut op], "#closed");
    op.send("METADATA #closed SET display-name :Secret");
    op.expect_verb("761");
    op.send("MODE #closed +i");
    op.expect_verb("MODE");
    for q in ["METADATA #closed GET display-name", "METADATA #closed LIST", "METADATA #closed SYNC"] {
        assert_eq!(fail(&mut member, q).p(1), "KEY_NO_PERMISSION", "{q}");
    }
    // A secret channel does not exist for those outside it.
    op.send("MODE #closed +s");
    op.expect_verb("MODE");
    member.sync();
    assert_eq!(fail(&mut member, "METADATA #closed LIST").params[1..3], ["INVALID_TARGET", "#closed"]);
}

/// `before-connect`: keys set before registration are the user's from its first line, told in
/// the welcome burst, and seen from the other shard.
#[test]
fn keys_set_before_registration_belong_to_the_user() {
    let srv = Server::start();
    let mut other = srv.client_on_shard_caps("other", CAPS, 1);
    for _ in 0..64 {
        let mut c = srv.connect();
        if srv.shard_of(&c) != 0 {
            continue;
        }
        c.nick = "early".into();
        let ls = c.cap_ls();
        assert!(ls.split(' ').any(|x| x.starts_with("draft/metadata-3=before-connect,")), "{ls}");
        c.send("CAP REQ :draft/metadata-3 batch");
        c.expect("CAP ACK", |m| m.verb == "CAP" && m.p(1) == "ACK");
        c.send("METADATA * SET display-name :Early Bird");
        let m = c.expect_verb("761");
        assert_eq!(m.params, ["*", "*", "display-name", "*", "Early Bird"]);
        assert_eq!(fail(&mut c, "METADATA someone GET display-name").p(1), "INVALID_TARGET");
        c.send("NICK early");
        c.send("USER early 0 * :e");
        c.send("CAP END");
        // In the burst's `metadata` batch, before the end of the MOTD.
        let burst = c.collect_until("376");
        let kv = own_batch(&burst, "early");
        assert_eq!(kv.len(), 1, "{burst:?}");
        assert_eq!(kv[0].verb, "761");
        assert_eq!(kv[0].params[1..], ["early", "display-name", "*", "Early Bird"]);
        c.sync().iter().for_each(|m| assert_ne!(m.verb, "761", "{}", m.raw));
        let got = batch(&mut other, "METADATA early GET display-name");
        assert_eq!(got[0].last(), "Early Bird");
        return;
    }
    panic!("no connection reached shard 0");
}

/// The lines of the `metadata` batch named for `nick` in a registration burst (panics when
/// there is none).
fn own_batch(burst: &[Msg], nick: &str) -> Vec<Msg> {
    let open = burst
        .iter()
        .position(|m| m.verb == "BATCH" && m.p(1) == "metadata")
        .unwrap_or_else(|| panic!("no metadata batch in {burst:?}"));
    assert_eq!(burst[open].params[2..], [nick], "{}", burst[open].raw);
    let id = &burst[open].p(0)[1..];
    let close = burst
        .iter()
        .position(|m| m.verb == "BATCH" && m.p(0) == format!("-{id}"))
        .unwrap_or_else(|| panic!("batch {id} not closed before the end of the MOTD: {burst:?}"));
    let inside = &burst[open + 1..close];
    assert!(inside.iter().all(|m| m.tag("batch") == Some(id)), "{inside:?}");
    inside.to_vec()
}

/// Registers on `shard` with `caps` (none: no CAP at all); the burst up to the end of the MOTD.
fn register_burst(srv: &Server, nick: &str, caps: &str, shard: usize) -> (Client, Vec<Msg>) {
    for _ in 0..200 {
        let mut c = srv.connect();
        if srv.shard_of(&c) != shard {
            continue;
        }
        c.nick = nick.into();
        if !caps.is_empty() {
            c.send("CAP LS 302");
            c.send(&format!("CAP REQ :{caps}"));
            assert_eq!(c.expect("CAP ACK", |m| m.verb == "CAP" && m.p(1) != "LS").p(1), "ACK");
        }
        c.send(&format!("NICK {nick}"));
        c.send(&format!("USER {nick} 0 * :{nick}"));
        if !caps.is_empty() {
            c.send("CAP END");
        }
        let burst = c.collect_until("376");
        return (c, burst);
    }
    panic!("no connection reached shard {shard}");
}

/// The spec: a client that negotiated the capability gets its metadata in a `metadata` batch
/// named for its nick in the registration burst, before `RPL_ENDOFMOTD` — an empty batch when
/// it has none. A client without the capability gets no batch.
#[test]
fn registration_sends_an_own_metadata_batch_only_with_the_capability() {
    let srv = Server::start();
    for shard in [0, 1] {
        let (mut with, burst) = register_burst(&srv, &format!("with{shard}"), CAPS, shard);
        assert!(own_batch(&burst, &format!("with{shard}")).is_empty(), "{burst:?}");
        with.sync().iter().for_each(|m| assert_ne!(m.verb, "BATCH", "{}", m.raw));
        for caps in ["batch", ""] {
            let (mut without, mut burst) = register_burst(&srv, &format!("without{shard}{}", caps.len()), caps, shard);
            burst.extend(without.sync());
            assert!(burst.iter().all(|m| m.verb != "BATCH" && m.verb != "761"), "{caps}: {burst:?}");
        }
    }
}

/// The spec: `RPL_WHOISKEYVALUE` goes to "a user with the capability enabled" (Ergo does the
/// same); an asker without it sees the rest of the WHOIS. Asked from both shards, of a user
/// on one.
#[test]
fn whois_shows_metadata_only_to_askers_with_the_capability() {
    let srv = Server::start();
    let mut foo = srv.client_on_shard_caps("foo", CAPS, 0);
    foo.send("METADATA * SET display-name :Foo");
    foo.expect_verb("761");
    for shard in [0, 1] {
        let mut with = srv.client_on_shard_caps(&format!("with{shard}"), CAPS, shard);
        let mut batch_only = srv.client_on_shard_caps(&format!("batch{shard}"), "batch", shard);
        let mut plain = srv.client_on_shard(&format!("plain{shard}"), shard);
        with.send("WHOIS foo");
        let lines = with.collect_until("318");
        let kv: Vec<&Msg> = lines.iter().filter(|m| m.verb == "760").collect();
        assert_eq!(kv.len(), 1, "shard {shard}: {lines:?}");
        assert_eq!(kv[0].params, [&format!("with{shard}"), "foo", "display-name", "*", "Foo"]);
        for c in [&mut batch_only, &mut plain] {
            c.send("WHOIS foo");
            let lines = c.collect_until("318");
            assert!(lines.iter().any(|m| m.verb == "311"), "shard {shard}: {lines:?}");
            assert!(lines.iter().all(|m| m.verb != "760"), "shard {shard}: {lines:?}");
        }
    }
}

/// `METADATA * SUBS` answers in a `metadata-subs` batch (no parameters), empty when there are
/// no subscriptions.
#[test]
fn subs_come_in_a_metadata_subs_batch() {
    let srv = Server::start();
    for shard in [0, 1] {
        let mut c = srv.client_on_shard_caps(&format!("subs{shard}"), CAPS, shard);
        c.send("METADATA * SUBS");
        let open = c.expect_verb("BATCH");
        assert_eq!(open.params[1..], ["metadata-subs"], "{}", open.raw);
        let close = c.expect_verb("BATCH");
        assert_eq!(close.params, [format!("-{}", &open.p(0)[1..])]);
        c.send("METADATA * SUB display-name avatar");
        c.expect_verb("770");
        let subs = batch_of(&mut c, "METADATA * SUBS", "metadata-subs");
        assert_eq!(subs.len(), 1, "{subs:?}");
        assert_eq!(subs[0].verb, "772");
        assert_eq!(subs[0].params[1..], ["display-name", "avatar"]);
    }
}

/// Removing a key that is not set fails: `FAIL METADATA KEY_NOT_SET <target> <key>` (the
/// spec), for the user's own keys (before and after registration) and a channel's (with
/// both homes); removing a set key still answers 766.
#[test]
fn removing_a_key_that_is_not_set_fails() {
    let srv = Server::start();
    let not_set = |c: &mut Client, line: &str| -> Msg {
        c.send(line);
        let m = c.expect("FAIL or 766", |m| m.verb == "FAIL" || m.verb == "766" || m.verb == "761");
        assert_eq!((m.verb.as_str(), m.p(0), m.p(1)), ("FAIL", "METADATA", "KEY_NOT_SET"), "{line}: {}", m.raw);
        m
    };
    for shard in [0, 1] {
        let mut c = srv.client_on_shard_caps(&format!("unset{shard}"), CAPS, shard);
        let m = not_set(&mut c, "METADATA * SET avatar");
        assert_eq!(m.params[2..4], [&format!("unset{shard}"), "avatar"]);
        c.send("METADATA * SET avatar :x");
        c.expect_verb("761");
        c.send("METADATA * SET avatar");
        assert_eq!(c.expect("766", |m| m.verb == "766" || m.verb == "FAIL").verb, "766");
        assert_eq!(not_set(&mut c, "METADATA * SET avatar").params[2..4], [&format!("unset{shard}"), "avatar"]);
        // Channels with both homes.
        for chan in ["#un1", "#un2", "#un3"] {
            let chan = format!("{chan}{shard}");
            join(&mut [&mut c], &chan);
            assert_eq!(not_set(&mut c, &format!("METADATA {chan} SET url")).params[2..4], [chan.as_str(), "url"]);
            c.send(&format!("METADATA {chan} SET url :https://example.com"));
            c.expect_verb("761");
            c.send(&format!("METADATA {chan} SET url"));
            assert_eq!(c.expect("766", |m| m.verb == "766" || m.verb == "FAIL").verb, "766");
        }
    }
    // Before registration.
    let mut c = srv.connect();
    c.send("CAP LS 302");
    c.send("CAP REQ :draft/metadata-3 batch");
    c.expect("CAP ACK", |m| m.verb == "CAP" && m.p(1) == "ACK");
    assert_eq!(not_set(&mut c, "METADATA * SET avatar").params[2..4], ["*", "avatar"]);
}
