//! K-lines and D-lines: enforced at once on existing connections of both shards and on new
//! ones, listed by STATS k/d, lifted by UNKLINE/UNDLINE, and kept in the data directory across
//! a clean stop and a kill -9.

mod common;

use common::*;

fn config(data_dir: &std::path::Path) -> String {
    let cfg = BASE_CONFIG.replace("[server]\n", &format!("[server]\ndata_dir = {:?}\n", data_dir.to_str().unwrap()));
    cfg + r#"
[[opers]]
name = "boss"
password = "pw"
allow_plaintext = true
hosts = ["*@127.0.0.1"]
privileges = ["kline", "dline"]
"#
}

fn oper(srv: &Server, nick: &str) -> Client {
    let mut op = srv.client(nick);
    op.send("OPER boss pw");
    op.expect_verb("381");
    op
}

/// Registers as `nick` with USER `user`; returns what the server said up to 001 or the close.
fn try_register(c: &mut Client, nick: &str, user: &str) -> Vec<Msg> {
    c.nick = nick.into();
    c.send(&format!("NICK {nick}"));
    c.send(&format!("USER {user} 0 * :x"));
    let mut seen = Vec::new();
    while let Some(m) = c.read_line(TIMEOUT) {
        let done = m.verb == "001";
        seen.push(m);
        if done {
            break;
        }
    }
    seen
}

fn stats(c: &mut Client, letter: &str) -> Vec<Msg> {
    c.send(&format!("STATS {letter}"));
    c.collect_until("219")
}

#[test]
fn klines_hit_both_shards_at_once_and_new_connections() {
    let dir = TempDir::new();
    let srv = Server::with_config(2, &config(&dir.0));
    let mut op = oper(&srv, "op");
    // victims with username "evil" on both shards
    let mut victims = Vec::new();
    let mut shards = [false; 2];
    let mut i = 0;
    while !(shards[0] && shards[1]) {
        let mut c = srv.connect();
        let seen = try_register(&mut c, &format!("evil{i}"), "evil");
        assert_eq!(seen.last().unwrap().verb, "001");
        c.expect_verb("376");
        shards[srv.shard_of(&c)] = true;
        victims.push(c);
        i += 1;
    }
    let mut bystander = srv.client("good");

    op.send("KLINE *evil@127.0.0.* :spamming the network");
    op.expect("confirmation", |m| m.verb == "NOTICE" && m.last() == "Added K-line [*evil@127.0.0.*]");
    for v in &mut victims {
        let seen = v.expect_closed();
        assert!(seen.iter().any(|m| m.verb == "465"), "{seen:?}");
        let err = seen.iter().find(|m| m.verb == "ERROR").expect("ERROR");
        assert!(err.last().contains("K-lined: spamming the network"), "{}", err.raw);
    }
    // a new connection under the ban is refused at registration
    let mut again = srv.connect();
    let seen = try_register(&mut again, "evil99", "evil");
    assert!(seen.iter().any(|m| m.verb == "465"), "{seen:?}");
    again.expect_closed();
    // others are untouched
    bystander.sync();
    let listed = stats(&mut op, "k");
    let k = listed.iter().find(|m| m.verb == "216").expect("216");
    assert_eq!((k.p(1), k.p(2), k.p(4)), ("K", "127.0.0.*", "*evil"));
    assert!(k.last().starts_with("spamming the network (set by op"), "{}", k.raw);
    bystander.send("STATS k");
    bystander.expect_verb("481");

    op.send("UNKLINE *evil@127.0.0.*");
    op.expect("lifted", |m| m.verb == "NOTICE" && m.last().contains("removed"));
    let mut back = srv.connect();
    assert_eq!(try_register(&mut back, "evil100", "evil").last().unwrap().verb, "001");
    assert!(stats(&mut op, "k").iter().all(|m| m.verb != "216"));
}

#[test]
fn dlines_refuse_addresses_and_blocks_and_survive_restarts() {
    let dir = TempDir::new();
    let srv = Server::with_config(2, &config(&dir.0));
    let mut op = oper(&srv, "op");
    let mut from2 = srv.connect_from("127.0.0.2");
    from2.register("two");

    op.send("DLINE 127.0.0.2 :bad address");
    op.expect("added", |m| m.verb == "NOTICE" && m.last() == "Added D-line [127.0.0.2]");
    let seen = from2.expect_closed();
    assert!(seen.iter().any(|m| m.verb == "ERROR" && m.last().contains("D-lined: bad address")), "{seen:?}");
    let mut refused = srv.connect_from("127.0.0.2");
    let seen = refused.expect_closed();
    assert!(seen.iter().any(|m| m.verb == "ERROR" && m.last().contains("D-lined")), "{seen:?}");
    // a CIDR block, temporary
    op.send("DLINE 60 127.0.3.0/24 :whole block");
    op.expect("added", |m| m.verb == "NOTICE" && m.last() == "Added D-line [127.0.3.0/24]");
    srv.connect_from("127.0.3.77").expect_closed();
    let mut fine = srv.connect_from("127.0.4.1");
    fine.register("fine");
    let listed = stats(&mut op, "d");
    let ds: Vec<&str> = listed.iter().filter(|m| m.verb == "225").map(|m| m.p(2)).collect();
    assert_eq!(ds, ["127.0.0.2", "127.0.3.0/24"]);
    assert!(listed.iter().any(|m| m.last().contains("min. left")));

    // a clean stop, then a start on the same data directory: the bans are back
    srv.wait_log(&["Bans saved: 2"]);
    assert!(srv.stop().success());
    let text = std::fs::read_to_string(dir.0.join("bans.txt")).unwrap();
    assert!(text.contains(" 127.0.0.2 :bad address"), "{text}");
    let srv = Server::with_config(2, &config(&dir.0));
    srv.wait_log(&["Bans loaded: 2"]);
    srv.connect_from("127.0.0.2").expect_closed();
    let mut op = oper(&srv, "op2");

    // kill -9 right after a change is written: the file is whole and has it
    op.send("UNDLINE 127.0.0.2");
    op.expect("removed", |m| m.verb == "NOTICE" && m.last().contains("removed"));
    op.send("KLINE *@127.0.0.9 :later");
    op.expect_verb("NOTICE");
    srv.wait_log(&["Bans saved: 2"]);
    srv.signal(9);
    drop(srv);
    let srv = Server::with_config(2, &config(&dir.0));
    srv.wait_log(&["Bans loaded: 2"]);
    let mut two = srv.connect_from("127.0.0.2");
    two.register("two");
    let mut nine = srv.connect_from("127.0.0.9");
    let seen = try_register(&mut nine, "nine", "nine");
    assert!(seen.iter().any(|m| m.verb == "465"), "{seen:?}");
    assert!(!dir.0.join(".bans.txt.tmp").exists(), "no temp file left behind");
}

#[test]
fn bad_ban_masks_get_461() {
    let dir = TempDir::new();
    let srv = Server::with_config(2, &config(&dir.0));
    let mut op = oper(&srv, "op");
    op.send("DLINE not-an-ip :x");
    assert_eq!(op.expect_verb("461").p(1), "DLINE");
    op.send("DLINE 10.0.0.0/40 :x");
    op.expect_verb("461");
    op.send("KLINE a@b@c :x");
    op.expect_verb("461");
    op.send("UNKLINE nobody@nowhere");
    op.expect("none", |m| m.verb == "NOTICE" && m.last() == "No K-line for [nobody@nowhere]");
    let mut user = srv.client("user");
    user.send("KLINE *@* :everyone");
    user.expect_verb("481");
    user.sync();
}

/// The K-lines STATS k lists, as `user@host`.
fn klines(c: &mut Client) -> Vec<String> {
    stats(c, "k").iter().filter(|m| m.verb == "216").map(|m| format!("{}@{}", m.p(4), m.p(2))).collect()
}

/// Starts the server again on the same data directory after a kill -9; an operator on it.
fn restart_after_kill(srv: Server, dir: &TempDir, loaded: usize) -> (Server, Client) {
    srv.signal(9);
    drop(srv);
    let srv = Server::with_config(2, &config(&dir.0));
    srv.wait_log(&[&format!("Bans loaded: {loaded} from")]);
    let op = oper(&srv, "op");
    (srv, op)
}

#[test]
fn an_acknowledged_ban_change_survives_an_immediate_kill_9() {
    let dir = TempDir::new();
    let srv = Server::with_config(2, &config(&dir.0));
    let mut op = oper(&srv, "op");
    op.send("KLINE *@10.9.9.9 :right before the crash");
    op.expect("added", |m| m.verb == "NOTICE" && m.last() == "Added K-line [*@10.9.9.9]");
    let (srv, mut op) = restart_after_kill(srv, &dir, 1);
    assert_eq!(klines(&mut op), ["*@10.9.9.9"]);

    op.send("UNKLINE *@10.9.9.9");
    op.expect("removed", |m| m.verb == "NOTICE" && m.last() == "K-line for [*@10.9.9.9] removed");
    let (_srv, mut op) = restart_after_kill(srv, &dir, 0);
    assert_eq!(klines(&mut op), Vec::<String>::new());
}

/// Two operators, one on each shard, each pipeline 100 K-lines: every acknowledged ban is in
/// the file (the union of both shards' changes) when the server is killed right after the
/// last acknowledgement. Input sent after a burst waits for the burst's acknowledgements.
#[test]
fn a_burst_of_acknowledged_bans_from_both_shards_survives_an_immediate_kill_9() {
    const PER_OPER: usize = 100;
    let dir = TempDir::new();
    let srv = Server::with_config(2, &config(&dir.0));
    let mut ops: Vec<Client> = Vec::new();
    let mut shards = Vec::new();
    for (mut c, shard) in srv.clients_on_both_shards("op", 1) {
        if !shards.contains(&shard) {
            c.send("OPER boss pw");
            c.expect_verb("381");
            ops.push(c);
            shards.push(shard);
        }
    }
    let mut sent = Vec::new();
    for (i, op) in ops.iter_mut().enumerate() {
        let masks: Vec<String> = (0..PER_OPER).map(|j| format!("*@10.{i}.{}.{}", j / 256, j % 256)).collect();
        let burst: String = masks.iter().map(|m| format!("KLINE {m} :burst\r\n")).collect();
        op.send_raw(format!("{burst}PING :after-burst\r\n").as_bytes());
        sent.push(masks);
    }
    let mut acked = Vec::new();
    for (op, masks) in ops.iter_mut().zip(&sent) {
        let mut got = Vec::new();
        loop {
            let m = op.read_line(TIMEOUT).expect("acknowledgements, then PONG");
            if m.verb == "PONG" {
                break;
            }
            if let Some(mask) = m.last().strip_prefix("Added K-line [").and_then(|r| r.strip_suffix(']')) {
                got.push(mask.to_string());
            }
        }
        assert_eq!(&got, masks, "every ban acknowledged, in order, before the PONG");
        acked.extend(got);
    }
    let (_srv, mut op) = restart_after_kill(srv, &dir, 2 * PER_OPER);
    let mut listed = klines(&mut op);
    listed.sort();
    acked.sort();
    assert_eq!(listed, acked);
}

/// A ban that cannot be written down is enforced all the same, and the operator is told it is
/// not saved (here the data directory cannot be created: a file stands in its way).
#[test]
fn a_ban_that_cannot_be_saved_is_active_and_the_operator_is_told() {
    let dir = TempDir::new();
    std::fs::write(dir.0.join("file"), "not a directory").unwrap();
    let srv = Server::with_config(2, &config(&dir.0.join("file").join("data")));
    let mut op = oper(&srv, "op");
    op.send("KLINE *@10.8.8.8 :kept in memory only");
    let told = op.expect("the answer", |m| m.verb == "NOTICE" && m.last().starts_with("Added K-line [*@10.8.8.8]"));
    assert!(told.last().contains("active but NOT saved"), "{}", told.raw);
    assert_eq!(klines(&mut op), ["*@10.8.8.8"]);
    srv.wait_log(&["Bans NOT saved"]);
    // The history store cannot be there either: kept in memory, and the server serves.
    srv.wait_log(&["history is kept in memory only"]);
}
