//! WebSocket listeners (IRCv3 `websocket`): a real WebSocket client (tungstenite's blocking
//! one) against the real binary with `--cores 2`. A WebSocket client is an ordinary client:
//! it talks with a TCP client of the other shard in a channel, both ways, one line per message;
//! the subprotocol follows the client's preference (text without one); a foreign Origin gets
//! 403; `wss://` works with a generated certificate; QUIT ends in a close frame; an overlong
//! message is answered as an overlong line; an idle WebSocket connection never sleeps; and a
//! quiet one that sheds its framing state loses nothing of what spans the silence.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Msg, Server, TempDir, BASE_CONFIG, TIMEOUT, WATCHER_OPER};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::{Error as WsError, Message, WebSocket};

const TEXT: &str = "text.ircv3.net";
const BINARY: &str = "binary.ircv3.net";

trait Rw: Read + Write {}
impl<T: Read + Write> Rw for T {}

/// A WebSocket client speaking IRC, one line per message.
struct WsClient {
    ws: WebSocket<Box<dyn Rw>>,
    /// The subprotocol the server chose (its `Sec-WebSocket-Protocol`).
    subprotocol: Option<String>,
    /// The local port, to find the connection's shard in the server's log.
    port: u16,
    nick: String,
}

/// What a handshake asks for.
#[derive(Default)]
struct Ask<'a> {
    subprotocols: &'a [&'a str],
    origin: Option<&'a str>,
}

/// An upgraded connection and the subprotocol the server named.
type Upgraded = (WebSocket<Box<dyn Rw>>, Option<String>);

fn handshake(stream: Box<dyn Rw>, url: &str, ask: &Ask<'_>) -> Result<Upgraded, WsError> {
    let mut req = url.into_client_request().unwrap();
    if !ask.subprotocols.is_empty() {
        req.headers_mut().insert("Sec-WebSocket-Protocol", ask.subprotocols.join(", ").parse().unwrap());
    }
    if let Some(o) = ask.origin {
        req.headers_mut().insert("Origin", o.parse().unwrap());
    }
    let (ws, resp) = tungstenite::client(req, stream).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        e => panic!("handshake did not finish: {e}"),
    })?;
    let chosen = resp.headers().get("sec-websocket-protocol").map(|v| v.to_str().unwrap().to_string());
    Ok((ws, chosen))
}

fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

impl WsClient {
    fn connect(addr: SocketAddr, ask: &Ask<'_>) -> Result<WsClient, WsError> {
        let s = tcp(addr);
        let port = s.local_addr().unwrap().port();
        let (ws, subprotocol) = handshake(Box::new(s), &format!("ws://{addr}/"), ask)?;
        Ok(WsClient { ws, subprotocol, port, nick: String::new() })
    }

    fn text(addr: SocketAddr) -> WsClient {
        WsClient::connect(addr, &Ask { subprotocols: &[TEXT], ..Ask::default() }).unwrap()
    }

    /// Over TLS (`wss://`), trusting `cert` (DER).
    fn secure(addr: SocketAddr, cert: &[u8]) -> WsClient {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(rustls::pki_types::CertificateDer::from(cert.to_vec())).unwrap();
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
        let s = tcp(addr);
        let port = s.local_addr().unwrap().port();
        let stream = rustls::StreamOwned::new(conn, s);
        let ask = Ask { subprotocols: &[TEXT], ..Ask::default() };
        let (ws, subprotocol) =
            handshake(Box::new(stream), &format!("wss://localhost:{}/", addr.port()), &ask).unwrap();
        WsClient { ws, subprotocol, port, nick: String::new() }
    }

    fn send(&mut self, line: &str) {
        self.ws.send(Message::text(line)).unwrap();
    }

    /// The next message, as its frame type and payload; pings and pongs are skipped.
    fn recv(&mut self) -> Message {
        loop {
            match self.ws.read() {
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Ok(m) => return m,
                Err(e) => panic!("{}: read failed: {e}", self.nick),
            }
        }
    }

    /// The next IRC line: one message, one line, no line end in it.
    fn line(&mut self) -> (Msg, bool) {
        let (bytes, binary) = match self.recv() {
            Message::Text(t) => (t.as_bytes().to_vec(), false),
            Message::Binary(b) => (b.to_vec(), true),
            m => panic!("{}: expected a line, got {m:?}", self.nick),
        };
        assert!(!bytes.contains(&b'\n') && !bytes.contains(&b'\r'), "a message is one line without its end: {bytes:?}");
        (Msg::parse(&String::from_utf8(bytes).unwrap()), binary)
    }

    fn expect(&mut self, verb: &str) -> Msg {
        let mut seen = Vec::new();
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            let (m, _) = self.line();
            if m.verb == verb {
                return m;
            }
            seen.push(m.raw);
        }
        panic!("{}: expected {verb}; got {seen:#?}", self.nick);
    }

    fn register(&mut self, nick: &str) {
        self.nick = nick.to_string();
        self.send(&format!("NICK {nick}"));
        self.send(&format!("USER {} 0 * :Web {nick}", nick.to_lowercase()));
        self.expect("001");
        self.expect("376");
    }
}

fn ws_config(extra: &str) -> String {
    format!("{BASE_CONFIG}\n[[listen]]\naddress = \"127.0.0.1:0\"\nwebsocket = true\n{extra}")
}

/// The server's listeners: the plain one (`--listen`) first, then the config's.
fn ws_addr(srv: &Server) -> SocketAddr {
    assert_eq!(srv.addrs.len(), 2, "a plain and a WebSocket listener: {:?}", srv.addrs);
    srv.addrs[1]
}

#[test]
fn a_websocket_client_and_a_tcp_client_on_another_shard_talk_both_ways() {
    let srv = Server::with_config(2, &ws_config(""));
    let mut web = WsClient::text(ws_addr(&srv));
    assert_eq!(web.subprotocol.as_deref(), Some(TEXT));
    web.register("webby");
    let shard = srv.shard_of_port(web.port);
    srv.wait_log(&["WebSocket client", &format!(":{}]", web.port), "subprotocol=text.ircv3.net"]);

    let mut tcp = srv.client_on_shard("tcpy", 1 - shard);
    web.send("JOIN #web");
    web.expect("366");
    tcp.send("JOIN #web");
    tcp.expect_verb("366");
    let join = web.expect("JOIN");
    assert!(join.source.as_deref().unwrap().starts_with("tcpy!"), "{}", join.raw);

    web.send("PRIVMSG #web :hello from the browser");
    let m = tcp.expect_verb("PRIVMSG");
    assert!(m.source.as_deref().unwrap().starts_with("webby!"), "{}", m.raw);
    assert_eq!((m.p(0), m.last()), ("#web", "hello from the browser"));

    tcp.send("PRIVMSG #web :héllo from a terminal");
    tcp.send("PRIVMSG webby :and in private");
    let (m, binary) = web.line();
    assert!(!binary, "text subprotocol: text messages");
    assert_eq!((m.verb.as_str(), m.p(0), m.last()), ("PRIVMSG", "#web", "héllo from a terminal"));
    let (m, _) = web.line();
    assert_eq!((m.verb.as_str(), m.p(0), m.last()), ("PRIVMSG", "webby", "and in private"));

    // A message ending in CRLF is the same line; an empty one is nothing.
    web.send("");
    web.send("PING :with-crlf\r\n");
    assert_eq!(web.expect("PONG").last(), "with-crlf");
    // Pings of the protocol itself are the library's: answered, never seen as IRC.
    web.ws.send(Message::Ping(b"are you there".to_vec().into())).unwrap();
    match web.ws.read().unwrap() {
        Message::Pong(p) => assert_eq!(&p[..], b"are you there"),
        m => panic!("expected the pong, got {m:?}"),
    }

    // WHOIS from the TCP side sees an ordinary user.
    tcp.send("WHOIS webby");
    let lines = tcp.collect_until("318");
    assert!(lines.iter().any(|l| l.verb == "311" && l.p(1) == "webby"), "{lines:?}");
}

#[test]
fn the_clients_preference_chooses_binary_or_text_and_none_means_text() {
    let srv = Server::with_config(2, &ws_config(""));
    let addr = ws_addr(&srv);

    let mut bin = WsClient::connect(addr, &Ask { subprotocols: &[BINARY, TEXT], ..Ask::default() }).unwrap();
    assert_eq!(bin.subprotocol.as_deref(), Some(BINARY));
    bin.nick = "binny".into();
    bin.ws.send(Message::binary(b"NICK binny".to_vec())).unwrap();
    bin.ws.send(Message::binary(b"USER binny 0 * :bytes".to_vec())).unwrap();
    loop {
        let (m, binary) = bin.line();
        assert!(binary, "binary subprotocol: binary messages ({})", m.raw);
        if m.verb == "001" {
            break;
        }
    }

    let text_first = WsClient::connect(addr, &Ask { subprotocols: &[TEXT, BINARY], ..Ask::default() }).unwrap();
    assert_eq!(text_first.subprotocol.as_deref(), Some(TEXT));

    // No subprotocol offered: none named, text messages, and either kind taken in.
    let mut plain = WsClient::connect(addr, &Ask::default()).unwrap();
    assert_eq!(plain.subprotocol, None);
    plain.nick = "plainy".into();
    plain.ws.send(Message::binary(b"NICK plainy".to_vec())).unwrap();
    plain.send("USER plainy 0 * :no subprotocol");
    let (m, binary) = plain.line();
    assert!(!binary, "{}", m.raw);
    assert_eq!(m.verb, "001", "{}", m.raw);
}

#[test]
fn a_page_of_a_foreign_origin_gets_403() {
    let srv = Server::with_config(
        2,
        &ws_config(&format!(
            "{WATCHER_OPER}\n[websocket]\nallowed_origins = [\"https://chat.example\", \"https://*.example.org\"]\n"
        )),
    );
    let addr = ws_addr(&srv);
    let refused = WsClient::connect(addr, &Ask { subprotocols: &[TEXT], origin: Some("https://evil.example") });
    match refused {
        Err(WsError::Http(resp)) => assert_eq!(resp.status(), 403),
        Err(e) => panic!("expected HTTP 403, got {e}"),
        Ok(_) => panic!("a foreign origin was accepted"),
    }
    srv.wait_log(&["WebSocket refused", "origin=https://evil.example"]);
    // counted apart from TLS handshakes (STATS c, and the metric's websocket_upgrade reason)
    let mut oper = srv.client("watcher");
    oper.send("OPER watcher pw");
    oper.expect_verb("381");
    oper.send("STATS c");
    let stats = oper.collect_until("219");
    let line = stats.iter().find(|m| m.verb == "249" && m.last().starts_with("Connections:")).unwrap();
    assert!(line.last().contains("0 failed TLS handshakes, 1 failed WebSocket upgrades"), "{}", line.raw);

    for origin in ["https://chat.example", "https://web.example.org"] {
        let mut c = WsClient::connect(addr, &Ask { subprotocols: &[TEXT], origin: Some(origin) }).unwrap();
        c.send("PING :allowed");
        assert_eq!(c.expect("PONG").last(), "allowed", "{origin}");
    }
    // No Origin at all: no browser, no page to guard against.
    let mut c = WsClient::connect(addr, &Ask { subprotocols: &[TEXT], origin: None }).unwrap();
    c.send("PING :no-origin");
    assert_eq!(c.expect("PONG").last(), "no-origin");
}

fn make_cert(dir: &Path) -> Vec<u8> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    ck.cert.der().to_vec()
}

#[test]
fn wss_works_with_the_listeners_tls_settings() {
    let dir = TempDir::new();
    let der = make_cert(&dir.0);
    let extra = format!(
        "tls = true\ncert = \"{}\"\nkey = \"{}\"\n",
        dir.0.join("cert.pem").display(),
        dir.0.join("key.pem").display()
    );
    let srv = Server::with_config(2, &ws_config(&extra));
    let mut web = WsClient::secure(ws_addr(&srv), &der);
    assert_eq!(web.subprotocol.as_deref(), Some(TEXT));
    web.register("secureweb");
    web.send("MODE secureweb");
    assert!(web.expect("221").p(1).contains('Z'), "a wss:// client is on TLS (+Z)");
    srv.wait_log(&["Client connected", &format!(":{}]", web.port), "tls"]);

    let mut tcp = srv.client("plainpal");
    tcp.send("PRIVMSG secureweb :over tls");
    let (m, _) = web.line();
    assert_eq!((m.verb.as_str(), m.last()), ("PRIVMSG", "over tls"));
    // sts points IRC clients to an IRC port over TLS, never to a wss:// one
    tcp.send("CAP LS 302");
    let ls = tcp.expect_verb("CAP");
    assert!(!ls.last().contains("sts="), "{}", ls.raw);
}

#[test]
fn quit_ends_in_an_error_line_and_a_close_frame() {
    let srv = Server::with_config(2, &ws_config(""));
    let mut web = WsClient::text(ws_addr(&srv));
    web.register("leaver");
    let mut watcher = srv.client("watcher");
    watcher.send("MONITOR + leaver");
    watcher.expect_verb("730");
    web.send("QUIT :bye now");
    let error = web.expect("ERROR");
    assert!(error.last().contains("Quit: bye now") || error.last().contains("bye now"), "{}", error.raw);
    match web.ws.read() {
        Ok(Message::Close(Some(f))) => assert_eq!(f.code, CloseCode::Normal),
        other => panic!("expected a close frame after ERROR, got {other:?}"),
    }
    // Then the connection ends (tungstenite says so, or the socket does if its answer to
    // the close came after the server's FIN).
    match web.ws.read() {
        Err(_) => {}
        Ok(m) => panic!("expected the end, got {m:?}"),
    }
    watcher.expect_verb("731");
}

#[test]
fn an_overlong_message_is_answered_as_an_overlong_line() {
    let srv = Server::with_config(2, &ws_config(""));
    let mut web = WsClient::text(ws_addr(&srv));
    web.register("longy");
    // longer than a line's 512 bytes and 8191 of tags: 417, as over TCP, and it goes on
    web.send(&format!("PRIVMSG longy :{}", "x".repeat(9000)));
    web.expect("417");
    // longer than the scratch buffer a shard reads into: still one line, still 417
    web.send(&format!("PRIVMSG longy :{}", "y".repeat(40_000)));
    web.expect("417");
    web.send("PING :still-here");
    assert_eq!(web.expect("PONG").last(), "still-here");
    // beyond what the framing holds (64 KiB): the connection ends
    let _ = web.ws.send(Message::text("z".repeat(70_000)));
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match web.ws.read() {
            Ok(_) if Instant::now() < deadline => continue,
            Ok(m) => panic!("still open: {m:?}"),
            Err(_) => break,
        }
    }
}

/// Connections asleep on each shard, from STATS S (`N connections (M asleep)`).
fn asleep(watcher: &mut common::Client) -> usize {
    watcher.send("STATS S");
    let lines = watcher.collect_until("219");
    lines
        .iter()
        .filter(|m| m.verb == "249")
        .map(|l| {
            let n = l.last().split(" connections (").nth(1).and_then(|t| t.split(' ').next()).unwrap();
            n.parse::<usize>().unwrap()
        })
        .sum()
}

#[test]
fn an_idle_websocket_connection_never_sleeps_and_still_gets_its_lines() {
    let srv = Server::with_config(2, &ws_config(&format!("{WATCHER_OPER}\n[runtime]\nsleep_after = \"1s\"\n")));
    let mut watcher = srv.client("watcher");
    watcher.send("OPER watcher pw");
    watcher.expect_verb("381");
    let mut web = WsClient::text(ws_addr(&srv));
    web.register("idleweb");
    web.send("JOIN #idle");
    web.expect("366");
    let mut lurker = srv.client("lurker");
    lurker.send("JOIN #idle");
    lurker.expect_verb("366");
    lurker.sync();
    // The plain lurker falls asleep; the WebSocket client, as quiet, does not.
    let deadline = Instant::now() + Duration::from_secs(20);
    while asleep(&mut watcher) != 1 {
        assert!(Instant::now() < deadline, "the quiet plain client never slept");
        std::thread::sleep(Duration::from_millis(300));
    }
    // (the watcher asks every 300 ms, so it stays awake itself)
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        assert_eq!(asleep(&mut watcher), 1, "only the plain client sleeps");
        std::thread::sleep(Duration::from_millis(300));
    }
    watcher.send("JOIN #idle");
    watcher.expect_verb("366");
    watcher.send("PRIVMSG #idle :to both");
    let m = web.expect("PRIVMSG");
    assert_eq!(m.last(), "to both");
    assert_eq!(lurker.expect_verb("PRIVMSG").last(), "to both");
}

/// A client frame (masked) as bytes on the wire, to send in parts.
fn client_frame(payload: &[u8], opcode: OpCode, is_final: bool) -> Vec<u8> {
    masked(Frame::message(payload.to_vec(), opcode, is_final))
}

fn masked(mut frame: Frame) -> Vec<u8> {
    frame.header_mut().mask = Some([0x37, 0xfa, 0x21, 0x3d]);
    let mut out = Vec::new();
    frame.format(&mut out).unwrap();
    out
}

impl WsClient {
    /// Bytes straight onto the socket, under tungstenite.
    fn raw(&mut self, bytes: &[u8]) {
        let s = self.ws.get_mut();
        s.write_all(bytes).unwrap();
        s.flush().unwrap();
    }
}

#[test]
fn a_quiet_websocket_connection_sheds_its_framing_state_and_loses_nothing() {
    // With sleep_after 1 s a quiet WebSocket connection drops tungstenite's state within about
    // two seconds (ws.rs), unless part of a message is in flight; 2.5 s of silence each time.
    let srv = Server::with_config(2, &ws_config("[runtime]\nsleep_after = \"1s\"\n"));
    let mut web = WsClient::text(ws_addr(&srv));
    web.register("shedder");
    let mut tcp = srv.client("plain");
    tcp.send("JOIN #quiet");
    tcp.expect_verb("366");
    web.send("JOIN #quiet");
    web.expect("366");
    let quiet = || std::thread::sleep(Duration::from_millis(2500));
    let text = OpCode::Data(Data::Text);

    // A frame's header cut by the silence, then its payload.
    let frame = client_frame(b"PING :split-header", text, true);
    web.raw(&frame[..1]);
    quiet();
    web.raw(&frame[1..]);
    assert_eq!(web.expect("PONG").last(), "split-header");
    let frame = client_frame(b"PING :split-payload", text, true);
    web.raw(&frame[..10]);
    quiet();
    web.raw(&frame[10..]);
    assert_eq!(web.expect("PONG").last(), "split-payload");

    // A fragmented message across two silences, a ping between its fragments.
    web.raw(&client_frame(b"PING :frag", text, false));
    quiet();
    web.raw(&masked(Frame::ping(b"between".to_vec())));
    web.raw(&client_frame(b"ment", OpCode::Data(Data::Continue), false));
    quiet();
    web.raw(&client_frame(b"ed", OpCode::Data(Data::Continue), true));
    assert_eq!(web.expect("PONG").last(), "fragmented");

    // After a clean silence: a ping is answered...
    quiet();
    web.ws.send(Message::Ping("still-there".into())).unwrap();
    loop {
        match web.ws.read().unwrap() {
            Message::Pong(p) if &p[..] == b"still-there" => break,
            Message::Pong(_) => continue,
            m => panic!("expected the pong, got {m:?}"),
        }
    }
    // ...a long line arrives whole, both ways...
    quiet();
    let long = "w".repeat(400);
    web.send(&format!("PRIVMSG #quiet :{long}"));
    assert_eq!(tcp.expect_verb("PRIVMSG").last(), long);
    quiet();
    tcp.send(&format!("PRIVMSG #quiet :{long}"));
    assert_eq!(web.expect("PRIVMSG").last(), long);
    // ...a message longer than the read buffer, in pieces, is still one (overlong) line...
    quiet();
    web.send(&format!("PRIVMSG shedder :{}", "y".repeat(40_000)));
    web.expect("417");
    // ...and a burst of replies comes out whole and in order.
    quiet();
    web.send("MOTD");
    web.expect("375");
    web.expect("372");
    web.expect("376");
    web.send("PING :last");
    assert_eq!(web.expect("PONG").last(), "last");
}
