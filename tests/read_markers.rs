//! Read markers (IRCv3 draft/read-marker) against the real binary at `--cores 2`: kept per
//! user key (account, else nick) on every shard, shown on JOIN before 366, shared by an
//! account's sessions on both shards, and kept across a restart.

mod common;

use common::{identified, services, services_config, Client, Msg, Server, TempDir};

const CAP: &str = "draft/read-marker";

fn markread(c: &mut Client, line: &str) -> Msg {
    c.send(line);
    c.expect("MARKREAD or FAIL", |m| m.verb == "MARKREAD" || m.verb == "FAIL")
}

#[test]
fn markers_are_set_read_and_only_increase() {
    let srv = Server::start();
    for shard in [0, 1] {
        let nick = format!("reader{shard}");
        let mut c = srv.client_on_shard_caps(&nick, CAP, shard);
        let m = markread(&mut c, "MARKREAD #nothing");
        assert_eq!(m.params[..2], ["#nothing", "*"]);
        let (newer, older) = ("2019-06-01T12:00:00.000Z", "2019-01-01T00:00:00.000Z");
        let m = markread(&mut c, &format!("MARKREAD #Chan timestamp={newer}"));
        assert_eq!(m.params[..2], ["#Chan".to_string(), format!("timestamp={newer}")]);
        let m = markread(&mut c, &format!("MARKREAD #chan timestamp={older}"));
        assert_eq!(m.p(1), format!("timestamp={newer}"), "a marker never goes back");
        let m = markread(&mut c, "MARKREAD #CHAN");
        assert_eq!(m.p(1), format!("timestamp={newer}"));
        let m = markread(&mut c, &format!("MARKREAD somebody timestamp={older}"));
        assert_eq!(m.params[..2], ["somebody".to_string(), format!("timestamp={older}")]);
        for (bad, code) in [
            ("MARKREAD", "NEED_MORE_PARAMS"),
            ("MARKREAD #chan *", "INVALID_PARAMS"),
            ("MARKREAD #chan timestamp=not-a-time", "INVALID_PARAMS"),
            ("MARKREAD bad,nick timestamp=2019-01-01T00:00:00.000Z", "INVALID_TARGET"),
        ] {
            let m = markread(&mut c, bad);
            assert_eq!((m.verb.as_str(), m.p(0), m.p(1)), ("FAIL", "MARKREAD", code), "{bad}: {}", m.raw);
        }
        // On JOIN, before the end of NAMES: the marker, or * when none.
        for (chan, want) in [("#chan", format!("timestamp={newer}")), ("#fresh", "*".to_string())] {
            c.send(&format!("JOIN {chan}"));
            let lines = c.collect_until("366");
            let at = lines.iter().position(|m| m.verb == "MARKREAD").expect("MARKREAD on JOIN");
            assert_eq!(lines[at].params[..2], [chan.to_string(), want]);
            assert!(lines[at..].iter().any(|m| m.verb == "353"), "MARKREAD comes before NAMES");
        }
        c.send("QUIT");
        c.expect_closed();
    }
    // Without an account a marker is the connection's: the next holder of the nick has none.
    let mut c = srv.client_on_shard_caps("reader0", CAP, 1);
    assert_eq!(markread(&mut c, "MARKREAD #chan").p(1), "*");
    // Without the capability: no MARKREAD on JOIN.
    let mut plain = srv.client("plain");
    plain.send("JOIN #chan");
    assert!(!plain.collect_until("366").iter().any(|m| m.verb == "MARKREAD"));
}

/// Two sessions of one account, one on each shard: a marker one raises reaches the other;
/// a lower one reaches nobody. After a restart the marker is still there.
#[test]
fn an_accounts_sessions_share_markers_across_shards_and_restarts() {
    let dir = TempDir::new();
    let data = dir.0.to_str().unwrap().to_string();
    let config = services_config().replace("[server]\n", &format!("[server]\ndata_dir = {data:?}\n"));
    let srv = Server::with_config(2, &config);
    let mut s = services(&srv);
    let mut one = identified(&srv, &mut s, "phone", CAP, 0, "kim");
    let mut two = identified(&srv, &mut s, "laptop", CAP, 1, "kim");
    let mut other = identified(&srv, &mut s, "stranger", CAP, 0, "lee");
    let ts = "2022-11-11T11:11:11.111Z";
    markread(&mut one, &format!("MARKREAD #room timestamp={ts}"));
    let m = two.expect_verb("MARKREAD");
    assert_eq!(m.params[..2], ["#room".to_string(), format!("timestamp={ts}")]);
    markread(&mut two, "MARKREAD #room timestamp=2022-01-01T00:00:00.000Z");
    one.expect_silence(std::time::Duration::from_millis(300));
    other.expect_silence(std::time::Duration::from_millis(10));
    // The rest of the network hears a raise (ENCAP * MARKREAD), and a raise from there reaches
    // the account's sessions here.
    let m = s.expect("ENCAP MARKREAD", |m| m.verb == "ENCAP" && m.p(1) == "MARKREAD");
    assert_eq!(m.params[2..], ["a:kim", "#room", "1668165071111"], "{}", m.raw);
    s.send(":3SV ENCAP * MARKREAD a:kim #elsewhere 1700000000000");
    for c in [&mut one, &mut two] {
        let m = c.expect_verb("MARKREAD");
        assert_eq!(m.params[..2], ["#elsewhere", "timestamp=2023-11-14T22:13:20.000Z"]);
    }
    other.expect_silence(std::time::Duration::from_millis(100));
    drop((one, two, other, s));
    assert!(srv.stop().success());

    let srv = Server::with_config(1, &config);
    let mut s = services(&srv);
    let mut back = identified(&srv, &mut s, "phone", CAP, 0, "kim");
    let m = markread(&mut back, "MARKREAD #ROOM");
    assert_eq!(m.p(1), format!("timestamp={ts}"));
    let mut nick_only = srv.client_on_shard_caps("phone2", CAP, 0);
    assert_eq!(markread(&mut nick_only, "MARKREAD #room").p(1), "*");
}
