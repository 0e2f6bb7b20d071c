//! Observability: STATS letters gathered from both shards, and the Prometheus `/metrics`
//! endpoint read with a real HTTP client — each checked against what the test itself did.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;

const OPER: &str = WATCHER_OPER;

const METRICS: &str = r#"
[metrics]
enabled = true
address = "127.0.0.1:0"
"#;

fn config(extra: &str) -> String {
    format!("{BASE_CONFIG}{OPER}{extra}")
}

fn oper_up(c: &mut Client) {
    c.send("OPER watcher pw");
    c.expect_verb("381");
}

/// Everything up to the 219 of one STATS request.
fn stats(c: &mut Client, query: &str) -> Vec<Msg> {
    c.send(&format!("STATS {query}"));
    let lines = c.collect_until("219");
    let letter = query.split(' ').next().unwrap();
    assert_eq!(lines.last().unwrap().p(1), letter, "{:?}", lines.last().unwrap().raw);
    lines
}

fn numerics<'a>(lines: &'a [Msg], verb: &str) -> Vec<&'a Msg> {
    lines.iter().filter(|m| m.verb == verb).collect()
}

#[test]
fn stats_letters_tell_the_truth_across_shards() {
    let server = Server::with_config(2, &config(""));
    let clients = server.clients_on_both_shards("st", 2);
    let per_shard = {
        let mut n = [0u64; 2];
        for (_, s) in &clients {
            n[*s] += 1;
        }
        n
    };
    // Every client, on either shard, says something: 3 PRIVMSGs each to a channel on one
    // shard's home, and joins it.
    let mut clients: Vec<Client> = clients.into_iter().map(|(c, _)| c).collect();
    for c in clients.iter_mut() {
        c.send("JOIN #obs");
        c.expect_verb("366");
    }
    for c in clients.iter_mut() {
        for i in 0..3 {
            c.send(&format!("PRIVMSG #obs :line {i}"));
        }
        c.sync();
    }

    let mut watcher = server.client("watcher");
    let watcher_shard = server.shard_of(&watcher);

    // Before OPER: the sensitive letters are refused, each still ended by 219.
    for letter in ["S", "y", "c", "k", "d", "o"] {
        let lines = stats(&mut watcher, letter);
        assert_eq!(lines[0].verb, "481", "STATS {letter}: {:?}", lines[0].raw);
        assert_eq!(lines.len(), 2);
    }
    // Non-operators see no connection list (no server links exist), and unknown letters
    // get only 219.
    assert_eq!(stats(&mut watcher, "l").len(), 1);
    assert_eq!(stats(&mut watcher, "Q").len(), 1);
    let up = stats(&mut watcher, "u");
    assert_eq!(up[0].verb, "242");
    assert!(up[0].last().starts_with("Server Up 0 days, 0:00:"), "{}", up[0].raw);

    // STATS m is for everyone: the PRIVMSG count is the sum over both shards.
    let m = stats(&mut watcher, "m");
    let usage: HashMap<&str, &Msg> = numerics(&m, "212").into_iter().map(|l| (l.p(1), l)).collect();
    let privmsg = usage["PRIVMSG"];
    assert_eq!(privmsg.p(2), (3 * clients.len()).to_string(), "{}", privmsg.raw);
    let bytes: usize = privmsg.p(3).parse().unwrap();
    assert_eq!(bytes, 3 * clients.len() * "PRIVMSG #obs :line 0\r\n".len(), "bytes with CRLF");
    assert_eq!(privmsg.p(4), "0", "no remote (server) uses");
    assert_eq!(usage["JOIN"].p(2), clients.len().to_string());
    assert!(!usage.contains_key("KILL"), "unused commands are not listed");

    oper_up(&mut watcher);
    let total = clients.len() as u64 + 1;

    // STATS S: one line per shard with its connection and user counts.
    let s = stats(&mut watcher, "S");
    let shard_lines = numerics(&s, "249");
    assert_eq!(shard_lines.len(), 2, "{s:?}");
    for (i, l) in shard_lines.iter().enumerate() {
        let text = l.last();
        assert!(text.starts_with(&format!("shard {i} core ")), "{text}");
        let expect = per_shard[i] + u64::from(watcher_shard == i);
        assert!(text.contains(&format!(": {expect} connections (")), "shard {i}: {text}");
        assert!(text.contains(&format!(" asleep), {expect} users,")), "shard {i}: {text}");
        assert!(text.contains("msgs/s in") && text.contains("loop latency"), "{text}");
        // Nothing is stuck waiting for its sequence turn.
        assert!(text.ends_with("sequenced held 0 (oldest 0 ms, stalls 0)"), "{text}");
    }
    let homed: u64 = shard_lines
        .iter()
        .map(|l| l.last().split(" users, ").nth(1).unwrap().split(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(homed, 1, "one channel, homed on one shard");

    // STATS l for an operator: every connection of both shards, once, with its counters.
    let l = stats(&mut watcher, "l");
    let links = numerics(&l, "211");
    assert_eq!(links.len() as u64, total, "{:#?}", l.iter().map(|m| &m.raw).collect::<Vec<_>>());
    for c in &clients {
        let mine: Vec<_> = links.iter().filter(|m| m.p(1).starts_with(&format!("{}[", c.nick))).collect();
        assert_eq!(mine.len(), 1, "{} listed once", c.nick);
        let received: u64 = mine[0].p(5).parse().unwrap();
        // NICK, USER, JOIN, 3 PRIVMSG, PING (sync) at least.
        assert!(received >= 7, "{}", mine[0].raw);
        let sent: u64 = mine[0].p(3).parse().unwrap();
        assert!(sent >= 3 * clients.len() as u64, "{} got everyone's lines: {}", c.nick, mine[0].raw);
    }
    // A mask narrows the list.
    let nick = clients[0].nick.clone();
    let narrowed = stats(&mut watcher, &format!("l {nick}[*"));
    assert_eq!(numerics(&narrowed, "211").len(), 1);

    // STATS y: the class and its current use across both shards.
    let y = stats(&mut watcher, "y");
    let class = numerics(&y, "218");
    assert_eq!(class.len(), 1);
    assert_eq!(class[0].p(2), "users");
    assert!(class[0].last().starts_with(&format!("{total} connected;")), "{}", class[0].raw);

    // STATS c: connections accepted over both shards.
    let c = stats(&mut watcher, "c");
    let conn_line = numerics(&c, "249").into_iter().find(|l| l.last().starts_with("Connections:")).unwrap();
    assert!(
        conn_line.last().contains(&format!(": {total} now ({total} registered), {total} accepted")),
        "{}",
        conn_line.raw
    );

    // The client can go on at once after a gathered STATS: its next command is answered after 219.
    watcher.send("STATS m");
    watcher.send("PING after");
    let seen = watcher.collect_until("PONG");
    assert!(seen.iter().any(|m| m.verb == "219"));
    assert_eq!(seen.last().unwrap().last(), "after");
    server.stop();
}

/// The value of one series line (`name{labels} value`) in an exposition.
fn series(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' ')).map(|v| v.parse().unwrap())
}

fn sum_over_shards(text: &str, name: &str, extra: &str) -> f64 {
    (0..2).filter_map(|s| series(text, &format!("{name}{{shard=\"{s}\"{extra}}}"))).sum()
}

/// GET /metrics, answered 200 with the exposition text.
fn scrape(url: &str) -> String {
    let resp = ureq::get(url).timeout(Duration::from_secs(10)).call().expect("GET /metrics");
    assert_eq!(resp.status(), 200);
    assert!(resp.content_type().starts_with("text/plain"), "{}", resp.content_type());
    resp.into_string().unwrap()
}

#[test]
fn metrics_endpoint_counts_what_clients_did() {
    let server = Server::with_config(2, &config(METRICS));
    let line = server.wait_log(&["Metrics on http://"]);
    let url = line.split("Metrics on ").nth(1).unwrap().trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/metrics"), "{url}");

    let clients = server.clients_on_both_shards("mx", 2);
    let mut per_shard = [0f64; 2];
    for (_, s) in &clients {
        per_shard[*s] += 1.0;
    }
    let mut clients: Vec<Client> = clients.into_iter().map(|(c, _)| c).collect();
    let n = clients.len();
    for c in clients.iter_mut() {
        c.send("JOIN #metrics");
        c.expect_verb("366");
    }
    // Each client: 2 channel messages, one unknown command, one over-long line, a part.
    for c in clients.iter_mut() {
        c.send("PRIVMSG #metrics :one");
        c.send("PRIVMSG #metrics :two");
        c.send("FROBNICATE");
        c.send(&format!("PRIVMSG #metrics :{}", "x".repeat(600)));
        c.sync();
    }
    for c in clients.iter_mut() {
        c.send("PART #metrics");
        c.expect_verb("PART");
        c.sync();
    }

    // Counters: what the test did, summed over the shards.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = scrape(&url);
        if sum_over_shards(&text, "rustircd_parts_total", "") as usize == n || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for (s, &expect) in per_shard.iter().enumerate() {
        assert_eq!(series(&text, &format!("rustircd_connections{{shard=\"{s}\"}}")), Some(expect), "shard {s}");
        assert_eq!(series(&text, &format!("rustircd_users{{shard=\"{s}\"}}")), Some(expect), "shard {s}");
    }
    assert_eq!(series(&text, "rustircd_shards_reporting"), Some(2.0));
    assert_eq!(sum_over_shards(&text, "rustircd_joins_total", "") as usize, n);
    assert_eq!(sum_over_shards(&text, "rustircd_parts_total", "") as usize, n);
    assert_eq!(sum_over_shards(&text, "rustircd_commands_total", ",command=\"PRIVMSG\"") as usize, 2 * n);
    assert_eq!(sum_over_shards(&text, "rustircd_unknown_commands_total", "") as usize, n);
    assert_eq!(sum_over_shards(&text, "rustircd_parse_errors_total", "") as usize, n, "the 417s");
    assert_eq!(sum_over_shards(&text, "rustircd_connections_accepted_total", "") as usize, n);
    for s in 0..2 {
        for name in ["rustircd_sequencer_stalls_total", "rustircd_sequenced_held"] {
            assert_eq!(series(&text, &format!("{name}{{shard=\"{s}\"}}")), Some(0.0), "{name} of shard {s}");
        }
    }
    assert_eq!(sum_over_shards(&text, "rustircd_channels", ""), 0.0, "the channel is gone");
    // Every member got 2 messages from each other member: each shard that holds members
    // observed the latency of every message once.
    let latency = sum_over_shards(&text, "rustircd_message_latency_seconds_count", "");
    assert_eq!(latency as usize, 2 * n * 2, "{n} senders x 2 messages x 2 shards with members");
    // Broadcasts by channel size: all in the bucket of this channel's size.
    let size = if n <= 10 { "10" } else { "100" };
    let bucket =
        sum_over_shards(&text, "rustircd_channel_broadcast_latency_seconds_count", &format!(",size=\"{size}\""));
    assert_eq!(bucket, latency, "a channel of {n} members");
    let inf = sum_over_shards(&text, "rustircd_message_latency_seconds_bucket", ",le=\"+Inf\"");
    assert_eq!(inf, latency);
    let received = sum_over_shards(&text, "rustircd_messages_received_total", "");
    // NICK, USER, JOIN, 4 lines, 2 PINGs, PART per client at least.
    assert!(received as usize >= 10 * n, "{received}");
    assert!(sum_over_shards(&text, "rustircd_bytes_received_total", "") > 600.0 * n as f64);
    assert!(series(&text, "rustircd_open_fds").unwrap() >= n as f64);
    assert!(series(&text, "rustircd_resident_memory_bytes").unwrap() > 1e6);
    // The message cache: one rendering per distinct capability set, reused for the others.
    assert!(sum_over_shards(&text, "rustircd_cache_hits_total", ",cache=\"message\"") > 0.0);

    // A client that leaves is gone from the gauges.
    let leaving = clients.pop().unwrap();
    drop(leaving);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(&url);
        let users = sum_over_shards(&text, "rustircd_users", "");
        if users as usize == n - 1 {
            break;
        }
        assert!(Instant::now() < deadline, "users stayed at {users}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Other paths and methods get the HTTP answers one expects.
    let base = url.trim_end_matches("/metrics");
    match ureq::get(&format!("{base}/nope")).call() {
        Err(ureq::Error::Status(404, _)) => {}
        other => panic!("expected 404, got {other:?}"),
    }
    match ureq::post(&url).call() {
        Err(ureq::Error::Status(405, _)) => {}
        other => panic!("expected 405, got {other:?}"),
    }
    // The endpoint keeps serving after a client that sends garbage and one that hangs up.
    {
        use std::io::Write;
        let addr = base.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"\x00\xff garbage\r\n\r\n").unwrap();
        drop(std::net::TcpStream::connect(addr).unwrap());
    }
    assert!(scrape(&url).contains("rustircd_connections{shard=\"0\"}"));

    // A client that connects and says nothing does not hold up a scrape (the server would wait
    // for it if requests were served one after another); many slow ones: see below.
    let addr = base.trim_start_matches("http://").to_string();
    let silent = std::net::TcpStream::connect(&addr).unwrap();
    let quick = ureq::get(&url).timeout(Duration::from_secs(3)).call().expect("scrape beside a silent client");
    assert_eq!(quick.status(), 200);
    drop(silent);
    server.stop();
}

#[test]
fn metrics_are_off_by_default_and_refuse_a_public_address() {
    // With a [metrics] section that does not enable it: nothing served, not even on the
    // address it names.
    let server = Server::with_config(1, &config("[metrics]\naddress = \"127.0.0.1:19479\"\n"));
    assert!(!server.log_lines().iter().any(|l| l.contains("Metrics on")));
    assert!(std::net::TcpStream::connect("127.0.0.1:19479").is_err(), "metrics served while not enabled");
    server.stop();

    let dir = TempDir::new();
    let path = dir.0.join("bad.toml");
    std::fs::write(&path, config("[metrics]\nenabled = true\naddress = \"0.0.0.0:9477\"\n")).unwrap();
    let out = std::process::Command::new(bin()).arg("--check-config").arg("--config").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("metrics.address") && err.contains("allow_remote"), "{err}");
}

/// Half a request on a fresh connection to the metrics endpoint.
fn half_request(addr: &str) -> std::net::TcpStream {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: slow\r\n").unwrap();
    s
}

#[test]
fn slow_requests_do_not_starve_scrapes() {
    let server = Server::with_config(2, &config(METRICS));
    let line = server.wait_log(&["Metrics on http://"]);
    let url = line.split("Metrics on ").nth(1).unwrap().trim().to_string();
    let addr = url.trim_start_matches("http://").trim_end_matches("/metrics").to_string();
    // 50 clients that sent half a request and then a byte a second; one whose connection ended
    // comes back with another half request, so ~50 stay open throughout.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut slow: Vec<_> = (0..50).map(|_| half_request(&addr)).collect();
    let trickler = {
        let (stop, addr) = (stop.clone(), addr.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for s in slow.iter_mut() {
                    if std::io::Write::write_all(s, b"X").is_err() {
                        *s = half_request(&addr);
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    // Spread over more than a request's deadline, so some slow ones expire meanwhile.
    for i in 0..5 {
        let resp = ureq::get(&url)
            .timeout(Duration::from_secs(3))
            .call()
            .unwrap_or_else(|e| panic!("scrape {i} beside 50 slow clients: {e}"));
        assert_eq!(resp.status(), 200);
        assert!(resp.into_string().unwrap().contains("rustircd_connections{shard=\"0\"}"));
        std::thread::sleep(Duration::from_millis(800));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    trickler.join().unwrap();
    server.stop();
}
