//! Test harness: the real `rustircd` binary on a free loopback port, and line-oriented clients.
//! Every server a test starts is stopped when its `Server` is dropped.

#![allow(dead_code)]

pub mod relay;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// Every bound address, in listener order (the --listen one first).
    pub addrs: Vec<SocketAddr>,
    pub cores: usize,
    log: Arc<Mutex<Vec<String>>>,
    _dir: TempDir,
    pub config_path: PathBuf,
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("rustircd-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub const BASE_CONFIG: &str = r#"
[server]
name = "irc.test.local"
sid = "0TS"
network = "TestNet"
description = "test server"
motd = "test motd"

[server.admin]
location = "here"
email = "admin@test.local"

[[classes]]
name = "users"
hosts = ["*"]
recvq = "16KiB"
sendq = "256KiB"
ping_frequency = "90s"
connection_timeout = "30s"
exempt = true
"#;

/// An operator `watcher` (password `pw`, plain text allowed) with every privilege, for tests
/// that read STATS and the like (`OPER watcher pw`).
pub const WATCHER_OPER: &str = r#"
[[opers]]
name = "watcher"
password = "pw"
allow_plaintext = true
privileges = ["all"]
"#;

/// An argon2id hash made by `rustircd --mkpasswd`, as an operator would make one.
pub fn mkpasswd(password: &str) -> String {
    let mut child = Command::new(bin())
        .arg("--mkpasswd")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    hash
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rustircd"))
}

impl Server {
    /// The server with the base config and 2 shards.
    pub fn start() -> Server {
        Server::with_config(2, BASE_CONFIG)
    }

    pub fn with_config(cores: usize, config: &str) -> Server {
        Server::with_args(cores, config, &[])
    }

    pub fn with_args(cores: usize, config: &str, extra: &[&str]) -> Server {
        let dir = TempDir::new();
        let config_path = dir.0.join("rustircd.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut child = Command::new(bin())
            .arg("--cores")
            .arg(cores.to_string())
            .arg("--config")
            .arg(&config_path)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rustircd");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = log.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut addrs = Vec::new();
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(rest) = line.split("Listening on ").nth(1) {
                        addrs.push(rest.trim().to_string());
                    }
                    if line.contains(" ready: ") {
                        let _ = tx.send(std::mem::take(&mut addrs));
                        sent = true;
                    }
                }
                log2.lock().unwrap().push(line);
            }
        });
        let addrs: Vec<SocketAddr> = match rx.recv_timeout(TIMEOUT) {
            Ok(a) => a.iter().map(|a| a.parse().unwrap()).collect(),
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start: {:?}", log.lock().unwrap());
            }
        };
        Server { child: Some(child), addr: addrs[0], addrs, cores, log, _dir: dir, config_path }
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits for a log line containing every one of `needles`.
    pub fn wait_log(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(l) = self.log.lock().unwrap().iter().find(|l| needles.iter().all(|n| l.contains(n))) {
                return l.clone();
            }
            if Instant::now() > deadline {
                panic!("no log line with {needles:?} in {:#?}", self.log_lines());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    pub fn connect_from(&self, src: &str) -> Client {
        Client::connect_from(self.addr, src.parse().unwrap())
    }

    /// A registered client.
    pub fn client(&self, nick: &str) -> Client {
        let mut c = self.connect();
        c.register(nick);
        c
    }

    /// A registered client on shard `shard` (connections are made until one lands there).
    pub fn client_on_shard(&self, nick: &str, shard: usize) -> Client {
        self.client_on_shard_caps(nick, "", shard)
    }

    /// The same, with these capabilities (none: plain registration).
    pub fn client_on_shard_caps(&self, nick: &str, caps: &str, shard: usize) -> Client {
        for _ in 0..200 {
            let mut c = self.connect();
            if self.shard_of(&c) == shard {
                if caps.is_empty() {
                    c.register(nick);
                } else {
                    c.register_caps(nick, caps);
                }
                return c;
            }
        }
        panic!("no connection landed on shard {shard}");
    }

    /// The shard that holds a client, as the server's connect log says.
    pub fn shard_of(&self, c: &Client) -> usize {
        self.shard_of_port(c.local_port())
    }

    /// The shard that holds the connection from this local port (a TLS client's, say).
    pub fn shard_of_port(&self, port: u16) -> usize {
        let line = self.wait_log(&["Client connected", &format!(":{port}]")]);
        let s = line.split("shard=").nth(1).expect("shard= in log line");
        s.split_whitespace().next().unwrap().parse().unwrap()
    }

    /// Registered clients until both shards hold at least `per_shard` of them.
    pub fn clients_on_both_shards(&self, prefix: &str, per_shard: usize) -> Vec<(Client, usize)> {
        let mut out: Vec<(Client, usize)> = Vec::new();
        let mut count = [0usize; 2];
        let mut i = 0;
        while count[0] < per_shard || count[1] < per_shard {
            assert!(i < 200, "could not spread clients over both shards");
            let c = self.client(&format!("{prefix}{i}"));
            let s = self.shard_of(&c);
            count[s.min(1)] += 1;
            out.push((c, s));
            i += 1;
        }
        out
    }

    /// An unregistered connection on shard `shard` that negotiated `sasl`, offered with
    /// exactly `mechs` (the mechanisms reach every shard through the mesh: CAP LS is asked
    /// until this one has them), with NICK and USER sent.
    pub fn sasl_client(&self, nick: &str, shard: usize, mechs: &str) -> Client {
        let want = format!("sasl={mechs}");
        for _ in 0..200 {
            let mut c = self.connect();
            if self.shard_of(&c) != shard {
                continue;
            }
            c.nick = nick.into();
            let mut offered = false;
            for _ in 0..50 {
                if c.cap_ls().split(' ').any(|x| x == want) {
                    offered = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(offered, "{want} never offered on shard {shard}");
            c.send("CAP REQ :sasl");
            assert_eq!(c.expect("CAP ACK", |m| m.verb == "CAP").p(1), "ACK");
            c.send(&format!("NICK {nick}"));
            c.send(&format!("USER {nick} 0 * :{nick}"));
            return c;
        }
        panic!("no connection landed on shard {shard}");
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The server's resident memory (VmRSS), in KiB.
    pub fn rss_kb(&self) -> u64 {
        rss_kb(self.pid())
    }

    pub fn signal(&self, sig: i32) {
        unsafe {
            libc_kill(self.pid() as i32, sig);
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        unsafe {
            libc_kill(child.id() as i32, 15);
        }
        match wait_with_timeout(&mut child, TIMEOUT) {
            Some(status) => status,
            None => {
                // Never leave a server behind, even when failing.
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not stop within {TIMEOUT:?} of SIGTERM: {:#?}", self.log_lines());
            }
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().unwrap().try_wait(), Ok(None))
    }
}

/// A process's resident memory (VmRSS), in KiB; 0 once it is gone.
pub fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or("VmRSS: 0 kB");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0)
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

fn wait_with_timeout(child: &mut Child, t: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + t;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe {
                libc_kill(child.id() as i32, 15);
            }
            if wait_with_timeout(&mut child, Duration::from_secs(5)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A parsed line as a test sees it.
#[derive(Debug, Clone)]
pub struct Msg {
    pub raw: String,
    pub tags: Vec<(String, String)>,
    pub source: Option<String>,
    pub verb: String,
    pub params: Vec<String>,
}

impl Msg {
    pub fn parse(raw: &str) -> Msg {
        let m = rustircd::proto::Message::parse(raw).unwrap_or_else(|e| panic!("unparsable line {raw:?}: {e:?}"));
        Msg {
            raw: raw.to_string(),
            tags: m.tags().map(|(k, v)| (k.to_string(), v.into_owned())).collect(),
            source: m.source.map(str::to_string),
            verb: m.verb.to_string(),
            params: m.params.iter().map(|s| s.to_string()).collect(),
        }
    }

    pub fn p(&self, i: usize) -> &str {
        self.params.get(i).map_or("", String::as_str)
    }

    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn last(&self) -> &str {
        self.params.last().map_or("", String::as_str)
    }
}

pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
    pub nick: String,
    /// Lines already read but not yet taken by an `expect`.
    pending: std::collections::VecDeque<Msg>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        Client { stream, buf: Vec::new(), nick: String::new(), pending: Default::default() }
    }

    /// Connects from a chosen loopback source address (127.0.0.x), as another host would.
    pub fn connect_from(addr: SocketAddr, src: std::net::Ipv4Addr) -> Client {
        use std::os::fd::FromRawFd;
        let SocketAddr::V4(dst) = addr else { panic!("IPv4 only") };
        let sin = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from(ip).to_be() },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: plain socket calls on a fresh descriptor, with sockaddr_in values of the
        // length given; the descriptor is handed to TcpStream, which owns it from then on.
        let stream = unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket");
            let from = sin(src, 0);
            assert_eq!(libc::bind(fd, &from as *const _ as *const libc::sockaddr, len), 0, "bind {src}");
            let to = sin(*dst.ip(), dst.port());
            assert_eq!(libc::connect(fd, &to as *const _ as *const libc::sockaddr, len), 0, "connect from {src}");
            TcpStream::from_raw_fd(fd)
        };
        stream.set_nodelay(true).unwrap();
        Client { stream, buf: Vec::new(), nick: String::new(), pending: Default::default() }
    }

    pub fn local_port(&self) -> u16 {
        self.stream.local_addr().unwrap().port()
    }

    pub fn send(&mut self, line: &str) {
        self.stream.write_all(line.as_bytes()).unwrap();
        self.stream.write_all(b"\r\n").unwrap();
    }

    /// [`Client::send`] to a server that may already have closed the connection (refused it):
    /// false when the write fails (a reset, a broken pipe).
    pub fn try_send(&mut self, line: &str) -> bool {
        self.stream.write_all(format!("{line}\r\n").as_bytes()).is_ok()
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next line, or None on EOF or after `timeout`.
    pub fn read_line(&mut self, timeout: Duration) -> Option<Msg> {
        if let Some(m) = self.pending.pop_front() {
            return Some(m);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let s = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
                if s.is_empty() {
                    continue;
                }
                return Some(Msg::parse(&s));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return None
                }
                Err(_) => return None,
            }
        }
    }

    /// Reads until a line satisfies `pred`; panics (showing what came) otherwise.
    pub fn expect(&mut self, what: &str, pred: impl Fn(&Msg) -> bool) -> Msg {
        let mut seen = Vec::new();
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            match self.read_line(deadline.saturating_duration_since(Instant::now())) {
                Some(m) if pred(&m) => return m,
                Some(m) => seen.push(m.raw),
                None => break,
            }
        }
        panic!("{}: expected {what}; got {seen:#?}", self.nick);
    }

    /// Reads until a line with this verb (or numeric).
    pub fn expect_verb(&mut self, verb: &str) -> Msg {
        self.expect(verb, |m| m.verb == verb)
    }

    /// Reads everything up to and including the line with `verb`.
    pub fn collect_until(&mut self, verb: &str) -> Vec<Msg> {
        let mut out = Vec::new();
        let deadline = Instant::now() + TIMEOUT;
        while let Some(m) = self.read_line(deadline.saturating_duration_since(Instant::now())) {
            let done = m.verb == verb;
            out.push(m);
            if done {
                return out;
            }
        }
        panic!("{}: no {verb} after {:#?}", self.nick, out.iter().map(|m| &m.raw).collect::<Vec<_>>());
    }

    /// Syncs with the server: everything before the PONG is returned.
    pub fn sync(&mut self) -> Vec<Msg> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let token = format!("sync{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        self.send(&format!("PING {token}"));
        let mut out = Vec::new();
        let deadline = Instant::now() + TIMEOUT;
        while let Some(m) = self.read_line(deadline.saturating_duration_since(Instant::now())) {
            if m.verb == "PONG" && m.last() == token {
                return out;
            }
            out.push(m);
        }
        panic!("{}: no PONG {token}; got {:#?}", self.nick, out.iter().map(|m| &m.raw).collect::<Vec<_>>());
    }

    /// Asserts nothing arrives within `d`.
    pub fn expect_silence(&mut self, d: Duration) {
        if let Some(m) = self.read_line(d) {
            panic!("{}: expected silence, got {:?}", self.nick, m.raw);
        }
    }

    /// `CAP LS 302`: the capabilities offered, from every line of the reply (a long list comes
    /// in several, each but the last marked `*`), as one space-separated list.
    pub fn cap_ls(&mut self) -> String {
        self.send("CAP LS 302");
        let mut caps = Vec::new();
        loop {
            let m = self.expect("CAP LS", |m| m.verb == "CAP" && m.p(1) == "LS");
            caps.push(m.last().to_string());
            if m.params.len() < 4 || m.p(2) != "*" {
                return caps.join(" ");
            }
        }
    }

    /// Registers with these capabilities (CAP LS 302, REQ, END).
    pub fn register_caps(&mut self, nick: &str, caps: &str) {
        self.nick = nick.to_string();
        self.send("CAP LS 302");
        self.send(&format!("CAP REQ :{caps}"));
        let ack = self.expect("CAP ACK", |m| m.verb == "CAP" && (m.p(1) == "ACK" || m.p(1) == "NAK"));
        assert_eq!(ack.p(1), "ACK", "{caps}: {}", ack.raw);
        self.send(&format!("NICK {nick}"));
        self.send(&format!("USER {} 0 * :Real {nick}", nick.to_lowercase()));
        self.send("CAP END");
        self.expect("001", |m| m.verb == "001");
        self.expect("end of MOTD", |m| m.verb == "376" || m.verb == "422");
    }

    pub fn register(&mut self, nick: &str) {
        self.nick = nick.to_string();
        self.send(&format!("NICK {nick}"));
        self.send(&format!("USER {} 0 * :Real {nick}", nick.to_lowercase()));
        self.expect("001", |m| m.verb == "001");
        self.expect("end of MOTD", |m| m.verb == "376" || m.verb == "422");
    }

    /// Waits for the server to close the connection; returns the lines seen before.
    pub fn expect_closed(&mut self) -> Vec<Msg> {
        let mut seen = Vec::new();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.read_line(deadline.saturating_duration_since(Instant::now())) {
                Some(m) => seen.push(m),
                None => {
                    assert!(Instant::now() < deadline, "{}: connection not closed; saw {seen:?}", self.nick);
                    return seen;
                }
            }
        }
    }
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
/// The base config for a server of another name and SID, with `links` blocks appended.
pub fn server_config(name: &str, sid: &str, links: &str) -> String {
    BASE_CONFIG.replace("irc.test.local", name).replace("0TS", sid) + links
}

/// A `[[links]]` block; `address` makes us dial it (autoconnect, quick backoff).
pub fn link_block(name: &str, sid: &str, address: Option<std::net::SocketAddr>, hub: bool) -> String {
    let mut b =
        format!("\n[[links]]\nname = \"{name}\"\nsid = \"{sid}\"\nsend_password = \"pw\"\naccept_password = \"pw\"\n");
    if let Some(a) = address {
        b += &format!("address = \"{a}\"\nautoconnect = true\nreconnect_min = \"1s\"\nreconnect_max = \"2s\"\n");
    }
    if hub {
        b += "hub_mask = [\"*\"]\n";
    }
    b
}

/// The base config with a services server `services.test` (SID 3SV) allowed to set accounts.
pub fn services_config() -> String {
    format!(
        "{}\n[[links]]\nname = \"services.test\"\nsid = \"3SV\"\nsend_password = \"tothem\"\naccept_password = \"tous\"\n",
        BASE_CONFIG.replace("motd = \"test motd\"", "motd = \"test motd\"\nservices = [\"services.test\"]")
    )
}

/// A scripted services server, linked (hybrid's handshake) and past its burst.
pub fn services(srv: &Server) -> Client {
    let mut s = Client::connect(srv.addr);
    s.nick = "services".into();
    s.send("PASS tous TS 6 :3SV");
    s.send("CAPAB :MLOCK KNOCK KLN TBURST RESYNC ENCAP UNKLN DLN UNDLN RHOST CLUSTER EOB HOP");
    s.send("SERVER services.test 1 3SV + :scripted services");
    s.expect("our EOB", |m| m.verb == "EOB");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    s.send(&format!(":3SV SVINFO 6 6 0 :{now}"));
    s.send(":3SV EOB");
    s
}

/// A client on `shard` with `caps`, logged in to `account` by services (its own shard knows it
/// on return).
pub fn identified(srv: &Server, s: &mut Client, nick: &str, caps: &str, shard: usize, account: &str) -> Client {
    let mut c = srv.client_on_shard_caps(nick, caps, shard);
    let intro = s.expect("the UID", |m| m.verb == "UID" && m.p(0) == nick);
    s.send(&format!(":3SV SVSACCOUNT {} {} {account}", intro.p(8), intro.p(2)));
    for _ in 0..100 {
        c.send(&format!("WHOIS {nick}"));
        if c.collect_until("318").iter().any(|m| m.verb == "330" && m.p(2) == account) {
            return c;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{nick} never logged in");
}
