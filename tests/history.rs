//! Chat history (IRCv3 draft/chathistory) against the real binary at `--cores 2`: a channel's
//! log is kept by its home shard and a user's private log by the owner of its key, so every
//! test asks from both shards and checks the same answer comes back.

mod common;

use common::{identified, services, services_config, Client, Msg, Server, BASE_CONFIG};

const CAPS: &str = "batch server-time message-tags echo-message labeled-response draft/chathistory";

/// A registered client with `caps` on shard `shard`.
fn on_shard(srv: &Server, nick: &str, caps: &str, shard: usize) -> Client {
    for _ in 0..64 {
        let mut c = srv.connect();
        if srv.shard_of(&c) == shard {
            c.register_caps(nick, caps);
            return c;
        }
    }
    panic!("no connection reached shard {shard}");
}

/// The entries of a `chathistory` batch for `target` (the reply to one CHATHISTORY).
fn history(c: &mut Client, query: &str, target: &str) -> Vec<Msg> {
    c.send(query);
    let open = c.expect_verb("BATCH");
    assert_eq!(open.p(1), "chathistory", "{}", open.raw);
    assert_eq!(open.p(2), target, "{}", open.raw);
    let id = open.p(0).trim_start_matches('+').to_string();
    let mut lines = c.collect_until("BATCH");
    let close = lines.pop().expect("closing BATCH");
    assert_eq!(close.p(0), format!("-{id}"));
    for l in &lines {
        assert_eq!(l.tag("batch"), Some(id.as_str()), "{}", l.raw);
    }
    lines
}

fn texts(lines: &[Msg]) -> Vec<String> {
    lines.iter().map(|m| m.last().to_string()).collect()
}

/// Messages from both shards into channels of either home: every query, from either shard,
/// answers the same entries, with the msgids and times the members saw.
#[test]
fn channel_history_is_the_same_from_both_shards() {
    let srv = Server::start();
    let mut a = on_shard(&srv, "alice", CAPS, 0);
    let mut b = on_shard(&srv, "bob", CAPS, 1);
    // Channel names hash to both homes among these.
    for chan in ["#h1", "#h2", "#h3", "#h4"] {
        a.send(&format!("JOIN {chan}"));
        a.expect_verb("366");
        b.send(&format!("JOIN {chan}"));
        b.expect_verb("366");
        a.expect_verb("JOIN");
        let mut seen = Vec::new();
        for i in 0..6 {
            let (from, to) = if i % 2 == 0 { (&mut a, &mut b) } else { (&mut b, &mut a) };
            from.send(&format!("PRIVMSG {chan} :m{i}"));
            let echo = from.expect_verb("PRIVMSG");
            let got = to.expect_verb("PRIVMSG");
            assert_eq!(echo.tag("msgid"), got.tag("msgid"));
            seen.push(got);
            std::thread::sleep(std::time::Duration::from_millis(3));
        }
        let ids: Vec<&str> = seen.iter().map(|m| m.tag("msgid").unwrap()).collect();
        let times: Vec<&str> = seen.iter().map(|m| m.tag("time").unwrap()).collect();
        for c in [&mut a, &mut b] {
            let all = history(c, &format!("CHATHISTORY LATEST {chan} * 50"), chan);
            assert_eq!(texts(&all), ["m0", "m1", "m2", "m3", "m4", "m5"], "{chan}");
            assert_eq!(all.iter().map(|m| m.tag("msgid").unwrap()).collect::<Vec<_>>(), ids);
            assert_eq!(all.iter().map(|m| m.tag("time").unwrap()).collect::<Vec<_>>(), times);
            let q = |sub: &str, rest: String| format!("CHATHISTORY {sub} {chan} {rest}");
            assert_eq!(texts(&history(c, &q("LATEST", "* 2".into()), chan)), ["m4", "m5"]);
            assert_eq!(texts(&history(c, &q("BEFORE", format!("msgid={} 10", ids[3])), chan)), ["m0", "m1", "m2"]);
            assert_eq!(texts(&history(c, &q("AFTER", format!("timestamp={} 2", times[1])), chan)), ["m2", "m3"]);
            assert_eq!(texts(&history(c, &q("AROUND", format!("msgid={} 3", ids[2])), chan)), ["m1", "m2", "m3"]);
            let between = q("BETWEEN", format!("msgid={} msgid={} 2", ids[5], ids[0]));
            assert_eq!(texts(&history(c, &between, chan)), ["m3", "m4"]);
        }
    }
}

/// Events replay only to clients with draft/event-playback; TAGMSG likewise.
#[test]
fn events_replay_only_with_event_playback() {
    let srv = Server::start();
    let mut plain = on_shard(&srv, "plain", CAPS, 0);
    let mut events = on_shard(&srv, "events", &format!("{CAPS} draft/event-playback"), 1);
    for c in [&mut plain, &mut events] {
        c.send("JOIN #ev");
        c.expect_verb("366");
    }
    plain.expect_verb("JOIN");
    plain.send("TOPIC #ev :a topic");
    plain.expect_verb("TOPIC");
    events.expect_verb("TOPIC");
    plain.send("@+draft/react=x TAGMSG #ev");
    plain.expect_verb("TAGMSG");
    events.expect_verb("TAGMSG");
    plain.send("PRIVMSG #ev :text");
    plain.expect_verb("PRIVMSG");
    events.expect_verb("PRIVMSG");
    let verbs = |lines: Vec<Msg>| lines.into_iter().map(|m| m.verb).collect::<Vec<_>>();
    assert_eq!(verbs(history(&mut plain, "CHATHISTORY LATEST #ev * 10", "#ev")), ["PRIVMSG"]);
    assert_eq!(
        verbs(history(&mut events, "CHATHISTORY LATEST #ev * 10", "#ev")),
        ["JOIN", "JOIN", "TOPIC", "TAGMSG", "PRIVMSG"]
    );
}

/// A private conversation is kept under each side's account: after reconnecting (to whichever
/// shard), a user finds it; TARGETS lists it with the user's channels, oldest first. A user
/// without an account keeps it with its connection only (its nick passes to whoever takes it
/// next): see `a_connection_without_an_account_keeps_its_conversations_until_it_leaves`.
#[test]
fn private_history_survives_a_reconnect_and_is_listed_by_targets() {
    let srv = Server::with_config(2, &services_config());
    let mut s = services(&srv);
    let mut a = identified(&srv, &mut s, "ann", CAPS, 0, "annacct");
    let mut b = identified(&srv, &mut s, "ben", CAPS, 1, "benacct");
    a.send("JOIN #t");
    a.expect_verb("366");
    a.send("PRIVMSG #t :first");
    a.expect_verb("PRIVMSG");
    std::thread::sleep(std::time::Duration::from_millis(5));
    a.send("PRIVMSG ben :hello ben");
    a.expect_verb("PRIVMSG");
    b.expect_verb("PRIVMSG");
    b.send("PRIVMSG ann :hello ann");
    b.expect_verb("PRIVMSG");
    a.expect_verb("PRIVMSG");
    // Someone else's conversation with ben is not ann's.
    let mut c = on_shard(&srv, "cat", CAPS, 0);
    c.send("PRIVMSG ben :not for ann");
    c.expect_verb("PRIVMSG");
    b.expect_verb("PRIVMSG");
    for shard in [0, 1] {
        a.send("QUIT");
        a.expect_closed();
        a = identified(&srv, &mut s, "ann", CAPS, shard, "annacct");
        let got = history(&mut a, "CHATHISTORY LATEST BEN * 10", "BEN");
        assert_eq!(texts(&got), ["hello ben", "hello ann"], "from shard {shard}");
        a.send("JOIN #t");
        a.expect_verb("366");
    }
    let got = history(&mut b, "CHATHISTORY LATEST ann * 10", "ann");
    assert_eq!(texts(&got), ["hello ben", "hello ann"]);
    let got = history(&mut b, "CHATHISTORY LATEST cat * 10", "cat");
    assert_eq!(texts(&got), ["not for ann"]);

    // TARGETS: the conversation with ben, then #t (its latest message is later).
    b.send("JOIN #t");
    b.expect_verb("366");
    b.send("PRIVMSG #t :later");
    b.expect_verb("PRIVMSG");
    a.expect_verb("JOIN");
    a.expect_verb("PRIVMSG");
    a.send("CHATHISTORY TARGETS timestamp=2020-01-01T00:00:00.000Z timestamp=2262-01-01T00:00:00.000Z 10");
    let open = a.expect_verb("BATCH");
    assert_eq!(open.p(1), "draft/chathistory-targets");
    let lines = a.collect_until("BATCH");
    let targets: Vec<(&str, &str)> =
        lines.iter().filter(|m| m.verb == "CHATHISTORY").map(|m| (m.p(1), m.p(2))).collect();
    assert_eq!(targets.iter().map(|t| t.0).collect::<Vec<_>>(), ["ben", "#t"], "{targets:?}");
}

/// Without an account, a connection keeps its private conversations while it lasts (on
/// either shard, with a user on the other): they are its own, not its nick's — who takes the
/// nick after it left, or it reconnecting, finds nothing.
#[test]
fn a_connection_without_an_account_keeps_its_conversations_until_it_leaves() {
    let srv = Server::start();
    for (shard, other) in [(0, 1), (1, 0)] {
        let mut a = on_shard(&srv, "dora", CAPS, shard);
        let mut b = on_shard(&srv, "eli", CAPS, other);
        a.send("PRIVMSG eli :hi eli");
        a.expect_verb("PRIVMSG");
        b.expect_verb("PRIVMSG");
        b.send("PRIVMSG dora :hi dora");
        b.expect_verb("PRIVMSG");
        a.expect_verb("PRIVMSG");
        assert_eq!(texts(&history(&mut a, "CHATHISTORY LATEST ELI * 10", "ELI")), ["hi eli", "hi dora"]);
        assert_eq!(texts(&history(&mut b, "CHATHISTORY LATEST dora * 10", "dora")), ["hi eli", "hi dora"]);
        a.send("QUIT");
        a.expect_closed();
        // Until eli's shard knows dora left.
        for _ in 0..100 {
            b.send("ISON dora");
            if b.expect_verb("303").last().is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Its nick taken again (on either shard): nothing of dora's conversation comes with it;
        // eli's own log still has it.
        let mut again = on_shard(&srv, "dora", CAPS, other);
        assert!(history(&mut again, "CHATHISTORY LATEST eli * 10", "eli").is_empty(), "shard {shard}");
        assert_eq!(texts(&history(&mut b, "CHATHISTORY LATEST dora * 10", "dora")), ["hi eli", "hi dora"]);
        b.send("QUIT");
        b.expect_closed();
        again.send("QUIT");
        again.expect_closed();
    }
}

/// A channel's history ends with the channel: whoever creates one of that name later does not
/// read the old one.
#[test]
fn a_channel_that_ended_takes_its_history_with_it() {
    let srv = Server::start();
    let mut a = on_shard(&srv, "first", CAPS, 0);
    let mut b = on_shard(&srv, "second", CAPS, 1);
    for chan in ["#gone1", "#gone2", "#gone3"] {
        a.send(&format!("JOIN {chan}"));
        a.expect_verb("366");
        a.send(&format!("PRIVMSG {chan} :secret plans"));
        a.expect_verb("PRIVMSG");
        assert_eq!(texts(&history(&mut a, &format!("CHATHISTORY LATEST {chan} * 10"), chan)), ["secret plans"]);
        a.send(&format!("PART {chan}"));
        a.expect_verb("PART");
        b.send(&format!("JOIN {chan}"));
        b.expect_verb("366");
        assert!(history(&mut b, &format!("CHATHISTORY LATEST {chan} * 10"), chan).is_empty(), "{chan}");
    }
}

/// Errors: a channel one is not in, a bad reference or limit, an unknown subcommand.
#[test]
fn bad_queries_get_fail_replies() {
    let srv = Server::start();
    let mut a = on_shard(&srv, "amy", CAPS, 0);
    let mut b = on_shard(&srv, "bo", CAPS, 1);
    b.send("JOIN #closed");
    b.expect_verb("366");
    for (q, code) in [
        ("CHATHISTORY LATEST #closed * 10", "INVALID_TARGET"),
        ("CHATHISTORY LATEST #nowhere * 10", "INVALID_TARGET"),
        ("CHATHISTORY LATEST bo msgid 10", "INVALID_PARAMS"),
        ("CHATHISTORY BEFORE bo * 10", "INVALID_PARAMS"),
        ("CHATHISTORY LATEST bo * ten", "INVALID_PARAMS"),
        ("CHATHISTORY BETWEEN bo timestamp=2020-01-01T00:00:00.000Z 10", "INVALID_PARAMS"),
        ("CHATHISTORY SIDEWAYS bo * 10", "INVALID_PARAMS"),
    ] {
        a.send(q);
        let fail = a.expect_verb("FAIL");
        assert_eq!((fail.p(0), fail.p(1)), ("CHATHISTORY", code), "{q}: {}", fail.raw);
    }
    // A labeled query: the answer is one batch, the label on its opening line.
    a.send("JOIN #lab");
    a.expect_verb("366");
    a.send("PRIVMSG #lab :hi");
    a.send("@label=q1 CHATHISTORY LATEST #lab * 10");
    let open = a.expect_verb("BATCH");
    assert_eq!((open.tag("label"), open.p(1)), (Some("q1"), "chathistory"), "{}", open.raw);
    let inner = a.expect_verb("PRIVMSG");
    assert_eq!(inner.tag("batch"), Some(open.p(0).trim_start_matches('+')), "{}", inner.raw);
    assert_eq!(inner.tag("label"), None);
    assert_eq!(a.expect_verb("BATCH").p(0), format!("-{}", open.p(0).trim_start_matches('+')));
    // Without an account nothing private is kept: an empty batch, not an error.
    assert!(history(&mut a, "CHATHISTORY LATEST bo * 10", "bo").is_empty());
    a.sync();
}

/// The 005 lines and the CAP LS reply of a new client.
fn welcome(srv: &Server) -> (Client, String, String) {
    let mut c = srv.connect();
    let ls = c.cap_ls();
    c.send("NICK off");
    c.send("USER off 0 * :Off");
    c.send("CAP END");
    let lines = c.collect_until("376");
    let isupport = lines.iter().filter(|m| m.verb == "005").map(|m| m.raw.clone()).collect();
    (c, ls, isupport)
}

/// History is announced by default; with `[history] enabled = false` nothing is offered or kept.
#[test]
fn history_can_be_turned_off() {
    let on = Server::start();
    let (_c, ls, isupport) = welcome(&on);
    assert!(ls.contains("draft/chathistory") && ls.contains("draft/event-playback"), "{ls}");
    assert!(isupport.contains("CHATHISTORY=100") && isupport.contains("MSGREFTYPES=msgid,timestamp"), "{isupport}");
    let srv = Server::with_config(2, &format!("{BASE_CONFIG}\n[history]\nenabled = false\n"));
    let (mut c, ls, isupport) = welcome(&srv);
    assert!(!ls.contains("chathistory"), "{ls}");
    assert!(isupport.contains("CHANMODES") && !isupport.contains("CHATHISTORY="), "{isupport}");
    c.send("CHATHISTORY LATEST off * 10");
    let fail = c.expect_verb("FAIL");
    assert_eq!(fail.p(1), "UNKNOWN_COMMAND");
}

fn config_in(dir: &common::TempDir, extra: &str) -> String {
    let data = dir.0.to_str().unwrap();
    format!("{}\n{extra}", services_config().replace("[server]\n", &format!("[server]\ndata_dir = {data:?}\n")))
}

/// History is on disk: after a stop and a start (with another shard count, so the logs move
/// to other keepers), channel and private history answer as before; a shorter length in the
/// config at start keeps the newest. (A channel's history lasts while the channel does: the
/// server stops with its members in it.)
#[test]
fn history_survives_a_restart() {
    let dir = common::TempDir::new();
    let srv = Server::with_config(2, &config_in(&dir, ""));
    let mut s = services(&srv);
    let mut a = identified(&srv, &mut s, "ann", CAPS, 0, "annacct");
    let mut b = identified(&srv, &mut s, "ben", CAPS, 1, "benacct");
    let mut sent = Vec::new();
    for (i, chan) in ["#r1", "#r2", "#r3"].iter().enumerate() {
        a.send(&format!("JOIN {chan}"));
        a.expect_verb("366");
        for j in 0..3 {
            a.send(&format!("PRIVMSG {chan} :{chan} says {j}"));
            sent.push(a.expect_verb("PRIVMSG"));
        }
        a.send(&format!("PRIVMSG ben :private {i}"));
        a.expect_verb("PRIVMSG");
        b.expect_verb("PRIVMSG");
    }
    let before = history(&mut b, "CHATHISTORY LATEST ann * 10", "ann");
    assert!(srv.stop().success());
    drop((a, b, s));

    for (cores, length) in [(1, 1000), (2, 2)] {
        let srv = Server::with_config(cores, &config_in(&dir, &format!("[history]\nprivate_length = {length}\n")));
        // 9 channel messages, 3 JOINs, 3 private messages in each side's log.
        let log = srv.wait_log(&["History loaded"]);
        let n: usize = log.split("History loaded: ").nth(1).and_then(|r| r.split(' ').next()?.parse().ok()).unwrap();
        if cores == 1 {
            assert_eq!(n, 18, "{log}");
        }
        let mut s = services(&srv);
        let mut a = identified(&srv, &mut s, "ann", CAPS, 0, "annacct");
        let mut b = identified(&srv, &mut s, "ben", CAPS, cores - 1, "benacct");
        let after = history(&mut b, "CHATHISTORY LATEST ann * 10", "ann");
        let kept = &before[before.len() - length.min(3)..];
        assert_eq!(texts(&after), texts(kept));
        assert_eq!(
            after.iter().map(|m| m.tag("msgid")).collect::<Vec<_>>(),
            kept.iter().map(|m| m.tag("msgid")).collect::<Vec<_>>()
        );
        for chan in ["#r1", "#r2", "#r3"] {
            a.send(&format!("JOIN {chan}"));
            a.expect_verb("366");
            let got = history(&mut a, &format!("CHATHISTORY LATEST {chan} * 10"), chan);
            let want: Vec<&Msg> = sent.iter().filter(|m| m.p(0) == chan).collect();
            assert_eq!(
                got.iter().map(|m| m.last()).collect::<Vec<_>>(),
                want.iter().map(|m| m.last()).collect::<Vec<_>>()
            );
            assert_eq!(
                got.iter().map(|m| m.tag("time")).collect::<Vec<_>>(),
                want.iter().map(|m| m.tag("time")).collect::<Vec<_>>()
            );
        }
        assert!(srv.stop().success());
        drop((a, b, s));
    }
}

/// After a restart only an open channel's log comes back. Whoever creates a channel first gets
/// its log, and could not have joined (or seen) a closed one: a +k, +i or +s channel's log is
/// erased, not handed over. What counts is the channel as its latest mode change left it:
/// closed after its talk is closed, opened again is open. At `--cores 2` the channels have
/// both homes; the second round starts on one shard and restarts on two.
#[test]
fn only_an_open_channels_history_survives_a_restart() {
    // (channel, modes before its message, modes after, restored)
    let chans = [
        ("#open", "", "", true),
        ("#talky", "+mC", "", true),
        ("#keyed", "+k sesame", "", false),
        ("#invited", "", "+i", false),
        ("#hidden", "+s", "", false),
        ("#private", "+p", "", false),
        ("#reopened", "+k sesame", "-k sesame", true),
    ];
    for (cores, restart_cores) in [(2, 2), (1, 2)] {
        let dir = common::TempDir::new();
        let data = dir.0.to_str().unwrap();
        let config = BASE_CONFIG.replace("[server]\n", &format!("[server]\ndata_dir = {data:?}\n"));
        let srv = Server::with_config(cores, &config);
        let mut a = on_shard(&srv, "owner", CAPS, cores - 1);
        for (chan, before, after, _) in chans {
            a.send(&format!("JOIN {chan}"));
            a.expect_verb("366");
            if !before.is_empty() {
                a.send(&format!("MODE {chan} {before}"));
                a.expect_verb("MODE");
            }
            a.send(&format!("PRIVMSG {chan} :said in {chan}"));
            a.expect_verb("PRIVMSG");
            if !after.is_empty() {
                a.send(&format!("MODE {chan} {after}"));
                a.expect_verb("MODE");
            }
            assert_eq!(
                texts(&history(&mut a, &format!("CHATHISTORY LATEST {chan} * 10"), chan)),
                [format!("said in {chan}")]
            );
        }
        // While the server runs, a closed channel that empties takes its log with it too.
        a.send("JOIN #emptied");
        a.expect_verb("366");
        a.send("MODE #emptied +k sesame");
        a.expect_verb("MODE");
        a.send("PRIVMSG #emptied :gone with it");
        a.expect_verb("PRIVMSG");
        a.send("PART #emptied");
        a.expect_verb("PART");
        let mut b = on_shard(&srv, "early", CAPS, 0);
        b.send("JOIN #emptied");
        b.expect_verb("366");
        assert!(history(&mut b, "CHATHISTORY LATEST #emptied * 10", "#emptied").is_empty());
        assert!(srv.stop().success());
        drop((a, b));

        let srv = Server::with_config(restart_cores, &config);
        srv.wait_log(&["History loaded"]);
        // The first newcomer creates each channel; the next (on the other shard) joins it.
        let mut newcomers = Vec::new();
        for shard in 0..restart_cores {
            let mut c = on_shard(&srv, &format!("new{shard}"), CAPS, shard);
            for (chan, _, _, restored) in chans {
                c.send(&format!("JOIN {chan}"));
                c.expect_verb("366");
                let got = texts(&history(&mut c, &format!("CHATHISTORY LATEST {chan} * 10"), chan));
                if restored {
                    assert_eq!(got, [format!("said in {chan}")], "{chan}, cores {cores} -> {restart_cores}");
                } else {
                    assert!(
                        got.is_empty(),
                        "{chan}'s log reached a newcomer: {got:?}, cores {cores} -> {restart_cores}"
                    );
                }
            }
            newcomers.push(c);
        }
        // Said so once per channel, at info level.
        let log = srv.log_lines();
        for (chan, letters) in [("#keyed", "k"), ("#invited", "i"), ("#hidden", "s"), ("#private", "p")] {
            let said: Vec<&String> = log.iter().filter(|l| l.contains(&format!("History: {chan} "))).collect();
            assert_eq!(said.len(), 1, "{said:?}");
            assert!(said[0].contains(&format!("was closed (+{letters}): its log is not restored")), "{said:?}");
            assert!(said[0].contains("INFO"), "{said:?}");
        }
        // Erased from the file, not only left out: the next start finds nothing to leave out.
        assert!(srv.stop().success());
        drop(newcomers);
        let srv = Server::with_config(restart_cores, &config);
        srv.wait_log(&["History loaded"]);
        let mut c = on_shard(&srv, "later", CAPS, 0);
        c.sync();
        assert!(!srv.log_lines().iter().any(|l| l.contains("not restored")), "{:#?}", srv.log_lines());
        assert!(srv.stop().success());
    }
}

/// A store written by the previous format (one redb key per entry; `tests/data/history-v1.redb`
/// was written by rustircd at 4e36ffb: `#old` with a JOIN and three lines, `#gone` parted) is
/// migrated at the first start. Its channel log predates the records of channel modes, so it
/// counts as closed and is erased at start: the text is then gone from every file of the store
/// (the migrated segment is compacted before the server serves), and the redb file no longer
/// holds the entries. A second start reads the migrated store (what round 0 left: the reader's
/// JOIN of a new, open `#old`).
#[test]
fn a_store_of_the_previous_format_is_migrated() {
    let dir = common::TempDir::new();
    std::fs::copy("tests/data/history-v1.redb", dir.0.join("history.redb")).unwrap();
    for round in 0..2 {
        let srv = Server::with_config(1, &config_in(&dir, ""));
        let log = srv.wait_log(&["History loaded"]);
        assert!(log.contains(&format!("History loaded: {round} entries")), "{log}");
        if round == 0 {
            srv.wait_log(&["History store: 4 entries migrated from the previous format"]);
            srv.wait_log(&["History: #old's log was written before its channel modes were kept"]);
        }
        let mut c = on_shard(&srv, "reader", CAPS, 0);
        c.send("JOIN #old");
        c.expect_verb("366");
        assert!(history(&mut c, "CHATHISTORY LATEST #old * 10", "#old").is_empty());
        assert!(srv.stop().success());
        let mut files = vec![dir.0.clone()];
        while let Some(d) = files.pop() {
            for f in std::fs::read_dir(d).unwrap() {
                let p = f.unwrap().path();
                if p.is_dir() {
                    files.push(p);
                } else {
                    let bytes = std::fs::read(&p).unwrap();
                    assert!(!bytes.windows(11).any(|w| w == b"format line"), "{}", p.display());
                }
            }
        }
    }
}

/// Nothing said to services is kept (NickServ REGISTER carries a password), while the same
/// conversation with a user is.
#[test]
fn conversations_with_services_are_not_kept() {
    let srv = Server::with_config(2, &services_config());
    let mut s = services(&srv);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    s.send(&format!(":3SV UID NickServ 1 {now} +io NickServ services.test services.test 0 3SVAAAAAA * :Nick services"));
    s.send("PING :3SV");
    s.expect_verb("PONG");
    let mut c = identified(&srv, &mut s, "newbie", CAPS, 1, "newbie");
    let mut friend = identified(&srv, &mut s, "friend", CAPS, 0, "friend");
    c.send("PRIVMSG NickServ :REGISTER hunter2 newbie@example.org");
    let got = s.expect("the PRIVMSG", |m| m.verb == "PRIVMSG");
    assert_eq!(got.last(), "REGISTER hunter2 newbie@example.org");
    c.expect_verb("PRIVMSG");
    c.send("PRIVMSG friend :hello");
    c.expect_verb("PRIVMSG");
    friend.expect_verb("PRIVMSG");
    assert!(history(&mut c, "CHATHISTORY LATEST NickServ * 10", "NickServ").is_empty());
    assert_eq!(texts(&history(&mut c, "CHATHISTORY LATEST friend * 10", "friend")), ["hello"]);
}
