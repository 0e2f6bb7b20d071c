//! Outbound connects: a shard opens a TCP connection to a listener of the test's own, and it is
//! served like an accepted one (bytes both ways, closes from either side), told apart from
//! accepted ones by its origin; a refused connect and a full process come back to the handler
//! as errors. Over TLS (`connect_tls`, against a rustls server of the test's own) likewise, and
//! a certificate the client does not trust fails the handshake, reported as the connect's error.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shards::{
    ConnId, ConnInfo, Disconnect, Envelope, Handler, Io, ListenSpec, Origin, Runtime, RuntimeConfig, ShardId,
};

/// Bounds every wait of the test.
const WAIT: Duration = Duration::from_secs(5);

struct Nothing;
impl Envelope for Nothing {}

enum Ctl {
    Connect(SocketAddr),
    /// TLS as the client, trusting what the config trusts, asking for "localhost".
    ConnectTls(SocketAddr, Arc<rustls::ClientConfig>),
    /// Say goodbye on every outbound connection and close it.
    CloseOutbound,
}

/// What the handler saw, reported to the test.
#[derive(Debug, PartialEq)]
enum Seen {
    Accepted(Origin),
    /// Peer, local address and origin; or the error's kind.
    Connected(Result<(SocketAddr, SocketAddr, Origin), ErrorKind>),
    Data(Vec<u8>),
    Disconnected(String),
}

struct Dialer {
    seen: Sender<Seen>,
    conns: Vec<(ConnId, Origin)>,
}

impl Handler for Dialer {
    type Msg = Nothing;
    type Control = Ctl;
    fn on_accept(&mut self, _io: &mut Io<Nothing>, conn: ConnId, info: ConnInfo) {
        self.conns.push((conn, info.origin));
        let _ = self.seen.send(Seen::Accepted(info.origin));
    }
    fn on_connected(&mut self, io: &mut Io<Nothing>, conn: ConnId, result: std::io::Result<ConnInfo>) {
        if let Ok(info) = &result {
            self.conns.push((conn, info.origin));
            io.send(conn, format!("hello from shard {}\n", io.shard()).as_bytes());
        }
        let _ = self.seen.send(Seen::Connected(result.map(|i| (i.peer, i.local, i.origin)).map_err(|e| e.kind())));
    }
    fn on_data(&mut self, io: &mut Io<Nothing>, conn: ConnId, data: &[u8]) {
        io.send(conn, b"got it\n");
        let _ = self.seen.send(Seen::Data(data.to_vec()));
    }
    fn on_disconnect(&mut self, _io: &mut Io<Nothing>, conn: ConnId, why: Disconnect) {
        self.conns.retain(|(c, _)| *c != conn);
        let _ = self.seen.send(Seen::Disconnected(why.to_string()));
    }
    fn on_mesh(&mut self, _io: &mut Io<Nothing>, _from: ShardId, _msg: Nothing) {}
    fn on_tick(&mut self, _io: &mut Io<Nothing>) {}
    fn on_control(&mut self, io: &mut Io<Nothing>, c: Ctl) {
        match c {
            Ctl::Connect(addr) => {
                io.connect(addr, WAIT);
            }
            Ctl::ConnectTls(addr, cfg) => {
                io.connect_tls(addr, WAIT, cfg, rustls::pki_types::ServerName::try_from("localhost").unwrap());
            }
            Ctl::CloseOutbound => {
                for &(c, _) in self.conns.iter().filter(|(_, o)| *o == Origin::Outbound) {
                    io.send(c, b"bye\n");
                    io.close(c);
                }
                self.conns.retain(|(_, o)| *o != Origin::Outbound);
            }
        }
    }
    fn on_stop(&mut self, io: &mut Io<Nothing>) {
        for (c, _) in self.conns.drain(..) {
            io.close(c);
        }
    }
}

fn next(seen: &Receiver<Seen>) -> Seen {
    seen.recv_timeout(WAIT).expect("the handler reports in time")
}

fn line(r: &mut BufReader<TcpStream>) -> String {
    let mut s = String::new();
    r.read_line(&mut s).unwrap();
    s
}

/// The test listener's next connection, within `WAIT`.
fn accept(listener: &TcpListener) -> BufReader<TcpStream> {
    listener.set_nonblocking(true).unwrap();
    let began = Instant::now();
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(WAIT)).unwrap();
                return BufReader::new(s);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && began.elapsed() < WAIT => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("no connection from the shard: {e}"),
        }
    }
}

/// Waits (within `WAIT`) until the runtime holds `n` connections.
fn wait_open(rt: &Runtime<Ctl>, n: usize) {
    let began = Instant::now();
    while rt.open_connections() != n {
        assert!(began.elapsed() < WAIT, "{} connections open, expected {n}", rt.open_connections());
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn outbound_connect_served_like_accepted() {
    let cfg = RuntimeConfig {
        cores: 2,
        listeners: vec![ListenSpec { addr: "127.0.0.1:0".parse().unwrap(), tag: 7, tls: None, websocket: false }],
        // One accepted client and one outbound connection fill the process.
        capacity: 2,
        stop_grace: Duration::from_secs(1),
        ..Default::default()
    };
    let (tx, seen) = std::sync::mpsc::channel();
    let rt: Runtime<Ctl> =
        Runtime::start(cfg, move |_, _| Dialer { seen: tx.clone(), conns: Vec::new() }).expect("start");

    // An accepted connection, for contrast: it carries its listener.
    let mut client = BufReader::new(TcpStream::connect(rt.bound()[0]).unwrap());
    client.get_ref().set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(next(&seen), Seen::Accepted(Origin::Inbound { listener: 0, tls: false, websocket: false, tag: 7 }));

    // Shard 1 connects out; bytes flow both ways.
    let far = TcpListener::bind("127.0.0.1:0").unwrap();
    let far_addr = far.local_addr().unwrap();
    assert!(rt.control(1, Ctl::Connect(far_addr)));
    let mut peer = accept(&far);
    let shard_side = peer.get_ref().peer_addr().unwrap();
    assert_eq!(next(&seen), Seen::Connected(Ok((far_addr, shard_side, Origin::Outbound))));
    assert_eq!(line(&mut peer), "hello from shard 1\n");
    peer.get_mut().write_all(b"ping\n").unwrap();
    assert_eq!(next(&seen), Seen::Data(b"ping\n".to_vec()));
    assert_eq!(line(&mut peer), "got it\n");
    assert_eq!(rt.open_connections(), 2);

    // The process is full: a third connection is refused before any connect.
    assert!(rt.control(1, Ctl::Connect(far_addr)));
    assert_eq!(next(&seen), Seen::Connected(Err(ErrorKind::Other)));
    assert_eq!(far.accept().map_err(|e| e.kind()).err(), Some(ErrorKind::WouldBlock));

    // The handler closes it: the goodbye arrives, then EOF, and its place is free.
    assert!(rt.control(1, Ctl::CloseOutbound));
    assert_eq!(line(&mut peer), "bye\n");
    assert_eq!(line(&mut peer), "");
    wait_open(&rt, 1);

    // The peer closes one: the handler hears of it as of an accepted one.
    assert!(rt.control(0, Ctl::Connect(far_addr)));
    let mut peer = accept(&far);
    assert!(matches!(next(&seen), Seen::Connected(Ok((_, _, Origin::Outbound)))));
    assert_eq!(line(&mut peer), "hello from shard 0\n");
    drop(peer);
    assert_eq!(next(&seen), Seen::Disconnected("Connection closed".into()));
    wait_open(&rt, 1);

    // Nobody listens: the handler gets the error.
    let closed_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    assert!(rt.control(1, Ctl::Connect(closed_port)));
    assert_eq!(next(&seen), Seen::Connected(Err(ErrorKind::ConnectionRefused)));
    wait_open(&rt, 1);

    rt.stop();
    assert_eq!(line(&mut client), "");
    rt.wait().unwrap();
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for "localhost": a server config presenting it, and a client
/// config trusting it alone.
fn tls_pair() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let der = CertificateDer::from(ck.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

type TlsPeer = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

/// The test listener's next connection, its TLS handshake (the server side) run to its end.
fn accept_tls(listener: &TcpListener, cfg: &Arc<rustls::ServerConfig>) -> Result<TlsPeer, std::io::Error> {
    let tcp = accept(listener).into_inner();
    let mut s = rustls::StreamOwned::new(rustls::ServerConnection::new(cfg.clone()).unwrap(), tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// A line from a TLS peer; "" at the end (a close_notify, or the socket's end).
fn tls_line(r: &mut BufReader<TlsPeer>) -> String {
    let mut s = String::new();
    let _ = r.read_line(&mut s);
    s
}

#[test]
fn outbound_tls_connect() {
    let cfg = RuntimeConfig { cores: 2, stop_grace: Duration::from_secs(1), ..Default::default() };
    let (tx, seen) = std::sync::mpsc::channel();
    let rt: Runtime<Ctl> =
        Runtime::start(cfg, move |_, _| Dialer { seen: tx.clone(), conns: Vec::new() }).expect("start");
    let (server, client) = tls_pair();
    let far = TcpListener::bind("127.0.0.1:0").unwrap();
    let far_addr = far.local_addr().unwrap();

    // The handshake completes before the handler hears of the connection; then bytes flow both
    // ways, encrypted.
    assert!(rt.control(1, Ctl::ConnectTls(far_addr, client.clone())));
    let peer = accept_tls(&far, &server).expect("TLS handshake");
    assert_eq!(peer.conn.server_name(), Some("localhost"), "SNI carries the name asked for");
    let shard_side = peer.sock.peer_addr().unwrap();
    assert_eq!(next(&seen), Seen::Connected(Ok((far_addr, shard_side, Origin::Outbound))));
    let mut peer = BufReader::new(peer);
    assert_eq!(tls_line(&mut peer), "hello from shard 1\n");
    peer.get_mut().write_all(b"ping\n").unwrap();
    peer.get_mut().flush().unwrap();
    assert_eq!(next(&seen), Seen::Data(b"ping\n".to_vec()));
    assert_eq!(tls_line(&mut peer), "got it\n");

    // The handler closes it: the goodbye arrives, then the end.
    assert!(rt.control(1, Ctl::CloseOutbound));
    assert_eq!(tls_line(&mut peer), "bye\n");
    assert_eq!(tls_line(&mut peer), "");
    wait_open(&rt, 0);

    // A certificate the client does not trust: the handshake fails, and the handler gets the
    // error instead of a connection.
    let (other_server, _) = tls_pair();
    assert!(rt.control(0, Ctl::ConnectTls(far_addr, client.clone())));
    assert!(accept_tls(&far, &other_server).is_err(), "the client refuses the certificate");
    match next(&seen) {
        Seen::Connected(Err(kind)) => assert_eq!(kind, ErrorKind::InvalidData),
        other => panic!("expected a failed connect, got {other:?}"),
    }
    wait_open(&rt, 0);

    // A peer that never answers the handshake: given up after the timeout.
    assert!(rt.control(0, Ctl::ConnectTls(far_addr, client)));
    let silent = accept(&far);
    let began = Instant::now();
    match seen.recv_timeout(WAIT * 2).expect("the handler reports in time") {
        Seen::Connected(Err(kind)) => assert_eq!(kind, ErrorKind::TimedOut),
        other => panic!("expected a timed-out handshake, got {other:?}"),
    }
    assert!(began.elapsed() >= WAIT - Duration::from_millis(500));
    drop(silent);
    wait_open(&rt, 0);

    rt.stop();
    rt.wait().unwrap();
}
