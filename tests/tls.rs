//! TLS: a real rustls client against a TLS listener of the real binary (`--cores 2`), `+Z` and
//! 671, the `sts` policy on the plain port, broken handshakes, and a certificate reload on
//! SIGHUP that drops nobody; pending handshakes are admitted (per-IP limit) like plain
//! connections and get one deadline from accept. A TLS-only channel (`+S`) takes TLS clients
//! from either shard and refuses plain ones (489).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{Msg, Server, TempDir, BASE_CONFIG};
use rustls::pki_types::{CertificateDer, ServerName};

struct Cert {
    der: Vec<u8>,
}

fn make_cert(dir: &Path, name: &str) -> Cert {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), name.to_string()]).expect("certificate");
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    Cert { der: ck.cert.der().to_vec() }
}

struct TlsClient {
    r: BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>,
    peer_cert: Vec<u8>,
}

impl TlsClient {
    fn connect(addr: SocketAddr, trust: &Cert) -> TlsClient {
        TlsClient::connect_as(addr, trust, None)
    }

    /// Connects trusting `trust`, presenting `client` (its certificate and key) if given.
    fn connect_as(
        addr: SocketAddr,
        trust: &Cert,
        client: Option<(Vec<u8>, rustls::pki_types::PrivateKeyDer<'static>)>,
    ) -> TlsClient {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(trust.der.clone())).unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let cfg = match client {
            Some((der, key)) => builder.with_client_auth_cert(vec![CertificateDer::from(der)], key).unwrap(),
            None => builder.with_no_client_auth(),
        };
        let conn = rustls::ClientConnection::new(Arc::new(cfg), ServerName::try_from("localhost").unwrap()).unwrap();
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut s = rustls::StreamOwned::new(conn, tcp);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock).expect("TLS handshake");
        }
        let peer_cert = s.conn.peer_certificates().unwrap()[0].to_vec();
        TlsClient { r: BufReader::new(s), peer_cert }
    }

    fn local_port(&self) -> u16 {
        self.r.get_ref().sock.local_addr().unwrap().port()
    }

    fn send(&mut self, line: &str) {
        let s = self.r.get_mut();
        s.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        s.flush().unwrap();
    }

    /// `CAP LS 302`, every line of the reply: the capabilities offered, space-separated.
    fn cap_ls(&mut self) -> String {
        self.send("CAP LS 302");
        let mut caps = Vec::new();
        loop {
            let m = self.expect("CAP");
            caps.push(m.last().to_string());
            if m.params.len() < 4 || m.p(2) != "*" {
                return caps.join(" ");
            }
        }
    }

    fn expect(&mut self, verb: &str) -> Msg {
        let mut seen = Vec::new();
        loop {
            let mut l = String::new();
            let n = self.r.read_line(&mut l).unwrap_or(0);
            assert!(n > 0, "connection ended waiting for {verb}: {seen:?}");
            let m = Msg::parse(l.trim_end());
            if m.verb == verb {
                return m;
            }
            seen.push(m.raw);
        }
    }
}

fn tls_config(dir: &Path) -> String {
    format!(
        "{BASE_CONFIG}\n[tls]\nsts_duration = \"1h\"\n\n[[listen]]\naddress = \"127.0.0.1:0\"\ntls = true\ncert = \"{}\"\nkey = \"{}\"\n",
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    )
}

#[test]
fn tls_clients_sts_and_reload() {
    let dir = TempDir::new();
    let first = make_cert(&dir.0, "first.test");
    let srv = Server::with_config(2, &tls_config(&dir.0));
    assert_eq!(srv.addrs.len(), 2, "a plain and a TLS listener: {:?}", srv.addrs);
    let tls_addr = srv.addrs[1];

    let mut t = TlsClient::connect(tls_addr, &first);
    let ls = t.cap_ls();
    assert!(ls.split(' ').any(|c| c == "sts=duration=3600"), "{ls}");
    t.send("NICK secure");
    t.send("USER secure 0 * :over TLS");
    t.send("CAP END");
    t.expect("001");
    t.send("MODE secure");
    assert!(t.expect("221").p(1).contains('Z'));
    srv.wait_log(&["Client connected", "tls"]);

    // someone on the plain port sees the TLS user's 671, and the policy pointing to TLS
    let mut p = srv.connect();
    let ls = p.cap_ls();
    let want = format!("sts=port={},duration=3600", tls_addr.port());
    assert!(ls.split(' ').any(|c| c == want), "{want} not in {ls}");
    p.send("CAP END");
    p.register("plainuser");
    p.send("WHOIS secure");
    let lines = p.collect_until("318");
    assert!(lines.iter().any(|m| m.verb == "671"), "{lines:?}");

    // garbage where a handshake should be ends only that connection
    let mut junk = TcpStream::connect(tls_addr).unwrap();
    junk.write_all(b"NICK notls\r\nUSER x 0 * :x\r\n").unwrap();
    junk.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 512];
    let n = std::io::Read::read(&mut junk, &mut buf).unwrap_or(0);
    // whatever alert came back, no IRC line did, and the connection ends
    assert!(!String::from_utf8_lossy(&buf[..n]).contains(" 001 "));
    t.send("PING :after-junk");
    assert_eq!(t.expect("PONG").last(), "after-junk");

    // a new certificate on SIGHUP: new connections get it, the old one stays
    let second = make_cert(&dir.0, "second.test");
    srv.signal(1);
    srv.wait_log(&["Shard 0: listener 1 uses the new TLS settings"]);
    srv.wait_log(&["Shard 1: listener 1 uses the new TLS settings"]);
    let t2 = TlsClient::connect(tls_addr, &second);
    assert_eq!(t2.peer_cert, second.der);
    assert_ne!(t.peer_cert, t2.peer_cert);
    t.send("PING :still-here");
    assert_eq!(t.expect("PONG").last(), "still-here");
}

#[test]
fn bad_certificate_files_are_config_errors_naming_the_file() {
    let dir = TempDir::new();
    std::fs::write(dir.0.join("cert.pem"), "not a certificate").unwrap();
    std::fs::write(dir.0.join("key.pem"), "not a key").unwrap();
    let cfg = dir.0.join("rustircd.toml");
    std::fs::write(&cfg, tls_config(&dir.0)).unwrap();
    let out =
        std::process::Command::new(common::bin()).args(["--check-config", "--config"]).arg(&cfg).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("listen[0].tls") && err.contains("cert.pem"), "{err}");
    // a missing key file
    make_cert(&dir.0, "x.test");
    std::fs::remove_file(dir.0.join("key.pem")).unwrap();
    let out =
        std::process::Command::new(common::bin()).args(["--check-config", "--config"]).arg(&cfg).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key.pem") && err.contains("cannot read the private key"), "{err}");
}

/// Whether the server ends `s` within `within`: EOF or a reset counts, silence does not.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 64];
    match std::io::Read::read(s, &mut buf) {
        Ok(0) => true,
        Ok(n) => panic!("bytes before a handshake: {:?}", &buf[..n]),
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

#[test]
fn pending_handshakes_count_against_the_per_ip_limit() {
    let dir = TempDir::new();
    make_cert(&dir.0, "limits.test");
    let cfg = tls_config(&dir.0).replace("exempt = true", "exempt = false\nmax_per_ip = 3\nthrottle_count = 0");
    let srv = Server::with_config(2, &cfg);
    let tls_addr = srv.addrs[1];
    // three connections that never start their handshake hold the address's three places...
    let mut held = Vec::new();
    for i in 0..3 {
        held.push(TcpStream::connect(tls_addr).unwrap());
        srv.wait_log(&["Client connected", "tls", &format!(":{}]", held[i].local_addr().unwrap().port())]);
        // let the other shard hear of it before the next one (see "Admission" in architecture.md)
        std::thread::sleep(Duration::from_millis(200));
    }
    // ...so more from it are closed at once, whichever shard takes them
    for _ in 0..4 {
        let mut extra = TcpStream::connect(tls_addr).unwrap();
        assert!(closed_within(&mut extra, Duration::from_secs(3)), "a 4th pending handshake was kept");
    }
    srv.wait_log(&["Client refused", "Too many connections from your IP"]);
    for s in &mut held {
        assert!(!closed_within(s, Duration::from_millis(100)), "an admitted handshake was dropped");
    }
    // a plain client from the same address is refused too, one from elsewhere registers
    let mut same = srv.connect();
    let seen = same.expect_closed();
    assert!(seen.iter().any(|m| m.verb == "ERROR" && m.last().contains("Too many connections")), "{seen:?}");
    srv.connect_from("127.0.0.5").register("elsewhere");
    // the held ones leaving give their places back
    drop(held);
    let mut tries = 0;
    loop {
        let mut c = srv.connect();
        // A refused connection may be closed before the probe is written.
        let sent = c.try_send("PING :probe");
        match c.read_line(Duration::from_secs(5)).filter(|_| sent) {
            Some(m) if m.verb == "PONG" => break,
            other => {
                tries += 1;
                assert!(tries < 40, "places not released: {other:?}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// The first bytes a real TLS client sends (its ClientHello).
fn client_hello() -> Vec<u8> {
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let mut conn = rustls::ClientConnection::new(Arc::new(cfg), ServerName::try_from("localhost").unwrap()).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

#[test]
fn a_trickled_handshake_ends_at_its_deadline() {
    let dir = TempDir::new();
    make_cert(&dir.0, "trickle.test");
    let srv = Server::with_config(2, &tls_config(&dir.0));
    let hello = client_hello();
    let mut s = TcpStream::connect(srv.addrs[1]).unwrap();
    let start = std::time::Instant::now();
    // one byte a second: the handshake never completes, and each byte is progress
    for b in &hello {
        if s.write_all(std::slice::from_ref(b)).is_err() || closed_within(&mut s, Duration::from_secs(1)) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(16), "a trickled handshake held its place past its deadline");
    }
    assert!(start.elapsed() < Duration::from_secs(16), "the ClientHello ({} bytes) ran out first", hello.len());
}

/// A TLS listener with no `[tls]` section still offers STS, with the default duration (30
/// days), not 0 — which would tell a client on TLS to drop its policy.
#[test]
fn sts_without_a_tls_section_has_the_default_duration() {
    let dir = TempDir::new();
    let cert = make_cert(&dir.0, "nosection.test");
    let cfg = tls_config(&dir.0).replace("[tls]\nsts_duration = \"1h\"\n", "");
    let srv = Server::with_config(2, &cfg);
    let tls_addr = srv.addrs[1];
    let mut t = TlsClient::connect(tls_addr, &cert);
    let ls = t.cap_ls();
    assert!(ls.split(' ').any(|c| c == "sts=duration=2592000"), "{ls}");
}

impl TlsClient {
    /// A TLS client that presents its own (self-signed) certificate; returns it too (DER).
    fn connect_with_cert(addr: SocketAddr, trust: &Cert, name: &str) -> (TlsClient, Vec<u8>) {
        let ck = rcgen::generate_simple_self_signed(vec![name.to_string()]).expect("client certificate");
        let der = ck.cert.der().to_vec();
        let key = rustls::pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
        (TlsClient::connect_as(addr, trust, Some((der.clone(), key))), der)
    }
}

/// CertFP: a TLS client's certificate is fingerprinted (SHA-256, lower-case hex) and goes to
/// services — with `AUTHENTICATE EXTERNAL` (`S EXTERNAL <fp>`) and, once it is registered, as
/// `ENCAP * CERTFP`; a client without a certificate still connects (it is asked for, not
/// required), and its EXTERNAL goes without one.
#[test]
fn a_client_certificate_goes_to_services_for_sasl_external() {
    let dir = TempDir::new();
    let server_cert = make_cert(&dir.0, "irc.test.local");
    let config = tls_config(&dir.0).replace("motd = \"test motd\"", "motd = \"test motd\"\nservices = [\"services.test\"]")
        + "\n[[links]]\nname = \"services.test\"\nsid = \"3SV\"\nsend_password = \"tothem\"\naccept_password = \"tous\"\n";
    let srv = Server::with_config(2, &config);
    let tls_addr = srv.addrs[1];
    // Scripted services on the plain port, with SASL mechanisms.
    let mut s = common::Client::connect(srv.addr);
    s.send("PASS tous TS 6 :3SV");
    s.send("CAPAB :ENCAP EOB TBURST");
    s.send("SERVER services.test 1 3SV + :services");
    s.expect("our EOB", |m| m.verb == "EOB");
    s.send(&format!(
        ":3SV SVINFO 6 6 0 :{}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    ));
    s.send(":3SV EOB");
    s.send(":3SV ENCAP * MECHLIST :PLAIN,EXTERNAL");
    s.send("PING :3SV");
    s.expect_verb("PONG");
    std::thread::sleep(Duration::from_millis(100));

    let (mut t, der) = TlsClient::connect_with_cert(tls_addr, &server_cert, "me.example");
    let fp: String = {
        use std::fmt::Write as _;
        let digest = rustircd::certpin::sha256(&der);
        digest.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    };
    t.send("CAP REQ :sasl");
    assert_eq!(t.expect("CAP").p(1), "ACK");
    t.send("NICK certuser");
    t.send("USER certuser 0 * :cert");
    t.send("AUTHENTICATE EXTERNAL");
    let h = s.expect("H", |m| m.verb == "ENCAP" && m.p(1) == "SASL" && m.p(4) == "H");
    assert_eq!(h.p(7), "S", "a TLS client: {}", h.raw);
    let st = s.expect("S", |m| m.verb == "ENCAP" && m.p(1) == "SASL" && m.p(4) == "S");
    assert_eq!((st.p(5), st.p(6)), ("EXTERNAL", fp.as_str()), "{}", st.raw);
    let uid = st.p(2).to_string();
    s.send(&format!(":3SV ENCAP irc.test.local SVSLOGIN {uid} * * * certacct"));
    s.send(&format!(":3SV ENCAP irc.test.local SASL 3SVAAAAAC {uid} D S"));
    assert_eq!(t.expect("900").p(2), "certacct");
    t.expect("903");
    t.send("CAP END");
    t.expect("001");
    let c = s.expect("CERTFP", |m| m.verb == "ENCAP" && m.p(1) == "CERTFP");
    assert_eq!((c.source.as_deref(), c.p(2)), (Some(uid.as_str()), fp.as_str()), "{}", c.raw);

    // Without a certificate: connected all the same; EXTERNAL goes without a fingerprint.
    let mut plain = TlsClient::connect(tls_addr, &server_cert);
    plain.send("CAP REQ :sasl");
    plain.expect("CAP");
    plain.send("AUTHENTICATE EXTERNAL");
    let st = s.expect("S", |m| m.verb == "ENCAP" && m.p(1) == "SASL" && m.p(4) == "S");
    assert_eq!(st.params.len(), 6, "no fingerprint: {}", st.raw);
    drop(plain);
}

/// `+S`: a channel of TLS connections. Set by a plain op on one shard; TLS users on both
/// shards join, plain ones on both get 489 with the reason (an invitation does not help); the
/// op set it as any mode (a plain member stays).
#[test]
fn a_tls_only_channel_takes_tls_connections_only() {
    let dir = TempDir::new();
    let cert = make_cert(&dir.0, "s.test");
    let srv = Server::with_config(2, &tls_config(&dir.0));
    let tls_addr = srv.addrs[1];
    let mut secure: Vec<Option<TlsClient>> = vec![None, None];
    for i in 0..100 {
        if secure.iter().all(Option::is_some) {
            break;
        }
        let mut t = TlsClient::connect(tls_addr, &cert);
        let shard = srv.shard_of_port(t.local_port());
        if secure[shard].is_none() {
            t.send(&format!("NICK tls{shard}"));
            t.send(&format!("USER tls{shard} 0 * :tls {i}"));
            t.expect("001");
            secure[shard] = Some(t);
        }
    }
    let mut secure: Vec<TlsClient> = secure.into_iter().map(|t| t.expect("a TLS client on each shard")).collect();
    let mut op = srv.client_on_shard("op", 0);
    op.send("JOIN #tls");
    op.expect_verb("366");
    op.send("MODE #tls +S");
    assert_eq!(op.expect_verb("MODE").p(1), "+S");
    for shard in [0, 1] {
        let mut plain = srv.client_on_shard(&format!("plain{shard}"), shard);
        op.send(&format!("INVITE plain{shard} #tls"));
        plain.expect_verb("INVITE");
        plain.send("JOIN #tls");
        let m = plain.expect("489", |m| m.verb == "489" || m.verb == "JOIN");
        assert_eq!((m.verb.as_str(), m.p(1)), ("489", "#tls"), "{}", m.raw);
        assert!(m.last().contains("TLS"), "{}", m.raw);
        let t = &mut secure[shard];
        t.send("JOIN #tls");
        t.expect("366");
        let joined = op.expect_verb("JOIN");
        assert!(joined.source.as_deref().unwrap().starts_with(&format!("tls{shard}!")), "{}", joined.raw);
    }
    op.send("MODE #tls");
    assert_eq!(op.expect_verb("324").p(2), "+Snt");
    // Only ops change it.
    secure[1].send("MODE #tls -S");
    assert_eq!(secure[1].expect("482").p(1), "#tls");
}
