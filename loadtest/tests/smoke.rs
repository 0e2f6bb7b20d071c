//! Every scenario, briefly, against the real rustircd: the harness counts exactly (nothing
//! lost, everything delivered) and prints one JSON line with the figures it promises.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The server, its address, its PID, and the directory it runs in (the embedded config keeps
/// its data in ./rustircd-data: never in the source tree).
struct Server(Child, String, u32, PathBuf);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.3);
    }
}

fn server() -> Server {
    server_with(&[])
}

fn server_with(extra: &[&str]) -> Server {
    let harness = PathBuf::from(env!("CARGO_BIN_EXE_rustircd-loadtest"));
    let bin = harness.with_file_name("rustircd");
    assert!(bin.exists(), "{} is missing: build the workspace (cargo test --workspace)", bin.display());
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("rustircd-smoke-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory to run in");
    let mut child = Command::new(bin)
        .current_dir(&dir)
        .args(["--cores", "2", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("RUST_LOG", "warn,rustircd=info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rustircd");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(a) = line.split("Listening on ").nth(1) {
                let _ = tx.send(a.trim().to_string());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(10)).expect("server listening");
    let pid = child.id();
    Server(child, addr, pid, dir)
}

fn run(srv: &Server, args: &[&str]) -> Value {
    run_with(srv, &[], args, &[])
}

/// Runs the harness with `before`, the scenario's `args`, then `--server ... --json` and `after`.
fn run_with(srv: &Server, before: &[&str], args: &[&str], after: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_rustircd-loadtest"))
        .args(before)
        .args(args)
        .args(["--server", &srv.1, "--server-pid", &srv.2.to_string(), "--json"])
        .args(after)
        .output()
        .expect("run the harness");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{args:?} failed: {}{}", stdout, String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {stdout}"))
}

#[test]
fn every_scenario_counts_exactly() {
    let srv = server();
    // First, while the server has no other clients: the phase ends when LUSERS is back to the
    // bystander alone.
    let v = run(&srv, &["mass-disconnect", "--clients", "50", "--quit-half"]);
    assert_eq!(v["completed"], true, "{v}");
    assert_eq!(v["users_before"], 51, "{v}");
    assert_eq!(v["users_after"], 1, "{v}");
    assert_eq!(v["quit_sent"], 25, "{v}");
    assert_eq!(v["bystander_pings_unanswered"], 0, "{v}");
    assert!(v["bystander_ping_latency_us"]["samples"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["server_cpu_seconds"].is_number(), "{v}");

    let v = run(&srv, &["connection-stress", "--clients", "200", "--rate", "1000"]);
    assert_eq!(v["registered"], 200, "{v}");
    assert_eq!(v["failures"], 0, "{v}");
    assert!(v["server_bytes_per_connection"].as_f64().unwrap() > 0.0, "{v}");

    let v = run(&srv, &["message-throughput", "--pairs", "5", "--rate", "500", "--duration", "1"]);
    assert_eq!(v["lost"], 0, "{v}");
    assert_eq!(v["sent"], v["delivered"], "{v}");
    assert!(v["sent"].as_u64().unwrap() >= 400, "{v}");
    assert!(v["delivery_latency_us"]["p50"].as_u64().unwrap() > 0, "{v}");

    // The common options first this time, and the latency distribution written.
    let dir = std::env::temp_dir().join(format!("rustircd-loadtest-hgrm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hgrm = dir.join("channel-load.hgrm");
    let v = run_with(
        &srv,
        &["--quiet", "--hgrm", hgrm.to_str().unwrap(), "--threads", "2"],
        &["channel-load", "--channels", "4", "--users-per-channel", "10", "--rate", "200", "--duration", "1"],
        &[],
    );
    assert_eq!(v["lost"], 0, "{v}");
    assert_eq!(v["delivered"].as_u64().unwrap(), v["sent"].as_u64().unwrap() * 9, "{v}");
    let text = std::fs::read_to_string(&hgrm).unwrap();
    let total = text.lines().find(|l| l.starts_with("#[Max")).unwrap().rsplit('=').next().unwrap();
    assert_eq!(total.trim_end_matches(']').trim(), v["delivered"].to_string(), "{text}");
    let svg = std::fs::read_to_string(hgrm.with_extension("svg")).unwrap();
    assert_eq!(svg.matches("<path ").count(), 1);
    assert_eq!(v["hgrm_files"].as_array().map(Vec::len), Some(2), "{v}");

    let v = run(&srv, &["big-channel", "--members", "100", "--messages", "3"]);
    assert!(v["join_to_366_us"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["delivery_latency_us"]["samples"], 3 * 99, "{v}");

    let v = run(&srv, &["mixed-workload", "--clients", "50", "--rate", "200", "--duration", "1"]);
    assert_eq!(v["unexpected_errors"], 0, "{v}");
    assert!(v["messages_received"].as_u64().unwrap() > 0, "{v}");

    // 120 messages, then LATEST * 100: each answer is a full batch of 100 (the embedded config
    // persists history in ./rustircd-data: an earlier run's entries may come before them).
    let v = run(&srv, &["history", "--fill", "120", "--queries", "5", "--limit", "100"]);
    assert_eq!(v["filled"], 120, "{v}");
    assert_eq!(v["entries_per_answer"], 100, "{v}");
    assert_eq!(v["chathistory_latency_us"]["samples"], 5, "{v}");
    // The harness's clients have no account: private history is kept per connection.
    let v = run(&srv, &["history", "--private", "--fill", "40", "--queries", "2", "--limit", "40"]);
    assert_eq!((v["filled"].as_u64(), v["entries_per_answer"].as_u64()), (Some(40), Some(40)), "{v}");

    let v = run(&srv, &["soak", "--clients", "20", "--rate", "100", "--duration", "4"]);
    assert!(v["rss_slope_kib_per_min"].is_number(), "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A server with link blocks for the harness's two peers.
const LINK_CONFIG: &str = r#"
[server]
name = "irc.smoke.test"
sid = "0SM"
network = "SmokeNet"
description = "link-burst smoke test"
motd = "smoke"

[server.admin]
location = "here"
email = "admin@smoke.test"

[[listen]]
address = "127.0.0.1:0"

[[classes]]
name = "local"
hosts = ["127.*"]
sendq = "16MiB"
recvq = "64KiB"
exempt = true

[[links]]
name = "peer-a.loadtest"
sid = "9LA"
send_password = "loadtest"
accept_password = "loadtest"

[[links]]
name = "peer-b.loadtest"
sid = "9LB"
send_password = "loadtest"
accept_password = "loadtest"
"#;

#[test]
fn link_burst_counts_every_user_and_quit() {
    let dir = std::env::temp_dir().join(format!("rustircd-loadtest-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("link.toml");
    std::fs::write(
        &cfg,
        LINK_CONFIG.replace("motd = \"smoke\"", &format!("motd = \"smoke\"\ndata_dir = {:?}", dir.join("data"))),
    )
    .unwrap();
    let srv = server_with(&["--config", cfg.to_str().unwrap()]);
    let hgrm = dir.join("link.hgrm");
    // 300 users, 20 channels of 10 (100 users in no channel), two observers (12 channels
    // each at most); closed link, then the same again split by SQUIT.
    for split in ["close", "squit"] {
        // with squit, the latency distributions too: one file per direction, one plot of all
        let extra: &[&str] = if split == "squit" { &["--hgrm", hgrm.to_str().unwrap()] } else { &[] };
        let v = run_with(
            &srv,
            &[],
            &[
                "link-burst",
                "--users",
                "300",
                "--channels",
                "20",
                "--per-channel",
                "10",
                "--messages",
                "20",
                "--observer-channels",
                "12",
                "--split",
                split,
            ],
            extra,
        );
        assert_eq!(v["burst_lines"], 300 + 20 + 3, "{v}");
        assert_eq!(v["lusers_after_pong"], 302, "{v}");
        assert_eq!(v["names_burst_members"], 200, "{v}");
        assert_eq!(v["burst_out_uids"], 302, "{v}");
        assert_eq!(v["burst_out_sjoin_members"], 200 + 20, "{v}");
        assert_eq!(v["messages_lost"], 0, "{v}");
        assert_eq!(v["client_to_peer_privmsg_latency_us"]["samples"], 20, "{v}");
        assert_eq!(v["peer_to_client_channel_latency_us"]["samples"], 20, "{v}");
        assert_eq!(v["split_completed"], true, "{v}");
        assert_eq!(v["split_quits_expected"], 200, "{v}");
        assert_eq!(v["split_quits_seen"], 200, "{v}");
        assert_eq!(v["split_quits_duplicate"], 0, "{v}");
        assert_eq!(v["split_quits_bad_reason"], 0, "{v}");
        assert!(v["burst_in_ms"].as_f64().unwrap() > 0.0, "{v}");
        assert!(v["burst_in_server_cpu_ms"].is_number(), "{v}");
    }
    for d in ["client_to_peer_privmsg", "peer_to_client_privmsg", "client_to_peer_channel", "peer_to_client_channel"] {
        let text = std::fs::read_to_string(dir.join(format!("link.{d}.hgrm"))).unwrap();
        assert!(text.contains("Total count    =           20]"), "{d}: {text}");
        assert!(dir.join(format!("link.{d}.svg")).exists(), "{d}");
    }
    let all = std::fs::read_to_string(hgrm.with_extension("svg")).unwrap();
    assert_eq!(all.matches("<path ").count(), 4);
    drop(srv);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refuses_non_loopback_targets() {
    let out = Command::new(env!("CARGO_BIN_EXE_rustircd-loadtest"))
        .args(["connection-stress", "--server", "10.1.2.3:6667"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only loopback"));
}
