//! TLS for outgoing server links, against the real binary: A dials B's TLS listener with
//! `[[links]] tls = true` and B's certificate fingerprint (printed by `rustircd --fingerprint`);
//! the link comes up and users meet across it. With a fingerprint that is not B's, there is no
//! link, and A logs the fingerprint it saw so an operator can copy it.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{bin, Server, TempDir, BASE_CONFIG};

/// A self-signed certificate and key in `dir` (cert.pem, key.pem), as an operator would make
/// one; returns the certificate's DER.
fn make_cert(dir: &Path, name: &str) -> Vec<u8> {
    let ck = rcgen::generate_simple_self_signed(vec![name.to_string()]).expect("certificate");
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    ck.cert.der().to_vec()
}

/// What `rustircd --fingerprint FILE` prints.
fn fingerprint_cli(cert: &Path) -> String {
    let out = Command::new(bin()).arg("--fingerprint").arg(cert).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// B (irc.b.test, 2BB): a plain and a TLS listener, and a block for A, which dials it.
fn server_b(dir: &Path) -> Server {
    let cfg = BASE_CONFIG.replace("irc.test.local", "irc.b.test").replace("0TS", "2BB")
        + &format!(
            "\n[[listen]]\naddress = \"127.0.0.1:0\"\ntls = true\ncert = \"{}\"\nkey = \"{}\"\n\
             \n[[links]]\nname = \"irc.test.local\"\nsid = \"0TS\"\nsend_password = \"a2b\"\naccept_password = \"b2a\"\n",
            dir.join("cert.pem").display(),
            dir.join("key.pem").display()
        );
    let b = Server::with_config(2, &cfg);
    assert_eq!(b.addrs.len(), 2, "a plain and a TLS listener: {:?}", b.addrs);
    b
}

/// A (irc.test.local, 0TS): dials B's TLS listener, pinning `fingerprint`.
fn server_a(b: &Server, fingerprint: &str) -> Server {
    Server::with_config(
        2,
        &format!(
            "{BASE_CONFIG}\n[[links]]\nname = \"irc.b.test\"\nsid = \"2BB\"\naddress = \"{}\"\ntls = true\n\
             fingerprint = \"{fingerprint}\"\nsend_password = \"b2a\"\naccept_password = \"a2b\"\n\
             autoconnect = true\nreconnect_min = \"1s\"\nreconnect_max = \"2s\"\n",
            b.addrs[1]
        ),
    )
}

#[test]
fn a_tls_link_with_the_right_fingerprint_comes_up() {
    let dir = TempDir::new();
    let der = make_cert(&dir.0, "irc.b.test");
    let fp = fingerprint_cli(&dir.0.join("cert.pem"));
    assert_eq!(fp, rustircd::certpin::to_hex(&rustircd::certpin::sha256(&der)));
    assert_eq!(fp.len(), 95, "32 bytes, colons between: {fp}");
    let b = server_b(&dir.0);
    // Lower case without colons is accepted as well.
    let a = server_a(&b, &fp.replace(':', "").to_lowercase());
    a.wait_log(&["Link connecting: irc.b.test", "tls"]);
    a.wait_log(&["Link established: irc.b.test"]);
    b.wait_log(&["Link established: irc.test.local"]);

    let mut bob = b.client("bob");
    bob.sync();
    let mut alice = a.client("alice");
    let mut found = false;
    for _ in 0..100 {
        alice.send("WHOIS bob");
        let m = alice.expect("311 or 401", |m| m.verb == "311" || m.verb == "401");
        alice.expect_verb("318");
        if m.verb == "311" {
            found = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(found, "alice on A sees bob on B");
    alice.send("PRIVMSG bob :over TLS");
    let m = bob.expect_verb("PRIVMSG");
    assert_eq!(m.p(1), "over TLS");
    assert!(m.source.as_deref().unwrap().starts_with("alice!"));
    assert!(!a.log_lines().iter().any(|l| l.contains("mismatch")));
}

#[test]
fn a_tls_link_with_another_fingerprint_is_refused() {
    let dir = TempDir::new();
    let der = make_cert(&dir.0, "irc.b.test");
    let seen = rustircd::certpin::to_hex(&rustircd::certpin::sha256(&der));
    let other = TempDir::new();
    make_cert(&other.0, "someone.else");
    let wrong = fingerprint_cli(&other.0.join("cert.pem"));
    assert_ne!(seen, wrong);
    let b = server_b(&dir.0);
    let a = server_a(&b, &wrong);
    // A says which certificate it was shown, and which it wanted.
    let line = a.wait_log(&["Link irc.b.test: certificate fingerprint mismatch", &seen]);
    assert!(line.contains(&wrong), "{line}");
    a.wait_log(&["Link irc.b.test: connection failed"]);
    a.wait_log(&["Link irc.b.test: next attempt in"]);
    // It keeps trying, and never links.
    let began = std::time::Instant::now();
    while a.log_lines().iter().filter(|l| l.contains("fingerprint mismatch")).count() < 2 {
        assert!(began.elapsed() < common::TIMEOUT, "no second attempt: {:#?}", a.log_lines());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!a.log_lines().iter().any(|l| l.contains("Link established")), "{:#?}", a.log_lines());
    assert!(!b.log_lines().iter().any(|l| l.contains("Link established")), "{:#?}", b.log_lines());
}
