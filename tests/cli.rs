//! The command line, config checking, the embedded default and the connection capacity.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use common::{bin, Client, TempDir, TIMEOUT};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn help_and_version() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("--cores N") && out.contains("--check-config"), "{out}");
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("rustircd "), "{out}");
    let (code, _, err) = run(&["--frobnicate"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown argument"), "{err}");
}

#[test]
fn check_config_reports_every_error() {
    let dir = TempDir::new();
    let good = dir.0.join("good.toml");
    std::fs::write(&good, common::BASE_CONFIG).unwrap();
    let (code, out, _) = run(&["--check-config", "--config", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("configuration OK"));

    let bad = dir.0.join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nname = \"irc.x.net\"\nsid = 7\n[[classes]]\nname = \"a\"\nping_frequency = \"soon\"\nfoo = 1\n",
    )
    .unwrap();
    let (code, _, err) = run(&["--check-config", "--config", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    let path = bad.to_str().unwrap();
    assert!(err.contains(&format!("{path}:3: server.sid: expected a string")), "{err}");
    assert!(err.contains(&format!("{path}:6: classes[0].ping_frequency: is not a duration")), "{err}");
    assert!(err.contains(&format!("{path}:7: classes[0].foo: unknown key")), "{err}");
    assert!(err.contains("3 error(s)"), "{err}");

    let (code, _, err) = run(&["--check-config", "--config", "/nonexistent/rustircd.toml"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/rustircd.toml: cannot read"), "{err}");

    // the embedded default checks clean
    let (code, out, _) = run(&["--check-config"]);
    assert_eq!(code, 0);
    assert!(out.contains("embedded"), "{out}");
}

#[test]
fn too_many_cores_is_a_clear_error() {
    let (code, _, err) = run(&["--cores", "4096", "--listen", "127.0.0.1:0"]);
    assert_eq!(code, 1);
    assert!(err.contains("--cores 4096") && err.contains("core"), "{err}");
}

#[test]
fn embedded_default_serves() {
    // No --config: the compiled-in default, with the listener replaced (run in a temporary
    // directory: the default keeps its data in ./rustircd-data).
    let dir = TempDir::new();
    let mut child = Command::new(bin())
        .current_dir(&dir.0)
        .args(["--cores", "2", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = listening_addr(&mut child);
    let mut c = Client::connect(addr);
    c.register("dflt");
    c.send("VERSION");
    c.expect_verb("351");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
}

fn listening_addr(child: &mut std::process::Child) -> std::net::SocketAddr {
    use std::io::BufRead;
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(a) = line.split("Listening on ").nth(1) {
                let _ = tx.send(a.trim().to_string());
            }
        }
    });
    rx.recv_timeout(TIMEOUT).expect("Listening on").parse().unwrap()
}

#[test]
fn at_capacity_a_new_connection_gets_error_and_nothing_else_suffers() {
    // An open-file limit of 100 leaves capacity for 100 - (32 + 16 per shard) = 36 connections.
    let dir = TempDir::new();
    let mut cmd = Command::new(bin());
    cmd.current_dir(&dir.0).args(["--cores", "2", "--listen", "127.0.0.1:0"]).stderr(Stdio::piped());
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: 100, rlim_max: 100 };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let addr = listening_addr(&mut child);
    let mut first = Client::connect(addr);
    first.register("first");
    let mut held = Vec::new();
    for _ in 0..35 {
        held.push(Client::connect(addr));
    }
    // everyone so far is served
    for c in held.iter_mut() {
        c.send("PING :in");
        assert_eq!(c.expect_verb("PONG").last(), "in");
    }
    let mut extra = Client::connect(addr);
    let seen = extra.expect_closed();
    assert!(seen.iter().any(|m| m.verb == "ERROR" && m.last().contains("Server is full")), "{seen:?}");
    first.send("PING :still");
    assert_eq!(first.expect_verb("PONG").last(), "still");
    // capacity frees up when someone leaves
    held.pop();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut again = Client::connect(addr);
    again.register("again");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
}
