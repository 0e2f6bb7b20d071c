//! Operators: OPER, KILL, WALLOPS, server notices, REHASH, DIE/RESTART, and the hashed
//! passwords of `[[opers]]` blocks — against the real binary with two shards.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn config(extra_server: &str) -> String {
    let hash = mkpasswd("s3cret");
    let opers = format!(
        r#"
[[opers]]
name = "boss"
password = "{hash}"
hosts = ["*@127.0.0.1"]
privileges = ["all"]

[[opers]]
name = "helper"
password = "plainpw"
allow_plaintext = true
privileges = ["wallops"]

[[opers]]
name = "elsewhere"
password = "plainpw"
allow_plaintext = true
hosts = ["*@10.*"]
privileges = ["all"]
"#
    );
    BASE_CONFIG.replace("[server]\n", &format!("[server]\n{extra_server}\n")) + &opers
}

fn oper_up(c: &mut Client, name: &str, pw: &str) {
    c.send(&format!("OPER {name} {pw}"));
    c.expect_verb("381");
}

/// A client on each shard: (on shard 0, on shard 1).
fn one_per_shard(srv: &Server, prefix: &str) -> (Client, Client) {
    let mut v = srv.clients_on_both_shards(prefix, 1);
    let i0 = v.iter().position(|(_, s)| *s == 0).unwrap();
    let a = v.remove(i0).0;
    let i1 = v.iter().position(|(_, s)| *s == 1).unwrap();
    let b = v.remove(i1).0;
    (a, b)
}

#[test]
fn oper_numerics_and_privileges() {
    let srv = Server::with_config(2, &config(""));
    let mut a = srv.client("alice");
    a.send("KILL nobody :x");
    a.expect_verb("481");
    a.send("OPER ghost s3cret");
    a.expect_verb("491");
    a.send("OPER elsewhere plainpw");
    assert_eq!(a.expect_verb("491").p(0), "alice", "host masks are checked");
    a.send("OPER boss wrong");
    a.expect_verb("464");
    a.send("OPER boss s3cret");
    let mode = a.expect_verb("MODE");
    assert_eq!((mode.p(0), mode.p(1)), ("alice", "+osw"));
    a.expect_verb("381");
    a.send("MODE alice");
    assert_eq!(a.expect_verb("221").p(1), "+osw");

    // a privilege missing: 723; present: works
    let mut h = srv.client("helper");
    oper_up(&mut h, "helper", "plainpw");
    h.send("KILL alice :nope");
    assert_eq!(h.expect_verb("723").p(1), "kill");
    h.send("REHASH");
    assert_eq!(h.expect_verb("723").p(1), "rehash");
    h.send("WALLOPS :hello opers");
    assert_eq!(h.expect_verb("WALLOPS").last(), "hello opers");

    // -o drops the privileges with the mode
    a.send("MODE alice -o");
    a.expect_verb("MODE");
    a.send("KILL helper :x");
    a.expect_verb("481");
    // WHOIS shows an operator (313) from the other shard
    let (mut x, mut y) = one_per_shard(&srv, "w");
    oper_up(&mut x, "boss", "s3cret");
    y.send(&format!("WHOIS {}", x.nick));
    let lines = y.collect_until("318");
    assert!(lines.iter().any(|m| m.verb == "313"), "{lines:?}");
}

#[test]
fn kill_wallops_and_server_notices_cross_shards() {
    let srv = Server::with_config(2, &config(""));
    let (mut op, mut victim) = one_per_shard(&srv, "k");
    oper_up(&mut op, "boss", "s3cret");
    op.sync();
    // an observer sharing a channel with the victim, on the oper's shard
    let mut obs = srv.client("observer");
    obs.send("JOIN #k");
    obs.expect_verb("366");
    victim.send("JOIN #k");
    victim.expect_verb("366");
    obs.expect_verb("JOIN");

    // connects and exits on the other shard reach the oper as server notices
    let (mut n0, mut n1) = one_per_shard(&srv, "n");
    let seen = op.expect("connect notice", |m| {
        m.verb == "NOTICE" && m.last().contains(&format!("Client connecting: {}", n1.nick))
    });
    assert!(seen.last().starts_with("*** Notice -- "), "{}", seen.raw);
    n1.send("QUIT :bye now");
    op.expect("exit notice", |m| {
        m.verb == "NOTICE"
            && m.last().contains(&format!("Client exiting: {}", n1.nick))
            && m.last().contains("Quit: bye now")
    });
    n0.send("QUIT");

    // WALLOPS reaches +w users on the other shard
    victim.send(&format!("MODE {} +w", victim.nick));
    victim.expect_verb("MODE");
    op.send("WALLOPS :maintenance at noon");
    let w = victim.expect_verb("WALLOPS");
    assert_eq!(w.last(), "maintenance at noon");
    assert!(w.source.as_deref().unwrap().starts_with(&format!("{}!", op.nick)));

    // KILL across shards: the victim's ERROR, the observer's QUIT, the oper's notice
    op.send(&format!("KILL {} :spamming", victim.nick));
    let why = format!("Killed ({} (spamming))", op.nick);
    let closed = victim.expect_closed();
    let err = closed.iter().find(|m| m.verb == "ERROR").expect("ERROR before close");
    assert!(err.last().contains(&why), "{}", err.raw);
    let quit = obs.expect_verb("QUIT");
    assert_eq!(quit.last(), why);
    op.expect("kill notice", |m| {
        m.verb == "NOTICE" && m.last().contains(&format!("Received KILL message for {}", victim.nick))
    });
    op.send(&format!("KILL {} :again", victim.nick));
    op.expect_verb("401");
    srv.wait_log(&["Kill:", &victim.nick]);
}

#[test]
fn rehash_keeps_the_old_config_on_errors_and_tells_why() {
    let srv = Server::with_config(2, &config(""));
    let (mut op, mut other) = one_per_shard(&srv, "r");
    oper_up(&mut op, "boss", "s3cret");
    let good = std::fs::read_to_string(&srv.config_path).unwrap();

    // broken: every error comes back to the oper, the old config stays
    std::fs::write(&srv.config_path, good.replace("motd = \"test motd\"", "motd = 5\nbogus = 1")).unwrap();
    op.send("REHASH");
    op.expect_verb("382");
    op.expect("refusal", |m| m.verb == "NOTICE" && m.last().contains("Configuration NOT reloaded: 2 error(s)"));
    let e1 = op.expect("first error", |m| m.verb == "NOTICE" && m.last().contains("server.motd"));
    assert!(e1.last().contains(srv.config_path.to_str().unwrap()), "names the file: {}", e1.raw);
    op.expect("second error", |m| m.verb == "NOTICE" && m.last().contains("server.bogus: unknown key"));
    other.send("MOTD");
    assert!(other.collect_until("376").iter().any(|m| m.last().contains("test motd")));
    srv.wait_log(&["Config reload failed with 2 error(s)"]);

    // fixed: it takes effect on every shard, and nobody is dropped
    std::fs::write(&srv.config_path, good.replace("motd = \"test motd\"", "motd = \"fresh motd\"")).unwrap();
    op.send("REHASH");
    op.expect("reloaded", |m| m.verb == "NOTICE" && m.last() == "*** Configuration reloaded");
    other.send("MOTD");
    assert!(other.collect_until("376").iter().any(|m| m.last().contains("fresh motd")));
    op.sync();
    other.sync();
}

#[test]
fn die_and_restart_only_when_allowed() {
    let srv = Server::with_config(2, &config(""));
    let mut op = srv.client("dier");
    oper_up(&mut op, "boss", "s3cret");
    op.send("DIE");
    op.expect("why", |m| {
        m.verb == "NOTICE" && m.last().contains("DIE is disabled on this server (set allow_die = true in [server])")
    });
    assert_eq!(op.expect_verb("723").p(1), "die");
    op.send("RESTART");
    op.expect_verb("723");
    let mut plain = srv.client("plain");
    plain.send("DIE");
    plain.expect_verb("481");
    drop(srv);

    let mut srv = Server::with_config(2, &config("allow_die = true\nallow_restart = true"));
    let mut op = srv.client("restarter");
    oper_up(&mut op, "boss", "s3cret");
    op.send("RESTART");
    let closed = op.expect_closed();
    assert!(closed.iter().any(|m| m.verb == "ERROR"), "{closed:?}");
    // the same process starts again (exec): a second "ready" line, and it serves
    let deadline = std::time::Instant::now() + TIMEOUT;
    while srv.log_lines().iter().filter(|l| l.contains(" ready: ")).count() < 2 {
        assert!(std::time::Instant::now() < deadline, "no restart: {:#?}", srv.log_lines());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(srv.is_running());
    let addr = srv
        .log_lines()
        .iter()
        .rev()
        .find_map(|l| l.split("Listening on ").nth(1).map(|a| a.trim().to_string()))
        .unwrap();
    let mut c = Client::connect(addr.parse().unwrap());
    c.register("again");
    oper_up(&mut c, "boss", "s3cret");
    c.send("DIE");
    c.expect_closed();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while srv.is_running() {
        assert!(std::time::Instant::now() < deadline, "DIE did not stop the server");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn plaintext_passwords_are_refused_unless_allowed() {
    let dir = TempDir::new();
    let path = dir.0.join("bad.toml");
    let cfg = BASE_CONFIG.to_string() + "\n[[opers]]\nname = \"x\"\npassword = \"plain\"\nprivileges = [\"killall\"]\n";
    std::fs::write(&path, cfg).unwrap();
    let out = Command::new(bin()).args(["--check-config", "--config", path.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("opers[0].password: is not an argon2 or bcrypt hash"), "{err}");
    assert!(err.contains("opers[0].privileges: unknown privilege \"killall\""), "{err}");
}
