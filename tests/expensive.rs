//! Expensive commands against the real binary with two shards: failed OPERs (each argon2 check
//! costs tens of MiB) are limited per client and per address, and memory stays bounded; `WHO *`
//! on hundreds of users is written in pieces (within a sendq smaller than the reply), costs
//! flood-control tokens, and leaves the shards answering others.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while let Some(m) = c.read_line(deadline.saturating_duration_since(Instant::now())) {
        seen.push(m);
    }
    assert!(Instant::now() < deadline, "{}: not closed; saw {seen:?}", c.nick);
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

/// Loopback's 127.0.0.1 is exempt from limits (the fillers); 127.0.0.2 is flood-controlled. Both
/// have a 32 KiB sendq: `WHO *` on 600 users is about 45 KB.
fn who_config() -> String {
    let class = |name: &str, host: &str, exempt: bool| {
        format!(
            "[[classes]]\nname = \"{name}\"\nhosts = [\"{host}\"]\nrecvq = \"16KiB\"\nsendq = \"32KiB\"\n\
             ping_frequency = \"90s\"\nconnection_timeout = \"30s\"\nmax_clients = 5000\n\
             max_per_cidr = 0\nflood_burst = 20\nflood_rate = 5\nexempt = {exempt}\n"
        )
    };
    let server = &BASE_CONFIG[..BASE_CONFIG.find("[[classes]]").unwrap()];
    format!("{server}{}\n{}", class("bulk", "127.0.0.1", true), class("users", "*", false))
}

/// `n` registered clients, connected and registered all at once.
fn fillers(srv: &Server, n: usize) -> Vec<Client> {
    let mut v: Vec<Client> = (0..n)
        .map(|i| {
            let mut c = srv.connect();
            c.nick = format!("f{i:03}");
            c.send(&format!("NICK {}\r\nUSER f 0 * :filler", c.nick));
            c
        })
        .collect();
    for c in &mut v {
        c.expect("end of MOTD", |m| m.verb == "376" || m.verb == "422");
    }
    v
}

/// Reads one WHO reply: the nicks of its 352 rows, in order, up to its 315.
fn who_reply(c: &mut Client) -> Vec<String> {
    let mut nicks = Vec::new();
    loop {
        let m = c.expect("352 or 315", |m| matches!(m.verb.as_str(), "352" | "315" | "ERROR"));
        match m.verb.as_str() {
            "352" => nicks.push(m.p(5).to_string()),
            "315" => return nicks,
            _ => panic!("{}: {} after {} rows", c.nick, m.raw, nicks.len()),
        }
    }
}

fn assert_everyone_once(nicks: &[String], expected: &[String], who: &str) {
    let mut sorted = nicks.to_vec();
    sorted.sort();
    let mut unique = sorted.clone();
    unique.dedup();
    let missing: Vec<&String> = expected.iter().filter(|n| unique.binary_search(n).is_err()).collect();
    let extra: Vec<&String> = unique.iter().filter(|n| expected.binary_search(n).is_err()).collect();
    assert_eq!(sorted.len(), unique.len(), "{who}: a user listed twice");
    assert!(missing.is_empty() && extra.is_empty(), "{who}: missing {missing:?}, unexpected {extra:?}");
}

/// The slowest answer to a PING every 20 ms until `done`.
fn worst_pong(c: &mut Client, done: &AtomicBool) -> Duration {
    let mut worst = Duration::ZERO;
    while !done.load(Ordering::Relaxed) {
        let t = Instant::now();
        c.sync();
        worst = worst.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    worst
}

#[test]
fn who_star_comes_whole_in_pieces_costs_flood_tokens_and_others_are_answered() {
    let srv = Server::with_config(2, &who_config());
    // The others stay connected (a dropped client quits).
    let mut all = fillers(&srv, 600);
    let mut asker = srv.connect_from("127.0.0.2");
    asker.register("asker");
    let mut expected: Vec<String> = all.iter().map(|c| c.nick.clone()).chain(["asker".to_string()]).collect();
    expected.sort();

    // Four clients on each shard run WHO * three times, with a PING behind; one more client on
    // each shard pings meanwhile.
    let mut by_shard: [Vec<Client>; 2] = [Vec::new(), Vec::new()];
    while by_shard.iter().any(|v| v.len() < 5) {
        let c = all.pop().expect("five clients on each shard");
        let s = srv.shard_of(&c);
        if by_shard[s].len() < 5 {
            by_shard[s].push(c);
        } else {
            all.insert(0, c);
        }
    }
    let mut bystanders: Vec<Client> = by_shard.iter_mut().map(|v| v.pop().expect("a client on each shard")).collect();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let done = &done;
        let pingers: Vec<_> = bystanders.iter_mut().map(|b| s.spawn(move || worst_pong(b, done))).collect();
        let runs: Vec<_> = by_shard
            .iter_mut()
            .flatten()
            .map(|c| {
                let expected = &expected;
                s.spawn(move || {
                    c.send("WHO *\r\nWHO *\r\nWHO *\r\nPING :after");
                    for _ in 0..3 {
                        let nicks = who_reply(c);
                        assert_everyone_once(&nicks, expected, &c.nick);
                    }
                    assert_eq!(c.expect_verb("PONG").last(), "after", "{}: the PING waits for the WHOs", c.nick);
                })
            })
            .collect();
        // The pingers stop whatever happened to the runs; then a failed run fails the test.
        let results: Vec<_> = runs.into_iter().map(|r| r.join()).collect();
        done.store(true, Ordering::Relaxed);
        for r in results {
            if let Err(e) = r {
                std::panic::resume_unwind(e);
            }
        }
        for p in pingers {
            let worst = p.join().unwrap();
            assert!(worst < Duration::from_secs(5), "a bystander waited {worst:?} for PONG");
        }
    });

    // A flood-controlled client: three long replies spend more than the burst of 20 tokens
    // (12 a reply on top of the command's own), so its PING waits, and it is told.
    asker.send("WHO *\r\nWHO *\r\nWHO *\r\nPING :after");
    let t = Instant::now();
    let lines = asker.collect_until("PONG");
    assert!(t.elapsed() >= Duration::from_millis(500), "the PING waited for tokens: {:?}", t.elapsed());
    assert!(lines.iter().any(|m| m.verb == "NOTICE" && m.last().contains("too fast")), "flood control held nothing");
    let ends: Vec<usize> = lines.iter().enumerate().filter(|(_, m)| m.verb == "315").map(|(i, _)| i).collect();
    assert_eq!(ends.len(), 3);
    for (from, to) in [0, ends[0], ends[1]].into_iter().zip(ends) {
        let nicks: Vec<String> =
            lines[from..to].iter().filter(|m| m.verb == "352").map(|m| m.p(5).to_string()).collect();
        assert_everyone_once(&nicks, &expected, "asker");
    }
}
