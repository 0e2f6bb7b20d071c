//! Channel rename (IRCv3 draft/channel-rename) against the real binary at `--cores 2`: a
//! channel keeps its members, modes, topic and history under its new name, whether the new
//! name's home is the old one's shard or the other; members with the capability see RENAME,
//! the others a PART and a JOIN; the old name is free again.

mod common;

use common::{Client, Msg, Server};

const CAPS: &str = "draft/channel-rename message-tags server-time batch draft/chathistory echo-message";

/// The shard that is a channel's home at `--cores 2` (FNV-1a of the folded name, as the server
/// computes it; the names here are lowercase already).
fn home(name: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h % 2
}

/// A name `prefix<n>` whose home is `shard`.
fn name_at(prefix: &str, shard: u64) -> String {
    (0..).map(|i| format!("{prefix}{i}")).find(|n| home(n) == shard).unwrap()
}

fn join(c: &mut Client, chan: &str) {
    c.send(&format!("JOIN {chan}"));
    c.expect_verb("366");
}

fn history(c: &mut Client, chan: &str) -> Vec<(String, String)> {
    c.send(&format!("CHATHISTORY LATEST {chan} * 50"));
    c.expect_verb("BATCH");
    let mut lines = c.collect_until("BATCH");
    lines.pop();
    lines.iter().filter(|m| m.verb == "PRIVMSG").map(|m| (m.p(0).to_string(), m.last().to_string())).collect()
}

#[test]
fn a_renamed_channel_keeps_its_state_on_both_shards_for_both_kinds_of_client() {
    let srv = Server::start();
    let mut op = srv.client_on_shard_caps("op", CAPS, 0);
    let mut peer = srv.client_on_shard_caps("peer", CAPS, 1);
    let mut old0 = srv.client_on_shard("legacy0", 0);
    let mut old1 = srv.client_on_shard("legacy1", 1);
    // The new name's home the same shard as the old one's, then the other.
    let cases = [
        (name_at("#same", 0), name_at("#samenew", 0)),
        (name_at("#move", 0), name_at("#movenew", 1)),
        (name_at("#back", 1), name_at("#backnew", 0)),
    ];
    for (from, to) in &cases {
        join(&mut op, from);
        for c in [&mut peer, &mut old0, &mut old1] {
            join(c, from);
        }
        op.send(&format!("TOPIC {from} :the topic"));
        op.send(&format!("MODE {from} +k sesame"));
        op.send(&format!("MODE {from} +v peer"));
        op.send(&format!("PRIVMSG {from} :before"));
        op.expect_verb("PRIVMSG");
        for c in [&mut op, &mut peer, &mut old0, &mut old1] {
            c.sync();
        }

        op.send(&format!("RENAME {from} {to} :tidying up"));
        for c in [&mut op, &mut peer] {
            let m = c.expect_verb("RENAME");
            assert_eq!(m.params, [from.as_str(), to.as_str(), "tidying up"], "{}", m.raw);
            assert!(m.source.as_deref().is_some_and(|s| s.starts_with("op!")), "{}", m.raw);
        }
        for c in [&mut old0, &mut old1] {
            let part = c.expect_verb("PART");
            assert_eq!(part.params, [from.as_str(), "tidying up"], "{}", part.raw);
            let joined = c.expect_verb("JOIN");
            assert_eq!(joined.p(0), to, "{}", joined.raw);
            assert_eq!(c.expect_verb("332").last(), "the topic");
            let names = c.collect_until("366");
            let listed: String = names.iter().filter(|m| m.verb == "353").map(|m| m.last().to_string()).collect();
            for nick in ["@op", "+peer", "legacy0", "legacy1"] {
                assert!(listed.split(' ').any(|n| n == nick), "{nick} in {listed}");
            }
        }
        // The state came along, as every shard sees it.
        for c in [&mut peer, &mut old1, &mut old0] {
            c.send(&format!("MODE {to}"));
            let modes = c.expect_verb("324");
            assert!(modes.p(2).contains('k'), "{}", modes.raw);
            c.send(&format!("TOPIC {to}"));
            assert_eq!(c.expect_verb("332").last(), "the topic");
        }
        // Messages reach every member under the new name.
        old1.send(&format!("PRIVMSG {to} :after"));
        for c in [&mut op, &mut peer, &mut old0] {
            let m = c.expect_verb("PRIVMSG");
            assert_eq!((m.p(0), m.last()), (to.as_str(), "after"), "{}", m.raw);
        }
        // The history came along, naming the channel anew, asked from either shard.
        for c in [&mut op, &mut peer] {
            let h = history(c, to);
            assert_eq!(h, [(to.clone(), "before".to_string()), (to.clone(), "after".to_string())]);
        }
        // WHOIS lists the new name.
        old0.send("WHOIS peer");
        let chans = old0.expect_verb("319");
        assert!(chans.last().split(' ').any(|c| c == format!("+{to}")), "{}", chans.raw);
        old0.collect_until("318");
        // The old name is free: whoever joins it creates a new channel and is its operator.
        old1.send(&format!("JOIN {from}"));
        let names = old1.collect_until("366");
        let listed: String = names.iter().filter(|m| m.verb == "353").map(|m| m.last().to_string()).collect();
        assert_eq!(listed, "@legacy1", "{from} is new");
        old1.send(&format!("PART {from}"));
        old1.expect_verb("PART");
        for c in [&mut op, &mut peer, &mut old0, &mut old1] {
            c.sync();
        }
    }
    // A member who leaves the network leaves the renamed channel everywhere.
    old1.send("QUIT :bye");
    for c in [&mut op, &mut peer, &mut old0] {
        c.expect_verb("QUIT");
        c.sync();
    }
    for (_, to) in &cases {
        op.send(&format!("NAMES {to}"));
        let names = op.collect_until("366");
        assert!(names.iter().all(|m| !m.raw.contains("legacy1")), "{to}: {names:?}");
    }
}

#[test]
fn renames_are_refused_with_the_right_answer() {
    let srv = Server::start();
    let mut op = srv.client_on_shard_caps("op", CAPS, 0);
    let mut user = srv.client_on_shard_caps("user", CAPS, 1);
    let a = name_at("#refa", 0);
    let b = name_at("#refb", 1);
    for chan in [&a, &b] {
        join(&mut op, chan);
        join(&mut user, chan);
    }
    op.sync();
    // Not an operator of it.
    user.send(&format!("RENAME {a} #elsewhere"));
    assert_eq!(user.expect_verb("482").p(1), a);
    // No such channel, and one not joined.
    user.send("RENAME #nosuch #other");
    assert_eq!(user.expect_verb("403").p(1), "#nosuch");
    let mut outsider = srv.client_on_shard_caps("outsider", CAPS, 0);
    outsider.send(&format!("RENAME {a} #other"));
    assert_eq!(outsider.expect_verb("442").p(1), a);
    // A name in use.
    op.send(&format!("RENAME {a} {b}"));
    let m = op.expect_verb("FAIL");
    assert_eq!(m.params[..4], ["RENAME", "CHANNEL_NAME_IN_USE", a.as_str(), b.as_str()], "{}", m.raw);
    // Another type of channel, and a name that is not a channel's.
    for bad in ["&local", "nochannel"] {
        op.send(&format!("RENAME {a} {bad}"));
        let m = op.expect_verb("FAIL");
        assert_eq!(m.params[..2], ["RENAME", "CANNOT_RENAME"], "{}", m.raw);
    }
    // Too few parameters.
    op.send(&format!("RENAME {a}"));
    op.expect_verb("461");
    // Nothing was renamed: both channels are there, and a refused rename left its name free.
    op.send(&format!("RENAME {a} #elsewhere"));
    op.expect_verb("RENAME");
    user.expect_verb("RENAME");
    user.send("JOIN #elsewhere");
    user.sync();
    op.send(&format!("NAMES {b}"));
    assert!(op.collect_until("366").iter().any(|m| m.verb == "353"));
}

#[test]
fn a_case_change_renames_in_place_and_renames_are_rate_limited() {
    let srv = Server::start();
    let mut op = srv.client_on_shard_caps("op", CAPS, 1);
    let mut old = srv.client_on_shard("legacy", 0);
    join(&mut op, "#case");
    join(&mut old, "#case");
    op.sync();
    op.send("RENAME #case #CaSe");
    assert_eq!(op.expect_verb("RENAME").params, ["#case", "#CaSe", ""]);
    // A change of case is not worth a PART and a JOIN to a client without the capability.
    for m in old.sync() {
        assert!(m.verb != "PART" && m.verb != "JOIN", "{}", m.raw);
    }
    old.send("LIST #case");
    let entry = old.expect_verb("322");
    assert_eq!(entry.p(1), "#CaSe");
    // A second rename so soon is refused (each shows the others a PART, a JOIN and NAMES).
    op.send("RENAME #CaSe #other");
    let m = op.expect_verb("FAIL");
    assert_eq!(m.params[..4], ["RENAME", "CANNOT_RENAME", "#CaSe", "#other"], "{}", m.raw);
    old.send("NAMES #CaSe");
    assert!(old.collect_until("366").iter().any(|m| m.verb == "353" && m.last().contains("@op")));
}

/// Read markers follow a renamed channel, on both shards: after the rename the reader's marker
/// is the new name's and the old name has none. (Only a user's session markers can be tried
/// here: accounts come from services, and a server linked to services refuses RENAME.)
#[test]
fn read_markers_follow_a_renamed_channel() {
    let caps = "draft/channel-rename draft/read-marker";
    let markread = |c: &mut Client, line: &str| {
        c.send(line);
        c.expect("MARKREAD", |m| m.verb == "MARKREAD").params
    };
    let ts = "timestamp=2024-02-02T02:02:02.222Z";
    let srv = Server::start();
    // The new name's home the other shard; the reader on the other shard from the renamer.
    let (from, to) = (name_at("#mark", 0), name_at("#marknew", 1));
    let mut op = srv.client_on_shard_caps("op", caps, 0);
    let mut reader = srv.client_on_shard_caps("reader", caps, 1);
    join(&mut op, &from);
    join(&mut reader, &from);
    markread(&mut reader, &format!("MARKREAD {from} {ts}"));
    op.send(&format!("RENAME {from} {to} :moving"));
    reader.expect("the RENAME", |m| m.verb == "RENAME");
    assert_eq!(markread(&mut reader, &format!("MARKREAD {to}")), [to.clone(), ts.to_string()]);
    assert_eq!(markread(&mut reader, &format!("MARKREAD {from}")), [from, "*".to_string()]);
}

/// Linked to services only, a channel whose members are all ours can be renamed: services
/// see every member leave the old name and the channel burst under the new one (TS6 has no
/// rename). A channel with a member of theirs cannot, nor can any while linked to a server
/// with users of its own.
#[test]
fn linked_to_services_a_channel_of_ours_is_renamed_as_part_and_sjoin() {
    let config = common::services_config()
        + "\n[[links]]\nname = \"hub.test\"\nsid = \"4HB\"\nsend_password = \"pw\"\naccept_password = \"pw\"\n";
    let srv = Server::with_config(2, &config);
    let mut s = common::services(&srv);
    let (from, to) = (name_at("#svcold", 0), name_at("#svcnew", 1));
    let mut op = srv.client_on_shard_caps("op", CAPS, 0);
    let mut user = srv.client_on_shard_caps("user", CAPS, 1);
    join(&mut op, &from);
    join(&mut user, &from);
    op.send(&format!("TOPIC {from} :kept"));
    op.send(&format!("MODE {from} +b bad!*@*"));
    op.sync();
    s.sync();
    op.send(&format!("RENAME {from} {to} :tidy"));
    op.expect_verb("RENAME");
    user.expect_verb("RENAME");
    let parts: Vec<Msg> = (0..2).map(|_| s.expect("a PART", |m| m.verb == "PART")).collect();
    for p in &parts {
        assert_eq!(p.params, [from.clone(), format!("Renamed to {to}: tidy")], "{}", p.raw);
    }
    let sjoin = s.expect("the SJOIN", |m| m.verb == "SJOIN");
    assert_eq!(sjoin.p(1), to, "{}", sjoin.raw);
    assert_eq!(sjoin.last().split(' ').count(), 2, "{}", sjoin.raw);
    assert!(sjoin.last().split(' ').any(|m| m.starts_with('@')), "{}", sjoin.raw);
    let bmask = s.expect("the BMASK", |m| m.verb == "BMASK");
    assert_eq!((bmask.p(1), bmask.p(2), bmask.last()), (to.as_str(), "b", "bad!*@*"));
    let tburst = s.expect("the TBURST", |m| m.verb == "TBURST");
    assert_eq!((tburst.p(1), tburst.last()), (to.as_str(), "kept"));

    // A channel services are in: theirs too.
    s.send(":3SV UID ChanServ 1 1 +io ChanServ services.test services.test 0 3SVAAAAAA * :Channel Services");
    s.send(&format!(":3SV SJOIN {} {to} + :3SVAAAAAA", sjoin.p(0)));
    user.expect("ChanServ's JOIN", |m| m.verb == "JOIN");
    op.send(&format!("RENAME {to} #again"));
    let m = op.expect_verb("FAIL");
    assert_eq!(m.params[..2], ["RENAME", "CANNOT_RENAME"], "{}", m.raw);
    assert!(m.last().contains("other servers"), "{}", m.raw);

    // Linked to a server with users: no rename at all.
    let mut hub = Client::connect(srv.addr);
    hub.send("PASS pw TS 6 :4HB");
    hub.send("CAPAB :EOB ENCAP TBURST");
    hub.send("SERVER hub.test 1 :a hub");
    hub.expect("our EOB", |m| m.verb == "EOB");
    hub.send(":4HB EOB");
    hub.sync();
    join(&mut op, "#lonely");
    op.send("RENAME #lonely #company");
    let m = op.expect_verb("FAIL");
    assert_eq!(m.params[..2], ["RENAME", "CANNOT_RENAME"], "{}", m.raw);
    assert!(m.last().contains("linked"), "{}", m.raw);
}
