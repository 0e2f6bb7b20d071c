//! The harness' command line and its failures, without an IRC server: options in any order,
//! help and completions, `plot`, and a prompt, clear error when nothing listens or the server
//! sends ERROR and closes. (`smoke.rs` runs the scenarios against rustircd.)

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn harness(args: &[&str]) -> (Output, Duration) {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_rustircd-loadtest")).args(args).output().expect("run the harness");
    (out, t.elapsed())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A loopback port with nothing listening on it (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_refused_connection_fails_at_once_naming_the_address() {
    let addr = format!("127.0.0.1:{}", closed_port());
    for scenario in [
        &["channel-load", "--channels", "2", "--users-per-channel", "2"][..],
        &["connection-stress", "--clients", "50"],
        &["connection-stress", "--clients", "600", "--rate", "0"],
        &["mass-disconnect", "--clients", "5"],
        &["link-burst", "--users", "10", "--channels", "2"],
    ] {
        let mut args = scenario.to_vec();
        args.extend(["--server", &addr, "--quiet"]);
        let (out, took) = harness(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(took < Duration::from_secs(10), "{args:?} took {took:?}");
        assert!(err.contains(&addr) && err.contains("refused"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    }
}

#[test]
fn common_options_before_the_scenario() {
    // Before, `--server` ahead of the scenario was "unknown option"; now it parses, and the
    // run fails only because nothing listens.
    let addr = format!("127.0.0.1:{}", closed_port());
    let (out, took) =
        harness(&["--server", &addr, "--json", "--quiet", "channel-load", "--channels", "1", "--duration", "1"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("cannot connect to {addr}")), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // mixed: some before, some after
    let (out, _) = harness(&["--server-pid", "1", "big-channel", "--members", "3", "--server", &addr, "--quiet"]);
    assert!(text(&out.stderr).contains(&format!("cannot connect to {addr}")), "{}", text(&out.stderr));
}

#[test]
fn a_server_that_sends_error_and_closes_is_quoted() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    listener.set_nonblocking(true).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut c, _)) => {
                        c.set_nonblocking(false).unwrap();
                        c.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
                        let _ = c.read(&mut [0u8; 512]);
                        let _ = c.write_all(b"ERROR :Closing Link: 127.0.0.1 (K-Lined: loadtest go away)\r\n");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        })
    };
    for scenario in [&["big-channel", "--members", "4"][..], &["connection-stress", "--clients", "3"]] {
        let mut args = scenario.to_vec();
        args.extend(["--server", &addr, "--quiet"]);
        let (out, took) = harness(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("K-Lined: loadtest go away") && err.contains(&addr), "{args:?}: {err}");
        assert!(took < Duration::from_secs(10), "{args:?} took {took:?}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    server.join().unwrap();
}

#[test]
fn help_lists_every_scenario_and_its_options() {
    let (out, _) = harness(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for s in [
        "connection-stress",
        "message-throughput",
        "channel-load",
        "big-channel",
        "mixed-workload",
        "soak",
        "mass-disconnect",
        "link-burst",
        "history",
        "plot",
        "completions",
    ] {
        assert!(help.contains(s), "{s} missing from --help");
    }
    let (out, _) = harness(&["channel-load", "--help"]);
    let help = text(&out.stdout);
    for o in
        ["--channels", "--users-per-channel", "--rate", "--duration", "--server", "--server-pid", "--json", "--hgrm"]
    {
        assert!(help.contains(o), "{o} missing from channel-load --help:\n{help}");
    }
    let (out, _) = harness(&["link-burst", "--help"]);
    let help = text(&out.stdout);
    for o in ["--split", "--peer2-sid", "--client-server", "--callgrind", "--no-burst-out", "--observer-channels"] {
        assert!(help.contains(o), "{o} missing from link-burst --help:\n{help}");
    }
    // usage errors exit 2, as before
    let (out, _) = harness(&["channel-load", "--no-such-option"]);
    assert_eq!(out.status.code(), Some(2));
    let (out, _) = harness(&["connection-stress", "--server", "10.1.2.3:6667"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("only loopback"));
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let (out, _) = harness(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        assert!(script.contains("rustircd-loadtest"), "{shell}");
        assert!(script.contains("channel-load") && script.contains("users-per-channel"), "{shell}");
    }
    let (out, _) = harness(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn plot_draws_one_curve_per_file() {
    let dir = std::env::temp_dir().join(format!("rustircd-loadtest-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Two small distributions in HdrHistogram's text form (values in ms).
    let hgrm = |scale: f64| {
        let mut s = format!("{:>12} {:>14} {:>10} {:>14}\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
        for (i, q) in [0.0, 0.5, 0.9, 0.99, 0.999].iter().enumerate() {
            s += &format!(
                "{:12.3} {q:2.12} {:10} {:14.2}\n",
                scale * (i + 1) as f64,
                (q * 1000.0) as u64 + 1,
                1.0 / (1.0 - q)
            );
        }
        s += &format!("{:12.3} {:2.12} {:10}\n", scale * 9.0, 1.0, 1000);
        s += "#[Mean    =        1.000, StdDeviation   =        1.000]\n";
        s += &format!("#[Max     = {:12.3}, Total count    = {:12}]\n", scale * 9.0, 1000);
        s
    };
    let files: Vec<String> = ["rustircd", "hybrid", "inspircd"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let p = dir.join(format!("{name}.hgrm"));
            std::fs::write(&p, hgrm(0.1 * (i + 1) as f64)).unwrap();
            p.to_string_lossy().into_owned()
        })
        .collect();
    let out_svg = dir.join("cmp.svg");
    let mut args = vec!["plot", "--out", out_svg.to_str().unwrap()];
    args.extend(files.iter().map(String::as_str));
    let (out, _) = harness(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let svg = std::fs::read_to_string(&out_svg).unwrap();
    assert_eq!(svg.matches("<path ").count(), 3);
    for name in ["rustircd", "hybrid", "inspircd"] {
        assert!(svg.contains(&format!(">{name}<")), "{name} not in the legend");
    }
    // a missing file is named
    let (out, _) = harness(&["plot", "--out", out_svg.to_str().unwrap(), "/no/such.hgrm"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/no/such.hgrm"));
    let _ = std::fs::remove_dir_all(&dir);
}
