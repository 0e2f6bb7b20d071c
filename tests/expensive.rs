//! Expensive commands against the real binary with two shards: failed OPERs (each argon2 check
//! costs tens of MiB) are limited per client and per address, and memory stays bounded.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

fn oper_config() -> String {
    // The --mkpasswd defaults: 19 MiB of argon2 memory per check, as a real config has.
    let hash = mkpasswd("s3cret");
    format!("{BASE_CONFIG}\n[[opers]]\nname = \"boss\"\npassword = \"{hash}\"\nhosts = [\"*@127.*\"]\nprivileges = [\"all\"]\n")
}

/// Samples the server's RSS until dropped; `peak()` is the highest seen.
struct RssWatch {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssWatch {
    fn start(pid: u32) -> RssWatch {
        let (peak, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_kb(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        RssWatch { peak, stop }
    }

    fn peak_mb(&self) -> u64 {
        self.peak.load(Ordering::Relaxed) / 1024
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Lines until the server closes the connection, within `limit` (checks queue one at a time,
/// and an unoptimised argon2 check takes about half a second).
fn until_closed(c: &mut Client, limit: Duration) -> Vec<Msg> {
    let deadline = std::time::Instant::now() + limit;
    let mut seen = Vec::new();
    while let Some(m) = c.read_line(deadline.saturating_duration_since(std::time::Instant::now())) {
        seen.push(m);
    }
    assert!(std::time::Instant::now() < deadline, "{}: not closed; saw {seen:?}", c.nick);
    seen
}

fn from(srv: &Server, ip: &str, nick: &str) -> Client {
    let mut c = srv.connect_from(ip);
    c.register(nick);
    c
}

#[test]
fn failed_opers_are_limited_per_client_and_address_and_memory_stays_bounded() {
    let srv = Server::with_config(2, &oper_config());
    let mut op = from(&srv, "127.0.0.9", "watcher");
    op.send("OPER boss s3cret");
    op.expect_verb("381");
    let watch = RssWatch::start(srv.pid());

    // Four hosts send 20 wrong passwords each, all at once: three checks each, then the door.
    let mut attackers: Vec<Client> = (1..=4).map(|i| from(&srv, &format!("127.0.0.{i}"), &format!("att{i}"))).collect();
    for a in &mut attackers {
        a.send_raw("OPER boss wrong\r\n".repeat(20).as_bytes());
    }
    for a in &mut attackers {
        let seen = until_closed(a, Duration::from_secs(40));
        let wrong = seen.iter().filter(|m| m.verb == "464").count();
        assert_eq!(wrong, 3, "{}: {seen:?}", a.nick);
        let error = seen.iter().find(|m| m.verb == "ERROR").expect("an ERROR line");
        assert!(error.last().contains("Too many failed OPER attempts"), "{}", error.raw);
    }
    let checks = srv.log_lines().iter().filter(|l| l.contains("wrong password")).count();
    assert_eq!(checks, 12, "no password is checked past a client's limit");
    assert!(watch.peak_mb() < 120, "RSS peaked at {} MB", watch.peak_mb());

    // The address 127.0.0.1 spent 3 of its 5 checks on att1's shard: a second client there gets
    // two more, then refusals without a check, even with the right password.
    let shard = srv.shard_of(&attackers[0]);
    let mut again = (0..20)
        .map(|_| srv.connect_from("127.0.0.1"))
        .find(|c| srv.shard_of(c) == shard)
        .expect("a connection on the same shard");
    again.register("again");
    for _ in 0..2 {
        again.send("OPER boss wrong");
        again.expect_verb("464");
    }
    again.send("OPER boss s3cret");
    again.expect_verb("491");
    assert!(again.expect_closed().iter().any(|m| m.verb == "ERROR"));
    let notice = op.expect("the refusal notice", |m| m.verb == "NOTICE" && m.last().contains("refused"));
    assert!(notice.last().contains("[127.0.0.1]"), "{}", notice.raw);

    // Another address is not held up.
    let mut good = from(&srv, "127.0.0.5", "good");
    good.send("OPER boss s3cret");
    good.expect_verb("381");
    std::thread::sleep(Duration::from_millis(200));
    assert!(srv.rss_kb() / 1024 < 60, "RSS after the checks: {} MB", srv.rss_kb() / 1024);
}
